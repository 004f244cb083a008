// Cursor paging for every list route (protocols/src/api/common.ts: pageQuery, pageOf). A page is read newest first
// by the row's place in its table (a row id, or a position column where the table has no integer key), never by a
// timestamp: many records may share a millisecond, and a page that ended inside such a group would skip or repeat its
// rest. The cursor is the place of the page's last item; the next page reads the rows below it. One extra row is read
// to know whether there is a next page.
import type { Page } from '@labtrace/protocols/api';

export interface PageRequest {
  limit: number;
  cursor?: string | undefined;
}

/**
 * The page of rows read below the cursor (at most limit + 1, newest first): the first `limit` mapped to items, and the
 * cursor of the next page when there was one more row.
 */
export function pageOfRows<R, T>(rows: R[], page: PageRequest, positionOf: (row: R) => number, toItem: (row: R) => T): Page<T> {
  const limit = Math.max(1, Math.floor(page.limit));
  const shown = rows.slice(0, limit);
  const last = shown.at(-1);
  return { items: shown.map(toItem), next: rows.length > limit && last !== undefined ? String(positionOf(last)) : null };
}
