// The export archive's reader for the browser (tar.ts), held to the system's tar (GNU tar writing POSIX pax/ustar
// archives): regular files, folders, a name longer than 100 bytes (ustar prefix) and one longer than 255 (a pax
// header); what is not a tar archive, a cut one and a bundle missing a file are refused, naming the problem.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { bundlesOfTar, readTar, TarError } from '../../src/verify/tar.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'labtrace-tar-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** a folder of files, archived by the system's tar in the given format */
function archive(files: Record<string, string | Uint8Array>, format: 'pax' | 'ustar' = 'pax'): Uint8Array {
  const dir = mkdtempSync(path.join(tmp, 'src-'));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), content);
  }
  const out = path.join(dir, '..', `${path.basename(dir)}.tar`);
  execFileSync('tar', [`--format=${format}`, '-cf', out, '-C', dir, ...new Set(Object.keys(files).map((f) => f.split('/')[0] ?? f))]);
  return new Uint8Array(readFileSync(out));
}

const BUNDLE = {
  'bundle.json': '{"format":"labtrace-bundle/v1"}\n',
  'checkpoint.txt': 'lab\n1\nAAAA\n\n— lab x\n',
  'keys.json': '{}\n',
  'batches.jsonl': '{"a":1}\n',
  'records.jsonl': '',
};

describe('readTar', () => {
  test('reads the files the system tar wrote, byte for byte, long names too', () => {
    const binary = new Uint8Array(1500).map((_, i) => (i * 7) % 256);
    const long = `${'a'.repeat(90)}/${'b'.repeat(60)}.txt`;
    const longer = `${'c'.repeat(120)}/${'d'.repeat(150)}.txt`;
    for (const format of ['pax', 'ustar'] as const) {
      const files: Record<string, string | Uint8Array> = { 'top/one.txt': 'one\n', 'top/bin.dat': binary, [long]: '中文 text\n' };
      if (format === 'pax') files[longer] = 'longer\n';
      const read = readTar(archive(files, format));
      const byName = new Map(read.map((f) => [f.name, f.bytes]));
      expect(new TextDecoder().decode(byName.get('top/one.txt'))).toBe('one\n');
      expect(byName.get('top/bin.dat')).toEqual(binary);
      expect(new TextDecoder().decode(byName.get(long))).toBe('中文 text\n');
      if (format === 'pax') expect(new TextDecoder().decode(byName.get(longer))).toBe('longer\n');
      expect(read).toHaveLength(Object.keys(files).length);
    }
  });

  test('refuses what is not a tar archive, a changed header and a cut archive', () => {
    expect(() => readTar(new TextEncoder().encode('{"hello": "world"}'))).toThrow(TarError);
    const good = archive({ 'x/f.txt': 'x'.repeat(2000) });
    const header = good.slice();
    header[10] = (header[10] ?? 0) ^ 1; // a byte of the first header's name
    expect(() => readTar(header)).toThrow(/wrong checksum/);
    expect(() => readTar(good.slice(0, 512 * 3))).toThrow(/cut short/);
  });
});

describe('bundlesOfTar', () => {
  test('one bundle per folder holding bundle.json, with its optional files', () => {
    const files: Record<string, string> = Object.fromEntries([
      ...Object.entries(BUNDLE).map(([k, v]) => [`run/gw-b/${k}`, v]),
      ...Object.entries(BUNDLE).map(([k, v]) => [`run/gw-a/${k}`, v]),
      ['run/gw-a/statement.txt', 'signed\n'],
    ]);
    const bundles = bundlesOfTar(archive(files));
    expect(bundles.map((b) => b.dir)).toEqual(['run/gw-a', 'run/gw-b']);
    expect(bundles[0]?.files).toEqual({
      ...{ bundle: BUNDLE['bundle.json'], checkpoint: BUNDLE['checkpoint.txt'] },
      keys: '{}\n',
      batches: '{"a":1}\n',
      records: '',
      recordsBytes: new Uint8Array(0),
      statement: 'signed\n',
    });
    expect(bundles[1]?.files.statement).toBeUndefined();
  });

  test('a bundle without one of its required files, or an archive without a bundle, is refused naming it', () => {
    const { ['keys.json']: _keys, ...withoutKeys } = BUNDLE;
    const incomplete: Record<string, string> = Object.fromEntries(Object.entries(withoutKeys).map(([k, v]) => [`b/${k}`, v]));
    expect(() => bundlesOfTar(archive(incomplete))).toThrow('b/keys.json: missing from the archive');
    expect(() => bundlesOfTar(archive({ 'b/other.txt': 'x' }))).toThrow(/no bundle/);
  });
});
