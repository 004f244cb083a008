// Polls one Modbus TCP instrument by its profile: one connection, one request at a time, a timeout on
// every request, reconnect with back-off, and a quality on every sample.
import { EventEmitter } from 'node:events';
import ModbusSerial from 'modbus-serial';
import { channelOf, decodeRegisters, formatOf, type DeviceProfile, type ProfilePoint, type Quality } from '@labtrace/protocols';
import type { Logger } from '../log.js';
import { planReads, type ReadRequest } from './read-plan.js';

export interface PolledSample {
  instrument: string;
  channel: string;
  ts: number;
  value: number | boolean | string | null;
  unit: string;
  quality: Quality;
  reason?: string;
}

export interface InstrumentHealth {
  instrument: string;
  connected: boolean;
  lastGood: number | null;
  errors: Record<string, number>;
  polls: number;
}

interface PollerEvents {
  samples: [samples: PolledSample[]];
  health: [health: InstrumentHealth];
}

const MAX_BACKOFF_MS = 10_000;

// modbus-serial is CommonJS; its typings declare the client class as the default export.
const ModbusRTU = ModbusSerial.default;

/** Digits after the decimal point that a scale or offset carries, to undo binary float noise (3 * 0.1). */
function decimalsOf(x: number): number {
  if (Number.isInteger(x)) return 0;
  const s = String(x);
  const e = s.indexOf('e-');
  if (e >= 0) return Number(s.slice(e + 2)) + (s.slice(0, e).split('.')[1]?.length ?? 0);
  return s.split('.')[1]?.length ?? 0;
}

export function engineeringValue(point: ProfilePoint, raw: number): number {
  if (point.scale === 1 && point.offset === 0) return raw;
  const value = raw * point.scale + point.offset;
  const digits = point.decimals ?? (point.type.startsWith('float') ? undefined : Math.max(decimalsOf(point.scale), decimalsOf(point.offset)));
  return digits === undefined ? value : Number(value.toFixed(Math.min(digits, 15)));
}

export class InstrumentPoller extends EventEmitter<PollerEvents> {
  // A fresh client per connection: nothing of a dropped connection (a late reply) can reach the next one.
  private client = new ModbusRTU();
  private readonly plan: ReadRequest[];
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private connected = false;
  private failures = 0;
  private readonly health: InstrumentHealth;
  private cycle: Promise<void> = Promise.resolve();

  constructor(
    readonly profile: DeviceProfile,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    super();
    this.plan = planReads(profile);
    this.health = { instrument: profile.id, connected: false, lastGood: null, errors: {}, polls: 0 };
  }

  async start(): Promise<void> {
    this.running = true;
    this.schedule(0);
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.cycle;
    await this.disconnect();
  }

  getHealth(): InstrumentHealth {
    return { ...this.health, errors: { ...this.health.errors } };
  }

