// The edge gateway: polls every instrument, numbers the samples and hands them to the uplink.
import { channelOf, type DeviceProfile, type Sample } from '@labtrace/protocols';
import type { Logger } from './log.js';
import { InstrumentPoller, type PolledSample } from './modbus/instrument-poller.js';
import { Sequencer } from './sequencer.js';
import { MqttUplink } from './uplink/mqtt-uplink.js';
import type { ResolvedGatewayConfig } from './config.js';

export const GATEWAY_VERSION = '0.1.0';

export class Gateway {
  readonly pollers: InstrumentPoller[];
  readonly uplink: MqttUplink;
  private readonly sequencer: Sequencer;
  private fullSince: number | undefined;

  constructor(
    private readonly resolved: ResolvedGatewayConfig,
    private readonly logger: Logger,
  ) {
    const { config, profiles } = resolved;
    this.sequencer = new Sequencer(resolved.dataDir);
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
    this.pollers = profiles.map((profile) => {
      const poller = new InstrumentPoller(profile, logger.child({ instrument: profile.id }));
      poller.on('samples', (samples) => this.accept(samples));
      return poller;
    });
  }

  async start(): Promise<void> {
    await this.uplink.start();
    await Promise.all(this.pollers.map((p) => p.start()));
    this.logger.info({ gateway: this.resolved.config.gateway.id, instruments: this.pollers.length }, 'gateway started');
  }

  async stop(): Promise<void> {
    await Promise.all(this.pollers.map((p) => p.stop()));
    await this.uplink.stop();
  }

  private accept(polled: PolledSample[]): void {
    const samples: Sample[] = polled.map((s) => ({ seq: this.sequencer.take(), ...s }));
    this.uplink.push(samples);
  }
}

function birthInstrument(profile: DeviceProfile): { id: string; identity: DeviceProfile['identity']; channels: { name: string; unit: string }[] } {
  return { id: profile.id, identity: profile.identity, channels: profile.points.map((p) => ({ name: channelOf(p), unit: p.unit })) };
}
