// The dashboard's frame on a phone in Chinese: <html lang> and the tab's title follow the language, the header fits
// 390 x 844 with sign out in reach, the connection state is announced, the skip link leads to the content, the
// language switch changes the page at once (also when the server cannot keep the choice), the instrument list
// works by keyboard, and a sign-in refusal is translated.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startServer, TestGateway, USER_PASSWORD, waitFor } from '../../server/dist/test/helpers/server.js';
import { launch, WAIT } from './helpers/browser.js';

let t;
let gw;
let browser;

beforeAll(async () => {
  t = await startServer();
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('utm-1', 'utm-2');
  await waitFor('the instruments', () => t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM instruments').get().n === 2);
  browser = await launch();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await gw?.end();
  await t?.stop();
});

/** a phone in Shanghai whose browser speaks Chinese */
const phone = () =>
  browser.newContext({ locale: 'zh-CN', timezoneId: 'Asia/Shanghai', viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });

/** the elements whose right edge is beyond the visual viewport (a mobile layout viewport can grow and hide them) */
const overflowing = (page) =>
  page.evaluate(() => {
    const width = window.visualViewport.width;
    return [...document.querySelectorAll('body *')]
      .filter((e) => {
        const r = e.getBoundingClientRect();
        return r.width > 0 && r.right > width + 0.5;
      })
      .map((e) => `${e.tagName.toLowerCase()}.${e.className}`);
  });

describe('the shell', () => {
  test('in Chinese on a phone: language, title, header in reach, keyboard, language switch', async () => {
    const context = await phone();
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (err) => errors.push(err.message));
    try {
      await page.goto(`${t.base}/`);
      await page.waitForSelector('[data-test="login"]', WAIT);
      expect(await page.evaluate(() => document.documentElement.lang)).toBe('zh-CN');
      expect(await page.title()).toBe('登录 · labtrace');

      // a refused sign-in says so in Chinese (not the server's English, not "sign in first")
      await page.fill('input[name="username"]', 'technician');
      await page.fill('input[name="password"]', 'not the password');
      await page.click('[data-test="login"] button[type="submit"]');
      expect(await page.locator('[data-test="login-error"]').innerText()).toMatch(/^登录被拒绝/);

      await page.fill('input[name="username"]', 'technician');
      await page.fill('input[name="password"]', USER_PASSWORD);
      await page.click('[data-test="login"] button[type="submit"]');
      await page.waitForSelector('[data-test="runs"][data-loaded="true"]', WAIT);
      await page.waitForSelector('[data-instrument="utm-2"]', WAIT);
      expect(await page.title()).toBe('检测任务与仪器 · labtrace');
      expect(await page.locator('[data-test="user"]').innerText()).toBe('technician（检测员）');
      expect(await page.locator('[data-test="zone"]').innerText()).toContain('Asia/Shanghai');

      // the connection state is a live region; sign out and the language switch are inside the screen
      const connection = page.locator('[data-test="connection"]');
      expect(await connection.getAttribute('role')).toBe('status');
      expect(await connection.getAttribute('aria-live')).toBe('polite');
      for (const selector of ['[data-test="logout"]', '[data-test="language-switch"]', '[data-test="nav-settings"]']) {
        const box = await page.locator(selector).boundingBox();
        expect(box.x + box.width).toBeLessThanOrEqual(390);
        expect(box.height).toBeGreaterThanOrEqual(44); // a touch target
      }
      expect(await overflowing(page)).toEqual([]);

      // the skip link is the first stop of the keyboard on a fresh page, visible when focused, and leads to the content
      await page.reload();
      await page.waitForSelector('[data-instrument="utm-2"]', WAIT);
      await page.keyboard.press('Tab');
      const skip = page.locator('[data-test="skip-link"]');
      expect(await skip.evaluate((e) => e === document.activeElement)).toBe(true);
      const box = await skip.boundingBox();
      expect(box.y).toBeGreaterThanOrEqual(0);
      await page.keyboard.press('Enter');
      expect(await page.evaluate(() => document.activeElement?.id)).toBe('main');

      // an instrument is chosen by keyboard: its button says which one is shown
      const second = page.locator('[data-instrument="utm-2"] [data-test="instrument-choose"]');
      expect(await second.getAttribute('aria-pressed')).toBe('false');
      await second.focus();
      await page.keyboard.press('Enter');
      expect(await second.getAttribute('aria-pressed')).toBe('true');
      expect(await page.locator('[data-instrument="utm-1"] [data-test="instrument-choose"]').getAttribute('aria-pressed')).toBe('false');

      // the switch changes the page at once, <html lang> and title with it, and shows no error whether or not the
      // server keeps the choice; after a reload the choice holds
      await page.selectOption('[data-test="language-switch"]', 'en');
      await page.waitForFunction(() => document.documentElement.lang === 'en', null, WAIT);
      expect(await page.title()).toBe('Runs & instruments · labtrace');
      expect(await page.locator('[data-test="user"]').innerText()).toBe('technician (technician)');
      expect(await page.locator('[data-test="language-error"]').count()).toBe(0);
      await page.reload();
      await page.waitForSelector('[data-test="runs"][data-loaded="true"]', WAIT);
      expect(await page.evaluate(() => document.documentElement.lang)).toBe('en');
      expect(await page.locator('[data-test="language-switch"]').inputValue()).toBe('en');
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  test('a first sign-in: a too short new password is named in the form, in Chinese, before anything is sent', async () => {
    const context = await phone();
    const page = await context.newPage();
    try {
      // a new user with a one-time password
      const res = await t.fetch(
        '/api/users',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'newcomer', role: 'technician' }) },
        'admin',
      );
      expect(res.status).toBe(201);
      const { oneTimePassword: password } = await res.json();
      await page.goto(`${t.base}/`);
      await page.waitForSelector('[data-test="login"]', WAIT);
      await page.fill('input[name="username"]', 'newcomer');
      await page.fill('input[name="password"]', password);
      await page.click('[data-test="login"] button[type="submit"]');
      await page.waitForSelector('[data-test="change-password"]', WAIT);
      expect(await page.title()).toBe('设置您的密码 · labtrace');
      await page.fill('input[name="current"]', password);
      await page.fill('input[name="new"]', 'short');
      await page.click('[data-test="change-password"] button[type="submit"]');
      expect(await page.locator('[data-test="password-problem"]').innerText()).toBe('新密码：过小或过短（至少 12）');
      // sign out is in reach while the password is not chosen yet
      expect(await page.locator('[data-test="logout"]').isVisible()).toBe(true);
    } finally {
      await context.close();
    }
  });
});
