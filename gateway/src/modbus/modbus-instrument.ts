// Polls one Modbus instrument by its profile over a shared link: retries with jittered back-off on a
// timeout or a busy device, a circuit breaker that slows the polling of a dead device and recovers by
// itself, and a quality on every sample. One failing request fails only its own points.
import { EventEmitter } from 'node:events';
import {
  channelOf,
  decodeRegisters,
  formatOf,
  LabtraceError,
  ModbusException,
  ModbusExceptionError,
  type ModbusProfile,
  type ModbusReply,
  type ModbusRequest,
  type ProfilePoint,
} from '@labtrace/protocols';
import type { Logger } from '../log.js';
import type { InstrumentHealth, InstrumentSource, PolledSample, SourceEvents } from '../source.js';
import { ReportFilter } from '../reporting.js';
import { describe, type ModbusLink } from './link.js';
import { planReads, type ReadRequest } from './read-plan.js';

/** consecutive failed polls that open the breaker */
const BREAKER_THRESHOLD = 3;
const BREAKER_MAX_INTERVAL_MS = 30_000;
const LATENCY_WINDOW = 512;

/** Digits after the decimal point that a scale or offset carries, to undo binary float noise (3 * 0.1). */
function decimalsOf(x: number): number {
  if (Number.isInteger(x)) return 0;
  const s = String(x);
  const e = s.indexOf('e-');
  if (e >= 0) return Number(s.slice(e + 2)) + (s.slice(0, e).split('.')[1]?.length ?? 0);
  return s.split('.')[1]?.length ?? 0;
}

export function engineeringValue(point: ProfilePoint, raw: number): number {
  if (point.scale === 1 && point.offset === 0) return point.decimals === undefined ? raw : Number(raw.toFixed(point.decimals));
  const value = raw * point.scale + point.offset;
  const digits = point.decimals ?? (point.type.startsWith('float') ? undefined : Math.max(decimalsOf(point.scale), decimalsOf(point.offset)));
  return digits === undefined ? value : Number(value.toFixed(Math.min(digits, 15)));
}

interface Decoded {
  value: PolledSample['value'];
  reason?: string;
}

function valueOf(point: ProfilePoint, offset: number, reply: ModbusReply): Decoded {
  const format = formatOf(point);
  if (format === undefined) return reply.kind === 'bits' ? { value: reply.bits[offset] === true } : { value: null, reason: 'reply holds no bits' };
  if (reply.kind !== 'registers') return { value: null, reason: 'reply holds no registers' };
  const raw = decodeRegisters(reply.registers, format, offset);
  if (typeof raw === 'string') return { value: raw };
  if (!Number.isFinite(raw)) return { value: null, reason: `decoded ${raw}` };
  return { value: engineeringValue(point, raw) };
}

function sameWords(a: ArrayLike<number | boolean>, b: ArrayLike<number | boolean>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A fixed-size window of recent figures, for percentiles without shifting arrays on every request. */
class Window {
  private readonly values: number[] = [];
  private next = 0;
  constructor(private readonly size: number) {}
  push(v: number): void {
    if (this.values.length < this.size) this.values.push(v);
    else this.values[this.next] = v;
    this.next = (this.next + 1) % this.size;
  }
  sorted(): number[] {
    return [...this.values].sort((a, b) => a - b);
  }
}

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? null;
}

export class ModbusInstrument extends EventEmitter<SourceEvents> implements InstrumentSource {
  readonly plan: ReadRequest[];
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private cycle: Promise<void> = Promise.resolve();
  private failedPolls = 0;
  private breaker: 'closed' | 'open' | 'half-open' = 'closed';
  private readonly latencies = new Window(LATENCY_WINDOW);
  private readonly jitters = new Window(LATENCY_WINDOW);
  private readonly health: Omit<InstrumentHealth, 'latencyMs' | 'breaker'>;
  private readonly reports: ReportFilter;
  private readonly decoded = new Map<ReadRequest, { words: ArrayLike<number | boolean>; values: Decoded[]; lastGood: boolean }>();
  /** requests whose points all report on change only (not periodically) */
  private readonly changeOnly = new Set<ReadRequest>();
  private readonly requests = new Map<ReadRequest, ModbusRequest>();
  private readonly onLinkUp = (): void => this.setConnected(true);
  private readonly onLinkDown = (): void => this.setConnected(false);

  constructor(
    readonly profile: ModbusProfile,
    private readonly link: ModbusLink,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    super();
    this.plan = planReads(profile, profile.limits);
    const perPoint = new Map(profile.points.flatMap((p) => (p.reporting ? [[channelOf(p), p.reporting] as const] : [])));
    this.reports = new ReportFilter(profile.reporting, perPoint);
    for (const request of this.plan) {
      if (request.points.every(({ point }) => (point.reporting ?? profile.reporting).mode === 'change')) this.changeOnly.add(request);
    }
    this.health = { instrument: profile.id, connected: false, lastGood: null, errors: {}, polls: 0 };
  }

