// User administration in a real headless Chromium against a real server: an admin creates a client user of an
// organization and sees its one-time password once, the user signs in with it, and the admin disables the user
// with a reason, and extends an auditor's grant; a technician has no Users entry and, opening #/users anyway,
// sees the server's refusal.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startServer, waitFor, type TestServer } from '../../server/dist/test/helpers/server.js';
import { call, launch, screenshot, signIn, WAIT } from './helpers/browser.js';

let t: TestServer;
let browser: Browser;

interface User {
  username: string;
  disabled: boolean;
}

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
      const stored = (await call<User[]>(t, '/api/users', undefined, 'admin')).find((u) => u.username === 'acme-buyer');
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

    const again = await signIn(browser, t, 'admin');
    try {
      const { page } = again;
      await page.goto(`${t.base}/#/users`);
      const row = page.locator('[data-test="user-row"][data-user="acme-buyer"]');
      await row.waitFor(WAIT);
      // no reason, no request
      await row.locator('[data-test="user-disable"]').click();
      expect(await page.locator('[data-test="user-action-error"]').innerText()).toMatch(/reason is required/);
      expect(await row.getAttribute('data-disabled')).toBe('no');
      await row.locator('[data-test="user-reason"]').fill('contract with Acme ended');
      await row.locator('[data-test="user-disable"]').click();
      await page.waitForSelector('[data-test="user-row"][data-user="acme-buyer"][data-disabled="yes"]', WAIT);
      expect((await call<User[]>(t, '/api/users', undefined, 'admin')).find((u) => u.username === 'acme-buyer')?.disabled).toBe(true);
      // an auditor's grant is extended, with a reason
      const auditorRow = page.locator('[data-test="user-row"][data-user="auditor"]');
      await auditorRow.locator('[data-test="user-grant-until"]').fill('2031-06-30');
      await auditorRow.locator('[data-test="user-reason"]').fill('audit extended to June');
      await auditorRow.locator('[data-test="user-set-grant"]').click();
      await waitFor('the grant to change', () => t.server.users.get('auditor')?.grantUntil === Date.parse('2031-06-30T23:59:59Z'));
      await page.waitForFunction(
        () => document.querySelector('[data-test="user-row"][data-user="auditor"] [data-test="user-grant"]')?.textContent?.includes('2031-06-30'),
        null,
        WAIT,
      );
      const trail = await call<{ reason?: string }[]>(t, '/api/audit-trail?recordType=user&recordId=acme-buyer', undefined, 'admin');
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
  }, 45_000);

  test('a technician has no Users entry, and #/users shows the server refusal', async () => {
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
      expect(await page.locator('[data-test="users-error"]').innerText()).toBe((await direct.json()).error);
      expect(await page.locator('[data-test="user-row"]').count()).toBe(0);
      expect(tech.errors).toEqual([]);
    } finally {
      await tech.close();
    }
  }, 30_000);
});
