// The auditor's workspace in a real headless Chromium against a real server fed by a signing test gateway: the
// auditor saves the log's checkpoint, later verifies a run's bundle in the browser (VALID, every check with its
// evidence, consistent with the saved checkpoint), downloads the same bundle, and `labtrace verify` (the command line,
// a child process) agrees; a copy with one changed byte, uploaded, fails naming the failure, and the command line
// names the same. In Chinese, in Shanghai, on a phone: a gateway and a local time range verify; the audit trail's
// export verifies in the browser, a changed copy does not, and `labtrace verify-audit` agrees.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, URLSearchParams } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { ORGANIZATION, send, startServer, TestGateway, waitFor } from '../../server/dist/test/helpers/server.js';
import { call, launch, WAIT } from './helpers/browser.js';
import { DESKTOP, message, overflowing, PHONE, seriousViolations, signInAs } from './helpers/records.js';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(ROOT, 'bin', 'labtrace.js');
const LONG = { timeout: 30_000 };
const tmp = mkdtempSync(path.join(tmpdir(), 'labtrace-verify-view-'));

let t;
let gw;
let browser;
let run;
let seq = 0;
/** the span of the batches sent (ms) */
let firstTs = 0;
let lastTs = 0;

/** docs/screenshots/auditor-<what>.png when LABTRACE_SCREENSHOTS=1 (the visible viewport: small files) */
async function docShot(page, what) {
  if (process.env.LABTRACE_SCREENSHOTS !== '1') return;
  mkdirSync(path.join(ROOT, 'docs', 'screenshots'), { recursive: true });
  await page.screenshot({ path: path.join(ROOT, 'docs', 'screenshots', `auditor-${what}.png`) });
}

/** one signed batch of n samples of ut-1, timestamped just now */
async function sendBatch(n) {
  const now = Date.now();
  const samples = Array.from({ length: n }, (_, i) => ({
    seq: seq + i,
    instrument: 'ut-1',
    channel: 'c',
    ts: now - n + i,
    value: 10 + i,
    unit: 'kN',
    quality: 'good',
  }));
  seq += n;
  firstTs ||= samples[0].ts;
  lastTs = samples[samples.length - 1].ts;
  expect(await send(t, gw, gw.sign(samples))).toBe('acked');
}

/** waits until the log's latest signed checkpoint covers everything appended so far */
async function checkpointCoversAll() {
  const size = t.server.log.size;
  await waitFor('a checkpoint of the whole log', () => Number(t.server.log.latestCheckpoint().note.split('\n')[1]) >= size);
}

/** the command line, as an auditor runs it: its exit code and output */
function labtrace(args) {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    proc.on('exit', (code) => resolve({ code, out }));
  });
}

/** unpacks an archive with the system's tar and answers the bundle's folder (the one holding bundle.json) */
function unpack(archive, name) {
  const dir = path.join(tmp, name);
  mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['-xf', archive, '-C', dir]);
  const find = (d) => {
    if (readdirSync(d).includes('bundle.json')) return d;
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) return find(path.join(d, e.name));
    throw new Error(`no bundle in ${archive}`);
  };
  return find(dir);
}

/** one changed byte inside batches.jsonl's first batch's record bytes (a base64 letter swapped for another) */
function tamper(archive) {
  const bytes = readFileSync(archive);
  const at = bytes.indexOf(Buffer.from('"records":"')) + '"records":"'.length + 40;
  expect(at).toBeGreaterThan(20);
  bytes[at] = bytes[at] === 0x41 ? 0x42 : 0x41; // 'A' <-> 'B'
  const out = archive.replace(/\.tar$/, '-tampered.tar');
  writeFileSync(out, bytes);
  return out;
}

