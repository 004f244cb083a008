// The run views in a real headless Chromium against a real server fed by a signing test gateway: a client
// witnesses its running run (live samples in a chart with the method's limits, an alarm as it arrives) and
// does not see another organization's run; a technician acknowledges the alarm with a reason, sees the
// server's refusal as it is worded, and stops the run; the finished run replays every stored record; a view
// that lost its connection fills in what it missed; a long run's chart stays bounded.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import {
  addOtherClient,
  ORGANIZATION,
  postJson,
  send,
  startServer,
  TestGateway,
  USER_PASSWORD,
  waitFor,
} from '../../server/dist/test/helpers/server.js';
import { call as callAs, launch, screenshot, signIn as signInAs } from './helpers/browser.js';
import { refusalText } from './helpers/records.js';

const WAIT = { timeout: 20_000 };
const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const catalogue = (language, area) => JSON.parse(readFileSync(new URL(`../src/locales/${language}/${area}.json`, import.meta.url), 'utf8'));
const ZH_RUN = catalogue('zh-CN', 'run');
const ZH_CHART = catalogue('zh-CN', 'chart');
const ZH_ALARMS = catalogue('zh-CN', 'alarms');

let t;
let gw;
let browser;
let run;
let otherRun;
let blockedRun;
let unaccreditedRun;
let seq = 0;

const method = {
  id: 'tensile',
  standard: 'ISO 6892-1:2019',
  title: 'Tensile testing at room temperature',
  definition: {
    measurands: [{ name: 'force', unit: 'kN', channel: 'c' }],
    limits: [{ measurand: 'force', min: 0, max: 100 }],
    decisionRule: { kind: 'simple-acceptance' },
    rules: [{ id: 'force-limits', kind: 'limits', severity: 'alarm', channel: 'c', high: 120 }],
    results: [{ name: 'Fm', title: 'maximum force', measurand: 'force', statistic: 'max', resolution: 0.01, limits: { max: 200 } }],
  },
};
/** the lab's accreditation covers ISO 6892-1 force; a method of another standard runs unaccredited */
const ACCREDITATION = {
  accreditations: [
    {
      id: 'cnas-l1234',
      body: 'CNAS',
      number: 'L1234',
      validFrom: '2025-03-01',
      validTo: '2031-02-28',
      scope: [{ standard: 'ISO 6892-1:2019', measurand: 'force', unit: 'kN', min: 0, max: 1000 }],
    },
  ],
};

/** a REST call as a role; fails the test on a refusal */
const call = (p, body, role = 'technician') => callAs(t, p, body, role);

/** one signed batch of `n` samples of ut-1 with the given force (channel c), each followed by one of channel d, timestamped now */
async function sendValues(n, value) {
  const now = Date.now();
  const samples = Array.from({ length: 2 * n }, (_, i) => ({
    seq: seq + i,
    instrument: 'ut-1',
    channel: i % 2 === 0 ? 'c' : 'd',
    ts: now - 2 * n + i,
    value: i % 2 === 0 ? value : i,
    unit: i % 2 === 0 ? 'kN' : 'mm',
    quality: 'good',
  }));
  seq += 2 * n;
  expect(await send(t, gw, gw.sign(samples))).toBe('acked');
}

const signIn = (role) => signInAs(browser, t, role);

/** signed in as a role on a phone (390 x 844), the browser in Chinese and in Shanghai's time zone */
async function signInOnPhone(role) {
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 },
    isMobile: true,
    hasTouch: true,
    deviceScaleFactor: 2,
    locale: 'zh-CN',
    timezoneId: 'Asia/Shanghai',
  });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(`${t.base}/`);
  await page.waitForSelector('[data-test="login"]', WAIT);
  await page.fill('input[name="username"]', role);
  await page.fill('input[name="password"]', USER_PASSWORD);
  await page.click('[data-test="login"] button[type="submit"]');
  await page.waitForSelector('[data-test="user"]', WAIT);
  return { page, context, errors, close: () => context.close() };
}

