// The instrument register and an instrument's page in a real headless Chromium against a real server, fed by a
// test gateway that signs its measurements: a technician finds the instrument, records a calibration with the
// calibrating lab's PDF (checked through the API, and the downloaded file's SHA-256 equals the uploaded one's),
// takes the instrument out of service and back with reasons (the history shows both; the server refuses a run in
// between), and opens the history chart and changes its range (the series route is asked for the new range, the
// chart shows its answer, the CSV holds what is shown); in Chinese on a phone in Shanghai, an intermediate check is
// recorded, a range typed in the user's zone reaches the server as UTC, and the page fits and passes axe. An
// auditor reads the page without the technician's actions.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { topicFor } from '@labtrace/protocols';
import { LAB, send, startServer, TestGateway, waitFor } from '../../server/dist/test/helpers/server.js';
import { REPO_ROOT } from '../../server/dist/test/helpers/lab-process.js';
import { call, launch, WAIT } from './helpers/browser.js';
import { DESKTOP, message, overflowing, PHONE, seriousViolations, signInAs } from './helpers/records.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const INSTRUMENT = 'utm-7';
/** a small PDF as a calibrating lab sends it (header, a page, trailer) */
const PDF = Buffer.from(
  '%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n' +
    '3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n',
  'latin1',
);
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

let t;
let browser;
let gw;

/** saves a picture for the docs when LABTRACE_SCREENSHOTS=1 */
async function docShot(page, what) {
  if (process.env.LABTRACE_SCREENSHOTS !== '1') return;
  const dir = path.join(REPO_ROOT, 'docs', 'screenshots');
  mkdirSync(dir, { recursive: true });
  // CSS pixels: a phone's 2x picture would be four times the bytes for the docs
  await page.screenshot({ path: path.join(dir, `instruments-${what}.png`), fullPage: false, scale: 'css' });
}

/** the series requests the page makes, as {from, to, channel} */
function seriesRequests(page) {
  const seen = [];
  page.on('request', (req) => {
    const url = new URL(req.url());
    if (url.pathname === `/api/instruments/${INSTRUMENT}/series`)
      seen.push({ from: Number(url.searchParams.get('from')), to: Number(url.searchParams.get('to')), channel: url.searchParams.get('channel') });
  });
  return seen;
}

beforeAll(async () => {
  t = await startServer({ calibration: { requireForRuns: true } });
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.announce([
    {
      id: INSTRUMENT,
      identity: {
        maker: 'ZwickRoell',
        model: 'Z100',
        serialNumber: 'ZR-7731',
        firmware: '3.2.1',
        kind: 'universal-testing-machine',
        location: 'Hall 2, bay 3',
      },
      channels: [
        { name: 'force', unit: 'kN' },
        { name: 'extension', unit: 'mm' },
      ],
    },
  ]);
  await waitFor('the instrument', () => t.server.database.sqlite.prepare('SELECT 1 FROM instruments WHERE id = ?').get(INSTRUMENT) !== undefined);
  // a force reading every minute of the last 30 hours: a day's range shows more than an hour's
  const now = Date.now();
  const samples = [];
  for (let i = 0; i < 30 * 60; i++) {
    const ts = now - 30 * HOUR + i * 60_000;
    samples.push({ seq: i, instrument: INSTRUMENT, channel: 'force', ts, value: 40 + 5 * Math.sin(i / 30), unit: 'kN', quality: 'good' });
  }
  for (let i = 0; i < samples.length; i += 500) expect(await send(t, gw, gw.sign(samples.slice(i, i + 500)))).toBe('acked');
  // the gateway's health report: kept by the server, charted on the instrument's page
  await gw.client.publishAsync(
    topicFor(LAB, 'gw-a', 'HEALTH'),
    JSON.stringify({
      v: 1,
      gateway: 'gw-a',
      ts: Date.now(),
      instruments: [
        {
          instrument: INSTRUMENT,
          connected: true,
          lastGood: Date.now(),
          errors: { timeout: 3 },
          polls: 1200,
          latencyMs: { p50: 4, p99: 12 },
          problem: 'instrument error: -222,"Data out of range"',
        },
      ],
    }),
    { qos: 1 },
  );
  await waitFor(
    'the stored health report',
    () => t.server.database.sqlite.prepare('SELECT 1 FROM instrument_health WHERE instrument = ?').get(INSTRUMENT) !== undefined,
  );
  // a second instrument, to be searched away
  await t.server.registry.recordBirth(LAB, {
    v: 1,
    gateway: 'gw-b',
    session: 1,
    version: 't',
    instruments: [
      {
        id: 'bal-2',
        identity: { maker: 'Sartorius', model: 'Cubis II', serialNumber: 'S-2' },
        protocol: 'balance',
        channels: [{ name: 'mass', unit: 'g' }],
      },
    ],
  });
  browser = await launch();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await gw?.end();
  await t?.stop();
});

