// The supervisor's console (supervisor.html) in a real headless Chromium, served by a real supervisor following a
// real lab server whose checkpoints lack the witness cosignature the supervisor requires (a finding of rule
// checkpoint-not-cosigned): a wrong token is refused and kept nowhere; the right one signs in (kept in the tab's
// sessionStorage only); the labs view shows the lab's tier, findings, following state and witnesses in English and
// in Chinese with times in the browser's zone; the lab's view shows the finding with its rule's title and remedy in
// the language, runs a check, downloads the signed report (JSON and PDF) and resolves the finding with a reason;
// the rules view lists the rules and the tiers. Every view has no axe-core violation and no horizontal overflow on
// a 390 x 844 phone. The console's build carries no source map and no secret.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pino from 'pino';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { formatCosignerVerifierKey, formatSignerKey, parseSignerKey, parseVerifierKey, publicKeyFromSeed } from '@labtrace/protocols';
import { REPO_ROOT } from '../../server/dist/test/helpers/lab-process.js';
import { SeededLab } from '../../server/dist/test/supervisor/lab-seeding.js';
import { DEFAULT_RULE_SETTINGS } from '../../server/dist/src/supervisor/evidence.js';
import { RULES } from '../../server/dist/src/supervisor/rules/index.js';
import { Supervisor } from '../../server/dist/src/supervisor/supervisor.js';
import { launch } from './helpers/browser.js';
import { describeOverflow, horizontalOverflow } from './helpers/page-checks.js';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const WAIT = { timeout: 20_000 };
const TOKEN = 'supervisor-console-token-for-tests-0123456789';
const KEY_SEED = new Uint8Array(32).fill(7);
const KEY = parseSignerKey(formatSignerKey('supervisor.example/console', KEY_SEED));
// a witness that never cosigns the lab's checkpoints: the supervisor requires it, so the lab has a finding
const WITNESS = formatCosignerVerifierKey('regulator.example/w1', publicKeyFromSeed(new Uint8Array(32).fill(9)));
const ZONE = 'Asia/Shanghai';

const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-console-'));
let lab: SeededLab;
let supervisor: Supervisor;
let browser: Browser;

beforeAll(async () => {
  lab = await SeededLab.start();
  // the lab's log holds its first entries (the gateways' keys) in a signed checkpoint before the supervisor follows
  // it: a checkpoint is signed when one is asked for and the last is older than the log's interval
  const deadline = Date.now() + 60_000;
  for (;;) {
    const note = await (await fetch(`${lab.t.base}/api/log/checkpoint`)).text();
    if (Number(note.split('\n')[1]) > 0) break;
    if (Date.now() > deadline) throw new Error(`the lab's log has no entry in a signed checkpoint: ${note}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const keys = (await (await fetch(`${lab.t.base}/api/log/keys`)).json()) as { log: { verifierKey: string } };
  supervisor = new Supervisor(
    {
      host: '127.0.0.1',
      port: 0,
      database: path.join(dir, 'supervisor.db'),
      apiToken: TOKEN,
      key: KEY,
      followEveryMs: 3_600_000,
      settings: DEFAULT_RULE_SETTINGS,
      labs: [
        {
          id: 'lab-1',
          name: 'Testtown Materials Lab',
          url: lab.t.base,
          origin: parseVerifierKey(keys.log.verifierKey).name,
          logKey: keys.log.verifierKey,
          token: lab.t.tokens.auditor,
          witnesses: [WITNESS],
          witnessesRequired: 1,
        },
      ],
    },
    pino({ level: 'silent' }),
  );
  await supervisor.start();
  await supervisor.runRound(true);
  browser = await launch();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await supervisor?.stop();
  await lab?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function api<T>(p: string, token = TOKEN): Promise<{ status: number; body: T }> {
  const res = await fetch(`${supervisor.url}${p}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as T };
}

/** every axe-core violation (any impact) of the page as it is now */
async function axe(page: Page): Promise<string[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE);
  return page.evaluate(async () => {
    const run = (
      window as unknown as {
        axe: { run(d: Document, o: object): Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> };
      }
    ).axe;
    const result = await run.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => `${v.impact} ${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(' | ')}`);
  });
}

async function newPage(locale: string, viewport = { width: 1280, height: 1000 }): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await browser.newContext({ locale, timezoneId: ZONE, viewport, acceptDownloads: true });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  return { context, page, errors };
}

