// The matrix: every role, every view it can open, in zh-CN and en, on a 1440 x 900 screen and a 390 x 844 phone,
// in Asia/Shanghai. Each view must fit the screen (no element beyond visualViewport.width), have no critical or
// serious axe-core violation, leave no text untranslated in zh-CN, show a known instant in Shanghai time, and say
// its language in <html lang>.
// One server, one browser, one context per role, language and screen. Run it alone with
//   node --experimental-vm-modules node_modules/jest/bin/jest.js --testPathPatterns matrix
// (also: a shared run link opened on a phone in zh-CN shows the live chart with the newest point on screen).
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Browser, BrowserContextOptions, Page } from 'playwright-core';
import type { Role } from '../../server/dist/src/index.js';
import { ORGANIZATION, send, startServer, TestGateway, USER_PASSWORD, waitFor, type TestServer } from '../../server/dist/test/helpers/server.js';
import { launch, screenshot, signInPage, WAIT } from './helpers/browser.js';
import {
  axeViolations,
  describeAxe,
  describeOverflow,
  describeUntranslated,
  horizontalOverflow,
  showsTimeIn,
  untranslatedText,
} from './helpers/page-checks.js';

export const TIME_ZONE = 'Asia/Shanghai';
export const LOCALES = ['zh-CN', 'en'] as const;
export const SCREENS: Record<'desktop' | 'phone', BrowserContextOptions & { viewport: { width: number; height: number } }> = {
  desktop: { viewport: { width: 1440, height: 900 } },
  phone: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 3 },
};
const ROLES: Role[] = ['admin', 'technician', 'signatory', 'client', 'auditor'];
/** who signs in for each role: identifiers, not words, so that a role's name on screen is UI text to translate */
export const USERS: Record<Role, string> = { admin: 'zhao01', technician: 'qian02', signatory: 'sun03', client: 'li04', auditor: 'zhou05' };
/** a user who signed in with a one-time password and must choose a new one */
const MUST_CHANGE = 'wu06';
const DAY = 86_400_000;
const SYSTEM = { username: 'test-setup', role: 'system' };

/** what the views show: created once, before the matrix */
export interface Fixture {
  liveRun: string;
  liveStartedAt: number;
  doneRun: string;
  doneRecords: number;
  firstRecordAt: number;
  certificate: string;
  certificateTimes: number[];
  userCreatedAt: number;
  /** when the fixture's sample was received, and when its method was created */
  sampleReceivedAt: number;
  methodCreatedAt: number;
  /** when ut-1 was calibrated (its page shows it) */
  calibratedAt: number;
  /** the audit entries each role sees, by the time its views are checked */
  auditTimes(role: Role): Promise<number[]>;
  oneTimePassword: string;
  /** a share link's token for the completed run */
  shareToken: string;
}

/** who may open a view: roles, anyone signed out, or the user who must change the password */
type Who = readonly Role[] | 'public' | 'must-change';

export interface View {
  name: string;
  who: Who;
  /** the address, from the server's base */
  path(f: Fixture): string;
  /** the selector that says the view has loaded its data */
  ready(f: Fixture): string;
  /** instants the view shows (one of them must be on screen in the page's time zone); none: not checked */
  times?(f: Fixture, role: Role | null): number[] | Promise<number[]>;
  /** identifiers of the fixture the view lists as data, beyond USERS (see `identifiers`) */
  identifiers?: readonly string[];
}

/**
 * The views, as dashboard/src routes them (hash routes), with the selector that says each has loaded. Update here
 * when a route or a view's root changes.
 */
