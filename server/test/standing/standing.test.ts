// The lab's side of supervision: a real supervisor follows a real lab with a seeded finding (a gap in a gateway's
// sequence numbers); the lab's server, configured with `supervision:`, shows the lab's tier and the finding with how
// to clear it, proxies the signed report, and sends the admin's reasoned response, which lands at the supervisor and
// in the lab's own audit trail. The lab's standing token reaches no other lab and none of the supervisor's actions.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pino from 'pino';
import { formatSignerKey, parseSignerKey, parseVerifierKey } from '@labtrace/protocols';
import { api, type LabStanding } from '@labtrace/protocols/api';
import { serverConfigSchema } from '../../src/config.js';
import type { EnrolledLab } from '../../src/supervisor/config.js';
import { DEFAULT_RULE_SETTINGS } from '../../src/supervisor/evidence.js';
import type { StoredFinding } from '../../src/supervisor/supervisor-store.js';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import { standingTokenOf } from '../../src/standing/standing-routes.js';
import { postJson } from '../helpers/server.js';
import { SeededLab } from '../supervisor/lab-seeding.js';

const TOKEN = 'supervisor-api-token-for-standing-tests-0123456789';
const STANDING = 'the-lab-standing-token-for-tests-0123456789';
const OTHER_STANDING = 'another-lab-standing-token-for-tests-0123456789';
const KEY = parseSignerKey(formatSignerKey('supervisor.example/reports', new Uint8Array(32).fill(5)));
const DAY = 86_400_000;
const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-standing-'));
let lab: SeededLab;
let supervisor: Supervisor;
let port: number;
let stopped = false;
/** every line the lab's server logs */
const lines: string[] = [];
const sink = new Writable({
  write(chunk: Buffer, _encoding, done) {
    lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    done();
  },
});

/** a port nobody listens on now: the lab's config names the supervisor before it starts */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: p } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return p;
}

async function enrolled(id: string, standingToken: string): Promise<EnrolledLab> {
  const keys = (await (await fetch(`${lab.t.base}/api/log/keys`)).json()) as { log: { verifierKey: string } };
  return {
    id,
    name: id,
    url: lab.t.base,
    origin: parseVerifierKey(keys.log.verifierKey).name,
    logKey: keys.log.verifierKey,
    token: lab.t.tokens.auditor,
    standingToken,
    witnesses: [],
    witnessesRequired: 0,
  };
}