async function signIn(page: Page, token = TOKEN): Promise<void> {
  await page.goto(`${supervisor.url}/`);
  await page.waitForSelector('[data-test="sign-in"]', WAIT);
  await page.fill('#sv-token', token);
  await page.click('[data-test="sign-in"] button[type="submit"]');
}

describe('the supervisor serves its console', () => {
  test('at / without the token, with the security headers; the API still wants the token', async () => {
    const page = await fetch(`${supervisor.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('/assets/supervisor-');
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    // a path of the page's (the console routes in the hash, but a reload of any path still gets the page)
    expect(await (await fetch(`${supervisor.url}/labs`)).text()).toContain('/assets/supervisor-');
    expect((await fetch(`${supervisor.url}/api/labs`)).status).toBe(401);
    const unknown = await api<{ code: string }>('/api/nothing');
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('E_NOT_FOUND');
  });

  test("the labs' API gives the checkpoint held and the witnesses' state; the rules carry remedies in both languages", async () => {
    const { body } = await api<{ labs: Record<string, unknown>[] }>('/api/labs');
    const one = body.labs[0];
    expect(one).toMatchObject({
      id: 'lab-1',
      tier: 'A',
      score: 1,
      openFindings: 1,
      witnesses: { names: ['regulator.example/w1'], required: 1, cosignedBy: [] },
    });
    const checkpoint = one?.['checkpoint'] as { size: number; firstSeenAt: number; lastSeenAt: number };
    expect(checkpoint.size).toBe(one?.['logSize']);
    expect(checkpoint.size).toBeGreaterThan(0);
    expect(checkpoint.lastSeenAt).toBeGreaterThanOrEqual(checkpoint.firstSeenAt);
    const rules = (await api<{ rules: { id: string; remedy: { en: string; zh: string } }[] }>('/api/rules')).body.rules;
    expect(rules).toHaveLength(RULES.length);
    for (const r of rules) {
      expect(r.remedy.en).toMatch(/^[A-Z]/);
      expect(r.remedy.zh).toMatch(/[\u4e00-\u9fff]/);
    }
  });

  test('the built console has no source map and carries no secret', () => {
    const dist = path.join(REPO_ROOT, 'dashboard', 'dist');
    const files: string[] = [];
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(path.join(d, e.name));
        else files.push(path.join(d, e.name));
      }
    };
    walk(dist);
    expect(files.some((f) => f.endsWith('supervisor.html'))).toBe(true);
    expect(files.filter((f) => /\.map(\.br|\.gz)?$/.test(f))).toEqual([]);
    for (const f of files.filter((x) => /\.(js|html|css)$/.test(x))) {
      const text = readFileSync(f, 'utf8');
      expect(text).not.toContain('sourceMappingURL');
      expect(text).not.toContain('PRIVATE+KEY+');
      expect(text).not.toContain(TOKEN);
    }
  });
});

describe('the console in a browser', () => {
  test('refuses a wrong token, and keeps it nowhere', async () => {
    const { context, page, errors } = await newPage('en-US');
    await signIn(page, 'not-the-token-of-this-supervisor-000000');
    const error = await page.waitForSelector('[data-test="sign-in-error"]', WAIT);
    expect(await error.textContent()).toContain('The supervisor refused this token');
    expect(await page.evaluate(() => JSON.stringify({ ...sessionStorage }) + JSON.stringify({ ...localStorage }))).not.toContain('not-the-token');
    expect(page.url()).not.toContain('not-the-token');
    expect(await page.$('[data-test="labs-view"]')).toBeNull();
    expect(await axe(page)).toEqual([]);
    // the message follows the language
    await page.selectOption('[data-test="language-switch"]', 'zh-CN');
    await page.waitForFunction(
      () => document.querySelector('[data-test="sign-in-error"]')?.textContent?.includes('监督方拒绝了此令牌'),
      undefined,
      WAIT,
    );
    expect(await page.evaluate(() => document.documentElement.lang)).toBe('zh-CN');
    expect(await axe(page)).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  test('shows the labs, a lab and the rules in English and in Chinese, runs a check, downloads the report and resolves the finding', async () => {
    const { context, page, errors } = await newPage('en-US');
    await signIn(page);
    const card = await page.waitForSelector('[data-lab="lab-1"]', WAIT);
    // the token: in this tab's sessionStorage, nowhere else
    expect(await page.evaluate(() => sessionStorage.getItem('labtrace.supervisor.token'))).toBe(TOKEN);
    expect(await page.evaluate(() => JSON.stringify({ ...localStorage }))).not.toContain(TOKEN);
    expect(page.url()).not.toContain(TOKEN);
    expect(await card.textContent()).toContain('Testtown Materials Lab');
    expect(await (await card.$('[data-test="tier"]'))?.textContent()).toContain('Tier A, score 1');
    expect(await (await card.$('[data-test="open-findings"]'))?.textContent()).toContain('1 open');
    expect(await (await card.$('[data-test="witnesses"]'))?.textContent()).toContain('0 of 1 required cosignatures');
    // times in the browser's zone (Shanghai: GMT+8)
    expect(await (await card.$('[data-test="last-deep-check"]'))?.textContent()).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT\+8$/);
    expect(await axe(page)).toEqual([]);

    await page.selectOption('[data-test="language-switch"]', 'zh-CN');
    await page.waitForFunction(() => document.querySelector('[data-test="tier"]')?.textContent?.includes('信用等级 A，分值 1'), undefined, WAIT);
    expect(await page.evaluate(() => document.documentElement.lang)).toBe('zh-CN');
    expect(await page.textContent('[data-lab="lab-1"] [data-test="witnesses"]')).toContain('最新检查点有 0 个联署签名，要求 1 个');
    expect(await axe(page)).toEqual([]);

    // the lab's view, in Chinese
    await page.click('[data-test="lab-link"]');
    const finding = await page.waitForSelector('[data-rule="checkpoint-not-cosigned"]', WAIT);
    expect(await finding.textContent()).toContain('实验室检查点缺少所要求见证方的联署签名');
    expect(await (await finding.$('[data-test="remedy"]'))?.textContent()).toContain('在实验室服务器中配置见证方');
    // what was found, in Chinese, as the supervisor's rule wrote it
    const found = (await api<{ findings: { rule: string; summary: { en: string; zh: string } }[] }>('/api/labs/lab-1/findings')).body.findings;
    const summary = found.find((f) => f.rule === 'checkpoint-not-cosigned')?.summary ?? { en: 'none', zh: 'none' };
    expect(summary.zh).toMatch(/^大小为 \d+ 的检查点只有 0 个联署签名，要求 1 个（见证方：.+）$/);
    expect(await (await finding.$('[data-test="summary"]'))?.textContent()).toBe(summary.zh);
    expect(await (await finding.$('[data-test="summary"]'))?.getAttribute('lang')).toBe('zh-CN');
    expect(await (await finding.$('[data-test="severity"]'))?.textContent()).toBe('一般');
    expect(await (await finding.$('[data-test="reference"]'))?.textContent()).toContain('C2SP tlog-witness');
    expect(await axe(page)).toEqual([]);

    // and in English
    await page.selectOption('[data-test="language-switch"]', 'en');
    await page.waitForFunction(
      () => document.querySelector('[data-rule="checkpoint-not-cosigned"] h3')?.textContent?.includes("The lab's checkpoints are not cosigned"),
      undefined,
      WAIT,
    );
    expect(await page.textContent('[data-rule="checkpoint-not-cosigned"] [data-test="remedy"]')).toContain('Configure the witnesses');
    expect(await page.textContent('[data-rule="checkpoint-not-cosigned"] [data-test="summary"]')).toBe(summary.en);
    expect(await page.getAttribute('[data-rule="checkpoint-not-cosigned"] [data-test="summary"]', 'lang')).toBe('en');
    expect(await axe(page)).toEqual([]);

    // a check now: one more check run listed
    const runsBefore = (await api<{ checks: unknown[] }>('/api/labs/lab-1/checks')).body.checks.length;
    await page.click('[data-test="check-now"]');
    await page.waitForFunction(() => document.querySelector('[data-test="check-notice"]')?.textContent?.includes('Check done'), undefined, WAIT);
    expect((await api<{ checks: unknown[] }>('/api/labs/lab-1/checks')).body.checks.length).toBe(runsBefore + 1);
    expect(await page.$$eval('[data-test="checks"] tbody tr', (rows) => rows.length)).toBe(runsBefore + 1);

    // the signed report of the period, JSON and PDF, as the supervisor signed it
    await page.selectOption('#sv-lang', 'zh-CN');
    const [json] = await Promise.all([page.waitForEvent('download', WAIT), page.click('[data-test="report-json"]')]);
    expect(json.suggestedFilename()).toMatch(/\.json$/);
    const report = JSON.parse(readFileSync(await json.path(), 'utf8')) as { report: { kind: string; language: string; lab: { id: string } } };
    expect(report.report).toMatchObject({ kind: 'compliance-report', language: 'zh-CN', lab: { id: 'lab-1' } });
    const [pdf] = await Promise.all([page.waitForEvent('download', WAIT), page.click('[data-test="report-pdf"]')]);
    expect(pdf.suggestedFilename()).toMatch(/\.pdf$/);
    expect(
      readFileSync(await pdf.path())
        .subarray(0, 5)
        .toString('latin1'),
    ).toBe('%PDF-');
    await page.waitForFunction(() => document.querySelector('[data-test="report-notice"]')?.textContent?.includes('.pdf'), undefined, WAIT);

    // resolving takes a reason
    await page.click('[data-rule="checkpoint-not-cosigned"] [data-test="resolve-open"]');
    await page.fill('[data-rule="checkpoint-not-cosigned"] input[name="author"]', 'Inspector Li');
    await page.fill('[data-rule="checkpoint-not-cosigned"] textarea[name="reason"]', 'short');
    await page.click('[data-rule="checkpoint-not-cosigned"] [data-test="resolve-form"] button[type="submit"]');
    await page.waitForSelector('[data-test="resolve-error"]', WAIT);
    expect(await axe(page)).toEqual([]);
    await page.fill(
      '[data-rule="checkpoint-not-cosigned"] textarea[name="reason"]',
      'Witness configured on the lab server; cosigned checkpoint seen.',
    );
    await page.click('[data-rule="checkpoint-not-cosigned"] [data-test="resolve-form"] button[type="submit"]');
    await page.waitForFunction(
      () => document.querySelector('[data-rule="checkpoint-not-cosigned"] [data-test="status"]')?.textContent === 'resolved',
      undefined,
      WAIT,
    );
    expect(await page.textContent('[data-rule="checkpoint-not-cosigned"] [data-test="responses"]')).toContain('Inspector Li');
    const findings = (await api<{ findings: { rule: string; status: string }[] }>('/api/labs/lab-1/findings')).body.findings;
    expect(findings.find((f) => f.rule === 'checkpoint-not-cosigned')?.status).toBe('resolved');

    // the rules and tiers
    await page.click('[data-test="nav-rules"]');
    await page.waitForSelector('[data-test="rules"]', WAIT);
    expect(await page.$$eval('[data-test="rules"] > li', (l) => l.length)).toBe(RULES.length);
    expect(await page.$$eval('[data-test="bands"] tbody tr', (l) => l.length)).toBe(4);
    expect(await page.textContent('[data-rule="log-stalled"] [data-test="remedy"]')).toContain('Restore the log');
    expect(await axe(page)).toEqual([]);
    await page.selectOption('[data-test="language-switch"]', 'zh-CN');
    await page.waitForFunction(
      () => document.querySelector('[data-rule="log-stalled"] [data-test="remedy"]')?.textContent?.includes('恢复日志'),
      undefined,
      WAIT,
    );
    expect(await axe(page)).toEqual([]);

    // signing out forgets the token
    await page.click('[data-test="sign-out"]');
    await page.waitForSelector('[data-test="sign-in"]', WAIT);
    expect(await page.evaluate(() => sessionStorage.getItem('labtrace.supervisor.token'))).toBeNull();
    expect(errors).toEqual([]);
    await context.close();
  }, 90_000);

  test.each(['en-US', 'zh-CN'])(
    'fits a 390 x 844 phone in %s on every view',
    async (locale) => {
      const { context, page, errors } = await newPage(locale, { width: 390, height: 844 });
      for (const [where, ready] of [
        ['/', '[data-test="sign-in"]'],
        ['/#/labs', '[data-lab="lab-1"]'],
        ['/#/labs/lab-1', '[data-test="checks"]'],
        ['/#/rules', '[data-test="rules"]'],
      ] as const) {
        if (where === '/#/labs') await signIn(page);
        else await page.goto(`${supervisor.url}${where}`);
        await page.waitForSelector(ready, WAIT);
        await page.evaluate(() => document.querySelectorAll('details').forEach((d) => (d.open = true)));
        const overflow = await horizontalOverflow(page, 390);
        expect(describeOverflow(overflow)).toEqual([]);
        expect(await axe(page)).toEqual([]);
      }
      expect(errors).toEqual([]);
      await context.close();
    },
    90_000,
  );
});
