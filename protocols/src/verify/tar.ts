// Reading an export bundle's tar archive (GET /api/runs/:id/export, GET /api/export) where there is no `tar`
// command: in the auditor's browser. POSIX ustar (IEEE Std 1003.1-2001 pax interchange format): 512-byte headers,
// the name's prefix field, pax extended headers ('x': a long path) and global ones ('g', ignored), regular files
// and directories. Anything else (links, devices) is refused: a bundle holds none.
import type { BundleFiles } from './verifier.js';

export interface TarFile {
  name: string;
  bytes: Uint8Array;
}

export class TarError extends Error {}

const BLOCK = 512;
const decoder = new TextDecoder();

function text(block: Uint8Array, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return decoder.decode(end < 0 ? field : field.subarray(0, end));
}

function octal(block: Uint8Array, offset: number, length: number, what: string): number {
  const field = text(block, offset, length).trim();
  if (!/^[0-7]*$/.test(field)) throw new TarError(`a tar header's ${what} is not an octal number`);
  return field === '' ? 0 : parseInt(field, 8);
}

/** the `path` record of a pax extended header, if any ("<length> path=<value>\n" records) */
function paxPath(data: Uint8Array): string | undefined {
  const records = decoder.decode(data);
  let i = 0;
  while (i < records.length) {
    const space = records.indexOf(' ', i);
    const length = Number(records.slice(i, space));
    if (space < 0 || !Number.isSafeInteger(length) || length <= 0) throw new TarError('a pax header record does not read');
    const record = records.slice(space + 1, i + length - 1);
    if (record.startsWith('path=')) return record.slice(5);
    i += length;
  }
  return undefined;
}

/** The regular files of a tar archive, in the archive's order; throws TarError for what is not a tar archive. */
export function readTar(archive: Uint8Array): TarFile[] {
  const files: TarFile[] = [];
  let offset = 0;
  let longName: string | undefined;
  while (offset + BLOCK <= archive.length) {
    const header = archive.subarray(offset, offset + BLOCK);
    if (header.every((b) => b === 0)) return files; // the end-of-archive blocks
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : (header[i] ?? 0);
    if (sum !== octal(header, 148, 8, 'checksum')) throw new TarError(`not a tar archive (the header at byte ${offset} has a wrong checksum)`);
    const size = octal(header, 124, 12, 'size');
    const type = String.fromCharCode(header[156] ?? 0);
    const dataStart = offset + BLOCK;
    if (dataStart + size > archive.length) throw new TarError('the tar archive is cut short');
    const data = archive.subarray(dataStart, dataStart + size);
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    const prefix = text(header, 345, 155);
    const name = longName ?? (prefix === '' ? text(header, 0, 100) : `${prefix}/${text(header, 0, 100)}`);
    if (type === 'x') {
      longName = paxPath(data);
      continue;
    }
    longName = undefined;
    if (type === 'g' || type === '5') continue;
    if (type !== '0' && type !== '\0') throw new TarError(`the tar archive holds ${name}, which is not a regular file`);
    files.push({ name, bytes: data });
  }
  if (offset === 0) throw new TarError('not a tar archive (too short)');
  // no end-of-archive block: the archive stops after a whole entry, but more may have followed
  throw new TarError('the tar archive is cut short (it has no end-of-archive block)');
}

/** one bundle of an archive: its folder (a run on several gateways has one folder per gateway) and its files */
export interface ArchivedBundle {
  dir: string;
  files: BundleFiles;
}

const REQUIRED = ['bundle.json', 'checkpoint.txt', 'keys.json', 'batches.jsonl', 'records.jsonl'] as const;

/**
 * The bundles of an export archive, as `labtrace verify` reads a bundle folder (server/src/export/read-bundle.ts):
 * every folder holding a bundle.json, with its required and optional files. A folder missing a required file throws,
 * naming it.
 */
export function bundlesOfTar(archive: Uint8Array): ArchivedBundle[] {
  const byDir = new Map<string, Map<string, Uint8Array>>();
  for (const f of readTar(archive)) {
    const slash = f.name.lastIndexOf('/');
    const dir = slash < 0 ? '' : f.name.slice(0, slash);
    const base = f.name.slice(slash + 1);
    const folder = byDir.get(dir) ?? new Map<string, Uint8Array>();
    folder.set(base, f.bytes);
    byDir.set(dir, folder);
  }
  const bundles: ArchivedBundle[] = [];
  for (const [dir, folder] of byDir) {
    if (!folder.has('bundle.json')) continue;
    for (const name of REQUIRED) if (!folder.has(name)) throw new TarError(`${dir === '' ? '' : `${dir}/`}${name}: missing from the archive`);
    const optional = (name: string): string | undefined => {
      const bytes = folder.get(name);
      return bytes === undefined ? undefined : decoder.decode(bytes);
    };
    const recordsBytes = folder.get('records.jsonl') ?? new Uint8Array(0);
    const keyEvents = optional('key-events.jsonl');
    const statement = optional('statement.txt');
    const boundaries = optional('boundaries.json');
    bundles.push({
      dir,
      files: {
        bundle: optional('bundle.json') ?? '',
        checkpoint: optional('checkpoint.txt') ?? '',
        keys: optional('keys.json') ?? '',
        batches: optional('batches.jsonl') ?? '',
        // the readable copy, as large as the rest: the verifier reads its bytes; its text only when asked for
        get records(): string {
          return decoder.decode(recordsBytes);
        },
        recordsBytes,
        ...(keyEvents === undefined ? {} : { keyEvents }),
        ...(statement === undefined ? {} : { statement }),
        ...(boundaries === undefined ? {} : { boundaries }),
      },
    });
  }
  if (bundles.length === 0) throw new TarError('the archive holds no bundle (no bundle.json)');
  return bundles.sort((a, b) => a.dir.localeCompare(b.dir));
}
