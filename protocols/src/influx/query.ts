// Reads InfluxDB with InfluxQL on /query, which 1.x, 2.x (through its DBRP mappings) and 3.x all serve:
// HTTP basic authentication for 1.x, a token for 2.x and 3.x. Timestamps come back in epoch milliseconds.
import { LabtraceError } from '../errors.js';
import { basicAuth, describeError, errorText, influxUrl } from './write.js';

export type InfluxQueryAuth =
  { kind: 'none' } | { kind: 'basic'; username: string; password?: string | undefined } | { kind: 'token'; token: string };

export interface InfluxQueryOptions {
  url: string;
  database: string;
  retentionPolicy?: string | undefined;
  auth: InfluxQueryAuth;
  timeoutMs?: number;
}

export interface InfluxSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

export interface InfluxQueryAnswer {
  results?: { error?: string; series?: InfluxSeries[] }[];
  error?: string;
}

/** The rows of an InfluxQL answer (HTTP, or the CLI's -format json) as objects, each with its series name and tags. */
export function influxRows(answer: InfluxQueryAnswer, q = ''): Record<string, unknown>[] {
  if (answer.error) throw new LabtraceError('E_INFLUX_QUERY', `${q}: ${answer.error}`);
  const rows: Record<string, unknown>[] = [];
  for (const result of answer.results ?? []) {
    if (result.error) throw new LabtraceError('E_INFLUX_QUERY', `${q}: ${result.error}`);
    for (const series of result.series ?? []) {
      for (const values of series.values) {
        const row: Record<string, unknown> = { name: series.name, ...series.tags };
        series.columns.forEach((column, i) => (row[column] = values[i]));
        rows.push(row);
      }
    }
  }
  return rows;
}

/** An InfluxQL string literal ('...'), for tag values in WHERE clauses. */
export const influxString = (s: string): string => `'${s.replace(/[\\']/g, (c) => `\\${c}`)}'`;
/** An InfluxQL identifier ("..."), for measurement names. */
export const influxIdentifier = (s: string): string => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

export class InfluxQuery {
  constructor(private readonly options: InfluxQueryOptions) {}

  /** Runs a read-only InfluxQL query; rows of every series, timestamps in ms. Throws E_INFLUX_QUERY on any failure. */
  async rows(q: string): Promise<Record<string, unknown>[]> {
    const url = influxUrl(this.options.url, 'query');
    url.searchParams.set('db', this.options.database);
    if (this.options.retentionPolicy !== undefined) url.searchParams.set('rp', this.options.retentionPolicy);
    url.searchParams.set('epoch', 'ms');
    url.searchParams.set('q', q);
    const headers: Record<string, string> = { accept: 'application/json' };
    const auth = this.options.auth;
    if (auth.kind === 'basic') headers['authorization'] = basicAuth(auth.username, auth.password);
    else if (auth.kind === 'token') headers['authorization'] = `Token ${auth.token}`;
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, { headers, signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000) });
      text = await response.text();
    } catch (err) {
      throw new LabtraceError('E_INFLUX_UNAVAILABLE', `InfluxDB query failed: ${describeError(err)}`, { cause: err });
    }
    if (!response.ok) throw new LabtraceError('E_INFLUX_QUERY', `InfluxDB query: HTTP ${response.status}: ${errorText(text)}`);
    return influxRows(JSON.parse(text) as InfluxQueryAnswer, q);
  }
}