describe('instruments', () => {
  test('a technician records a calibration with its certificate, takes the instrument out of service and back, and reads its history (en)', async () => {
    const s = await signInAs(browser, t, 'technician', { locale: 'en-US', timezoneId: 'UTC', screen: DESKTOP });
    try {
      const { page } = s;
      const requests = seriesRequests(page);
      // the register: search, then open the instrument's page
      await page.click('[data-test="nav-instruments"]');
      await page.waitForSelector(`[data-test="register-row"][data-instrument="bal-2"]`, WAIT);
      await page.fill('[data-test="register-search"]', 'zwick');
      await page.waitForFunction(() => document.querySelectorAll('[data-test="register-row"]').length === 1, undefined, WAIT);
      const row = page.locator(`[data-test="register-row"][data-instrument="${INSTRUMENT}"]`);
      expect(await row.getAttribute('data-status')).toBe('never-calibrated');
      await row.locator('[data-test="register-open"]').click();
      await page.waitForSelector('[data-test="instrument-page"][data-loaded="true"]', WAIT);
      expect(await page.locator('[data-test="identity-serial"]').innerText()).toBe('ZR-7731');
      expect(await page.locator('[data-test="identity-location"]').innerText()).toBe('Hall 2, bay 3');

      // health over time: the stored report, as the server answers it
      await page.waitForSelector('[data-test="health-chart"][data-loaded="true"]', WAIT);
      const health = await call(t, `/api/instruments/${INSTRUMENT}/health`, undefined, 'auditor');
      expect(health.points).toHaveLength(1);
      expect(await page.locator('[data-test="health-chart"]').getAttribute('data-points')).toBe('1');
      expect(await page.locator('[data-test="health-last"]').innerText()).toMatch(/1200 polls.*3/);
      // a calibration with its certificate (PDF)
      await page.click('[data-test="calibration-open"]');
      const form = page.locator('[data-test="calibration-form"]');
      await form.locator('input[name="laboratory"]').fill('NIM Calibration Centre');
      await form.locator('input[name="certificate"]').fill('JZ-2026-0815');
      await form.locator('input[name="results.0.point"]').fill('50 kN');
      await form.locator('input[name="results.0.reference"]').fill('50');
      await form.locator('input[name="results.0.indication"]').fill('50.04');
      await form.locator('input[name="results.0.unit"]').fill('kN');
      await form.locator('input[name="uncertainty.value"]').fill('0.05');
      await form.locator('input[name="uncertainty.unit"]').fill('kN');
      await form.locator('textarea[name="adjustments"]').fill('none');
      await form.locator('[data-test="calibration-file"]').setInputFiles({ name: 'JZ-2026-0815.pdf', mimeType: 'application/pdf', buffer: PDF });
      await form.evaluate((el) => el.scrollIntoView({ block: 'start' }));
      await docShot(page, 'calibration-form');
      await form.locator('[data-test="calibration-submit"]').click();
      await page.waitForSelector('[data-test="calibration-saved"]', WAIT);
      const record = page.locator('[data-test="calibration-record"][data-certificate="JZ-2026-0815"]');
      await record.locator('[data-test="calibration-attachment"]').waitFor(WAIT);
      expect(await record.locator('[data-test="calibration-attachment"]').getAttribute('data-sha256')).toBe(sha256(PDF));
      // through the API: the record, and its certificate with the uploaded file's digest
      const stored = await call(t, `/api/instruments/${INSTRUMENT}/calibrations`, undefined, 'auditor');
      const calibration = stored.calibrations.find((c) => c.certificate === 'JZ-2026-0815');
      expect(calibration).toMatchObject({
        laboratory: 'NIM Calibration Centre',
        results: [{ point: '50 kN', reference: 50, indication: 50.04, unit: 'kN' }],
        uncertainty: { value: 0.05, unit: 'kN', k: 2 },
        adjustments: 'none',
        recordedBy: 'technician',
        attachment: { filename: 'JZ-2026-0815.pdf', sha256: sha256(PDF), size: PDF.length, uploadedBy: 'technician' },
      });
      expect(calibration.nextDueAt - calibration.calibratedAt).toBeGreaterThan(360 * DAY);
      // the download, through the page's link, is the very file uploaded
      const [download] = await Promise.all([page.waitForEvent('download', WAIT), record.locator('[data-test="calibration-download"]').click()]);
      expect(download.suggestedFilename()).toBe('JZ-2026-0815.pdf');
      expect(sha256(readFileSync(await download.path()))).toBe(sha256(PDF));
      await page.waitForSelector('[data-test="instrument-calibration"] [data-status="valid"]', WAIT);

      // out of service, with a reason asked in the confirmation
      await page.click('[data-test="service-change"]');
      const dialog = page.locator('[data-test="confirm-dialog"]');
      await dialog.waitFor(WAIT);
      expect(await dialog.locator('[data-test="confirm-ok"]').isDisabled()).toBe(true);
      await dialog.locator('[data-test="confirm-reason"]').fill('load cell overloaded during test R-12');
      await dialog.locator('[data-test="confirm-ok"]').click();
      await page.waitForSelector('[data-test="service"][data-status="out-of-service"]', WAIT);
      expect((await call(t, `/api/instruments/${INSTRUMENT}/status`, undefined, 'auditor')).current).toMatchObject({
        status: 'out-of-service',
        reason: 'load cell overloaded during test R-12',
        actor: 'technician',
      });
      // the interlock is the server's: no run starts with it now
      const blockers = (await call(t, `/api/instruments/${INSTRUMENT}/status`, undefined, 'auditor')).blockers;
      expect(blockers.join(' ')).toMatch(/out of service/);
      expect(await page.locator('[data-test="service-blockers"]').innerText()).toMatch(/out of service/);
      // and back, with its reason
      await page.click('[data-test="service-change"]');
      await dialog.waitFor(WAIT);
      await dialog.locator('[data-test="confirm-reason"]').fill('load cell replaced and verified with 20 kN check weight');
      await dialog.locator('[data-test="confirm-ok"]').click();
      await page.waitForSelector('[data-test="service"][data-status="in-service"]', WAIT);
      const entries = page.locator('[data-test="service-entry"]');
      await page.waitForFunction(() => document.querySelectorAll('[data-test="service-entry"]').length === 2, undefined, WAIT);
      expect(await entries.evaluateAll((els) => els.map((e) => [e.dataset.status, e.dataset.reason]))).toEqual([
        ['in-service', 'load cell replaced and verified with 20 kN check weight'],
        ['out-of-service', 'load cell overloaded during test R-12'],
      ]);
      expect(await page.locator('[data-test="service-history"]').innerText()).toContain('load cell overloaded during test R-12');
      expect((await call(t, `/api/instruments/${INSTRUMENT}/status`, undefined, 'auditor')).history.map((h) => [h.status, h.reason])).toEqual([
        ['out-of-service', 'load cell overloaded during test R-12'],
        ['in-service', 'load cell replaced and verified with 20 kN check weight'],
      ]);

      // the history chart: the last hour first, then the last day (the series route asked for 24 h)
      const box = page.locator('[data-test="history-box"]');
      await page.waitForSelector('[data-test="history-box"][data-loaded="true"]', WAIT);
      const first = requests.at(-1);
      expect(first).toMatchObject({ channel: 'force' });
      expect(first.to - first.from).toBe(HOUR);
      const hourPoints = Number(await box.getAttribute('data-points'));
      expect(hourPoints).toBeGreaterThan(0);
      const before = requests.length;
      await page.click('[data-test="history-range-day"]');
      await page.waitForFunction(
        (n) => Number(document.querySelector('[data-test="history-box"]')?.getAttribute('data-points')) > n,
        hourPoints,
        WAIT,
      );
      const day = requests.slice(before).at(-1);
      expect(day.to - day.from).toBe(DAY);
      expect(Number(await box.getAttribute('data-from'))).toBe(day.from);
      expect(Number(await box.getAttribute('data-to'))).toBe(day.to);
      // the chart shows the server's answer for that range
      const answer = await call(
        t,
        `/api/instruments/${INSTRUMENT}/series?channel=force&from=${day.from}&to=${day.to}&points=600`,
        undefined,
        'auditor',
      );
      expect(Number(await box.getAttribute('data-points'))).toBe(answer.points.length);
      // zoomed in from the keyboard's button: a narrower range is read again
      const zoomed = requests.length;
      await page.click('[data-test="history-zoom-in"]');
      await waitFor('the zoomed series request', () => requests.length > zoomed);
      const narrower = requests.at(-1);
      // each range is read once: neither the preset nor the button reads it again after the zoom plugin settles
      await page.waitForTimeout(700);
      expect(requests.slice(before).map((r) => Math.round((r.to - r.from) / 1000))).toEqual([DAY / 1000, DAY / 2000]);
      expect(Math.abs(narrower.to - narrower.from - DAY / 2)).toBeLessThanOrEqual(1);
      expect(Math.abs((narrower.from + narrower.to) / 2 - (day.from + day.to) / 2)).toBeLessThanOrEqual(1);
      await page.waitForFunction(
        (from) =>
          document.querySelector('[data-test="history-box"]')?.getAttribute('data-from') === String(from) &&
          document.querySelector('[data-test="history-box"]')?.getAttribute('data-loaded') === 'true',
        narrower.from,
        WAIT,
      );
      // the mouse wheel over the chart zooms in too (chartjs-plugin-zoom), and the narrower span is read again
      const wheeled = requests.length;
      await page.locator('[data-test="history-canvas"]').scrollIntoViewIfNeeded();
      const canvas = await page.locator('[data-test="history-canvas"]').boundingBox();
      await page.mouse.move(canvas.x + canvas.width / 2, canvas.y + canvas.height / 2);
      await page.mouse.wheel(0, -300);
      await waitFor('the series request after the wheel', () => requests.length > wheeled);
      const wheel = requests.at(-1);
      expect(wheel.to - wheel.from).toBeLessThan(narrower.to - narrower.from);
      expect(wheel.from).toBeGreaterThanOrEqual(narrower.from);
      expect(wheel.to).toBeLessThanOrEqual(narrower.to);
      await page.waitForFunction(
        (from) =>
          document.querySelector('[data-test="history-box"]')?.getAttribute('data-from') === String(from) &&
          document.querySelector('[data-test="history-box"]')?.getAttribute('data-loaded') === 'true',
        wheel.from,
        WAIT,
      );
      // the CSV holds what the chart shows: one row per point, with the unit in the headers
      const shown = Number(await box.getAttribute('data-points'));
      const [csv] = await Promise.all([page.waitForEvent('download', WAIT), page.click('[data-test="history-csv"]')]);
      const lines = readFileSync(await csv.path(), 'utf8')
        .replace(/^\uFEFF/, '')
        .trim()
        .split('\r\n');
      // (a header with a comma is quoted, RFC 4180)
      expect(lines[0]).toBe('"time (UTC, ISO 8601)",time (UTC),min (kN),mean (kN),max (kN),samples');
      expect(lines.length - 1).toBe(shown);
      expect(lines[1]).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z,/);
      // the chart's text alternative names the channel, its unit and the range
      expect(await page.locator('[data-test="history-canvas"]').getAttribute('aria-label')).toMatch(/^History of force \(kN\) from /);
      await docShot(page, 'page');
      expect(s.errors).toEqual([]);
    } finally {
      await s.close();
    }
  }, 120_000);

  test('in Chinese on a phone in Shanghai: an intermediate check, a range typed in the user’s zone, and a page that fits', async () => {
    const s = await signInAs(browser, t, 'technician', { locale: 'zh-CN', timezoneId: 'Asia/Shanghai', screen: PHONE });
    try {
      const { page } = s;
      // the live list says how each instrument is connected, in Chinese; one whose gateway did not say is said to be so
      const protocolOf = (id) => page.locator(`[data-instrument="${id}"] [data-test="instrument-protocol"]`);
      await protocolOf('bal-2').waitFor(WAIT);
      expect(await protocolOf('bal-2').innerText()).toBe(message('zh-CN', 'instruments.protocol.balance'));
      expect(await protocolOf(INSTRUMENT).innerText()).toBe(message('zh-CN', 'instruments.protocol.unknown'));
      // the problem its gateway reported, as the gateway said it, under a Chinese label
      const problem = await page.locator(`[data-instrument="${INSTRUMENT}"] [data-test="health-problem"]`).innerText();
      expect(problem).toBe(message('zh-CN', 'home.instruments.problem').replace('{problem}', 'instrument error: -222,"Data out of range"'));
      expect(await page.locator('[data-instrument="bal-2"] [data-test="health-problem"]').count()).toBe(0);
      await page.goto(`${t.base}/#/instruments/bal-2`);
      await page.waitForSelector('[data-test="instrument-page"][data-loaded="true"]', WAIT);
      expect(await page.locator('[data-test="identity-protocol"]').innerText()).toBe(message('zh-CN', 'instruments.protocol.balance'));
      const requests = seriesRequests(page);
      await page.goto(`${t.base}/#/instruments/${INSTRUMENT}`);
      await page.waitForSelector(`[data-test="instrument-page"][data-loaded="true"][data-instrument="${INSTRUMENT}"]`, WAIT);
      expect(await page.locator('#calibrations-title').innerText()).toBe(message('zh-CN', 'instruments.calibration.title'));
      // an intermediate check, passed
      await page.click('[data-test="check-open"]');
      const form = page.locator('[data-test="check-form"]');
      await form.locator('textarea[name="description"]').fill('用 20 kN 标准测力仪核查，示值误差 +0.08 %，合格');
      await form.locator('[data-test="check-submit"]').click();
      await page.waitForSelector('[data-test="check-saved"]', WAIT);
      expect(await page.locator('[data-test="check-saved"]').innerText()).toBe(message('zh-CN', 'instruments.check.saved'));
      const { checks } = await call(t, `/api/instruments/${INSTRUMENT}/calibrations`, undefined, 'auditor');
      expect(checks.at(-1)).toMatchObject({
        result: 'pass',
        description: '用 20 kN 标准测力仪核查，示值误差 +0.08 %，合格',
        recordedBy: 'technician',
      });
      // a record made elsewhere (another technician, the API) shows up on the open page: the server announces it
      await call(t, `/api/instruments/${INSTRUMENT}/checks`, { checkedAt: Date.now(), result: 'pass', description: 'announced over socket.io' });
      await page.waitForFunction(
        () => [...document.querySelectorAll('[data-test="check-record"]')].some((r) => r.textContent?.includes('announced over socket.io')),
        undefined,
        WAIT,
      );
      // a custom range typed as Shanghai wall time reaches the server as UTC (08:00 in Shanghai is 00:00 UTC)
      await page.waitForSelector('[data-test="history-box"][data-loaded="true"]', WAIT);
      const yesterday = new Date(Date.now() - DAY).toISOString().slice(0, 10);
      await page.click('[data-test="history-range-custom"]');
      await page.fill('[data-test="history-from"]', `${yesterday}T08:00`);
      await page.fill('[data-test="history-to"]', `${yesterday}T14:30`);
      const before = requests.length;
      await page.click('[data-test="history-apply"]');
      await waitFor('the custom series request', () => requests.length > before);
      expect(requests.at(-1)).toEqual({ from: Date.parse(`${yesterday}T00:00:00Z`), to: Date.parse(`${yesterday}T06:30:00Z`), channel: 'force' });
      await page.waitForFunction(
        (from) => document.querySelector('[data-test="history-box"]')?.getAttribute('data-from') === String(from),
        Date.parse(`${yesterday}T00:00:00Z`),
        WAIT,
      );
      // a start after the end is refused here, in the language
      await page.fill('[data-test="history-from"]', `${yesterday}T15:00`);
      await page.click('[data-test="history-apply"]');
      expect(await page.locator('[data-test="history-custom-error"]').innerText()).toBe(message('zh-CN', 'instruments.history.fromAfterTo'));
      // the page fits the phone and axe finds nothing serious
      expect(await overflowing(page)).toEqual([]);
      expect(await seriousViolations(page)).toEqual([]);
      await page.evaluate(() => window.scrollTo(0, 0));
      await docShot(page, 'phone-zh');
      await page.goto(`${t.base}/#/instruments`);
      await page.waitForSelector(`[data-test="register-row"][data-instrument="${INSTRUMENT}"]`, WAIT);
      // the register filtered by the calibration status: the rows are the server's answer to the same filter
      const expected = (await call(t, '/api/instrument-register?calibration=never-calibrated', undefined, 'auditor')).items.map((i) => i.id);
      expect(expected).toContain('bal-2');
      await page.selectOption('[data-test="register-calibration"]', 'never-calibrated');
      await page.waitForFunction(
        (ids) => [...document.querySelectorAll('[data-test="register-row"]')].map((r) => r.getAttribute('data-instrument')).join() === ids,
        expected.join(),
        WAIT,
      );
      expect(
        await page
          .locator('[data-test="register-row"]')
          .evaluateAll((rows) => rows.every((r) => r.getAttribute('data-status') === 'never-calibrated')),
      ).toBe(true);
      expect(await overflowing(page)).toEqual([]);
      expect(await seriousViolations(page)).toEqual([]);
      expect(s.errors).toEqual([]);
    } finally {
      await s.close();
    }
  }, 120_000);

  test('a bad certificate file is refused in the form, and an auditor reads the page without the technician’s actions', async () => {
    const s = await signInAs(browser, t, 'technician', { locale: 'en-US' });
    try {
      const { page } = s;
      await page.goto(`${t.base}/#/instruments/bal-2`);
      await page.waitForSelector('[data-test="instrument-page"][data-loaded="true"]', WAIT);
      await page.click('[data-test="calibration-open"]');
      const form = page.locator('[data-test="calibration-form"]');
      await form
        .locator('[data-test="calibration-file"]')
        .setInputFiles({ name: 'photo.png', mimeType: 'image/png', buffer: Buffer.from('not a pdf') });
      await form.locator('[data-test="calibration-submit"]').click();
      expect(await page.locator('[data-test="calibration-error"]').innerText()).toBe(message('en', 'instruments.calibration.notPdf'));
      // nothing was recorded
      expect((await call(t, '/api/instruments/bal-2/calibrations', undefined, 'auditor')).calibrations).toEqual([]);
      // a missing field is named by the server's refusal
      await form.locator('[data-test="calibration-file"]').setInputFiles([]);
      await form.locator('[data-test="calibration-submit"]').click();
      await page.waitForSelector('[data-test="calibration-error"]', WAIT);
      expect(await page.locator('[data-test="calibration-error"]').innerText()).toContain(message('en', 'fields.laboratory'));
    } finally {
      await s.close();
    }
    // a calibration of bal-2 with its certificate, through the API: the auditor downloads it, and changes nothing
    const now = Date.now();
    const record = await call(t, '/api/instruments/bal-2/calibrations', {
      calibratedAt: now - DAY,
      laboratory: 'Calibration Lab A',
      certificate: 'CAL-BAL-2',
      results: [{ point: '200 g', reference: 200, indication: 200.0002, unit: 'g' }],
      uncertainty: { value: 0.0003, unit: 'g', k: 2 },
      nextDueAt: now + 365 * DAY,
    });
    const attached = await t.fetch(
      `/api/instruments/bal-2/calibrations/${record.id}/certificate?filename=CAL-BAL-2.pdf`,
      { method: 'PUT', headers: { 'content-type': 'application/pdf' }, body: PDF },
      'technician',
    );
    expect(attached.status).toBe(201);
    const auditor = await signInAs(browser, t, 'auditor', { locale: 'en-US' });
    try {
      const { page } = auditor;
      await page.goto(`${t.base}/#/instruments/bal-2`);
      const shown = page.locator('[data-test="calibration-record"][data-certificate="CAL-BAL-2"]');
      await shown.waitFor(WAIT);
      expect(await page.locator('[data-test="calibration-open"]').count()).toBe(0);
      expect(await page.locator('[data-test="check-open"]').count()).toBe(0);
      expect(await page.locator('[data-test="service-change"]').count()).toBe(0);
      const [download] = await Promise.all([page.waitForEvent('download', WAIT), shown.locator('[data-test="calibration-download"]').click()]);
      expect(sha256(readFileSync(await download.path()))).toBe(sha256(PDF));
      expect(auditor.errors).toEqual([]);
    } finally {
      await auditor.close();
    }
    // a client has no instruments entry, and the server refuses the register
    const res = await t.fetch('/api/instrument-register', {}, 'client');
    expect(res.status).toBe(403);
  }, 60_000);
});
