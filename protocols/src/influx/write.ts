// Writes line protocol to InfluxDB and says what the answer means for the caller's retry policy:
// - 'v1': POST /write?db=&rp=&precision=ms (InfluxDB 1.x of any version, and 2.x/3.x through their v1 API);
// - 'v2': @influxdata/influxdb-client to /api/v2/write (InfluxDB 1.8+, 2.x, 3.x), with the client's buffering, timer
//   and retries out of the way: the caller holds what is to be retried, durably, not the client's memory.
// Nothing here retries: a write is answered once, as an InfluxOutcome.
import { HttpError, InfluxDB } from '@influxdata/influxdb-client';

export type InfluxTarget =
  | {
      api: 'v1';
      database: string;
      retentionPolicy?: string | undefined;
      /** sent as HTTP basic authentication (InfluxDB 1.x, and 2.x's v1 API with the token as the password) */
      username?: string | undefined;
      password?: string | undefined;
    }
  | { api: 'v2'; org: string; bucket: string; token: string };

/**
 * outage: retry later (network error, time-out, 408, 429, 5xx); refused-all: the server refuses every write (401, 403,
 * 404: credentials, database or bucket), an operator can fix it, retry later; refused: this write can never succeed
 * as it is (400 field type conflict, 413, 422 ...).
 */
export interface InfluxFailure {
  ok: false;
  kind: 'outage' | 'refused-all' | 'refused';
  error: string;
  status?: number;
}
export type InfluxOutcome = { ok: true } | InfluxFailure;

const MAX_ERROR_CHARS = 500;

export function classify(status: number, text: string): InfluxOutcome {
  const error = text.slice(0, MAX_ERROR_CHARS);
  if (status >= 200 && status < 300) return { ok: true };
  if (status === 408 || status === 429 || status >= 500 || status < 400) return { ok: false, kind: 'outage', status, error };
  if (status === 401 || status === 403 || status === 404) return { ok: false, kind: 'refused-all', status, error };
  return { ok: false, kind: 'refused', status, error };
}

/** InfluxDB answers errors as {"error": "..."} (1.x) or {"code": ..., "message": "..."} (2.x). */
export function errorText(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: unknown; message?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // not JSON: the text itself
  }
  return body.trim();
}

export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error ? `${err.message}: ${cause.message}` : err.message;
}

/** `path` under the base URL, keeping a path prefix (behind a proxy). */
export function influxUrl(base: string, path: string): URL {
  return new URL(path, base.endsWith('/') ? base : `${base}/`);
}

export function basicAuth(username: string, password: string | undefined): string {
  const bytes = new TextEncoder().encode(`${username}:${password ?? ''}`);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return `Basic ${btoa(binary)}`;
}

export interface InfluxWriterOptions {
  /** base URL of the server, such as http://127.0.0.1:8086 (a path prefix behind a proxy is kept) */
  url: string;
  target: InfluxTarget;
  /** every request is abandoned after this long and counts as an outage (default 10 s) */
  timeoutMs?: number;
}

export class InfluxWriter {
  private readonly timeoutMs: number;
  private readonly client: InfluxDB | undefined;

  constructor(private readonly options: InfluxWriterOptions) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    if (options.target.api === 'v2') this.client = new InfluxDB({ url: options.url, token: options.target.token, timeout: this.timeoutMs });
  }

  /** Writes lines with millisecond timestamps in one request; never throws. */
  async write(lines: readonly string[]): Promise<InfluxOutcome> {
    try {
      if (this.options.target.api === 'v1') return await this.writeV1(this.options.target, lines);
      return await this.writeV2(this.options.target, lines);
    } catch (err) {
      return { ok: false, kind: 'outage', error: describeError(err) };
    }
  }

  private async writeV1(target: Extract<InfluxTarget, { api: 'v1' }>, lines: readonly string[]): Promise<InfluxOutcome> {
    const url = influxUrl(this.options.url, 'write');
    url.searchParams.set('db', target.database);
    if (target.retentionPolicy !== undefined) url.searchParams.set('rp', target.retentionPolicy);
    url.searchParams.set('precision', 'ms');
    const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' };
    if (target.username !== undefined) headers['authorization'] = basicAuth(target.username, target.password);
    const signal = AbortSignal.timeout(this.timeoutMs);
    const response = await fetch(url, { method: 'POST', headers, body: lines.join('\n'), signal });
    const body = await response.text();
    if (response.ok) return { ok: true };
    return classify(response.status, errorText(body) || response.headers.get('x-influxdb-error') || response.statusText);
  }

  private async writeV2(target: Extract<InfluxTarget, { api: 'v2' }>, lines: readonly string[]): Promise<InfluxOutcome> {
    const client = this.client;
    if (!client) throw new Error('no InfluxDB v2 client');
    // A write API per write: flush() settles with this write's own answer.
    const writeApi = client.getWriteApi(target.org, target.bucket, 'ms', {
      batchSize: lines.length + 1,
      maxBatchBytes: Number.POSITIVE_INFINITY,
      flushInterval: 0,
      maxRetries: 0,
      // returning a promise takes the failure out of the client's own retry and logging
      writeFailed: (error: Error) => Promise.reject(error),
    });
    try {
      writeApi.writeRecords(lines as string[]);
      await writeApi.flush();
      return { ok: true };
    } catch (err) {
      if (err instanceof HttpError) return classify(err.statusCode, errorText(err.body ?? '') || err.message);
      return { ok: false, kind: 'outage', error: describeError(err) };
    } finally {
      writeApi.dispose();
    }
  }
}
