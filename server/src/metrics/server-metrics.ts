// The server's Prometheus metrics (docs/operations.md, "Metrics"): one registry per server (several servers may share a
// process), read mostly from the state the server keeps anyway (the ingest's counters, the store's capacity, the log)
// when a scrape asks. The hot paths add only the ACK latency (an event of the ingest) and one timing per HTTP request.
import type http from 'node:http';
import { isLoopback, LabtraceError, LISTEN_ADDRESS_HINT, parseListen } from '@labtrace/protocols';
import { MetricsEndpoint, METRICS_PATH, notFound, pathOf, setOrAbsent } from '@labtrace/protocols/node';
import type { Request } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Ingest } from '../ingest/ingest.js';
import { LogStore } from '../log/log-store.js';
import type { TransparencyLog } from '../log/transparency-log.js';
import type { Logger } from '../log.js';
import { readSecretFile } from '../secret-env.js';
import type { ClockHealth } from '../clock/server-clock.js';
import type { CapacityStatus } from '../store/capacity.js';
import type { SeriesStatus } from '../store/series/series-store.js';
import type { RetentionStatus } from '../retention/retention.js';
import { MIN_METRICS_TOKEN_CHARS, type MetricsConfig } from './config.js';

export { METRICS_PATH } from '@labtrace/protocols/node';
/** the variable that holds the bearer token (it overrides metrics.tokenFile) */
export const METRICS_TOKEN_ENV = 'LABTRACE_METRICS_TOKEN';

/** What the metrics read from the server: closures, so that parts made later (the live hub, the log) are reached. */
export interface MetricsSources {
  ingest: Ingest;
  capacity: () => CapacityStatus;
  /** the transparency log once open (in process over SQLite, or the shared LogStore) */
  log: () => TransparencyLog | LogStore | undefined;
  /** socket.io clients connected to this node */
  liveClients: () => number;
  series: () => SeriesStatus;
  /** the retention job's outcomes (absent: no job on this node) */
  retention?: () => RetentionStatus;
  /** the server's own clock against NTP (clock/server-clock.ts) */
  clock?: () => ClockHealth;
}

/** latencies from a millisecond to a minute */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** the bearer token: LABTRACE_METRICS_TOKEN, else metrics.tokenFile's content; at least MIN_METRICS_TOKEN_CHARS */
export function metricsTokenOf(config: MetricsConfig, env: NodeJS.ProcessEnv): string | undefined {
  const fromEnv = env[METRICS_TOKEN_ENV];
  const [token, field] =
    fromEnv !== undefined && fromEnv !== ''
      ? [fromEnv, `environment: ${METRICS_TOKEN_ENV}`]
      : config.tokenFile === undefined
        ? [undefined, '']
        : [readSecretFile(config.tokenFile, 'metrics.tokenFile').trim(), `metrics.tokenFile: ${config.tokenFile}`];
  if (token !== undefined && token.length < MIN_METRICS_TOKEN_CHARS)
    // the token's length only: never its content
    throw new LabtraceError(
      'E_CONFIG',
      `${field}: the metrics token has ${token.length} characters; at least ${MIN_METRICS_TOKEN_CHARS} are needed (for example: openssl rand -hex 32)`,
    );
  return token;
}

/**
 * Where and how the metrics are served, checked: the token (if any) and the listener of their own (if any). A listener
 * off loopback without a token is refused.
 */
