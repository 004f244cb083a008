// The admin's tasks in a real headless Chromium against a real server, each done through the UI alone and checked
// through the REST API: an enrollment token is created and shown once (and enrolls its gateway); a gateway key is
// revoked with a reason after a confirmation (the key's state, the audit trail and the security event say so); an
// API token is created, shown once, and revoked (it no longer signs in); security events are paged and filtered in
// Chinese; system health is worded; a technician subscribes to alarm e-mails in Settings. With LABTRACE_SCREENSHOTS=1
// the views are saved to docs/screenshots/admin-*.png.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { enrollmentProofBytes, formatVerifierKey, publicKeyFromSeed, signEd25519, toBase64 } from '@labtrace/protocols';
import { postJson, startServer } from '../../server/dist/test/helpers/server.js';
import { REPO_ROOT } from '../../server/dist/test/helpers/lab-process.js';
import { call, launch, WAIT } from './helpers/browser.js';
import { DESKTOP, message, overflowing, PHONE, seriousViolations, signInAs } from './helpers/records.js';

let t;
let browser;

/** a picture for the docs, only when asked for (LABTRACE_SCREENSHOTS=1): the visible screen, kept small */
async function docShot(page, name) {
  if (process.env.LABTRACE_SCREENSHOTS !== '1') return;
  const dir = path.join(REPO_ROOT, 'docs', 'screenshots');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `admin-${name}.png`), fullPage: false });
}

/** answers the open confirmation dialog with a reason (none when not given) */
async function confirmWith(page, reason) {
  const dialog = page.locator('[data-test="confirm-dialog"]');
  await dialog.locator('[data-test="confirm-ok"]').waitFor(WAIT);
  if (reason !== undefined) await dialog.locator('[data-test="confirm-reason"]').fill(reason);
  await dialog.locator('[data-test="confirm-ok"]').click();
}

beforeAll(async () => {
  // an SMTP relay is configured (nothing listens there: subscribing does not send)
  t = await startServer({ notifications: { smtp: { host: '127.0.0.1', port: 9, from: 'labtrace <lab@example.test>' } } });
  browser = await launch();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await t?.stop();
});

