// The run views in a real headless Chromium against a real server fed by a signing test gateway: a client
// witnesses its running run (live samples in a chart with the method's limits, an alarm as it arrives) and
// does not see another organization's run; a technician acknowledges the alarm with a reason, sees the
// server's refusal as it is worded, and stops the run; the finished run replays every stored record; a view
// that lost its connection fills in what it missed; a long run's chart stays bounded.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import {
  addOtherClient,
  ORGANIZATION,
  postJson,
  send,
  startServer,
  TestGateway,
  waitFor,
  type TestServer,
} from '../../server/dist/test/helpers/server.js';
import type { Role } from '../../server/dist/src/index.js';
import { call as callAs, launch, screenshot, signIn as signInAs, type SignedIn } from './helpers/browser.js';

const WAIT = { timeout: 20_000 };

let t: TestServer;
let gw: TestGateway;
let browser: Browser;
let run: string;
let otherRun: string;
let blockedRun: string;
let unaccreditedRun: string;
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
const call = <T = any>(p: string, body?: unknown, role: Role = 'technician'): Promise<T> => callAs<T>(t, p, body, role);

/** one signed batch of `n` samples of ut-1 with the given force (channel c), each followed by one of channel d, timestamped now */
async function sendValues(n: number, value: number): Promise<void> {
  const now = Date.now();
  const samples = Array.from({ length: 2 * n }, (_, i) => ({
    seq: seq + i,
    instrument: 'ut-1',
    channel: i % 2 === 0 ? 'c' : 'd',
    ts: now - 2 * n + i,
    value: i % 2 === 0 ? value : i,
    unit: i % 2 === 0 ? 'kN' : 'mm',
    quality: 'good' as const,
  }));
  seq += 2 * n;
  expect(await send(t, gw, gw.sign(samples))).toBe('acked');
}

const signIn = (role: Role): Promise<SignedIn> => signInAs(browser, t, role);

const attr = (page: Page, selector: string, name: string): Promise<string | null> => page.locator(selector).first().getAttribute(name);

beforeAll(async () => {
  t = await startServer({ accreditation: ACCREDITATION });
  await addOtherClient(t);
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('ut-1', 'ut-2');
  await waitFor('the instruments', () => (t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM instruments').get() as { n: number }).n === 2);
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
      expect(await page.locator('[data-test="run-state"]').innerText()).toBe('running');
      // the instrument's identity and calibration status, though the client cannot read the instrument list
      const row = page.locator('[data-test="equipment"] tr[data-instrument="ut-1"]');
      await row.waitFor(WAIT);
      expect(await row.innerText()).toMatch(/m x/);
      expect(await row.locator('[data-test="calibration"]').getAttribute('data-status')).toBe('unknown');

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
      const limits = JSON.parse((await attr(page, '[data-test="run-chart"][data-channel="c"]', 'data-limits')) ?? 'null') as {
        kind: string;
        value: number;
      }[];
      expect(limits.map((l) => [l.kind, l.value]).sort()).toEqual([
        ['alarm', 120],
        ['spec', 0],
        ['spec', 100],
      ]);

      await sendValues(5, 150);
      await page.waitForSelector('[data-test="alarm"][data-state="active"][data-severity="alarm"]', WAIT);
      expect(await page.locator('[data-test="alarm"]').innerText()).toMatch(/force-limits/);
      // a client may not acknowledge
      expect(await page.locator('[data-test="acknowledge"]').count()).toBe(0);
      await screenshot(page, 'run-view-client');

      // the connection drops (the server closes every transport): the view shows it, reconnects, joins the room
      // again and fills in from the stored records what was stored while it was away
      const live = t.server.live as unknown as { io: { engine: { clients: Record<string, { close(): void }> } } };
      for (const client of Object.values(live.io.engine.clients)) client.close();
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

  test('a technician acknowledges the alarm with a reason, stops the run, plans and aborts another, and sees refusals as the server words them', async () => {
    const { page, errors, close } = await signIn('technician');
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

      // aborting needs a reason; the view asks for it before sending
      await page.click('[data-test="run-abort"]');
      expect(await page.locator('[data-test="run-error"]').innerText()).toMatch(/reason is required/);

      await sendValues(10, 60);
      await page.click('[data-test="run-stop"]');
      await page.waitForFunction(() => document.querySelector('[data-test="run-state"]')?.textContent === 'completed', null, WAIT);
      await page.waitForSelector('[data-test="steps"] [data-step="completed"]', WAIT);
      // the completed run's results: the value as reported, its verdict by the method's decision rule
      const results = await call<{ verdict: string; results: { name: string; value: number; reported: string }[] }>(
        `/api/runs/${run}/results`,
        undefined,
      );
      await page.waitForSelector(`[data-test="results"][data-verdict="${results.verdict}"]`, WAIT);
      const fm = results.results.find((r) => r.name === 'Fm')!;
      expect(fm.value).toBe(150);
      expect(await page.locator('[data-test="result"][data-result="Fm"]').innerText()).toContain(`${fm.reported} kN`);
      await screenshot(page, 'run-view-technician');

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
      await page.waitForFunction(() => document.querySelector('[data-test="run-state"]')?.textContent === 'planned', null, WAIT);
      const planned = await page.locator('[data-test="run-view"]').getAttribute('data-run');
      await page.fill('[data-test="run-reason"]', 'specimen cracked while mounting');
      await page.click('[data-test="run-abort"]');
      await page.waitForSelector('[data-test="steps"] [data-step="aborted"]', WAIT);
      expect(await page.locator('[data-test="steps"] [data-step="aborted"]').innerText()).toMatch(/specimen cracked while mounting/);
      expect(await call(`/api/runs/${planned}`, undefined)).toMatchObject({ state: 'aborted', endReason: 'specimen cracked while mounting' });

      // a run whose instrument is out of service does not start: the server's words are shown
      await page.goto(`${t.base}/#/runs/${blockedRun}`);
      await page.click('[data-test="run-start"]');
      const refusal = await page.locator('[data-test="run-error"]').innerText();
      const direct = await t.fetch(`/api/runs/${blockedRun}/start`, postJson({}), 'technician');
      expect(direct.status).toBe(409);
      expect(refusal).toBe((await direct.json()).error);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  }, 30_000);

  test('a finished run replays every stored record', async () => {
    const stored = await call<{ samples: { channel: string }[] }>(`/api/runs/${run}/records`, undefined, 'client');
    expect(stored.samples.length).toBe(90);
    const { page, errors, close } = await signIn('client');
    try {
      await page.goto(`${t.base}/#/runs/${run}/replay`);
      await page.waitForSelector('[data-test="replay"][data-total="90"]', WAIT);
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
      await page.waitForFunction(() => Number(document.querySelector('[data-test="replay"]')?.getAttribute('data-replayed')) < 90, null, WAIT);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  }, 30_000);

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
