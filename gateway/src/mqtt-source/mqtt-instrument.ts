// An instrument that publishes its own readings to an MQTT broker: subscribes to each point's topic,
// turns every payload into a sample with a quality, and reports points that fell silent as stale.
// A bad payload costs one bad sample and a counter, never the subscription.
import { EventEmitter } from 'node:events';
import mqtt, { type IPublishPacket, type ISubscriptionGrant, type MqttClient } from 'mqtt';
import { channelOf, LabtraceError, type MqttPoint, type MqttProfile } from '@labtrace/protocols';
import type { Logger } from '../log.js';
import type { InstrumentHealth, InstrumentSource, PolledSample, SourceEvents } from '../source.js';
import {
  clip,
  compilePath,
  describe,
  engineeringValue,
  MAX_PAYLOAD_BYTES,
  parsePlainNumber,
  parseTimestamp,
  readPath,
  type PathSegment,
} from './payload.js';
import { ReportFilter } from '../reporting.js';

/** Runs `fn` every `everyMs` and returns a function that stops it; tests pass a manual one. */
export type Every = (everyMs: number, fn: () => void) => () => void;

export interface MqttInstrumentOptions {
  /** the broker password, read by the config loader from connection.passwordFile */
  password?: string;
  /** already bound to the instrument id, as for every source */
  logger: Logger;
  now?: () => number;
  /** runs the staleness check (default: setInterval) */
  every?: Every;
  /** pause between reconnect attempts after the connection dropped (default 1000 ms) */
  reconnectPeriodMs?: number;
  /** pause before trying again after the broker refused the connection, e.g. for a wrong password (default 30 s) */
  refusedRetryMs?: number;
  /** a repeated problem (bad payloads on one topic, a broker that does not answer) is logged at most this often (default 10 s) */
  logEveryMs?: number;
}

interface CompiledPoint {
  point: MqttPoint;
  channel: string;
  path: PathSegment[] | undefined;
  timestampPath: PathSegment[] | undefined;
  /** a scale, offset or unit means the value is a measurement, so booleans and strings are refused */
  numeric: boolean;
  lastMessageAt: number;
  staleReported: boolean;
}

/** A payload decoded once for all points of its topic. */
type Content = { ok: true; text: string; json: { value: unknown } | { error: string } | undefined } | { ok: false; reason: string };

/** The outcome of reading one point from one payload. */
type Reading = { ok: true; value: number | boolean | string; ts: number; fromPayload: boolean } | { ok: false; kind: string; reason: string };

const LATENCY_WINDOW = 1000;
const MAX_REASON = 200;
const PREVIEW_CHARS = 64;
const END_GRACE_MS = 2000;

// MQTT 3.1.1 CONNACK codes 4 and 5, MQTT 5 reason codes 134 and 135: the credentials were refused.
const AUTH_CODES = new Set([4, 5, 134, 135]);

const defaultEvery: Every = (everyMs, fn) => {
  const timer = setInterval(fn, everyMs);
  return () => clearInterval(timer);
};

export class MqttInstrument extends EventEmitter<SourceEvents> implements InstrumentSource {
  readonly id: string;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly points: CompiledPoint[];
  private readonly byTopic = new Map<string, CompiledPoint[]>();
  private readonly filter: ReportFilter;
  private readonly health: InstrumentHealth;
  private readonly latencies: number[] = [];
  private latencyNext = 0;
  private client: MqttClient | undefined;
  private stopStaleCheck: (() => void) | undefined;
  private refusedTimer: NodeJS.Timeout | undefined;
  /** per log key: when it was last logged and how many were left out since */
  private readonly logged = new Map<string, { at: number; suppressed: number }>();
  private running = false;

  constructor(
    readonly profile: MqttProfile,
    private readonly options: MqttInstrumentOptions,
  ) {
    super();
    this.id = profile.id;
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
    if (profile.connection.passwordFile !== undefined && options.password === undefined) {
      throw new LabtraceError('E_CONFIG', `${profile.id}: connection.passwordFile is set but no password was passed to the MQTT source`);
    }
    this.points = profile.points.map((point, i) => ({
      point,
      channel: channelOf(point),
      path: point.jsonPath === undefined ? undefined : compilePath(point.jsonPath, `${profile.id}: points[${i}].jsonPath`),
      timestampPath: compileTimestampPath(point, `${profile.id}: points[${i}]`),
      numeric: point.scale !== 1 || point.offset !== 0 || point.unit !== '',
      lastMessageAt: 0,
      staleReported: false,
    }));
    for (const p of this.points) {
      const list = this.byTopic.get(p.point.topic);
      if (list === undefined) this.byTopic.set(p.point.topic, [p]);
      else list.push(p);
    }
    this.filter = new ReportFilter(profile.reporting);
    this.health = { instrument: profile.id, connected: false, lastGood: null, errors: {}, polls: 0, latencyMs: { p50: null, p99: null } };
  }