  get id(): string {
    return this.profile.id;
  }

  start(): Promise<void> {
    this.running = true;
    this.link.on('connected', this.onLinkUp);
    this.link.on('disconnected', this.onLinkDown);
    this.schedule(0);
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.link.off('connected', this.onLinkUp);
    this.link.off('disconnected', this.onLinkDown);
    await this.cycle;
  }

  getHealth(): InstrumentHealth {
    const sorted = this.latencies.sorted();
    const jitter = this.jitters.sorted();
    return {
      ...this.health,
      errors: { ...this.health.errors },
      latencyMs: { p50: percentile(sorted, 50), p99: percentile(sorted, 99) },
      pollJitterMs: { p50: percentile(jitter, 50), p99: percentile(jitter, 99) },
      breaker: this.breaker,
    };
  }

  private setConnected(connected: boolean): void {
    if (this.health.connected === connected) return;
    this.health.connected = connected;
    this.emit('health', this.getHealth());
  }

  private schedule(delay: number): void {
    if (!this.running) return;
    const due = this.now() + delay;
    this.timer = setTimeout(() => {
      const started = this.now();
      this.jitters.push(Math.max(0, started - due));
      this.cycle = this.poll().then(
        () => this.schedule(Math.max(0, this.nextInterval() - (this.now() - started))),
        (err: unknown) => {
          this.logger.error({ err: String(err) }, 'poll failed unexpectedly');
          this.schedule(this.nextInterval());
        },
      );
    }, delay);
  }

  /** The poll interval, stretched while the breaker is open. */
  private nextInterval(): number {
    const interval = this.profile.pollIntervalMs;
    if (this.breaker === 'closed') return interval;
    const stretched = Math.min(BREAKER_MAX_INTERVAL_MS, Math.max(interval, 1000) * 2 ** Math.min(this.failedPolls - BREAKER_THRESHOLD, 5));
    return stretched * (0.9 + Math.random() * 0.2);
  }

  private count(kind: string): void {
    this.health.errors[kind] = (this.health.errors[kind] ?? 0) + 1;
  }

  private async poll(): Promise<void> {
    this.health.polls++;
    // While the breaker is open, one request probes the device instead of the whole plan.
    const probing = this.breaker !== 'closed';
    if (probing) this.breaker = 'half-open';
    const samples: PolledSample[] = [];
    let reached = false;
    for (const [i, request] of this.plan.entries()) {
      if (!this.running) break;
      if (probing && i > 0 && !reached) break;
      const outcome = await this.readWithRetries(request);
      if (outcome.ok) {
        reached = true;
        this.health.lastGood = this.now(); // also when nothing changed and nothing is reported
        samples.push(...outcome.samples);
      } else {
        if (outcome.reached) reached = true;
        // the next good reply must be reported even if it holds the same registers as before
        const cached = this.decoded.get(request);
        if (cached) cached.lastGood = false;
        samples.push(
          ...this.badSamples(
            request.points.map((p) => p.point),
            outcome.reason,
          ),
        );
      }
    }
    if (probing && !reached) {
      // the requests the probe skipped are bad too, with the same reason
      for (const r of this.plan) {
        const cached = this.decoded.get(r);
        if (cached) cached.lastGood = false;
      }
      const reason = samples[0]?.reason ?? 'device unreachable';
      samples.push(
        ...this.badSamples(
          this.plan.slice(1).flatMap((r) => r.points.map((p) => p.point)),
          `${reason} (circuit open)`,
        ),
      );
    }
    this.updateBreaker(reached);
    if (samples.some((s) => s.quality === 'good')) this.health.lastGood = this.now();
    // On-change reporting: a bad sample counts as a change of value (to its reason), so a failure is
    // reported once, and the first good value after it is reported again.
    const reported = samples.filter((s) => this.reports.accept(s.channel, s.quality === 'good' ? s.value : `${s.quality}:${s.reason ?? ''}`, s.ts));
    if (reported.length > 0) this.emit('samples', reported);
  }

