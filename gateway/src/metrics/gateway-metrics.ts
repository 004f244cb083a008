// The gateway's Prometheus metrics on a listener of their own (config `metrics`, docs/operations.md): the outbox per
// sink, each instrument's polls, errors, latency and breaker, the batches signed, sent and acknowledged. Read from the
// state the gateway keeps when a scrape asks; only the latency histogram is fed as polls happen (the sources' event).
import { MetricsEndpoint, setOrAbsent, type NtpStatus } from '@labtrace/protocols/node';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { GatewayMetricsEndpoint } from '../config.js';
import type { Logger } from '../log.js';
import type { Outbox } from '../outbox/outbox.js';
import type { InstrumentSource } from '../source.js';
import type { MqttUplink } from '../uplink/mqtt-uplink.js';

export { METRICS_PATH } from '@labtrace/protocols/node';

/** What the metrics read of the gateway. */
export interface GatewayParts {
  sources: readonly InstrumentSource[];
  outbox: Outbox;
  /** the sinks that confirm the outbox's batches (mqtt, and influx with a historian) */
  sinks: readonly string[];
  uplink: MqttUplink;
  /** the outbox's bound, in samples */
  maxSamples: number;
  /** the gateway's own clock against NTP */
  clock?: () => NtpStatus;
}

/** a millisecond to half a minute: a Modbus reply, a line instrument's answer, a timeout */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BREAKER_STATES = ['closed', 'open', 'half-open'] as const;

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly http: MetricsEndpoint;
  private listening: number | undefined;
  private readonly acked: Counter;
  private readonly onAcked = (): void => this.acked.inc();

  constructor(
    private readonly parts: GatewayParts,
    private readonly endpoint: GatewayMetricsEndpoint,
    private readonly logger: Logger,
  ) {
    this.http = new MetricsEndpoint(this.registry, {
      token: endpoint.token,
      realm: 'labtrace gateway metrics',
      onError: (err) => this.logger.error({ err: String(err) }, 'metrics could not be collected'),
    });
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
    new Gauge({
      name: 'labtrace_clock_offset_seconds',
      help: "the gateway's clock minus NTP's (positive: ahead), from the last answer (absent without NTP or before an answer)",
      registers,
      collect() {
        const offset = parts.clock?.().offsetMs;
        setOrAbsent(this, offset === undefined || offset === null ? undefined : offset / 1000);
      },
    });
    new Gauge({
      name: 'labtrace_clock_ntp_up',
      help: '1 when an NTP server answered the last round, 0 when none did or before the first (absent without NTP configured)',
      registers,
      collect() {
        const status = parts.clock?.();
        setOrAbsent(this, status?.enabled === true ? (status.failedRounds === 0 && status.offsetMs !== null ? 1 : 0) : undefined);
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
    return this.listening;
  }

  async start(): Promise<void> {
    this.parts.uplink.on('acked', this.onAcked);
    const { host, port } = this.endpoint;
    this.listening = await this.http.listen(host, port);
    this.logger.info({ host, port: this.listening, token: this.http.hasToken }, 'metrics listening');
  }

  async stop(): Promise<void> {
    this.parts.uplink.off('acked', this.onAcked);
    this.listening = undefined;
    await this.http.close();
  }
}
