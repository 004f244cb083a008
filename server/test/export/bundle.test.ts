// Export bundles: a real server stores signed batches, the bundle of them verifies offline, and every kind of
// tampering with a copy of it fails with the right reason and place. Also the command line's exit codes.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import {
  ed25519NoteSigner,
  formatSignerKey,
  formatVerifierKey,
  fromBase64,
  parseCheckpoint,
  parseNote,
  parseSignerKey,
  publicKeyFromSeed,
  readRecord,
  sha256,
  signCheckpoint,
  toBase64,
  signNote,
  verifyBundle,
  type BundleFiles,
  type ProblemKind,
  type VerifyReport,
} from '@labtrace/protocols';
import { verifyBundleWithWebCrypto, type SubtleEd25519 } from '@labtrace/protocols/verify';
import { exportBundle } from '../../src/export/bundle.js';
import { readBundle } from '../../src/export/read-bundle.js';
import { collect, exitOf, runLabtrace } from '../helpers/lab-process.js';
import { records, send, startServer, TestGateway, waitFor, type TestServer } from '../helpers/server.js';

const BATCHES = 6;
const PER_BATCH = 4;
const T0 = 1_800_000_000_000;
/** when gw-a's key was revoked (server time), after every batch */
let revokedAt = 0;

let t: TestServer;
let gw: TestGateway;
let dir: string;
let files: BundleFiles;
let saved: string;
/** a bundle of batches 1..4 only: batch 0 and batch 5 are its boundary witnesses */
let inner: BundleFiles;
let innerDir: string;
const tmp = mkdtempSync(path.join(tmpdir(), 'labtrace-bundle-'));

const covered = (size: number): boolean => Number(t.server.log?.latestCheckpoint().note.split('\n')[1]) >= size;

beforeAll(async () => {
  t = await startServer({ log: { minCheckpointIntervalMs: 100 } });
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('exp-1');
  for (let b = 0; b < BATCHES; b++) {
    expect(await send(t, gw, gw.seal(records('exp-1', b * PER_BATCH, PER_BATCH, b + 0.5)))).toBe('acked');
    if (b === 1) {
      // the auditor saves a checkpoint of the log as it was then
      const size = t.server.log?.size ?? 0;
      await waitFor('a checkpoint of the first batches', () => covered(size));
      saved = t.server.log?.latestCheckpoint().note ?? '';
    }
  }
  // the key is revoked after every batch (a time ahead means from now): the revocation is a logged key event the
  // bundle carries, beside the key's registration from the server config
  const key = t.server.keys.activeKey('gw-a');
  if (key === undefined) throw new Error('gw-a has no active key');
  revokedAt = (await t.server.keys.revoke('gw-a', key.keyId, T0 + 10_000_000, 'taken out of service')).validUntil ?? 0;
  expect(revokedAt).toBeLessThanOrEqual(Date.now());
  await t.server.logKeyEvents();
  const size = t.server.log?.size ?? 0;
  await waitFor('a checkpoint covering every batch and the revocation', () => covered(size));
  dir = path.join(tmp, 'bundle');
  const log = t.server.log;
  if (log === undefined) throw new Error('the test server has no log');
  const counts = await exportBundle(t.server.database, log, { outDir: dir, gateway: 'gw-a', from: T0, to: T0 + 1_000_000 });
  expect(counts).toEqual({ batches: BATCHES, records: BATCHES * PER_BATCH });
  files = readBundle(dir);
  innerDir = path.join(tmp, 'inner');
  // batch b holds the records at T0 + 4b .. T0 + 4b + 3
  expect(await exportBundle(t.server.database, log, { outDir: innerDir, gateway: 'gw-a', from: T0 + PER_BATCH, to: T0 + 5 * PER_BATCH - 1 })).toEqual(
    {
      batches: 4,
      records: 4 * PER_BATCH,
    },
  );
  inner = readBundle(innerDir);
});

afterAll(async () => {
  await gw.end();
  await t.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const kinds = (report: VerifyReport): ProblemKind[] => [...new Set(report.problems.map((p) => p.kind))].sort();
const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '');
const jsonl = (rows: string[]): string => `${rows.join('\n')}\n`;

interface BatchLine {
  header: { batch: number; firstSeq: number; count: number; tsMax: number; root: string };
  signature: string;
  records: string;
  logIndex: number;
  logProof: string[];
}

/** The record slices (0x00 || record) of a batch line's records. */
function slices(line: BatchLine): Uint8Array[] {
  const bytes = fromBase64(line.records);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length;) {
    const { end } = readRecord(bytes, view, at + 1);
    out.push(bytes.slice(at, end));
    at = end;
  }
  return out;
}

function withBatch(index: number, change: (line: BatchLine) => void): BundleFiles {
  const rows = lines(files.batches);
  const line = JSON.parse(rows[index] ?? '') as BatchLine;
  change(line);
  rows[index] = JSON.stringify(line);
  return { ...files, batches: jsonl(rows) };
}

