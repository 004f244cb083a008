// The edge gateway: reads every instrument (Modbus, MQTT, balances, SCPI, line instruments, result files), numbers the samples and hands them to
// the uplink; publishes each instrument's health.
import {
  channelOf,
  LabtraceError,
  toHex,
  topicFor,
  type BirthInstrument,
  type DeviceProfile,
  type HealthMessage,
  type Sample,
} from '@labtrace/protocols';
import type { ResolvedGatewayConfig } from './config.js';
import type { Logger } from './log.js';
import { BalanceInstrument } from './line/balance-instrument.js';
import { ScpiInstrument } from './line/scpi-instrument.js';
import { GenericLineInstrument } from './line/generic-instrument.js';
import { LinkPool } from './modbus/link-pool.js';
import { ModbusInstrument } from './modbus/modbus-instrument.js';
import { MqttInstrument } from './mqtt-source/mqtt-instrument.js';
import { FileInstrument, type TakenFile } from './files/file-instrument.js';
import { OpcuaInstrument } from './opcua/opcua-instrument.js';
import { Sequencer } from './sequencer.js';
import type { InstrumentSource, PolledSample } from './source.js';
import { MQTT_SINK, MqttUplink } from './uplink/mqtt-uplink.js';
import { Outbox } from './outbox/outbox.js';
import { INFLUX_SINK, InfluxSink, influxSinkOptions } from './outbox/influx-sink.js';
import { KEY_FILE, KeyHolder } from './identity/identity.js';
import { GatewayMetrics } from './metrics/gateway-metrics.js';
import { GatewayClock } from './clock/gateway-clock.js';
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
  /** the optional on-site historian, with its own cursor in the outbox */
  readonly influx: InfluxSink | undefined;
  private fullSince: number | undefined;
  /** samples refused while the outbox was full, declared in a signed record once there is room */
  private refused: { count: number; first: number; last: number; instruments: Set<string> } | undefined;
  private readonly keys: KeyHolder | undefined;
  /** the record that declares numbers skipped by a restart, sent first */
  private jump: Sample | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private healthDirty = false;
  /** Prometheus metrics on a listener of their own (config metrics), if configured */
  readonly metrics: GatewayMetrics | undefined;
  /** the gateway's own clock against NTP (config clock.ntp) */
  readonly clock: GatewayClock;

  constructor(
    private readonly resolved: ResolvedGatewayConfig,
    private readonly logger: Logger,
    /** the clock NTP measures: Date.now; tests make it wrong */
    ntpClock?: () => number,
  ) {
    const { config, profiles } = resolved;
    this.clock = new GatewayClock(config.clock.ntp, logger.child({ part: 'clock' }), ntpClock);
    this.sequencer = new Sequencer(resolved.dataDir);
    const keys = existsSync(path.join(resolved.dataDir, KEY_FILE)) ? new KeyHolder(resolved.dataDir) : undefined;
    this.keys = keys;
    if (!keys)
      this.logger.warn(
        { dataDir: resolved.dataDir },
        "no gateway key: batches are unsigned and the server refuses them (run 'labtrace gateway init')",
      );
    this.outbox = new Outbox(resolved.dataDir, config.influx ? [MQTT_SINK, INFLUX_SINK] : [MQTT_SINK], keys ? () => keys.current() : undefined);
    const influx = influxSinkOptions(config.influx, resolved.influxSecret, this.outbox);
    this.influx = influx && new InfluxSink(influx, logger.child({ sink: INFLUX_SINK }));
    const lastSeq = this.outbox.lastSeq;
    if (lastSeq !== undefined && this.sequencer.peek() > lastSeq + 1) {
      const seq = this.sequencer.take();
      this.jump = {
        seq,
        instrument: config.gateway.id,
        channel: 'sequence-jump',
        ts: Date.now(),
        value: lastSeq + 1,
        unit: '',
        quality: 'good',
        reason: `restart: numbers ${lastSeq + 1}..${seq - 1} were reserved by the previous run and never used`,
      };
    }
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
        birth: () => ({
          v: 1,
          gateway: config.gateway.id,
          version: GATEWAY_VERSION,
          ...(this.keys ? { keyId: toHex(this.keys.current().keyId) } : {}),
          instruments: profiles.map(birthInstrument),
        }),
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
        this.logger.warn({ refused: this.refused?.count ?? 0, sinceMs: Date.now() - this.fullSince }, 'outbox has room again');
        this.fullSince = undefined;
        this.declareRefused();
      }
    });
    this.uplink.on('connected', () => this.publishHealth());
    this.uplink.on('command', (instrument, command) => {
      const source = this.sources.find((s) => s.id === instrument);
      if (source instanceof BalanceInstrument) source.command(command);
      else
        this.logger.warn(
          { instrument, command },
          source === undefined ? 'command for an unknown instrument: ignored' : 'command for an instrument that takes none: ignored',
        );
    });
    this.sources = profiles.map((profile) => this.createSource(profile));
    for (const source of this.sources) {
      source.on('samples', (samples) => this.accept(samples));
      source.on('health', () => (this.healthDirty = true));
    }
    this.metrics =
      resolved.metrics &&
      new GatewayMetrics(
        {
          sources: this.sources,
          outbox: this.outbox,
          sinks: config.influx ? [MQTT_SINK, INFLUX_SINK] : [MQTT_SINK],
          uplink: this.uplink,
          maxSamples: config.outbox.maxSamples,
          clock: () => this.clock.ntp.status(),
        },
        resolved.metrics,
        logger.child({ part: 'metrics' }),
      );
  }

  private createSource(profile: DeviceProfile): InstrumentSource {
    const logger = this.logger.child({ instrument: profile.id });
    // a balance owns its serial port or socket: nothing shared, so a dead one waits on no other
    if (profile.protocol === 'balance') return new BalanceInstrument(profile, logger);
    if (profile.protocol === 'scpi') return new ScpiInstrument(profile, logger);
    if (profile.protocol === 'line') return new GenericLineInstrument(profile, logger);
    if (profile.protocol === 'file')
      return new FileInstrument(profile, {
        logger,
        isTaken: (sha256) => this.outbox.fileTaken(profile.id, sha256),
        deliver: (file, samples) => this.deliverFile(profile.id, file, samples),
      });
    if (profile.protocol === 'opcua') {
      const password = this.resolved.instrumentPasswords.get(profile.id);
      return new OpcuaInstrument(profile, { logger, dataDir: this.resolved.dataDir, ...(password === undefined ? {} : { password }) });
    }
    if (profile.protocol === 'mqtt') {
      const password = this.resolved.instrumentPasswords.get(profile.id);
      return new MqttInstrument(profile, { logger, ...(password === undefined ? {} : { password }) });
    }
    return new ModbusInstrument(profile, this.links.acquire(profile.connection, profile.limits.pacingMs), logger);
  }

  async start(): Promise<void> {
    // first: a gateway that cannot reach its server is the one to look at
    await this.metrics?.start();
    await this.clock.start();
    await this.uplink.start();
    await this.influx?.start();
    if (this.influx) this.timers.push(setInterval(() => this.boundHistorianBacklog(), 5000));
    if (this.jump) this.uplink.push([this.jump], true);
    this.jump = undefined;
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
    await this.influx?.stop();
    await this.metrics?.stop();
    await this.clock.stop();
    this.outbox.close();
  }

  healthMessage(): HealthMessage {
    return {
      v: 1,
      gateway: this.resolved.config.gateway.id,
      ts: Date.now(),
      instruments: this.sources.map((s) => s.getHealth()),
      ...this.clock.healthField(),
    };
  }

  private publishHealth(): void {
    this.healthDirty = false;
    const { lab, id } = this.resolved.config.gateway;
    this.uplink.publishRaw(topicFor(lab, id, 'HEALTH'), JSON.stringify(this.healthMessage()));
  }

  /**
   * The historian must not hold back the server: when InfluxDB has been away so long that its backlog
   * exceeds the outbox bound, its oldest batches (already stored by the server) are given up for
   * InfluxDB only, each recorded as a sink failure with an alarm; the server can refill it.
   */
  private boundHistorianBacklog(): void {
    const bound = this.resolved.config.outbox.maxSamples;
    let over = this.outbox.heldFor(INFLUX_SINK) - bound;
    if (over <= 0) return;
    for (const { batch, message } of this.outbox.unackedPage(INFLUX_SINK, -1, 100)) {
      if (over <= 0) break;
      if (this.outbox.heldFor(MQTT_SINK) > 0 && this.outbox.unackedPage(MQTT_SINK, batch - 1, 1)[0]?.batch === batch) continue; // not stored yet
      const error = `InfluxDB backlog over ${bound} samples: batch ${batch} given up for InfluxDB (stored on the server)`;
      this.outbox.recordSinkFailure(INFLUX_SINK, batch, error);
      this.outbox.ack(INFLUX_SINK, batch);
      this.logger.error({ batch, samples: message.samples.length }, `ALARM: ${error}`);
      over -= message.samples.length;
    }
  }

  /** A signed record of the samples refused while the outbox was full: the loss is declared, never silent. */
  private declareRefused(): void {
    const r = this.refused;
    if (r === undefined) return;
    this.refused = undefined;
    const instruments = [...r.instruments].sort();
    const reason = `outbox full: ${r.count} samples refused between ${new Date(r.first).toISOString()} and ${new Date(r.last).toISOString()} (${instruments.slice(0, 5).join(', ')}${instruments.length > 5 ? ', …' : ''})`;
    this.uplink.push(
      [
        {
          seq: this.sequencer.take(),
          instrument: this.resolved.config.gateway.id,
          channel: 'samples-refused',
          ts: Date.now(),
          value: r.count,
          unit: '',
          quality: 'bad',
          reason: reason.length > 200 ? `${reason.slice(0, 199)}…` : reason,
        },
      ],
      true,
    );
  }

  /**
   * A result file and its samples, stored together (the samples' records carry the file's SHA-256); false when
   * the outbox has no room for them: the file then waits in its folder, nothing is refused or declared lost.
   */
  private deliverFile(instrument: string, file: TakenFile, polled: PolledSample[]): boolean {
    if (polled.length > this.resolved.config.outbox.maxSamples)
      throw new LabtraceError(
        'E_CODEC',
        `${polled.length} samples, more than the outbox holds (outbox.maxSamples ${this.resolved.config.outbox.maxSamples})`,
      );
    if (!this.uplink.hasRoom(polled.length)) return false;
    const samples = this.number(polled, file.sha256);
    this.uplink.commitFile(
      {
        v: 1,
        gateway: this.resolved.config.gateway.id,
        instrument,
        sha256: file.sha256,
        name: file.name,
        size: file.bytes.length,
        takenAt: file.takenAt,
      },
      file.bytes,
      samples,
    );
    return true;
  }

  /** `file`: the SHA-256 of the result file the samples were read from */
  private number(polled: PolledSample[], file?: string): Sample[] {
    return polled.map((s) => {
      // one literal of a fixed shape: spreading objects (or adding a property later) is slow on this path
      const sample: Sample =
        file === undefined
          ? { seq: this.sequencer.take(), instrument: s.instrument, channel: s.channel, ts: s.ts, value: s.value, unit: s.unit, quality: s.quality }
          : {
              seq: this.sequencer.take(),
              instrument: s.instrument,
              channel: s.channel,
              ts: s.ts,
              value: s.value,
              unit: s.unit,
              quality: s.quality,
              file,
            };
      // the wire allows 200 characters: a longer reason (a long serial path in an OS error) would get the whole batch refused
      if (s.reason !== undefined) sample.reason = s.reason.length > 200 ? `${s.reason.slice(0, 199)}…` : s.reason;
      return sample;
    });
  }

  private accept(polled: PolledSample[]): void {
    // refused before numbering: sequence numbers stay contiguous, and the loss is declared later
    if (!this.uplink.hasRoom(polled.length)) {
      const now = Date.now();
      this.refused ??= { count: 0, first: now, last: now, instruments: new Set() };
      this.refused.count += polled.length;
      this.refused.last = now;
      for (const s of polled) this.refused.instruments.add(s.instrument);
      this.uplink.refused += polled.length;
      this.uplink.emit('full', polled.length);
      return;
    }
    this.uplink.push(this.number(polled));
  }
}

function birthInstrument(profile: DeviceProfile): BirthInstrument {
  return {
    id: profile.id,
    identity: profile.identity,
    protocol: profile.protocol,
    channels: profile.points.map((p) => ({ name: channelOf(p), unit: p.unit })),
    // the server offers zero and tare only for the instruments whose profile lets the gateway send them
    ...(profile.protocol === 'balance' && profile.allowCommands.length > 0 ? { commands: [...profile.allowCommands] } : {}),
  };
}
