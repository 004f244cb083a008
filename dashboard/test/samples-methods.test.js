// Received samples and test methods in a real headless Chromium against a real server, through the UI alone, each
// effect checked through the REST API: a technician in Chinese on a phone (Asia/Shanghai) registers a sample with a
// Chinese description, its receipt time typed in Shanghai time; an English technician creates a method with two
// inspection rules, a check of the form stopping a bad warning band first; in Chinese on a phone the technician
// changes a limit of a rule, a new version appears beside the old one and the history shows what changed. Missing
// fields and an id in use are said beside their fields, translated. Who sees which entries and forms follows the
// server's policy. With LABTRACE_SCREENSHOTS=1 the views are saved to docs/screenshots/samples-*.png, methods-*.png.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ORGANIZATION, startServer } from '../../server/dist/test/helpers/server.js';
import { REPO_ROOT } from '../../server/dist/test/helpers/lab-process.js';
import { call, launch, WAIT } from './helpers/browser.js';
import { DESKTOP, message, overflowing, PHONE, seriousViolations, signInAs } from './helpers/records.js';

let t;
let browser;
const SHANGHAI = { locale: 'zh-CN', timezoneId: 'Asia/Shanghai', screen: PHONE };
const ENGLISH = { locale: 'en-US', timezoneId: 'UTC', screen: DESKTOP };