export const VIEWS: readonly View[] = [
  { name: 'sign-in', who: 'public', path: () => '/', ready: () => '[data-test="login"]' },
  {
    name: 'verify',
    who: 'public',
    path: (f) => `/verify/${encodeURIComponent(f.certificate)}`,
    ready: () => 'body',
    // server-rendered for anyone: the time is not checked here (the page's time zone needs script in the page)
  },
  { name: 'password', who: 'must-change', path: () => '/', ready: () => '[data-test="change-password"]' },
  {
    name: 'shared run',
    who: 'public',
    path: (f) => `/#/share/${f.shareToken}`,
    ready: () => '[data-test="share-view"][data-loaded="true"] [data-test="share-state"]',
  },
  {
    name: 'home',
    who: ROLES,
    path: () => '/#/',
    ready: () => '[data-test="runs"][data-loaded="true"], [data-test="runs"][data-loaded="yes"]',
    times: (f) => [f.liveStartedAt],
  },
  {
    name: 'runs',
    who: ROLES,
    path: () => '/#/runs',
    ready: () => '[data-test="runs"][data-loaded="true"] [data-test="run-row"]',
    times: (f) => [f.liveStartedAt],
  },
  {
    name: 'run live',
    who: ROLES,
    path: (f) => `/#/runs/${encodeURIComponent(f.liveRun)}`,
    ready: () => '[data-test="run-view"][data-watching="watching"]',
    times: (f) => [f.liveStartedAt],
  },
  {
    name: 'run replay',
    who: ROLES,
    path: (f) => `/#/runs/${encodeURIComponent(f.doneRun)}/replay`,
    ready: (f) => `[data-test="replay"][data-total="${f.doneRecords}"]`,
    times: (f) => [f.firstRecordAt],
  },
  {
    name: 'certificate',
    who: ROLES,
    path: (f) => `/#/certificates/${encodeURIComponent(f.certificate)}`,
    ready: () => '[data-test="certificate-view"][data-status="valid"]',
    times: (f) => f.certificateTimes,
  },
  {
    name: 'certificates',
    who: ROLES,
    // filtered by its address, as the overview links to it
    path: () => '/#/certificates?status=valid',
    ready: (f) => `[data-test="certificates"][data-shown="valid"] [data-test="certificate"][data-certificate="${f.certificate}"]`,
    times: (f) => f.certificateTimes,
  },
  {
    name: 'instruments',
    who: ['admin', 'technician', 'signatory', 'auditor'],
    path: () => '/#/instruments',
    ready: () => '[data-test="register-row"][data-instrument="ut-1"]',
    identifiers: ['ut-1', 'WDW-100', 'SN-0001'],
  },
  {
    name: 'instrument',
    who: ['admin', 'technician', 'signatory', 'auditor'],
    path: () => '/#/instruments/ut-1',
    ready: () => '[data-test="calibration-record"][data-certificate="CAL-2026-0001"]',
    times: (f) => [f.calibratedAt],
    identifiers: ['ut-1', 'WDW-100', 'SN-0001', 'CAL-2026-0001', 'p1'],
  },
  {
    name: 'users',
    who: ['admin'],
    path: () => '/#/users',
    ready: () => '[data-test="user-admin"][data-loaded="yes"], [data-test="user-admin"][data-loaded="true"]',
    times: (f) => [f.userCreatedAt],
    // the server's own admin and the test server's users are named after their roles: there, those are usernames
    identifiers: ['admin', 'technician', 'signatory', 'client', 'auditor'],
  },
  // the admin's tasks (views/admin)
  { name: 'admin', who: ['admin'], path: () => '/#/admin', ready: () => '[data-test="admin-home"]' },
  {
    name: 'admin accreditations',
    who: ['admin'],
    path: () => '/#/admin/accreditations',
    ready: () => '[data-test="accreditation"][data-id="cnas-l1234"]',
  },
  {
    name: 'admin gateways',
    who: ['admin'],
    path: () => '/#/admin/gateways',
    ready: () => '[data-test="gateways-view"][data-loaded="yes"] [data-test="gateway"]',
    identifiers: ['gw-b', 'gw-s', 'gw-p'],
  },
  {
    name: 'admin tokens',
    who: ['admin'],
    path: () => '/#/admin/tokens',
    ready: () => '[data-test="token"]',
    identifiers: ['admin', 'technician', 'signatory', 'client', 'auditor'],
  },
  {
    name: 'admin security',
    who: ['admin'],
    path: () => '/#/admin/security',
    ready: () => '[data-test="security-event"], [data-test="security-empty"]',
  },
  {
    name: 'admin health',
    who: ['admin'],
    path: () => '/#/admin/health',
    ready: () => '[data-test="health-broker"]',
    identifiers: ['gw-b', 'gw-s', 'gw-p'],
  },
  { name: 'admin notifications', who: ['admin'], path: () => '/#/admin/notifications', ready: () => '[data-test="delivery-counts"]' },
  { name: 'settings', who: ROLES, path: () => '/#/settings', ready: () => '[data-test="notification-settings"][data-loaded="yes"]' },
  {
    name: 'samples',
    who: ROLES,
    path: () => '/#/samples',
    ready: () => '[data-test="samples"][data-loaded="yes"] [data-test="sample-row"]',
    times: (f) => [f.sampleReceivedAt],
  },
  {
    name: 'sample',
    who: ROLES,
    path: () => '/#/samples/S-1',
    ready: () => '[data-test="sample-view"][data-loaded="yes"] [data-test="sample-run"]',
    times: (f) => [f.sampleReceivedAt],
  },
  {
    name: 'methods',
    who: ROLES,
    path: () => '/#/methods',
    ready: () => '[data-test="methods"][data-loaded="yes"] [data-test="method-row"]',
    times: (f) => [f.methodCreatedAt],
  },
  {
    name: 'method',
    who: ROLES,
    path: () => '/#/methods/gb-228-1',
    ready: () => '[data-test="method-view"][data-loaded="yes"]',
    times: (f) => [f.methodCreatedAt],
  },
  {
    name: 'overview',
    who: ['admin', 'signatory', 'auditor'],
    path: () => '/#/overview',
    ready: () => '[data-test="overview"][data-loaded="true"]',
  },
  {
    name: 'audit',
    who: ['admin', 'auditor'],
    path: () => '/#/audit',
    ready: () => '[data-test="audit-trail"][data-loaded="yes"], [data-test="audit-trail"][data-loaded="true"]',
    times: (f, role) => f.auditTimes(role ?? 'admin'),
    identifiers: ['admin', 'technician', 'signatory', 'client', 'auditor', 'system'],
  },
  {
    // this lab has no supervisor: the view says how to configure one
    name: 'standing',
    who: ['admin', 'auditor'],
    path: () => '/#/standing',
    ready: () => '[data-test="standing-not-configured"]',
  },
  {
    name: 'verify',
    who: ['admin', 'auditor'],
    path: () => '/#/verify',
    ready: () => '[data-test="verify-view"] [data-test="verify-log-key"] code',
  },
];

