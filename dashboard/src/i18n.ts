// The dashboard's languages: vue-i18n (Composition API) with one catalogue per language, split by area into
// locales/<language>/<area>.json (keys `<area>.<key>`). The language follows the user's saved choice, else the
// browser's; `<html lang>` follows it. Add a language: docs/dashboard.md.
import { createI18n } from 'vue-i18n';

export const LANGUAGES = ['zh-CN', 'en'] as const;
export type Language = (typeof LANGUAGES)[number];

type Catalogue = Record<string, Record<string, unknown>>;

// one chunk per language (locales/<language>.ts merges its area files, compiled when the dashboard is built): the
// page loads only the language it shows
const catalogues: Record<Language, () => Promise<{ default: Catalogue }>> = {
  'zh-CN': () => import('./locales/zh-CN'),
  en: () => import('./locales/en'),
};
const loading = new Map<Language, Promise<void>>();

/** Loads a language's catalogue once (every later call answers the same promise). */
export function loadLanguage(language: Language): Promise<void> {
  let pending = loading.get(language);
  if (!pending) {
    pending = catalogues[language]().then((m) => i18n.global.setLocaleMessage(language, m.default as never));
    // a failed load (the network) is tried again on the next call
    pending.catch(() => loading.delete(language));
    loading.set(language, pending);
  }
  return pending;
}

/** The language for the browser's preferences: the first supported one, matched by language when the region differs. */
export function languageFor(preferred: readonly string[]): Language {
  for (const tag of preferred) {
    const exact = LANGUAGES.find((l) => l.toLowerCase() === tag.toLowerCase());
    if (exact) return exact;
    const base = tag.toLowerCase().split('-')[0];
    // zh-TW, zh-HK read simplified Chinese better than English; the lab's reports are zh-CN
    if (base === 'zh') return 'zh-CN';
    if (base === 'en') return 'en';
  }
  return 'en';
}

export const browserLanguage = (): Language =>
  languageFor(typeof navigator === 'undefined' ? [] : navigator.languages.length > 0 ? navigator.languages : [navigator.language]);

/** where a choice made before signing in (or when the server cannot keep it) is remembered on this device */
const STORED = 'labtrace.locale';
function storedLanguage(): Language | undefined {
  try {
    const v = typeof localStorage === 'undefined' ? null : localStorage.getItem(STORED);
    return (LANGUAGES as readonly string[]).includes(v ?? '') ? (v as Language) : undefined;
  } catch {
    return undefined; // storage refused (private mode): the browser's language
  }
}

/** The language when the user has saved none: the one chosen on this device, else the browser's. */
export const defaultLanguage = (): Language => storedLanguage() ?? browserLanguage();

/** Remembers (or with undefined forgets) the language chosen on this device. */
export function rememberLanguage(language: Language | undefined): void {
  try {
    if (language === undefined) localStorage.removeItem(STORED);
    else localStorage.setItem(STORED, language);
  } catch {
    // storage refused: the choice lasts for this page
  }
}

export const i18n = createI18n({
  legacy: false,
  locale: defaultLanguage(),
  fallbackLocale: 'en',
  messages: {},
  // a missing key is a test failure (test/catalogues), not a console warning in production
  missingWarn: import.meta.env.DEV,
  fallbackWarn: import.meta.env.DEV,
});

/** the language last asked for: a slower load of an earlier choice does not win */
let wanted: Language | undefined;

/** Switches the language of every view and of `<html lang>`, once its catalogue is loaded. */
export async function setLanguage(language: Language): Promise<void> {
  wanted = language;
  await loadLanguage(language);
  if (wanted !== language) return;
  i18n.global.locale.value = language;
  document.documentElement.lang = language;
}

export const isLanguage = (value: unknown): value is Language => (LANGUAGES as readonly unknown[]).includes(value);
document.documentElement.lang = i18n.global.locale.value;
/** the first language's catalogue, asked for as the page starts (main.ts mounts the app once it is in) */
export const firstLanguage: Promise<void> = loadLanguage(i18n.global.locale.value as Language);
