// Reads the published test vectors the project carries (protocols/test/vectors/, sources in its README).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const VECTORS_DIR = fileURLToPath(new URL('../../test/vectors/', import.meta.url));

export function readVector<T>(relative: string): T {
  return JSON.parse(readFileSync(VECTORS_DIR + relative, 'utf8')) as T;
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

export function unhex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'hex'));
}

/** Registers (16-bit, big-endian on the wire) from wire bytes in hex. */
export function registersOf(wireHex: string): number[] {
  const bytes = unhex(wireHex);
  const regs: number[] = [];
  for (let i = 0; i < bytes.length; i += 2) regs.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  return regs;
}