/** the supervisor's API with a token (its own by default) */
async function atSupervisor<T>(p: string, init: RequestInit = {}, token = TOKEN): Promise<{ status: number; body: T }> {
  const res = await fetch(`http://127.0.0.1:${port}${p}`, {
    ...init,
    headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` },
  });
  return { status: res.status, body: (await res.json()) as T };
}

type Configured = Extract<LabStanding, { configured: true }>;

beforeAll(async () => {
  port = await freePort();
  const tokenFile = path.join(dir, 'standing.token');
  writeFileSync(tokenFile, `${STANDING}\n`);
  lab = await SeededLab.start({ supervision: { url: `http://127.0.0.1:${port}/`, lab: 'lab-1', tokenFile } }, pino({ level: 'trace' }, sink));
  await lab.completedRun({ skip: 10 });
  supervisor = new Supervisor(
    {
      host: '127.0.0.1',
      port,
      database: path.join(dir, 'supervisor.db'),
      apiToken: TOKEN,
      key: KEY,
      followEveryMs: 3_600_000,
      settings: DEFAULT_RULE_SETTINGS,
      // the same lab server enrolled twice: 'lab-2' is another lab as far as the lab-1's token goes
      labs: [await enrolled('lab-1', STANDING), await enrolled('lab-2', OTHER_STANDING)],
    },
    pino({ level: 'silent' }),
  );
  await supervisor.start();
  expect((await atSupervisor('/api/labs/lab-1/check', { method: 'POST' })).status).toBe(200);
  expect((await atSupervisor('/api/labs/lab-2/check', { method: 'POST' })).status).toBe(200);
}, 180_000);

afterAll(async () => {
  if (!stopped) await supervisor.stop();
  await lab.stop();
  rmSync(dir, { recursive: true, force: true });
});

const standing = async (role: Parameters<SeededLab['call']>[2] = 'admin') => lab.call<LabStanding>('/api/standing', {}, role);

describe("the lab's standing", () => {
  test('shows the tier, the score, the finding with its rule, reference and remedy, and the checks run', async () => {
    const res = await standing();
    expect({ status: res.status, body: res.status === 200 ? undefined : res.body }).toEqual({ status: 200, body: undefined });
    // what the contract says, strictly
    expect(api.getStanding.response.safeParse(res.body).error?.issues ?? []).toEqual([]);
    const view = res.body as Configured;
    const gap = view.findings.find((f) => f.rule === 'sequence-gaps');
    expect(gap).toMatchObject({ severity: expect.any(String), status: 'open', reference: expect.any(String), responses: [] });
    expect(gap?.title).toMatchObject({ en: expect.any(String), zh: expect.any(String) });
    expect(gap?.remedy).toBeTruthy();
    // what was found, in both languages, with the run's id in each
    const run = (gap?.summary as { en: string; zh: string } | undefined) ?? { en: '', zh: '' };
    expect(run.en).toMatch(/^run \S+: \d+ records? of \S+ between \d+ and \d+ are not in the log/);
    expect(run.zh).toMatch(/^检测 \S+：网关 \S+ 序号 \d+ 至 \d+ 之间有 \d+ 条记录不在透明日志中/);
    expect(run.zh).toContain(/^run (\S+):/.exec(run.en)?.[1] ?? 'no run id');
    // the same standing as the supervisor's
    const atSup = (await atSupervisor<{ tier: string; score: number }>('/api/labs/lab-1')).body;
    expect(view).toMatchObject({ configured: true, lab: 'lab-1', tier: atSup.tier, score: atSup.score });
    expect(view.score).toBeGreaterThan(0);
    expect(view.scoring.bands.map((b) => b.tier)).toEqual(['A', 'B', 'C', 'D']);
    expect(view.checks.length).toBeGreaterThan(0);
    // the evidence stays at the supervisor; the answer carries the finding's words only
    expect(JSON.stringify(view)).not.toContain('inclusionProof');
  });

  test('is read by the admin and auditors; the technician, the signatory and a client are refused', async () => {
    expect((await standing('auditor')).status).toBe(200);
    for (const role of ['technician', 'signatory', 'client'] as const)
      expect({ role, status: (await standing(role)).status }).toEqual({ role, status: 403 });
  });

  test('proxies the signed report (JSON and PDF), and names a bad query parameter', async () => {
    const to = new Date().toISOString().slice(0, 10);
    const from = new Date(Date.now() - 30 * DAY).toISOString().slice(0, 10);
    const json = await lab.t.fetch(`/api/standing/report?from=${from}&to=${to}&lang=zh-CN`, {}, 'auditor');
    expect(json.status).toBe(200);
    expect(json.headers.get('content-disposition')).toMatch(/attachment/);
    const file = (await json.json()) as { report: { lab: { id: string } }; signed: { signature: string } };
    expect(file.report.lab.id).toBe('lab-1');
    expect(file.signed.signature).not.toBe('');
    const pdf = await lab.t.fetch(`/api/standing/report.pdf?from=${from}&to=${to}`, {}, 'admin');
    expect(pdf.status).toBe(200);
    expect(pdf.headers.get('content-type')).toMatch(/application\/pdf/);
    expect(
      Buffer.from(await pdf.arrayBuffer())
        .subarray(0, 5)
        .toString(),
    ).toBe('%PDF-');
    const future = new Date(Date.now() + 2 * DAY).toISOString().slice(0, 10);
    const bad = await lab.call<{ code: string; error: string }>(`/api/standing/report?from=${from}&to=${future}`, {}, 'admin');
    expect(bad).toMatchObject({ status: 400, body: { code: 'E_BAD_REQUEST', error: expect.stringMatching(/^query: to:/) } });
    const lang = await lab.call<{ issues: { path: string }[] }>(`/api/standing/report?from=${from}&to=${to}&lang=fr`, {}, 'admin');
    expect(lang.status).toBe(400);
    expect(lang.body.issues.map((i) => i.path)).toEqual(['lang']);
    expect((await lab.t.fetch(`/api/standing/report?from=${from}&to=${to}`, {}, 'technician')).status).toBe(403);
  });

  test("the admin's response lands at the supervisor and in the lab's audit trail", async () => {
    const view = (await standing()).body as Configured;
    const gap = view.findings.find((f) => f.rule === 'sequence-gaps');
    if (gap === undefined) throw new Error('no finding');
    const text = 'The gateway lost power during the run; the gap is the ten readings it never sent. Spare UPS fitted.';
    // the others may read, not answer
    for (const role of ['auditor', 'technician', 'signatory', 'client'] as const)
      expect({ role, status: (await lab.call(`/api/standing/findings/${gap.id}/response`, postJson({ text }), role)).status }).toEqual({
        role,
        status: 403,
      });
    const res = await lab.call<{ finding: { responses: { text: string }[] }; auditEntry: number }>(
      `/api/standing/findings/${gap.id}/response`,
      postJson({ text }),
      'admin',
    );
    expect(res.status).toBe(201);
    expect(res.body.finding.responses.map((r) => r.text)).toEqual([text]);
    // at the supervisor: the lab's word, marked as the lab's
    const there = (await atSupervisor<{ findings: StoredFinding[] }>('/api/labs/lab-1/findings')).body.findings.find((f) => f.id === gap.id);
    expect(there?.responses).toEqual([{ at: expect.any(Number), author: 'lab lab-1: admin', kind: 'response', text }]);
    // in the lab's trail, by the admin
    const trail = await lab.call<{ items: { id: number; actor: string; action: string; recordId: string; newValue: { text: string } }[] }>(
      '/api/audit-trail?recordType=supervision-response',
      {},
      'admin',
    );
    expect(trail.body.items).toEqual([
      expect.objectContaining({
        id: res.body.auditEntry,
        actor: 'admin',
        action: 'create',
        recordId: `lab-1/${gap.id}`,
        newValue: expect.objectContaining({ text }),
      }),
    ]);
    // and the lab's standing shows it
    const after = (await standing('auditor')).body as Configured;
    expect(after.findings.find((f) => f.id === gap.id)?.responses.map((r) => r.text)).toEqual([text]);
  });

  test('a bad response is refused naming the field; an unknown finding is a 404 and leaves no trace in the trail', async () => {
    const short = await lab.call<{ issues: { path: string }[] }>('/api/standing/findings/1/response', postJson({ text: 'ok' }), 'admin');
    expect(short.status).toBe(400);
    expect(short.body.issues.map((i) => i.path)).toEqual(['text']);
    const extra = await lab.call<{ issues: { path: string }[] }>(
      '/api/standing/findings/1/response',
      postJson({ text: 'a reasoned answer', author: 'x' }),
      'admin',
    );
    expect(extra.status).toBe(400);
    const id = await lab.call<{ issues: { path: string }[] }>(
      '/api/standing/findings/first/response',
      postJson({ text: 'a reasoned answer' }),
      'admin',
    );
    expect(id.status).toBe(400);
    expect(id.body.issues.map((i) => i.path)).toEqual(['id']);
    const before = await lab.call<{ items: unknown[] }>('/api/audit-trail?recordType=supervision-response', {}, 'admin');
    const unknown = await lab.call<{ code: string }>('/api/standing/findings/99999/response', postJson({ text: 'a reasoned answer' }), 'admin');
    expect(unknown).toMatchObject({ status: 404, body: { code: 'E_NOT_FOUND' } });
    const after = await lab.call<{ items: unknown[] }>('/api/audit-trail?recordType=supervision-response', {}, 'admin');
    expect(after.body.items.length).toBe(before.body.items.length);
  });

  test("the lab's token reads its own lab only, and neither resolves nor checks", async () => {
    expect((await atSupervisor('/api/labs/lab-1/findings', {}, STANDING)).status).toBe(200);
    expect((await atSupervisor('/api/labs/lab-2', {}, STANDING)).status).toBe(403);
    expect((await atSupervisor('/api/labs/lab-2/findings', {}, STANDING)).status).toBe(403);
    expect((await atSupervisor('/api/labs', {}, STANDING)).status).toBe(403);
    expect((await atSupervisor('/api/labs/lab-1/check', { method: 'POST' }, STANDING)).status).toBe(403);
    const resolve = await atSupervisor(
      '/api/labs/lab-1/findings/1/resolve',
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ author: 'lab', text: 'resolved by ourselves' }) },
      STANDING,
    );
    expect(resolve.status).toBe(403);
  });
});

