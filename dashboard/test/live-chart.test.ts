// The dashboard in a real headless Chromium against `labtrace lab`: the instrument list fills and the live chart receives data.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { launch } from './helpers/browser.js';
import { LAB_ADMIN_PASSWORD, REPO_ROOT, startLab, type LabProcess } from '../../server/dist/test/helpers/lab-process.js';

let lab: LabProcess;
let browser: Browser;

beforeAll(async () => {
  lab = await startLab();
  browser = await launch();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  if (lab) await lab.stop('SIGTERM');
});

test('the live chart receives data and the instrument list shows values', async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(`http://127.0.0.1:${lab.httpPort}/`);

  // signed out, the dashboard shows only the sign-in form; signing in as the demo admin opens it
  await page.waitForSelector('[data-test="login"]', { timeout: 20_000 });
  await page.fill('input[name="username"]', 'admin');
  await page.fill('input[name="password"]', LAB_ADMIN_PASSWORD);
  await page.click('[data-test="login"] button[type="submit"]');
  await page.waitForSelector('[data-test="user"]', { timeout: 20_000 });

  await page.waitForSelector('[data-test="connection"].ok', { timeout: 20_000 });
  await page.waitForSelector('tr[data-instrument="climate-1"]', { timeout: 20_000 });
  await page.waitForSelector('tr[data-instrument="utm-1"]', { timeout: 20_000 });

  const chart = page.locator('[data-test="live-chart"]');
  await chart.waitFor({ timeout: 20_000 });
  const received = async () => Number(await chart.getAttribute('data-received'));
  await page.waitForFunction(() => Number(document.querySelector('[data-test="live-chart"]')?.getAttribute('data-received')) > 0, null, {
    timeout: 20_000,
  });
  const first = await received();
  // the chart keeps moving: more samples arrive (waited for, not timed)
  await page.waitForFunction((n) => Number(document.querySelector('[data-test="live-chart"]')?.getAttribute('data-received')) > n, first, {
    timeout: 20_000,
  });
  expect(await received()).toBeGreaterThan(first);

  // The chart has drawn something: the canvas is not blank.
  const inked = await page.evaluate(() => {
    const canvas = document.querySelector<HTMLCanvasElement>('[data-test="live-chart"] canvas')!;
    const ctx = canvas.getContext('2d')!;
    const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    let n = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) n++;
    return n;
  });
  expect(inked).toBeGreaterThan(1000);

  // The canvas is an image with a summary of the latest values (with the zone's offset); the values are a table one click away.
  const canvas = page.locator('[data-test="live-chart"] canvas');
  expect(await canvas.getAttribute('role')).toBe('img');
  await page.waitForFunction(
    () => /\d.* at .*GMT/.test(document.querySelector('[data-test="live-chart"] canvas')?.getAttribute('aria-label') ?? ''),
    null,
    {
      timeout: 20_000,
    },
  );
  const toggle = page.locator('.chart [data-test="chart-table-toggle"]');
  expect(await toggle.getAttribute('aria-expanded')).toBe('false');
  await toggle.click();
  expect(await toggle.getAttribute('aria-expanded')).toBe('true');
  await page.locator('.chart [data-test="chart-table-row"]').first().waitFor({ timeout: 20_000 });
  expect(await page.locator('.chart [data-test="chart-table-row"]').count()).toBeGreaterThan(0);

  // The latest values are numbers, as the simulator serves them.
  await page.waitForFunction(
    () => !Number.isNaN(Number(document.querySelector('tr[data-instrument="climate-1"] [data-channel="temperature"] b')?.textContent)),
    null,
    { timeout: 20_000 },
  );

  // Each instrument's health, as its gateway reports it.
  await page.waitForFunction(
    () => document.querySelector('tr[data-instrument="climate-1"] [data-test="health-state"]')?.textContent === 'connected',
    null,
    { timeout: 20_000 },
  );
  expect(await page.locator('tr[data-instrument="utm-1"] [data-test="health"]').innerText()).toMatch(/latency p50 \d+ ms/);

  // Selecting the other instrument shows its chart.
  await page.click('tr[data-instrument="utm-1"]');
  await page.waitForFunction(() => document.querySelector('.chart h2 small')?.textContent === 'utm-1', null, { timeout: 10_000 });

  mkdirSync(path.join(REPO_ROOT, '.tmp'), { recursive: true });
  await page.screenshot({ path: path.join(REPO_ROOT, '.tmp', 'dashboard.png') });
  expect(errors).toEqual([]);

  // Signing out ends the session (the cookie no longer opens the API) and shows the form again.
  await page.click('[data-test="logout"]');
  await page.waitForSelector('[data-test="login"]', { timeout: 10_000 });
  expect(await page.evaluate(async () => (await fetch('/api/instruments')).status)).toBe(401);
}, 60_000);