/** the elements of `root` whose right edge is beyond the visual viewport (cut off on a phone) */
const overflowing = (page, root) =>
  page.evaluate((selector) => {
    const width = window.visualViewport?.width ?? window.innerWidth;
    return [...document.querySelectorAll(`${selector}, ${selector} *`)]
      .filter((e) => {
        const r = e.getBoundingClientRect();
        return r.width > 0 && r.height > 0 && r.right > width + 0.5;
      })
      .map((e) => `${e.tagName.toLowerCase()}.${e.className}[${e.getAttribute('data-test') ?? ''}] right=${e.getBoundingClientRect().right}`);
  }, root);

/** axe-core's critical and serious violations inside `root` */
async function axeViolations(page, root) {
  // evaluated through the debugging protocol: the dashboard's CSP (script-src 'self') refuses an inline script
  await page.evaluate(AXE);
  return page.evaluate(async (selector) => {
    const answer = await window.axe.run(selector);
    return answer.violations
      .filter((v) => v.impact === 'critical' || v.impact === 'serious')
      .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  }, root);
}

/** the hour of an instant in a zone, two digits */
const hourIn = (ms, timeZone) => new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', hourCycle: 'h23' }).format(ms);

const attr = (page, selector, name) => page.locator(selector).first().getAttribute(name);

