// The lab manager's overview in a real headless Chromium against a real server: runs done through the REST API
// (completed with records from a signing test gateway, running, planned; a report requested), then each figure on
// screen, in English and in Chinese, equals GET /api/overview's for the browser's zone; a figure's link opens the list
// it counts with its filter in the address, and that filter, asked of the list's API, counts the same; only the
// admin, signatories and auditors are offered the view.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Browser, Page } from 'playwright-core';
import type { Overview } from '@labtrace/protocols/api';
import { ORGANIZATION, send, startServer, TestGateway, waitFor, type TestServer } from '../../server/dist/test/helpers/server.js';
import { REPO_ROOT } from '../../server/dist/test/helpers/lab-process.js';
import { call, launch, signIn } from './helpers/browser.js';

const WAIT = { timeout: 20_000 };
let t: TestServer;
let gw: TestGateway;
let browser: Browser;
let seq = 0;

const method = {
  id: 'tensile',
  standard: 'ISO 6892-1:2019',
  title: 'Tensile testing',
  definition: {
    measurands: [{ name: 'force', unit: 'kN', channel: 'force' }],
    limits: [{ measurand: 'force', max: 100 }],
    decisionRule: { kind: 'simple-acceptance' },
    results: [{ name: 'Fm', title: 'maximum force', measurand: 'force', statistic: 'max', resolution: 0.01, limits: { max: 100 } }],
    // a warning above 130 kN (only the running run goes there): the open alarms' figure
    rules: [{ id: 'force-limits', kind: 'limits', severity: 'alarm', channel: 'force', warnHigh: 130, high: 150 }],
  },
};

/** docs/screenshots/<name>.png when LABTRACE_SCREENSHOTS=1 */
async function docShot(page: Page, name: string): Promise<void> {
  if (process.env['LABTRACE_SCREENSHOTS'] !== '1') return;
  const dir = path.join(REPO_ROOT, 'docs', 'screenshots');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: false });
}

async function run(sample: string, values: number[] | undefined, state: 'planned' | 'running' | 'completed'): Promise<string> {
  await call(t, '/api/lab-samples', {
    id: sample,
    organization: ORGANIZATION,
    description: 'steel bar',
    condition: 'intact',
    receivedAt: Date.now() - 3_600_000,
  });
  const id = (await call<{ id: string }>(t, '/api/runs', { sample, method: method.id, instruments: ['ut-1'] })).id;
  if (state === 'planned') return id;
  await call(t, `/api/runs/${id}/start`, {});
  if (values) {
    const now = Date.now();
    const samples = values.map((value, i) => ({
      seq: seq++,
      instrument: 'ut-1',
      channel: 'force',
      ts: now + i,
      value,
      unit: 'kN',
      quality: 'good' as const,
    }));
    expect(await send(t, gw, gw.sign(samples))).toBe('acked');
  }
  if (state === 'completed') await call(t, `/api/runs/${id}/stop`, {});
  return id;
}

