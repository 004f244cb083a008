// The runs part of a lab's day in a real headless Chromium against a real server, done through the dashboard alone
// and checked through the REST API: open alarms counted beside the navigation and in the tab's title (re-read live
// when a new alarm is raised), marked and filtered in the paged run list; the alarm history of a run with its
// escalation; a technician requests a run's certificate (the draft exists, in the language chosen); a technician
// shares a run, an anonymous browser opens the link and sees the run, and after the revocation sees "revoked". Once
// in English on a desktop, once in Chinese on a phone; a client sees its own organization's alarms only.
// With LABTRACE_SCREENSHOTS=1 the views are saved to docs/screenshots/runs-*.png.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { addOtherClient, ORGANIZATION, send, startServer, TestGateway, waitFor } from '../../server/dist/test/helpers/server.js';
import { call, launch, WAIT } from './helpers/browser.js';
import { DESKTOP, message, overflowing, PHONE, seriousViolations, signInAs } from './helpers/records.js';

const DAY = 86_400_000;
const SHOTS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'screenshots');
let t;
let gw;
let browser;
let seq = 0;
/** runs: one completed, two running (utm-1 with an escalated alarm, utm-2 quiet until a test raises one) */
let done;
let doneZh;
let alarmed;
let quiet;

/** a picture for the docs, when asked for (LABTRACE_SCREENSHOTS=1): the visible screen, to keep the file small */
async function docShot(page, name) {
  if (process.env.LABTRACE_SCREENSHOTS !== '1') return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `runs-${name}.png`), scale: 'css' });
}

/** values of channel c of an instrument, signed by the gateway and acknowledged */
async function measure(instrument, values) {
  const ts = Date.now();
  const samples = values.map((value, i) => ({ seq: seq++, instrument, channel: 'c', ts: ts + i, value, unit: 'kN', quality: 'good' }));
  expect(await send(t, gw, gw.sign(samples))).toBe('acked');
}

async function run(instrument, values, stop) {
  const id = (await call(t, '/api/runs', { sample: 'B-1', method: 'tensile', instruments: [instrument] })).id;
  await call(t, `/api/runs/${id}/start`, {});
  await measure(instrument, values);
  if (stop) await call(t, `/api/runs/${id}/stop`, {});
  return id;
}

/**
 * The language a draft was requested in, as the API shows it: a signatory issues it without naming a language (the
 * request's then holds), and the report's public summary says which it was printed in.
 */
async function reportLanguage(id) {
  const issued = await call(t, `/api/certificates/${id}/issue`, {}, 'signatory');
  const code = new URL(issued.verifyUrl).searchParams.get('code');
  const res = await fetch(`${t.base}/api/public/certificates/${id}?code=${code}`);
  return (await res.json()).summary.language;
}

const openCount = async (role = 'technician') => (await call(t, '/api/alarms/open-count', undefined, role)).open;

