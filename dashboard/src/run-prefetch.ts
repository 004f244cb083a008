// A run's first data asked for as soon as the router knows the page is a run (a shared link opened, a click on a
// run): the run, its method and its stored records travel while the view's code (and chart.js) still load, instead of after.
// The view takes each answer once (`prefetchedOr`); an answer older than a few seconds, or one never taken, is
// dropped. The server checks the session as for any request: before the sign-in check answers, a refused prefetch
// is simply not used.
import type { Method, Run, RunAlarms, RunRecords } from '@labtrace/protocols/api';
import { api, call } from './api/client';

/** the most points a run view keeps per channel and the records it asks for (RunView.vue) */
export const RUN_MAX_POINTS = 20_000;
export const RUN_RECORDS_LIMIT = RUN_MAX_POINTS * 4;
/** an answer older than this is not used: the view asks again */
const FRESH_MS = 5_000;

interface Prefetched {
  at: number;
  run?: Promise<Run>;
  /** the versions of the run's method, asked for as soon as the run names it */
  method?: Promise<Method[]>;
  records?: Promise<RunRecords>;
  alarms?: Promise<RunAlarms>;
}
const prefetched = new Map<string, Prefetched>();

/** a promise nobody may await: its refusal is not an unhandled rejection (the view asks again) */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/** Starts loading what a run view shows first. */
export function prefetchRun(id: string): void {
  const params = { id };
  const run = quiet(call(api.getRun, { params }));
  prefetched.set(id, {
    at: Date.now(),
    run,
    method: quiet(run.then((r) => call(api.getMethod, { params: { id: r.method.id } }))),
    records: quiet(call(api.runRecords, { params, query: { limit: RUN_RECORDS_LIMIT } })),
    alarms: quiet(call(api.runAlarms, { params })),
  });
}

type Kind = 'run' | 'method' | 'records' | 'alarms';
type Answer<K extends Kind> = Awaited<NonNullable<Prefetched[K]>>;

/**
 * The prefetched answer for the run, once, else `load()`: also when the prefetch is stale or was refused (asked
 * before the user signed in, say), so the view never shows a refusal the prefetch met.
 */
export function prefetchedOr<K extends Kind>(id: string, kind: K, load: () => Promise<Answer<K>>): Promise<Answer<K>> {
  const entry = prefetched.get(id);
  if (!entry || Date.now() - entry.at > FRESH_MS) {
    prefetched.delete(id);
    return load();
  }
  const answer = entry[kind] as Promise<Answer<K>> | undefined;
  delete entry[kind];
  if (entry.run === undefined && entry.method === undefined && entry.records === undefined && entry.alarms === undefined) prefetched.delete(id);
  return answer === undefined ? load() : answer.catch(load);
}
