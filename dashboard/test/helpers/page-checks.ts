// Checks of a rendered page that every view must pass, for the matrix test (matrix.test.ts) and any other:
// horizontal overflow, axe-core's critical and serious violations, text left untranslated in zh-CN, and times
// shown in the page's time zone. Each returns what it found (empty: the page passes), worded for a failure message.
import { createRequire } from 'node:module';
import type { AxeResults, RunOptions } from 'axe-core';
import type { Page } from 'playwright-core';

const require = createRequire(import.meta.url);

// ---------------------------------------------------------------- (a) horizontal overflow

export interface Overflow {
  /** a CSS path that finds the element (tag#id.class[data-test], up to 4 levels) */
  selector: string;
  /** its right edge, in CSS px from the page's left edge */
  right: number;
  width: number;
}

export interface OverflowReport {
  /** the width the page had to fit: the smaller of visualViewport.width and the width the test set */
  limit: number;
  visualViewportWidth: number;
  innerWidth: number;
  scrollWidth: number;
  /** the outermost elements beyond the limit (an overflowing element's overflowing descendants are left out) */
  elements: Overflow[];
}

/**
 * Every visible element whose right edge lies beyond `visualViewport.width` (or `width`, the viewport the test
 * asked for, when that is smaller: on a phone the layout viewport grows to the content and the page is zoomed
 * out, so the page's own widths can say it fits while its content is cut off or tiny). An element inside a
 * container that scrolls horizontally by design (overflow-x auto or scroll) and is clipped by it is fine.
 */
export async function horizontalOverflow(page: Page, width?: number): Promise<OverflowReport> {
  return page.evaluate((asked) => {
    const vv = window.visualViewport?.width ?? window.innerWidth;
    const limit = Math.min(vv, asked ?? Infinity) + 0.5;
    const describe = (el: Element): string => {
      const parts: string[] = [];
      for (let e: Element | null = el, i = 0; e !== null && e !== document.body && i < 4; e = e.parentElement, i++) {
        let s = e.tagName.toLowerCase();
        if (e.id) s += `#${e.id}`;
        const test = e.getAttribute('data-test');
        if (test !== null) s += `[data-test="${test}"]`;
        for (const c of Array.from(e.classList).slice(0, 2)) s += `.${c}`;
        parts.unshift(s);
      }
      return parts.join(' > ');
    };
    /** clipped by an ancestor that scrolls horizontally and itself ends within the limit */
    const scrolledAway = (el: Element): boolean => {
      for (let a = el.parentElement; a !== null && a !== document.documentElement; a = a.parentElement) {
        const ox = getComputedStyle(a).overflowX;
        if ((ox === 'auto' || ox === 'scroll') && a.scrollWidth > a.clientWidth) return a.getBoundingClientRect().right + window.scrollX <= limit;
      }
      return false;
    };
    const offending = new Set<Element>();
    const elements: { selector: string; right: number; width: number }[] = [];
    for (const el of Array.from(document.body.querySelectorAll('*'))) {
      if (!el.checkVisibility({ visibilityProperty: true, opacityProperty: false })) continue;
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) continue;
      const right = r.right + window.scrollX;
      if (right <= limit || scrolledAway(el)) continue;
      offending.add(el);
      if (el.parentElement !== null && offending.has(el.parentElement)) continue;
      elements.push({ selector: describe(el), right: Math.round(right), width: Math.round(r.width) });
    }
    return {
      limit: Math.round(limit - 0.5),
      visualViewportWidth: vv,
      innerWidth: window.innerWidth,
      scrollWidth: document.documentElement.scrollWidth,
      elements,
    };
  }, width);
}

/** one line per overflowing element, for a failure message */
export const describeOverflow = (r: OverflowReport): string[] =>
  r.elements.map((e) => `overflow: ${e.selector} ends at ${e.right} px (width ${e.width} px) > ${r.limit} px`);

// ---------------------------------------------------------------- (b) axe-core

export interface AxeViolation {
  id: string;
  impact: 'critical' | 'serious';
  help: string;
  /** the selectors of the first nodes that fail */
  nodes: string[];
}

/** axe-core's own script (the npm package, not a copy), injected into the page once per document */
const AXE_SOURCE: string = (require('axe-core') as { source: string }).source;