beforeAll(async () => {
  t = await startServer({
    accreditation: {
      accreditations: [
        {
          id: 'acc-1',
          body: 'CNAS',
          number: 'L1234',
          validFrom: '2020-01-01',
          validTo: Date.now() + 365 * DAY,
          scope: [{ standard: 'ISO 6892-1:2019', measurand: 'force', unit: 'kN', min: 0, max: 100 }],
        },
      ],
    },
  });
  await addOtherClient(t);
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('utm-1', 'utm-2');
  await waitFor('the instruments', () => t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM instruments').get().n === 2);
  const now = Date.now();
  for (const id of ['utm-1', 'utm-2'])
    await call(t, `/api/instruments/${id}/calibrations`, {
      calibratedAt: now - 10 * DAY,
      laboratory: 'Reference Lab',
      certificate: `CAL-${id}`,
      results: [{ point: 'p1', reference: 10, indication: 10.01, unit: 'kN' }],
      uncertainty: { value: 0.1, unit: 'kN', k: 2 },
      nextDueAt: now + 300 * DAY,
    });
  await call(t, '/api/lab-samples', {
    id: 'B-1',
    organization: ORGANIZATION,
    description: 'steel bar B500B, 10 mm',
    condition: 'intact',
    receivedAt: now - DAY,
  });
  await call(t, '/api/methods', {
    id: 'tensile',
    standard: 'ISO 6892-1:2019',
    title: 'Tensile testing at room temperature',
    definition: {
      measurands: [{ name: 'force', unit: 'kN', channel: 'c' }],
      decisionRule: { kind: 'simple-acceptance' },
      rules: [{ id: 'force-limits', kind: 'limits', severity: 'alarm', channel: 'c', warnHigh: 45, high: 50 }],
      results: [
        { name: 'Fm', title: 'maximum force', measurand: 'force', statistic: 'max', resolution: 0.01, repeatability: 0.05, limits: { min: 40 } },
      ],
    },
  });
  // completed runs stay under the warning level: no alarm
  done = await run('utm-1', [10.2, 35.7, 42.031, 41.9, 0.4], true);
  doneZh = await run('utm-1', [12.2, 36.1, 43.5, 0.3], true);
  // a warning at 47 kN, escalated at 55 kN
  alarmed = await run('utm-1', [20, 47], false);
  await waitFor('the warning', async () => (await t.server.inspection.alarmsOf(alarmed)).alarms.length === 1);
  await measure('utm-1', [55]);
  await waitFor('the escalation', async () => (await t.server.inspection.alarmsOf(alarmed)).events.some((e) => e.event === 'escalated'));
  quiet = await run('utm-2', [20, 21], false);
  browser = await launch();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await gw?.end();
  await t?.stop();
});

describe('a technician in English on a desktop', () => {
  test('sees open alarms in the navigation, the title and the list; the count follows a new alarm live', async () => {
    const { page, errors, close } = await signInAs(browser, t, 'technician');
    try {
      expect(await openCount()).toBe(1);
      const badge = page.locator('[data-test="nav-alarm-count"]');
      await page.waitForSelector('[data-test="nav-alarm-count"][data-count="1"]', WAIT);
      expect(await badge.innerText()).toContain('1');
      await page.waitForFunction(() => document.title.startsWith('(1) '), undefined, WAIT);

      await page.click('[data-test="nav-runs"]');
      // the home page shows a run list too: wait for the runs page itself before reading its list
      await page.waitForFunction(() => location.hash.startsWith('#/runs'), undefined, WAIT);
      await page.waitForSelector('[data-test="runs"][data-loaded="true"]', WAIT);
      const row = page.locator(`[data-test="run-row"][data-run="${alarmed}"]`);
      await row.waitFor(WAIT);
      expect(await row.getAttribute('data-open-alarms')).toBe('1');
      expect(await row.locator('[data-test="run-open-alarms"]').innerText()).toBe('1 open alarm');
      // newest first, as the server pages it
      const shown = await page.locator('[data-test="run-row"]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-run')));
      expect(shown).toEqual((await call(t, '/api/runs')).items.map((r) => r.id));

      // a new alarm on the other running run: the badge, the title and the row follow without a reload
      await measure('utm-2', [60]);
      await page.waitForSelector('[data-test="nav-alarm-count"][data-count="2"]', WAIT);
      await page.waitForFunction(() => document.title.startsWith('(2) '), undefined, WAIT);
      await page.waitForSelector(`[data-test="run-row"][data-run="${quiet}"][data-open-alarms="1"]`, WAIT);
      expect(await openCount()).toBe(2);

      // filters, on the server: open alarms only; a state; a search over the sample's description
      await page.check('[data-test="runs-alarms-only"]');
      await page.waitForFunction(
        (ids) => {
          const rows = [...document.querySelectorAll('[data-test="run-row"]')].map((r) => r.getAttribute('data-run'));
          return rows.length === ids.length && ids.every((id) => rows.includes(id));
        },
        [alarmed, quiet],
        WAIT,
      );
      await page.uncheck('[data-test="runs-alarms-only"]');
      await page.selectOption('[data-test="runs-state"]', 'completed');
      await page.waitForFunction(
        (ids) => [...document.querySelectorAll('[data-test="run-row"]')].map((r) => r.getAttribute('data-run')).join() === ids.join(),
        [doneZh, done],
        WAIT,
      );
      await page.selectOption('[data-test="runs-state"]', '');
      await page.fill('[data-test="runs-search"]', 'no such thing');
      await page.waitForSelector('[data-test="runs-empty"]', WAIT);
      expect(await page.locator('[data-test="runs-empty"]').innerText()).toBe(message('en', 'run.list.noMatch'));
      await page.click('[data-test="runs-clear"]');
      await page.waitForSelector(`[data-test="run-row"][data-run="${done}"]`, WAIT);
      await docShot(page, 'list');
      expect(await seriousViolations(page, '[data-test="runs"]')).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  }, 60_000);

  test('reads the alarm history with the escalation, and acknowledges with a reason that the history then shows', async () => {
    const { page, errors, close } = await signInAs(browser, t, 'technician');
    try {
      await page.goto(`${t.base}/#/runs/${alarmed}`);
      const history = page.locator('[data-test="alarm-history"]');
      await history.waitFor(WAIT);
      await page.waitForSelector('[data-test="alarm-event"][data-event="escalated"]', WAIT);
      const escalated = page.locator('[data-test="alarm-event"][data-event="escalated"]');
      // what the rule saw, in the user's language, and the inspection's own words, which follow the escalation
      expect(await escalated.locator('[data-test="alarm-event-why"]').innerText()).toContain(
        message('en', 'alarms.history.saw', { what: message('en', 'alarms.kind.limits'), value: '55' }),
      );
      expect(await escalated.locator('[data-test="alarm-event-message"]').innerText()).toBe('utm-1/c 55 kN above the high limit 50');
      expect(await page.locator('[data-test="alarm-event"][data-event="raised"] [data-test="alarm-event-message"]').innerText()).toBe(
        'utm-1/c 47 kN above the warning level 45',
      );
      const alarm = page.locator('[data-test="alarm"]').first();
      await alarm.locator('[data-test="alarm-reason"]').fill('grips checked, specimen seated again');
      await alarm.locator('[data-test="acknowledge"]').click();
      const acknowledged = page.locator('[data-test="alarm-event"][data-event="acknowledged"]');
      await acknowledged.waitFor(WAIT);
      expect(await acknowledged.locator('[data-test="alarm-event-who"]').innerText()).toBe(message('en', 'alarms.history.by', { who: 'technician' }));
      expect(await acknowledged.locator('[data-test="alarm-event-why"]').innerText()).toBe('grips checked, specimen seated again');
      const stored = await call(t, `/api/runs/${alarmed}/alarms`);
      expect(stored.events.map((e) => e.event)).toEqual(['raised', 'escalated', 'acknowledged']);
      expect(stored.alarms[0].acknowledged).toMatchObject({ by: 'technician', reason: 'grips checked, specimen seated again' });
      await history.scrollIntoViewIfNeeded();
      await docShot(page, 'alarm-history');
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  }, 60_000);

  test('requests the certificate of a completed run after a confirmation: the draft exists in the language chosen', async () => {
    const { page, errors, close } = await signInAs(browser, t, 'technician');
    try {
      await page.goto(`${t.base}/#/runs/${done}`);
      await page.waitForSelector('[data-test="certificate-request"]', WAIT);
      await page.selectOption('[data-test="certificate-language"]', 'bilingual');
      await page.click('[data-test="certificate-request-submit"]');
      await page.locator('[data-test="confirm-dialog"]').waitFor(WAIT);
      expect(await page.locator('#confirm-title').innerText()).toBe(
        message('en', 'run.request.confirm', { id: done, language: message('en', 'certificate.languages.bilingual') }),
      );
      // cancelled: nothing requested
      await page.click('[data-test="confirm-cancel"]');
      expect((await call(t, `/api/certificates?run=${done}`)).items).toEqual([]);
      await page.click('[data-test="certificate-request-submit"]');
      await page.click('[data-test="confirm-ok"]');
      const requested = page.locator('[data-test="certificate-requested"]');
      await requested.waitFor(WAIT);
      const id = await requested.getAttribute('data-certificate');
      const drafts = (await call(t, `/api/certificates?run=${done}`)).items;
      expect(drafts).toEqual([expect.objectContaining({ id, run: done, status: 'draft', requestedBy: 'technician' })]);
      // the draft is linked, and listed with the run
      await page.waitForSelector(`[data-test="run-certificate"][data-certificate="${id}"]`, WAIT);
      await page.click('[data-test="certificate-draft-link"]');
      await page.waitForSelector(`[data-test="certificate-view"][data-status="draft"]`, WAIT);
      // the language asked for is the report's
      expect(await reportLanguage(id)).toBe('bilingual');
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  }, 60_000);

  test('shares a run: an anonymous browser opens the link and sees the run; after the revocation it sees "revoked"', async () => {
    const { page, errors, close } = await signInAs(browser, t, 'technician');
    const anonymous = await browser.newContext({ ...DESKTOP, locale: 'en-US', bypassCSP: true });
    try {
      await page.goto(`${t.base}/#/runs/${done}`);
      const panel = page.locator('[data-test="run-shares"]');
      await panel.waitFor(WAIT);
      await page.waitForSelector('[data-test="shares-empty"]', WAIT);
      await page.fill('[data-test="share-amount"]', '2');
      await page.selectOption('[data-test="share-unit"]', 'days');
      await page.fill('[data-test="share-note"]', 'Ms Wang, purchasing');
      await page.click('[data-test="share-submit"]');
      await page.waitForSelector('[data-test="share-created"]', WAIT);
      const link = await page.inputValue('[data-test="share-link"]');
      expect(link).toMatch(/#\/share\/[A-Za-z0-9_-]{43}$/);
      const [share] = await call(t, `/api/runs/${done}/shares`);
      expect(share).toMatchObject({ state: 'active', note: 'Ms Wang, purchasing', createdBy: 'technician', uses: 0 });
      expect(share.expiresAt - share.createdAt).toBe(2 * DAY);
      await panel.scrollIntoViewIfNeeded();
      await docShot(page, 'share-panel');

      const visitor = await anonymous.newPage();
      const visitorErrors = [];
      visitor.on('pageerror', (err) => visitorErrors.push(err.message));
      await visitor.goto(link);
      await visitor.waitForSelector('[data-test="share-view"] [data-test="share-state"][data-state="completed"]', WAIT);
      expect(await visitor.locator('[data-test="share-view"] h3.run-title').innerText()).toContain(done);
      // the chart and the results, read-only: no sign-in form, no command
      await visitor.waitForSelector('[data-test="share-charts"] canvas', WAIT);
      await visitor.waitForSelector('[data-test="results"]', WAIT);
      expect(await visitor.locator('[data-test="login"]').count()).toBe(0);
      expect(await visitor.locator('[data-test="run-actions"], [data-test="run-shares"], [data-test="nav"]').count()).toBe(0);
      expect((await call(t, `/api/runs/${done}/shares`))[0].uses).toBe(1);
      expect(await seriousViolations(visitor, '[data-test="share-view"]')).toEqual([]);

      // revoked with a reason after a confirmation
      await page.click(`[data-test="share"][data-share="${share.id}"] [data-test="share-revoke"]`);
      await page.fill('[data-test="confirm-reason"]', 'sent to the wrong address');
      await page.click('[data-test="confirm-ok"]');
      await page.waitForSelector(`[data-test="share"][data-share="${share.id}"][data-state="revoked"]`, WAIT);
      expect((await call(t, `/api/runs/${done}/shares`))[0]).toMatchObject({ state: 'revoked', revokeReason: 'sent to the wrong address' });
      // the audit trail: created, first opened (by the link), revoked with the reason (a page of it, or the list)
      const trail = await call(t, `/api/audit-trail?recordId=${encodeURIComponent(`${done}/${share.id}`)}`, undefined, 'admin');
      const entries = Array.isArray(trail) ? trail : (trail.items ?? trail.entries);
      expect(entries.map((e) => [e.action, e.actor, e.reason]).sort()).toEqual([
        ['create', 'technician', null],
        ['state-change', `share-link:${share.id}`, null],
        ['update', 'technician', 'sent to the wrong address'],
      ]);

      await visitor.reload();
      const refused = visitor.locator('[data-test="share-error"]');
      await refused.waitFor(WAIT);
      expect(await refused.getAttribute('data-reason')).toBe('share.revoked');
      expect(await refused.innerText()).toBe(message('en', 'share.revoked'));
      expect(visitorErrors).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await anonymous.close();
      await close();
    }
  }, 60_000);
});

describe('in Chinese on a phone', () => {
  test('a technician requests a Chinese report and shares the run; the link opens on a phone in Chinese', async () => {
    const { page, errors, close } = await signInAs(browser, t, 'technician', { locale: 'zh-CN', timezoneId: 'Asia/Shanghai', screen: PHONE });
    const anonymous = await browser.newContext({ ...PHONE, locale: 'zh-CN', timezoneId: 'Asia/Shanghai', bypassCSP: true });
    try {
      await page.waitForSelector('[data-test="nav-alarm-count"]', WAIT);
      await page.goto(`${t.base}/#/runs/${doneZh}`);
      await page.waitForSelector('[data-test="certificate-request"]', WAIT);
      // a Chinese page proposes a Chinese report
      expect(await page.inputValue('[data-test="certificate-language"]')).toBe('zh-CN');
      await page.click('[data-test="certificate-request-submit"]');
      expect(await page.locator('#confirm-title').innerText()).toBe(
        message('zh-CN', 'run.request.confirm', { id: doneZh, language: message('zh-CN', 'certificate.languages.zh-CN') }),
      );
      await page.click('[data-test="confirm-ok"]');
      await page.waitForSelector('[data-test="certificate-requested"]', WAIT);
      const [draft] = (await call(t, `/api/certificates?run=${doneZh}`)).items;
      expect(await reportLanguage(draft.id)).toBe('zh-CN');

      // more than 30 days is refused here before the server would
      await page.fill('[data-test="share-amount"]', '31');
      await page.waitForSelector('[data-test="share-too-long"]', WAIT);
      expect(await page.locator('[data-test="share-submit"]').isDisabled()).toBe(true);
      await page.fill('[data-test="share-amount"]', '12');
      await page.selectOption('[data-test="share-unit"]', 'hours');
      await page.click('[data-test="share-submit"]');
      await page.waitForSelector('[data-test="share-created"]', WAIT);
      const link = await page.inputValue('[data-test="share-link"]');
      expect((await call(t, `/api/runs/${doneZh}/shares`))[0].expiresAt - (await call(t, `/api/runs/${doneZh}/shares`))[0].createdAt).toBe(
        12 * 3_600_000,
      );
      expect(await overflowing(page, '[data-test="run-view"]')).toEqual([]);
      expect(await seriousViolations(page, '[data-test="run-shares"]')).toEqual([]);

      const visitor = await anonymous.newPage();
      await visitor.goto(link);
      await visitor.waitForSelector('[data-test="share-view"] [data-test="share-state"][data-state="completed"]', WAIT);
      expect(await visitor.locator('[data-test="share-state"]').innerText()).toBe(message('zh-CN', 'run.state.completed'));
      expect(await visitor.locator('[data-test="share-view"] h2').innerText()).toBe(message('zh-CN', 'share.heading'));
      // the language switch is there without signing in
      expect(await visitor.locator('.language-switch select').count()).toBe(1);
      await visitor.waitForSelector('[data-test="share-charts"] canvas', WAIT);
      expect(await overflowing(visitor, 'body')).toEqual([]);
      expect(await seriousViolations(visitor, '[data-test="share-view"]')).toEqual([]);
      await docShot(visitor, 'share-phone-zh');
      expect(errors).toEqual([]);
    } finally {
      await anonymous.close();
      await close();
    }
  }, 60_000);

  test('a client sees its own organization’s open alarms in the navigation; another organization’s client none', async () => {
    const expected = await openCount('client');
    expect(expected).toBeGreaterThan(0);
    const client = await signInAs(browser, t, 'client', { locale: 'zh-CN', timezoneId: 'Asia/Shanghai', screen: PHONE });
    const other = await signInAs(browser, t, 'client-b', { locale: 'zh-CN', timezoneId: 'Asia/Shanghai', screen: PHONE });
    try {
      await client.page.waitForSelector(`[data-test="nav-alarm-count"][data-count="${expected}"]`, WAIT);
      await client.page.waitForFunction((n) => document.title.startsWith(`(${n}) `), expected, WAIT);
      await client.page.click('[data-test="nav-runs"]');
      await client.page.waitForSelector(`[data-test="run-row"][data-run="${alarmed}"] [data-test="run-open-alarms"]`, WAIT);
      expect(await client.page.locator('[data-test="runs"] h2').innerText()).toContain(message('zh-CN', 'home.runs.title'));
      expect(await overflowing(client.page, 'body')).toEqual([]);
      await other.page.click('[data-test="nav-runs"]');
      await other.page.waitForSelector('[data-test="runs-empty"]', WAIT);
      expect(await other.page.locator('[data-test="nav-alarm-count"]').count()).toBe(0);
      expect(await openCount('client')).toBe(expected);
      expect(client.errors).toEqual([]);
      expect(other.errors).toEqual([]);
    } finally {
      await client.close();
      await other.close();
    }
  }, 60_000);
});
