// The edge gateway: reads every instrument (Modbus or MQTT), numbers the samples and hands them to
// the uplink; publishes each instrument's health.
import { channelOf, topicFor, type DeviceProfile, type HealthMessage, type Sample } from '@labtrace/protocols';
import type { ResolvedGatewayConfig } from './config.js';
import type { Logger } from './log.js';
import { LinkPool } from './modbus/link-pool.js';
import { ModbusInstrument } from './modbus/modbus-instrument.js';
import { MqttInstrument } from './mqtt-source/mqtt-instrument.js';
import { Sequencer } from './sequencer.js';
import type { InstrumentSource, PolledSample } from './source.js';
import { MQTT_SINK, MqttUplink } from './uplink/mqtt-uplink.js';
import { Outbox } from './outbox/outbox.js';
import { KEY_FILE, loadIdentity } from './identity/identity.js';
import { existsSync } from 'node:fs';
import path from 'node:path';

export const GATEWAY_VERSION = '0.1.0';
const HEALTH_INTERVAL_MS = 5000;

export class Gateway {
  readonly sources: InstrumentSource[];
  readonly uplink: MqttUplink;
  readonly links = new LinkPool({ maxQueue: 1000, pacingMs: 0 });
  private readonly sequencer: Sequencer;
  readonly outbox: Outbox;
  private fullSince: number | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private healthDirty = false;

  constructor(
    private readonly resolved: ResolvedGatewayConfig,
    private readonly logger: Logger,
  ) {
    const { config, profiles } = resolved;
    this.sequencer = new Sequencer(resolved.dataDir);
    const key = existsSync(path.join(resolved.dataDir, KEY_FILE)) ? loadIdentity(resolved.dataDir) : undefined;
    if (!key) this.logger.warn({ dataDir: resolved.dataDir }, "no gateway key: batches are sent unsigned (run 'labtrace gateway init')");
    this.outbox = new Outbox(resolved.dataDir, [MQTT_SINK], key);
    this.uplink = new MqttUplink(
      {
        url: config.mqtt.url,
        username: config.mqtt.username,
        password: resolved.password,
        gateway: config.gateway.id,
        lab: config.gateway.lab,
        keepaliveSeconds: config.mqtt.keepaliveSeconds,
        maxBatchSamples: config.batch.maxSamples,
        maxBatchDelayMs: config.batch.maxDelayMs,
        maxHeldSamples: config.outbox.maxSamples,
        outbox: this.outbox,
        birth: () => ({ v: 1, gateway: config.gateway.id, version: GATEWAY_VERSION, instruments: profiles.map(birthInstrument) }),
      },
      logger,
    );
    this.uplink.on('full', (refused) => {
      if (this.fullSince === undefined) {
        this.fullSince = Date.now();
        this.logger.error({ refused, held: this.uplink.held }, 'ALARM: outbox full, new samples are refused until the server acknowledges');
      }
    });
    this.uplink.on('acked', () => {
      if (this.fullSince !== undefined && this.uplink.held < config.outbox.maxSamples * 0.9) {
        this.logger.warn({ refused: this.uplink.refused, sinceMs: Date.now() - this.fullSince }, 'outbox has room again');
        this.fullSince = undefined;
      }
    });
    this.uplink.on('connected', () => this.publishHealth());
    this.sources = profiles.map((profile) => this.createSource(profile));
    for (const source of this.sources) {
      source.on('samples', (samples) => this.accept(samples));
      source.on('health', () => (this.healthDirty = true));
    }
  }

  private createSource(profile: DeviceProfile): InstrumentSource {
    const logger = this.logger.child({ instrument: profile.id });
    if (profile.protocol === 'mqtt') {
      const password = this.resolved.instrumentPasswords.get(profile.id);
      return new MqttInstrument(profile, { logger, ...(password === undefined ? {} : { password }) });
    }
    return new ModbusInstrument(profile, this.links.acquire(profile.connection, profile.limits.pacingMs), logger);
  }

  async start(): Promise<void> {
    await this.uplink.start();
    await Promise.all(this.sources.map((s) => s.start()));
    this.timers.push(setInterval(() => this.publishHealth(), HEALTH_INTERVAL_MS));
    // state changes (connected, circuit breaker) are published within a second
    this.timers.push(
      setInterval(() => {
        if (this.healthDirty) this.publishHealth();
      }, 1000),
    );
    this.logger.info(
      { gateway: this.resolved.config.gateway.id, instruments: this.sources.length, links: this.links.all().length },
      'gateway started',
    );
  }

  async stop(): Promise<void> {
    for (const t of this.timers.splice(0)) clearInterval(t);
    await Promise.all(this.sources.map((s) => s.stop()));
    await Promise.all(this.links.all().map((l) => l.close()));
    await this.uplink.stop();
    this.outbox.close();
  }

  healthMessage(): HealthMessage {
    return { v: 1, gateway: this.resolved.config.gateway.id, ts: Date.now(), instruments: this.sources.map((s) => s.getHealth()) };
  }

  private publishHealth(): void {
    this.healthDirty = false;
    const { lab, id } = this.resolved.config.gateway;
    this.uplink.publishRaw(topicFor(lab, id, 'HEALTH'), JSON.stringify(this.healthMessage()));
  }

  private accept(polled: PolledSample[]): void {
    const samples: Sample[] = polled.map((s) => {
      // one literal of a fixed shape: spreading objects is slow on this path
      const sample: Sample = {
        seq: this.sequencer.take(),
        instrument: s.instrument,
        channel: s.channel,
        ts: s.ts,
        value: s.value,
        unit: s.unit,
        quality: s.quality,
      };
      // the wire allows 200 characters: a longer reason (a long serial path in an OS error) would get the whole batch refused
      if (s.reason !== undefined) sample.reason = s.reason.length > 200 ? `${s.reason.slice(0, 199)}…` : s.reason;
      return sample;
    });
    this.uplink.push(samples);
  }
}

function birthInstrument(profile: DeviceProfile): { id: string; identity: DeviceProfile['identity']; channels: { name: string; unit: string }[] } {
  return { id: profile.id, identity: profile.identity, channels: profile.points.map((p) => ({ name: channelOf(p), unit: p.unit })) };
}
