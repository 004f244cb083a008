// The gateway's Prometheus metrics on a listener of their own (config `metrics`, docs/operations.md): the outbox per
// sink, each instrument's polls, errors, latency and breaker, the batches signed, sent and acknowledged. Read from the
// state the gateway keeps when a scrape asks; only the latency histogram is fed as polls happen (the sources' event).
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { LabtraceError } from '@labtrace/protocols';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { GatewayMetricsEndpoint } from '../config.js';
import type { Logger } from '../log.js';
import type { Outbox } from '../outbox/outbox.js';
import type { InstrumentSource } from '../source.js';
import type { MqttUplink } from '../uplink/mqtt-uplink.js';

export const METRICS_PATH = '/metrics';

/** What the metrics read of the gateway. */
export interface GatewayParts {
  sources: readonly InstrumentSource[];
  outbox: Outbox;
  /** the sinks that confirm the outbox's batches (mqtt, and influx with a historian) */
  sinks: readonly string[];
  uplink: MqttUplink;
  /** the outbox's bound, in samples */
  maxSamples: number;
}

/** a millisecond to half a minute: a Modbus reply, a line instrument's answer, a timeout */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BREAKER_STATES = ['closed', 'open', 'half-open'] as const;

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly token: Buffer | undefined;
  private listener: http.Server | undefined;
  private readonly acked: Counter;
  private readonly onAcked = (): void => this.acked.inc();

  constructor(
    private readonly parts: GatewayParts,
    private readonly endpoint: GatewayMetricsEndpoint,
    private readonly logger: Logger,
  ) {
    this.token = endpoint.token === undefined ? undefined : digest(endpoint.token);
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'labtrace_' });
    const { sources, outbox, sinks, uplink } = parts;
    new Gauge({
      name: 'labtrace_gateway_outbox_measurements',
      help: 'measurements (samples) in batches the sink has not confirmed',
      labelNames: ['sink'],
      registers,
      collect() {
        for (const sink of sinks) this.set({ sink }, outbox.heldFor(sink));
      },
    });
    new Gauge({
      name: 'labtrace_gateway_outbox_limit_measurements',
      help: "the outbox's bound: new samples are refused once it holds this many",
      registers,
      collect() {
        this.set(parts.maxSamples);
      },
    });
    new Gauge({
      name: 'labtrace_gateway_outbox_oldest_unacked_age_seconds',
      help: 'age of the oldest batch the sink has not confirmed (0 when it has confirmed every batch)',
      labelNames: ['sink'],
      registers,
      collect() {
        const now = Date.now();
        for (const sink of sinks) {
          const at = outbox.oldestUnacked(sink);
          this.set({ sink }, at === undefined ? 0 : Math.max(0, (now - at) / 1000));
        }
      },
    });
    new Counter({
      name: 'labtrace_gateway_batches_signed_total',
      help: 'batches signed and committed to the outbox',
      registers,
      collect() {
        this.reset();
        this.inc(outbox.appended.signed);
      },
    });
    new Counter({
      name: 'labtrace_gateway_batches_stored_total',
      help: 'batches committed to the outbox (signed or not)',
      registers,
      collect() {
        this.reset();
        this.inc(outbox.appended.batches);
      },
    });
    new Counter({
      name: 'labtrace_gateway_batches_sent_total',
      help: 'DATA messages published to the broker, resends included',
      registers,
      collect() {
        this.reset();
        this.inc(uplink.published);
      },
    });
    this.acked = new Counter({
      name: 'labtrace_gateway_batches_acknowledged_total',
      help: 'batches the server acknowledged (stored)',
      registers,
    });
    new Counter({
      name: 'labtrace_gateway_samples_refused_total',
      help: 'samples refused while the outbox was full (declared to the server in a signed record)',
      registers,
      collect() {
        this.reset();
        this.inc(uplink.refused);
      },
    });
    new Gauge({
      name: 'labtrace_gateway_uplink_connected',
      help: '1 while the gateway is connected to the broker',
      registers,
      collect() {
        this.set(uplink.isConnected ? 1 : 0);
      },
    });
    new Counter({
      name: 'labtrace_gateway_polls_total',
      help: "each instrument's polls (or messages, or files)",
      labelNames: ['instrument'],
      registers,
      collect() {
        this.reset();
        for (const source of sources) this.inc({ instrument: source.id }, source.getHealth().polls);
      },
    });
    new Counter({
      name: 'labtrace_gateway_poll_errors_total',
      help: "each instrument's errors by kind (timeout, connect, io, exception_<code>, crc, ...)",
      labelNames: ['instrument', 'kind'],
      registers,
      collect() {
        this.reset();
        for (const source of sources) for (const [kind, n] of Object.entries(source.getHealth().errors)) this.inc({ instrument: source.id, kind }, n);
      },
    });
    new Gauge({
      name: 'labtrace_gateway_instrument_connected',
      help: '1 while the instrument is connected',
      labelNames: ['instrument'],
      registers,
      collect() {
        for (const source of sources) this.set({ instrument: source.id }, source.getHealth().connected ? 1 : 0);
      },
    });
    new Gauge({
      name: 'labtrace_gateway_breaker_state',
      help: 'the circuit breaker of the instruments that have one: 1 for the state it is in (closed, open: a dead device polled slowly, half-open: trying)',
      labelNames: ['instrument', 'state'],
      registers,
      collect() {
        for (const source of sources) {
          const breaker = source.getHealth().breaker;
          if (breaker === undefined) continue;
          for (const state of BREAKER_STATES) this.set({ instrument: source.id, state }, breaker === state ? 1 : 0);
        }
      },
    });
    const latency = new Histogram({
      name: 'labtrace_gateway_poll_latency_seconds',
      help: "each instrument's latency as its health reports it: request to reply (Modbus, line, SCPI), a message's delay (MQTT, OPC UA), a file's handling",
      labelNames: ['instrument'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    for (const source of sources) {
      const child = latency.labels({ instrument: source.id });
      source.on('latency', (ms) => child.observe(ms / 1000));
    }
  }

  /** the listener's port, once listening */
  get port(): number | undefined {
    const address = this.listener?.address();
    return typeof address === 'object' && address !== null ? address.port : undefined;
  }

  async start(): Promise<void> {
    this.parts.uplink.on('acked', this.onAcked);
    const { host, port } = this.endpoint;
    const server = http.createServer((req, res) => {
      if ((req.url ?? '').split('?')[0] === METRICS_PATH) this.scrape(req, res);
      else res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
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
    this.logger.info({ host, port: this.port, token: this.token !== undefined }, 'metrics listening');
  }

  async stop(): Promise<void> {
    this.parts.uplink.off('acked', this.onAcked);
    const server = this.listener;
    this.listener = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Whether the request carries the token (compared in constant time), or none is needed. */
  private authorized(req: http.IncomingMessage): boolean {
    if (this.token === undefined) return true;
    const given = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    // both sides hashed: the comparison takes the same time whatever the length given
    return timingSafeEqual(digest(given ?? ''), this.token) && given !== undefined;
  }

  private scrape(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    if (!this.authorized(req)) {
      res
        .writeHead(401, { 'www-authenticate': 'Bearer realm="labtrace gateway metrics"', 'content-type': 'text/plain; charset=utf-8' })
        .end('unauthorized\n');
      return;
    }
    this.registry.metrics().then(
      (text) =>
        res.writeHead(200, { 'content-type': this.registry.contentType, 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : text),
      (err: unknown) => {
        this.logger.error({ err: String(err) }, 'metrics could not be collected');
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics could not be collected\n');
      },
    );
  }
}
