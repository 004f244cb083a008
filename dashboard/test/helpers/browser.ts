// Headless Chromium for the dashboard's tests, signed in as a test user (named after its role) through the login form.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';
import { postJson, USER_PASSWORD, type TestServer } from '../../../server/dist/test/helpers/server.js';
import { REPO_ROOT } from '../../../server/dist/test/helpers/lab-process.js';
import type { Role } from '../../../server/dist/src/index.js';

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

export const launch = (): Promise<Browser> => chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });

/** where the server is: a test server (startServer) or anything with its base URL */
export type Target = Pick<TestServer, 'base'>;

export interface SignedIn {
  page: Page;
  context: BrowserContext;
  /** uncaught errors of the page (pageerror), in order */
  errors: string[];
  close: () => Promise<void>;
}

/** Signs `page` in through the login form as `username`, once `ready` shows. */
export async function signInPage(page: Page, t: Target, username: string, password = USER_PASSWORD, ready = '[data-test="user"]'): Promise<void> {
  await page.goto(`${t.base}/`);
  await page.waitForSelector('[data-test="login"]', WAIT);
  await page.fill('input[name="username"]', username);
  await page.fill('input[name="password"]', password);
  await page.click('[data-test="login"] button[type="submit"]');
  await page.waitForSelector(ready, WAIT);
}

/**
 * A new browser context signed in as `username` (a role's test user unless told), once `ready` shows.
 * `options` are the context's (viewport, locale, timezoneId, isMobile...); 1280 x 1000 unless told.
 */
export async function signIn(
  browser: Browser,
  t: Target,
  username: string,
  password = USER_PASSWORD,
  ready = '[data-test="user"]',
  options: BrowserContextOptions = {},
): Promise<SignedIn> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 }, ...options });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await signInPage(page, t, username, password, ready);
  return { page, context, errors, close: () => context.close() };
}

/** a REST call as a role; fails the test on a refusal */
export async function call<T = any>(t: Pick<TestServer, 'fetch'>, p: string, body?: unknown, role: Role = 'technician'): Promise<T> {
  const res = await t.fetch(p, body === undefined ? {} : postJson(body), role);
  const json = (await res.json()) as T;
  if (!res.ok) throw new Error(`${p}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** a picture of the page for the docs and for a failing run, in .tmp/ (not committed) */
export async function screenshot(page: Page, name: string, fullPage = true): Promise<void> {
  mkdirSync(path.join(REPO_ROOT, '.tmp'), { recursive: true });
  await page.screenshot({ path: path.join(REPO_ROOT, '.tmp', `${name}.png`), fullPage });
}
