// A paged list a view shows (runs, certificates, samples, ...): the first page on mount and whenever its filters
// change, "show more" for the next page (the server's cursor), and a fresh first page when the server announces a
// change to the list over socket.io (no polling). Filters are the route's query fields other than limit and cursor.
import { onBeforeUnmount, onMounted, ref, shallowRef, watch, type Ref, type ShallowRef, type WatchSource } from 'vue';
import type { ListName, Page } from '@labtrace/protocols/api';
import { ApiError } from '../api/client';
import { onListChanged } from '../live';

export interface PagedList<T> {
  items: ShallowRef<T[]>;
  /** true while a page loads */
  loading: Ref<boolean>;
  error: ShallowRef<ApiError | undefined>;
  /** true when the server has more items after the ones shown */
  more: Ref<boolean>;
  /** reads the next page and appends it */
  loadMore: () => Promise<void>;
  /** reads the first page again (the shown items are replaced) */
  reload: () => Promise<void>;
}

export interface PagedListOptions {
  /** re-read the first page when these change (the filters) */
  watch?: WatchSource[];
  /** re-read the first page when the server announces a change to these lists */
  lists?: readonly ListName[];
  /** items per page (the server's default when left out) */
  limit?: number;
}

/** `load(cursor, limit)` reads one page: `call(api.listRuns, { query: { ...filters, cursor, limit } })`. */
export function usePagedList<T>(
  load: (cursor: string | undefined, limit: number | undefined) => Promise<Page<T>>,
  options: PagedListOptions = {},
): PagedList<T> {
  const items = shallowRef<T[]>([]);
  const loading = ref(true);
  const error = shallowRef<ApiError>();
  const more = ref(false);
  let next: string | null = null;
  let generation = 0;
  // how many items the user has paged to: a re-read after a change shows as many again
  let shownPages = 1;

  async function read(cursor: string | undefined, append: boolean): Promise<void> {
    const mine = ++generation;
    loading.value = true;
    try {
      const page = await load(cursor, options.limit);
      if (mine !== generation) return;
      items.value = append ? [...items.value, ...page.items] : page.items;
      next = page.next;
      more.value = page.next !== null;
      error.value = undefined;
    } catch (err) {
      if (mine !== generation) return;
      error.value = err instanceof ApiError ? err : new ApiError(0, { error: err instanceof Error ? err.message : String(err), code: 'E_CLIENT' });
    } finally {
      if (mine === generation) loading.value = false;
    }
  }

  async function reload(): Promise<void> {
    shownPages = 1;
    await read(undefined, false);
  }
  async function loadMore(): Promise<void> {
    if (next === null) return;
    shownPages += 1;
    await read(next, true);
  }
  /** after a change: the first page again, then as many pages as the user had opened */
  async function refresh(): Promise<void> {
    const pages = shownPages;
    await read(undefined, false);
    for (let i = 1; i < pages && next !== null; i++) await read(next, true);
    shownPages = pages;
  }

  let unsubscribe: (() => void) | undefined;
  let pending: number | undefined;
  onMounted(() => {
    void reload();
    if (options.lists && options.lists.length > 0)
      unsubscribe = onListChanged(options.lists, () => {
        // a burst of changes (a run's samples, a batch import) reads the list once
        window.clearTimeout(pending);
        pending = window.setTimeout(() => void refresh(), 250);
      });
  });
  onBeforeUnmount(() => {
    unsubscribe?.();
    window.clearTimeout(pending);
  });
  if (options.watch && options.watch.length > 0) watch(options.watch, () => void reload());
  return { items, loading, error, more, loadMore, reload };
}
