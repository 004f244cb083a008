// The supervisor following two real labs over HTTP: the clean one has no finding; each violation seeded in the other
// (through its API where the server allows it, by tampering with its store where it refuses) is found with its
// evidence; the tier moves as the published table says; a restart resumes from the stored cursor. In the jest
// project "postgres" the labs and the supervisor's own store are on PostgreSQL.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pino from 'pino';
import {
  ed25519NoteVerifier,
  formatCosignerVerifierKey,
  fromBase64,
  leafHash,
  openCheckpoint,
  parseVerifierKey,
  publicKeyFromSeed,
  verifyInclusion,
} from '@labtrace/protocols';
import { parseDatabaseUrl } from '../../src/store/config.js';
import type { EnrolledLab } from '../../src/supervisor/config.js';
import { DEFAULT_RULE_SETTINGS } from '../../src/supervisor/evidence.js';
import type { StoredFinding } from '../../src/supervisor/supervisor-store.js';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import { postJson, waitFor } from '../helpers/server.js';
import { logSize } from '../helpers/store-reads.js';
import { testDatabaseUrl } from '../helpers/test-store.js';
import { ACCREDITED, SeededLab } from './lab-seeding.js';

const DAY = 86_400_000;
const TOKEN = 'supervisor-api-token-for-tests-0123456789';
const WITNESS = formatCosignerVerifierKey('regulator.example/w1', publicKeyFromSeed(new Uint8Array(32).fill(9)));
const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-supervisor-'));
let clean: SeededLab;
let dirty: SeededLab;
let supervisor: Supervisor;
let offset = 0;
/** the supervisor's store: a SQLite file, or a PostgreSQL database of its own (project "postgres") */
let database: string | undefined;
const seeded: Record<string, string> = {};

async function enrolled(id: string, lab: SeededLab, witnessesRequired = 0): Promise<EnrolledLab> {
  const keys = (await (await fetch(`${lab.t.base}/api/log/keys`)).json()) as { log: { verifierKey: string } };
  return {
    id,
    name: id,
    url: lab.t.base,
    origin: parseVerifierKey(keys.log.verifierKey).name,
    logKey: keys.log.verifierKey,
    token: lab.t.tokens.auditor,
    witnesses: witnessesRequired > 0 ? [WITNESS] : [],
    witnessesRequired,
  };
}

async function startSupervisor(): Promise<Supervisor> {
  const s = new Supervisor(
    {
      host: '127.0.0.1',
      port: 0,
      database: database === undefined ? path.join(dir, 'supervisor.db') : { target: parseDatabaseUrl(database, 'database', dir) },
      apiToken: TOKEN,
      followEveryMs: 3_600_000,
      settings: DEFAULT_RULE_SETTINGS,
      labs: [await enrolled('clean', clean), await enrolled('dirty', dirty, 1)],
      now: () => Date.now() + offset,
    },
    pino({ level: 'silent' }),
  );
  await s.start();
  return s;
}

