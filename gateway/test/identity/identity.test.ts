import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, test } from '@jest/globals';
import { parseVerifierKey, publicKeyFromSeed, signEd25519, verifyEd25519 } from '@labtrace/protocols';
import { createIdentity, loadIdentity } from '../../src/identity/identity.js';

const BIN = fileURLToPath(new URL('../../../../bin/labtrace.js', import.meta.url));
const run = promisify(execFile);
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'labtrace-id-'));

test('init makes a private key only its owner can read, and a public key that verifies its signatures', () => {
  const dir = tmp();
  const created = createIdentity('gw-1', dir);
  expect(statSync(created.keyFile).mode & 0o777).toBe(0o600);
  const key = loadIdentity(dir);
  expect(key.name).toBe('gw-1');
  const verifier = parseVerifierKey(created.verifierKey);
  expect(verifier.publicKey).toEqual(publicKeyFromSeed(key.seed));
  const message = new TextEncoder().encode('batch header');
  expect(verifyEd25519(signEd25519(message, key.seed), message, verifier.publicKey)).toBe(true);
  expect(readFileSync(path.join(dir, 'gateway.pub'), 'utf8').trim()).toBe(created.verifierKey);
});

test('an existing key is never replaced by accident, and a readable key file is refused', () => {
  const dir = tmp();
  createIdentity('gw-1', dir);
  expect(() => createIdentity('gw-1', dir)).toThrow(/already exists.*key rotation/);
  const again = createIdentity('gw-1', dir, true);
  expect(parseVerifierKey(again.verifierKey).name).toBe('gw-1');
  chmodSync(again.keyFile, 0o644);
  expect(() => loadIdentity(dir)).toThrow(/mode 644 lets others read the private key/);
  expect(() => loadIdentity(tmp())).toThrow(/run 'labtrace gateway init' first/);
});

test('labtrace gateway init needs no credentials yet, and prints the key to register', async () => {
  const dir = tmp();
  writeFileSync(
    path.join(dir, 'gateway.yaml'),
    `gateway: { id: gw-7, lab: l }\ndataDir: data\nmqtt: { url: 'mqtt://127.0.0.1:1', username: gw-7 }\ninstruments: [ { profile: none.yaml } ]\n`,
  );
  const { stdout } = await run(process.execPath, [BIN, 'gateway', 'init', '--config', path.join(dir, 'gateway.yaml')]);
  const line = stdout.trim().split('\n').pop() ?? '';
  expect(parseVerifierKey(line).name).toBe('gw-7');
  expect(statSync(path.join(dir, 'data', 'gateway.key')).mode & 0o777).toBe(0o600);
});
