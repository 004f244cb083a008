// The lab's standing with its supervisor in a real headless Chromium: a real supervisor follows a real lab with a
// seeded finding (a gap in a gateway's sequence numbers), and the lab's server reads it with its standing token. The
// admin sees the tier with its bands and the finding with how to clear it (English, a desktop, Shanghai time) and
// answers it through the form (a short answer is refused first); the answer lands at the supervisor and in the lab's
// audit trail. An auditor reads the same view in Chinese on a 390x844 phone, without the form, and downloads the
// report; a technician is not offered the view. axe-core finds no serious violation in either language.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pino from 'pino';
import { parseVerifierKey, formatSignerKey, parseSignerKey } from '@labtrace/protocols';
import { DEFAULT_RULE_SETTINGS } from '../../server/dist/src/supervisor/evidence.js';
import { Supervisor } from '../../server/dist/src/supervisor/supervisor.js';
import { SeededLab } from '../../server/dist/test/supervisor/lab-seeding.js';
import { call, launch, WAIT } from './helpers/browser.js';
import { describeUntranslated, untranslatedText } from './helpers/page-checks.js';
import { DESKTOP, message, overflowing, PHONE, seriousViolations, signInAs } from './helpers/records.js';

const TOKEN = 'supervisor-api-token-for-dashboard-tests-0123456789';
const STANDING = 'the-lab-standing-token-for-dashboard-0123456789';
const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-standing-ui-'));
let lab;
let supervisor;
let port;
let browser;
let rules;

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: p } = server.address();
  await new Promise((resolve) => server.close(() => resolve()));
  return p;
}

async function atSupervisor(p, init = {}) {
  const res = await fetch(`http://127.0.0.1:${port}${p}`, { ...init, headers: { ...init.headers, authorization: `Bearer ${TOKEN}` } });
  return { status: res.status, body: await res.json() };
}