/** a picture for the docs (docs/screenshots/<name>.png) when LABTRACE_SCREENSHOTS=1; its size is checked to stay small */
async function docShot(page, name, element = undefined) {
  if (process.env.LABTRACE_SCREENSHOTS !== '1') return;
  const dir = path.join(REPO_ROOT, 'docs', 'screenshots');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.png`);
  // a part of the page (a form) or what the screen shows
  if (element === undefined) await page.screenshot({ path: file });
  else await page.locator(element).screenshot({ path: file });
  expect(statSync(file).size).toBeLessThan(160_000);
}

beforeAll(async () => {
  t = await startServer();
  // the customer's name as a Chinese lab knows it
  t.server.database.sqlite.prepare('UPDATE organizations SET name = ? WHERE id = ?').run('上海甲方建材有限公司', ORGANIZATION);
  await call(t, '/api/organizations', { id: 'org-b', name: 'Acme Steel', contact: 'qa@acme.example' }, 'admin');
  browser = await launch();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await t?.stop();
});

describe('samples', () => {
  test('a technician in Chinese on a phone registers a received sample; the server keeps it as typed, received at the Shanghai time', async () => {
    const tech = await signInAs(browser, t, 'technician', SHANGHAI);
    try {
      const { page } = tech;
      await page.click('[data-test="nav-samples"]');
      await page.waitForSelector('[data-test="samples"][data-loaded="yes"]', WAIT);
      await page.waitForSelector('[data-test="samples-empty"]', WAIT);
      const form = page.locator('[data-test="sample-form"]');
      await form.locator('select[name="organization"] option[value="org-a"]').waitFor({ state: 'attached', ...WAIT });

      // nothing filled in: each field says what it needs, in Chinese, and nothing is sent
      await form.locator('textarea[name="description"]').fill('');
      await form.locator('[data-test="sample-submit"]').click();
      const errorOf = (name) => form.locator(`#sample-${name}-problem`);
      expect(await errorOf('organization').innerText()).toBe(
        message('zh-CN', 'samples.check.choose', { field: message('zh-CN', 'samples.fields.organization') }),
      );
      expect(await errorOf('id').innerText()).toBe(message('zh-CN', 'samples.check.required', { field: message('zh-CN', 'samples.fields.id') }));
      expect(await errorOf('description').innerText()).toBe(
        message('zh-CN', 'samples.check.required', { field: message('zh-CN', 'samples.fields.description') }),
      );
      expect(await form.locator('input[name="id"]').getAttribute('aria-invalid')).toBe('true');
      // a bad id is said before sending
      await form.locator('input[name="id"]').fill('样品 1');
      await form.locator('[data-test="sample-submit"]').click();
      expect(await errorOf('id').innerText()).toBe(message('zh-CN', 'samples.check.badId', { field: message('zh-CN', 'samples.fields.id') }));
      expect((await call(t, '/api/lab-samples')).items).toEqual([]);

      await form.locator('select[name="organization"]').selectOption('org-a');
      await form.locator('input[name="id"]').fill('S-2026-0001');
      await form.locator('textarea[name="description"]').fill('热轧带肋钢筋 HRB400E Φ16，长 500 mm，共 3 根');
      await form.locator('textarea[name="condition"]').fill('完好，表面无锈蚀；标签清晰');
      // 2026-12-01 09:30 in Shanghai is 01:30 UTC
      await form.locator('input[name="receivedAt"]').fill('2026-12-01T09:30');
      await form.locator('[data-test="sample-submit"]').click();
      await page.waitForSelector('[data-test="sample-created"][data-sample="S-2026-0001"]', WAIT);
      const stored = await call(t, '/api/lab-samples/S-2026-0001');
      expect(stored).toMatchObject({
        id: 'S-2026-0001',
        organization: ORGANIZATION,
        description: '热轧带肋钢筋 HRB400E Φ16，长 500 mm，共 3 根',
        condition: '完好，表面无锈蚀；标签清晰',
        receivedAt: Date.UTC(2026, 11, 1, 1, 30),
        createdBy: 'technician',
      });
      // the list hears of it over socket.io and shows it, with the time in Shanghai
      const row = page.locator('[data-test="sample-row"][data-sample="S-2026-0001"]');
      await row.waitFor(WAIT);
      expect(await row.innerText()).toContain('2026-12-01 09:30:00');
      await page.locator('[data-test="sample-created"]').scrollIntoViewIfNeeded();
      await docShot(page, 'samples-register-zh-phone');

      // the same id again: the server's refusal is said beside the id, in Chinese
      await form.locator('select[name="organization"]').selectOption('org-a');
      await form.locator('input[name="id"]').fill('S-2026-0001');
      await form.locator('textarea[name="description"]').fill('重复');
      await form.locator('textarea[name="condition"]').fill('完好');
      await form.locator('[data-test="sample-submit"]').click();
      await page.waitForFunction(() => (document.querySelector('#sample-id-problem')?.textContent ?? '').trim() !== '', undefined, WAIT);
      const input = {
        id: stored.id,
        organization: stored.organization,
        description: stored.description,
        condition: stored.condition,
        receivedAt: stored.receivedAt,
      };
      const exists = await t.fetch(
        '/api/lab-samples',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(input) },
        'technician',
      );
      const body = await exists.json();
      expect(exists.status).toBe(409);
      expect(await errorOf('id').innerText()).toContain(message('zh-CN', 'errors.recordType.sample'));
      expect(body.reason).toBe('record.exists');

      // the server's 400 lands beside the field it names, in Chinese: a client that sent a time the server refuses
      // (the request is changed on its way, as an outdated page would send it)
      await page.route('**/api/lab-samples', async (route) => {
        if (route.request().method() !== 'POST') return route.continue();
        const sent = JSON.parse(route.request().postData() ?? '{}');
        await route.continue({ postData: JSON.stringify({ ...sent, receivedAt: 5 }) });
      });
      await form.locator('input[name="id"]').fill('S-2026-0002');
      await form.locator('[data-test="sample-submit"]').click();
      await page.waitForFunction(() => (document.querySelector('#sample-receivedAt-problem')?.textContent ?? '').trim() !== '', undefined, WAIT);
      const refused = await errorOf('receivedAt').innerText();
      expect(refused.startsWith(`${message('zh-CN', 'samples.fields.receivedAt')}：`)).toBe(true);
      expect(refused).not.toMatch(/[A-Za-z]{3,}/);
      expect(await errorOf('id').innerText()).toBe('');
      await page.unroute('**/api/lab-samples');
      expect((await t.fetch('/api/lab-samples/S-2026-0002', {}, 'technician')).status).toBe(404);

      expect(await overflowing(page)).toEqual([]);
      expect(await seriousViolations(page)).toEqual([]);

      // the sample's page: its data, who registered it and when, its runs (none yet)
      // by the keyboard, as a screen reader user follows it
      await row.locator('a').focus();
      await page.keyboard.press('Enter');
      await page.waitForSelector('[data-test="sample-view"][data-loaded="yes"]', WAIT);
      expect(await page.locator('[data-test="sample-description"]').innerText()).toBe(stored.description);
      expect(await page.locator('[data-test="sample-received"]').innerText()).toContain('2026-12-01 09:30:00');
      expect(await page.locator('[data-test="sample-registered"]').innerText()).toContain('technician');
      await page.waitForSelector('[data-test="sample-no-runs"]', WAIT);
      await docShot(page, 'samples-detail-zh-phone');
      expect(await overflowing(page)).toEqual([]);
      expect(await seriousViolations(page)).toEqual([]);
      expect(tech.errors).toEqual([]);
    } finally {
      await tech.close();
    }
  }, 120_000);

  test('the list finds by text, customer and time of receipt, and pages with "Show more"', async () => {
    for (let i = 1; i <= 30; i++)
      await call(t, '/api/lab-samples', {
        id: `B-${String(i).padStart(3, '0')}`,
        organization: i % 3 === 0 ? 'org-b' : ORGANIZATION,
        description: i === 7 ? 'aluminium profile 6063-T5' : `steel bar ${i}`,
        condition: 'intact',
        receivedAt: Date.UTC(2026, 10, i, 8),
      });
    const tech = await signInAs(browser, t, 'technician', ENGLISH);
    try {
      const { page } = tech;
      await page.goto(`${t.base}/#/samples`);
      await page.waitForSelector('[data-test="sample-row"]', WAIT);
      const ids = () => page.locator('[data-test="sample-row"]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-sample')));
      // 25 a page, newest first; "Show more" brings the rest, each once
      expect((await ids()).slice(0, 3)).toEqual(['B-030', 'B-029', 'B-028']);
      expect(await ids()).toHaveLength(25);
      await page.click('[data-test="samples-more"]');
      await page.waitForFunction(() => document.querySelectorAll('[data-test="sample-row"]').length === 31, undefined, WAIT);
      const all = await ids();
      expect(new Set(all).size).toBe(31);
      expect(await page.locator('[data-test="samples-more"]').count()).toBe(0);

      await page.fill('#samples-q', 'aluminium');
      await page.click('[data-test="samples-search"]');
      await page.waitForFunction(() => document.querySelectorAll('[data-test="sample-row"]').length === 1, undefined, WAIT);
      expect(await ids()).toEqual(['B-007']);

      await page.fill('#samples-q', '');
      await page.fill('#samples-organization', 'org-b');
      await page.fill('#samples-from', '2026-11-10T00:00');
      await page.fill('#samples-to', '2026-11-20T00:00');
      await page.click('[data-test="samples-search"]');
      await page.waitForFunction(() => document.querySelectorAll('[data-test="sample-row"]').length === 3, undefined, WAIT);
      expect(await ids()).toEqual(['B-018', 'B-015', 'B-012']);
      // an end before the start is said before asking
      await page.fill('#samples-to', '2026-11-01T00:00');
      await page.click('[data-test="samples-search"]');
      expect(await page.locator('#samples-to-problem').innerText()).toBe(
        message('en', 'samples.check.badRange', { from: message('en', 'samples.filter.from'), to: message('en', 'samples.filter.to') }),
      );
      await page.fill('#samples-to', '2026-11-20T00:00');
      await page.click('[data-test="samples-clear"]');
      await page.waitForFunction(() => document.querySelectorAll('[data-test="sample-row"]').length === 25, undefined, WAIT);
      expect(await seriousViolations(page)).toEqual([]);
      await docShot(page, 'samples-list-en');
      expect(tech.errors).toEqual([]);
    } finally {
      await tech.close();
    }
  }, 120_000);

  test('a client sees its own organization’s samples and no registration form; a signatory reads without forms', async () => {
    const client = await signInAs(browser, t, 'client', ENGLISH);
    try {
      const { page } = client;
      expect(await page.locator('[data-test="nav-samples"]').count()).toBe(0);
      await page.goto(`${t.base}/#/samples`);
      await page.waitForSelector('[data-test="sample-row"]', WAIT);
      expect(await page.locator('[data-test="sample-form"]').count()).toBe(0);
      const shown = await page.locator('[data-test="sample-row"]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-sample')));
      const own = (await call(t, '/api/lab-samples?limit=500', undefined, 'client')).items.map((s) => s.id);
      expect(shown.every((id) => own.includes(id))).toBe(true);
      expect(shown).not.toContain('B-015');
      // another organization's sample reads as unknown
      await page.goto(`${t.base}/#/samples/B-015`);
      await page.waitForSelector('[data-test="sample-error"]', WAIT);
    } finally {
      await client.close();
    }
    const signatory = await signInAs(browser, t, 'signatory', ENGLISH);
    try {
      const { page } = signatory;
      await page.click('[data-test="nav-samples"]');
      await page.waitForSelector('[data-test="sample-row"]', WAIT);
      expect(await page.locator('[data-test="sample-form"]').count()).toBe(0);
      await page.click('[data-test="nav-methods"]');
      await page.waitForSelector('[data-test="methods"][data-loaded="yes"]', WAIT);
      expect(await page.locator('[data-test="method-new"]').count()).toBe(0);
    } finally {
      await signatory.close();
    }
  }, 60_000);
});