  async start(): Promise<void> {
    if (this.running) return Promise.resolve();
    this.running = true;
    const started = this.now();
    for (const p of this.points) {
      p.lastMessageAt = started;
      p.staleReported = false;
    }
    const { staleAfterMs } = this.profile;
    this.stopStaleCheck = (this.options.every ?? defaultEvery)(Math.min(1000, Math.max(25, Math.floor(staleAfterMs / 4))), () => this.checkStale());
    const { url, username, clientId } = this.profile.connection;
    const client = mqtt.connect(url, {
      ...(username === undefined ? {} : { username }),
      ...(this.options.password === undefined ? {} : { password: this.options.password }),
      ...(clientId === undefined ? {} : { clientId }),
      reconnectPeriod: this.options.reconnectPeriodMs ?? 1000,
      connectTimeout: 10_000,
      clean: true,
      // Subscriptions are renewed on every connect (below), which also tells us when they are in place.
      resubscribe: false,
    });
    this.client = client;
    client.on('connect', () => this.onConnect(client));
    client.on('close', () => this.setConnected(false));
    client.on('error', (err) => this.onError(client, err));
    client.on('message', (topic, payload, packet) => this.onMessage(topic, payload, packet));
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopStaleCheck?.();
    this.stopStaleCheck = undefined;
    if (this.refusedTimer) clearTimeout(this.refusedTimer);
    this.refusedTimer = undefined;
    const client = this.client;
    this.client = undefined;
    if (client !== undefined) await endClient(client);
    this.setConnected(false);
  }

  getHealth(): InstrumentHealth {
    return { ...this.health, errors: { ...this.health.errors }, latencyMs: this.latencyPercentiles() };
  }

  private onConnect(client: MqttClient): void {
    this.logged.delete('connection');
    const topics = [...this.byTopic.keys()];
    client.subscribe(Object.fromEntries(topics.map((t) => [t, { qos: 1 as const }])), (err, granted) => {
      if (!this.running || client !== this.client) return;
      if (err) {
        this.count('subscribe');
        this.logger.error({ err: err.message, topics }, 'cannot subscribe to the instrument topics');
      } else {
        const refused = (granted ?? []).filter((g: ISubscriptionGrant) => g.qos === 128).map((g) => g.topic);
        if (refused.length > 0) {
          this.count('subscribe');
          this.logger.error({ topics: refused }, 'the broker refused the subscription (is this user allowed to read these topics?)');
        }
      }
      this.logger.info({ url: this.profile.connection.url, topics: topics.length }, 'subscribed to instrument topics');
      // Connected means "receiving": a message published from now on reaches this source.
      if (client.connected) this.setConnected(true);
    });
  }

  private setConnected(connected: boolean): void {
    if (this.health.connected === connected) return;
    this.health.connected = connected;
    if (!connected && this.running) this.logger.warn({ url: this.profile.connection.url }, 'lost the connection to the MQTT broker; reconnecting');
    this.emit('health', this.getHealth());
  }

  private onError(client: MqttClient, err: Error & { code?: unknown }): void {
    const { url, username } = this.profile.connection;
    if (typeof err.code === 'number' && err.message.startsWith('Connection refused')) {
      // mqtt.js does not retry after a refusal; retry slowly so that fixing the broker's user list is enough.
      const auth = AUTH_CODES.has(err.code);
      this.count(auth ? 'auth' : 'refused');
      const retryMs = this.options.refusedRetryMs ?? 30_000;
      this.logger.error(
        { url, username: username ?? null, code: err.code, reason: err.message, retryInMs: retryMs },
        auth
          ? 'the MQTT broker refused the username or password of this instrument; check connection.username and connection.passwordFile'
          : 'the MQTT broker refused the connection',
      );
      if (this.running && this.refusedTimer === undefined) {
        this.refusedTimer = setTimeout(() => {
          this.refusedTimer = undefined;
          if (this.running && client === this.client && !client.connected) client.reconnect();
        }, retryMs);
      }
      return;
    }
    const network = typeof err.code === 'string';
    this.count(network ? 'connect' : 'io');
    this.logLimited('connection', 'warn', { url, err: err.message }, 'cannot reach the MQTT broker; retrying');
  }

