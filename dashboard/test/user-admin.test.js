// User administration in a real headless Chromium against a real server: an admin creates a client user of an
// organization and sees its one-time password once, the user signs in with it, and the admin disables the user
// with a reason asked by the confirmation, and extends an auditor's grant to the end of a day in the admin's zone; bad
// input in the forms names the field; in Chinese on a phone the users are cards that fit and axe finds nothing
// serious; a technician has no Users entry and, opening #/users anyway, sees the refusal translated.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startServer, waitFor } from '../../server/dist/test/helpers/server.js';
import { call, launch, screenshot, signIn, WAIT } from './helpers/browser.js';
import { message, overflowing, PHONE, refusalText, seriousViolations, signInAs } from './helpers/records.js';

let t;
let browser;

beforeAll(async () => {
  t = await startServer();
  await call(t, '/api/organizations', { id: 'acme', name: 'Acme Steel', contact: 'qa@acme.example' }, 'admin');
  browser = await launch();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await t?.stop();
});

describe('user administration', () => {
  test('an admin creates a client of an organization, sees the one-time password once, and disables the user', async () => {
    const admin = await signIn(browser, t, 'admin');
    let oneTime;
    try {
      const { page } = admin;
      await page.click('[data-test="nav-users"]');
      await page.waitForSelector('[data-test="user-admin"][data-loaded="yes"]', WAIT);
      await page.waitForSelector('[data-test="organization"][data-organization="acme"]', WAIT);
      const form = page.locator('[data-test="user-create"]');
      await form.locator('input[name="username"]').fill('acme-buyer');
      await form.locator('select[name="role"]').selectOption('client');
      await form.locator('select[name="organization"]').selectOption('acme');
      await form.locator('button[type="submit"]').click();
      const shown = page.locator('[data-test="one-time-password"][data-user="acme-buyer"] code');
      await shown.waitFor(WAIT);
      oneTime = await shown.innerText();
      expect(oneTime.length).toBeGreaterThanOrEqual(12);
      const row = page.locator('[data-test="user-row"][data-user="acme-buyer"]');
      await row.waitFor(WAIT);
      expect(await row.getAttribute('data-role')).toBe('client');
      expect(await row.innerText()).toMatch(/acme/);
      const stored = (await call(t, '/api/users?q=acme-buyer', undefined, 'admin')).items.find((u) => u.username === 'acme-buyer');
      expect(stored).toMatchObject({ role: 'client', organization: 'acme', disabled: false, mustChange: true });
      // the password is shown once: not in the list, not after the view is opened again
      expect(JSON.stringify(stored)).not.toContain(oneTime);
      await page.goto(`${t.base}/#/`);
      await page.goto(`${t.base}/#/users`);
      await page.waitForSelector('[data-test="user-row"][data-user="acme-buyer"]', WAIT);
      expect(await page.locator('[data-test="one-time-password"]').count()).toBe(0);
      expect(await page.content()).not.toContain(oneTime);
    } finally {
      await admin.close();
    }

    // the one-time password signs the user in, and the first thing asked is a new password
    const user = await signIn(browser, t, 'acme-buyer', oneTime, '[data-test="change-password"]');
    try {
      expect(user.errors).toEqual([]);
    } finally {
      await user.close();
    }

    // an admin in Shanghai: the grant ends at the end of the day there
    const again = await signInAs(browser, t, 'admin', { timezoneId: 'Asia/Shanghai' });
    try {
      const { page } = again;
      await page.goto(`${t.base}/#/users`);
      const row = page.locator('[data-test="user-row"][data-user="acme-buyer"]');
      await row.waitFor(WAIT);
      // the confirmation asks the reason; without one its button does nothing, and cancelling sends nothing
      const dialog = page.locator('[data-test="confirm-dialog"]');
      await row.locator('[data-test="user-disable"]').click();
      await dialog.locator('[data-test="confirm-ok"]').waitFor(WAIT);
      expect(await dialog.locator('#confirm-title').innerText()).toBe(message('en', 'users.confirm.disable', { user: 'acme-buyer' }));
      expect(await dialog.locator('[data-test="confirm-ok"]').isDisabled()).toBe(true);
      await dialog.locator('[data-test="confirm-cancel"]').click();
      expect(await row.getAttribute('data-disabled')).toBe('no');
      await row.locator('[data-test="user-disable"]').click();
      await dialog.locator('[data-test="confirm-reason"]').fill('contract with Acme ended');
      await dialog.locator('[data-test="confirm-ok"]').click();
      await page.waitForSelector('[data-test="user-row"][data-user="acme-buyer"][data-disabled="yes"]', WAIT);
      expect(again.dialogs).toEqual([]);
      expect(await seriousViolations(page, '[data-test="user-admin"]')).toEqual([]);
      expect(await page.locator('[data-test="user-notice"]').innerText()).toContain(message('en', 'users.done.disable', { user: 'acme-buyer' }));
      expect((await call(t, '/api/users?q=acme-buyer', undefined, 'admin')).items.find((u) => u.username === 'acme-buyer').disabled).toBe(true);
      // the list is searched and filtered on the server
      const onlyAcmeBuyer = () =>
        [...document.querySelectorAll('[data-test="user-row"]')].map((r) => r.getAttribute('data-user')).join() === 'acme-buyer';
      await page.locator('[data-test="user-search"]').fill('ACME');
      await page.waitForFunction(onlyAcmeBuyer, null, WAIT);
      await page.locator('[data-test="user-search"]').fill('');
      await page.locator('[data-test="user-filter-state"]').selectOption('disabled');
      await page.waitForFunction(onlyAcmeBuyer, null, WAIT);
      await page.locator('[data-test="user-filter-state"]').selectOption('');
      await page.waitForSelector('[data-test="user-row"][data-user="auditor"]', WAIT);
      // an auditor's grant is extended, with a reason
      const auditorRow = page.locator('[data-test="user-row"][data-user="auditor"]');
      await auditorRow.locator('[data-test="user-grant-until"]').fill('2031-06-30');
      await auditorRow.locator('[data-test="user-set-grant"]').click();
      await dialog.locator('[data-test="confirm-reason"]').fill('audit extended to June');
      await dialog.locator('[data-test="confirm-ok"]').click();
      await waitFor('the grant to change', () => t.server.users.getNow('auditor')?.grantUntil === Date.parse('2031-06-30T23:59:59+08:00'));
      // shown in the admin's zone, named
      await page.waitForFunction(
        () => {
          const shown = document.querySelector('[data-test="user-row"][data-user="auditor"] [data-test="user-grant"]')?.textContent ?? '';
          return shown.includes('2031') && shown.includes('30') && shown.includes('23:59:59') && shown.includes('GMT+8');
        },
        null,
        WAIT,
      );
      const trail = (await call(t, '/api/audit-trail?recordType=user&recordId=acme-buyer', undefined, 'admin')).items;
      expect(trail.map((e) => e.reason)).toContain('contract with Acme ended');
      await screenshot(page, 'user-admin');
      expect(again.errors).toEqual([]);
    } finally {
      await again.close();
    }
    // the disabled user cannot sign in
    const refused = await fetch(`${t.base}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'acme-buyer', password: oneTime }),
    });
    expect(refused.status).toBeGreaterThanOrEqual(400);
  }, 90_000);

  test('bad input in the new-user and organization forms gets a message naming the field; in Chinese on a phone the view fits and axe finds nothing serious', async () => {
    const admin = await signInAs(browser, t, 'admin', { locale: 'zh-CN', timezoneId: 'Asia/Shanghai', screen: PHONE });
    try {
      const { page } = admin;
      await page.goto(`${t.base}/#/users`);
      await page.waitForSelector('[data-test="user-admin"][data-loaded="yes"]', WAIT);
      expect(await page.locator('#users-title').innerText()).toBe(message('zh-CN', 'users.title'));
      const users = (await call(t, '/api/users?limit=500', undefined, 'admin')).items;
      expect(await page.locator('[data-test="user-row"]').count()).toBe(users.length);
      // role names translated
      expect(await page.locator('[data-test="user-row"][data-user="signatory"]').innerText()).toContain(message('zh-CN', 'common.roles.signatory'));
      expect(
        await page
          .locator('[data-test="user-row"]')
          .first()
          .evaluate((row) => getComputedStyle(row).display),
      ).toBe('block');
      expect(await overflowing(page, '[data-test="user-admin"]')).toEqual([]);
      expect(await seriousViolations(page, '[data-test="user-admin"]')).toEqual([]);

      // a user name the server would refuse: checked here, named, nothing sent
      const form = page.locator('[data-test="user-create"]');
      const usernameLabel = message('zh-CN', 'fields.username');
      await form.getByLabel(usernameLabel, { exact: true }).fill('Bad Name!');
      // by keyboard, as a phone's or a screen reader's user does
      await form.locator('button[type="submit"]').press('Enter');
      expect(await form.locator('[data-test="field-error"]').first().innerText()).toBe(
        message('zh-CN', 'users.badUsername', { field: usernameLabel }),
      );
      expect(await form.getByLabel(usernameLabel, { exact: true }).getAttribute('aria-invalid')).toBe('true');
      expect((await call(t, '/api/users?limit=500', undefined, 'admin')).items.length).toBe(users.length);
      // an empty organization: both required fields named
      const orgForm = page.locator('[data-test="organization-create"]');
      await orgForm.locator('button[type="submit"]').press('Enter');
      expect(await orgForm.locator('[data-test="field-error"]').allInnerTexts()).toEqual([
        message('zh-CN', 'users.required', { field: message('zh-CN', 'users.organizationId') }),
        message('zh-CN', 'users.required', { field: message('zh-CN', 'users.organizationName') }),
      ]);
      // an existing organization id: the server's refusal, translated
      await orgForm.getByLabel(message('zh-CN', 'users.organizationId')).fill('acme');
      await orgForm.getByLabel(message('zh-CN', 'users.organizationName')).fill('另一家公司');
      await orgForm.locator('button[type="submit"]').press('Enter');
      const refusal = orgForm.locator('[data-test="organization-create-error"]');
      await refusal.waitFor(WAIT);
      const direct = await t.fetch(
        '/api/organizations',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'acme', name: '另一家公司' }) },
        'admin',
      );
      expect(direct.status).toBeGreaterThanOrEqual(400);
      expect(await refusal.innerText()).toBe(refusalText('zh-CN', await direct.json()));
      expect(await overflowing(page, '[data-test="user-admin"]')).toEqual([]);
      await screenshot(page, 'user-admin-zh-phone');
      expect(admin.errors).toEqual([]);
    } finally {
      await admin.close();
    }
  }, 45_000);

  test('a technician has no Users entry, and #/users shows the refusal translated', async () => {
    const tech = await signIn(browser, t, 'technician');
    try {
      const { page } = tech;
      await page.waitForSelector('[data-test="nav-home"]', WAIT);
      expect(await page.locator('[data-test="nav-users"]').count()).toBe(0);
      expect(await page.locator('[data-test="nav-audit"]').count()).toBe(0);
      await page.goto(`${t.base}/#/users`);
      await page.waitForSelector('[data-test="users-error"]', WAIT);
      const direct = await t.fetch('/api/users', {}, 'technician');
      expect(direct.status).toBe(403);
      expect(await page.locator('[data-test="users-error"]').innerText()).toBe(refusalText('en', await direct.json()));
      expect(await page.locator('[data-test="user-row"]').count()).toBe(0);
      expect(tech.errors).toEqual([]);
    } finally {
      await tech.close();
    }
  }, 30_000);
});
