// A client's selective-disclosure bundle (export/disclosure.ts, GET /api/runs/:id/disclosure): two organizations'
// runs measured on two instruments of one gateway, so that every signed batch holds records of both. The client of
// one run gets a bundle that verifies offline (in this process and with `labtrace verify <file>`), holds nothing of
// the other run (its bytes scanned, base64 decoded too), keeps the reason text the lab's policy redacts out, and
// fails on any changed byte; the other organization's client gets a 404.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { fieldCommitment, fromBase64, parseWith, redactionSalt, utf8, verifyDisclosure, type Sample } from '@labtrace/protocols';
import { serverConfigSchema } from '../../src/config.js';
import { redactionSaltKey } from '../../src/export/disclosure.js';
import { collect, exitOf, runLabtrace } from '../helpers/lab-process.js';
import { addOtherClient, send, startServer, TestGateway, waitFor, type TestServer } from '../helpers/server.js';

const BATCHES = 5;
const PER_BATCH = 8;
/** values no record of run-1 carries: the other organization's measurements */
const OTHER_VALUE = 987_654.321;
const OTHER_REASON = 'org-b confidential grip note';
const MY_REASON = 'clamp slipped, operator Zhang Wei';
const T0 = 1_800_000_000_000;

let t: TestServer;
let gw: TestGateway;
let otherClient: string;
let text: string;
const tmp = mkdtempSync(path.join(tmpdir(), 'labtrace-disclosure-'));
const technician = { username: 'technician', role: 'technician' };
const setup = { username: 'test-setup', role: 'system' };

/** batch b: records alternately of ut-1 (run-1, org-a) and ut-2 (run-2, org-b); every third of ut-1's carries a reason */
function batchSamples(b: number, first: number): Sample[] {
  return Array.from({ length: PER_BATCH }, (_, i): Sample => {
    const seq = first + i;
    const mine = i % 2 === 0;
    const s: Sample = {
      seq,
      instrument: mine ? 'ut-1' : 'ut-2',
      channel: 'c',
      ts: T0 + seq,
      value: mine ? 10 + b + i / 100 : OTHER_VALUE,
      unit: 'kN',
      quality: 'good',
    };
    if (mine && seq % 3 === 0) return { ...s, quality: 'uncertain', reason: MY_REASON };
    if (!mine && seq % 3 === 0) return { ...s, quality: 'uncertain', reason: OTHER_REASON };
    return s;
  });
}

