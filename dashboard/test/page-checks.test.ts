// The page checks of the matrix test, on pages written here: each finds what it is for and passes what is fine.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launch } from './helpers/browser.js';
import { axeViolations, clockTexts, horizontalOverflow, showsTimeIn, untranslatedText, untranslatedWords } from './helpers/page-checks.js';

let browser: Browser;
let phone: BrowserContext;
let page: Page;

beforeAll(async () => {
  browser = await launch();
  phone = await browser.newContext({
    viewport: { width: 390, height: 844 },
    isMobile: true,
    hasTouch: true,
    locale: 'zh-CN',
    timezoneId: 'Asia/Shanghai',
  });
  page = await phone.newPage();
}, 30_000);

afterAll(async () => {
  await browser?.close();
});

const html = (body: string, head = ''): string =>
  `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>运行</title>${head}</head><body>${body}</body></html>`;

describe('untranslated words', () => {
  test('units, symbols, standards, identifiers and numbers pass; English words do not', () => {
    expect(untranslatedWords('最大力 Fm = 42.03 kN，U = 0.17 kN（k = 2），ISO 6892-1:2019', ['Fm'])).toEqual([]);
    expect(untranslatedWords('运行 run-7f3a 由 wang01 于 14:05 (Asia/Shanghai) 开始；报告 TR-lab-t-000001 的 PDF、JSON、DCC XML')).toEqual([]);
    expect(untranslatedWords('抗拉强度 Rm 512 MPa, 温度 23.1 °C, 湿度 45 %RH, 频率 10 Hz, 50 ms, GB/T 228.1-2021, CNAS L1234')).toEqual(['Rm']);
    expect(untranslatedWords('quality@client-a.example https://lab.example/verify/TR-1 3f9a0c7de1b2')).toEqual([]);
    expect(untranslatedWords('Sign out')).toEqual(['Sign', 'out']);
    expect(untranslatedWords('out-of-service')).toEqual(['out', 'of', 'service']);
    expect(untranslatedWords('technician (technician)', ['qian02'])).toEqual(['technician', 'technician']);
  });
});

describe('clock times', () => {
  test('the hour and minute in the zone, written as 24 h, 12 h or with 上午/下午', () => {
    const at = Date.UTC(2026, 0, 15, 6, 5, 30);
    const { hour, minute, patterns } = clockTexts(at, 'Asia/Shanghai');
    expect([hour, minute]).toEqual([14, 5]);
    const matches = (text: string): boolean => patterns.some((p) => p.test(text));
    expect(matches('2026-01-15 14:05:30')).toBe(true);
    expect(matches('2026/1/15 下午2:05')).toBe(true);
    expect(matches('Jan 15, 2026, 2:05 PM')).toBe(true);
    expect(matches('2026-01-15 06:05 UTC')).toBe(false);
    expect(matches('114:05')).toBe(false);
    expect(matches('2:05 AM')).toBe(false);
  });

  test('a page showing the instant in Shanghai time passes; one showing UTC fails and says so', async () => {
    const at = Date.UTC(2026, 0, 15, 6, 5);
    await page.setContent(html(`<p>开始于 2026-01-15 14:05 (Asia/Shanghai)</p>`));
    expect(await showsTimeIn(page, at, 'Asia/Shanghai')).toMatchObject({ ok: true, expected: '14:05' });
    await page.setContent(html(`<p>开始于 2026-01-15 06:05</p>`));
    expect(await showsTimeIn(page, at, 'Asia/Shanghai')).toMatchObject({ ok: false, expected: '14:05', utc: '06:05', showsUtc: true });
  });
});

describe('horizontal overflow', () => {
  test('an element wider than the phone is found, by its selector, even when the page hides the overflow', async () => {
    await page.setContent(html(`<main><table data-test="runs" style="width:600px"><tr><td>运行</td></tr></table></main>`));
    const found = await horizontalOverflow(page, 390);
    expect(found.limit).toBe(390);
    expect(found.elements.map((e) => e.selector)).toEqual(['main > table[data-test="runs"]']);
    await page.setContent(html(`<main><div data-test="wide" style="width:700px">宽</div></main>`, '<style>html,body{overflow-x:hidden}</style>'));
    expect((await horizontalOverflow(page, 390)).elements.map((e) => e.selector)).toEqual(['main > div[data-test="wide"]']);
  });

  test('content inside a container that scrolls horizontally, itself within the screen, is fine', async () => {
    await page.setContent(html(`<main><div style="overflow-x:auto"><table style="width:900px"><tr><td>运行</td></tr></table></div><p>短</p></main>`));
    expect((await horizontalOverflow(page, 390)).elements).toEqual([]);
  });
});

describe('axe-core', () => {
  test('an input without a label and low contrast are reported as critical and serious; a labelled form passes', async () => {
    await page.setContent(html(`<main><h1>表单</h1><input name="reason"><p style="color:#fff;background:#3c3">运行中</p></main>`));
    const found = await axeViolations(page);
    expect(found.map((v) => [v.id, v.impact]).sort()).toEqual([
      ['color-contrast', 'serious'],
      ['label', 'critical'],
    ]);
    await page.setContent(html(`<main><h1>表单</h1><label>原因 <input name="reason"></label><p>运行中</p></main>`));
    expect(await axeViolations(page)).toEqual([]);
  });
});

describe('untranslated text on a page', () => {
  test('visible text, the options of a select, placeholders and labels are read; hidden text, code, translate="no" and lang="en" are not', async () => {
    await page.setContent(
      html(`<main>
        <h1>运行 <span translate="no">Steel bar B500, sample of Client A</span></h1>
        <p>命令 <code>npm start</code></p>
        <p hidden>Loading</p>
        <input aria-label="Search runs" placeholder="搜索">
        <button>Sign out</button>
        <label>状态 <select><option>全部</option><option>revoked</option></select></label>
        <h2>检测报告 <span lang="en">Test report</span></h2>
        <select aria-label="语言"><option lang="zh-CN">中文</option><option lang="en">English</option></select>
      </main>`),
    );
    const found = await untranslatedText(page);
    expect(found.map((u) => [u.where, u.words])).toEqual([
      ['text', ['Sign', 'out']],
      ['text', ['revoked']],
      ['aria-label', ['Search', 'runs']],
    ]);
  });
});