beforeAll(async () => {
  t = await startServer();
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.announce([
    { id: 'ut-1', identity: { maker: 'Zwick', model: 'Z100', serialNumber: '1' }, channels: [{ name: 'force', unit: 'kN' }] },
    { id: 'ut-2', identity: { maker: 'Zwick', model: 'Z050', serialNumber: '2' }, channels: [{ name: 'force', unit: 'kN' }] },
  ]);
  await waitFor('the instruments', () => (t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM instruments').get() as { n: number }).n === 2);
  // ut-1 falls due in 10 days (due soon); ut-2 was never calibrated
  await call(t, '/api/instruments/ut-1/calibrations', {
    calibratedAt: Date.now() - 355 * 86_400_000,
    laboratory: 'Reference Lab',
    certificate: 'CAL-UT-1',
    results: [{ point: 'p1', reference: 10, indication: 10.01, unit: 'kN' }],
    uncertainty: { value: 0.1, unit: 'kN', k: 2 },
    nextDueAt: Date.now() + 10 * 86_400_000,
  });
  await call(t, '/api/methods', method);
  const passed = await run('S-1', [40, 52, 47], 'completed');
  await run('S-2', [120, 80], 'completed'); // above the limit: fail
  await run('S-3', [10], 'completed');
  await run('S-4', undefined, 'planned');
  const running = await run('S-5', [5, 140], 'running');
  await waitFor('the alarm', async () => (await t.server.inspection.alarmsOf(running)).alarms.length === 1);
  await call(t, '/api/certificates', { run: passed }, 'technician');
  browser = await launch();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await gw?.end();
  await t?.stop();
});

async function apiOverview(zone: string): Promise<Overview> {
  const res = await t.fetch(`/api/overview?zone=${encodeURIComponent(zone)}`, {}, 'signatory');
  expect(res.status).toBe(200);
  return (await res.json()) as Overview;
}

/** every figure on screen: its data-test name, the value it carries and the number it shows */
const figuresOn = (page: Page) =>
  page.$$eval('[data-test^="figure-"]', (els) =>
    els.map((e) => ({
      name: e.getAttribute('data-test') ?? '',
      value: e.getAttribute('data-value') ?? '',
      shown: e.querySelector('.value')?.textContent ?? '',
    })),
  );

function expectFiguresEqual(figures: { name: string; value: string; shown: string }[], o: Overview, locale: string): void {
  const n = (x: number) => new Intl.NumberFormat(locale).format(x);
  const expected: Record<string, number> = {
    'figure-today-started': o.runs.today.started,
    'figure-today-completed': o.runs.today.completed,
    'figure-today-aborted': o.runs.today.aborted,
    'figure-month-started': o.runs.month.started,
    'figure-month-completed': o.runs.month.completed,
    'figure-month-aborted': o.runs.month.aborted,
    'figure-running': o.runs.running,
    'figure-planned': o.runs.planned,
    'figure-verdict-pass': o.verdicts.pass,
    'figure-verdict-fail': o.verdicts.fail,
    'figure-verdict-no-decision': o.verdicts.noDecision,
    'figure-drafts': o.drafts.count,
    'figure-calibrations-due': o.calibrations.dueSoon,
    'figure-calibrations-expired': o.calibrations.expired,
    'figure-calibrations-never': o.calibrations.never,
    'figure-alarms': o.alarms.open,
    'figure-gateways': o.gateways.connected,
  };
  for (const [name, value] of Object.entries(expected)) {
    const f = figures.find((x) => x.name === name);
    expect({ name, value: f?.value }).toEqual({ name, value: String(value) });
    if (name !== 'figure-gateways') expect({ name, shown: f?.shown }).toEqual({ name, shown: n(value) });
  }
  const util = figures.filter((f) => f.name === 'figure-utilisation');
  // a running run keeps adding to its instrument's time between the page's read and the test's: same instruments,
  // the same share to a tenth of a percentage point
  expect(util.length).toBe(o.utilisation.length);
  util.forEach((f, i) => expect(Math.abs(Number(f.value) - (o.utilisation[i]?.share ?? NaN))).toBeLessThan(0.001));
}

describe('the overview', () => {
  test('in English for a signatory: the figures are the API’s; a figure opens its filtered list', async () => {
    const { page, close, errors } = await signIn(browser, t, 'signatory', undefined, '[data-test="nav-overview"]', {
      locale: 'en-GB',
      timezoneId: 'Europe/Berlin',
      viewport: { width: 1440, height: 1000 },
    });
    try {
      await page.click('[data-test="nav-overview"]');
      await page.waitForSelector('[data-test="overview"][data-loaded="true"]', WAIT);
      const o = await apiOverview('Europe/Berlin');
      expect(o.runs.today.completed).toBe(3);
      expect(o.verdicts).toEqual({ pass: 2, fail: 1, noDecision: 0 });
      expect(o.drafts.count).toBe(1);
      expectFiguresEqual(await figuresOn(page), o, 'en-GB');
      expect(await page.locator('[data-test="overview"] h2').innerText()).toBe('Lab overview');
      await page.waitForSelector('[data-test="chart-daily"] canvas', WAIT);
      await docShot(page, 'overview-desktop-en');

      // the running runs' figure: its list, filtered, counts what the figure says
      const running = page.locator('[data-test="figure-running"]');
      expect(await running.getAttribute('href')).toBe('#/runs?state=running');
      const listed = (await call<{ items: unknown[] }>(t, '/api/runs?state=running', undefined, 'signatory')).items.length;
      expect(listed).toBe(o.runs.running);
      await running.click();
      await page.waitForFunction(() => window.location.hash === '#/runs?state=running', null, WAIT);

      // the drafts awaiting signature: the certificates list filtered to drafts
      await page.goBack();
      await page.waitForSelector('[data-test="overview"][data-loaded="true"]', WAIT);
      const drafts = page.locator('[data-test="figure-drafts"]');
      expect(await drafts.getAttribute('href')).toBe('#/certificates?status=draft');
      expect((await call<{ items: unknown[] }>(t, '/api/certificates?status=draft', undefined, 'signatory')).items.length).toBe(o.drafts.count);
      await drafts.click();
      await page.waitForFunction(() => window.location.hash === '#/certificates?status=draft', null, WAIT);

      // the failed runs of the month: the run list filtered by state, verdict and the month's start
      await page.goBack();
      await page.waitForSelector('[data-test="overview"][data-loaded="true"]', WAIT);
      expect(await page.locator('[data-test="figure-verdict-fail"]').getAttribute('href')).toBe(
        `#/runs?state=completed&verdict=fail&time=ended&from=${o.periods.month.from}`,
      );
      // the gateways' page is the admin's: a signatory reads the figure, not a link
      const gateways = page.locator('[data-test="figure-gateways"]');
      expect(await gateways.evaluate((e) => e.tagName)).toBe('SPAN');
      expect(await gateways.getAttribute('href')).toBeNull();
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  }, 120_000);

  test('in Chinese on a phone for the admin: the same figures, in Shanghai’s day, and it fits', async () => {
    const { page, close, errors } = await signIn(browser, t, 'admin', undefined, '[data-test="nav-overview"]', {
      locale: 'zh-CN',
      timezoneId: 'Asia/Shanghai',
      viewport: { width: 390, height: 844 },
      isMobile: true,
      hasTouch: true,
      deviceScaleFactor: 2,
    });
    try {
      await page.goto(`${t.base}/#/overview`);
      await page.waitForSelector('[data-test="overview"][data-loaded="true"]', WAIT);
      const o = await apiOverview('Asia/Shanghai');
      expect(o.zone).toBe('Asia/Shanghai');
      expectFiguresEqual(await figuresOn(page), o, 'zh-CN');
      expect(await page.locator('[data-test="overview"] h2').innerText()).toBe('实验室概览');
      expect(await page.locator('[data-test="overview"]').innerText()).toContain('Asia/Shanghai');
      // nothing beyond the right edge of the phone
      const beyond = await page.evaluate(() => {
        const width = window.visualViewport?.width ?? window.innerWidth;
        return [...document.querySelectorAll('[data-test="overview"] *')]
          .filter((e) => {
            const r = e.getBoundingClientRect();
            return r.width > 0 && r.right > width + 0.5;
          })
          .map((e) => e.tagName);
      });
      expect(beyond).toEqual([]);
      await page.waitForSelector('[data-test="chart-daily"] canvas', WAIT);
      await docShot(page, 'overview-phone-zh');
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  }, 120_000);

  test('in Chinese for the admin: each kind of figure opens its list, filtered, with as many items as the figure', async () => {
    const zone = 'Asia/Shanghai';
    const { page, close, errors } = await signIn(browser, t, 'admin', undefined, '[data-test="nav-overview"]', {
      locale: 'zh-CN',
      timezoneId: zone,
      viewport: { width: 1440, height: 1000 },
    });
    /** the overview, then a click on one figure: the list it opens, once loaded */
    const open = async (figure: string, list: string): Promise<{ value: number; href: string }> => {
      await page.goto(`${t.base}/#/overview`);
      await page.waitForSelector('[data-test="overview"][data-loaded="true"]', WAIT);
      const link = page.locator(`[data-test="${figure}"]`);
      const value = Number(await link.getAttribute('data-value'));
      const href = (await link.getAttribute('href')) ?? '';
      await link.click();
      await page.waitForFunction((h) => window.location.hash === h, href, WAIT);
      await page.waitForSelector(list, WAIT);
      return { value, href };
    };
    const runsShown = async (): Promise<{ rows: number; alarms: number }> => {
      await page.waitForSelector('[data-test="runs"][data-loaded="true"][aria-busy="false"]', WAIT);
      const rows = page.locator('[data-test="run-row"]');
      const alarms = await rows.evaluateAll((els) => els.reduce((n, e) => n + Number(e.getAttribute('data-open-alarms')), 0));
      expect(await page.locator('[data-test="runs-more"]').count()).toBe(0);
      return { rows: await rows.count(), alarms };
    };
    const control = (name: string) => page.locator(`[data-test="${name}"]`).inputValue();
    try {
      const o = await apiOverview(zone);
      // the fixture has something behind every figure looked at
      expect(o.runs.running).toBe(1);
      expect(o.verdicts.pass).toBe(2);
      expect(o.verdicts.fail).toBe(1);
      expect(o.alarms).toMatchObject({ open: 1, runs: 1 });
      expect(o.drafts.count).toBe(1);
      expect(o.calibrations).toMatchObject({ dueSoon: 1, never: 1 });
      expect(o.gateways.connected).toBe(1);

      // running runs: the state filter
      let f = await open('figure-running', '[data-test="runs"]');
      expect(f).toEqual({ value: o.runs.running, href: '#/runs?state=running' });
      expect((await runsShown()).rows).toBe(o.runs.running);
      expect(await control('runs-state')).toBe('running');
      expect(await control('runs-verdict')).toBe('');

      // completed this month with a verdict: state, verdict, end time from the month's start (in the user's zone)
      for (const [figure, verdict, count] of [
        ['figure-verdict-pass', 'pass', o.verdicts.pass],
        ['figure-verdict-fail', 'fail', o.verdicts.fail],
      ] as const) {
        f = await open(figure, '[data-test="runs"]');
        expect(f).toEqual({ value: count, href: `#/runs?state=completed&verdict=${verdict}&time=ended&from=${o.periods.month.from}` });
        expect((await runsShown()).rows).toBe(count);
        expect(await control('runs-state')).toBe('completed');
        expect(await control('runs-verdict')).toBe(verdict);
        expect(await control('runs-time')).toBe('ended');
        // the month's first minute in Shanghai, as the field shows it
        const first = new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit' }).format(o.at);
        expect(await control('runs-from')).toBe(`${first}-01T00:00`);
      }
      // the month's completed runs: the same list without a verdict counts the month's completed figure
      f = await open('figure-month-completed', '[data-test="runs"]');
      expect((await runsShown()).rows).toBe(f.value);

      // open alarms: the runs with one (the figure counts alarms: the rows' alarms add up to it)
      f = await open('figure-alarms', '[data-test="runs"]');
      expect(f).toEqual({ value: o.alarms.open, href: '#/runs?alarms=open' });
      expect(await page.locator('[data-test="runs-alarms-only"]').isChecked()).toBe(true);
      expect(await runsShown()).toEqual({ rows: o.alarms.runs, alarms: o.alarms.open });

      // changing a filter changes the address (replaced: back returns to the overview); the address is the filter
      await page.selectOption('[data-test="runs-state"]', 'running');
      await page.waitForFunction(() => window.location.hash === '#/runs?state=running&alarms=open', null, WAIT);
      await page.reload();
      await page.waitForSelector('[data-test="runs"][data-loaded="true"][aria-busy="false"]', WAIT);
      expect(await control('runs-state')).toBe('running');
      expect(await page.locator('[data-test="runs-alarms-only"]').isChecked()).toBe(true);
      await page.goBack();
      await page.waitForSelector('[data-test="overview"][data-loaded="true"]', WAIT);

      // drafts awaiting signature: the reports list with the status filter
      f = await open('figure-drafts', '[data-test="certificates"][data-shown="draft"]');
      expect(f).toEqual({ value: o.drafts.count, href: '#/certificates?status=draft' });
      expect(await page.locator('[data-test="certificate"]').count()).toBe(o.drafts.count);
      expect(await page.locator('[data-test="certificate"][data-status="draft"]').count()).toBe(o.drafts.count);
      expect(await control('certificate-filter')).toBe('draft');
      expect(await page.title()).toContain('检测报告');

      // calibrations due soon, never calibrated: the register with the calibration filter
      for (const [figure, state, count] of [
        ['figure-calibrations-due', 'due-soon', o.calibrations.dueSoon],
        ['figure-calibrations-never', 'never-calibrated', o.calibrations.never],
      ] as const) {
        f = await open(figure, '[data-test="instrument-register"][data-loading="false"]');
        expect(f).toEqual({ value: count, href: `#/instruments?calibration=${state}` });
        await page.waitForSelector('[data-test="register-row"]', WAIT);
        expect(await page.locator('[data-test="register-row"]').count()).toBe(count);
        expect(await page.locator(`[data-test="register-row"][data-status="${state}"]`).count()).toBe(count);
        expect(await control('register-calibration')).toBe(state);
      }

      // gateways: the admin's gateways page, as many connected as the figure says
      f = await open('figure-gateways', '[data-test="gateways-view"][data-loaded="yes"]');
      expect(f).toEqual({ value: o.gateways.connected, href: '#/admin/gateways' });
      expect(await page.locator('[data-test="gateway"][data-connected="yes"]').count()).toBe(o.gateways.connected);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  }, 180_000);

  test('the reports list is in the navigation of every role and reads its filters from the address', async () => {
    const { page, close, errors } = await signIn(browser, t, 'client', undefined, '[data-test="nav-certificates"]', { locale: 'en-GB' });
    try {
      await page.click('[data-test="nav-certificates"]');
      // the home page shows the same list (data-shown="" too): wait until the reports page has replaced it
      await page.waitForFunction(() => location.hash === '#/certificates' && !document.querySelector('[data-test="runs"]'), undefined, WAIT);
      await page.waitForSelector('[data-test="certificates"][data-shown=""]', WAIT);
      expect(await page.title()).toContain('Test reports');
      // a client sees its organization's issued reports only: the draft is not one
      expect(await page.locator('[data-test="certificate"]').count()).toBe(0);
      await page.goto(`${t.base}/#/certificates?status=valid&status=bogus`);
      await page.waitForSelector('[data-test="certificates"][data-shown="valid"]', WAIT);
      expect(await page.locator('[data-test="certificate-filter"]').inputValue()).toBe('valid');
      // a value the list does not know leaves the filter off
      await page.goto(`${t.base}/#/certificates?status=bogus`);
      await page.waitForSelector('[data-test="certificates"][data-shown=""]', WAIT);
      expect(await page.locator('[data-test="certificate-filter"]').inputValue()).toBe('');
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  }, 120_000);

  test('offered to the admin, signatories and auditors only; the server refuses the others', async () => {
    for (const role of ['technician', 'client'] as const) {
      const { page, close } = await signIn(browser, t, role);
      try {
        expect(await page.locator('[data-test="nav-overview"]').count()).toBe(0);
        expect((await t.fetch('/api/overview?zone=UTC', {}, role)).status).toBe(403);
      } finally {
        await close();
      }
    }
    const { page, close } = await signIn(browser, t, 'auditor', undefined, '[data-test="nav-overview"]');
    try {
      await page.click('[data-test="nav-overview"]');
      await page.waitForSelector('[data-test="overview"][data-loaded="true"]', WAIT);
    } finally {
      await close();
    }
  }, 120_000);
});