  private updateBreaker(reached: boolean): void {
    if (reached) {
      if (this.breaker !== 'closed') {
        this.logger.info({ failedPolls: this.failedPolls }, 'instrument answers again; circuit closed');
        this.breaker = 'closed';
        this.emit('health', this.getHealth());
      }
      this.failedPolls = 0;
      return;
    }
    this.failedPolls++;
    if (this.failedPolls === 1 || this.failedPolls % 50 === 0) {
      this.logger.warn({ connection: describe(this.profile.connection), failedPolls: this.failedPolls }, 'instrument does not answer');
    }
    if (this.failedPolls >= BREAKER_THRESHOLD && this.breaker !== 'open') {
      if (this.breaker === 'closed') this.logger.warn({ failedPolls: this.failedPolls }, 'circuit open: polling slowed until the instrument answers');
      this.breaker = 'open';
      this.emit('health', this.getHealth());
    } else if (this.breaker === 'half-open') this.breaker = 'open';
  }

  private async readWithRetries(
    request: ReadRequest,
  ): Promise<{ ok: true; samples: PolledSample[] } | { ok: false; reached: boolean; reason: string }> {
    const fc = ({ coil: 1, discrete: 2, holding: 3, input: 4 } as const)[request.register];
    let lastReason = '';
    let reached = false;
    for (let attempt = 0; attempt <= this.profile.retries; attempt++) {
      if (attempt > 0) {
        // jittered exponential back-off, bounded by the poll interval
        const base = Math.min(this.profile.pollIntervalMs / 4, 50 * 2 ** (attempt - 1));
        await new Promise((r) => setTimeout(r, base * (0.5 + Math.random())));
        if (!this.running) break;
      }
      const ts = this.now();
      try {
        const { reply, latencyMs } = await this.link.request(this.profile.unitId, this.modbusRequest(request, fc), this.profile.timeoutMs);
        this.latencies.push(latencyMs);
        this.emit('latency', latencyMs);
        return { ok: true, samples: this.decode(request, reply, ts) };
      } catch (err) {
        if (err instanceof ModbusExceptionError) {
          reached = true;
          this.count(`exception_${err.exception}`);
          lastReason = err.message;
          if (err.exception === ModbusException.ServerDeviceBusy) continue; // busy: worth another try
          break; // illegal address and friends will not change by asking again
        }
        const code = err instanceof LabtraceError ? err.code : 'E_MODBUS_CONNECT';
        lastReason = (err as Error).message;
        if (code === 'E_MODBUS_TIMEOUT') {
          this.count('timeout');
          continue;
        }
        if (code === 'E_MODBUS_REPLY') {
          reached = true;
          this.count('bad_reply');
          continue;
        }
        if (code === 'E_MODBUS_QUEUE_FULL') {
          this.count('queue_full');
          break;
        }
        this.count('connect');
        break; // the link retries the connection on its own schedule
      }
    }
    return { ok: false, reached, reason: lastReason };
  }

  /**
   * Samples of one reply. Decoding is skipped when the reply carries the same registers (or bits) as
   * the last one of this request: lab values at 10 Hz mostly hold still, and decoding is the bulk of a
   * poll's CPU. Samples are built as literals of one shape (object spread is slow on a hot path).
   */
  /** The same request object every poll, so that the link can keep its encoded form. */
  private modbusRequest(request: ReadRequest, fc: 1 | 2 | 3 | 4): ModbusRequest {
    let r = this.requests.get(request);
    if (r === undefined) {
      r = { fc, address: request.address, quantity: request.quantity };
      this.requests.set(request, r);
    }
    return r;
  }

  private decode(request: ReadRequest, reply: ModbusReply, ts: number): PolledSample[] {
    const words = reply.kind === 'registers' ? reply.registers : reply.kind === 'bits' ? reply.bits : [];
    let cache = this.decoded.get(request);
    if (cache === undefined || !sameWords(cache.words, words)) {
      cache = { words, values: request.points.map(({ point, offset }) => valueOf(point, offset, reply)), lastGood: cache?.lastGood ?? false };
      this.decoded.set(request, cache);
    } else if (cache.lastGood && this.changeOnly.has(request)) {
      // Nothing moved, and every point reports only on change: there is nothing to report.
      return [];
    }
    cache.lastGood = true;
    const samples: PolledSample[] = [];
    const id = this.profile.id;
    for (let i = 0; i < request.points.length; i++) {
      const entry = request.points[i];
      const v = cache.values[i];
      if (entry === undefined || v === undefined) continue;
      const channel = channelOf(entry.point);
      samples.push(
        v.reason === undefined
          ? { instrument: id, channel, ts, value: v.value, unit: entry.point.unit, quality: 'good' }
          : { instrument: id, channel, ts, value: null, unit: entry.point.unit, quality: 'bad', reason: v.reason },
      );
    }
    return samples;
  }

  private badSamples(points: ProfilePoint[], reason: string): PolledSample[] {
    const ts = this.now();
    return points.map((point) => ({
      instrument: this.profile.id,
      channel: channelOf(point),
      ts,
      value: null,
      unit: point.unit,
      quality: 'bad' as const,
      reason,
    }));
  }
}
