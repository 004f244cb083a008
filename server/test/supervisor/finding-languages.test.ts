// A finding's summary in both languages, and what was recorded and signed before the rules wrote Chinese: a finding
// stored with its English sentence only loads with the English in both languages, and a report signed with a
// summary as a plain string still verifies (in process and with `labtrace supervisor verify-report`) and prints. The
// PDF prints the summary in the report's language: Chinese in zh-CN, English in en, both in a bilingual report.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import Database from 'better-sqlite3';
import { formatSignerKey, formatVerifierKey, parseSignerKey, parseVerifierKey, publicKeyFromSeed } from '@labtrace/protocols';
import type { ReportLanguage } from '@labtrace/protocols/api';
import { checkSignedReport, composeReport, signReport, type ComplianceReport, type SignedReport } from '../../src/supervisor/compliance-report.js';
import type { EnrolledLab } from '../../src/supervisor/config.js';
import { renderReportPdf } from '../../src/supervisor/report-pdf.js';
import { SupervisorStore } from '../../src/supervisor/supervisor-store.js';
import { pdfText } from '../certificates/pdf-text.js';
import { collect, exitOf, runLabtrace } from '../helpers/lab-process.js';

const SEED = new Uint8Array(32).fill(5);
const KEY = parseSignerKey(formatSignerKey('supervisor.example/reports', SEED));
const PUBLIC_KEY = formatVerifierKey(KEY.name, publicKeyFromSeed(SEED));
const START = Date.UTC(2026, 10, 1);
const HOUR = 3_600_000;
const LAB: EnrolledLab = {
  id: 'lab-1',
  name: 'Lab One',
  url: 'http://127.0.0.1:1',
  origin: 'lab.example/log',
  logKey: 'lab.example/log+00000000+AAAA',
  token: 'lab-token',
  witnesses: [],
  witnessesRequired: 0,
};
/** what a finding recorded before the Chinese summaries holds: its English sentence as plain text */
const OLD = 'report TR-9 has no log entry, and no issue of it is in the log';
const NEW = {
  en: 'report TR-1 amends TR-0 without a reason',
  zh: '检测报告 TR-1 修改了 TR-0，且未说明修改理由',
};

let dir: string;
let store: SupervisorStore;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'labtrace-finding-languages-'));
  const file = path.join(dir, 'supervisor.db');
  store = new SupervisorStore(file);
  await store.open();
  // the older finding, as the store kept it before (the same table, the summary column plain English)
  const db = new Database(file);
  db.prepare(
    'INSERT INTO sup_findings (lab, rule, key, severity, at, detected_at, summary, subject, evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
  ).run(
    'lab-1',
    'certificates-logged',
    'listed/TR-9',
    'critical',
    START,
    START + HOUR,
    OLD,
    '{"certificate":"TR-9"}',
    '{"checkpoint":null,"entries":[]}',
  );
  db.close();
  await store.addFinding({
    lab: 'lab-1',
    rule: 'late-amendment',
    key: 'TR-1',
    severity: 'minor',
    at: START,
    detectedAt: START + 2 * HOUR,
    summary: NEW,
    subject: { certificate: 'TR-1' },
    evidence: { checkpoint: null, entries: [] },
  });
});

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const compose = (lang: ReportLanguage): Promise<ComplianceReport> => composeReport(store, LAB, KEY, { from: START, to: START + 24 * HOUR, lang });
const signed = (report: ComplianceReport): { bytes: Uint8Array; file: SignedReport } => {
  const bytes = signReport(KEY, report);
  return { bytes, file: JSON.parse(Buffer.from(bytes).toString('utf8')) as SignedReport };
};
const printed = async (report: ComplianceReport): Promise<string> => {
  const { bytes, file } = signed(report);
  return pdfText(await renderReportPdf(file, bytes)).join('\n');
};
const times = (text: string, part: string): number => text.split(part).length - 1;

describe("a finding's summary", () => {
  test('is kept in both languages; one recorded in English only loads with its English in both', async () => {
    expect((await store.findings('lab-1')).map((f) => [f.key, f.summary])).toEqual([
      ['listed/TR-9', { en: OLD, zh: OLD }],
      ['TR-1', NEW],
    ]);
  });

  test.each([
    ['zh-CN', [NEW.zh, OLD], [NEW.en]],
    ['en', [NEW.en, OLD], [NEW.zh]],
    ['bilingual', [NEW.zh, NEW.en, OLD], []],
  ] as const)(
    'is printed in the language of a %s report (the older one in its English)',
    async (lang, present, absent) => {
      const report = await compose(lang);
      expect(report.findings.map((f) => f.summary)).toEqual([{ en: OLD, zh: OLD }, NEW]);
      const text = await printed(report);
      for (const t of present) expect(text).toContain(t);
      for (const t of absent) expect(text).not.toContain(t);
      // an English sentence with no Chinese of its own is printed once, even in a bilingual report
      expect(times(text, OLD)).toBe(1);
    },
    60_000,
  );
});

describe('a report signed before the Chinese summaries (each summary a string)', () => {
  // the report as it was signed then: the same report with each finding's summary its English sentence
  const older = async (): Promise<ComplianceReport> => {
    const report = await compose('zh-CN');
    return { ...report, findings: report.findings.map((f) => ({ ...f, summary: typeof f.summary === 'string' ? f.summary : f.summary.en })) };
  };

  test('still verifies, in process and with labtrace supervisor verify-report', async () => {
    const { bytes } = signed(await older());
    expect(Buffer.from(bytes).toString('utf8')).toContain(`"summary":"${OLD}"`);
    expect(checkSignedReport(bytes, [parseVerifierKey(PUBLIC_KEY)])).toMatchObject({ ok: true });
    const file = path.join(dir, 'older.json');
    writeFileSync(file, bytes);
    const proc = runLabtrace(['supervisor', 'verify-report', file, '--key', PUBLIC_KEY]);
    const output = collect(proc);
    expect(await exitOf(proc)).toBe(0);
    expect(output()).toMatch(/^VALID: compliance report of lab lab-1 .*\(zh-CN\): 2 findings/);
  }, 60_000);

  test('still prints, with its English summaries', async () => {
    const text = await printed(await older());
    expect(text).toContain(OLD);
    expect(text).toContain(NEW.en);
    expect(text).not.toContain(NEW.zh);
  }, 60_000);
});