beforeAll(async () => {
  port = await freePort();
  const tokenFile = path.join(dir, 'standing.token');
  writeFileSync(tokenFile, STANDING);
  lab = await SeededLab.start({ supervision: { url: `http://127.0.0.1:${port}`, lab: 'lab-1', tokenFile } });
  await lab.completedRun({ skip: 10 });
  const keys = await (await fetch(`${lab.t.base}/api/log/keys`)).json();
  supervisor = new Supervisor(
    {
      host: '127.0.0.1',
      port,
      database: path.join(dir, 'supervisor.db'),
      apiToken: TOKEN,
      key: parseSignerKey(formatSignerKey('supervisor.example/reports', new Uint8Array(32).fill(6))),
      followEveryMs: 3_600_000,
      settings: DEFAULT_RULE_SETTINGS,
      labs: [
        {
          id: 'lab-1',
          name: 'lab-1',
          url: lab.t.base,
          origin: parseVerifierKey(keys.log.verifierKey).name,
          logKey: keys.log.verifierKey,
          token: lab.t.tokens.auditor,
          standingToken: STANDING,
          witnesses: [],
          witnessesRequired: 0,
        },
      ],
    },
    pino({ level: 'silent' }),
  );
  await supervisor.start();
  expect((await atSupervisor('/api/labs/lab-1/check', { method: 'POST' })).status).toBe(200);
  rules = new Map((await atSupervisor('/api/rules')).body.rules.map((r) => [r.id, r]));
  browser = await launch();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await supervisor?.stop();
  await lab?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** a finding's summary as the supervisor holds it ({en, zh}) */
async function summaryAtSupervisor(rule) {
  return (await atSupervisor('/api/labs/lab-1/findings')).body.findings.find((f) => f.rule === rule).summary;
}

const remedyIn = (remedy, language) => (typeof remedy === 'string' ? remedy : language === 'zh-CN' && remedy.zh ? remedy.zh : remedy.en);

describe("the lab's standing", () => {
  test('the admin reads the tier and the finding in English and answers it; the answer is in both logs', async () => {
    const admin = await signInAs(browser, lab.t, 'admin', { screen: DESKTOP, timezoneId: 'Asia/Shanghai' });
    try {
      const { page } = admin;
      await page.click('[data-test="nav-standing"]');
      await page.waitForSelector('[data-test="standing-view"][data-loaded="yes"]', WAIT);
      const standing = (await atSupervisor('/api/labs/lab-1')).body;
      expect(await page.locator('[data-test="standing-tier"]').getAttribute('data-tier')).toBe(standing.tier);
      expect(await page.locator('[data-test="standing-tier"]').innerText()).toContain(message('en', 'standing.tier.label', { tier: standing.tier }));
      expect(await page.locator('[data-test="standing-bands"] li').count()).toBe(4);
      const finding = page.locator('[data-test="finding"][data-rule="sequence-gaps"]');
      const rule = rules.get('sequence-gaps');
      expect(await finding.locator('[data-test="finding-title"]').innerText()).toBe(rule.title.en);
      expect(await finding.locator('[data-test="finding-remedy"]').innerText()).toBe(remedyIn(rule.remedy, 'en'));
      const summary = await summaryAtSupervisor('sequence-gaps');
      expect(await finding.locator('[data-test="finding-summary"]').innerText()).toBe(summary.en);
      expect(await finding.locator('[data-test="finding-summary"]').getAttribute('lang')).toBe('en');
      // times in the user's zone, named
      expect(await finding.innerText()).toMatch(/GMT\+8/);
      expect(await seriousViolations(page)).toEqual([]);

      // a short answer: named at the field, nothing sent
      const form = finding.locator('[data-test="respond-form"]');
      await form.getByLabel(message('en', 'standing.respond.label')).fill('ok');
      await form.locator('[data-test="respond-submit"]').click();
      expect(await form.locator('[data-test="field-error"]').innerText()).toBe(message('en', 'standing.respond.tooShort', { min: 10 }));
      const id = Number(await finding.getAttribute('data-id'));
      const text = 'The gateway lost power during the run; the ten readings were never sent. A UPS is now fitted.';
      await form.getByLabel(message('en', 'standing.respond.label')).fill(text);
      await form.locator('[data-test="respond-submit"]').click();
      await page.waitForSelector('[data-test="response-notice"] p', WAIT);
      await page.locator(`[data-test="finding"][data-id="${id}"] [data-test="finding-response"]`).first().waitFor(WAIT);
      expect(await page.locator(`[data-test="finding"][data-id="${id}"] [data-test="finding-responses"]`).innerText()).toContain(text);
      // at the supervisor, and in the lab's own trail
      const there = (await atSupervisor('/api/labs/lab-1/findings')).body.findings.find((f) => f.id === id);
      expect(there.responses).toEqual([expect.objectContaining({ author: 'lab lab-1: admin', kind: 'response', text })]);
      const trail = await call(lab.t, '/api/audit-trail?recordType=supervision-response', undefined, 'admin');
      expect(trail.items).toEqual([
        expect.objectContaining({ actor: 'admin', recordId: `lab-1/${id}`, newValue: expect.objectContaining({ text }) }),
      ]);
      expect(admin.errors).toEqual([]);
    } finally {
      await admin.close();
    }
  }, 120_000);

  test('an auditor reads it in Chinese on a phone, without the form, and downloads the report', async () => {
    const auditor = await signInAs(browser, lab.t, 'auditor', { screen: PHONE, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' });
    try {
      const { page } = auditor;
      await page.goto(`${lab.t.base}/#/standing`);
      await page.waitForSelector('[data-test="standing-view"][data-loaded="yes"]', WAIT);
      expect(await page.locator('#standing-title').innerText()).toBe(message('zh-CN', 'standing.title'));
      const finding = page.locator('[data-test="finding"][data-rule="sequence-gaps"]');
      const rule = rules.get('sequence-gaps');
      expect(await finding.locator('[data-test="finding-title"]').innerText()).toBe(rule.title.zh);
      expect(await finding.locator('[data-test="finding-title"]').getAttribute('lang')).toBe('zh-CN');
      expect(await finding.locator('[data-test="finding-remedy"]').innerText()).toBe(remedyIn(rule.remedy, 'zh-CN'));
      // what was found, in Chinese as the supervisor's rule wrote it
      const summary = await summaryAtSupervisor('sequence-gaps');
      expect(summary.zh).toMatch(/^检测 \S+：网关 \S+ 序号 \d+ 至 \d+ 之间有 \d+ 条记录不在透明日志中/);
      expect(await finding.locator('[data-test="finding-summary"]').innerText()).toBe(summary.zh);
      expect(await finding.locator('[data-test="finding-summary"]').getAttribute('lang')).toBe('zh-CN');
      expect(await page.locator('[data-test="respond-form"]').count()).toBe(0);
      // no English left in the Chinese view but what is declared English (a reference) or a record as written (a
      // response, never machine-translated)
      expect(describeUntranslated(await untranslatedText(page, ['lab-1', 'admin', 'auditor', 'gw-a']))).toEqual([]);
      expect(await overflowing(page)).toEqual([]);
      expect(await seriousViolations(page)).toEqual([]);
      // the report links ask for the period in the user's zone and the chosen language
      const href = await page.locator('[data-test="report-json"]').getAttribute('href');
      expect(href).toMatch(/^\/api\/standing\/report\?from=\d{4}-\d{2}-\d{2}T00%3A00%3A00%2B08%3A00&to=.*&lang=zh-CN$/);
      const json = await page.evaluate(async (url) => {
        const res = await fetch(url);
        return { status: res.status, body: await res.json() };
      }, href);
      expect(json.status).toBe(200);
      expect(json.body.report.lab.id).toBe('lab-1');
      const pdfHref = await page.locator('[data-test="report-pdf"]').getAttribute('href');
      const pdf = await page.evaluate(async (url) => {
        const res = await fetch(url);
        return { status: res.status, type: res.headers.get('content-type') };
      }, pdfHref);
      expect(pdf).toEqual({ status: 200, type: expect.stringMatching(/application\/pdf/) });
      // a period ending in the future is not offered
      await page.locator('#report-to').fill('2999-01-01');
      await page.locator('[data-test="report-period-error"]').waitFor(WAIT);
      expect(auditor.errors).toEqual([]);
    } finally {
      await auditor.close();
    }
  }, 120_000);

  test('a technician is not offered the view, and the server refuses it', async () => {
    const technician = await signInAs(browser, lab.t, 'technician', { screen: DESKTOP });
    try {
      expect(await technician.page.locator('[data-test="nav-standing"]').count()).toBe(0);
      expect((await lab.t.fetch('/api/standing', {}, 'technician')).status).toBe(403);
    } finally {
      await technician.close();
    }
  }, 60_000);
});
