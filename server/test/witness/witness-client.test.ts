import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import {
  consistencyProof,
  ed25519NoteSigner,
  formatCosignerSignerKey,
  formatCosignerVerifierKey,
  formatSignerKey,
  formatVerifierKey,
  leafHash,
  leafHashReader,
  parseCosignerSignerKey,
  publicKeyFromSeed,
  rootOf,
  signCheckpoint,
  utf8,
} from '@labtrace/protocols';
import { createLogger } from '../../src/log.js';
import { Witness } from '../../src/witness/witness.js';
import { WitnessClient } from '../../src/witness/witness-client.js';

const ORIGIN = 'lab.example/log';
const LOG_SEED = new Uint8Array(32).fill(5);
const logSigner = ed25519NoteSigner(formatSignerKey(ORIGIN, LOG_SEED));
const witnessKey = parseCosignerSignerKey(formatCosignerSignerKey('regulator.example/witness', new Uint8Array(32).fill(9)));

function log(prefix: string, size: number): { note: (n: number) => string; proof: (from: number, to: number) => Uint8Array[] } {
  const leaves = Array.from({ length: size }, (_, i) => leafHash(utf8(`${prefix} ${i}`)));
  return {
    note: (n) => signCheckpoint({ origin: ORIGIN, size: n, rootHash: rootOf(leaves.slice(0, n)), extensions: [] }, [logSigner]),
    proof: (from, to) => consistencyProof(from, to, leafHashReader(leaves)),
  };
}

let dir: string;
let witness: Witness;

beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'labtrace-witness-client-'));
  witness = new Witness(
    {
      key: witnessKey,
      database: path.join(dir, 'witness.db'),
      host: '127.0.0.1',
      port: 0,
      logs: [{ origin: ORIGIN, keys: [formatVerifierKey(ORIGIN, publicKeyFromSeed(LOG_SEED))] }],
      now: () => 1_760_000_123,
    },
    createLogger('witness', 'silent'),
  );
  await witness.start();
});

afterEach(async () => {
  await witness.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('WitnessClient against a witness over HTTP', () => {
  test('gets a checked cosignature for each new checkpoint, learning the witness size from a 409 first', async () => {
    const good = log('good', 12);
    await new WitnessClient({ url: witness.url, key: witness.verifierKey }).cosign(good.note(5), () => []);
    const client = new WitnessClient({ url: witness.url, key: witness.verifierKey }); // knows nothing: starts from 0
    const asked: number[] = [];
    const first = await client.cosign(good.note(9), (from) => {
      asked.push(from);
      return good.proof(from, 9);
    });
    expect(asked).toEqual([5]);
    expect(first.cosignature).toMatchObject({ name: 'regulator.example/witness', timestamp: 1_760_000_123 });
    expect(first.line.startsWith('\u2014 regulator.example/witness ')).toBe(true);
    await client.cosign(good.note(12), (from) => good.proof(from, 12));
    expect(witness.store.latest(ORIGIN)?.size).toBe(12);
  });

  test('a rewritten history of the cosigned size is refused with E_CONFLICT', async () => {
    const client = new WitnessClient({ url: witness.url, key: witness.verifierKey });
    await client.cosign(log('good', 6).note(6), () => []);
    const rewritten = log('rewritten', 6);
    await expect(client.cosign(rewritten.note(6), () => [])).rejects.toMatchObject({ code: 'E_CONFLICT' });
  });

  test('an answer that is not a cosignature by the configured key fails with E_AUTH', async () => {
    const otherKey = formatCosignerVerifierKey('regulator.example/witness', publicKeyFromSeed(new Uint8Array(32).fill(8)));
    const client = new WitnessClient({ url: witness.url, key: otherKey });
    await expect(client.cosign(log('good', 2).note(2), () => [])).rejects.toMatchObject({ code: 'E_AUTH' });
  });

  test('a witness that is down fails with E_WITNESS_UNAVAILABLE', async () => {
    const url = witness.url;
    await witness.stop();
    const client = new WitnessClient({ url, key: witness.verifierKey }, { timeoutMs: 2000 });
    await expect(client.cosign(log('good', 2).note(2), () => [])).rejects.toMatchObject({ code: 'E_WITNESS_UNAVAILABLE' });
    await witness.start();
  });
});