  private onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void {
    const points = this.byTopic.get(topic);
    if (points === undefined || !this.running) return;
    try {
      this.health.polls++;
      const arrival = this.now();
      const samples: PolledSample[] = [];
      const content = this.parse(topic, payload, points);
      for (const p of points) {
        p.lastMessageAt = arrival;
        p.staleReported = false;
        const reading = this.read(p, content, arrival);
        const base = { instrument: this.id, channel: p.channel, unit: p.point.unit };
        if (!reading.ok) {
          this.count(reading.kind);
          this.logLimited(`payload:${topic}`, 'warn', this.payloadFields(topic, payload, reading.reason), 'invalid payload from the instrument');
          this.filter.forget(p.channel);
          samples.push({ ...base, ts: arrival, value: null, quality: 'bad', reason: clip(reading.reason, MAX_REASON) });
          continue;
        }
        if (packet.retain && !reading.fromPayload) {
          // A retained message was published at some unknown time before we subscribed: its arrival time is not its time.
          this.filter.forget(p.channel);
          samples.push({ ...base, ts: arrival, value: reading.value, quality: 'uncertain', reason: 'retained message: measured at an unknown time' });
          continue;
        }
        if (reading.fromPayload && !packet.retain) this.recordLatency(arrival - reading.ts);
        this.health.lastGood = arrival;
        if (this.filter.accept(p.channel, reading.value, reading.ts))
          samples.push({ ...base, ts: reading.ts, value: reading.value, quality: 'good' });
      }
      if (samples.length > 0) this.emit('samples', samples);
    } catch (err) {
      // A listener or a bug must not take the subscription down with it.
      this.count('internal');
      this.logger.error({ topic, err: (err as Error).message }, 'failed to handle an instrument message');
    }
  }

  /** Decodes the payload once for all the points of its topic; JSON only when one of them has a path. */
  private parse(topic: string, payload: Buffer, points: CompiledPoint[]): Content {
    if (payload.length > MAX_PAYLOAD_BYTES) {
      return { ok: false, reason: `payload of ${payload.length} bytes is larger than the ${MAX_PAYLOAD_BYTES} allowed` };
    }
    const text = payload.toString('utf8');
    if (!points.some((p) => p.path !== undefined)) return { ok: true, text, json: undefined };
    try {
      return { ok: true, text, json: { value: JSON.parse(text) as unknown } };
    } catch {
      return { ok: true, text, json: { error: `payload on ${clip(topic, 100)} is not JSON` } };
    }
  }

  private read(p: CompiledPoint, content: Content, arrival: number): Reading {
    if (!content.ok) return { ok: false, kind: 'invalid_payload', reason: content.reason };
    let value: number | boolean | string;
    if (p.path === undefined) {
      const n = parsePlainNumber(content.text);
      if (n === undefined) return { ok: false, kind: 'invalid_payload', reason: `payload "${clip(content.text.trim(), 24)}" is not a plain number` };
      value = n;
    } else {
      const json = content.json;
      if (json === undefined || 'error' in json) return { ok: false, kind: 'invalid_payload', reason: json?.error ?? 'payload is not JSON' };
      const where = p.point.jsonPath ?? '';
      const found = readPath(json.value, p.path);
      if (!found.found) return { ok: false, kind: 'invalid_payload', reason: `no value at ${found.missing} (jsonPath ${where})` };
      const raw = found.value;
      if (typeof raw === 'number' && Number.isFinite(raw)) value = raw;
      else if ((typeof raw === 'boolean' || typeof raw === 'string') && !p.numeric) value = raw;
      else {
        const expected = p.numeric ? 'a number' : 'a number, boolean or string';
        return { ok: false, kind: 'invalid_payload', reason: `expected ${expected} at ${where}, got ${describe(raw)}` };
      }
      if (p.timestampPath !== undefined) {
        const at = readPath(json.value, p.timestampPath);
        if (!at.found) {
          return { ok: false, kind: 'invalid_timestamp', reason: `no timestamp at ${at.missing} (timestampPath ${p.point.timestampPath ?? ''})` };
        }
        const ts = parseTimestamp(at.value, arrival);
        if (!ts.ok) return { ok: false, kind: 'invalid_timestamp', reason: ts.reason };
        return this.scaled(p, value, ts.ts, true);
      }
    }
    return this.scaled(p, value, arrival, false);
  }

