// Charts that read well, in a real headless Chromium against a real server fed by a signing test gateway: the front
// page draws a climate chamber's °C and %RH on two titled axes (never one against the other) and its specimen
// counter as steps; a run's chart labels two close limit lines without one box covering the other; the text beside a
// chart gives the min, max and mean of the run's records as the API serves them; the CSV download holds exactly the
// chart's points (time in ISO 8601 with the zone's offset, value, unit, quality).
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Browser, Page } from 'playwright-core';
import type { LiveSample } from '@labtrace/protocols/api';
import { ORGANIZATION, send, startServer, TestGateway, waitFor, type TestServer } from '../../server/dist/test/helpers/server.js';
import { REPO_ROOT } from '../../server/dist/test/helpers/lab-process.js';
import { call, launch, signIn } from './helpers/browser.js';

/** docs/screenshots/<name>.png of one element when LABTRACE_SCREENSHOTS=1 */
async function docShot(page: Page, selector: string, name: string): Promise<void> {
  if (process.env['LABTRACE_SCREENSHOTS'] !== '1') return;
  const dir = path.join(REPO_ROOT, 'docs', 'screenshots');
  mkdirSync(dir, { recursive: true });
  await page
    .locator(selector)
    .first()
    .screenshot({ path: path.join(dir, `${name}.png`) });
}

const WAIT = { timeout: 20_000 };
let t: TestServer;
let gw: TestGateway;
let browser: Browser;
let run: string;
let seq = 0;

const method = {
  id: 'tensile-close',
  standard: 'ISO 6892-1:2019',
  title: 'Tensile test with close bounds',
  definition: {
    measurands: [{ name: 'force', unit: 'kN', channel: 'force' }],
    // the acceptance limit and the rule's bounds 0.2 kN apart: drawn a few pixels apart, their labels would collide
    limits: [{ measurand: 'force', max: 50 }],
    decisionRule: { kind: 'simple-acceptance' },
    rules: [{ id: 'force-bounds', kind: 'limits', severity: 'alarm', channel: 'force', high: 50.2, warnHigh: 49.8 }],
    results: [{ name: 'Fm', title: 'maximum force', measurand: 'force', statistic: 'max', resolution: 0.01 }],
  },
};

/** one signed batch; samples dated from `start`, one every 10 ms */
async function sendSamples(samples: Omit<LiveSample, 'gateway' | 'seq' | 'quality'>[]): Promise<void> {
  const signed = samples.map((s) => ({ ...s, seq: seq++, quality: 'good' as const }));
  expect(await send(t, gw, gw.sign(signed))).toBe('acked');
}

