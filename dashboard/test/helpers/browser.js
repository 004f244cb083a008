// Headless Chromium for the dashboard's tests, signed in as a test user (named after its role) through the login form.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { postJson, USER_PASSWORD } from '../../../server/dist/test/helpers/server.js';
import { REPO_ROOT } from '../../../server/dist/test/helpers/lab-process.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** how long a condition may take on a loaded machine; tests wait for conditions, never for time */
export const WAIT = { timeout: 15_000 };

export const launch = () => chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });

/** a new browser context signed in as `username` (a role's test user unless told), once `ready` shows */
export async function signIn(browser, t, username, password = USER_PASSWORD, ready = '[data-test="user"]') {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(`${t.base}/`);
  await page.waitForSelector('[data-test="login"]', WAIT);
  await page.fill('input[name="username"]', username);
  await page.fill('input[name="password"]', password);
  await page.click('[data-test="login"] button[type="submit"]');
  await page.waitForSelector(ready, WAIT);
  return { page, context, errors, close: () => context.close() };
}

/** a REST call as a role; fails the test on a refusal */
export async function call(t, p, body, role = 'technician') {
  const res = await t.fetch(p, body === undefined ? {} : postJson(body), role);
  const json = await res.json();
  if (!res.ok) throw new Error(`${p}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** a picture of the page for the docs and for a failing run, in .tmp/ (not committed) */
export async function screenshot(page, name) {
  mkdirSync(path.join(REPO_ROOT, '.tmp'), { recursive: true });
  await page.screenshot({ path: path.join(REPO_ROOT, '.tmp', `${name}.png`), fullPage: true });
}