  private scaled(p: CompiledPoint, value: number | boolean | string, ts: number, fromPayload: boolean): Reading {
    if (typeof value !== 'number') return { ok: true, value, ts, fromPayload };
    const scaled = engineeringValue(value, p.point.scale, p.point.offset);
    if (!Number.isFinite(scaled)) return { ok: false, kind: 'invalid_payload', reason: `value ${value} is out of range after scale and offset` };
    return { ok: true, value: scaled, ts, fromPayload };
  }

  /** Reports, once per silence, every point that has not published for staleAfterMs. */
  private checkStale(): void {
    if (!this.running) return;
    const now = this.now();
    const { staleAfterMs } = this.profile;
    const samples: PolledSample[] = [];
    for (const p of this.points) {
      const silentMs = now - p.lastMessageAt;
      if (p.staleReported || silentMs < staleAfterMs) continue;
      p.staleReported = true;
      this.filter.forget(p.channel);
      const reason = `stale: no message for ${silentMs} ms${this.health.connected ? '' : ' (not connected to the broker)'}`;
      samples.push({ instrument: this.id, channel: p.channel, ts: now, value: null, unit: p.point.unit, quality: 'uncertain', reason });
    }
    if (samples.length > 0) this.emit('samples', samples);
  }

  private count(kind: string): void {
    this.health.errors[kind] = (this.health.errors[kind] ?? 0) + 1;
  }

  private recordLatency(ms: number): void {
    this.emit('latency', ms);
    if (this.latencies.length < LATENCY_WINDOW) this.latencies.push(ms);
    else this.latencies[this.latencyNext] = ms;
    this.latencyNext = (this.latencyNext + 1) % LATENCY_WINDOW;
  }

  private latencyPercentiles(): { p50: number | null; p99: number | null } {
    if (this.latencies.length === 0) return { p50: null, p99: null };
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const rank = (q: number): number | null => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? null;
    return { p50: rank(0.5), p99: rank(0.99) };
  }

  /** What a log line may say about a payload: its size and its first characters, never all of it. */
  private payloadFields(topic: string, payload: Buffer, reason: string): Record<string, unknown> {
    const head = payload.subarray(0, PREVIEW_CHARS * 4).toString('utf8');
    return { topic, reason, bytes: payload.length, start: clip(head, PREVIEW_CHARS) };
  }

  /** Logs the first occurrence of a repeated problem, then at most once per logEveryMs with how many were left out. */
  private logLimited(key: string, level: 'warn' | 'error', fields: Record<string, unknown>, msg: string): void {
    const now = this.now();
    const every = this.options.logEveryMs ?? 10_000;
    const entry = this.logged.get(key);
    if (entry !== undefined && now - entry.at < every) {
      entry.suppressed++;
      return;
    }
    this.logger[level]({ ...fields, ...(entry && entry.suppressed > 0 ? { suppressed: entry.suppressed } : {}) }, msg);
    this.logged.set(key, { at: now, suppressed: 0 });
  }
}

function compileTimestampPath(point: MqttPoint, where: string): PathSegment[] | undefined {
  if (point.timestampPath === undefined) return undefined;
  // A plain-number payload has nowhere to carry a timestamp.
  if (point.jsonPath === undefined)
    throw new LabtraceError('E_PROFILE', `${where}.timestampPath: needs jsonPath (a plain-number payload has no timestamp)`);
  return compilePath(point.timestampPath, `${where}.timestampPath`);
}

/** Says goodbye to the broker, but waits at most END_GRACE_MS for a broker that does not answer. */
async function endClient(client: MqttClient): Promise<void> {
  if (!client.connected) return client.endAsync(true);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      client.stream.destroy();
      resolve();
    }, END_GRACE_MS);
  });
  await Promise.race([client.endAsync(), late]);
  clearTimeout(timer);
}
