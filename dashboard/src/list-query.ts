// The filters of the lists as their addresses carry them (#/runs?state=running&from=..., #/certificates?status=draft,
// #/instruments?calibration=due-soon): read from the route's query (anything not a known value is left out, so a
// hand-made address shows the unfiltered list, never an error) and written back when the user changes a filter, so
// that a filtered list can be bookmarked or shared. The overview's figures link to the lists this way.
import type { LocationQuery } from 'vue-router';
import type { CALIBRATION_STATES as CALIBRATION_STATE_LIST, CertificateStatus, RunState, RunTime, RunVerdict } from '@labtrace/protocols/api';

type CalibrationState = (typeof CALIBRATION_STATE_LIST)[number];

const RUN_STATES: readonly RunState[] = ['planned', 'running', 'completed', 'aborted'];
const RUN_VERDICTS: readonly RunVerdict[] = ['pass', 'fail', 'no-decision'];
const RUN_TIMES: readonly RunTime[] = ['created', 'started', 'ended'];
const CERTIFICATE_STATUSES: readonly CertificateStatus[] = ['draft', 'valid', 'amended', 'revoked'];
const CALIBRATION_STATES: readonly CalibrationState[] = ['valid', 'due-soon', 'expired', 'out-of-service', 'never-calibrated'];

/** the runs list's filters (times: ms since the epoch) */
export interface RunFilters {
  q?: string;
  state?: RunState;
  from?: number;
  to?: number;
  time?: RunTime;
  verdict?: RunVerdict;
  alarms?: 'open';
}

/** the certificates list's filters (issue times: ms since the epoch) */
export interface CertificateFilters {
  q?: string;
  status?: CertificateStatus;
  from?: number;
  to?: number;
}

/** the instrument register's filters */
export interface InstrumentFilters {
  q?: string;
  calibration?: CalibrationState;
  connected?: 'true' | 'false';
}

function text(query: LocationQuery, name: string): string | undefined {
  const v = query[name];
  const s = Array.isArray(v) ? v[0] : v;
  return typeof s === 'string' && s.trim() !== '' ? s.trim().slice(0, 100) : undefined;
}
function oneOf<T extends string>(query: LocationQuery, name: string, values: readonly T[]): T | undefined {
  const s = text(query, name);
  return values.find((v) => v === s);
}
function ms(query: LocationQuery, name: string): number | undefined {
  const s = text(query, name);
  return s !== undefined && /^\d{1,16}$/.test(s) ? Number(s) : undefined;
}
/** an object without its undefined fields (the filters' types have optional fields, never undefined ones) */
function defined<T extends object>(o: { [K in keyof T]: T[K] | undefined }): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export const runFiltersOf = (query: LocationQuery): RunFilters =>
  defined<RunFilters>({
    q: text(query, 'q'),
    state: oneOf(query, 'state', RUN_STATES),
    from: ms(query, 'from'),
    to: ms(query, 'to'),
    time: oneOf(query, 'time', RUN_TIMES),
    verdict: oneOf(query, 'verdict', RUN_VERDICTS),
    alarms: oneOf(query, 'alarms', ['open'] as const),
  });

export const certificateFiltersOf = (query: LocationQuery): CertificateFilters =>
  defined<CertificateFilters>({
    q: text(query, 'q'),
    status: oneOf(query, 'status', CERTIFICATE_STATUSES),
    from: ms(query, 'from'),
    to: ms(query, 'to'),
  });

export const instrumentFiltersOf = (query: LocationQuery): InstrumentFilters =>
  defined<InstrumentFilters>({
    q: text(query, 'q'),
    calibration: oneOf(query, 'calibration', CALIBRATION_STATES),
    connected: oneOf(query, 'connected', ['true', 'false'] as const),
  });

/** filters as a route query (every value a string) */
export const queryOf = (filters: object): Record<string, string> => Object.fromEntries(Object.entries(filters).map(([k, v]) => [k, String(v)]));

/** whether a route's query is these filters already (the address need not change) */
export const sameQuery = (query: LocationQuery, filters: object): boolean => {
  const want = queryOf(filters);
  const keys = Object.keys(query);
  return keys.length === Object.keys(want).length && keys.every((k) => query[k] === want[k]);
};
