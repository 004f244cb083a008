// Times as the user reads them: in the browser's time zone (Intl), written the ISO 8601 way with the zone's offset
// ("2026-12-07 21:05:03 GMT+8"), and ages and intervals in the user's language.
import { useI18n } from 'vue-i18n';
import { isoStyle } from '../format-time';
import type { Both } from './types';

/** the browser's time zone */
const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;

export function useFormat() {
  const { t, locale } = useI18n();
  const dateTime = (ms: number | null | undefined): string => {
    if (ms === null || ms === undefined) return t('common.never');
    return isoStyle(locale.value, ZONE, ms, true, true);
  };
  /** a duration: "3 h", "15 min", "2 d" in the language */
  const duration = (ms: number): string => {
    const unit = (value: number, u: 'day' | 'hour' | 'minute' | 'second'): string =>
      new Intl.NumberFormat(locale.value, { style: 'unit', unit: u, unitDisplay: 'short', maximumFractionDigits: 0 }).format(value);
    if (ms >= 2 * 86_400_000) return unit(ms / 86_400_000, 'day');
    if (ms >= 3_600_000) return unit(ms / 3_600_000, 'hour');
    if (ms >= 60_000) return unit(ms / 60_000, 'minute');
    return unit(ms / 1000, 'second');
  };
  /** a text the API gives in both languages, in the user's */
  const inLanguage = (b: Both | undefined, fallback = ''): string => (b === undefined ? fallback : locale.value === 'zh-CN' ? b.zh : b.en);
  /** the same with the language it is in, for the element's lang (a text whose Chinese is its English is English) */
  const inLanguageTagged = (b: Both): { text: string; lang: string } =>
    locale.value === 'zh-CN' && b.zh !== b.en ? { text: b.zh, lang: 'zh-CN' } : { text: b.en, lang: 'en' };
  return { dateTime, duration, inLanguage, inLanguageTagged };
}
