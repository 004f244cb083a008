// For the tests of the records views (reports, users, audit trail): a browser signed in with a language, a time
// zone and a screen of its own; the dashboard's catalogues, to tell what a refusal must read in a language; and the
// page checks every view must pass (nothing beyond the visual viewport, no serious axe violation).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { USER_PASSWORD } from '../../../server/dist/test/helpers/server.js';
import { WAIT } from './browser.js';

const LOCALES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'locales');
const require = createRequire(import.meta.url);

export const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };
export const DESKTOP = { viewport: { width: 1440, height: 900 } };

/** a catalogue area of a language, as the dashboard bundles it */
export const catalogue = (language, area) => JSON.parse(readFileSync(path.join(LOCALES, language, `${area}.json`), 'utf8'));

/** a message of a catalogue by its key (`certificate.status.revoked`), with `{x}` filled from params */
export function message(language, key, params = {}) {
  const [area, ...rest] = key.split('.');
  let v = catalogue(language, area);
  for (const part of rest) v = v?.[part];
  if (typeof v !== 'string') throw new Error(`no message ${key} in ${language}`);
  return v.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? `{${name}}`));
}

/** what the dashboard must show for a refusal body of the server: its reason's message, else its code's */
export function refusalText(language, body) {
  const has = (key) => {
    try {
      message(language, key);
      return true;
    } catch {
      return false;
    }
  };
  // parameters that name things are shown in the language too (the dashboard's useErrorText)
  const NAMED = { type: 'errors.recordType.', state: 'run.state.', role: 'common.roles.', command: 'errors.command.' };
  const params = { ...body.params };
  for (const [name, prefix] of Object.entries(NAMED)) {
    if (typeof params[name] === 'string' && has(prefix + params[name])) params[name] = message(language, prefix + params[name]);
  }
  if (body.reason !== undefined && has(`errors.reason.${body.reason}`)) return message(language, `errors.reason.${body.reason}`, params);
  if (has(`errors.code.${body.code}`)) return message(language, `errors.code.${body.code}`, params);
  return message(language, 'errors.unexpected');
}

/**
 * A context signed in as `username` through the login form, in a language (the browser's), a time zone and a
 * screen; confirm() questions are answered yes and kept in `dialogs`.
 */
export async function signInAs(browser, t, username, { locale = 'en-US', timezoneId = 'UTC', screen = DESKTOP, password = USER_PASSWORD } = {}) {
  // bypassCSP: axe-core is injected as an inline script (the dashboard's CSP rightly refuses those)
  const context = await browser.newContext({ ...screen, locale, timezoneId, bypassCSP: true });
  const page = await context.newPage();
  const errors = [];
  const dialogs = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.accept();
  });
  await page.goto(`${t.base}/`);
  await page.waitForSelector('[data-test="login"]', WAIT);
  await page.fill('input[name="username"]', username);
  await page.fill('input[name="password"]', password);
  await page.click('[data-test="login"] button[type="submit"]');
  await page.waitForSelector('[data-test="user"]', WAIT);
  return { page, context, errors, dialogs, close: () => context.close() };
}

/** the elements whose right edge lies beyond the visual viewport (what a phone user cannot see without scrolling sideways) */
export const overflowing = (page, selector = 'body') =>
  page.evaluate((selector) => {
    const width = window.visualViewport?.width ?? window.innerWidth;
    const out = [];
    for (const el of document.querySelectorAll(`${selector}, ${selector} *`)) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) continue;
      // inside a region that scrolls by itself, an element may lie beyond the edge: the region is what must fit
      let clipped = false;
      for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
        const s = getComputedStyle(p);
        if (s.overflowX === 'auto' || s.overflowX === 'scroll' || s.overflowX === 'hidden' || s.overflowX === 'clip') {
          clipped = true;
          break;
        }
      }
      if (!clipped && r.right > width + 0.5)
        out.push(`${el.tagName.toLowerCase()}${el.dataset.test ? `[${el.dataset.test}]` : ''} right=${Math.round(r.right)}`);
    }
    return out;
  }, selector);

/** axe-core's critical and serious violations of the page as shown (of the part under `selector`) */
export async function seriousViolations(page, selector = 'body') {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ content: require('axe-core').source });
  const result = await page.evaluate((selector) => window.axe.run(selector), selector);
  return result.violations
    .filter((v) => v.impact === 'critical' || v.impact === 'serious')
    .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}