export function metricsEndpointOf(
  config: MetricsConfig,
  env: NodeJS.ProcessEnv,
): { token: string | undefined; listen: { host: string; port: number } | undefined } {
  const token = metricsTokenOf(config, env);
  const listen = config.listen === undefined ? undefined : parseListen(config.listen);
  if (config.listen !== undefined && listen === undefined) throw new LabtraceError('E_CONFIG', `metrics.listen: ${LISTEN_ADDRESS_HINT}`);
  if (listen !== undefined && token === undefined && !isLoopback(listen.host))
    throw new LabtraceError(
      'E_CONFIG',
      `metrics.listen: ${listen.host} is not a loopback address: metrics served there need a token (metrics.tokenFile or ${METRICS_TOKEN_ENV})`,
    );
  return { token, listen };
}

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly endpoint: MetricsEndpoint;
  private readonly listen: { host: string; port: number } | undefined;
  private port: number | undefined;
  /** whether the metrics are served at all (a token, a listener of their own, or both) */
  readonly served: boolean;
  private influxBacklog = false;
  private readonly httpDuration: Histogram<'method' | 'route' | 'status_class'>;
  private readonly ackLatency: Histogram;
  private readonly onAcked = (_gateway: string, latencyMs: number): void => this.ackLatency.observe(latencyMs / 1000);

  constructor(
    config: MetricsConfig,
    private readonly sources: MetricsSources,
    private readonly logger: Logger,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    const { token, listen } = metricsEndpointOf(config, env);
    this.listen = listen;
    this.endpoint = new MetricsEndpoint(this.registry, {
      token,
      realm: 'labtrace metrics',
      onError: (err) => this.logger.error({ err: String(err) }, 'metrics could not be collected'),
    });
    const registers = [this.registry];
    this.served = token !== undefined || listen !== undefined;
    // Node's default metrics only when they are served: each registry's event-loop monitor samples every 10 ms and
    // cannot be stopped, so a server whose metrics nobody reads pays nothing for them
    if (this.served) collectDefaultMetrics({ register: this.registry, prefix: 'labtrace_' });
    const counters = sources.ingest.counters;
    new Counter({
      name: 'labtrace_ingest_batches_received_total',
      help: 'DATA messages received that parse as a batch (stored, duplicate or refused)',
      registers,
      collect() {
        this.reset();
        this.inc(counters.received);
      },
    });
    new Counter({
      name: 'labtrace_ingest_measurements_received_total',
      help: 'measurements (samples) in the batches received',
      registers,
      collect() {
        this.reset();
        this.inc(counters.receivedSamples);
      },
    });
    new Counter({
      name: 'labtrace_ingest_batches_stored_total',
      help: 'batches stored (verified, chained, committed)',
      registers,
      collect() {
        this.reset();
        this.inc(counters.batches);
      },
    });
    new Counter({
      name: 'labtrace_ingest_measurements_stored_total',
      help: 'measurements (samples) stored',
      registers,
      collect() {
        this.reset();
        this.inc(counters.samples);
      },
    });
    new Counter({
      name: 'labtrace_ingest_duplicate_measurements_total',
      help: 'measurements received again in batches stored before (acknowledged again, not stored twice)',
      registers,
      collect() {
        this.reset();
        this.inc(counters.duplicates);
      },
    });
    const ingest = sources.ingest;
    new Counter({
      name: 'labtrace_ingest_batches_refused_total',
      help: 'DATA messages refused (not acknowledged), by reason: the security event kind, store-low-space, store-write-failed, store-failed or invalid',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(ingest.refusedByReason)) this.inc({ reason }, n);
      },
    });
    this.ackLatency = new Histogram({
      name: 'labtrace_ingest_ack_latency_seconds',
      help: "from a batch's arrival at the ingest to its ACK (stored, or stored before)",
      buckets: LATENCY_BUCKETS,
      registers,
    });
    new Gauge({
      name: 'labtrace_log_size_entries',
      help: 'entries in the transparency log',
      registers,
      async collect() {
        const log = sources.log();
        if (log === undefined) return;
        // the in-process log knows its size; the shared store reads it
        this.set(log instanceof LogStore ? await log.size() : log.size);
      },
    });
    new Gauge({
      name: 'labtrace_log_checkpoint_age_seconds',
      help: "time since the transparency log's latest checkpoint was signed",
      registers,
      async collect() {
        const log = sources.log();
        if (log === undefined) return;
        this.set(Math.max(0, (Date.now() - (await log.latestCheckpoint()).at) / 1000));
      },
    });
    new Gauge({
      name: 'labtrace_log_checkpoint_size_entries',
      help: "the tree size the transparency log's latest checkpoint commits to",
      registers,
      async collect() {
        const log = sources.log();
        if (log === undefined) return;
        this.set((await log.latestCheckpoint()).size);
      },
    });
    new Gauge({
      name: 'labtrace_retention_failures',
      help: 'scheduled retention runs that failed since the server started (expired records not removed); 0 without a retention policy',
      registers,
      collect() {
        this.set(sources.retention?.().failures ?? 0);
      },
    });
    new Gauge({
      name: 'labtrace_retention_last_success_timestamp_seconds',
      help: 'when the last scheduled retention run removed what was due (Unix time); 0 until one has',
      registers,
      collect() {
        this.set((sources.retention?.().lastSuccessAt ?? 0) / 1000);
      },
    });
    new Gauge({
      name: 'labtrace_live_clients',
      help: 'socket.io clients connected to this node',
      registers,
      collect() {
        this.set(sources.liveClients());
      },
    });
    new Gauge({
      name: 'labtrace_store_free_bytes',
      help: "free space for the server on the data directory's filesystem (absent until measured)",
      registers,
      collect() {
        setOrAbsent(this, sources.capacity().freeBytes);
      },
    });
    new Gauge({
      name: 'labtrace_store_reserve_bytes',
      help: 'the free space the store keeps: below it, batches are refused',
      registers,
      collect() {
        this.set(sources.capacity().reserveBytes);
      },
    });
    new Gauge({
      name: 'labtrace_store_accepting',
      help: '1 while the store takes batches (status ok), 0 below the reserve or after a write failure',
      registers,
      collect() {
        this.set(sources.capacity().status === 'ok' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'labtrace_clock_offset_seconds',
      help: "this server's clock minus NTP's (positive: ahead), from the last answer (absent without NTP or before an answer)",
      registers,
      collect() {
        const offset = sources.clock?.().ntp?.offsetMs;
        setOrAbsent(this, offset === undefined || offset === null ? undefined : offset / 1000);
      },
    });
    new Gauge({
      name: 'labtrace_clock_ntp_up',
      help: '1 when an NTP server answered the last round, 0 when none did or before the first (absent without NTP configured)',
      registers,
      collect() {
        const ntp = sources.clock?.().ntp;
        setOrAbsent(this, ntp === undefined || ntp === null ? undefined : ntp.answering ? 1 : 0);
      },
    });
    this.httpDuration = new Histogram({
      name: 'labtrace_http_request_duration_seconds',
      help: "HTTP requests by method, route template (the matched route's path; 'unmatched' for static files and unknown paths) and status class",
      labelNames: ['method', 'route', 'status_class'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
  }

  /** whether GET /metrics is answered on the server's HTTP port (a token and no listener of its own) */
  get onHttpPort(): boolean {
    return this.endpoint.hasToken && this.listen === undefined;
  }

  /** the port of the metrics' own listener, once listening */
  get listenPort(): number | undefined {
    return this.port;
  }

  /**
   * The server's request listener, timed by route template and status class; GET /metrics answered here when the
   * metrics are served on the HTTP port, and a 404 for it otherwise (whatever the app would answer).
   */
  listenerFor(app: http.RequestListener): http.RequestListener {
    return (req, res) => {
      if (pathOf(req.url) === METRICS_PATH) {
        if (this.onHttpPort) this.endpoint.scrape(req, res);
        else notFound(res);
        return;
      }
      if (!this.served) {
        app(req, res);
        return;
      }
      const start = performance.now();
      res.once('finish', () => {
        // the matched route's template (express sets req.route), never the URL: the label's values stay bounded
        const route = (req as Partial<Request>).route as { path?: unknown } | undefined;
        this.httpDuration.observe(
          {
            method: req.method ?? 'GET',
            route: typeof route?.path === 'string' ? route.path : 'unmatched',
            status_class: `${Math.floor(res.statusCode / 100)}xx`,
          },
          (performance.now() - start) / 1000,
        );
      });
      app(req, res);
    };
  }

  /** Opens the metrics' own listener (metrics.listen), if configured; subscribes to the ingest's ACKs. */
  async start(): Promise<void> {
    this.sources.ingest.on('acked', this.onAcked);
    // InfluxDB's backlog only where the server forwards to it: asked once the store is open (at start, not before)
    if (this.served && !this.influxBacklog && this.sources.series().kind === 'influxdb') {
      this.influxBacklog = true;
      const registers = [this.registry];
      const sources = this.sources;
      new Gauge({
        name: 'labtrace_influx_backlog_batches',
        help: 'stored batches not yet written to InfluxDB',
        registers,
        collect() {
          this.set(sources.series().backlog.batches);
        },
      });
      new Gauge({
        name: 'labtrace_influx_backlog_measurements',
        help: 'stored measurements not yet written to InfluxDB',
        registers,
        collect() {
          this.set(sources.series().backlog.samples);
        },
      });
    }
    const listen = this.listen;
    if (listen === undefined) return;
    this.port = await this.endpoint.listen(listen.host, listen.port);
    this.logger.info({ host: listen.host, port: this.port, token: this.endpoint.hasToken }, 'metrics listening');
  }

  async stop(): Promise<void> {
    this.sources.ingest.off('acked', this.onAcked);
    this.port = undefined;
    await this.endpoint.close();
  }
}
