// A lab server and its witnesses, all real HTTP servers: each new checkpoint is cosigned in the background, served
// with its cosignatures and carried by export bundles; a witness that is down holds back only its own cosignatures
// and catches up with a consistency proof when it is back; and `labtrace verify` holds a bundle to a witness policy.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import {
  cosignatureVerifier,
  ed25519NoteVerifier,
  formatCosignerSignerKey,
  formatSignerKey,
  formatVerifierKey,
  openCheckpoint,
  openCosignatures,
  parseCheckpoint,
  parseCosignerSignerKey,
  parseNote,
  publicKeyFromSeed,
  verifyBundle,
} from '@labtrace/protocols';
import { readBundle } from '../../src/export/read-bundle.js';
import { createLogger } from '../../src/log.js';
import { exportBundle } from '../../src/export/bundle.js';
import { Witness } from '../../src/witness/witness.js';
import { collect, exitOf, runLabtrace } from '../helpers/lab-process.js';
import { records, send, startServer, TestGateway, waitFor, type TestServer } from '../helpers/server.js';

const ORIGIN = 'labtrace/lab-t';
const LOG_SEED = new Uint8Array(32).fill(7);
const LOG_VKEY = formatVerifierKey(ORIGIN, publicKeyFromSeed(LOG_SEED));
const T0 = 1_800_000_000_000;

const tmp = mkdtempSync(path.join(tmpdir(), 'labtrace-lab-witnesses-'));
const witnessKeys = ['a', 'b', 'c'].map((n, i) =>
  parseCosignerSignerKey(formatCosignerSignerKey(`regulator.example/w-${n}`, new Uint8Array(32).fill(20 + i))),
);
const witnesses: Witness[] = [];
let t: TestServer;
let gw: TestGateway;
let batch = 0;

function startWitness(i: number, port = 0): Promise<Witness> {
  const key = witnessKeys[i];
  if (key === undefined) throw new Error(`no witness key ${i}`);
  const witness = new Witness(
    { key, database: path.join(tmp, `witness-${i}.db`), host: '127.0.0.1', port, logs: [{ origin: ORIGIN, keys: [LOG_VKEY] }] },
    createLogger('witness', 'silent'),
  );
  return witness.start().then(() => witness);
}

/** the log key file the lab signs with (the witnesses know its public key beforehand) */
function logKeyFile(): string {
  const file = path.join(tmp, 'log.key');
  writeFileSync(file, `${formatSignerKey(ORIGIN, LOG_SEED)}\n`, { mode: 0o600 });
  return file;
}

const latestSize = (): number => t.server.log?.latestCheckpoint().size ?? -1;
/** the size witness i last cosigned (-1 while it is stopped) */
const cosignedSize = (i: number): number => {
  try {
    return witnesses[i]?.store.latest(ORIGIN)?.size ?? -1;
  } catch {
    return -1;
  }
};
const verifiers = () => witnesses.map((w) => cosignatureVerifier(w.verifierKey));

async function ingest(n = 1): Promise<void> {
  for (let i = 0; i < n; i++) {
    expect(await send(t, gw, gw.seal(records('wit-1', batch * 4, 4, batch + 0.5)))).toBe('acked');
    batch++;
  }
}

async function verifyCli(args: string[]): Promise<{ code: number | null; output: string }> {
  const proc = runLabtrace(['verify', ...args]);
  const output = collect(proc);
  const code = await exitOf(proc);
  return { code, output: output() };
}

beforeAll(async () => {
  for (let i = 0; i < 3; i++) witnesses.push(await startWitness(i));
  t = await startServer({
    log: {
      origin: ORIGIN,
      keyFile: logKeyFile(),
      minCheckpointIntervalMs: 100,
      witnessMaxBackoffMs: 2000,
      witnesses: witnesses.map((w) => ({ url: w.url, key: w.verifierKey })),
    },
  });
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('wit-1');
}, 30_000);

