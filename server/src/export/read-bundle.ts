// Reads a bundle directory (bundle.ts writes it) into the verifier's input: the required files, and
// the optional ones (key events, export statement, boundaries) when present. A missing required file or
// an unreadable one throws, naming the file.
import { isAscii } from 'node:buffer';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { BundleFiles } from '@labtrace/protocols';

export function readText(file: string, optional: true): string | undefined;
export function readText(file: string, optional?: false): string;
export function readText(file: string, optional = false): string | undefined {
  try {
    // text that is all ASCII (a bundle labtrace writes) decoded as such: a one-byte string, without UTF-8's work
    const bytes = readFileSync(file);
    return isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
  } catch (err) {
    if (optional && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

export function readBundle(dir: string): BundleFiles {
  const at = (name: string): string => path.join(dir, name);
  const keyEvents = readText(at('key-events.jsonl'), true);
  const statement = readText(at('statement.txt'), true);
  const boundaries = readText(at('boundaries.json'), true);
  return {
    bundle: readText(at('bundle.json')),
    checkpoint: readText(at('checkpoint.txt')),
    keys: readText(at('keys.json')),
    batches: readText(at('batches.jsonl')),
    records: readText(at('records.jsonl')),
    ...(keyEvents === undefined ? {} : { keyEvents }),
    ...(statement === undefined ? {} : { statement }),
    ...(boundaries === undefined ? {} : { boundaries }),
  };
}