const canOpen = (view: View, who: Role | 'public' | 'must-change'): boolean =>
  typeof view.who === 'string' ? view.who === who : (view.who as readonly string[]).includes(who);

/** the ids and usernames of the fixture: data, shown as they are in every language */
const identifiers = (f: Fixture): string[] => [
  ...Object.values(USERS),
  MUST_CHANGE,
  f.liveRun,
  f.doneRun,
  f.certificate,
  'Fm',
  'test-setup',
  // the test server's gateway and customer organization
  'gw-a',
  ORGANIZATION,
];

let t: TestServer;
let gw: TestGateway;
let browser: Browser;
let fixture: Fixture;
const tokens = {} as Record<Role, string>;
let seq = 0;

/** a REST call as one of USERS; fails on a refusal */
async function api<T = any>(p: string, body?: unknown, role: Role = 'technician'): Promise<T> {
  const res = await fetch(`${t.base}${p}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${tokens[role]}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await res.json()) as T;
  if (!res.ok) throw new Error(`${p}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** one signed batch of `values` on ut-1, channel c, timestamped just before now */
export async function sendForce(values: number[]): Promise<void> {
  const now = Date.now();
  const samples = values.map((value, i) => ({
    seq: seq++,
    instrument: 'ut-1',
    channel: 'c',
    ts: now - values.length + i,
    value,
    unit: 'kN',
    quality: 'good' as const,
  }));
  expect(await send(t, gw, gw.sign(samples))).toBe('acked');
}

async function setUp(): Promise<Fixture> {
  t = await startServer({
    laboratory: { name: '上海示例检测技术有限公司', address: '上海市浦东新区示例路 1 号' },
    accreditation: {
      accreditations: [
        {
          id: 'cnas-l1234',
          body: 'CNAS',
          number: 'L1234',
          validFrom: '2025-03-01',
          validTo: Date.now() + 365 * DAY,
          scope: [{ standard: 'ISO 6892-1:2019', measurand: 'F', unit: 'kN', min: 0, max: 1000 }],
        },
      ],
    },
  });
  // the test server's customer is "Client A": data in English would read as untranslated text in zh-CN
  t.server.database.sqlite.prepare('UPDATE organizations SET name = ? WHERE id = ?').run('上海甲方建材有限公司', ORGANIZATION);
  for (const role of ROLES) {
    await t.server.users.create(SYSTEM, {
      username: USERS[role],
      role,
      password: USER_PASSWORD,
      ...(role === 'client' ? { organization: ORGANIZATION } : {}),
      ...(role === 'auditor' ? { grantUntil: Date.now() + 30 * DAY } : {}),
    });
    tokens[role] = (await t.server.users.createApiToken(SYSTEM, USERS[role], 'tests', DAY)).token;
  }
  const mustChange = await t.server.users.create(SYSTEM, { username: MUST_CHANGE, role: 'client', organization: ORGANIZATION });

  gw = await TestGateway.connect(t, 'gw-a');
  await gw.announce([
    { id: 'ut-1', identity: { maker: '济南试金', model: 'WDW-100', serialNumber: 'SN-0001' }, channels: [{ name: 'c', unit: 'kN' }] },
  ]);
  await waitFor('the instrument', () => (t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM instruments').get() as { n: number }).n === 1);
  const now = Date.now();
  const calibratedAt = now - 10 * DAY;
  await api('/api/instruments/ut-1/calibrations', {
    calibratedAt,
    laboratory: '上海市计量测试技术研究院',
    certificate: 'CAL-2026-0001',
    results: [{ point: 'p1', reference: 10, indication: 10.01, unit: 'kN' }],
    uncertainty: { value: 0.1, unit: 'kN', k: 2 },
    nextDueAt: now + 300 * DAY,
  });
  const method = await api<{ createdAt: number }>('/api/methods', {
    id: 'gb-228-1',
    standard: 'ISO 6892-1:2019',
    title: '金属材料 拉伸试验 第 1 部分：室温试验方法',
    definition: {
      measurands: [{ name: 'F', unit: 'kN', channel: 'c' }],
      limits: [{ measurand: 'F', min: 0, max: 100 }],
      decisionRule: { kind: 'simple-acceptance' },
      rules: [{ id: 'rule-1', kind: 'limits', severity: 'alarm', channel: 'c', high: 90 }],
      results: [{ name: 'Fm', title: '最大力', measurand: 'F', statistic: 'max', resolution: 0.01, repeatability: 0.05, limits: { min: 40 } }],
    },
  });
  await api('/api/lab-samples', {
    id: 'S-1',
    organization: ORGANIZATION,
    description: '热轧带肋钢筋 HRB400E Φ16',
    condition: '完好',
    receivedAt: now - DAY,
  });

  const doneRun = (await api<{ id: string }>('/api/runs', { sample: 'S-1', method: 'gb-228-1', instruments: ['ut-1'] })).id;
  await api(`/api/runs/${doneRun}/start`, {});
  await sendForce([10.2, 35.7, 42.031, 41.9, 0.4]);
  await api(`/api/runs/${doneRun}/stop`, {});
  const records = (await api<{ samples: { ts: number }[] }>(`/api/runs/${doneRun}/records`)).samples;
  const requested = await api<{ id: string }>('/api/certificates', { run: doneRun });
  const issued = await api<{ requestedAt: number; issuedAt: number }>(`/api/certificates/${requested.id}/issue`, {}, 'signatory');

  const share = await api<{ token: string }>(`/api/runs/${doneRun}/shares`, { hours: 24 });
  const liveRun = (await api<{ id: string }>('/api/runs', { sample: 'S-1', method: 'gb-228-1', instruments: ['ut-1'] })).id;
  const started = await api<{ startedAt: number }>(`/api/runs/${liveRun}/start`, {});
  await sendForce([...Array.from({ length: 30 }, (_, i) => 20 + i), 95]);

  // a page of users (newest first): the fixture's few fit in one
  const users = await api<{ items: { username: string; createdAt: number }[] }>('/api/users?limit=500', undefined, 'admin');
  const li = users.items.find((u) => u.username === USERS.client);
  return {
    liveRun,
    liveStartedAt: started.startedAt,
    doneRun,
    doneRecords: records.length,
    firstRecordAt: records[0]!.ts,
    certificate: requested.id,
    certificateTimes: [issued.requestedAt, issued.issuedAt],
    userCreatedAt: li!.createdAt,
    sampleReceivedAt: now - DAY,
    methodCreatedAt: method.createdAt,
    calibratedAt,
    auditTimes: async (role) => {
      const answer = await api<{ at: number }[] | { items: { at: number }[] }>('/api/audit-trail?limit=100', undefined, role);
      return (Array.isArray(answer) ? answer : answer.items).map((e) => e.at);
    },
    oneTimePassword: mustChange.password!,
    shareToken: share.token,
  };
}

beforeAll(async () => {
  fixture = await setUp();
  browser = await launch();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await gw?.end();
  await t?.stop();
});

/** Opens `view` in `page` and runs every check; returns the failures, each naming what failed. */
async function checkView(
  page: Page,
  view: View,
  who: Role | 'public' | 'must-change',
  locale: (typeof LOCALES)[number],
  screen: keyof typeof SCREENS,
): Promise<string[]> {
  const where = `${who} · ${view.name} · ${locale} · ${screen}`;
  const failures: string[] = [];
  await page.goto(`${t.base}${view.path(fixture)}`);
  try {
    await page.waitForSelector(view.ready(fixture), WAIT);
  } catch {
    await screenshot(page, `matrix-${who}-${view.name.replace(/\s/g, '-')}-${locale}-${screen}`, false).catch(() => undefined);
    return [`${where}: the view did not show ${view.ready(fixture)} within ${WAIT.timeout / 1000} s`];
  }
  const lang = await page.evaluate(() => document.documentElement.lang);
  if (!lang.toLowerCase().startsWith(locale.slice(0, 2))) failures.push(`<html lang="${lang}">, not the page's language ${locale}`);
  const overflow = await horizontalOverflow(page, SCREENS[screen].viewport.width);
  failures.push(...describeOverflow(overflow));
  failures.push(...describeAxe(await axeViolations(page)));
  if (locale === 'zh-CN')
    failures.push(...describeUntranslated(await untranslatedText(page, [...identifiers(fixture), ...(view.identifiers ?? [])])));
  if (view.times !== undefined) {
    const instants = await view.times(fixture, typeof who === 'string' && !ROLES.includes(who as Role) ? null : (who as Role));
    const shown = await Promise.all(instants.map((ms) => showsTimeIn(page, ms, TIME_ZONE)));
    if (!shown.some((s) => s.ok)) {
      const first = shown[0];
      failures.push(
        first === undefined
          ? 'time: the fixture has no instant for this view'
          : `time: expected ${[...new Set(shown.map((s) => s.expected))].join(' or ')} (${TIME_ZONE}) on screen${shown.some((s) => s.showsUtc) ? `; it shows ${first.utc}, the UTC time` : ''}`,
      );
    }
  }
  if (failures.length > 0) await screenshot(page, `matrix-${who}-${view.name.replace(/\s/g, '-')}-${locale}-${screen}`, false).catch(() => undefined);
  return failures.map((f) => `${where}: ${f}`);
}

const combos = [...ROLES, 'public' as const].flatMap((who) =>
  LOCALES.flatMap((locale) => (Object.keys(SCREENS) as (keyof typeof SCREENS)[]).map((screen) => [who, locale, screen] as const)),
);

describe('matrix: every role and view, zh-CN and en, desktop and phone, Asia/Shanghai', () => {
  test.each(combos)(
    '%s in %s on %s',
    async (who, locale, screen) => {
      const context = await browser.newContext({ ...SCREENS[screen], locale, timezoneId: TIME_ZONE });
      const failures: string[] = [];
      try {
        const page = await context.newPage();
        const errors: string[] = [];
        page.on('pageerror', (err) => errors.push(err.message));
        if (who === 'public') {
          for (const view of VIEWS.filter((v) => v.who === 'public')) failures.push(...(await checkView(page, view, who, locale, screen)));
          // the password page: a user signed in with a one-time password, in a context of its own
          const other = await context.browser()!.newContext({ ...SCREENS[screen], locale, timezoneId: TIME_ZONE });
          try {
            const p = await other.newPage();
            await signInPage(p, t, MUST_CHANGE, fixture.oneTimePassword, '[data-test="change-password"], [data-test="user"]');
            for (const view of VIEWS.filter((v) => v.who === 'must-change'))
              failures.push(...(await checkView(p, view, 'must-change', locale, screen)));
          } finally {
            await other.close();
          }
        } else {
          await signInPage(page, t, USERS[who]);
          for (const view of VIEWS.filter((v) => canOpen(v, who))) failures.push(...(await checkView(page, view, who, locale, screen)));
        }
        failures.push(...errors.map((e) => `${who} · ${locale} · ${screen}: page error: ${e}`));
      } finally {
        await context.close();
      }
      expect(failures).toEqual([]);
    },
    180_000,
  );
});

describe('a shared run link on a phone', () => {
  test('opened on a 390 x 844 phone in zh-CN, signed in from the link, it shows the live chart with the newest point on screen', async () => {
    const context = await browser.newContext({ ...SCREENS.phone, locale: 'zh-CN', timezoneId: TIME_ZONE });
    try {
      const page = await context.newPage();
      // the link the lab shares: signed out, it asks for the sign-in and then shows the run it names
      await page.goto(`${t.base}/#/runs/${encodeURIComponent(fixture.liveRun)}`);
      await page.waitForSelector('[data-test="login"]', WAIT);
      await page.fill('input[name="username"]', USERS.client);
      await page.fill('input[name="password"]', USER_PASSWORD);
      await page.click('[data-test="login"] button[type="submit"]');
      await page.waitForSelector(`[data-test="run-view"][data-run="${fixture.liveRun}"][data-watching="watching"]`, WAIT);
      const chart = '[data-test="run-chart"][data-channel="c"]';
      await page.waitForSelector(chart, WAIT);
      const before = Number(await page.locator(chart).getAttribute('data-points'));
      // the newest point: the highest of the batch, last
      await sendForce([60, 70, 80, 99]);
      await page.waitForFunction(
        ([sel, n]) => Number(document.querySelector(sel)?.getAttribute('data-points')) >= n,
        [chart, before + 4] as const,
        WAIT,
      );
      // wait for the chart to draw it: two frames
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      const seen = await page.evaluate((sel) => {
        const root = document.querySelector(sel)!;
        const canvas = root.querySelector('canvas')!;
        const vw = window.visualViewport?.width ?? window.innerWidth;
        const vh = window.visualViewport?.height ?? window.innerHeight;
        const box = canvas.getBoundingClientRect();
        // the part of the canvas its scrolling or clipping ancestors let through
        let visible = { left: box.left, right: box.right };
        for (let a = canvas.parentElement; a !== null && a !== document.documentElement; a = a.parentElement) {
          if (getComputedStyle(a).overflowX !== 'visible') {
            const r = a.getBoundingClientRect();
            visible = { left: Math.max(visible.left, r.left), right: Math.min(visible.right, r.right) };
          }
        }
        visible = { left: Math.max(visible.left, 0), right: Math.min(visible.right, vw) };
        // where the newest point is: the view may say (data-newest-x, CSS px from the canvas's left edge); otherwise
        // the right-most inked column of the canvas's plot (the newest point of a time series is drawn last, right-most)
        const said = root.getAttribute('data-newest-x');
        let x: number;
        if (said !== null) x = box.left + Number(said);
        else {
          const ctx = canvas.getContext('2d')!;
          const { data, width, height } = ctx.getImageData(0, 0, canvas.width, canvas.height);
          let rightmost = -1;
          for (let col = width - 1; col >= 0 && rightmost < 0; col--)
            for (let row = 0; row < height; row++)
              if (data[(row * width + col) * 4 + 3]! > 0) {
                rightmost = col;
                break;
              }
          x = box.left + (rightmost / width) * box.width;
        }
        return { x, visible, vw, top: box.top, bottom: box.bottom, vh, said: said !== null };
      }, chart);
      await screenshot(page, 'matrix-shared-link-phone', false);
      const message = `newest point at x = ${seen.x.toFixed(0)} px (${seen.said ? 'data-newest-x' : 'right-most ink'}); the canvas is visible from ${seen.visible.left.toFixed(0)} to ${seen.visible.right.toFixed(0)} px of a ${seen.vw} px wide screen`;
      expect({ inside: seen.x >= seen.visible.left && seen.x <= seen.visible.right && seen.visible.right <= seen.vw, message }).toEqual({
        inside: true,
        message,
      });
      // the chart is on the screen's height too, once scrolled to (it is not squeezed to nothing)
      expect(seen.bottom - seen.top).toBeGreaterThan(100);
    } finally {
      await context.close();
    }
  }, 60_000);
});
