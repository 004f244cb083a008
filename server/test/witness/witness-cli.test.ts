// `labtrace witness` as a real process: keygen, then a witness run from witness.yaml that cosigns over HTTP.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from '@jest/globals';
import {
  addCosignatures,
  cosignatureVerifier,
  ed25519NoteSigner,
  formatAddCheckpoint,
  formatSignerKey,
  formatVerifierKey,
  leafHash,
  openCosignatures,
  publicKeyFromSeed,
  signCheckpoint,
  utf8,
} from '@labtrace/protocols';
import { collect, exitOf, runLabtrace } from '../helpers/lab-process.js';
import { freePort } from '../helpers/ports.js';

const ORIGIN = 'lab.example/log';
const LOG_SEED = new Uint8Array(32).fill(3);
const dirs: string[] = [];

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('labtrace witness', () => {
  test('keygen prints a cosigner key; the witness started with it cosigns a checkpoint and stops on SIGTERM', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-witness-cli-'));
    dirs.push(dir);
    const keygen = runLabtrace(['witness', 'keygen', '--name', 'regulator.example/w1']);
    const keygenOut = collect(keygen);
    expect(await exitOf(keygen)).toBe(0);
    const secret = /^PRIVATE\+KEY\+regulator\.example\/w1\+[0-9a-f]{8}\+\S+$/m.exec(keygenOut())?.[0];
    const vkey = /^public key: (\S+)$/m.exec(keygenOut())?.[1];
    if (secret === undefined || vkey === undefined) throw new Error(`keygen printed:\n${keygenOut()}`);
    writeFileSync(path.join(dir, 'witness.key'), `${secret}\n`, { mode: 0o600 });
    const port = await freePort();
    const logVkey = formatVerifierKey(ORIGIN, publicKeyFromSeed(LOG_SEED));
    writeFileSync(
      path.join(dir, 'witness.yaml'),
      `listen: { host: 127.0.0.1, port: ${port} }\ndatabase: state.db\nkeyFile: witness.key\nlogs:\n  - origin: ${ORIGIN}\n    keys: ["${logVkey}"]\n`,
    );
    const proc = runLabtrace(['witness', '--config', path.join(dir, 'witness.yaml')]);
    const output = collect(proc);
    try {
      const deadline = Date.now() + 30_000;
      while (!output().includes('witness: listening')) {
        if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`the witness did not start:\n${output()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const note = signCheckpoint({ origin: ORIGIN, size: 1, rootHash: leafHash(utf8('first')), extensions: [] }, [
        ed25519NoteSigner(formatSignerKey(ORIGIN, LOG_SEED)),
      ]);
      const res = await fetch(`http://127.0.0.1:${port}/add-checkpoint`, {
        method: 'POST',
        body: formatAddCheckpoint({ oldSize: 0, proof: [], note }),
      });
      expect(res.status).toBe(200);
      const cosigned = openCosignatures(addCosignatures(note, await res.text()), [cosignatureVerifier(vkey)]);
      expect(cosigned.cosignatures.map((c) => c.name)).toEqual(['regulator.example/w1']);
    } finally {
      proc.kill('SIGTERM');
    }
    expect(await exitOf(proc)).toBe(0);
  });

  test('a configuration without a key is refused with a message naming it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-witness-cli-'));
    dirs.push(dir);
    writeFileSync(
      path.join(dir, 'witness.yaml'),
      `logs:\n  - origin: ${ORIGIN}\n    keys: ["${formatVerifierKey(ORIGIN, publicKeyFromSeed(LOG_SEED))}"]\n`,
    );
    const proc = runLabtrace(['witness', '--config', path.join(dir, 'witness.yaml')], { LABTRACE_WITNESS_KEY: '' });
    const output = collect(proc);
    expect(await exitOf(proc)).toBe(1);
    expect(output()).toMatch(/keyFile: the witness needs a signing key/);
  });
});