describe("the admin's gateways", () => {
  test('an enrollment token is shown once and enrolls its gateway; a key is revoked with a reason, seen in the audit trail', async () => {
    const admin = await signInAs(browser, t, 'admin', { screen: DESKTOP });
    let token;
    try {
      const { page } = admin;
      await page.click('[data-test="nav-admin"]');
      await page.waitForSelector('[data-test="admin-home"]', WAIT);
      await page.click('[data-test="admin-nav-gateways"]');
      await page.waitForSelector('[data-test="gateways-view"][data-loaded="yes"]', WAIT);
      // no gateway id: named, nothing sent
      const form = page.locator('[data-test="enroll-create"]');
      await form.locator('button[type="submit"]').click();
      expect(await form.locator('[data-test="field-error"]').first().innerText()).toBe(
        message('en', 'admin.required', { field: message('en', 'admin.gateways.gatewayId') }),
      );
      expect(await call(t, '/api/gateways/enrollment-tokens', undefined, 'admin')).toEqual([]);
      await form.getByLabel(message('en', 'admin.gateways.gatewayId')).fill('gw-bay-7');
      await form.getByLabel(message('en', 'admin.gateways.ttlHours')).fill('8');
      await form.locator('button[type="submit"]').click();
      const secret = page.locator('[data-test="once-secret-value"]');
      await secret.waitFor(WAIT);
      token = await secret.innerText();
      expect(token).toMatch(/^lt-enroll-[A-Za-z0-9_-]{43}$/);
      await page.waitForSelector('[data-test="pending-token"][data-gateway="gw-bay-7"]', WAIT);
      const pending = await call(t, '/api/gateways/enrollment-tokens', undefined, 'admin');
      expect(pending).toEqual([expect.objectContaining({ gateway: 'gw-bay-7' })]);
      expect(pending[0].expiresAt - pending[0].createdAt).toBe(8 * 3_600_000);
      await docShot(page, 'gateways-token');
      // shown once: the list never carries it, and the view opened again does not show it
      expect(JSON.stringify(pending)).not.toContain(token);
      await page.click('[data-test="admin-nav-health"]');
      await page.waitForSelector('[data-test="health-view"]', WAIT);
      await page.click('[data-test="admin-nav-gateways"]');
      await page.waitForSelector('[data-test="pending-token"][data-gateway="gw-bay-7"]', WAIT);
      expect(await page.locator('[data-test="once-secret"]').count()).toBe(0);
      expect(await page.content()).not.toContain(token);
    } finally {
      await admin.close();
    }

    // the token shown is the real one: the gateway enrolls with it
    const seed = new Uint8Array(32).fill(7);
    const key = formatVerifierKey('gw-bay-7', publicKeyFromSeed(seed));
    const body = { token, gateway: 'gw-bay-7', key };
    const enrolled = await t.fetch('/api/enroll', postJson({ ...body, proof: toBase64(signEd25519(enrollmentProofBytes(body), seed)) }), null);
    expect(enrolled.status).toBe(201);
    const { keyId } = await enrolled.json();

    // in Chinese on a phone: the gateway's key is revoked with a reason after a confirmation
    const again = await signInAs(browser, t, 'admin', { locale: 'zh-CN', timezoneId: 'Asia/Shanghai', screen: PHONE });
    try {
      const { page } = again;
      await page.goto(`${t.base}/#/admin/gateways`);
      const row = page.locator(`[data-test="gateway"][data-gateway="gw-bay-7"] [data-test="gateway-key"][data-key="${keyId}"]`);
      await row.waitFor(WAIT);
      // enrolled: no token pending any more
      await page.waitForSelector('[data-test="pending-empty"]', WAIT);
      expect(await page.locator('[data-test="gateway"][data-gateway="gw-bay-7"]').getAttribute('data-rotation')).toBe('ok');
      expect(await overflowing(page, '[data-test="gateways-view"]')).toEqual([]);
      expect(await seriousViolations(page, '[data-test="gateways-view"]')).toEqual([]);
      await row.locator('[data-test="key-revoke"]').click();
      // cancelled: nothing happens
      await page.locator('[data-test="confirm-cancel"]').click();
      expect((await call(t, '/api/gateways/gw-bay-7/keys', undefined, 'admin'))[0].status).toBe('active');
      await row.locator('[data-test="key-revoke"]').click();
      const ok = page.locator('[data-test="confirm-ok"]');
      await ok.waitFor(WAIT);
      // a reason is required before the button works
      expect(await ok.isDisabled()).toBe(true);
      await confirmWith(page, '网关在 7 号工位被盗');
      await page.waitForSelector(`[data-test="gateway-key"][data-key="${keyId}"][data-status="revoked"]`, WAIT);
      expect(await page.locator('[data-test="gateways-notice"]').innerText()).toContain(
        message('zh-CN', 'admin.gateways.keyRevoked', { gateway: 'gw-bay-7', key: keyId }),
      );
      expect(await page.locator('[data-test="gateway"][data-gateway="gw-bay-7"]').getAttribute('data-rotation')).toBe('no-key');
      await docShot(page, 'gateways-zh-phone');
      expect(again.errors).toEqual([]);
    } finally {
      await again.close();
    }
    const keys = await call(t, '/api/gateways/gw-bay-7/keys', undefined, 'admin');
    expect(keys).toEqual([expect.objectContaining({ keyId, status: 'revoked', reason: '网关在 7 号工位被盗' })]);
    const trail = (await call(t, `/api/audit-trail?recordType=gateway-key&recordId=gw-bay-7/${keyId}`, undefined, 'admin')).items;
    expect(trail).toEqual([expect.objectContaining({ actor: 'admin', action: 'state-change', reason: '网关在 7 号工位被盗' })]);
    const events = await call(t, '/api/security-events?gateway=gw-bay-7&kind=key-revoked', undefined, 'admin');
    expect(events.items[0].detail).toContain('网关在 7 号工位被盗');
  }, 90_000);
});