beforeAll(async () => {
  t = await startServer({ accreditation: ACCREDITATION });
  await addOtherClient(t);
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('ut-1', 'ut-2');
  await waitFor('the instruments', () => t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM instruments').get().n === 2);
  await call('/api/methods', method);
  await call('/api/methods', { ...method, id: 'tensile-astm', standard: 'ASTM E8/E8M-22' });
  await call('/api/lab-samples', {
    id: 'S-1',
    organization: ORGANIZATION,
    description: 'steel bar B500',
    condition: 'intact',
    receivedAt: Date.now(),
  });
  await call('/api/lab-samples', { id: 'S-B', organization: 'org-b', description: 'aluminium bar', condition: 'intact', receivedAt: Date.now() });
  run = (await call('/api/runs', { sample: 'S-1', method: 'tensile', instruments: ['ut-1'] })).id;
  otherRun = (await call('/api/runs', { sample: 'S-B', method: 'tensile', instruments: ['ut-1'] })).id;
  blockedRun = (await call('/api/runs', { sample: 'S-1', method: 'tensile', instruments: ['ut-2'] })).id;
  unaccreditedRun = (await call('/api/runs', { sample: 'S-1', method: 'tensile-astm', instruments: ['ut-1'] })).id;
  await call('/api/instruments/ut-2/status', { status: 'out-of-service', reason: 'load cell overloaded' });
  await call(`/api/runs/${run}/start`, {});
  browser = await launch();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await gw?.end();
  await t?.stop();
});

describe('run views', () => {
  test('a client sees its own runs only, and witnesses its running run: live samples, limits, an alarm', async () => {
    const { page, context, errors, close } = await signIn('client');
    try {
      await page.waitForSelector(`[data-test="run-row"][data-run="${run}"]`, WAIT);
      expect(await page.locator(`[data-test="run-row"][data-run="${otherRun}"]`).count()).toBe(0);
      expect(await page.locator('[data-test="run-row"]').count()).toBe(3);
      // a method outside the accreditation scope is flagged, one inside it is not
      expect(await page.locator(`[data-test="run-row"][data-run="${unaccreditedRun}"] [data-test="not-accredited"]`).count()).toBe(1);
      expect(await page.locator(`[data-test="run-row"][data-run="${run}"] [data-test="not-accredited"]`).count()).toBe(0);
      // the lab's accreditation and its status; no lab-wide instrument list for a client
      await page.waitForSelector('[data-test="accreditation-item"][data-accreditation="cnas-l1234"][data-status="active"]', WAIT);
      expect(await page.locator('[data-test="accreditation"]').innerText()).toMatch(/CNAS L1234/);
      expect(await page.locator('section.instruments').count()).toBe(0);

      await page.click(`[data-test="run-row"][data-run="${run}"] a`);
      await page.waitForSelector('[data-test="run-view"][data-watching="watching"]', WAIT);
      await page.waitForSelector('[data-test="run-connection"][data-connection="connected"]', WAIT);
      expect(await attr(page, '[data-test="run-state"]', 'data-state')).toBe('running');
      // the instrument's identity and calibration status, though the client cannot read the instrument list
      const row = page.locator('[data-test="equipment"] tr[data-instrument="ut-1"]');
      await row.waitFor(WAIT);
      expect(await row.innerText()).toMatch(/m x/);
      expect(await row.locator('[data-test="calibration"]').getAttribute('data-status')).toBe('never-calibrated');

      await sendValues(20, 50);
      await page.waitForFunction(() => Number(document.querySelector('[data-test="charts"]')?.getAttribute('data-live')) >= 40, null, WAIT);
      // every sample of both channels: the method's measurand (c) and the instrument's other channel (d), charted apart
      for (const channel of ['c', 'd'])
        await page.waitForFunction(
          (ch) => Number(document.querySelector(`[data-test="run-chart"][data-channel="${ch}"]`)?.getAttribute('data-points')) === 20,
          channel,
          WAIT,
        );
      // the method's limits (0 and 100) and the inspection rule's bound (120) are in the chart's configuration
      const limits = JSON.parse(await attr(page, '[data-test="run-chart"][data-channel="c"]', 'data-limits'));
      expect(limits.map((l) => [l.kind, l.value]).sort()).toEqual([
        ['alarm', 120],
        ['spec', 0],
        ['spec', 100],
      ]);

      await sendValues(5, 150);
      await page.waitForSelector('[data-test="alarm"][data-state="active"][data-severity="alarm"]', WAIT);
      expect(await page.locator('[data-test="alarm"]').innerText()).toMatch(/force-limits/);
      // the alarm that arrived while the view was open is read out (role="alert"), in the user's language
      const announced = page.locator('[data-test="alarm-announcement"]');
      expect(await announced.getAttribute('role')).toBe('alert');
      await page.waitForFunction(
        () => document.querySelector('[data-test="alarm-announcement"]')?.textContent?.includes('value outside its limits'),
        null,
        WAIT,
      );
      expect(await announced.textContent()).toMatch(/ut-1 \/ c/);
      // a client may not acknowledge
      expect(await page.locator('[data-test="acknowledge"]').count()).toBe(0);
      await screenshot(page, 'run-view-client');

      // the connection drops (the server closes every transport): the view shows it, reconnects, joins the room
      // again and fills in from the stored records what was stored while it was away
      for (const client of Object.values(t.server.live.io.engine.clients)) client.close();
      await sendValues(10, 150);
      await page.waitForSelector('[data-test="run-connection"][data-connection="reconnecting"]', WAIT);
      await page.waitForSelector('[data-test="run-connection"][data-connection="connected"]', WAIT);
      await page.waitForFunction(
        () => Number(document.querySelector('[data-test="run-chart"][data-channel="c"]')?.getAttribute('data-points')) === 35,
        null,
        WAIT,
      );
      // the browser loses its network: the view says so, and says when it is back
      await context.setOffline(true);
      await page.waitForSelector('[data-test="run-connection"][data-connection="offline"]', WAIT);
      await context.setOffline(false);
      await page.waitForSelector('[data-test="run-connection"][data-connection="connected"]', WAIT);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  }, 30_000);

  test('a client in Shanghai opens the run link on a phone, in Chinese: the charts fit and show the newest data, times in +8, a table one click away', async () => {
    const { page, errors, close } = await signInOnPhone('client');
    try {
      await page.goto(`${t.base}/#/runs/${run}`);
      await page.waitForSelector('[data-test="run-view"][data-watching="watching"]', WAIT);
      // the chart has drawn its data: its box says so, and the page marked the time of its first chart once
      await page.waitForSelector('[data-test="run-chart"][data-channel="c"] [data-test="chart-ready"]', WAIT);
      expect(await page.evaluate(() => performance.getEntriesByName('labtrace:first-chart', 'mark').length)).toBe(1);
      expect(await page.locator('html').getAttribute('lang')).toBe('zh-CN');
      expect(await page.locator('[data-test="run-state"]').innerText()).toBe(ZH_RUN.state.running);

      // new values arrive while the client watches (still above the alarm's bound): the chart's time axis reaches the newest one
      await sendValues(5, 150);
      const chart = page.locator('[data-test="run-chart"][data-channel="c"]');
      await page.waitForFunction(
        () => {
          const f = document.querySelector('[data-test="run-chart"][data-channel="c"]');
          return f !== null && Number(f.getAttribute('data-points')) >= 40 && Number(f.dataset.xMax) >= Number(f.dataset.newest);
        },
        null,
        WAIT,
      );
      // nothing of the run view is cut off at the right, and the chart uses the screen's width
      expect(await overflowing(page, '[data-test="run-view"]')).toEqual([]);
      const box = await chart.locator('canvas').boundingBox();
      const width = await page.evaluate(() => window.visualViewport.width);
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width).toBeLessThanOrEqual(width);
      expect(box.width).toBeGreaterThan(width * 0.75);

      // the canvas is an image with a summary: the latest value, its unit and time in Shanghai
      const canvas = chart.locator('canvas');
      expect(await canvas.getAttribute('role')).toBe('img');
      await page.waitForFunction(
        () => /150 kN/.test(document.querySelector('[data-test="run-chart"][data-channel="c"] canvas')?.getAttribute('aria-label') ?? ''),
        null,
        WAIT,
      );
      expect(await canvas.getAttribute('aria-label')).toMatch(/GMT\+8/);

      // the values as a table, one click away
      const toggle = chart.locator('[data-test="chart-table-toggle"]');
      expect(await toggle.getAttribute('aria-expanded')).toBe('false');
      expect(await toggle.innerText()).toBe(ZH_CHART.showTable);
      await toggle.click();
      expect(await toggle.getAttribute('aria-expanded')).toBe('true');
      const rows = chart.locator('[data-test="chart-table-row"]');
      await rows.first().waitFor(WAIT);
      expect(await rows.count()).toBe(10);
      expect(await rows.first().innerText()).toMatch(/150 kN/);
      expect(await overflowing(page, '[data-test="run-view"]')).toEqual([]);

      // times in the page's zone, the zone named: the run's start in Shanghai's hour
      const stored = await call(`/api/runs/${run}`, undefined, 'client');
      const started = await page.locator('[data-test="steps"] [data-step="running"] [data-test="step-time"]').innerText();
      expect(started).toMatch(/GMT\+8/);
      expect(started).toContain(` ${hourIn(stored.startedAt, 'Asia/Shanghai')}:`);
      const alarm = page.locator('[data-test="alarm"]').first();
      expect(await alarm.locator('[data-test="alarm-time"]').innerText()).toMatch(/GMT\+8/);
      expect(await alarm.locator('[data-test="alarm-what"]').innerText()).toContain(ZH_ALARMS.kind.limits);
      expect(await alarm.locator('[data-test="alarm-state"]').innerText()).toContain(ZH_ALARMS.state.active);

      expect(await axeViolations(page, '[data-test="run-view"]')).toEqual([]);
      await screenshot(page, 'run-view-phone-zh');
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  }, 30_000);

  test("an unknown run says so in the user's language", async () => {
    const { page, errors, close } = await signInOnPhone('client');
    try {
      await page.goto(`${t.base}/#/runs/no-such-run`);
      const refusal = page.locator('[data-test="run-view-error"]');
      await refusal.waitFor(WAIT);
      expect(await refusal.getAttribute('data-not-found')).toBe('true');
      expect(await refusal.innerText()).toBe(ZH_RUN.notFound.replace('{id}', 'no-such-run'));
      // the run of another organization is answered like an unknown one
      await page.goto(`${t.base}/#/runs/${otherRun}`);
      await page.waitForSelector(`[data-test="run-view"][data-run="${otherRun}"] [data-test="run-view-error"][data-not-found="true"]`, WAIT);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  }, 30_000);

  test('a technician acknowledges the alarm with a reason, stops the run, plans and aborts another, and sees refusals as the server words them', async () => {
    const { page, errors, close } = await signIn('technician');
    // stopping and aborting a run are confirmed first: the questions are in the user's language
    const questions = [];
    page.on('dialog', (dialog) => {
      questions.push(dialog.message());
      void dialog.accept();
    });
    try {
      // the front page: the instruments with their calibration status
      await page.waitForSelector('tr[data-instrument="ut-2"] [data-test="calibration"][data-status="out-of-service"]', WAIT);

      await page.goto(`${t.base}/#/runs/${run}`);
      const alarm = page.locator('[data-test="alarm"]').first();
      await alarm.waitFor(WAIT);
      // no reason, no request
      await alarm.locator('[data-test="acknowledge"]').click();
      await alarm.locator('[data-test="alarm-error"]').waitFor(WAIT);
      expect(await alarm.getAttribute('data-state')).toBe('active');

      await alarm.locator('[data-test="alarm-reason"]').fill('specimen slipped in the grips');
      await alarm.locator('[data-test="acknowledge"]').click();
      await page.waitForSelector('[data-test="alarm"][data-state="acknowledged"]', WAIT);
      const stored = await call(`/api/runs/${run}/alarms`, undefined);
      expect(stored.alarms[0].acknowledged).toMatchObject({ by: 'technician', reason: 'specimen slipped in the grips' });

      // aborting needs a reason: the dialog's button stays disabled until one is typed; cancelling sends nothing
      await page.click('[data-test="run-abort"]');
      await page.locator('[data-test="confirm-dialog"]').waitFor(WAIT);
      expect(await page.locator('[data-test="confirm-ok"]').isDisabled()).toBe(true);
      await page.click('[data-test="confirm-cancel"]');
      expect(await attr(page, '[data-test="run-state"]', 'data-state')).toBe('running');

      await sendValues(10, 60);
      await page.click('[data-test="run-stop"]');
      expect(await page.locator('#confirm-title').innerText()).toBe(
        `Stop run ${run}? The run is then completed and its results are computed; it cannot be restarted.`,
      );
      await page.click('[data-test="confirm-ok"]');
      await page.waitForSelector('[data-test="run-state"][data-state="completed"]', WAIT);
      expect(questions).toEqual([]);
      await page.waitForSelector('[data-test="steps"] [data-step="completed"]', WAIT);
      // the completed run's results: the value as reported, its verdict by the method's decision rule
      const results = await call(`/api/runs/${run}/results`, undefined);
      await page.waitForSelector(`[data-test="results"][data-verdict="${results.verdict}"]`, WAIT);
      const fm = results.results.find((r) => r.name === 'Fm');
      expect(fm.value).toBe(150);
      // the server's rounded strings, verbatim (one rounding: the report's numbers)
      expect(await page.locator('[data-test="result"][data-result="Fm"] [data-test="result-value"]').innerText()).toBe(`${fm.reported} kN`);
      expect(await page.locator('[data-test="result"][data-result="Fm"] [data-test="result-uncertainty"]').innerText()).toBe(
        `± ${fm.reportedUncertainty} kN (k = ${fm.uncertainty.coverageFactor})`,
      );
      await screenshot(page, 'run-view-technician');
      // on a desktop, in English: the results, the alarm's form and the commands have no serious accessibility problem
      expect(await axeViolations(page, '[data-test="run-view"]')).toEqual([]);

      // a certificate requested for the completed run is listed on the front page, as a draft with nothing to download yet
      const certificate = await call('/api/certificates', { run });
      await page.goto(`${t.base}/#/`);
      const row = page.locator(`[data-test="certificate"][data-certificate="${certificate.id}"]`);
      await row.waitFor(WAIT);
      expect(await row.getAttribute('data-status')).toBe(certificate.status);
      expect(await row.locator('[data-test="certificate-pdf"]').count()).toBe(certificate.digests === null ? 0 : 1);

      // a technician plans a run from the front page, and aborts it with a reason
      const form = page.locator('[data-test="run-create"]');
      await form.locator('select[name="sample"] option[value="S-1"]').waitFor({ state: 'attached', ...WAIT });
      await form.locator('select[name="method"] option[value="tensile"]').waitFor({ state: 'attached', ...WAIT });
      await form.locator('select[name="sample"]').selectOption('S-1');
      await form.locator('select[name="method"]').selectOption('tensile');
      await form.locator('input[name="instrument"][value="ut-1"]').check();
      await form.locator('button[type="submit"]').click();
      await page.waitForSelector('[data-test="run-state"][data-state="planned"]', WAIT);
      await page.waitForSelector('[data-test="run-not-started"]', WAIT);
      const planned = await page.locator('[data-test="run-view"]').getAttribute('data-run');
      await page.click('[data-test="run-abort"]');
      expect(await page.locator('#confirm-title').innerText()).toBe(`Abort run ${planned}? This cannot be undone.`);
      await page.fill('[data-test="confirm-reason"]', 'specimen cracked while mounting');
      await page.click('[data-test="confirm-ok"]');
      await page.waitForSelector('[data-test="steps"] [data-step="aborted"]', WAIT);
      expect(await page.locator('[data-test="steps"] [data-step="aborted"]').innerText()).toMatch(/specimen cracked while mounting/);
      expect(await call(`/api/runs/${planned}`, undefined)).toMatchObject({ state: 'aborted', endReason: 'specimen cracked while mounting' });

      // a run whose instrument is out of service does not start: the refusal is shown as the catalogue words its reason
      await page.goto(`${t.base}/#/runs/${blockedRun}`);
      await page.click('[data-test="run-start"]');
      const refusal = await page.locator('[data-test="run-error"]').innerText();
      const direct = await t.fetch(`/api/runs/${blockedRun}/start`, postJson({}), 'technician');
      expect(direct.status).toBe(409);
      const body = await direct.json();
      expect(body.reason).toBe('run.cannot-start');
      expect(refusal).toBe(refusalText('en', body));
      expect(await attr(page, '[data-test="run-state"]', 'data-state')).toBe('planned');
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  }, 60_000);

  test('a finished run replays every stored record', async () => {
    const stored = await call(`/api/runs/${run}/records`, undefined, 'client');
    expect(stored.samples.length).toBe(100);
    const { page, errors, close } = await signIn('client');
    try {
      await page.goto(`${t.base}/#/runs/${run}/replay`);
      await page.waitForSelector('[data-test="replay"][data-total="100"]', WAIT);
      await page.selectOption('[data-test="replay-speed"]', { label: 'as fast as possible' });
      await page.click('[data-test="replay-play"]');
      await page.waitForFunction(
        (n) => Number(document.querySelector('[data-test="replay"]')?.getAttribute('data-replayed')) === n,
        stored.samples.length,
        WAIT,
      );
      await page.waitForFunction(
        (n) => Number(document.querySelector('[data-test="run-chart"][data-channel="c"]')?.getAttribute('data-points')) === n,
        stored.samples.filter((s) => s.channel === 'c').length,
        WAIT,
      );
      // the alarm raised during the run shows once the replay has passed its time
      await page.waitForSelector('[data-test="replay"] [data-test="alarm"]', WAIT);
      await screenshot(page, 'run-replay');
      // back to the start with the slider: nothing played yet
      await page.locator('[data-test="replay-position"]').fill('0');
      await page.waitForFunction(() => Number(document.querySelector('[data-test="replay"]')?.getAttribute('data-replayed')) < 100, null, WAIT);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  }, 30_000);

  test("on a phone in Chinese: the replay fits, with its times in +8; a technician reaches the run's commands", async () => {
    const client = await signInOnPhone('client');
    try {
      const { page } = client;
      await page.goto(`${t.base}/#/runs/${run}/replay`);
      await page.waitForSelector('[data-test="replay"][data-total="100"]', WAIT);
      await page.selectOption('[data-test="replay-speed"]', { label: ZH_RUN.replayView.fastest });
      await page.click('[data-test="replay-play"]');
      await page.waitForSelector('[data-test="replay"][data-replayed="100"]', WAIT);
      await page.waitForSelector('[data-test="replay"] [data-test="chart-ready"]', WAIT);
      expect(await page.locator('[data-test="replay-progress"]').innerText()).toMatch(/GMT\+8/);
      expect(await overflowing(page, '[data-test="replay"]')).toEqual([]);
      expect(await axeViolations(page, '[data-test="replay"]')).toEqual([]);
      await screenshot(page, 'run-replay-phone-zh');
      expect(client.errors).toEqual([]);
    } finally {
      await client.close();
    }
    const technician = await signInOnPhone('technician');
    try {
      const { page } = technician;
      await page.goto(`${t.base}/#/runs/${blockedRun}`);
      const start = page.locator('[data-test="run-start"]');
      await start.waitFor(WAIT);
      expect(await start.innerText()).toBe(ZH_RUN.actions.start);
      // the commands are on the screen's width, and big enough to touch
      const width = await page.evaluate(() => window.visualViewport.width);
      for (const button of ['run-start', 'run-abort']) {
        const box = await page.locator(`[data-test="${button}"]`).boundingBox();
        expect(box.x + box.width).toBeLessThanOrEqual(width);
        expect(box.height).toBeGreaterThanOrEqual(44);
      }
      // aborting asks, in Chinese, for the reason the server requires: no reason, no abort
      await page.click('[data-test="run-abort"]');
      await page.locator('[data-test="confirm-dialog"]').waitFor(WAIT);
      expect(await page.locator('#confirm-title').innerText()).toBe(ZH_RUN.actions.confirmAbort.replace('{id}', blockedRun));
      expect(await page.locator('[data-test="confirm-ok"]').isDisabled()).toBe(true);
      await page.click('[data-test="confirm-cancel"]');
      expect(await overflowing(page, '[data-test="run-view"]')).toEqual([]);
      expect(await axeViolations(page, '[data-test="run-view"]')).toEqual([]);
      expect(technician.errors).toEqual([]);
    } finally {
      await technician.close();
    }
  }, 40_000);

  test('a long run keeps the chart bounded: the oldest points go, every sample is counted', async () => {
    const long = (await call('/api/runs', { sample: 'S-1', method: 'tensile', instruments: ['ut-1'] })).id;
    await call(`/api/runs/${long}/start`, {});
    const { page, errors, close } = await signIn('client');
    try {
      await page.goto(`${t.base}/#/runs/${long}`);
      await page.waitForSelector('[data-test="run-view"][data-watching="watching"]', WAIT);
      // 8 batches of 3,000 force samples (and as many of channel d): more than the 20,000 points a series keeps
      for (let b = 0; b < 8; b++) await sendValues(3000, 40 + b);
      await page.waitForFunction(() => Number(document.querySelector('[data-test="charts"]')?.getAttribute('data-received')) === 48_000, null, WAIT);
      await page.waitForFunction(
        () => Number(document.querySelector('[data-test="run-chart"][data-channel="c"]')?.getAttribute('data-points')) > 0,
        null,
        WAIT,
      );
      const points = Number(await attr(page, '[data-test="run-chart"][data-channel="c"]', 'data-points'));
      expect(points).toBeLessThanOrEqual(20_000);
      expect(points).toBeGreaterThan(15_000);
      expect(errors).toEqual([]);
    } finally {
      await close();
      await call(`/api/runs/${long}/stop`, {});
    }
  }, 30_000);
});
