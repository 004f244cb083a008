import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { formatCosignerSignerKey, formatSignerKey, formatVerifierKey, publicKeyFromSeed } from '@labtrace/protocols';
import { loadWitnessConfig } from '../../src/witness/config.js';

const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-witness-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const vkey = formatVerifierKey('lab.example/log', publicKeyFromSeed(new Uint8Array(32).fill(1)));
const witnessKey = formatCosignerSignerKey('regulator.example/w1', new Uint8Array(32).fill(2));

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('witness.yaml', () => {
  test('reads the logs, resolves the database and key file beside the configuration, with defaults for listen', async () => {
    write('w.key', `${witnessKey}\n`);
    const file = write('ok.yaml', `keyFile: w.key\nlogs:\n  - origin: lab.example/log\n    keys: ["${vkey}"]\n`);
    const config = await loadWitnessConfig(file, {});
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 7380,
      database: path.join(dir, 'witness.db'),
      logs: [{ origin: 'lab.example/log', keys: [vkey] }],
    });
    expect(config.key.name).toBe('regulator.example/w1');
  });

  test('LABTRACE_WITNESS_KEY takes the place of keyFile', async () => {
    const file = write('env.yaml', `logs:\n  - origin: lab.example/log\n    keys: ["${vkey}"]\n`);
    expect((await loadWitnessConfig(file, { LABTRACE_WITNESS_KEY: witnessKey })).key.name).toBe('regulator.example/w1');
  });

  test.each([
    ['a log key that is not a verifier key', `logs:\n  - origin: a\n    keys: ["nope"]\n`, /logs\[0\]\.keys\[0\]: a verifier key/],
    ['a log listed twice', `logs:\n  - origin: a\n    keys: ["${vkey}"]\n  - origin: a\n    keys: ["${vkey}"]\n`, /listed twice/],
    ['no logs', `logs: []\n`, /logs/],
    ['an unknown field', `logz: 1\nlogs:\n  - origin: a\n    keys: ["${vkey}"]\n`, /logz/],
  ])('refuses %s, naming the place', async (_what, text, message) => {
    await expect(loadWitnessConfig(write('bad.yaml', text), { LABTRACE_WITNESS_KEY: witnessKey })).rejects.toThrow(message);
  });

  test('refuses a note signing key (type 0x01) as the witness key', async () => {
    const file = write('notekey.yaml', `logs:\n  - origin: a\n    keys: ["${vkey}"]\n`);
    const noteKey = formatSignerKey('regulator.example/w1', new Uint8Array(32).fill(2));
    await expect(loadWitnessConfig(file, { LABTRACE_WITNESS_KEY: noteKey })).rejects.toThrow(/keyFile: .*type byte 0x04/);
  });
});