function join(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

test('the bundle of a real server verifies: checkpoint, signatures, roots, log inclusion, sequence, readable records', () => {
  const bundle = JSON.parse(files.bundle) as { format: string; origin: string; selection: { gateway: string }; consistency: { from: number }[] };
  expect(bundle.format).toBe('labtrace-bundle/v1');
  expect(bundle.origin).toBe('labtrace/lab-t');
  expect(bundle.selection.gateway).toBe('gw-a');
  expect(lines(files.records)).toHaveLength(BATCHES * PER_BATCH);
  expect(JSON.parse(lines(files.records)[5] ?? '')).toEqual({
    gateway: 'gw-a',
    seq: 5,
    instrument: 'exp-1',
    channel: 'c',
    ts: T0 + 5,
    value: 1.5,
    unit: '',
    quality: 'good',
    batch: 1,
  });
  const report = verifyBundle(files, {});
  expect(report.problems).toEqual([]);
  expect(report.ok).toBe(true);
  expect(report.status).toBe('verified');
  expect(report.checkpoint).toMatchObject({ origin: 'labtrace/lab-t', signatureVerified: true });
  expect(report.gateways).toEqual([
    { gateway: 'gw-a', batches: BATCHES, records: BATCHES * PER_BATCH, ranges: [{ first: 0, last: 23 }], declaredJumps: [] },
  ]);
  expect(report.counts).toMatchObject({ batches: BATCHES, records: BATCHES * PER_BATCH, signaturesVerified: BATCHES, rootsVerified: BATCHES });
  expect(report.trust.gatewayKeys.map((k) => k.gateway)).toEqual(['gw-a']);
  expect(report.trust.logKey).toBe(t.server.log?.verifierKey());
  // a checkpoint the auditor saved earlier: the bundle's extends it
  expect(bundle.consistency.map((c) => c.from)).toContain(Number(saved.split('\n')[1]));
  const withSaved = verifyBundle(files, { savedCheckpoint: saved });
  expect(withSaved.ok).toBe(true);
  expect(withSaved.savedCheckpoint).toMatchObject({ consistent: true });
  // the log key pinned by the auditor
  expect(verifyBundle(files, { logKey: t.server.log?.verifierKey() ?? '' }).ok).toBe(true);
});

test('a lone surrogate in any string of a batch line, keys.json, bundle.json or a readable record: reported on, never thrown at', () => {
  const stringPaths = (v: unknown, at: (string | number)[] = []): (string | number)[][] =>
    typeof v === 'string'
      ? [at]
      : Array.isArray(v)
        ? v.flatMap((x, i) => stringPaths(x, [...at, i]))
        : typeof v === 'object' && v !== null
          ? Object.entries(v).flatMap(([k, x]) => stringPaths(x, [...at, k]))
          : [];
  const withLone = (doc: unknown, at: (string | number)[]): string => {
    const copy = structuredClone(doc) as Record<string | number, unknown>;
    let parent = copy;
    for (const k of at.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
    const last = at[at.length - 1] as string | number;
    parent[last] = `${String(parent[last])}\ud800`;
    // JSON.stringify writes the lone surrogate as a \u escape, which JSON.parse reads back as one
    return JSON.stringify(copy);
  };
  const cases: { file: string; files: BundleFiles }[] = [];
  const line = JSON.parse(lines(files.batches)[1] ?? '') as BatchLine;
  for (const at of stringPaths(line))
    cases.push({ file: `batches ${at.join('.')}`, files: withBatch(1, (l) => void Object.assign(l, JSON.parse(withLone(line, at)) as BatchLine)) });
  const keys = JSON.parse(files.keys) as unknown;
  // a key's reason (a person's words on why it was revoked) is shown as it stands, held to nothing
  for (const at of stringPaths(keys).filter((p) => p[p.length - 1] !== 'reason'))
    cases.push({ file: `keys ${at.join('.')}`, files: { ...files, keys: withLone(keys, at) } });
  const bundle = JSON.parse(files.bundle) as unknown;
  // bundle.json is not signed: of its strings, the format and the log's name are held to something
  for (const at of stringPaths(bundle).filter((p) => p[0] === 'format' || p[0] === 'origin'))
    cases.push({ file: `bundle ${at.join('.')}`, files: { ...files, bundle: withLone(bundle, at) } });
  const rows = lines(files.records);
  const record = JSON.parse(rows[2] ?? '') as unknown;
  for (const at of stringPaths(record)) {
    const changed = [...rows];
    changed[2] = withLone(record, at);
    cases.push({ file: `records ${at.join('.')}`, files: { ...files, records: jsonl(changed) } });
  }
  expect(cases.filter((c) => c.file.startsWith('batches header')).length).toBeGreaterThan(3);
  for (const c of cases) {
    let report: ReturnType<typeof verifyBundle> | undefined;
    expect(() => (report = verifyBundle(c.files, {}))).not.toThrow();
    expect([c.file, report?.ok]).toEqual([c.file, false]);
  }
});

test('one flipped bit in the value of a record: the batch root does not match', () => {
  const mutated = withBatch(0, (line) => {
    const parts = slices(line);
    const first = parts[0] ?? new Uint8Array(0);
    // the record ends with the value (8 bytes), unit, quality and reason flag: a low bit of the value
    first[first.length - 6] = (first[first.length - 6] ?? 0) ^ 1;
    line.records = toBase64(join(parts));
  });
  const report = verifyBundle(mutated, {});
  expect(report.ok).toBe(false);
  const root = report.problems.find((p) => p.kind === 'root-mismatch');
  expect(root?.where).toMatch(/batches\.jsonl line 1 \(batch 0 of gw-a, seq 0\.\.3\)/);
  expect(root?.claimed).toBe((JSON.parse(lines(files.batches)[0] ?? '') as BatchLine).header.root);
  expect(root?.computed).not.toBe(root?.claimed);
  // the readable copy no longer says what the (altered) bytes say either
  expect(report.problems.find((p) => p.kind === 'readable-mismatch')).toMatchObject({
    message: 'value differs from the signed record',
    claimed: 0.5,
  });
  expect(kinds(report)).toEqual(['readable-mismatch', 'root-mismatch']);
});

test("one changed byte in any hash of a later batch's inclusion proof, whose path the earlier batches share: named at that batch", () => {
  for (const index of [BATCHES - 1, 3]) {
    const honest = JSON.parse(lines(files.batches)[index] ?? '') as BatchLine;
    expect(honest.logProof.length).toBeGreaterThan(1);
    for (let k = 0; k < honest.logProof.length; k++) {
      const mutated = withBatch(index, (line) => {
        const node = fromBase64(line.logProof[k] ?? '');
        node[k % 32] = (node[k % 32] ?? 0) ^ 1;
        line.logProof[k] = toBase64(node);
      });
      const report = verifyBundle(mutated, {});
      expect(report.ok).toBe(false);
      expect(kinds(report)).toEqual(['log-inclusion']);
      expect(report.problems).toHaveLength(1);
      const problem = report.problems[0];
      expect(problem?.where).toBe(
        `batches.jsonl line ${index + 1} (batch ${honest.header.batch} of gw-a, seq ${honest.header.firstSeq}..${honest.header.firstSeq + honest.header.count - 1})`,
      );
      expect(problem?.message).toBe(`the header's inclusion proof at log index ${honest.logIndex} leads to another root than the checkpoint's`);
      expect(problem?.claimed).toBe(
        parseCheckpoint(parseNote(files.checkpoint).text).rootHash.reduce((h, b) => h + b.toString(16).padStart(2, '0'), ''),
      );
      expect(problem?.computed).not.toBe(problem?.claimed);
      expect(report.counts.inclusionsVerified).toBe(verifyBundle(files, {}).counts.inclusionsVerified - 1);
    }
    // a hash dropped or added: the proof's length is named
    for (const change of [(p: string[]) => p.slice(1), (p: string[]) => [...p, p[0] ?? '']]) {
      const report = verifyBundle(
        withBatch(index, (line) => {
          line.logProof = change(line.logProof);
        }),
        {},
      );
      expect(kinds(report)).toEqual(['log-inclusion']);
      expect(report.problems[0]?.message).toMatch(/^the header's inclusion proof at log index \d+ does not verify: .*too (few|many)/);
    }
  }
});

test('record bytes in base64 that is not strict (a stray character, no padding, unused bits set): the input is unusable', () => {
  const original = (JSON.parse(lines(files.batches)[1] ?? '') as BatchLine).records;
  const tail = original.endsWith('==') ? 3 : original.endsWith('=') ? 2 : 0;
  expect(tail).toBeGreaterThan(0); // the records of a batch here are not a multiple of 3 bytes
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const last = original.length - tail;
  // the same bytes, with a bit set that padding leaves unused: a lenient decoder would accept it
  const looser = `${original.slice(0, last)}${alphabet[alphabet.indexOf(original[last] ?? 'A') | 1]}${original.slice(last + 1)}`;
  for (const records of [`${original.slice(0, 8)}*${original.slice(9)}`, original.replace(/=+$/, ''), looser]) {
    const report = verifyBundle(
      withBatch(1, (line) => {
        line.records = records;
      }),
      {},
    );
    expect(report.status).toBe('unusable');
    expect(report.problems[0]).toMatchObject({ kind: 'unusable', where: 'batches.jsonl line 2 (batch 1 of gw-a, seq 4..7): records' });
  }
});

test('a value changed in records.jsonl only: the readable copy disagrees with the signed bytes', () => {
  const rows = lines(files.records);
  const row = JSON.parse(rows[6] ?? '') as { value: number };
  row.value = 42;
  rows[6] = JSON.stringify(row);
  const report = verifyBundle({ ...files, records: jsonl(rows) }, {});
  expect(report.ok).toBe(false);
  expect(report.problems).toEqual([
    {
      kind: 'readable-mismatch',
      where: 'records.jsonl line 7 (gw-a seq 6, batches.jsonl line 2)',
      message: 'value differs from the signed record',
      computed: 1.5,
      claimed: 42,
    },
  ]);
});

test('a record dropped from the signed bytes: the count and the root do not match', () => {
  const mutated = withBatch(2, (line) => {
    line.records = toBase64(join(slices(line).slice(0, -1)));
  });
  const report = verifyBundle(mutated, {});
  expect(report.ok).toBe(false);
  expect(report.problems.find((p) => p.kind === 'count-mismatch')).toMatchObject({ computed: PER_BATCH - 1, claimed: PER_BATCH });
  expect(kinds(report)).toEqual(expect.arrayContaining(['count-mismatch', 'root-mismatch']));
  // the readable line of the dropped record has no signed record any more
  expect(report.problems.find((p) => p.kind === 'readable-mismatch')?.where).toBe('records.jsonl line 12 (gw-a seq 11)');
});

test('a duplicated batch line is reported with both places', () => {
  const rows = lines(files.batches);
  rows.splice(3, 0, rows[2] ?? '');
  const report = verifyBundle({ ...files, batches: jsonl(rows) }, {});
  expect(report.ok).toBe(false);
  const duplicate = report.problems.find((p) => p.kind === 'duplicate');
  expect(duplicate?.where).toMatch(/^batches\.jsonl line 4 \(batch 2 of gw-a, seq 8\.\.11\)/);
  expect(duplicate?.message).toMatch(/first on line 3/);
  expect(kinds(report)).not.toContain('gap');
});

test('two swapped batch lines: reordering reported at its place, no gap', () => {
  const rows = lines(files.batches);
  [rows[1], rows[2]] = [rows[2] ?? '', rows[1] ?? ''];
  const report = verifyBundle({ ...files, batches: jsonl(rows) }, {});
  expect(report.ok).toBe(false);
  const reordered = report.problems.find((p) => p.kind === 'reordered');
  expect(reordered?.where).toMatch(/^batches\.jsonl line 3 \(batch 1 of gw-a, seq 4\.\.7\)/);
  expect(reordered?.message).toMatch(/comes after batch 2 .* on line 2/);
  expect(kinds(report)).not.toContain('gap');
});

test('batches.jsonl with a line cut out: the gap is reported with its exact numbers; cut at the end: incomplete', () => {
  const rows = lines(files.batches);
  const gap = verifyBundle({ ...files, batches: jsonl([...rows.slice(0, 3), ...rows.slice(4)]) }, {});
  expect(gap.ok).toBe(false);
  const problem = gap.problems.find((p) => p.kind === 'gap');
  expect(problem?.message).toBe('sequence numbers 12..15 are missing between batch 2 (line 3) and batch 4');
  expect(problem?.where).toMatch(/^batches\.jsonl line 4 \(batch 4 of gw-a, seq 16\.\.19\)/);
  expect(gap.gateways[0]?.ranges).toEqual([
    { first: 0, last: 11 },
    { first: 16, last: 23 },
  ]);
  const cut = verifyBundle({ ...files, batches: jsonl(rows.slice(0, 4)) }, {});
  expect(cut.ok).toBe(false);
  expect(cut.problems.find((p) => p.kind === 'incomplete')).toMatchObject({ computed: 4, claimed: BATCHES });
  // cut inside a line: the input is unusable
  const torn = verifyBundle({ ...files, batches: files.batches.slice(0, files.batches.length - 40) }, {});
  expect(torn.status).toBe('unusable');
  expect(torn.problems[0]).toMatchObject({ kind: 'unusable', where: `batches.jsonl line ${BATCHES}` });
});

test("the gateway's key replaced in keys.json: no batch verifies; a header altered: its signature fails", () => {
  const keys = JSON.parse(files.keys) as { gateways: { verifierKey: string }[] };
  const other = new Uint8Array(32).fill(7);
  keys.gateways[0]!.verifierKey = formatVerifierKey('gw-a', publicKeyFromSeed(other));
  const report = verifyBundle({ ...files, keys: JSON.stringify(keys) }, {});
  expect(report.ok).toBe(false);
  expect(report.counts.signaturesVerified).toBe(0);
  expect(report.problems.filter((p) => p.kind === 'unknown-key')).toHaveLength(BATCHES);
  const altered = verifyBundle(
    withBatch(1, (line) => {
      line.header.tsMax += 1;
    }),
    {},
  );
  expect(altered.problems.find((p) => p.kind === 'signature-invalid')?.where).toMatch(/^batches\.jsonl line 2 /);
});

test("the browser's path, with the platform's Ed25519 (WebCrypto, here Node's), gives verifyBundle's reports: honest, a signature changed, a header altered, the key replaced", async () => {
  const subtle = (globalThis.crypto as unknown as { subtle: SubtleEd25519 }).subtle;
  let imports = 0;
  let checks = 0;
  const counting: SubtleEd25519 = {
    importKey: (format, keyData, algorithm, extractable, usages) => {
      imports++;
      return subtle.importKey(format, keyData, algorithm, extractable, usages);
    },
    verify: (algorithm, key, signature, data) => {
      checks++;
      return subtle.verify(algorithm, key, signature, data);
    },
  };
  const keys = JSON.parse(files.keys) as { gateways: { verifierKey: string }[] };
  keys.gateways[0]!.verifierKey = formatVerifierKey('gw-a', publicKeyFromSeed(new Uint8Array(32).fill(7)));
  const cases: [string, BundleFiles, { savedCheckpoint?: string }][] = [
    ['honest', files, { savedCheckpoint: saved }],
    [
      'a signature changed',
      withBatch(2, (line) => {
        const sig = fromBase64(line.signature);
        sig[5] = (sig[5] ?? 0) ^ 0x01;
        line.signature = toBase64(sig);
      }),
      {},
    ],
    [
      'a header altered',
      withBatch(1, (line) => {
        line.header.tsMax += 1;
      }),
      {},
    ],
    ['the key replaced', { ...files, keys: JSON.stringify(keys) }, {}],
  ];
  for (const [name, f, options] of cases) {
    const expected = verifyBundle(f, options);
    const before = checks;
    const got = await verifyBundleWithWebCrypto(f, options, counting);
    expect([name, got]).toEqual([name, expected]);
    // every signature the verifier judged went through the platform's check
    expect(checks - before).toBeGreaterThanOrEqual(expected.counts.signaturesVerified);
    if (name === 'honest') expect(expected.ok).toBe(true);
    else expect(expected.ok).toBe(false);
  }
  expect(checks).toBeGreaterThan(0);
  // keys are imported once per bundle (the probe, then keys.json's), not once per signature
  expect(imports).toBeLessThan(checks);
});

test('a saved checkpoint of a forked log, or of another log: inconsistent', () => {
  const logKeyFile = path.join(t.config.dataDir, 'log.key');
  const signer = parseSignerKey(readFileSync(logKeyFile, 'utf8').trim());
  const savedCheckpoint = parseCheckpoint(parseNote(saved).text);
  // the same log key, the same size, another root: a fork
  const forked = signCheckpoint({ ...savedCheckpoint, rootHash: sha256(new Uint8Array([1, 2, 3])) }, [ed25519NoteSigner(signer)]);
  const fork = verifyBundle(files, { savedCheckpoint: forked });
  expect(fork.ok).toBe(false);
  expect(fork.savedCheckpoint?.consistent).toBe(false);
  const problem = fork.problems.find((p) => p.kind === 'inconsistent-checkpoint');
  expect(problem?.message).toMatch(/does not extend the saved one/);
  expect(problem?.computed).toBeDefined();
  expect(problem?.claimed).toBeDefined();
  // a checkpoint of the same size signed by another log's key
  const stranger = parseSignerKey(formatSignerKey('labtrace/lab-t', new Uint8Array(32).fill(9)));
  const foreign = verifyBundle(files, { savedCheckpoint: signCheckpoint(savedCheckpoint, [ed25519NoteSigner(stranger)]) });
  expect(foreign.ok).toBe(false);
  expect(foreign.problems.find((p) => p.kind === 'inconsistent-checkpoint')?.message).toMatch(/not signed by the log key/);
  // a bundle without a proof from the saved size cannot show that it extends it
  const bundle = JSON.parse(files.bundle) as { consistency: unknown[] };
  bundle.consistency = [];
  const noProof = verifyBundle({ ...files, bundle: JSON.stringify(bundle) }, { savedCheckpoint: saved });
  expect(noProof.ok).toBe(false);
  expect(noProof.problems.find((p) => p.kind === 'inconsistent-checkpoint')?.message).toMatch(/no consistency proof from size/);
});

async function verifyCli(args: string[]): Promise<{ code: number | null; output: string }> {
  const proc = runLabtrace(['verify', ...args]);
  const output = collect(proc);
  const code = await exitOf(proc);
  return { code, output: output() };
}

test('labtrace verify: exit 0 when verified, 1 when something does not verify, 2 when the input is unusable', async () => {
  const ok = await verifyCli([dir]);
  expect(ok.output).toMatch(/labtrace verify: VERIFIED/);
  expect(ok.output).toMatch(/gw-a: 24 records in 6 batches, sequence 0\.\.23/);
  expect(ok.output).toMatch(
    /export statement \(signed by the log key: verified\):\n.*gateway gw-a.*\n.*\n {2}6 batches \(batches 0\.\.5\), sequence 0\.\.23, 24 records, 2 key events/,
  );
  expect(ok.output).toMatch(/after: none: the range reaches the gateway's last batch in the checkpoint/);
  expect(ok.output).toMatch(/logged events \d+, \d+: revoked, from .*, valid for batches up to 5, no batch after log index \d+/);
  expect(ok.code).toBe(0);
  const middle = await verifyCli([innerDir]);
  expect(middle.output).toMatch(/before: batch 0, seq 0\.\.3, .* verified/);
  expect(middle.output).toMatch(/after: batch 5, seq 20\.\.23, .* verified/);
  expect(middle.code).toBe(0);
  const json = await verifyCli([dir, '--json']);
  expect(json.code).toBe(0);
  expect((JSON.parse(json.output) as VerifyReport).ok).toBe(true);
  const savedFile = path.join(tmp, 'saved-checkpoint.txt');
  writeFileSync(savedFile, saved);
  expect((await verifyCli([dir, '--checkpoint', savedFile])).code).toBe(0);

  // labtrace export, on the running server's database
  const bad = path.join(tmp, 'bad');
  const config = path.join(tmp, 'server.yaml');
  writeFileSync(config, `lab: lab-t\ndataDir: ${JSON.stringify(t.config.dataDir)}\n`);
  const exporting = runLabtrace([
    'export',
    '--config',
    config,
    '--out',
    bad,
    '--gateway',
    'gw-a',
    '--from',
    new Date(T0).toISOString(),
    '--to',
    new Date(T0 + 1_000_000).toISOString(),
  ]);
  const exportOutput = collect(exporting);
  expect(await exitOf(exporting)).toBe(0);
  expect(exportOutput()).toMatch(/exported 24 records in 6 batches of gw-a/);
  expect((await verifyCli([bad])).code).toBe(0);
  const rows = lines(readFileSync(path.join(bad, 'records.jsonl'), 'utf8'));
  rows[0] = rows[0]!.replace('"value":0.5', '"value":7');
  writeFileSync(path.join(bad, 'records.jsonl'), jsonl(rows));
  const failed = await verifyCli([bad]);
  expect(failed.output).toMatch(/DOES NOT VERIFY/);
  expect(failed.output).toMatch(/readable-mismatch: records\.jsonl line 1/);
  expect(failed.code).toBe(1);

  expect((await verifyCli([path.join(tmp, 'no-such-bundle')])).code).toBe(2);
  writeFileSync(path.join(bad, 'bundle.json'), '{ not json');
  const unusable = await verifyCli([bad]);
  expect(unusable.output).toMatch(/UNUSABLE INPUT/);
  expect(unusable.code).toBe(2);
  expect((await verifyCli([])).code).toBe(2);
});

/** Cuts batches from every file at once, as a careful forger would: batches.jsonl, records.jsonl and bundle.json. */
function cut(from: BundleFiles, keep: (batch: number) => boolean): BundleFiles {
  const batchRows = lines(from.batches).filter((l) => keep((JSON.parse(l) as BatchLine).header.batch));
  const recordRows = lines(from.records).filter((l) => keep((JSON.parse(l) as { batch: number }).batch));
  const bundle = JSON.parse(from.bundle) as { counts: { batches: number; records: number } };
  bundle.counts.batches = batchRows.length;
  bundle.counts.records = recordRows.length;
  return { ...from, bundle: JSON.stringify(bundle), batches: jsonl(batchRows), records: jsonl(recordRows) };
}

const logSigner = (): ReturnType<typeof parseSignerKey> => parseSignerKey(readFileSync(path.join(t.config.dataDir, 'log.key'), 'utf8').trim());

test('the signed export statement and the boundary witnesses: a bundle of the middle of the range verifies, with both witnesses', () => {
  const full = verifyBundle(files, {});
  expect(full.statement).toMatchObject({
    signatureVerified: true,
    gateway: 'gw-a',
    batches: { count: BATCHES, first: 0, last: BATCHES - 1 },
    seq: { first: 0, last: BATCHES * PER_BATCH - 1 },
    records: BATCHES * PER_BATCH,
    keyEvents: { count: 2 },
    before: null,
    after: null,
  });
  expect(full.boundaries).toEqual({ before: null, after: null });
  const report = verifyBundle(inner, {});
  expect(report.problems).toEqual([]);
  expect(report.ok).toBe(true);
  expect(report.statement).toMatchObject({ batches: { count: 4, first: 1, last: 4 }, seq: { first: 4, last: 19 }, records: 16 });
  expect(report.boundaries?.before).toMatchObject({ batch: 0, firstSeq: 0, lastSeq: 3, verified: true });
  expect(report.boundaries?.after).toMatchObject({ batch: 5, firstSeq: 20, lastSeq: 23, verified: true });
  expect(report.statement?.before?.batch).toBe(0);
  expect(report.statement?.after?.batch).toBe(5);
});

test('the last batches cut from every file at once: truncated', () => {
  const report = verifyBundle(
    cut(files, (b) => b < BATCHES - 2),
    {},
  );
  expect(report.ok).toBe(false);
  const truncated = report.problems.find((p) => p.kind === 'truncated');
  expect(truncated?.message).toMatch(
    /^truncated: the bundle holds 4 batches \(batch 0\.\.3, seq 0\.\.15\).*names 6 batches \(batch 0\.\.5, seq 0\.\.23\).*cut from the end/,
  );
  expect(kinds(report)).toEqual(['truncated']);
  // in a bundle with an after-witness, that witness no longer follows the last batch either
  const innerCut = verifyBundle(
    cut(inner, (b) => b < 4),
    {},
  );
  expect(kinds(innerCut)).toEqual(['boundary', 'truncated']);
  expect(innerCut.problems.find((p) => p.kind === 'boundary')?.message).toMatch(/does not name the hash of the range's last batch 3 as previous/);
});

test('the first batch cut from every file at once: truncated', () => {
  const report = verifyBundle(
    cut(files, (b) => b > 0),
    {},
  );
  expect(report.ok).toBe(false);
  expect(report.problems.find((p) => p.kind === 'truncated')?.message).toMatch(/^truncated: .*cut from the start/);
  const innerCut = verifyBundle(
    cut(inner, (b) => b > 1),
    {},
  );
  expect(kinds(innerCut)).toEqual(['boundary', 'truncated']);
  expect(innerCut.problems.find((p) => p.kind === 'boundary')?.message).toMatch(
    /the range's first batch 2 does not name this header's hash as previous/,
  );
});

test('the export statement altered, re-signed by another key, or missing: it does not verify', () => {
  const altered = verifyBundle({ ...files, statement: (files.statement ?? '').replace(/^records \d+$/m, 'records 16') }, {});
  expect(altered.ok).toBe(false);
  expect(altered.problems.find((p) => p.kind === 'statement')?.message).toMatch(/not signed by the log key/);
  // a truncated bundle with a statement that says so, signed by a key of the same name that is not the log key
  const truncated = cut(files, (b) => b < BATCHES - 1);
  const text = parseNote(files.statement ?? '')
    .text.replace(/^batches .*$/m, `batches ${BATCHES - 1} 0 ${BATCHES - 2}`)
    .replace(/^seq .*$/m, `seq 0 ${(BATCHES - 1) * PER_BATCH - 1}`)
    .replace(/^records .*$/m, `records ${(BATCHES - 1) * PER_BATCH}`);
  const stranger = parseSignerKey(formatSignerKey(logSigner().name, new Uint8Array(32).fill(9)));
  const forged = verifyBundle({ ...truncated, statement: signNote(text, [ed25519NoteSigner(stranger)]) }, {});
  expect(forged.ok).toBe(false);
  expect(forged.statement?.signatureVerified).toBe(false);
  expect(forged.problems.find((p) => p.kind === 'statement')?.message).toMatch(/not signed by the log key/);
  // the same statement signed by the real log key: only the headers digest gives the cut away
  const signed = verifyBundle({ ...truncated, statement: signNote(text, [ed25519NoteSigner(logSigner())]) }, {});
  expect(signed.problems.map((p) => p.message)).toEqual([
    'the batch headers are not the ones the signed export statement names (its headers digest differs)',
  ]);
  const { statement: _dropped, ...without } = files;
  const missing = verifyBundle(without, {});
  expect(missing.ok).toBe(false);
  expect(missing.problems).toEqual([
    expect.objectContaining({ kind: 'statement', message: expect.stringMatching(/no signed export statement/) as unknown }),
  ]);
});

test('a boundary witness removed or altered: it does not verify', () => {
  const boundaries = JSON.parse(inner.boundaries ?? '') as { before: BatchLine | null; after: BatchLine | null };
  const without = verifyBundle({ ...inner, boundaries: JSON.stringify({ ...boundaries, after: null }) }, {});
  expect(without.ok).toBe(false);
  expect(without.problems).toEqual([
    expect.objectContaining({
      kind: 'boundary',
      message: 'the signed export statement names batch 5 just after the range, the bundle holds no witness of it',
    }),
  ]);
  const { boundaries: _dropped, ...noFile } = inner;
  expect(kinds(verifyBundle(noFile, {}))).toEqual(['boundary']);
  expect(verifyBundle(noFile, {}).problems).toHaveLength(2);
  const before = JSON.parse(JSON.stringify(boundaries.before)) as BatchLine;
  before.header.tsMax += 1;
  const altered = verifyBundle({ ...inner, boundaries: JSON.stringify({ ...boundaries, before }) }, {});
  expect(altered.ok).toBe(false);
  const messages = altered.problems.filter((p) => p.kind === 'boundary').map((p) => p.message);
  expect(messages).toEqual(
    expect.arrayContaining([
      'not the batch the signed export statement names before the range',
      "the header's signature does not verify with gw-a's key " +
        (JSON.parse(lines(inner.batches)[0] ?? '') as { header: { keyId: string } }).header.keyId,
      "the range's first batch 1 does not name this header's hash as previous",
    ]),
  );
  expect(altered.boundaries?.before?.verified).toBe(false);
  // a batch of the range passed off as the witness before it
  const inside = JSON.parse(lines(inner.batches)[0] ?? '') as BatchLine;
  const moved = verifyBundle({ ...inner, boundaries: JSON.stringify({ ...boundaries, before: inside }) }, {});
  expect(moved.problems.filter((p) => p.kind === 'boundary').map((p) => p.message)).toEqual(
    expect.arrayContaining([
      expect.stringMatching(/meet the range: it belongs in the bundle/),
      expect.stringMatching(/does not lie before the range's first batch 1/),
    ]),
  );
});

test('keys.json contradicting the logged key events: a revocation hidden, or the validity widened, does not verify', () => {
  const report = verifyBundle(files, {});
  const keyId = report.trust.gatewayKeys[0]?.keyId;
  expect(report.trust.gatewayKeys).toEqual([
    expect.objectContaining({
      gateway: 'gw-a',
      status: 'revoked',
      validUntil: revokedAt,
      lastValidBatch: BATCHES - 1,
      logged: expect.objectContaining({ status: 'revoked', validUntil: revokedAt, lastValidBatch: BATCHES - 1 }) as unknown,
    }),
  ]);
  const edit = (change: (k: { status: string; validUntil: number | null; reason: string | null }) => void): BundleFiles => {
    const keys = JSON.parse(files.keys) as { gateways: { status: string; validUntil: number | null; reason: string | null }[] };
    const k = keys.gateways[0];
    if (k === undefined) throw new Error('keys.json lists no key');
    change(k);
    return { ...files, keys: JSON.stringify(keys) };
  };
  const hidden = verifyBundle(
    edit((k) => {
      k.status = 'active';
      k.validUntil = null;
      k.reason = null;
    }),
    {},
  );
  expect(hidden.ok).toBe(false);
  expect(hidden.problems).toEqual([
    expect.objectContaining({
      kind: 'key-validity',
      where: `keys.json (gw-a key ${keyId})`,
      message: expect.stringMatching(/keys\.json says the key is active, the logged key events \(log entries \d+, \d+\) say revoked/) as unknown,
    }),
    expect.objectContaining({ kind: 'key-validity', computed: revokedAt, claimed: null }),
  ]);
  const widened = verifyBundle(
    edit((k) => {
      k.validUntil = revokedAt + 86_400_000;
    }),
    {},
  );
  expect(widened.problems).toEqual([expect.objectContaining({ kind: 'key-validity', computed: revokedAt, claimed: revokedAt + 86_400_000 })]);
  // and the revocation's log entry dropped from the bundle as well: the signed statement counts the key events
  const hiddenAndDropped = edit((k) => {
    k.status = 'active';
    k.validUntil = null;
  });
  const dropped = verifyBundle({ ...hiddenAndDropped, keyEvents: '' }, {});
  expect(dropped.ok).toBe(false);
  expect(dropped.problems).toEqual([
    expect.objectContaining({
      kind: 'truncated',
      where: 'key-events.jsonl',
      message: 'the bundle holds 0 key events, the signed export statement names 2',
    }),
  ]);
  // keys.json stricter than the log (an event not logged yet) is not a contradiction, and the batches are held to it
  const stricter = verifyBundle(
    edit((k) => {
      (k as { lastValidBatch?: number }).lastValidBatch = 2;
    }),
    {},
  );
  expect(kinds(stricter)).toEqual(['key-not-valid']);
  expect(stricter.problems.map((p) => p.message)).toEqual(
    [3, 4, 5].map((b) => `key ${keyId} is revoked, valid for batches up to 2, this is batch ${b}`),
  );
});

describe('bundles over HTTP (GET /api/export, GET /api/runs/:id/export)', () => {
  const span = `gateway=gw-a&from=${new Date(T0 - 60_000).toISOString()}&to=${new Date(T0 + 60_000_000).toISOString()}`;

  /** The answer saved as a file and unpacked by the system's tar, as an auditor does; the bundle read back. */
  async function unpacked(res: Response): Promise<{ dir: string; files: BundleFiles; names: string[] }> {
    const archive = path.join(tmp, `http-${Math.random().toString(36).slice(2)}.tar`);
    writeFileSync(archive, Buffer.from(await res.arrayBuffer()));
    const into = mkdtempSync(path.join(tmp, 'http-'));
    execFileSync('tar', ['-xf', archive, '-C', into]);
    const names = execFileSync('tar', ['-tf', archive], { encoding: 'utf8' }).trim().split('\n');
    const top = names[0]?.replace(/\/$/, '') ?? '';
    return { dir: path.join(into, top), files: readBundle(path.join(into, top)), names };
  }

  test('an auditor downloads a bundle by gateway and time span that verifies offline, the same bundle as the command line writes', async () => {
    const res = await t.fetch(`/api/export?${span}`, {}, 'auditor');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-tar');
    expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="labtrace-bundle-gw-a-.*\.tar"$/);
    const got = await unpacked(res);
    expect(
      got.names
        .map((n) => n.split('/').slice(1).join('/'))
        .filter((n) => n !== '')
        .sort(),
    ).toEqual(
      ['batches.jsonl', 'boundaries.json', 'bundle.json', 'checkpoint.txt', 'key-events.jsonl', 'keys.json', 'records.jsonl', 'statement.txt'].sort(),
    );
    const report = verifyBundle(got.files, {});
    expect(report.status).toBe('verified');
    expect(report.counts).toMatchObject({ batches: BATCHES, records: BATCHES * PER_BATCH });
    // the same signed content as the command line's bundle of the same span
    const cli = mkdtempSync(path.join(tmp, 'cli-'));
    const log = t.server.log;
    if (log === undefined) throw new Error('no log');
    await exportBundle(t.server.database, log, { outDir: cli, gateway: 'gw-a', from: T0 - 60_000, to: T0 + 60_000_000 });
    const written = readBundle(cli);
    expect(got.files.batches).toBe(written.batches);
    expect(got.files.records).toBe(written.records);
    expect(got.files.statement).toBe(written.statement);
  });

  test('who may: the lab staff and auditors who see every organization; not a client, not anonymous', async () => {
    for (const role of ['admin', 'technician', 'signatory'] as const) expect((await t.fetch(`/api/export?${span}`, {}, role)).status).toBe(200);
    expect((await t.fetch(`/api/export?${span}`, {}, 'client')).status).toBe(403);
    expect((await t.fetch(`/api/export?${span}`, {}, null)).status).toBe(401);
    expect((await t.fetch('/api/runs/run-x/export', {}, 'client')).status).toBe(403);
  });

  test.each([
    ['gateway=gw-a&from=2026-01-01T00:00:00Z', 'to'],
    [`gateway=gw-a&from=yesterday&to=${new Date().toISOString()}`, 'from'],
    ['gateway=gw-a&from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z', 'from is later than to'],
    ['gateway=../x&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z', 'gateway'],
    [`${span}&format=zip`, 'format'],
  ])('a bad query is refused with the field named (%s)', async (query, named) => {
    const res = await t.fetch(`/api/export?${query}`, {}, 'auditor');
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toContain(named);
  });

  test('a run that does not exist answers 404', async () => {
    const res = await t.fetch('/api/runs/no-such-run/export', {}, 'auditor');
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: string }).error).toBe('path: id: there is no run "no-such-run"');
  });
});
