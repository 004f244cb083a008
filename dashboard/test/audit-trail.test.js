// The audit trail in a real headless Chromium against a real server: an auditor (and nobody without the right)
// finds it in the navigation, picks a record type from the list and sees a run's entries with the reason it was
// aborted and its change field by field, pages through the trail newest first as the server answers it (by id:
// entries of one millisecond are never skipped), sees a new entry without reloading, and downloads the entries shown
// as JSON. In Shanghai, in Chinese, on a phone, the time filter takes local time (sent as UTC), the times shown are
// in the zone and named, entries are cards that fit, and axe finds nothing serious.
import { mkdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { AuditTrail } from '../../server/dist/src/audit/audit-trail.js';
import { ORGANIZATION, startServer, TestGateway, waitFor } from '../../server/dist/test/helpers/server.js';
import { call, launch, screenshot, signIn, WAIT } from './helpers/browser.js';
import { DESKTOP, message, overflowing, PHONE, refusalText, seriousViolations, signInAs } from './helpers/records.js';

let t;
let gw;
let browser;
let run;
const REASON = 'specimen cracked while mounting';

beforeAll(async () => {
  t = await startServer();
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('ut-1');
  await waitFor('the instrument', () => t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM instruments').get().n === 1);
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

/** docs/screenshots/auditor-<what>.png when LABTRACE_SCREENSHOTS=1 (the visible viewport: small files) */
async function docShot(page, what) {
  if (process.env.LABTRACE_SCREENSHOTS !== '1') return;
  const dir = new URL('../../docs/screenshots/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: new URL(`auditor-${what}.png`, dir).pathname });
}

const shownIds = (page) => page.locator('[data-test="audit-entry"]').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-entry'))));

describe('audit trail', () => {
  test('an auditor picks a record type from the list, sees the run, the reason it was aborted and the change by field; pages; downloads', async () => {
    const auditor = await signInAs(browser, t, 'auditor', { screen: DESKTOP });
    try {
      const { page } = auditor;
      expect(await page.locator('[data-test="nav-users"]').count()).toBe(0);
      await page.click('[data-test="nav-audit"]');
      await page.waitForSelector('[data-test="audit-trail"][data-loaded="yes"]', WAIT);

      // the record types are a list (the translated names), not a text to type exactly
      const options = await page.locator('[data-test="audit-filter"] select[name="recordType"] option').evaluateAll((o) => o.map((x) => x.value));
      expect(options).toContain('run-alarm');
      await page.selectOption('[data-test="audit-filter"] select[name="recordType"]', { label: message('en', 'audit.recordTypes.run') });
      await page.click('[data-test="audit-filter"] button[type="submit"]');
      await page.waitForSelector(`[data-test="audit-entry"][data-record="${run}"][data-action="state-change"]`, WAIT);
      const expected = (await call(t, '/api/audit-trail?recordType=run', undefined, 'auditor')).items;
      expect(expected.length).toBeGreaterThanOrEqual(2);
      await page.waitForFunction((n) => document.querySelectorAll('[data-test="audit-entry"]').length === n, expected.length, WAIT);
      expect(await shownIds(page)).toEqual(expected.map((e) => e.id));
      expect(await page.locator('[data-test="audit-entry"]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-record-type')))).toEqual(
        expected.map(() => 'run'),
      );
      // newest first: the abort is the first state change shown
      const aborted = page.locator(`[data-test="audit-entry"][data-record="${run}"][data-action="state-change"]`).first();
      expect(await aborted.locator('[data-test="audit-reason"]').innerText()).toBe(REASON);
      expect(await aborted.innerText()).toMatch(/technician/);
      // the change read field by field: the state's old and new value as the server recorded them
      const abortEntry = expected.find((e) => e.recordId === run && e.action === 'state-change');
      const stateDiff = aborted.locator('[data-test="audit-diff"][data-field="state"]');
      expect(await stateDiff.locator('del').innerText()).toBe(String(abortEntry.oldValue.state));
      expect(await stateDiff.locator('ins').innerText()).toBe(String(abortEntry.newValue.state));
      // the recorded JSON stays at hand, behind a disclosure
      await aborted.locator('details.raw summary').click();
      expect(JSON.parse(await aborted.locator('[data-test="audit-raw-new"]').innerText())).toEqual(abortEntry.newValue);
      await aborted.scrollIntoViewIfNeeded();
      await docShot(page, 'audit-trail-diff');
      await screenshot(page, 'audit-trail');
      expect(await seriousViolations(page, '[data-test="audit-trail"]')).toEqual([]);
      expect(await overflowing(page, '[data-test="audit-trail"]')).toEqual([]);

      // the whole trail, ten at a time, newest first: "show more" appends the server's next page
      const all = (await call(t, '/api/audit-trail?limit=20', undefined, 'auditor')).items;
      expect(all.length).toBe(20);
      await page.selectOption('[data-test="audit-filter"] select[name="recordType"]', '');
      await page.selectOption('[data-test="audit-filter"] select[name="limit"]', '10');
      await page.click('[data-test="audit-filter"] button[type="submit"]');
      const first = all.slice(0, 10).map((e) => e.id);
      await page.waitForFunction((n) => document.querySelectorAll('[data-test="audit-entry"]').length === n, 10, WAIT);
      expect(await shownIds(page)).toEqual(first);
      await page.click('[data-test="audit-more"]');
      await page.waitForFunction((n) => document.querySelectorAll('[data-test="audit-entry"]').length === n, 20, WAIT);
      expect(await shownIds(page)).toEqual(all.map((e) => e.id));

      // the download is the entries shown, as JSON
      const [file] = await Promise.all([page.waitForEvent('download', WAIT), page.click('[data-test="audit-download"]')]);
      expect(file.suggestedFilename()).toBe('audit-trail-page.json');
      const downloaded = JSON.parse(readFileSync(await file.path(), 'utf8'));
      expect(downloaded).toEqual(all);

      // a new entry appears without a reload (socket.io `changed`, list 'audit'), at the top
      await call(t, '/api/lab-samples', {
        id: 'S-live',
        organization: ORGANIZATION,
        description: 'steel bar',
        condition: 'intact',
        receivedAt: Date.now(),
      });
      await page.waitForSelector('[data-test="audit-entry"][data-record="S-live"]', WAIT);
      expect(await page.locator('[data-test="audit-entry"]').first().getAttribute('data-record')).toBe('S-live');
      expect(auditor.errors).toEqual([]);
    } finally {
      await auditor.close();
    }
  }, 30_000);

  test('25 entries of one millisecond, ten a page: every one is shown once, newest first, over three pages', async () => {
    // the server's own trail, with a clock that stands still: what a burst of changes within 1 ms records
    const still = new AuditTrail(t.server.database, () => Date.UTC(2026, 10, 27, 10, 0, 0, 123));
    for (let i = 0; i < 25; i++)
      await t.server.database.db
        .transaction()
        .execute((trx) =>
          still.recordIn(
            trx,
            { username: 'technician', role: 'technician' },
            { action: 'create', recordType: 'notification-delivery', recordId: `b-${i}` },
          ),
        );
    const burst = (await call(t, '/api/audit-trail?recordType=notification-delivery', undefined, 'auditor')).items;
    expect(burst.length).toBe(25);
    const ids = burst.map((e) => e.id);
    const auditor = await signIn(browser, t, 'auditor');
    try {
      const { page } = auditor;
      await page.click('[data-test="nav-audit"]');
      await page.waitForSelector('[data-test="audit-trail"][data-loaded="yes"]', WAIT);
      await page.selectOption('[data-test="audit-filter"] select[name="recordType"]', 'notification-delivery');
      await page.selectOption('[data-test="audit-filter"] select[name="limit"]', '10');
      await page.click('[data-test="audit-filter"] button[type="submit"]');
      const shows = (n) => page.waitForFunction((k) => document.querySelectorAll('[data-test="audit-entry"]').length === k, n, WAIT);
      await shows(10);
      expect(await shownIds(page)).toEqual(ids.slice(0, 10));
      await page.click('[data-test="audit-more"]');
      await shows(20);
      await page.click('[data-test="audit-more"]');
      await shows(25);
      expect(await shownIds(page)).toEqual(ids);
      expect(new Set(await shownIds(page)).size).toBe(25);
      expect(await page.locator('[data-test="audit-more"]').count()).toBe(0);
      expect(auditor.errors).toEqual([]);
    } finally {
      await auditor.close();
    }
  }, 30_000);

  test('in Shanghai, the time filter takes local time and the times are shown in the zone; Chinese, phone, axe', async () => {
    // two entries three hours apart: 09:30 and 12:30 in Shanghai (01:30 and 04:30 UTC)
    const early = Date.UTC(2026, 10, 28, 1, 30, 0);
    const late = Date.UTC(2026, 10, 28, 4, 30, 0);
    for (const at of [early, late])
      await t.server.database.db
        .transaction()
        .execute((trx) =>
          new AuditTrail(t.server.database, () => at).recordIn(
            trx,
            { username: 'technician', role: 'technician' },
            { action: 'create', recordType: 'instrument-check', recordId: `c-${at}` },
          ),
        );
    const auditor = await signInAs(browser, t, 'auditor', { locale: 'zh-CN', timezoneId: 'Asia/Shanghai', screen: PHONE });
    try {
      const { page } = auditor;
      await page.goto(`${t.base}/#/audit`);
      await page.waitForSelector('[data-test="audit-trail"][data-loaded="yes"]', WAIT);
      expect(await page.locator('[data-test="audit-zone"]').innerText()).toBe(message('zh-CN', 'audit.zoneNote', { zone: 'Asia/Shanghai' }));
      // the filter by its labels, as a screen reader finds it
      await page.getByLabel(message('zh-CN', 'audit.recordType')).selectOption({ label: message('zh-CN', 'audit.recordTypes.instrument-check') });
      // from 11:00 to 13:00 Shanghai time: only the later entry (read as UTC, 11:00-13:00 would match neither)
      await page.getByLabel(message('zh-CN', 'audit.since')).fill('2026-11-28T11:00');
      await page.getByLabel(message('zh-CN', 'audit.until')).fill('2026-11-28T13:00');
      await page.locator('[data-test="audit-filter"] button[type="submit"]').press('Enter');
      await page.waitForFunction(
        (id) => {
          const rows = document.querySelectorAll('[data-test="audit-entry"]');
          return rows.length === 1 && rows[0].getAttribute('data-record') === id;
        },
        `c-${late}`,
        WAIT,
      );
      const shown = await page.locator('[data-test="audit-entry"] [data-test="audit-at"]').innerText();
      expect(shown).toContain('12:30:00');
      expect(shown).toContain('GMT+8');
      // actions and roles translated
      expect(await page.locator('[data-test="audit-entry"]').innerText()).toContain(message('zh-CN', 'audit.actions.create'));
      expect(await page.locator('[data-test="audit-entry"]').innerText()).toContain(message('zh-CN', 'common.roles.technician'));
      expect(await page.locator('[data-test="audit-entry"]').evaluate((row) => getComputedStyle(row).display)).toBe('block');
      expect(await overflowing(page, '[data-test="audit-trail"]')).toEqual([]);
      expect(await seriousViolations(page, '[data-test="audit-trail"]')).toEqual([]);
      await screenshot(page, 'audit-trail-zh-phone');

      // an end before the start: named, nothing sent, the entry shown stays
      await page.getByLabel(message('zh-CN', 'audit.until')).fill('2026-11-28T10:00');
      await page.locator('[data-test="audit-filter"] button[type="submit"]').press('Enter');
      expect(await page.locator('[data-test="audit-filter"] [data-test="field-error"]').innerText()).toBe(
        message('zh-CN', 'audit.badRange', { since: message('zh-CN', 'audit.since'), until: message('zh-CN', 'audit.until') }),
      );
      expect(await page.getByLabel(message('zh-CN', 'audit.until')).getAttribute('aria-invalid')).toBe('true');
      expect(await page.locator('[data-test="audit-entry"]').count()).toBe(1);
      expect(auditor.errors).toEqual([]);
    } finally {
      await auditor.close();
    }
  }, 45_000);

  test('a technician has no audit-trail entry and #/audit shows the refusal translated', async () => {
    const tech = await signIn(browser, t, 'technician');
    try {
      const { page } = tech;
      await page.waitForSelector('[data-test="nav-home"]', WAIT);
      expect(await page.locator('[data-test="nav-audit"]').count()).toBe(0);
      await page.goto(`${t.base}/#/audit`);
      await page.waitForSelector('[data-test="audit-error"]', WAIT);
      const direct = await t.fetch('/api/audit-trail', {}, 'technician');
      expect(direct.status).toBe(403);
      expect(await page.locator('[data-test="audit-error"]').innerText()).toBe(refusalText('en', await direct.json()));
      expect(tech.errors).toEqual([]);
    } finally {
      await tech.close();
    }
  }, 30_000);
});
