// The images of a printed report (the laboratory's logo, the accreditation body's mark): PNG or JPEG files
// named in the config, read and checked once at the start, so that a wrong path or format stops the start
// with the config key and the reason rather than failing an issue later.
import { readFileSync, statSync } from 'node:fs';
import { LabtraceError } from '@labtrace/protocols';

/** the largest image a report embeds */
export const MAX_IMAGE_BYTES = 2 * 1024 * 1024;

export function imageFormat(bytes: Uint8Array): 'png' | 'jpeg' | undefined {
  if (bytes.length >= 8 && [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a].every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return undefined;
}

export function readImage(file: string, key: string): Uint8Array {
  let size: number;
  try {
    size = statSync(file).size;
  } catch (e) {
    throw new LabtraceError('E_CONFIG', `${key}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (size > MAX_IMAGE_BYTES)
    throw new LabtraceError('E_CONFIG', `${key}: ${file} is ${size} bytes; at most ${MAX_IMAGE_BYTES} are embedded in a report`);
  const bytes = new Uint8Array(readFileSync(file));
  if (imageFormat(bytes) === undefined) throw new LabtraceError('E_CONFIG', `${key}: ${file} is not a PNG or JPEG image`);
  return bytes;
}