/**
 * Runs axe-core (its default rules: WCAG 2.x A and AA and best practices) on the page; returns the violations
 * of impact critical or serious. Evaluated through the DevTools protocol, so the page's CSP does not stop it.
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  return page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(context: Document, options: RunOptions): Promise<AxeResults> } }).axe;
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations
      .filter((v) => v.impact === 'critical' || v.impact === 'serious')
      .map((v) => ({
        id: v.id,
        impact: v.impact as 'critical' | 'serious',
        help: v.help,
        nodes: v.nodes.slice(0, 5).map((n) => n.target.map(String).join(' ')),
      }));
  });
}

export const describeAxe = (violations: AxeViolation[]): string[] =>
  violations.map((v) => `axe ${v.impact} ${v.id}: ${v.help} (${v.nodes.join(' | ')})`);

// ---------------------------------------------------------------- (c) text left untranslated in zh-CN

const SI_PREFIXES = ['', 'k', 'M', 'G', 'T', 'm', 'µ', 'μ', 'u', 'n', 'p', 'c', 'd', 'h', 'da'];
const SI_UNITS = [
  'm',
  'g',
  's',
  'A',
  'K',
  'mol',
  'cd',
  'N',
  'Pa',
  'J',
  'W',
  'C',
  'V',
  'F',
  'Ω',
  'S',
  'Hz',
  'bar',
  'L',
  'l',
  'B',
  'b',
  'Wb',
  'T',
  'H',
  'lx',
  'lm',
  'eV',
  't',
  'rad',
];

/**
 * Latin words a zh-CN page may show as they are: units and SI symbols (with their prefixes), standard and
 * accreditation codes, formats, the product's name, and the symbols of the report (U, k). Matched case-sensitively,
 * as whole words. Identifiers are told by their form instead (IDENTIFIER_PATTERNS).
 */
export const ZH_ALLOWED_WORDS: ReadonlySet<string> = new Set([
  ...SI_PREFIXES.flatMap((p) => SI_UNITS.map((u) => p + u)),
  ...['min', 'h', 'd', 'rpm', 'ppm', 'dB', 'pH', 'RH', '°C', 'UTC', 'GMT'],
  // standards bodies, accreditation bodies and marks
  ...['ISO', 'IEC', 'EN', 'ASTM', 'GB', 'JJG', 'JJF', 'DIN', 'BS', 'CNAS', 'CMA', 'ILAC', 'MRA', 'GUM'],
  // formats and protocols a user picks by name
  ...['labtrace', 'PDF', 'JSON', 'XML', 'DCC', 'CSV', 'QR', 'ID', 'URL', 'SHA', 'MQTT', 'API'],
  // the names Chinese admin screens use as they are (WeCom's own console says "Webhook 地址")
  ...['Webhook', 'SMTP', 'Markdown', 'SQLite', 'InfluxDB'],
  // the report's symbols: expanded uncertainty and coverage factor
  ...['U', 'k'],
  // a language's own name, beside its Chinese name where markup cannot say lang="en" (an <option>: 英文（English）)
  ...['English'],
]);

/**
 * Tokens that are identifiers, not words: anything with a digit (run ids, report numbers, usernames like wang01,
 * standard numbers, versions), e-mail addresses, URLs, IANA time zone names, hexadecimal digests.
 */
export const IDENTIFIER_PATTERNS: readonly RegExp[] = [
  /\d/,
  /@/,
  /^[a-z][a-z0-9+.-]*:\/\//i,
  /^[A-Z][A-Za-z_]+(?:\/[A-Za-z_-]+)+$/, // Asia/Shanghai, America/Argentina/Buenos_Aires
  /^[0-9a-f]{8,}$/i,
];

export interface Untranslated {
  /** the Latin words not allowed */
  words: string[];
  /** the text they were found in (shortened) */
  text: string;
  /** where: a text node, or the placeholder/aria-label/title/alt of an element */
  where: string;
  selector: string;
}