describe('accreditations', () => {
  test('the scope is extended with a reason, then the accreditation suspended with a reason; the API says so', async () => {
    const day = 86_400_000;
    await call(
      t,
      '/api/accreditations',
      {
        id: 'cnas-l9',
        body: 'CNAS',
        number: 'L9',
        validFrom: Date.now() - day,
        validTo: Date.now() + 400 * day,
        scope: [{ standard: 'ISO 6892-1:2019', measurand: 'Rm', unit: 'MPa', min: 0, max: 2000 }],
      },
      'admin',
    );
    const admin = await signInAs(browser, t, 'admin', { screen: DESKTOP });
    try {
      const { page } = admin;
      await page.goto(`${t.base}/#/admin/accreditations`);
      const item = page.locator('[data-test="accreditation"][data-id="cnas-l9"]');
      await item.waitFor(WAIT);
      expect(await item.getAttribute('data-status')).toBe('active');
      await item.locator('[data-test="scope-edit"]').click();
      const form = item.locator('[data-test="scope-form"]');
      await form.locator('[data-test="scope-add"]').click();
      const line = form.locator('[data-test="scope-line"]').nth(1);
      await line.locator('[data-test="scope-standard"]').fill('ISO 6506-1:2014');
      await line.locator('[data-test="scope-measurand"]').fill('HBW');
      await line.locator('[data-test="scope-unit"]').fill('HBW');
      await line.locator('[data-test="scope-min"]').fill('8');
      await line.locator('[data-test="scope-max"]').fill('650');
      await form.locator('[data-test="scope-save"]').click();
      await confirmWith(page, 'extension granted at the 2026 surveillance visit');
      await page.waitForFunction(
        () => document.querySelectorAll('[data-test="accreditation"][data-id="cnas-l9"] [data-test="scope-entry"]').length === 2,
        null,
        WAIT,
      );
      await item.locator('[data-test="accreditation-suspend"]').click();
      await confirmWith(page, 'suspended by CNAS pending corrective actions');
      await page.waitForSelector('[data-test="accreditation"][data-id="cnas-l9"][data-status="suspended"]', WAIT);
      expect(await seriousViolations(page, '[data-test="accreditations-view"]')).toEqual([]);
      expect(admin.errors).toEqual([]);
    } finally {
      await admin.close();
    }
    const stored = await call(t, '/api/accreditations/cnas-l9', undefined, 'admin');
    expect(stored.status).toBe('suspended');
    expect(stored.events).toEqual([
      expect.objectContaining({ kind: 'suspend', reason: 'suspended by CNAS pending corrective actions', recordedBy: 'admin' }),
    ]);
    expect(stored.scope).toMatchObject({ version: 2, reason: 'extension granted at the 2026 surveillance visit' });
    expect(stored.scope.entries).toContainEqual({ standard: 'ISO 6506-1:2014', measurand: 'HBW', unit: 'HBW', min: 8, max: 650 });
  }, 60_000);
});

