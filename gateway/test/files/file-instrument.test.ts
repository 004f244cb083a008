// The folder watcher on a real folder: include and exclude globs, a file left in place (afterTaken: leave) taken
// once, a file that waits while the outbox has no room and is taken when there is, a file too large for one
// message quarantined with its reason. The gateway's side (outbox, uplink) is replaced by a recorder: the
// end-to-end behaviour with real processes is in server/test/e2e/result-files.test.ts.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from '@jest/globals';
import pino from 'pino';
import { fileProfileSchema } from '@labtrace/protocols';
import { FileInstrument, MAX_FILE_BYTES, type TakenFile } from '../../src/files/file-instrument.js';
import type { PolledSample } from '../../src/source.js';

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('globs, a file left in place taken once, a file waiting for room in the outbox, a file too large', async () => {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'labtrace-files-'));
  const profile = fileProfileSchema.parse({
    protocol: 'file',
    id: 'r-1',
    identity: { maker: 'ACME', model: 'R', serialNumber: '1' },
    folder,
    include: ['*.csv'],
    exclude: ['~*'],
    stableMs: 100,
    afterTaken: 'leave',
    parser: { format: 'csv' },
    points: [{ name: 'v', from: 'v', unit: 'V' }],
  });
  const taken: { file: TakenFile; samples: PolledSample[] }[] = [];
  const ledger = new Set<string>();
  let room = false;
  const source = new FileInstrument(profile, {
    logger: pino({ level: 'silent' }),
    isTaken: (sha) => ledger.has(sha),
    deliver: (file, samples) => {
      if (!room) return false;
      ledger.add(file.sha256);
      taken.push({ file, samples });
      return true;
    },
  });
  writeFileSync(path.join(folder, 'a.csv'), 'v\n1.5\n');
  writeFileSync(path.join(folder, '~a.csv'), 'v\n9\n');
  writeFileSync(path.join(folder, 'notes.txt'), 'v\n9\n');
  await source.start();
  try {
    await until('the outbox to be found full', () => (source.getHealth().errors['outbox_full'] ?? 0) >= 1);
    expect(taken).toHaveLength(0);
    room = true;
    await until('a.csv taken', () => taken.length === 1);
    expect(taken[0]?.file.name).toBe('a.csv');
    expect(taken[0]?.samples.map((s) => [s.value, s.unit])).toEqual([[1.5, 'V']]);
    // left in place, and not taken again when it is written again with the same content
    writeFileSync(path.join(folder, 'a.csv'), 'v\n1.5\n');
    writeFileSync(path.join(folder, 'b.csv'), 'v\n2\n');
    await until('b.csv taken', () => taken.length === 2);
    await until('the rewritten a.csv seen again', () => (source.getHealth().errors['duplicate_file'] ?? 0) >= 1);
    expect(taken.map((t) => t.file.name)).toEqual(['a.csv', 'b.csv']);
    expect(existsSync(path.join(folder, 'a.csv'))).toBe(true);

    writeFileSync(path.join(folder, 'huge.csv'), Buffer.alloc(MAX_FILE_BYTES + 1, 0x31));
    await until('huge.csv quarantined', () => existsSync(path.join(folder, 'quarantine', 'huge.csv.reason.txt')));
    expect(readFileSync(path.join(folder, 'quarantine', 'huge.csv.reason.txt'), 'utf8')).toMatch(/larger than the \d+ bytes a result file may have/);
    expect(source.getHealth()).toMatchObject({ connected: true, polls: 2, errors: { quarantined: 1 } });
    expect(taken.map((t) => t.file.name)).not.toContain('~a.csv');
    expect(existsSync(path.join(folder, '~a.csv')) && existsSync(path.join(folder, 'notes.txt'))).toBe(true);
  } finally {
    await source.stop();
  }
});

test('a file left in place and written again while it was being taken is taken again: the new result is not lost', async () => {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'labtrace-files-'));
  const profile = fileProfileSchema.parse({
    protocol: 'file',
    id: 'r-2',
    identity: { maker: 'ACME', model: 'R', serialNumber: '2' },
    folder,
    include: ['*.csv'],
    stableMs: 100,
    afterTaken: 'leave',
    parser: { format: 'csv' },
    points: [{ name: 'v', from: 'v', unit: 'V' }],
  });
  const values: unknown[] = [];
  const source = new FileInstrument(profile, {
    logger: pino({ level: 'silent' }),
    isTaken: () => false,
    deliver: (_file, samples) => {
      values.push(...samples.map((s) => s.value));
      // the instrument's software writes its next result into the same file while the first is being handed over
      if (values.length === 1) writeFileSync(path.join(folder, 'result.csv'), 'v\n2.25\n');
      return true;
    },
  });
  writeFileSync(path.join(folder, 'result.csv'), 'v\n1.5\n');
  await source.start();
  try {
    await until('both results taken', () => values.length === 2);
    expect(values).toEqual([1.5, 2.25]);
  } finally {
    await source.stop();
  }
});
