// A finding's text in both languages as the supervisor keeps it: one TEXT column holding the JSON `{"en","zh"}`. A
// finding recorded before the rules wrote Chinese holds its English sentence as plain text; it reads back with the
// English in both places (the Chinese falls back to the English).
import type { Bilingual } from './evidence.js';

/** the column's text of a bilingual text */
export const bilingualColumn = (b: Bilingual): string => JSON.stringify({ en: b.en, zh: b.zh });

/** a column's text read back: the JSON of both languages, or an English sentence of an older finding */
export function bilingualOfColumn(text: string): Bilingual {
  if (text.startsWith('{')) {
    try {
      const value = JSON.parse(text) as unknown;
      if (typeof value === 'object' && value !== null) {
        const { en, zh } = value as { en?: unknown; zh?: unknown };
        if (typeof en === 'string') return { en, zh: typeof zh === 'string' && zh !== '' ? zh : en };
      }
    } catch {
      // an English sentence that happens to start with a brace
    }
  }
  return { en: text, zh: text };
}