describe('API tokens', () => {
  test('in Chinese: a token is created and shown once, then revoked after a confirmation, and no longer signs in', async () => {
    const admin = await signInAs(browser, t, 'admin', { locale: 'zh-CN', timezoneId: 'Asia/Shanghai', screen: DESKTOP });
    try {
      const { page } = admin;
      await page.goto(`${t.base}/#/admin/tokens`);
      await page.waitForSelector('[data-test="tokens"]', WAIT);
      const form = page.locator('[data-test="token-create"]');
      await form.getByLabel(message('zh-CN', 'admin.tokens.name')).fill('LIMS 导出');
      await form.getByLabel(message('zh-CN', 'admin.tokens.ttlDays')).fill('30');
      await form.locator('button[type="submit"]').click();
      const secret = page.locator('[data-test="once-secret-value"]');
      await secret.waitFor(WAIT);
      const token = await secret.innerText();
      const me = await fetch(`${t.base}/api/auth/me`, { headers: { authorization: `Bearer ${token}` } });
      expect(me.status).toBe(200);
      expect((await me.json()).username).toBe('admin');
      const listed = (await call(t, '/api/auth/tokens', undefined, 'admin')).find((x) => x.name === 'LIMS 导出');
      expect(listed).toMatchObject({ username: 'admin', role: 'admin' });
      expect(listed.expiresAt - listed.createdAt).toBe(30 * 86_400_000);
      const item = page.locator(`[data-test="token"][data-id="${listed.id}"]`);
      await item.waitFor(WAIT);
      await docShot(page, 'tokens-zh');
      await item.locator('[data-test="token-revoke"]').click();
      await confirmWith(page, '系统已停用');
      await item.waitFor({ state: 'detached', ...WAIT });
      expect((await call(t, '/api/auth/tokens', undefined, 'admin')).map((x) => x.id)).not.toContain(listed.id);
      expect((await fetch(`${t.base}/api/auth/me`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
      expect(await page.content()).not.toContain(token);
      expect(await seriousViolations(page, '[data-test="tokens-view"]')).toEqual([]);
      expect(admin.errors).toEqual([]);
    } finally {
      await admin.close();
    }
  }, 60_000);
});

describe('security events and health', () => {
  test('in Chinese on a phone: events are paged newest first, each once, filtered by kind and a local time range', async () => {
    const at = Date.UTC(2026, 10, 30, 2, 0, 0); // 10:00 in Shanghai
    for (let i = 0; i < 30; i++) t.server.events.record('gw-a', 'clock-skew', 'notice', `sample times ${i} s ahead`, null, at + i * 1000);
    t.server.events.record('gw-b', 'forged', 'alarm', 'signature does not verify', 7, at + 40_000);
    const admin = await signInAs(browser, t, 'admin', { locale: 'zh-CN', timezoneId: 'Asia/Shanghai', screen: PHONE });
    try {
      const { page } = admin;
      await page.goto(`${t.base}/#/admin/security`);
      await page.waitForSelector('[data-test="security-event"]', WAIT);
      await page.locator('[data-test="security-kind"]').selectOption('clock-skew');
      // a time range in Shanghai time: 10:00:00 to 10:00:40 holds the 30 clock-skew events (and the forged one, of another kind)
      await page.locator('[data-test="security-from"]').fill('2026-11-30T10:00:00');
      await page.locator('[data-test="security-to"]').fill('2026-11-30T10:00:40');
      await page.waitForFunction(
        () => {
          const items = [...document.querySelectorAll('[data-test="security-event"]')];
          return (
            items.length > 0 &&
            items.every((e) => e.getAttribute('data-kind') === 'clock-skew') &&
            document.querySelector('[data-test="security-more"]')
          );
        },
        null,
        WAIT,
      );
      expect(await page.locator('[data-test="security-event"]').count()).toBe(25);
      await page.locator('[data-test="security-more"]').click();
      await page.waitForFunction(() => document.querySelectorAll('[data-test="security-event"]').length > 25, null, WAIT);
      const details = await page.locator('[data-test="security-detail"]').allInnerTexts();
      // every event once, newest first
      expect(details).toEqual(Array.from({ length: 30 }, (_, i) => `sample times ${29 - i} s ahead`));
      expect(await page.locator('[data-test="security-more"]').count()).toBe(0);
      // the API agrees: the same events
      const api = await call(t, `/api/security-events?kind=clock-skew&from=${at}&to=${at + 40_000}&limit=100`, undefined, 'admin');
      expect(api.items.map((e) => e.detail)).toEqual(details);
      // the kind and severity are in Chinese
      const first = page.locator('[data-test="security-event"]').first();
      expect(await first.locator('h3').innerText()).toContain(message('zh-CN', 'admin.security.kinds.clock-skew'));
      expect(await first.locator('h3').innerText()).toContain(message('zh-CN', 'admin.security.severity.notice'));
      expect(await overflowing(page, '[data-test="security-view"]')).toEqual([]);
      expect(await seriousViolations(page, '[data-test="security-view"]')).toEqual([]);
      await docShot(page, 'security-zh-phone');
      // an end before the start: named, nothing read
      await page.locator('[data-test="security-to"]').fill('2026-11-30T09:00:00');
      await page.waitForSelector('[data-test="security-to"][aria-invalid="true"]', WAIT);
      expect(admin.errors).toEqual([]);
    } finally {
      await admin.close();
    }
  }, 60_000);

  test('system health says each state in words as well as colour, and refreshes on request', async () => {
    const admin = await signInAs(browser, t, 'admin', { screen: DESKTOP });
    try {
      const { page } = admin;
      await page.goto(`${t.base}/#/admin/health`);
      await page.waitForSelector('[data-test="health-broker"]', WAIT);
      const health = await (await fetch(`${t.base}/api/health`)).json();
      expect(await page.locator('[data-test="health-broker"]').getAttribute('data-state')).toBe(health.broker.status);
      expect(await page.locator('[data-test="health-broker"] .badge').innerText()).toBe(message('en', `admin.health.state.${health.broker.status}`));
      expect(await page.locator('[data-test="health-store"] .badge').innerText()).toBe(message('en', `admin.health.state.${health.store.status}`));
      expect(await page.locator('[data-test="health-backlog"]').innerText()).toBe(
        message('en', 'admin.health.backlogCount', {
          batches: String(health.measurements.backlog.batches),
          samples: String(health.measurements.backlog.samples),
        }),
      );
      const reads = Number(await page.locator('[data-test="health-view"]').getAttribute('data-reads'));
      await page.locator('[data-test="health-refresh"]').click();
      await page.waitForSelector(`[data-test="health-view"][data-reads="${reads + 1}"]`, WAIT);
      expect(await seriousViolations(page, '[data-test="health-view"]')).toEqual([]);
      await docShot(page, 'health');
      expect(admin.errors).toEqual([]);
    } finally {
      await admin.close();
    }
  }, 45_000);
});

describe('notifications in Settings', () => {
  test('a technician subscribes to alarm e-mails; the subscriptions API says so', async () => {
    const tech = await signInAs(browser, t, 'technician', { screen: DESKTOP });
    try {
      const { page } = tech;
      await page.click('[data-test="nav-settings"]');
      await page.waitForSelector('[data-test="notification-settings"][data-loaded="yes"]', WAIT);
      // a technician has no admin entry
      expect(await page.locator('[data-test="nav-admin"]').count()).toBe(0);
      await page.locator('[data-test="notify-email"]').fill('qa-tech@lab.example');
      await page.locator('[data-test="notify-kind"][data-kind="alarm"] [data-test="notify-by-email"]').check();
      await page.locator('[data-test="notify-save"]').click();
      await page.waitForFunction(
        (text) => document.querySelector('[data-test="notify-status"]')?.textContent?.includes(text),
        message('en', 'settings.notifications.saved'),
        WAIT,
      );
      const subs = await call(t, '/api/notifications/subscriptions', undefined, 'technician');
      expect(subs.email).toBe('qa-tech@lab.example');
      expect(subs.kinds.alarm).toEqual({ email: true, webhooks: [] });
      // nothing else chosen
      for (const [kind, choice] of Object.entries(subs.kinds)) if (kind !== 'alarm') expect(choice).toEqual({ email: false, webhooks: [] });
      expect(await seriousViolations(page, '[data-test="notification-settings"]')).toEqual([]);
      await docShot(page, 'settings-notifications');
      // a bad address: the server's refusal names the field beside it
      await page.locator('[data-test="notify-email"]').fill('not an address');
      await page.locator('[data-test="notify-save"]').click();
      await page.waitForFunction(
        () => (document.querySelector('[data-test="notification-settings"] [data-test="field-error"]')?.textContent ?? '') !== '',
        null,
        WAIT,
      );
      expect((await call(t, '/api/notifications/subscriptions', undefined, 'technician')).email).toBe('qa-tech@lab.example');
      expect(tech.errors).toEqual([]);
    } finally {
      await tech.close();
    }
  }, 45_000);
});
