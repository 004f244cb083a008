// The signed compliance reports: a supervisor following a lab double (a log that stops while the lab reports
// activity, reports missing from the log) signs a report per period; it verifies offline with the supervisor's public
// key alone (in process and with `labtrace supervisor verify-report`), any changed byte fails, the PDFs in Chinese
// and English carry the expected text and the JSON's digest, a period without findings says so, and a bad query is
// a 400 naming the parameter.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import pino from 'pino';
import { canonicalBytes, formatSignerKey, formatVerifierKey, parseSignerKey, parseVerifierKey, publicKeyFromSeed } from '@labtrace/protocols';
import { params } from '@labtrace/protocols/test/fuzz';
import { checkSignedReport, sha256Hex, type SignedReport } from '../../src/supervisor/compliance-report.js';
import { DEFAULT_RULE_SETTINGS } from '../../src/supervisor/evidence.js';
import { pdfReportDigest } from '../../src/supervisor/report-pdf.js';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import { pdfAttachments, pdfText } from '../certificates/pdf-text.js';
import { collect, exitOf, runLabtrace } from '../helpers/lab-process.js';
import { DOUBLE_ORIGIN, LabDouble } from './log-double.js';

const TOKEN = 'supervisor-api-token-for-tests-0123456789';
const HOUR = 3_600_000;
const SEED = new Uint8Array(32).fill(9);
const KEY = parseSignerKey(formatSignerKey('supervisor.example/reports', SEED));
const PUBLIC_KEY = formatVerifierKey(KEY.name, publicKeyFromSeed(SEED));
const START = Date.UTC(2026, 10, 1);

let dir: string;
let lab: LabDouble;
let supervisor: Supervisor;
let keyless: Supervisor;
let now = START;

function newSupervisor(name: string, key: typeof KEY | undefined): Supervisor {
  return new Supervisor(
    {
      host: '127.0.0.1',
      port: 0,
      database: path.join(dir, `${name}.db`),
      apiToken: TOKEN,
      key,
      followEveryMs: HOUR,
      settings: DEFAULT_RULE_SETTINGS,
      labs: [
        {
          id: 'double',
          name: 'Double Testing Ltd',
          url: lab.url,
          origin: DOUBLE_ORIGIN,
          logKey: lab.logKey,
          token: 'lab-token',
          witnesses: [],
          witnessesRequired: 0,
        },
      ],
      now: () => now,
    },
    pino({ level: 'silent' }),
  );
}

