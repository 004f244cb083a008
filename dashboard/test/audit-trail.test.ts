// The audit trail in a real headless Chromium against a real server: an auditor (and nobody without the right)
// finds it in the navigation, filters by record type and sees a run's entries with the reason it was aborted,
// pages through the trail as the server answers it (by id: entries of one millisecond are never skipped), and
// downloads the page shown as JSON.
import { readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { AuditTrail } from '../../server/dist/src/audit/audit-trail.js';
import { ORGANIZATION, startServer, TestGateway, waitFor, type TestServer } from '../../server/dist/test/helpers/server.js';
import { call, launch, screenshot, signIn, WAIT } from './helpers/browser.js';

let t: TestServer;
let gw: TestGateway;
let browser: Browser;
let run: string;
const REASON = 'specimen cracked while mounting';

beforeAll(async () => {
  t = await startServer();
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('ut-1');
  await waitFor('the instrument', () => (t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM instruments').get() as { n: number }).n === 1);
  await call(t, '/api/methods', {
    id: 'tensile',
    standard: 'ISO 6892-1:2019',
    title: 'Tensile testing at room temperature',
    definition: {
      measurands: [{ name: 'force', unit: 'kN', channel: 'c' }],
      limits: [{ measurand: 'force', min: 0, max: 100 }],
      decisionRule: { kind: 'simple-acceptance' },
    },
  });
  await call(t, '/api/lab-samples', { id: 'S-1', organization: ORGANIZATION, description: 'steel bar', condition: 'intact', receivedAt: Date.now() });
  // more entries than two pages of ten
  for (let i = 2; i <= 8; i++)
    await call(t, '/api/lab-samples', {
      id: `S-${i}`,
      organization: ORGANIZATION,
      description: 'steel bar',
      condition: 'intact',
      receivedAt: Date.now(),
    });
  run = (await call(t, '/api/runs', { sample: 'S-1', method: 'tensile', instruments: ['ut-1'] })).id;
  await call(t, `/api/runs/${run}/abort`, { reason: REASON });
  browser = await launch();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await gw?.end();
  await t?.stop();
});

/** an audit entry as the API answers it (the fields these tests read) */
interface Entry {
  id: number;
  at: number;
  reason?: string;
}

const shownIds = (page: Page): Promise<number[]> =>
  page.locator('[data-test="audit-entry"]').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-entry'))));

describe('audit trail', () => {
  test('an auditor filters by record type and sees the run and the reason it was aborted; pages; downloads what is shown', async () => {
    const auditor = await signIn(browser, t, 'auditor');
    try {
      const { page } = auditor;
      expect(await page.locator('[data-test="nav-users"]').count()).toBe(0);
      await page.click('[data-test="nav-audit"]');
      await page.waitForSelector('[data-test="audit-trail"][data-loaded="yes"]', WAIT);

      await page.fill('[data-test="audit-filter"] input[name="recordType"]', 'run');
      await page.click('[data-test="audit-filter"] button[type="submit"]');
      await page.waitForSelector(`[data-test="audit-entry"][data-record="${run}"][data-action="state-change"]`, WAIT);
      const expected = await call<Entry[]>(t, '/api/audit-trail?recordType=run', undefined, 'auditor');
      expect(expected.length).toBeGreaterThanOrEqual(2);
      await page.waitForFunction((n) => document.querySelectorAll('[data-test="audit-entry"]').length === n, expected.length, WAIT);
      expect(await shownIds(page)).toEqual(expected.map((e) => e.id));
      expect(await page.locator('[data-test="audit-entry"]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-record-type')))).toEqual(
        expected.map(() => 'run'),
      );
      const aborted = page.locator(`[data-test="audit-entry"][data-record="${run}"][data-action="state-change"]`).last();
      expect(await aborted.locator('[data-test="audit-reason"]').innerText()).toBe(REASON);
      expect(await aborted.innerText()).toMatch(/technician/);
      await screenshot(page, 'audit-trail');

      // the whole trail, ten at a time: the pages are the server's entries in order
      const all = await call<Entry[]>(t, '/api/audit-trail?limit=20', undefined, 'auditor');
      expect(all.length).toBe(20);
      await page.fill('[data-test="audit-filter"] input[name="recordType"]', '');
      await page.selectOption('[data-test="audit-filter"] select[name="limit"]', '10');
      await page.click('[data-test="audit-filter"] button[type="submit"]');
      const first = all.slice(0, 10).map((e) => e.id);
      const second = all.slice(10, 20).map((e) => e.id);
      await page.waitForFunction(
        (id) => document.querySelector('[data-test="audit-entry"]')?.getAttribute('data-entry') === String(id),
        first[0],
        WAIT,
      );
      expect(await shownIds(page)).toEqual(first);
      await page.click('[data-test="audit-next"]');
      await page.waitForFunction(
        (id) => document.querySelector('[data-test="audit-entry"]')?.getAttribute('data-entry') === String(id),
        second[0],
        WAIT,
      );
      expect(await shownIds(page)).toEqual(second);

      // the download is the page shown, as JSON
      const [file] = await Promise.all([page.waitForEvent('download', WAIT), page.click('[data-test="audit-download"]')]);
      expect(file.suggestedFilename()).toBe('audit-trail-page.json');
      const downloaded = JSON.parse(readFileSync(await file.path(), 'utf8'));
      expect(downloaded).toEqual(all.slice(10, 20));

      await page.click('[data-test="audit-previous"]');
      await page.waitForFunction(
        (id) => document.querySelector('[data-test="audit-entry"]')?.getAttribute('data-entry') === String(id),
        first[0],
        WAIT,
      );
      expect(await shownIds(page)).toEqual(first);
      expect(auditor.errors).toEqual([]);
    } finally {
      await auditor.close();
    }
  }, 30_000);

  test('25 entries of one millisecond, ten a page: every one is shown once, in order, over three pages', async () => {
    // the server's own trail, with a clock that stands still: what a burst of changes within 1 ms records
    const still = new AuditTrail(t.server.database, () => Date.UTC(2026, 10, 27, 10, 0, 0, 123));
    for (let i = 0; i < 25; i++)
      still.record({ username: 'technician', role: 'technician' }, { action: 'create', recordType: 'burst', recordId: `b-${i}` });
    const burst = await call<Entry[]>(t, '/api/audit-trail?recordType=burst', undefined, 'auditor');
    expect(burst.length).toBe(25);
    const ids = burst.map((e) => e.id);
    const auditor = await signIn(browser, t, 'auditor');
    try {
      const { page } = auditor;
      await page.click('[data-test="nav-audit"]');
      await page.waitForSelector('[data-test="audit-trail"][data-loaded="yes"]', WAIT);
      await page.fill('[data-test="audit-filter"] input[name="recordType"]', 'burst');
      await page.selectOption('[data-test="audit-filter"] select[name="limit"]', '10');
      await page.click('[data-test="audit-filter"] button[type="submit"]');
      const shows = (first: number | undefined) =>
        page.waitForFunction((id) => document.querySelector('[data-test="audit-entry"]')?.getAttribute('data-entry') === String(id), first, WAIT);
      await shows(ids[0]);
      expect(await shownIds(page)).toEqual(ids.slice(0, 10));
      await page.click('[data-test="audit-next"]');
      await shows(ids[10]);
      expect(await shownIds(page)).toEqual(ids.slice(10, 20));
      await page.click('[data-test="audit-next"]');
      await shows(ids[20]);
      expect(await shownIds(page)).toEqual(ids.slice(20));
      expect(await page.locator('[data-test="audit-next"]').isDisabled()).toBe(true);
      await page.click('[data-test="audit-previous"]');
      await shows(ids[10]);
      expect(await shownIds(page)).toEqual(ids.slice(10, 20));
      expect(auditor.errors).toEqual([]);
    } finally {
      await auditor.close();
    }
  }, 30_000);

  test('a technician has no audit-trail entry and #/audit shows the server refusal', async () => {
    const tech = await signIn(browser, t, 'technician');
    try {
      const { page } = tech;
      await page.waitForSelector('[data-test="nav-home"]', WAIT);
      expect(await page.locator('[data-test="nav-audit"]').count()).toBe(0);
      await page.goto(`${t.base}/#/audit`);
      await page.waitForSelector('[data-test="audit-error"]', WAIT);
      const direct = await t.fetch('/api/audit-trail', {}, 'technician');
      expect(direct.status).toBe(403);
      expect(await page.locator('[data-test="audit-error"]').innerText()).toBe((await direct.json()).error);
      expect(tech.errors).toEqual([]);
    } finally {
      await tech.close();
    }
  }, 30_000);
});