async function api<T>(p: string, init: RequestInit = {}, token = TOKEN): Promise<{ status: number; body: T }> {
  const res = await fetch(`${supervisor.url}${p}`, {
    ...init,
    headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` },
  });
  return { status: res.status, body: (await res.json()) as T };
}

interface LabView {
  tier: string;
  score: number;
  logSize: number;
  lastError: string | null;
}
const check = async (lab: string): Promise<LabView> => (await api<LabView>(`/api/labs/${lab}/check`, { method: 'POST' })).body;
const findings = async (lab: string): Promise<StoredFinding[]> =>
  (await api<{ findings: StoredFinding[] }>(`/api/labs/${lab}/findings`)).body.findings;

beforeAll(async () => {
  // both labs accredited: their reports carry the mark
  [clean, dirty] = await Promise.all([SeededLab.start({ accreditation: ACCREDITED }), SeededLab.start({ accreditation: ACCREDITED })]);
  // the clean lab: a report with the mark, an amendment with its reason, an inspected run whose alarm was acknowledged before the end
  const report = await clean.issued(await clean.completedRun());
  const issued = await clean.call<{ content?: { accreditation: unknown } }>(`/api/certificates/${report}`);
  expect(issued.body.content?.accreditation).toEqual({ body: 'CNAS', number: 'L1234' });
  await clean.amended(await clean.issued(await clean.completedRun()), 'customer contact corrected');
  await clean.completedRun({
    method: 'tensile-inspected',
    values: [150, 20],
    beforeStop: async (run) => {
      const alarm = await waitForAlarm(clean, run);
      const ack = await clean.call(
        `/api/runs/${run}/alarms/${encodeURIComponent(alarm)}/acknowledge`,
        postJson({ reason: 'overload seen, specimen replaced' }),
      );
      expect(ack.status).toBe(200);
    },
  });

  // the dirty lab: each violation once
  const now = Date.now();
  const calRun = await dirty.completedRun({ instrument: 'utm-2' });
  seeded['calibration-at-run'] = await dirty.issued(calRun);
  await dirty.tamper('calibrations', `UPDATE calibrations SET next_due_at = ${now - 5 * DAY} WHERE instrument = 'utm-2'`);
  const selfRun = await dirty.completedRun();
  seeded['performer-approved'] = await dirty.issued(selfRun);
  await dirty.tamper('runs', `UPDATE runs SET technician = 'signatory' WHERE id = '${selfRun}'`);
  seeded['unacknowledged-alarms'] = await dirty.completedRun({
    method: 'tensile-inspected',
    values: [150, 20],
    beforeStop: async (run) => void (await waitForAlarm(dirty, run)),
  });
  seeded['sequence-gaps'] = await dirty.completedRun({ skip: 10 });
  const original = await dirty.issued(await dirty.completedRun());
  seeded['late-amendment'] = await dirty.amended(original, 'customer contact corrected');
  await dirty.tamper('certificates', `UPDATE certificates SET issued_at = issued_at - ${40 * DAY} WHERE id = '${original}'`);
  const revokedFrom = Date.now();
  const unlogged = await dirty.issued(await dirty.completedRun());
  seeded['certificates-logged'] = unlogged;
  await dirty.tamper('certificates', `UPDATE certificates SET log_index = 0 WHERE id = '${unlogged}'`);
  const marked = await dirty.issued(await dirty.completedRun());
  seeded['accredited-mark-outside-scope'] = marked;
  await dirty.suspendedOver(marked);
  const keys = await dirty.call<{ keyId: string; status: string }[]>('/api/gateways/gw-a/keys', {}, 'admin');
  const active = keys.body.find((k) => k.status === 'active');
  if (active === undefined) throw new Error(`no active key: ${JSON.stringify(keys.body)}`);
  const revoked = await dirty.call(`/api/gateways/gw-a/keys/${active.keyId}/revoke`, postJson({ reason: 'key leaked', from: revokedFrom }), 'admin');
  expect(revoked.status).toBe(200);
  seeded['revoked-key-records'] = `gw-a/${active.keyId}`;
  // the lab enters the revocation in its log in the background
  await waitFor(
    'the revocation in the log',
    async () => {
      const entries = (await dirty.t.server.logReader?.entries(0, await logSize(dirty.t.server))) ?? [];
      return entries.some((e) => e.kind === 'key-event' && new TextDecoder().decode(e.data).includes('"revoked"'));
    },
    30_000,
  );
  // the supervisor proves what it cites against the lab's signed checkpoint: each lab's checkpoint covers every
  // entry seeded before the first check (on a loaded machine the checkpoint can lag the last entries by seconds)
  for (const lab of [clean, dirty]) {
    const size = await logSize(lab.t.server);
    await waitFor('a checkpoint over every seeded entry', async () => (await checkpointSize(lab)) >= size, 30_000);
  }
  database = await testDatabaseUrl();
  supervisor = await startSupervisor();
}, 240_000);

afterAll(async () => {
  await supervisor.stop();
  await Promise.all([clean.stop(), dirty.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

async function waitForAlarm(lab: SeededLab, run: string): Promise<string> {
  let id: string | undefined;
  await waitFor('an alarm', async () => {
    const res = await lab.call<{ alarms: { id: string }[] }>(`/api/runs/${run}/alarms`);
    id = res.body.alarms[0]?.id;
    return id !== undefined;
  });
  if (id === undefined) throw new Error('no alarm');
  return id;
}

describe('the supervisor follows two labs', () => {
  test('its API needs its token', async () => {
    // the store the project says: the embedded file, or PostgreSQL
    expect(supervisor.store.description).toMatch(database === undefined ? /^sqlite:/ : /^postgres:\/\/postgres@127\.0\.0\.1:/);
    expect((await fetch(`${supervisor.url}/api/labs`)).status).toBe(401);
    expect((await api('/api/labs', {}, 'wrong-token')).status).toBe(401);
    const labs = await api<{ labs: { id: string }[] }>('/api/labs');
    expect(labs.body.labs.map((l) => l.id)).toEqual(['clean', 'dirty']);
  });

  test('the clean lab has no finding and tier A', async () => {
    const view = await check('clean');
    expect(view).toMatchObject({ tier: 'A', score: 0, lastError: null });
    expect(view.logSize).toBeGreaterThan(0);
    expect(await findings('clean')).toEqual([]);
  });

  test('each violation seeded in the dirty lab is a finding, with the log entries and proofs that show it', async () => {
    const view = await check('dirty');
    expect(view.lastError).toBeNull();
    const found = await findings('dirty');
    const byRule = new Map<string, StoredFinding[]>();
    for (const f of found) byRule.set(f.rule, [...(byRule.get(f.rule) ?? []), f]);
    for (const [rule, subject] of Object.entries(seeded)) {
      const matching = (byRule.get(rule) ?? []).filter((f) => JSON.stringify(f).includes(subject));
      expect({ rule, found: matching.length > 0 }).toEqual({ rule, found: true });
    }
    expect(byRule.get('checkpoint-not-cosigned')).toHaveLength(1);
    // the other reports of the dirty lab carry the mark rightly, whatever else is wrong with them
    expect(byRule.get('accredited-mark-outside-scope')?.map((f) => f.subject.certificate)).toEqual([seeded['accredited-mark-outside-scope']]);
    const mark = byRule.get('accredited-mark-outside-scope')?.[0];
    expect(mark?.summary.en).toMatch(/accreditation CNAS L1234 was suspended/);
    expect(mark?.summary.zh).toMatch(/认可 CNAS L1234 已被暂停（自 \d{4}-\d\d-\d\dT[\d:.]+Z 起）/);
    // every finding, through the API, says what it found in both languages, naming its subject in each
    for (const f of found) {
      expect({ rule: f.rule, chinese: /[\u4e00-\u9fff]/.test(f.summary.zh) }).toEqual({ rule: f.rule, chinese: true });
      for (const id of Object.values(f.subject).filter((v) => f.summary.en.includes(v))) expect(f.summary.zh).toContain(id);
      // and why each log entry is cited, as recorded (English) and in both languages
      for (const e of f.evidence.entries as (StoredFinding['evidence']['entries'][number] & { whyText?: { en: string; zh: string } })[])
        expect({ why: e.why, en: e.whyText?.en, chinese: /[\u4e00-\u9fff]/.test(e.whyText?.zh ?? '') }).toEqual({
          why: e.why,
          en: e.why,
          chinese: true,
        });
    }
    expect(mark?.evidence.entries).toEqual([expect.objectContaining({ kind: 'certificate-event', inclusionProof: expect.any(Array) })]);
    // the report issued by the one who performed the run: its log entry, with an inclusion proof to the checkpoint held
    const self = byRule.get('performer-approved')?.[0];
    const entry = self?.evidence.entries[0];
    if (self === undefined || entry === undefined || entry.inclusionProof === null || self.evidence.checkpoint === null) throw new Error('no proof');
    const { checkpoint } = openCheckpoint(self.evidence.checkpoint, [ed25519NoteVerifier(await logKey(dirty))]);
    expect(() =>
      verifyInclusion(fromBase64(entry.leafHash), entry.index, checkpoint.size, entry.inclusionProof?.map(fromBase64) ?? [], checkpoint.rootHash),
    ).not.toThrow();
    const logged = await dirty.t.server.logReader?.entries(entry.index, entry.index + 1);
    const data = logged?.[0]?.data;
    if (data === undefined) throw new Error('entry missing');
    expect(Buffer.from(leafHash(data)).toString('base64')).toBe(entry.leafHash);
    // the rules run every time, but a finding is recorded once
    await check('dirty');
    expect((await findings('dirty')).length).toBe(found.length);
    const checks = await api<{ checks: { newFindings: number }[] }>('/api/labs/dirty/checks');
    expect(checks.body.checks[0]?.newFindings).toBe(0);
  });

  test('the tier follows the table: D with critical findings, better as findings are resolved or leave the rolling period', async () => {
    expect((await api<LabView>('/api/labs/dirty')).body.tier).toBe('D');
    const found = await findings('dirty');
    // the lab's reasoned response is recorded and changes nothing by itself
    const first = found[0];
    if (first === undefined) throw new Error('no finding');
    const answered = await api<{ finding: StoredFinding }>(`/api/labs/dirty/findings/${first.id}/response`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ author: 'quality manager, dirty lab', text: 'the calibration certificate was renewed; see CAL-2026-117' }),
    });
    expect(answered.status).toBe(201);
    expect(answered.body.finding.responses).toEqual([expect.objectContaining({ kind: 'response', author: 'quality manager, dirty lab' })]);
    expect((await api<LabView>('/api/labs/dirty')).body.tier).toBe('D');
    // a year and a day later, none of them counts any more
    offset = 366 * DAY;
    expect((await api<LabView>('/api/labs/dirty')).body).toMatchObject({ tier: 'A', score: 0 });
    offset = 0;
    // resolving every critical and major finding leaves the minor ones: 3 findings of weight 1 is tier B, 2 is A
    for (const f of found.filter((x) => x.severity !== 'minor')) await resolve(f.id);
    const minors = found.filter((x) => x.severity === 'minor');
    expect((await api<LabView>('/api/labs/dirty')).body).toMatchObject({
      score: minors.length,
      tier: minors.length < 3 ? 'A' : minors.length < 10 ? 'B' : 'C',
    });
    expect(minors.length).toBe(3);
    await resolve(minors[0]?.id ?? 0);
    expect((await api<LabView>('/api/labs/dirty')).body).toMatchObject({ score: 2, tier: 'A' });
  });

  test('a restart resumes from the stored cursor', async () => {
    const before = (await api<LabView>('/api/labs/clean')).body.logSize;
    await supervisor.stop();
    // the lab goes on while the supervisor is down
    await clean.issued(await clean.completedRun());
    supervisor = await startSupervisor();
    const served = await checkpointSize(clean);
    const view = await check('clean');
    // entries are stored once each (a second insert of an index would fail the round)
    expect(view.lastError).toBeNull();
    expect(view.logSize).toBeGreaterThan(before);
    expect(view.logSize).toBeGreaterThanOrEqual(served);
    expect(view.logSize).toBeLessThanOrEqual(await checkpointSize(clean));
    expect(await findings('clean')).toEqual([]);
    expect((await api<{ checks: unknown[] }>('/api/labs/clean/checks')).body.checks.length).toBeGreaterThanOrEqual(3);
  });
});

async function resolve(id: number): Promise<void> {
  const res = await api(`/api/labs/dirty/findings/${id}/resolve`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ author: 'inspector', text: 'corrective action verified on the records' }),
  });
  expect(res.status).toBe(201);
}

async function checkpointSize(lab: SeededLab): Promise<number> {
  return Number((await (await fetch(`${lab.t.base}/api/log/checkpoint`)).text()).split('\n')[1]);
}

async function logKey(lab: SeededLab): Promise<string> {
  return ((await (await fetch(`${lab.t.base}/api/log/keys`)).json()) as { log: { verifierKey: string } }).log.verifierKey;
}