const auth = { authorization: `Bearer ${TOKEN}` };
const post = (p: string, body: unknown): Promise<Response> =>
  fetch(`${supervisor.url}${p}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });

function certificate(id: string, issuedAt: number): Record<string, unknown> {
  return { id, run: 'run-1', status: 'valid', issuedBy: 's', issuedAt, amends: null, amendReason: null, logIndex: null, digests: null };
}

/** the report's bytes as served */
async function report(query: string, pdf = false): Promise<Uint8Array> {
  const res = await fetch(`${supervisor.url}/api/labs/double/reports${pdf ? '.pdf' : ''}?${query}`, { headers: auth });
  if (res.status !== 200) throw new Error(`${res.status}: ${await res.text()}`);
  expect(res.headers.get('content-type')).toMatch(pdf ? /^application\/pdf/ : /^application\/json/);
  return new Uint8Array(await res.arrayBuffer());
}

const parse = (bytes: Uint8Array): SignedReport => JSON.parse(Buffer.from(bytes).toString('utf8')) as SignedReport;

let stalledId: number;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'labtrace-supervisor-reports-'));
  lab = new LabDouble();
  await lab.start();
  // 1 November, 00:00: the log at 2 entries, nothing reported: the supervisor's first round is a clean check
  lab.entries = ['a', 'b'];
  supervisor = newSupervisor('supervisor', KEY);
  keyless = newSupervisor('keyless', undefined);
  await supervisor.start();
  await keyless.start();
  const deadline = Date.now() + 30_000;
  while ((await supervisor.store.checkRuns('double')).length === 0) {
    if (Date.now() > deadline) throw new Error('the supervisor did not run its first round');
    await new Promise((r) => setTimeout(r, 20));
  }
  const check = async (): Promise<void> => {
    const res = await post('/api/labs/double/check', {});
    expect(res.status).toBe(200);
  };
  // 01:00: a report issued at 00:30 (within the grace) but missing from the log
  lab.certificates = [certificate('TR-1', START + HOUR / 2)];
  now = START + HOUR;
  await check();
  // 02:00: another report at 01:30 and the log has not grown: the log stalled
  lab.certificates.push(certificate('TR-2', START + 90 * 60_000));
  now = START + 2 * HOUR;
  await check();
  const findings = (await (await fetch(`${supervisor.url}/api/labs/double/findings`, { headers: auth })).json()) as {
    findings: { id: number; rule: string }[];
  };
  const stalled = findings.findings.find((f) => f.rule === 'log-stalled');
  if (stalled === undefined) throw new Error(`no log-stalled finding: ${JSON.stringify(findings)}`);
  stalledId = stalled.id;
  // 03:00 the lab answers; 04:00 the supervisor resolves
  now = START + 3 * HOUR;
  expect(
    (
      await post(`/api/labs/double/findings/${stalledId}/response`, {
        author: 'Lab quality manager',
        text: 'The log writer was stopped for maintenance.',
      })
    ).status,
  ).toBe(201);
  now = START + 4 * HOUR;
  expect(
    (await post(`/api/labs/double/findings/${stalledId}/resolve`, { author: 'Inspector Wang', text: 'Maintenance record seen; log restored.' }))
      .status,
  ).toBe(201);
  now = START + 3 * 24 * HOUR;
}, 60_000);

afterAll(async () => {
  await supervisor.stop();
  await keyless.stop();
  await lab.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('a signed compliance report', () => {
  test('lists the checks, rules, findings with their evidence, responses and the tier at the end, and verifies offline', async () => {
    const bytes = await report('from=2026-11-01&to=2026-11-02&lang=en');
    const check = checkSignedReport(bytes, [parseVerifierKey(PUBLIC_KEY)]);
    expect(check.ok).toBe(true);
    const { report: r } = parse(bytes);
    expect(r.lab).toEqual({ id: 'double', name: 'Double Testing Ltd', url: lab.url, origin: DOUBLE_ORIGIN, logKey: lab.logKey });
    expect(r.period).toEqual({ from: '2026-11-01T00:00:00.000Z', to: '2026-11-02T00:00:00.000Z' });
    expect(r.checks.count).toBe(3);
    expect(r.checks.runs.map((c) => c.startedAt)).toEqual(['2026-11-01T00:00:00.000Z', '2026-11-01T01:00:00.000Z', '2026-11-01T02:00:00.000Z']);
    expect(r.rules.map((x) => x.id)).toContain('log-stalled');
    expect(r.rules.find((x) => x.id === 'log-stalled')?.reference).toMatch(/ISO\/IEC 17025:2017 7\.5\.1/);
    const stalled = r.findings.find((f) => f.rule === 'log-stalled');
    expect(stalled).toMatchObject({ id: stalledId, severity: 'major', status: 'resolved' });
    // what was found, in both languages whatever the report's language
    expect(stalled?.summary).toEqual({
      en: expect.stringMatching(/^the log stayed at 2 entries from 2026-11-01T00:00:00.000Z to .* \(report TR-2 issued\)$/),
      zh: expect.stringMatching(/^透明日志自 2026-11-01T00:00:00.000Z 至 .*（检测报告 TR-2 签发）$/),
    });
    expect(stalled?.evidence.entries).toEqual([
      expect.objectContaining({ index: 1, kind: 'audit-event', leafHash: expect.stringMatching(/^[A-Za-z0-9+/]{43}=$/) as unknown }),
    ]);
    expect(stalled?.responses.map((x) => [x.kind, x.author])).toEqual([
      ['response', 'Lab quality manager'],
      ['resolution', 'Inspector Wang'],
    ]);
    // the two reports outside the log are critical: tier D at the end of the period
    expect(r.findings.filter((f) => f.rule === 'certificates-logged')).toHaveLength(2);
    expect(r.standing).toMatchObject({ asOf: '2026-11-02T00:00:00.000Z', tier: 'D', score: 60, counted: { minor: 0, major: 0, critical: 2 } });
    expect(r.scoring.bands.map((b) => [b.tier, b.below])).toEqual([
      ['A', 3],
      ['B', 10],
      ['C', 30],
      ['D', null],
    ]);
    // the same request gives the same bytes (the report is as at the end of its period)
    expect(sha256Hex(await report('from=2026-11-01&to=2026-11-02&lang=en'))).toBe(sha256Hex(bytes));
  });

  test('is a statement as at the end of its period: a later resolution is not in it, and the finding counts', async () => {
    const { report: r } = parse(await report('from=2026-11-01&to=2026-11-01T03:30:00Z'));
    const stalled = r.findings.find((f) => f.rule === 'log-stalled');
    expect(stalled?.status).toBe('open');
    expect(stalled?.responses.map((x) => x.kind)).toEqual(['response']);
    expect(r.standing.score).toBe(65);
  });

  test('fails verification on any changed byte, with another key, and with no key given', async () => {
    const bytes = await report('from=2026-11-01&to=2026-11-02&lang=en');
    const keys = [parseVerifierKey(PUBLIC_KEY)];
    fc.assert(
      fc.property(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, delta) => {
        const changed = bytes.slice();
        changed[at] = ((changed[at] ?? 0) + delta) % 256;
        expect(checkSignedReport(changed, keys).ok).toBe(false);
      }),
      params(400),
    );
    // a value changed and the file put back in canonical form: the digest no longer matches
    const edited = parse(bytes);
    edited.report.standing.tier = 'A';
    expect(checkSignedReport(canonicalBytes(edited), keys)).toMatchObject({
      ok: false,
      problem: expect.stringMatching(/does not match the signed digest/) as unknown,
    });
    // the supervisor's own signature of another report does not carry over
    const swapped = parse(bytes);
    swapped.signed.signature = parse(await report('from=2026-11-01&to=2026-11-03&lang=en')).signed.signature;
    expect(checkSignedReport(canonicalBytes(swapped), keys)).toMatchObject({
      ok: false,
      problem: expect.stringMatching(/signature does not verify/) as unknown,
    });
    const other = formatVerifierKey(KEY.name, publicKeyFromSeed(new Uint8Array(32).fill(8)));
    expect(checkSignedReport(bytes, [parseVerifierKey(other)]).ok).toBe(false);
    expect(checkSignedReport(bytes, []).ok).toBe(false);
  });

  test('of a period without findings says so, in the JSON and in both languages of the PDF', async () => {
    const query = 'from=2026-11-01T00:00:00Z&to=2026-11-01T00:30:00Z';
    const { report: r } = parse(await report(query));
    expect(r.summary).toEqual({ findings: 0, bySeverity: { minor: 0, major: 0, critical: 0 }, openAtEnd: 0, resolvedAtEnd: 0 });
    expect(r.findings).toEqual([]);
    expect(r.checks.count).toBe(1);
    expect(r.standing).toMatchObject({ tier: 'A', score: 0 });
    const en = pdfText(await report(`${query}&lang=en`, true)).join('\n');
    expect(en).toContain('No findings in this period.');
    const zh = pdfText(await report(`${query}&lang=zh-CN`, true)).join('\n');
    expect(zh).toContain('本期无发现问题。');
  });
});

describe('the PDF of a report', () => {
  test.each([
    [
      'en',
      [
        'Compliance Report',
        'Standing at the end of the period',
        'Findings in the period',
        'The log stopped advancing while the lab reported activity',
        'Checks run in the period',
        'Rules and their references',
        'Scoring table',
        'Inspector Wang (resolution)',
        'Restore the log (the server',
        'the log stayed at 2 entries',
        'the last entry of the log',
        'End of report',
      ],
      '合规监督报告',
    ],
    [
      'zh-CN',
      [
        '合规监督报告',
        '期末信用等级',
        '本期发现的问题',
        '实验室有业务活动但透明日志停止增长',
        '本期运行的检查',
        '检查规则及依据',
        '评分表',
        'Inspector Wang (监督方处理)',
        '已解决',
        '恢复日志（服务器',
        '透明日志自 2026-11-01',
        '日志的最后一个条目',
        '报告结束',
      ],
      'Compliance Report',
    ],
    [
      'bilingual',
      [
        '合规监督报告 Compliance Report',
        '期末信用等级 Standing at the end of the period',
        '本期发现的问题 Findings in the period',
        '评分表 Scoring table',
        'Inspector Wang (监督方处理 resolution)',
        '透明日志自 2026-11-01',
        'the log stayed at 2 entries',
        '报告结束 End of report',
      ],
      'No findings in this period.',
    ],
  ] as const)(
    'in %s carries the expected text and the signed JSON it is printed from',
    async (lang, expected, absent) => {
      const query = `from=2026-11-01&to=2026-11-02&lang=${lang}`;
      const json = await report(query);
      const pdf = await report(query, true);
      const text = pdfText(pdf).join('\n');
      for (const t of expected) expect(text).toContain(t);
      expect(text).not.toContain(absent);
      // each finding's summary in the report's language only
      if (lang === 'en') expect(text).not.toContain('透明日志自');
      if (lang === 'zh-CN') expect(text).not.toContain('the log stayed at');
      if (lang === 'zh-CN') expect(text).not.toContain('the last entry of the log');
      // the evidence: log index and leaf hash of the stalled log's last entry
      const leaf = parse(json).report.findings.find((f) => f.rule === 'log-stalled')?.evidence.entries[0]?.leafHash ?? 'none';
      // (a long token may be wrapped; the layout's indentation is not part of it)
      expect(text.replace(/\s+/g, '')).toContain(leaf);
      // the JSON's digest is printed and in the document info, and the JSON itself is attached
      expect(text).toContain(sha256Hex(json));
      expect(pdfReportDigest(pdf)).toBe(sha256Hex(json));
      expect([...pdfAttachments(pdf).values()].map((a) => sha256Hex(a))).toEqual([sha256Hex(json)]);
    },
    60_000,
  );
});

describe('labtrace supervisor verify-report', () => {
  test('says VALID for a report and its PDF, INVALID for a changed byte or the PDF of another report', async () => {
    const json = await report('from=2026-11-01&to=2026-11-02&lang=en');
    const pdf = await report('from=2026-11-01&to=2026-11-02&lang=en', true);
    const otherPdf = await report('from=2026-11-01&to=2026-11-03&lang=en', true);
    const file = (name: string, bytes: Uint8Array): string => {
      const p = path.join(dir, name);
      writeFileSync(p, bytes);
      return p;
    };
    const run = async (args: string[]): Promise<{ code: number | null; output: string }> => {
      const proc = runLabtrace(['supervisor', 'verify-report', ...args]);
      const output = collect(proc);
      return { code: await exitOf(proc), output: output() };
    };
    const valid = await run([file('r.json', json), '--key', PUBLIC_KEY, '--pdf', file('r.pdf', pdf)]);
    expect(valid.output).toMatch(/VALID: compliance report of lab double .* tier D .*; the PDF is printed from this report/);
    expect(valid.code).toBe(0);
    const changed = json.slice();
    const at = Buffer.from(json).indexOf('"tier":"D"') + 8;
    changed[at] = 'A'.charCodeAt(0);
    const tampered = await run([file('t.json', changed), '--key', PUBLIC_KEY]);
    expect(tampered.output).toMatch(/INVALID: .*does not match the signed digest/);
    expect(tampered.code).toBe(1);
    const wrongPdf = await run([file('r.json', json), '--key', PUBLIC_KEY, '--pdf', file('o.pdf', otherPdf)]);
    expect(wrongPdf.output).toMatch(/INVALID: .* is printed from another report/);
    expect(wrongPdf.code).toBe(1);
    const noKey = await run([file('r.json', json)]);
    expect(noKey.output).toMatch(/--key: required/);
    expect(noKey.code).toBe(2);
  }, 60_000);

  test('keygen prints a signing key and its public key', async () => {
    const proc = runLabtrace(['supervisor', 'keygen', '--name', 'regulator.example/reports']);
    let stdout = '';
    let stderr = '';
    proc.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    expect(await exitOf(proc)).toBe(0);
    const key = parseSignerKey(stdout.trim());
    expect(key.name).toBe('regulator.example/reports');
    expect(stderr.trim()).toBe(`public key: ${formatVerifierKey(key.name, key.publicKey)}`);
  }, 30_000);
});

describe('the reports API', () => {
  const status = async (query: string, target = supervisor): Promise<{ status: number; body: { code?: string; error?: string } }> => {
    const res = await fetch(`${target.url}/api/labs/double/reports?${query}`, { headers: auth });
    return { status: res.status, body: (await res.json()) as { code?: string; error?: string } };
  };

  test.each([
    ['to=2026-11-02', 'from'],
    ['from=2026-13-01&to=2026-11-02', 'from'],
    ['from=yesterday&to=2026-11-02', 'from'],
    ['from=2026-11-01&to=2026-02-30', 'to'],
    ['from=2026-11-01&to=2026-11-01T10:00', 'to'],
    ['from=2026-11-02&to=2026-11-01', 'to'],
    ['from=2026-11-01&to=2027-01-01', 'to'],
    ['from=2026-11-01&to=2026-11-02&lang=fr', 'lang'],
    ['from=2026-11-01&from=2026-11-02&to=2026-11-03', 'from'],
    ['from=2026-11-01&to=2026-11-02&format=pdf', 'format'],
  ])('%s is a 400 naming %s', async (query, parameter) => {
    const answer = await status(query);
    expect(answer.status).toBe(400);
    expect(answer.body.code).toBe('E_BAD_REQUEST');
    expect(answer.body.error).toMatch(parameter === 'format' ? /"format"/ : new RegExp(`^query: ${parameter}: `));
    const pdf = await fetch(`${supervisor.url}/api/labs/double/reports.pdf?${query}`, { headers: auth });
    expect(pdf.status).toBe(400);
  });

  test('needs the token, an enrolled lab, and a supervisor with a signing key', async () => {
    expect((await fetch(`${supervisor.url}/api/labs/double/reports?from=2026-11-01&to=2026-11-02`)).status).toBe(401);
    expect((await fetch(`${supervisor.url}/api/labs/other/reports?from=2026-11-01&to=2026-11-02`, { headers: auth })).status).toBe(404);
    const refused = await status('from=2026-11-01&to=2026-11-02', keyless);
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatch(/no signing key \(keyFile or LABTRACE_SUPERVISOR_KEY\)/);
    const key = (await (await fetch(`${supervisor.url}/api/key`, { headers: auth })).json()) as { verifierKey: string };
    expect(key.verifierKey).toBe(PUBLIC_KEY);
  });
});