describe('configuration', () => {
  test('supervision: errors name the field', () => {
    const issues = (value: unknown) =>
      (serverConfigSchema.safeParse({ supervision: value }).error?.issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(issues({ url: 'ftp://x', lab: 'lab-1', tokenEnv: 'T' })).toEqual(['supervision.url: expected an http(s) URL']);
    expect(issues({ url: 'http://x', lab: 'lab 1', tokenEnv: 'T' })).toEqual([expect.stringMatching(/^supervision\.lab: /)]);
    expect(issues({ url: 'http://x', lab: 'lab-1' })).toEqual(['supervision.tokenFile: tokenFile or tokenEnv is required']);
    expect(issues({ url: 'http://x', lab: 'lab-1', tokenEnv: 'T', token: 'inline' })).toEqual([expect.stringMatching(/^supervision: .*token/)]);
  });

  test('the standing token: from its variable or file, at least 32 characters', () => {
    const config = { url: 'http://x', lab: 'lab-1' };
    expect(standingTokenOf({ ...config, tokenEnv: 'STANDING' }, { STANDING })).toBe(STANDING);
    expect(() => standingTokenOf({ ...config, tokenEnv: 'STANDING' }, { STANDING: 'short' })).toThrow(
      /^supervision\.tokenEnv: the standing token must have at least 32 characters$/,
    );
    expect(() => standingTokenOf({ ...config, tokenEnv: 'STANDING' }, {})).toThrow(/^supervision\.tokenEnv: STANDING is not set/);
    expect(() => standingTokenOf({ ...config, tokenFile: path.join(dir, 'missing') }, {})).toThrow(/^supervision\.tokenFile: .*file not found/);
  });
});

describe('without its supervisor', () => {
  test('a clear 502 with a code when the supervisor cannot be reached', async () => {
    stopped = true;
    await supervisor.stop();
    const res = await standing();
    expect(res).toMatchObject({ status: 502, body: { code: 'E_SUPERVISOR_UNAVAILABLE', error: expect.stringMatching(/cannot be reached/) } });
    expect(JSON.stringify(res.body)).not.toContain(STANDING);
    // the lab's log: the response was logged, the standing token never
    expect(lines.some((l) => l.includes('"part":"standing"'))).toBe(true);
    expect(lines.filter((l) => l.includes(STANDING))).toEqual([]);
  });
});
