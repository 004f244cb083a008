// Writes line protocol to InfluxDB and says what the answer means for the caller's retry policy:
// - 'v1': POST /write?db=&rp=&precision=ms (InfluxDB 1.x of any version, and 2.x/3.x through their v1 API);
// - 'v2': @influxdata/influxdb-client to /api/v2/write (InfluxDB 1.8+, 2.x, 3.x), a write API per write, without
//   the client's buffering, timer and retries: the caller holds what is to be retried, durably, not a client's memory.
// Nothing here retries: a write is answered once, as an InfluxOutcome.
import http from 'node:http';
import https from 'node:https';
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
  /** v2: InfluxDB's own client */
  private readonly v2: { client: InfluxDB; org: string; bucket: string } | undefined;
  private readonly url: URL;
  private readonly headers: Record<string, string>;
  private readonly transport: typeof http | typeof https;
  /** keep-alive connections, one per write in flight; idle ones do not keep the process alive */
  private readonly agent: http.Agent;

  constructor(options: InfluxWriterOptions) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    const target = options.target;
    this.headers = { 'content-type': 'text/plain; charset=utf-8' };
    if (target.api === 'v1') {
      this.url = influxUrl(options.url, 'write');
      this.url.searchParams.set('db', target.database);
      if (target.retentionPolicy !== undefined) this.url.searchParams.set('rp', target.retentionPolicy);
      this.url.searchParams.set('precision', 'ms');
      if (target.username !== undefined) this.headers['authorization'] = basicAuth(target.username, target.password);
    } else {
      this.url = influxUrl(options.url, 'api/v2/write');
      this.v2 = {
        client: new InfluxDB({ url: options.url, token: target.token, timeout: this.timeoutMs }),
        org: target.org,
        bucket: target.bucket,
      };
    }
    this.transport = this.url.protocol === 'https:' ? https : http;
    this.agent = new this.transport.Agent({ keepAlive: true });
  }

  /** Writes lines with millisecond timestamps in one request; never throws. */
  write(lines: readonly string[]): Promise<InfluxOutcome> {
    return this.writeBody(lines.join('\n'));
  }

  /**
   * Writes a body of line protocol (lines with millisecond timestamps, joined by "\n") in one request; never throws.
   * Several calls may be in flight at once, each on its own keep-alive connection; the body is sent as it is (not
   * copied on the way).
   */
  writeBody(body: Uint8Array | string): Promise<InfluxOutcome> {
    if (this.v2 !== undefined)
      return this.writeV2(this.v2, typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    return new Promise((resolve) => {
      let settled = false;
      const settle = (outcome: InfluxOutcome): void => {
        if (settled) return;
        settled = true;
        resolve(outcome);
      };
      const outage = (err: unknown): void => settle({ ok: false, kind: 'outage', error: describeError(err) });
      const request = this.transport.request(
        this.url,
        {
          method: 'POST',
          headers: { ...this.headers, 'content-length': String(bytes.byteLength) },
          agent: this.agent,
          signal: AbortSignal.timeout(this.timeoutMs),
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', outage);
          response.on('end', () => {
            const status = response.statusCode ?? 0;
            if (status >= 200 && status < 300) return settle({ ok: true });
            const header = response.headers['x-influxdb-error'];
            const text = errorText(Buffer.concat(chunks).toString('utf8'));
            settle(classify(status, text || (typeof header === 'string' ? header : '') || (response.statusMessage ?? '')));
          });
        },
      );
      request.on('error', outage);
      request.end(bytes);
    });
  }

  private async writeV2(v2: { client: InfluxDB; org: string; bucket: string }, body: string): Promise<InfluxOutcome> {
    // a write API per write: flush() settles with this write's own answer, and writes in flight do not share one
    const writeApi = v2.client.getWriteApi(v2.org, v2.bucket, 'ms', {
      batchSize: 2,
      maxBatchBytes: Number.POSITIVE_INFINITY,
      flushInterval: 0,
      maxRetries: 0,
      // returning a promise takes the failure out of the client's own retry and logging
      writeFailed: (error: Error) => Promise.reject(error),
    });
    try {
      // the body's lines, joined by "\n", go as one record: the client sends them as they are
      writeApi.writeRecord(body);
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
