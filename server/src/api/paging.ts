// Cursor paging for every list route (protocols/src/api/common.ts: pageQuery, pageOf). A page is read newest first
// by the table's row id, never by a timestamp: many records may share a millisecond, and a page that ended inside
// such a group would skip or repeat its rest. The cursor is the row id of the page's last item; the next page reads
// the rows below it. One extra row is read to know whether there is a next page.
import type { Page } from '@labtrace/protocols/api';

export interface PageRequest {
  limit: number;
  cursor?: string | undefined;
}

/** The SQL pieces of a paged query over a table with a row id column (`rowid` or an INTEGER PRIMARY KEY). */
export interface PageSql {
  /** a condition to AND into the WHERE clause ('1' when there is no cursor) */
  where: string;
  /** its parameters */
  params: number[];
  /** `ORDER BY <column> DESC LIMIT <limit + 1>` */
  orderLimit: string;
}

/** The WHERE condition, parameters and ORDER BY ... LIMIT of a page over `column` (newest first). */
export function pageSql(page: PageRequest, column = 'rowid'): PageSql {
  const limit = Math.max(1, Math.floor(page.limit));
  const cursor = page.cursor === undefined ? undefined : Number(page.cursor);
  return {
    where: cursor === undefined ? '1' : `${column} < ?`,
    params: cursor === undefined ? [] : [cursor],
    orderLimit: `ORDER BY ${column} DESC LIMIT ${limit + 1}`,
  };
}

/**
 * The page of rows read with pageSql (at most limit + 1, newest first): the first `limit` mapped to items, and the
 * cursor of the next page when there was one more row.
 */
export function pageOfRows<R, T>(rows: R[], page: PageRequest, positionOf: (row: R) => number, toItem: (row: R) => T): Page<T> {
  const limit = Math.max(1, Math.floor(page.limit));
  const shown = rows.slice(0, limit);
  const last = shown.at(-1);
  return { items: shown.map(toItem), next: rows.length > limit && last !== undefined ? String(positionOf(last)) : null };
}
