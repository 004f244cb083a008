// GET /metrics for the server and the gateway: the Prometheus text of a registry, behind a bearer token (compared in
// constant time) when one is configured, on a listener of its own when one is configured. Which of the two (or both)
// protects the metrics is the caller's config; without either they are not served at all.
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { LabtraceError } from '../errors.js';

export const METRICS_PATH = '/metrics';

/** What prom-client's Registry gives (the type is kept here so that this package needs no prom-client). */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();
const TEXT = 'text/plain; charset=utf-8';

export const pathOf = (url: string | undefined): string => (url ?? '').split('?')[0] ?? '';

export interface MetricsEndpointOptions {
  token: string | undefined;
  /** the realm of the 401's WWW-Authenticate */
  realm: string;
  /** told when collecting failed (the scrape answers 500) */
  onError: (err: unknown) => void;
}

export class MetricsEndpoint {
  private readonly token: Buffer | undefined;
  private readonly realm: string;
  private readonly onError: (err: unknown) => void;
  private listener: http.Server | undefined;

  constructor(
    private readonly source: MetricsSource,
    options: MetricsEndpointOptions,
  ) {
    this.token = options.token === undefined ? undefined : digest(options.token);
    this.realm = options.realm;
    this.onError = options.onError;
  }

  get hasToken(): boolean {
    return this.token !== undefined;
  }

  /** Whether the request carries the token (both sides hashed: the time taken says nothing of it), or none is needed. */
  authorized(req: http.IncomingMessage): boolean {
    if (this.token === undefined) return true;
    const given = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    return timingSafeEqual(digest(given ?? ''), this.token) && given !== undefined;
  }

  /** Answers a request for METRICS_PATH: 405 for another method, 401 without the token, else the metrics. */
  scrape(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': TEXT }).end('method not allowed\n');
      return;
    }
    if (!this.authorized(req)) {
      res
        .writeHead(401, { 'www-authenticate': `Bearer realm="${this.realm}"`, 'content-type': TEXT, 'cache-control': 'no-store' })
        .end('unauthorized\n');
      return;
    }
    this.source.metrics().then(
      (text) =>
        res.writeHead(200, { 'content-type': this.source.contentType, 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : text),
      (err: unknown) => {
        this.onError(err);
        res.writeHead(500, { 'content-type': TEXT }).end('metrics could not be collected\n');
      },
    );
  }

  /** A listener of its own (`metrics.listen`): METRICS_PATH and nothing else. */
  async listen(host: string, port: number): Promise<number> {
    const server = http.createServer((req, res) => {
      if (pathOf(req.url) === METRICS_PATH) this.scrape(req, res);
      else notFound(res);
    });
    this.listener = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new LabtraceError(
            err.code === 'EADDRINUSE' ? 'E_PORT_IN_USE' : 'E_CONFIG',
            `metrics.listen: ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'already in use' : err.message}`,
            { cause: err },
          ),
        ),
      );
      server.listen(port, host, () => resolve());
    });
    const address = server.address();
    return typeof address === 'object' && address !== null ? address.port : port;
  }

  async close(): Promise<void> {
    const server = this.listener;
    this.listener = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

export function notFound(res: http.ServerResponse): void {
  res.writeHead(404, { 'content-type': TEXT }).end('not found\n');
}

/** What setOrAbsent needs of a prom-client Gauge (structural: this package does not depend on prom-client). */
export interface ResettableGauge {
  set(value: number): void;
  reset(): void;
}

/**
 * Sets a gauge without labels to `value`, or leaves its series out of the scrape while there is none (before a first
 * measurement, without the feature configured): prom-client's reset() keeps such a gauge at 0, a value that would
 * read as a measurement (an offset of 0 s, no free space). Its table of series is emptied instead, which the text
 * format then prints as the metric's HELP and TYPE alone (tested in the metrics tests of the server and the gateway).
 */
export function setOrAbsent(gauge: ResettableGauge, value: number | null | undefined): void {
  gauge.reset();
  if (value === null || value === undefined) (gauge as unknown as { hashMap: Record<string, unknown> }).hashMap = {};
  else gauge.set(value);
}