beforeAll(async () => {
  t = await startServer({ log: { minCheckpointIntervalMs: 100 } });
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('ut-1');
  await waitFor('the instrument', () => t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM instruments').get().n === 1);
  await call(t, '/api/methods', {
    id: 'tensile',
    standard: 'ISO 6892-1:2019',
    title: 'Tensile testing at room temperature',
    definition: {
      measurands: [{ name: 'force', unit: 'kN', channel: 'c' }],
      limits: [{ measurand: 'force', min: 0, max: 1000 }],
      decisionRule: { kind: 'simple-acceptance' },
    },
  });
  await call(t, '/api/lab-samples', { id: 'S-1', organization: ORGANIZATION, description: 'steel bar', condition: 'intact', receivedAt: Date.now() });
  run = (await call(t, '/api/runs', { sample: 'S-1', method: 'tensile', instruments: ['ut-1'] })).id;
  await call(t, `/api/runs/${run}/start`, {});
  await new Promise((r) => setTimeout(r, 20));
  await sendBatch(20);
  await checkpointCoversAll();
  browser = await launch();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await gw?.end();
  await t?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe("the auditor's workspace", () => {
  test('a run verifies in the browser against the published key and a saved checkpoint; a changed byte fails; labtrace verify agrees', async () => {
    const auditor = await signInAs(browser, t, 'auditor', { screen: DESKTOP });
    try {
      const { page } = auditor;
      await page.click('[data-test="nav-verify"]');
      await page.waitForSelector('[data-test="verify-view"] [data-test="verify-log-key"] code', WAIT);
      // the published log key is the server's
      const keys = await (await t.fetch('/api/log/keys')).json();
      expect(await page.locator('[data-test="verify-log-key"] code').innerText()).toBe(keys.log.verifierKey);

      // the auditor keeps today's checkpoint ...
      const [saved] = await Promise.all([page.waitForEvent('download', WAIT), page.click('[data-test="verify-save-checkpoint"]')]);
      const savedFile = path.join(tmp, 'saved-checkpoint.txt');
      await saved.saveAs(savedFile);
      const savedText = readFileSync(savedFile, 'utf8');
      const savedSize = Number(savedText.split('\n')[1]);
      expect(savedSize).toBeGreaterThan(0);

      // ... the log grows: more batches, the run ends
      await sendBatch(20);
      await sendBatch(20);
      await call(t, `/api/runs/${run}/stop`, {});
      await checkpointCoversAll();

      // the run's bundle, with the saved checkpoint from its file
      await page.fill('[data-test="verify-run"]', run);
      await page.setInputFiles('[data-test="verify-checkpoint-file"]', savedFile);
      await page.waitForFunction(() => document.querySelector('[data-test="verify-checkpoint"]').value.includes('—'), undefined, WAIT);
      await page.click('[data-test="verify-start"]');
      await page.waitForSelector('[data-test="verify-view"][data-state="done"]', LONG);
      expect(await page.locator('[data-test="verify-verdict"]').getAttribute('data-verdict')).toBe('verified');
      expect(await page.locator('[data-test="verify-verdict"] strong').innerText()).toBe(message('en', 'verify.verdict.verified'));
      const states = await page
        .locator('[data-test="verify-check"]')
        .evaluateAll((items) => Object.fromEntries(items.map((i) => [i.getAttribute('data-check'), i.getAttribute('data-state')])));
      expect(states).toEqual({
        checkpoint: 'valid',
        saved: 'valid',
        keys: 'valid',
        signatures: 'valid',
        roots: 'valid',
        inclusion: 'valid',
        sequence: 'valid',
        statement: 'valid',
      });
      // the evidence: the saved checkpoint's size, the batches' signatures, the sequence numbers 0..59
      expect(await page.locator('[data-check="saved"]').innerText()).toContain(String(savedSize));
      expect(await page.locator('[data-check="signatures"]').innerText()).toContain(message('en', 'verify.evidence.ofBatches', { n: 3, total: 3 }));
      expect(await page.locator('[data-check="sequence"]').innerText()).toContain('0–59');
      await docShot(page, 'verify-valid');
      expect(await seriousViolations(page, '[data-test="verify-view"]')).toEqual([]);

      // the same bundle, downloaded for the command line: it verifies there too, consistent with the same checkpoint
      const [download] = await Promise.all([page.waitForEvent('download', WAIT), page.click('[data-test="verify-download"]')]);
      const archive = path.join(tmp, download.suggestedFilename());
      await download.saveAs(archive);
      const cpRoot = (await page.locator('[data-check="checkpoint"] dd code').first().innerText()).trim();
      const cpSize = Number((await page.locator('[data-check="checkpoint"] dd').nth(1).innerText()).trim());
      expect(cpSize).toBeGreaterThan(0);
      const honest = await labtrace(['verify', unpack(archive, 'honest'), '--checkpoint', savedFile, '--json']);
      expect(honest.code).toBe(0);
      const honestReport = JSON.parse(honest.out);
      expect(honestReport.status).toBe('verified');
      expect(honestReport.savedCheckpoint).toMatchObject({ size: savedSize, consistent: true });
      // the download is the bundle fetched again: under the checkpoint the page showed, or a later one when the log
      // grew meanwhile (an entry of the audit trail's): never another tree of the same size
      const { size, root } = honestReport.checkpoint;
      expect(size === cpSize ? root : size > cpSize).toBe(size === cpSize ? cpRoot : true);

      // one changed byte, uploaded: the browser names the failure, the command line the same
      const tampered = tamper(archive);
      await page.check('[data-test="verify-source-file"]');
      await page.setInputFiles('[data-test="verify-file"]', tampered);
      await page.click('[data-test="verify-start"]');
      await page.waitForSelector('[data-test="verify-verdict"][data-verdict="failed"]', LONG);
      const kind = await page.locator('[data-test="verify-verdict"]').getAttribute('data-kind');
      expect(kind).not.toBe('');
      expect(await page.locator('[data-test="verify-failure"]').innerText()).toBe(message('en', `verify.problem.${kind}`));
      const browserKinds = await page.locator('[data-test="verify-problem"]').evaluateAll((ps) => ps.map((p) => p.getAttribute('data-kind')));
      const failed = await labtrace(['verify', unpack(tampered, 'tampered'), '--checkpoint', savedFile, '--json']);
      expect(failed.code).toBe(1);
      const failedReport = JSON.parse(failed.out);
      expect(failedReport.status).toBe('failed');
      expect(failedReport.problems.map((p) => p.kind)).toEqual(browserKinds);
      expect(failedReport.problems[0].kind).toBe(kind);
      // a Merkle root recomputed from the changed record no longer matches its signed header
      expect(await page.locator('[data-check="roots"]').getAttribute('data-state')).toBe('failed');
      await docShot(page, 'verify-failed');
      expect(auditor.errors).toEqual([]);
    } finally {
      await auditor.close();
    }
  }, 120_000);

  test('in Chinese, in Shanghai, on a phone: a gateway and a local time range verify; the audit export verifies, a changed copy does not', async () => {
    const auditor = await signInAs(browser, t, 'auditor', { locale: 'zh-CN', timezoneId: 'Asia/Shanghai', screen: PHONE });
    try {
      const { page } = auditor;
      await page.goto(`${t.base}/#/verify`);
      await page.waitForSelector('[data-test="verify-view"] [data-test="verify-log-key"] code', WAIT);
      await page.check('[data-test="verify-source-range"]');
      await page.selectOption('[data-test="verify-gateway"]', 'gw-a');
      // the span of the batches as a Shanghai wall clock (UTC+8), a second either side
      const local = (ms) => new Date(ms + 8 * 3_600_000).toISOString().slice(0, 19);
      await page.getByLabel(message('zh-CN', 'verify.from')).fill(local(firstTs - 1000));
      await page.getByLabel(message('zh-CN', 'verify.to')).fill(local(lastTs + 1000));
      // the download link is the export of exactly that span, in UTC
      const href = await page.locator('[data-test="verify-download"]').getAttribute('href');
      const query = new URLSearchParams(href.split('?')[1]);
      expect(query.get('gateway')).toBe('gw-a');
      expect(Date.parse(query.get('from'))).toBe(Math.floor((firstTs - 1000) / 1000) * 1000);
      await page.click('[data-test="verify-start"]');
      await page.waitForSelector('[data-test="verify-view"][data-state="done"]', LONG);
      expect(await page.locator('[data-test="verify-verdict"]').getAttribute('data-verdict')).toBe('verified');
      expect(await page.locator('[data-test="verify-verdict"] strong').innerText()).toBe(message('zh-CN', 'verify.verdict.verified'));
      expect(await page.locator('[data-check="roots"] strong').innerText()).toBe(message('zh-CN', 'verify.check.roots'));
      expect(await page.locator('[data-check="saved"]').getAttribute('data-state')).toBe('skipped');
      expect(await overflowing(page, '[data-test="verify-view"]')).toEqual([]);
      expect(await seriousViolations(page, '[data-test="verify-view"]')).toEqual([]);
      await docShot(page, 'verify-zh-phone');

      // the audit trail's whole export, verified in the browser
      await page.click('[data-test="verify-audit-server"]');
      await page.waitForSelector('[data-test="verify-audit-verdict"][data-verdict="verified"]', LONG);
      const exported = await (await t.fetch('/api/audit-trail/export', {}, 'auditor')).text();
      const lastHash = JSON.parse(exported.trim().split('\n').at(-1)).lastHash;
      expect(await page.locator('[data-test="verify-audit-verdict"] code').innerText()).toBe(lastHash);
      // a copy with one entry's reason changed: the browser and verify-audit both refuse it, naming the same entry
      const lines = exported.split('\n');
      const i = lines.findIndex((l) => l.includes('"recordType":"lab-sample"'));
      lines[i] = lines[i].replace('"recordId":"S-1"', '"recordId":"S-2"');
      const changed = path.join(tmp, 'audit-changed.jsonl');
      writeFileSync(changed, lines.join('\n'));
      await page.setInputFiles('[data-test="verify-audit-file"]', changed);
      await page.click('[data-test="verify-audit-file-start"]');
      await page.waitForSelector('[data-test="verify-audit-verdict"][data-verdict="failed"]', LONG);
      const failure = await page.locator('[data-test="verify-audit-failure"]').innerText();
      const cli = await labtrace(['verify-audit', changed, '--json']);
      expect(cli.code).toBe(1);
      expect(JSON.parse(cli.out).failure).toBe(failure);
      expect(failure).toMatch(/hash does not match/);
      expect(auditor.errors).toEqual([]);
    } finally {
      await auditor.close();
    }
  }, 120_000);

  test('a technician is not offered the workspace', async () => {
    const tech = await signInAs(browser, t, 'technician');
    try {
      await tech.page.waitForSelector('[data-test="nav-home"]', WAIT);
      expect(await tech.page.locator('[data-test="nav-verify"]').count()).toBe(0);
    } finally {
      await tech.close();
    }
  }, 30_000);
});