beforeAll(async () => {
  t = await startServer({ log: { minCheckpointIntervalMs: 100 }, export: { clientBundle: { redact: ['reason'] } } });
  otherClient = await addOtherClient(t);
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('ut-1', 'ut-2');
  await waitFor('the instruments', () => t.server.database.sqlite.prepare("SELECT 1 FROM instruments WHERE id = 'ut-2'").get() !== undefined);
  for (const [id, organization] of [
    ['S-a', 'org-a'],
    ['S-b', 'org-b'],
  ] as const)
    await t.server.labRecords.createSample(setup, { id, organization, description: 'bar', condition: 'intact', receivedAt: Date.now() });
  await t.server.labRecords.createMethod(setup, {
    id: 'm-1',
    standard: 'ISO 6892-1:2019',
    title: 'Tensile testing',
    definition: {
      measurands: [{ name: 'force', unit: 'kN', channel: 'c' }],
      instrumentTypes: [],
      limits: [],
      results: [],
      decisionRule: { kind: 'simple-acceptance' },
    },
  });
  await t.server.runs.create(technician, { sample: 'S-a', method: 'm-1', instruments: ['ut-1'] }); // run-1, org-a
  await t.server.runs.create(technician, { sample: 'S-b', method: 'm-1', instruments: ['ut-2'] }); // run-2, org-b
  await t.server.runs.start(technician, 'run-1');
  await t.server.runs.start(technician, 'run-2');
  for (let b = 0; b < BATCHES; b++) expect(await send(t, gw, gw.seal(batchSamples(b, b * PER_BATCH)))).toBe('acked');
  await t.server.runs.stop(technician, 'run-1');
  await t.server.runs.stop(technician, 'run-2');
  const size = t.server.log?.size ?? 0;
  await waitFor('a checkpoint covering every batch', () => Number(t.server.log?.latestCheckpoint().note.split('\n')[1]) >= size);
  const res = await t.fetch('/api/runs/run-1/disclosure', {}, 'client');
  expect(res.status).toBe(200);
  expect(res.headers.get('x-bundle-records')).toBe(String((BATCHES * PER_BATCH) / 2));
  text = await res.text();
});
afterAll(async () => {
  await gw.end();
  await t.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const verified = (bundle: string): boolean => verifyDisclosure(bundle).ok;

describe('the client of run-1', () => {
  test('gets a bundle of its run that verifies offline: whole records, and those with the redacted reason', () => {
    const report = verifyDisclosure(text);
    expect(report.problems).toEqual([]);
    expect(report.status).toBe('verified');
    const mine = Array.from({ length: BATCHES }, (_, b) => batchSamples(b, b * PER_BATCH))
      .flat()
      .filter((s) => s.instrument === 'ut-1');
    const withReason = mine.filter((s) => s.reason !== undefined).length;
    expect(withReason).toBeGreaterThan(0);
    expect(report.disclosure).toMatchObject({
      run: 'run-1',
      redacted: ['reason'],
      wholeRecords: mine.length - withReason,
      redactedRecords: withReason,
      statementVerified: true,
    });
    expect(report.counts).toMatchObject({
      batches: BATCHES,
      records: mine.length,
      signaturesVerified: 1,
      headersChained: BATCHES - 1,
      rootsVerified: BATCHES,
    });
    expect(report.gateways).toEqual([
      { gateway: 'gw-a', batches: BATCHES, records: mine.length, ranges: mine.map((s) => ({ first: s.seq, last: s.seq })), declaredJumps: [] },
    ]);
  });

  test('is written in ASCII (what is outside it as \\u escapes), so that its reader holds one-byte text', () => {
    expect(/[\u0080-\uffff]/.test(text)).toBe(false);
    // the signed notes' signature lines begin with an em dash
    expect(text).toContain('\\u2014 ');
  });

  test('`labtrace verify <file>` verifies it (exit 0) and names the run', async () => {
    const file = path.join(tmp, 'run-1.json');
    writeFileSync(file, text);
    const proc = runLabtrace(['verify', file]);
    const out = collect(proc);
    expect(await exitOf(proc)).toBe(0);
    expect(out()).toMatch(/VERIFIED[\s\S]*disclosure bundle of run run-1/);
  });

  test('holds nothing of the other organization’s run, nor the redacted reason (scanned, base64 decoded too)', () => {
    const haystacks = scannable(text);
    const float = new Uint8Array(8);
    new DataView(float.buffer).setFloat64(0, OTHER_VALUE);
    const needles: [string, Uint8Array][] = [
      ['ut-2', utf8('ut-2')],
      ['run-2', utf8('run-2')],
      ['S-b', utf8('S-b')],
      ['org-b', utf8('org-b')],
      ['the other reason', utf8(OTHER_REASON)],
      ['the other value', float],
      ['the redacted reason', utf8(MY_REASON)],
    ];
    for (const [name, needle] of needles) expect([name, haystacks.some((h) => contains(h, needle))]).toEqual([name, false]);
    // and the scan does find what is there: run-1's instrument in its records' bytes
    expect(haystacks.some((h) => contains(h, utf8('ut-1')))).toBe(true);
  });

  test('a redacted field’s commitment opens with the lab’s salt and the true value, not another', () => {
    const doc = JSON.parse(text) as { batches: { redacted: { fields: { seq: number }; commitments: { reason: string } }[] }[] };
    const entry = doc.batches.flatMap((b) => b.redacted)[0];
    if (entry === undefined) throw new Error('no redacted record');
    const log = t.server.log;
    if (log === undefined) throw new Error('no log');
    const salt = redactionSalt(redactionSaltKey(log, 'run-1'), 'gw-a', entry.fields.seq, 'reason');
    expect(Buffer.from(fieldCommitment('reason', salt, MY_REASON)).toString('base64')).toBe(entry.commitments.reason);
    expect(Buffer.from(fieldCommitment('reason', salt, OTHER_REASON)).toString('base64')).not.toBe(entry.commitments.reason);
  });

  test('fails on any changed byte (a sample of every part of the file)', async () => {
    const bytes = Buffer.from(text);
    const positions = new Set<number>();
    for (let i = 0; i < 300; i++) positions.add(Math.floor((i * bytes.length) / 300));
    positions.add(bytes.length - 1);
    const passed: number[] = [];
    let n = 0;
    for (const at of positions) {
      // the event loop turns now and then: the HTTP client's idle connections see the server close them
      if (++n % 25 === 0) await new Promise((resolve) => setImmediate(resolve));
      const copy = Buffer.from(bytes);
      copy[at] = (copy[at] ?? 0) ^ (/[A-Za-z0-9]/.test(String.fromCharCode(copy[at] ?? 0)) ? 0x01 : 0x20);
      if (verified(copy.toString('utf8'))) passed.push(at);
    }
    expect(passed.map((at) => JSON.stringify(text.slice(Math.max(0, at - 20), at + 20)))).toEqual([]);
  });

  test('fails when a redacted field’s commitment changes (the signed statement names every one)', () => {
    const doc = JSON.parse(text) as { batches: { redacted: { commitments: Record<string, string> }[] }[] };
    const entry = doc.batches.flatMap((b) => b.redacted)[0];
    if (entry === undefined) throw new Error('no redacted record');
    const c = entry.commitments.reason ?? '';
    entry.commitments.reason = `${c[0] === 'A' ? 'B' : 'A'}${c.slice(1)}`;
    expect(fromBase64(entry.commitments.reason)).toHaveLength(32);
    const report = verifyDisclosure(JSON.stringify(doc));
    expect(report.status).toBe('failed');
    expect(report.problems.map((p) => p.kind)).toEqual(['statement']);
    expect(report.problems[0]?.message).toMatch(/commitments are not those the statement names/);
  });

  test('fails when a record disclosed whole is dropped', () => {
    const doc = JSON.parse(text) as { batches: { indexes: number[]; records: string }[] };
    const first = doc.batches[0];
    if (first === undefined) throw new Error('no batch');
    // dropping the last whole record of the first batch: the statement's counts and digest no longer match
    const dropped = structuredClone(doc);
    const b = dropped.batches[0];
    if (b === undefined) throw new Error('no batch');
    const bytes = fromBase64(b.records);
    const recordLength = bytes.length / b.indexes.length;
    b.indexes.pop();
    b.records = Buffer.from(bytes.subarray(0, bytes.length - recordLength)).toString('base64');
    expect(verifyDisclosure(JSON.stringify(dropped)).problems.map((p) => p.kind)).toEqual(expect.arrayContaining(['record-inclusion', 'statement']));
  });
});

describe('who may have it', () => {
  test('another organization’s client gets 404, like an unknown run; its own run’s bundle holds nothing of run-1', async () => {
    const as = (p: string): Promise<Response> => fetch(`${t.base}${p}`, { headers: { authorization: `Bearer ${otherClient}` } });
    expect((await as('/api/runs/run-1/disclosure')).status).toBe(404);
    expect((await as('/api/runs/run-99/disclosure')).status).toBe(404);
    const own = await as('/api/runs/run-2/disclosure');
    expect(own.status).toBe(200);
    const other = await own.text();
    expect(verifyDisclosure(other).ok).toBe(true);
    expect(scannable(other).some((h) => contains(h, utf8('ut-1')))).toBe(false);
    expect(scannable(other).some((h) => contains(h, utf8(OTHER_REASON)))).toBe(false);
  });

  test('the lab’s staff may fetch it; nobody signed out', async () => {
    expect((await t.fetch('/api/runs/run-1/disclosure', {}, 'technician')).status).toBe(200);
    expect((await t.fetch('/api/runs/run-1/disclosure', {}, null)).status).toBe(401);
  });
});

test('the data-export policy is validated at start-up, naming the field', () => {
  expect(() => parseWith(serverConfigSchema, { export: { clientBundle: { redact: ['reason', 'seq'] } } }, 'server.yaml')).toThrow(
    /server\.yaml: export\.clientBundle\.redact\[1\]: /,
  );
  expect(() => parseWith(serverConfigSchema, { export: { clientBundle: { redact: ['value', 'value'] } } }, 'server.yaml')).toThrow(
    /export\.clientBundle\.redact: a field is named twice/,
  );
});

/** The bundle's bytes, and every base64 string in it decoded (record bytes travel as base64). */
function scannable(bundle: string): Uint8Array[] {
  const out: Uint8Array[] = [utf8(bundle)];
  const visit = (v: unknown): void => {
    if (typeof v === 'string') {
      // the text as parsed (the bundle writes what is outside ASCII as \u escapes), and as base64 decoded
      out.push(utf8(v));
      try {
        out.push(fromBase64(v));
      } catch {
        // not base64: its text is in the bundle's bytes already
      }
    } else if (Array.isArray(v)) v.forEach(visit);
    else if (typeof v === 'object' && v !== null) Object.values(v).forEach(visit);
  };
  visit(JSON.parse(bundle));
  return out;
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).indexOf(Buffer.from(needle)) !== -1;
}