afterAll(async () => {
  await gw.end();
  await t.stop();
  for (const w of witnesses) await w.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('a lab server with three witnesses', () => {
  test('each new checkpoint is cosigned by all three and served with their cosignatures, also at ?size=N', async () => {
    await ingest(2);
    await waitFor(
      'three witnesses cosigning the latest checkpoint',
      () => latestSize() > 0 && [0, 1, 2].every((i) => cosignedSize(i) === latestSize()),
    );
    const size = latestSize();
    const note = await (await t.fetch('/api/log/checkpoint', {}, null)).text();
    // a verifier that knows only the log key still accepts it (the cosignature lines are ignored)
    expect(openCheckpoint(note, [ed25519NoteVerifier(LOG_VKEY)], { origin: ORIGIN }).checkpoint.size).toBe(size);
    expect(parseNote(note).signatures).toHaveLength(4);
    expect(
      openCosignatures(note, verifiers())
        .cosignatures.map((c) => c.name)
        .sort(),
    ).toEqual(['regulator.example/w-a', 'regulator.example/w-b', 'regulator.example/w-c']);
    const atSize = await (await t.fetch(`/api/log/checkpoint?size=${size}`, {}, null)).text();
    expect(atSize).toBe(note);
    const state = (await (await t.fetch('/api/log/witnesses', {}, 'auditor')).json()) as {
      witnesses: { name: string; cosigned: { size: number } | null; submitting: boolean }[];
    };
    expect(state.witnesses.map((w) => [w.name, w.cosigned?.size, w.submitting])).toEqual([
      ['regulator.example/w-a', size, true],
      ['regulator.example/w-b', size, true],
      ['regulator.example/w-c', size, true],
    ]);
    expect((await t.fetch('/api/log/witnesses', {}, null)).status).toBe(401);
    expect((await t.fetch('/api/log/witnesses', {}, 'client')).status).toBe(403);
  });

  test('with one witness down ingest goes on and the two others cosign; back, it catches up with a consistency proof', async () => {
    const down = witnesses[2];
    if (down === undefined) throw new Error('no third witness');
    const port = Number(new URL(down.url).port);
    const before = cosignedSize(2);
    await down.stop();
    expect(before).toBeGreaterThan(0);
    await ingest(3);
    await waitFor(
      'two witnesses cosigning the newest checkpoint',
      () => latestSize() > before && [0, 1].every((i) => cosignedSize(i) === latestSize()),
    );
    await waitFor('the failure of the third witness reported', async () => {
      const state = (await (await t.fetch('/api/log/witnesses', {}, 'auditor')).json()) as {
        witnesses: { lastError: { code: string } | null; cosigned: { size: number } | null }[];
      };
      return state.witnesses[2]?.lastError?.code === 'E_WITNESS_UNAVAILABLE' && state.witnesses[2].cosigned?.size === before;
    });
    const note = await (await t.fetch('/api/log/checkpoint', {}, null)).text();
    expect(openCosignatures(note, verifiers()).cosignatures.map((c) => c.name)).not.toContain('regulator.example/w-c');

    // the bundle of this checkpoint carries the two cosignatures: `labtrace verify` with a 2-of-3 policy accepts it
    const dir = path.join(tmp, 'bundle');
    const log = t.server.log;
    if (log === undefined) throw new Error('no log');
    await exportBundle(t.server.database, log, { outDir: dir, gateway: 'gw-a', from: T0 - 60_000_000, to: T0 + 60_000_000 });
    const bundled = readFileSync(path.join(dir, 'checkpoint.txt'), 'utf8');
    expect(openCosignatures(bundled, verifiers()).cosignatures).toHaveLength(2);
    const policy = (required?: number): string[] => [
      ...witnesses.flatMap((w) => ['--witness', w.verifierKey]),
      ...(required === undefined ? [] : ['--witnesses-required', String(required)]),
    ];
    const two = await verifyCli([dir, '--log-key', LOG_VKEY, ...policy(2), '--json']);
    expect(two.code).toBe(0);
    expect((JSON.parse(two.output) as { witnesses: { cosignedBy: unknown[] } }).witnesses.cosignedBy).toHaveLength(2);
    // the default requires every witness named
    const all = await verifyCli([dir, '--log-key', LOG_VKEY, ...policy(), '--json']);
    expect(all.code).toBe(1);
    expect((JSON.parse(all.output) as { problems: { kind: string }[] }).problems.map((p) => p.kind)).toEqual(['witnesses-required']);
    // a named witness's cosignature altered in one byte: a problem of its own, and it does not count
    const files = readBundle(dir);
    const altered = bundled.replace(
      /(\u2014 regulator\.example\/w-b \S{20})(\S)/u,
      (_m, head: string, c: string) => `${head}${c === 'A' ? 'B' : 'A'}`,
    );
    expect(altered).not.toBe(bundled);
    const report = verifyBundle(
      { ...files, checkpoint: altered },
      { logKey: LOG_VKEY, witnesses: { keys: witnesses.map((w) => w.verifierKey), required: 1 } },
    );
    expect(report.problems.map((p) => p.kind)).toEqual(['witness-cosignature']);
    expect(report.witnesses?.cosignedBy.map((c) => c.name)).toEqual(['regulator.example/w-a']);
    // one cosignature line stripped: cosigned by one of three, refused
    const lines = bundled.split('\n');
    const cosigLine = lines.findIndex((l) => l.startsWith('\u2014 regulator.example/w-a '));
    expect(cosigLine).toBeGreaterThan(0);
    writeFileSync(path.join(dir, 'checkpoint.txt'), lines.filter((_, i) => i !== cosigLine).join('\n'));
    const one = await verifyCli([dir, '--log-key', LOG_VKEY, ...policy(2)]);
    expect(one.code).toBe(1);
    expect(one.output).toContain('cosigned by 1 of the 3 named witnesses, 2 required');

    // back on its port with its store: it gets the newest checkpoint with a proof from the size it cosigned
    witnesses[2] = await startWitness(2, port);
    await waitFor('the third witness catching up', () => cosignedSize(2) === latestSize(), 90_000);
    expect(cosignedSize(2)).toBeGreaterThan(before);
    expect(witnesses[2].store.evidence(ORIGIN)).toEqual([]);
    await waitFor('the served checkpoint cosigned by all three again', async () => {
      const served = await (await t.fetch('/api/log/checkpoint', {}, null)).text();
      return parseCheckpoint(parseNote(served).text).size > before && openCosignatures(served, verifiers()).cosignatures.length === 3;
    });
  }, 120_000);

  test('bad witness arguments are refused naming the argument', async () => {
    const dir = path.join(tmp, 'bundle');
    const bad = await verifyCli([dir, '--witness', LOG_VKEY]);
    expect(bad.code).toBe(2);
    expect(bad.output).toContain('--witness');
    expect(bad.output).toContain('not a witness cosigner key');
    const tooMany = await verifyCli([dir, ...witnesses.flatMap((w) => ['--witness', w.verifierKey]), '--witnesses-required', '4']);
    expect(tooMany.code).toBe(2);
    expect(tooMany.output).toContain('--witnesses-required "4": expected a whole number from 1 to 3');
    const alone = await verifyCli([dir, '--witnesses-required', '1']);
    expect(alone.code).toBe(2);
    expect(alone.output).toContain('--witnesses-required: given without any --witness key');
  });
});