beforeAll(async () => {
  t = await startServer();
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.announce([
    {
      id: 'cc-1',
      identity: { maker: 'Weiss', model: 'ClimeEvent', serialNumber: '7' },
      channels: [
        { name: 'temperature', unit: '°C' },
        { name: 'humidity', unit: '%RH' },
        { name: 'setpoint', unit: '°C' },
        { name: 'specimen', unit: '' },
      ],
    },
    {
      id: 'ut-1',
      identity: { maker: 'Zwick', model: 'Z100', serialNumber: '1' },
      channels: [
        { name: 'force', unit: 'kN' },
        { name: 'specimen', unit: '' },
      ],
    },
  ]);
  await waitFor('the instruments', () => (t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM instruments').get() as { n: number }).n === 2);
  await call(t, '/api/methods', method);
  await call(t, '/api/lab-samples', { id: 'S-1', organization: ORGANIZATION, description: 'steel bar', condition: 'intact', receivedAt: Date.now() });
  run = (await call<{ id: string }>(t, '/api/runs', { sample: 'S-1', method: method.id, instruments: ['ut-1'] })).id;
  await call(t, `/api/runs/${run}/start`, {});
  // a pull: force rising to 49.9 kN and falling, the specimen counter stepping 1, 2, 3
  const now = Date.now();
  await sendSamples(
    Array.from({ length: 90 }, (_, i) =>
      i % 3 === 2
        ? { instrument: 'ut-1', channel: 'specimen', ts: now + i * 10, value: 1 + Math.floor(i / 30), unit: '' }
        : { instrument: 'ut-1', channel: 'force', ts: now + i * 10, value: Math.round((49.9 - Math.abs(45 - i) * 0.7) * 1000) / 1000, unit: 'kN' },
    ),
  );
  await call(t, `/api/runs/${run}/stop`, {});
  browser = await launch();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await gw?.end();
  await t?.stop();
});

async function replay(page: Page): Promise<number> {
  const records = (await (await t.fetch(`/api/runs/${run}/records`)).json()) as { samples: LiveSample[] };
  const total = records.samples.length;
  await page.goto(`${t.base}/#/runs/${run}/replay`);
  await page.waitForSelector(`[data-test="replay"][data-total="${total}"]`, WAIT);
  await page.selectOption('[data-test="replay-speed"]', { label: 'as fast as possible' });
  await page.click('[data-test="replay-play"]');
  await page.waitForSelector(`[data-test="replay"][data-replayed="${total}"]`, WAIT);
  return total;
}

const forceValues = async (): Promise<LiveSample[]> =>
  ((await (await t.fetch(`/api/runs/${run}/records`)).json()) as { samples: LiveSample[] }).samples.filter((s) => s.channel === 'force');

describe('the front page', () => {
  test('in Chinese: °C and %RH on two titled axes, the specimen counter as steps on its own axis', async () => {
    const { page, close, errors } = await signIn(browser, t, 'admin', undefined, '[data-test="user"]', {
      locale: 'zh-CN',
      timezoneId: 'Asia/Shanghai',
    });
    try {
      // the chamber sends now: the front page's window is the last minute
      const now = Date.now();
      await sendSamples(
        Array.from({ length: 40 }, (_, i) => {
          const channel = (['temperature', 'humidity', 'setpoint', 'specimen'] as const)[i % 4] as string;
          const value =
            channel === 'temperature'
              ? 23 + (i % 7) * 0.1
              : channel === 'humidity'
                ? 50 + (i % 5)
                : channel === 'setpoint'
                  ? 23
                  : 1 + Math.floor(i / 20);
          return {
            instrument: 'cc-1',
            channel,
            ts: now - 4000 + i * 100,
            value,
            unit: channel === 'humidity' ? '%RH' : channel === 'specimen' ? '' : '°C',
          };
        }),
      );
      await page.reload();
      await page.waitForSelector('tr[data-instrument="cc-1"] [data-test="instrument-choose"]', WAIT);
      await page.click('tr[data-instrument="cc-1"] [data-test="instrument-choose"]');
      await page.waitForFunction(
        () => (document.querySelector('[data-test="live-chart"]')?.getAttribute('data-stepped') ?? '').includes('specimen'),
        null,
        WAIT,
      );
      const axes = JSON.parse((await page.locator('[data-test="live-chart"]').getAttribute('data-axes')) ?? '[]') as {
        title: string;
        display: boolean;
        channels: string[];
      }[];
      const celsius = axes.find((a) => a.channels.includes('temperature'));
      const humidity = axes.find((a) => a.channels.includes('humidity'));
      expect(celsius).toBeDefined();
      expect(humidity).toBeDefined();
      expect(celsius).not.toBe(humidity);
      // each titled with its quantity and unit; the setpoint shares the °C axis; no axis mixes °C and %RH
      expect(celsius?.display).toBe(true);
      expect(humidity?.display).toBe(true);
      expect(celsius?.title).toMatch(/temperature.*°C/);
      expect(celsius?.channels.sort()).toEqual(['setpoint', 'temperature']);
      expect(humidity?.title).toMatch(/humidity.*%RH/);
      for (const a of axes) expect(a.title.includes('°C') && a.title.includes('%RH')).toBe(false);
      // the counter on an axis of its own, named a state in Chinese, drawn as steps; the measurements as lines
      const counter = axes.find((a) => a.channels.includes('specimen'));
      expect(counter?.channels).toEqual(['specimen']);
      expect(counter?.title).toContain('状态');
      const stepped = ((await page.locator('[data-test="live-chart"]').getAttribute('data-stepped')) ?? '').split(' ');
      expect(stepped).toEqual(['specimen']);
      // the statistics beside the chart, in Chinese
      await page.waitForSelector('.live-chart [data-test="chart-stats-row"][data-series="humidity"][data-n]:not([data-n="0"])', WAIT);
      expect(await page.locator('.live-chart [data-test="chart-stats"] thead').innerText()).toContain('平均值');
      await docShot(page, '.live-chart', 'charts-front-page-zh');
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  }, 120_000);
});

describe("a run's charts", () => {
  test('the labels of two close limit lines do not overlap', async () => {
    const { page, close } = await signIn(browser, t, 'technician');
    try {
      await replay(page);
      const figure = page.locator('[data-test="run-chart"][data-channel="force"]');
      await page.waitForFunction(
        () =>
          JSON.parse(document.querySelector('[data-test="run-chart"][data-channel="force"]')?.getAttribute('data-label-boxes') ?? '[]').length >= 3,
        null,
        WAIT,
      );
      const boxes = JSON.parse((await figure.getAttribute('data-label-boxes')) ?? '[]') as {
        text: string;
        line: number;
        x: number;
        y: number;
        w: number;
        h: number;
      }[];
      expect(boxes.map((b) => b.text).sort()).toEqual(['force max 50', 'force-bounds alarm high 50.2', 'force-bounds warning high 49.8'].sort());
      // the lines are closer together than a label is high: drawn by its line alone, the labels would collide
      const lines = boxes.map((b) => b.line).sort((a, b) => a - b);
      expect(Math.min(...lines.slice(1).map((l, i) => l - (lines[i] as number)))).toBeLessThan(boxes[0]?.h ?? 0);
      for (const [i, a] of boxes.entries())
        for (const b of boxes.slice(i + 1)) {
          const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
          expect({ a: a.text, b: b.text, overlap }).toEqual({ a: a.text, b: b.text, overlap: false });
        }
      await docShot(page, '[data-test="run-chart"][data-channel="force"]', 'charts-run-limits-en');
    } finally {
      await close();
    }
  }, 120_000);

  test('the specimen counter is drawn as steps, the force as a line', async () => {
    const { page, close } = await signIn(browser, t, 'technician');
    try {
      await replay(page);
      await page.waitForSelector('[data-test="run-chart"][data-channel="specimen"][data-stepped="true"]', WAIT);
      expect(await page.locator('[data-test="run-chart"][data-channel="specimen"]').getAttribute('data-kind')).toBe('state');
      expect(await page.locator('[data-test="run-chart"][data-channel="force"]').getAttribute('data-kind')).toBe('measurement');
      expect(await page.locator('[data-test="run-chart"][data-channel="force"]').getAttribute('data-stepped')).toBe('false');
    } finally {
      await close();
    }
  }, 120_000);

  test("the text beside the chart gives the min, max and mean of the API's samples", async () => {
    const { page, close } = await signIn(browser, t, 'technician');
    try {
      await replay(page);
      const values = (await forceValues()).map((s) => s.value as number);
      const min = Math.min(...values);
      const max = Math.max(...values);
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      const row = page.locator(`[data-test="run-chart"][data-channel="force"] [data-test="chart-stats-row"]`);
      await page.waitForSelector(`[data-test="run-chart"][data-channel="force"] [data-test="chart-stats-row"][data-n="${values.length}"]`, WAIT);
      const fmt = new Intl.NumberFormat('en', { maximumFractionDigits: 3 });
      expect(await row.locator('[data-test="stat-min"]').innerText()).toBe(fmt.format(min));
      expect(await row.locator('[data-test="stat-max"]').innerText()).toBe(fmt.format(max));
      expect(await row.locator('[data-test="stat-mean"]').innerText()).toBe(fmt.format(mean));
      expect(await row.locator('[data-test="stat-current"]').innerText()).toBe(`${fmt.format(values[values.length - 1] as number)} kN`);
      expect(Number(await row.getAttribute('data-mean'))).toBeCloseTo(mean, 9);
    } finally {
      await close();
    }
  }, 120_000);

  test("the CSV download's rows are the chart's points, times with the zone's offset", async () => {
    const { page, close } = await signIn(browser, t, 'technician', undefined, '[data-test="user"]', {
      timezoneId: 'Asia/Shanghai',
      acceptDownloads: true,
    });
    try {
      await replay(page);
      const samples = await forceValues();
      await page.waitForSelector(`[data-test="run-chart"][data-channel="force"][data-points="${samples.length}"]`, WAIT);
      const [download] = await Promise.all([
        page.waitForEvent('download', WAIT),
        page.click('[data-test="run-chart"][data-channel="force"] [data-test="chart-csv"]'),
      ]);
      const text = readFileSync(await download.path(), 'utf8').replace(/^\ufeff/, '');
      const [header, ...rows] = text.trim().split('\r\n');
      expect(header).toBe('time,instrument,channel,value,unit,quality');
      const shanghai = (ms: number): string => `${new Date(ms + 8 * 3_600_000).toISOString().slice(0, 23)}+08:00`;
      expect(rows).toEqual(samples.map((s) => `${shanghai(s.ts)},ut-1,force,${String(s.value)},kN,good`));
      // each row's time reads back as the sample's instant
      expect(rows.map((r) => Date.parse(r.split(',')[0] as string))).toEqual(samples.map((s) => s.ts));
    } finally {
      await close();
    }
  }, 120_000);
});
