// The console's languages: its own two catalogues (locales/<language>.json, compiled when the dashboard is built),
// the browser's language unless the user chose one on this device; `<html lang>` follows.
import { createI18n } from 'vue-i18n';
import en from './locales/en.json';
import zhCN from './locales/zh-CN.json';

export const LANGUAGES = ['zh-CN', 'en'] as const;
export type Language = (typeof LANGUAGES)[number];

const STORED = 'labtrace.supervisor.locale';

/** the first of the browser's languages the console offers (zh-TW, zh-HK read simplified Chinese better than English) */
export function languageFor(preferred: readonly string[]): Language {
  for (const tag of preferred) {
    const base = tag.toLowerCase().split('-')[0];
    if (base === 'zh') return 'zh-CN';
    if (base === 'en') return 'en';
  }
  return 'en';
}

function initial(): Language {
  try {
    const v = localStorage.getItem(STORED);
    if (v === 'zh-CN' || v === 'en') return v;
  } catch {
    // storage refused: the browser's language
  }
  return languageFor(navigator.languages.length > 0 ? navigator.languages : [navigator.language]);
}

export const i18n = createI18n({
  legacy: false,
  locale: initial(),
  fallbackLocale: 'en',
  messages: { en, 'zh-CN': zhCN },
  missingWarn: import.meta.env.DEV,
  fallbackWarn: import.meta.env.DEV,
});
document.documentElement.lang = i18n.global.locale.value;

export function setLanguage(language: Language): void {
  i18n.global.locale.value = language;
  document.documentElement.lang = language;
  try {
    localStorage.setItem(STORED, language);
  } catch {
    // the choice lasts for this page
  }
}