/** the Latin words of `text` that are neither allowed nor part of an identifier (exported for unit tests) */
export function untranslatedWords(text: string, identifiers: readonly string[] = []): string[] {
  const found: string[] = [];
  // tokens: runs between spaces and punctuation that does not join an identifier
  for (const raw of text.split(/[\s,;!?()[\]{}"'“”‘’«»<>|·•…=+*，。、：；！？（）【】《》「」]+/)) {
    const token = raw.replace(/^[.:\-–—/]+|[.:\-–—/]+$/g, '');
    if (token === '' || identifiers.includes(token) || IDENTIFIER_PATTERNS.some((p) => p.test(token))) continue;
    for (const word of token.match(/[A-Za-z]{2,}/g) ?? []) {
      if (ZH_ALLOWED_WORDS.has(word) || identifiers.includes(word)) continue;
      found.push(word);
    }
  }
  return found;
}

/**
 * Visible text of the page with Latin words (2+ letters) beyond ZH_ALLOWED_WORDS, IDENTIFIER_PATTERNS and the
 * test's own `identifiers` (the ids and usernames of its fixtures). Skipped: text in `code`, `kbd`, `samp`, in any
 * element marked `translate="no"` (the HTML attribute for content that is not to be translated: user data,
 * identifiers), and in any element below <html> whose `lang` is not Chinese (a language's own name in a switch,
 * the English half of a bilingual heading). Checked besides text nodes: placeholder, aria-label, title and alt, the document's title, and every
 * option of a visible select.
 */
export async function untranslatedText(page: Page, identifiers: readonly string[] = []): Promise<Untranslated[]> {
  const items = await page.evaluate(() => {
    const out: { text: string; where: string; selector: string }[] = [];
    const describe = (el: Element): string => {
      const parts: string[] = [];
      for (let e: Element | null = el, i = 0; e !== null && e !== document.body && i < 3; e = e.parentElement, i++) {
        const test = e.getAttribute('data-test');
        parts.unshift(e.tagName.toLowerCase() + (test === null ? '' : `[data-test="${test}"]`));
      }
      return parts.join(' > ');
    };
    // text declared to be in another language (lang="en" below <html>: a language switch's "English", the English half
    // of a bilingual heading) is not text left untranslated
    const otherLanguage = (el: Element): boolean => {
      const declared = el.closest('[lang]');
      return declared !== null && declared !== document.documentElement && !(declared.getAttribute('lang') ?? '').toLowerCase().startsWith('zh');
    };
    const exempt = (el: Element): boolean => el.closest('code, kbd, samp, script, style, template, [translate="no"]') !== null || otherLanguage(el);
    // an option's text counts when its select is shown: every option is read once the list opens
    const shown = (el: Element): boolean => {
      if (!el.checkVisibility({ visibilityProperty: true })) return false;
      const r = el.getBoundingClientRect();
      return r.width > 0 && r.height > 0;
    };
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n !== null; n = walker.nextNode()) {
      const el = n.parentElement;
      const text = n.textContent?.trim() ?? '';
      if (el === null || text === '' || exempt(el) || !shown(el.closest('select') ?? el)) continue;
      out.push({ text, where: 'text', selector: describe(el) });
    }
    for (const el of Array.from(document.body.querySelectorAll('[placeholder], [aria-label], [title], [alt]'))) {
      if (exempt(el)) continue;
      for (const attr of ['placeholder', 'aria-label', 'title', 'alt']) {
        const v = el.getAttribute(attr)?.trim();
        if (v) out.push({ text: v, where: attr, selector: describe(el) });
      }
    }
    out.push({ text: document.title, where: 'document.title', selector: 'title' });
    return out;
  });
  const found: Untranslated[] = [];
  for (const item of items) {
    const words = untranslatedWords(item.text, identifiers);
    if (words.length > 0)
      found.push({ words, text: item.text.length > 80 ? `${item.text.slice(0, 77)}...` : item.text, where: item.where, selector: item.selector });
  }
  return found;
}

export const describeUntranslated = (found: Untranslated[]): string[] =>
  found.map((u) => `untranslated ${u.words.map((w) => `"${w}"`).join(', ')} in ${u.where} of ${u.selector}: "${u.text}"`);

// ---------------------------------------------------------------- (d) times in the page's time zone

/** the ways a clock time may be written: 14:05, 2:05 PM, 下午2:05 (with any separator Intl uses) */
export function clockTexts(utcMs: number, timeZone: string): { hour: number; minute: number; patterns: RegExp[] } {
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(utcMs);
  const hour = Number(parts.find((p) => p.type === 'hour')?.value);
  const minute = Number(parts.find((p) => p.type === 'minute')?.value);
  const mm = String(minute).padStart(2, '0');
  const h12 = hour % 12 === 0 ? 12 : hour % 12;
  const pm = hour >= 12;
  return {
    hour,
    minute,
    patterns: [
      new RegExp(`(?<![\\d:])0?${hour}:${mm}(?!\\d)`),
      new RegExp(`(?<![\\d:])0?${h12}:${mm}(?::\\d\\d)?\\s?${pm ? '(?:PM|pm|p\\.m\\.)' : '(?:AM|am|a\\.m\\.)'}`),
      new RegExp(`${pm ? '(?:下午|晚上|中午)' : '(?:上午|凌晨|早上)'}\\s?0?${h12}:${mm}(?!\\d)`),
    ],
  };
}

export interface ShownTime {
  ok: boolean;
  /** what was expected, as HH:mm in the zone */
  expected: string;
  /** the same instant as HH:mm in UTC, and whether the page shows that instead */
  utc: string;
  showsUtc: boolean;
}

/**
 * Whether the page's visible text shows the instant `utcMs` as a clock time in `timeZone` (computed with Intl):
 * 14:05, 2:05 PM or 下午2:05 for 06:05 UTC in Asia/Shanghai. Says too when it shows the UTC clock time instead.
 */
export async function showsTimeIn(page: Page, utcMs: number, timeZone: string): Promise<ShownTime> {
  const text = await page.evaluate(() => document.body.innerText);
  const local = clockTexts(utcMs, timeZone);
  const utc = clockTexts(utcMs, 'UTC');
  const hhmm = (t: { hour: number; minute: number }): string => `${String(t.hour).padStart(2, '0')}:${String(t.minute).padStart(2, '0')}`;
  return {
    ok: local.patterns.some((p) => p.test(text)),
    expected: hhmm(local),
    utc: hhmm(utc),
    showsUtc: utc.patterns.some((p) => p.test(text)),
  };
}
