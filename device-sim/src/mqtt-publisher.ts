// A simulated instrument that publishes its own readings to an MQTT broker, one message per topic of
// its profile at a fixed interval. Like a real sensor it keeps nothing while the broker is away: a
// reading it cannot send is counted as dropped, never queued.
import { readFile } from 'node:fs/promises';
import mqtt, { type MqttClient } from 'mqtt';
import { LabtraceError, type MqttProfile } from '@labtrace/protocols';
import type { InstrumentEndpoint } from './endpoint.js';
import type { Logger } from './log.js';
import { PayloadBuilder } from './mqtt-payload.js';
import type { SimInstrument } from './sim-instrument.js';

export interface MqttPublisherOptions {
  profile: MqttProfile;
  /** broker URL; default: the profile's connection.url */
  url?: string;
  /** how often the readings go out */
  intervalMs: number;
  logger?: Logger;
  now?: () => number;
  /** pause between reconnect attempts (default 1000 ms) */
  reconnectPeriodMs?: number;
}

/** Most messages a "slow" fault may hold back at once; more are dropped. */
const MAX_HELD = 1000;

export class MqttPublisher implements InstrumentEndpoint {
  readonly transport = 'mqtt';
  readonly port = 0;
  /** messages handed to the broker connection */
  published = 0;
  /** readings not sent because the broker was not connected, or too many were held back */
  dropped = 0;
  private readonly payloads: PayloadBuilder;
  private readonly url: string;
  private readonly now: () => number;
  private instrument: SimInstrument | undefined;
  private client: MqttClient | undefined;
  private password: string | undefined;
  private lastPublish: number | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly held = new Set<NodeJS.Timeout>();
  private running = false;

  constructor(private readonly options: MqttPublisherOptions) {
    this.payloads = new PayloadBuilder(options.profile);
    this.url = options.url ?? options.profile.connection.url;
    this.now = options.now ?? Date.now;
  }

  get address(): string {
    return this.url;
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  attach(instrument: SimInstrument): void {
    if (this.instrument !== undefined) throw new LabtraceError('E_CONFIG', `MQTT publisher of ${this.options.profile.id} already has its instrument`);
    this.instrument = instrument;
  }

  async start(): Promise<void> {
    const file = this.options.profile.connection.passwordFile;
    if (file !== undefined) {
      try {
        this.password = (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
      } catch (err) {
        throw new LabtraceError('E_CONFIG_READ', `${this.options.profile.id}: connection.passwordFile ${file}: ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
    this.running = true;
    this.connect();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    for (const t of this.held) clearTimeout(t);
    this.held.clear();
    const client = this.client;
    this.client = undefined;
    if (client) await client.endAsync(true);
  }

  /** Drops the broker connection and stays away for `ms`. */
  interrupt(ms: number): void {
    const client = this.client;
    this.client = undefined;
    if (client) client.end(true);
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    if (!this.running) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.running && this.client === undefined) this.connect();
    }, ms);
  }

  /** Called on every simulator tick, after the instrument's values moved; publishes when the interval is due. */
  tick(now: number): void {
    if (this.lastPublish !== undefined && now - this.lastPublish < this.options.intervalMs) return;
    this.lastPublish = now;
    this.publish(now);
  }

  private publish(now: number): void {
    const instrument = this.instrument;
    if (!instrument || !this.running) return;
    const faults = instrument.faults;
    if (faults.has('no-answer', now) || faults.has('disconnect', now)) return;
    const messages = this.payloads.payloads(instrument.values(), now);
    const delayMs = faults.replyDelayMs(now);
    for (const { topic, payload } of messages) {
      if (delayMs <= 0) this.send(topic, payload);
      else if (this.held.size >= MAX_HELD) this.dropped++;
      else {
        // The message leaves late but keeps the time the reading was taken.
        const timer = setTimeout(() => {
          this.held.delete(timer);
          this.send(topic, payload);
        }, delayMs);
        this.held.add(timer);
      }
    }
  }

  private send(topic: string, payload: string): void {
    const client = this.client;
    if (!client?.connected) {
      this.dropped++;
      return;
    }
    this.published++;
    client.publish(topic, payload, { qos: 0 }, (err) => {
      if (err) this.options.logger?.debug({ instrument: this.options.profile.id, topic, err: err.message }, 'publish failed');
    });
  }

  private connect(): void {
    const { profile, logger } = this.options;
    const { username, clientId } = profile.connection;
    const client = mqtt.connect(this.url, {
      clientId: clientId ?? `labtrace-sim-${profile.id}`,
      ...(username === undefined ? {} : { username }),
      ...(this.password === undefined ? {} : { password: this.password }),
      reconnectPeriod: this.options.reconnectPeriodMs ?? 1000,
      connectTimeout: 5000,
      queueQoSZero: false,
      clean: true,
    });
    // A broker that refuses us would be retried every second: log a problem once, until it changes.
    let lastError: string | undefined;
    client.on('connect', () => {
      lastError = undefined;
      logger?.info({ instrument: profile.id, url: this.url }, 'connected to the broker');
    });
    client.on('error', (err) => {
      if (err.message !== lastError) logger?.warn({ instrument: profile.id, url: this.url, err: err.message }, 'broker connection error');
      lastError = err.message;
    });
    this.client = client;
  }
}