  private schedule(delay: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      const started = this.now();
      this.cycle = this.poll().then(() => {
        const backoff = this.failures === 0 ? 0 : Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(this.failures - 1, 5));
        const jitter = backoff > 0 ? Math.random() * backoff * 0.2 : 0;
        const wait = Math.max(0, this.profile.pollIntervalMs - (this.now() - started), backoff + jitter);
        this.schedule(wait);
      });
    }, delay);
  }

  private async connect(): Promise<void> {
    const { host, port } = this.profile.connection;
    this.client = new ModbusRTU();
    await this.client.connectTCP(host, { port });
    this.client.setID(this.profile.unitId);
    this.client.setTimeout(this.profile.timeoutMs);
    this.connected = true;
    this.health.connected = true;
    this.logger.info({ host, port }, 'instrument connected');
    this.emit('health', this.getHealth());
  }

  private async disconnect(): Promise<void> {
    const wasConnected = this.connected;
    this.connected = false;
    this.health.connected = false;
    const client = this.client;
    if (client.isOpen) {
      // close() never calls back on a port that is not open, so wait with a bound.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          client.destroy(() => undefined);
          resolve();
        }, 1000);
        try {
          client.close(() => {
            clearTimeout(timer);
            resolve();
          });
        } catch {
          clearTimeout(timer);
          resolve();
        }
      });
    }
    if (wasConnected) this.emit('health', this.getHealth());
  }

  private count(kind: string): void {
    this.health.errors[kind] = (this.health.errors[kind] ?? 0) + 1;
  }

  private async poll(): Promise<void> {
    if (!this.connected) {
      try {
        await this.connect();
      } catch (err) {
        this.failures++;
        this.count('connect');
        const { host, port } = this.profile.connection;
        if (this.failures === 1 || this.failures % 20 === 0) {
          this.logger.warn({ host, port, err: (err as Error).message, failures: this.failures }, 'instrument does not answer');
        }
        this.emit('samples', this.badSamples(this.profile.points, `not connected: ${(err as Error).message}`));
        await this.disconnect();
        return;
      }
    }
    const samples: PolledSample[] = [];
    let lostConnection = false;
    for (const request of this.plan) {
      if (!this.running) break;
      if (lostConnection) {
        samples.push(
          ...this.badSamples(
            request.points.map((p) => p.point),
            'connection lost',
          ),
        );
        continue;
      }
      try {
        samples.push(...(await this.read(request)));
      } catch (err) {
        const e = err as Error & { modbusCode?: number; errno?: string };
        if (e.modbusCode !== undefined) {
          // An exception answer only concerns this request; the connection is healthy.
          this.count(`exception_${e.modbusCode}`);
          samples.push(
            ...this.badSamples(
              request.points.map((p) => p.point),
              `Modbus exception ${e.modbusCode}: ${e.message}`,
            ),
          );
          continue;
        }
        // Timeout or broken connection: a late reply may still arrive, so the connection is dropped
        // rather than risking a stale reply being taken as the answer to the next request.
        this.count(e.errno === 'ETIMEDOUT' ? 'timeout' : 'io');
        lostConnection = true;
        samples.push(
          ...this.badSamples(
            request.points.map((p) => p.point),
            e.errno === 'ETIMEDOUT' ? `no answer within ${this.profile.timeoutMs} ms` : e.message,
          ),
        );
      }
    }
    this.health.polls++;
    if (lostConnection) {
      this.failures++;
      await this.disconnect();
    } else {
      this.failures = 0;
    }
    if (samples.some((s) => s.quality === 'good')) this.health.lastGood = this.now();
    if (samples.length > 0) this.emit('samples', samples);
  }

  private async read(request: ReadRequest): Promise<PolledSample[]> {
    const ts = this.now();
    const { address, quantity } = request;
    let words: ArrayLike<number> | undefined;
    let bits: ArrayLike<boolean> | undefined;
    switch (request.register) {
      case 'coil':
        bits = (await this.client.readCoils(address, quantity)).data;
        break;
      case 'discrete':
        bits = (await this.client.readDiscreteInputs(address, quantity)).data;
        break;
      case 'holding':
        words = (await this.client.readHoldingRegisters(address, quantity)).data;
        break;
      case 'input':
        words = (await this.client.readInputRegisters(address, quantity)).data;
        break;
    }
    return request.points.map(({ point, offset }) => {
      const base = { instrument: this.profile.id, channel: channelOf(point), ts, unit: point.unit };
      const format = formatOf(point);
      if (format === undefined) return { ...base, value: bits?.[offset] === true, quality: 'good' as const };
      const raw = decodeRegisters(words ?? [], format, offset);
      if (typeof raw === 'string') return { ...base, value: raw, quality: 'good' as const };
      if (!Number.isFinite(raw)) return { ...base, value: null, quality: 'bad' as const, reason: `decoded ${raw}` };
      return { ...base, value: engineeringValue(point, raw), quality: 'good' as const };
    });
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