describe('methods', () => {
  test('an English technician creates a method with two inspection rules; a bad warning band is said first', async () => {
    const tech = await signInAs(browser, t, 'technician', ENGLISH);
    try {
      const { page } = tech;
      await page.click('[data-test="nav-methods"]');
      await page.waitForSelector('[data-test="methods"][data-loaded="yes"]', WAIT);
      await page.click('[data-test="method-new"]');
      const form = page.locator('[data-test="method-create"]');
      await form.locator('input[name="id"]').fill('tensile-gb228');
      await form.locator('input[name="standard"]').fill('GB/T 228.1-2021');
      await form.locator('input[name="title"]').fill('Metallic materials, tensile testing at room temperature');
      const measurand = form.locator('[data-test="measurand"]').first();
      await measurand.locator('input[name="measurand-name"]').fill('F');
      await measurand.locator('input[name="measurand-unit"]').fill('kN');
      await measurand.locator('input[name="measurand-channel"]').fill('force');
      await form.locator('[data-test="limit-add"]').click();
      await form.locator('input[name="limit-min"]').fill('0');
      await form.locator('input[name="limit-max"]').fill('100');

      await form.locator('[data-test="rule-add"]').click();
      const first = form.locator('[data-test="rule"]').nth(0);
      await first.locator('input[name="rule-id"]').fill('force-high');
      await first.locator('input[name="rule-channel"]').fill('force');
      await first.locator('input[name="rule-high"]').fill('90');
      await first.locator('input[name="rule-warnHigh"]').fill('95');
      // the limit's unit is the channel's measurand's
      expect(await first.locator('#rule-0-high-unit').innerText()).toBe('kN');
      await form.locator('[data-test="rule-add"]').click();
      const second = form.locator('[data-test="rule"]').nth(1);
      await second.locator('select[name="rule-kind"]').selectOption('rate-of-change');
      await second.locator('input[name="rule-id"]').fill('force-jump');
      await second.locator('select[name="rule-severity"]').selectOption('warning');
      await second.locator('input[name="rule-channel"]').fill('force');
      await second.locator('input[name="rule-maxPerSecond"]').fill('5');

      // the warning level above the alarm level: said beside the field, nothing sent
      await form.locator('[data-test="method-submit"]').click();
      expect(await first.locator('#rule-0-warnHigh-problem').innerText()).toBe(
        message('en', 'methods.check.lowNotBelow', {
          low: message('en', 'methods.rules.fields.warnHigh'),
          high: message('en', 'methods.rules.fields.high'),
        }),
      );
      expect((await t.fetch('/api/methods/tensile-gb228', {}, 'technician')).status).toBe(404);
      await first.locator('input[name="rule-warnHigh"]').fill('80');
      await docShot(page, 'methods-form-en', '[data-test="rule-editor"]');
      // the server's 400 lands beside the field it names: a rate the server refuses, as an outdated page would send it
      await page.route('**/api/methods', async (route) => {
        if (route.request().method() !== 'POST') return route.continue();
        const sent = JSON.parse(route.request().postData() ?? '{}');
        sent.definition.rules[1].maxPerSecond = -5;
        await route.continue({ postData: JSON.stringify(sent) });
      });
      await form.locator('[data-test="method-submit"]').click();
      await page.waitForFunction(() => (document.querySelector('#rule-1-maxPerSecond-problem')?.textContent ?? '').trim() !== '', undefined, WAIT);
      expect(await second.locator('#rule-1-maxPerSecond-problem').innerText()).toMatch(/^too small/);
      expect(await second.locator('input[name="rule-maxPerSecond"]').getAttribute('aria-invalid')).toBe('true');
      expect(await page.locator('[data-test="method-error"]').count()).toBe(0);
      await page.unroute('**/api/methods');
      await form.locator('[data-test="method-submit"]').click();
      await page.waitForSelector('[data-test="method-created"][data-method="tensile-gb228"]', WAIT);

      const [v1] = await call(t, '/api/methods/tensile-gb228');
      expect(v1).toMatchObject({
        version: 1,
        standard: 'GB/T 228.1-2021',
        createdBy: 'technician',
        definition: {
          measurands: [{ name: 'F', unit: 'kN', channel: 'force' }],
          limits: [{ measurand: 'F', min: 0, max: 100 }],
          decisionRule: { kind: 'simple-acceptance' },
          rules: [
            { id: 'force-high', kind: 'limits', severity: 'alarm', channel: 'force', high: 90, warnHigh: 80 },
            { id: 'force-jump', kind: 'rate-of-change', severity: 'warning', channel: 'force', maxPerSecond: 5 },
          ],
        },
      });
      // the list shows it, in its newest version
      await page.waitForSelector('[data-test="method-row"][data-method="tensile-gb228"][data-version="1"]', WAIT);

      // the same id again: the server's refusal beside the id
      await page.click('[data-test="method-new"]');
      const again = page.locator('[data-test="method-create"]');
      await again.locator('input[name="id"]').fill('tensile-gb228');
      await again.locator('input[name="standard"]').fill('GB/T 228.1-2021');
      await again.locator('input[name="title"]').fill('Again');
      await again.locator('input[name="measurand-name"]').fill('F');
      await again.locator('input[name="measurand-channel"]').fill('force');
      await again.locator('[data-test="method-submit"]').click();
      await page.waitForFunction(() => (document.querySelector('#method-new-id-problem')?.textContent ?? '').trim() !== '', undefined, WAIT);
      expect(await again.locator('#method-new-id-problem').innerText()).toContain(message('en', 'errors.recordType.method'));
      await again.locator('[data-test="method-cancel"]').click();
      expect(await seriousViolations(page)).toEqual([]);
      expect(tech.errors).toEqual([]);
    } finally {
      await tech.close();
    }
  }, 120_000);

  test('in Chinese on a phone the technician changes a rule’s limit: a new version appears, the old one stays, the history shows the change', async () => {
    const tech = await signInAs(browser, t, 'technician', SHANGHAI);
    try {
      const { page } = tech;
      await page.goto(`${t.base}/#/methods/tensile-gb228`);
      await page.waitForSelector('[data-test="method-view"][data-loaded="yes"][data-version="1"]', WAIT);
      await page.click('[data-test="method-change"]');
      const form = page.locator('[data-test="method-version"]');
      const rule = form.locator('[data-test="rule"][data-rule="force-high"]');
      await rule.locator('input[name="rule-high"]').fill('85');
      // a change needs its reason: said in Chinese, nothing sent
      await form.locator('[data-test="method-submit"]').click();
      expect(await form.locator('#method-version-reason-problem').innerText()).toBe(message('zh-CN', 'methods.check.required'));
      expect((await call(t, '/api/methods/tensile-gb228')).map((m) => m.version)).toEqual([1]);
      await form.locator('textarea[name="reason"]').fill('按产品标准 GB/T 1499.2 收紧报警上限');
      await form.locator('[data-test="method-submit"]').click();
      await page.waitForSelector('[data-test="method-view"][data-version="2"]', WAIT);
      await page.waitForSelector('[data-test="method-saved"]', WAIT);

      const versions = await call(t, '/api/methods/tensile-gb228');
      expect(versions.map((m) => m.version)).toEqual([1, 2]);
      expect(versions[0].definition.rules[0]).toMatchObject({ id: 'force-high', high: 90, warnHigh: 80 });
      expect(versions[1].definition.rules[0]).toMatchObject({ id: 'force-high', high: 85, warnHigh: 80 });
      expect(versions[1].definition.rules[1]).toEqual(versions[0].definition.rules[1]);
      // the reason is in the audit trail with both versions
      const audit = await call(t, '/api/audit-trail?recordType=method&recordId=tensile-gb228', undefined, 'admin');
      const entries = Array.isArray(audit) ? audit : (audit.items ?? audit.entries);
      expect(entries.find((e) => e.action === 'update')).toMatchObject({
        reason: '按产品标准 GB/T 1499.2 收紧报警上限',
        oldValue: { version: 1 },
        newValue: { version: 2 },
      });

      // the history: version 2 changed one field of one rule, 90 -> 85
      const change = page.locator('[data-test="method-history-version"][data-version="2"] [data-test="method-change-item"]');
      expect(await change.count()).toBe(1);
      expect(await change.getAttribute('data-part')).toBe('rule');
      expect(await change.getAttribute('data-key')).toBe('force-high');
      const field = change.locator('[data-test="method-change-field"]');
      expect(await field.count()).toBe(1);
      expect([await field.getAttribute('data-field'), await field.getAttribute('data-before'), await field.getAttribute('data-after')]).toEqual([
        'high',
        '90',
        '85',
      ]);
      expect(await field.innerText()).toContain(message('zh-CN', 'methods.rules.fields.high'));
      expect(await overflowing(page)).toEqual([]);
      expect(await seriousViolations(page)).toEqual([]);
      await page.locator('[data-test="method-history"]').scrollIntoViewIfNeeded();
      await docShot(page, 'methods-history-zh-phone');
      expect(tech.errors).toEqual([]);
    } finally {
      await tech.close();
    }
  }, 120_000);
});
