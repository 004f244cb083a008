// Turns MQTT messages from gateways into stored samples: validate, store durably, then acknowledge.
import { EventEmitter } from 'node:events';
import type { AedesPublishPacket, Client } from 'aedes';
import {
  birthMessageSchema,
  dataMessageSchema,
  healthMessageSchema,
  issuesOf,
  parseTopic,
  topicFor,
  type InstrumentHealthMessage,
  type LiveSample,
} from '@labtrace/protocols';
import type { Broker } from '../broker/broker.js';
import type { Logger } from '../log.js';
import type { MeasurementStore } from '../store/measurement-store.js';
import type { Registry } from '../store/registry.js';

interface IngestEvents {
  samples: [samples: LiveSample[]];
  birth: [gateway: string];
  health: [health: InstrumentHealthMessage[]];
  rejected: [gateway: string, reason: string];
}

export interface IngestCounters {
  batches: number;
  samples: number;
  duplicates: number;
  rejected: number;
}

export class Ingest extends EventEmitter<IngestEvents> {
  readonly counters: IngestCounters = { batches: 0, samples: 0, duplicates: 0, rejected: 0 };
  /** the latest health each gateway reported for each of its instruments */
  private readonly health = new Map<string, { gateway: string; health: InstrumentHealthMessage }>();
  private readonly onMessage = (packet: AedesPublishPacket, client: Client | null): void => {
    this.handle(packet, client).catch((err: unknown) => this.logger.error({ topic: packet.topic, err: String(err) }, 'ingest failed'));
  };

  constructor(
    private readonly lab: string,
    private readonly broker: Broker,
    private readonly store: MeasurementStore,
    private readonly registry: Registry,
    private readonly logger: Logger,
  ) {
    super();
  }

  start(): Promise<void> {
    this.broker.on('message', this.onMessage);
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.broker.off('message', this.onMessage);
    return Promise.resolve();
  }

  /** The latest reported health of an instrument, or null. */
  healthOf(instrument: string): InstrumentHealthMessage | null {
    return this.health.get(instrument)?.health ?? null;
  }

  /** Forgets what a gateway reported: its instruments are not connected while it is away. */
  gatewayGone(gateway: string): void {
    for (const [id, entry] of this.health)
      if (entry.gateway === gateway) this.health.set(id, { gateway, health: { ...entry.health, connected: false } });
  }

  private reject(gateway: string, reason: string): void {
    this.counters.rejected++;
    this.logger.warn({ gateway, reason }, 'message rejected');
    this.emit('rejected', gateway, reason);
  }

  private async handle(packet: AedesPublishPacket, client: Client | null): Promise<void> {
    if (client === null) return; // our own ACKs
    const topic = parseTopic(packet.topic);
    if (!topic || topic.lab !== this.lab) return;
    let body: unknown;
    try {
      body = JSON.parse(packet.payload.toString());
    } catch {
      return this.reject(topic.gateway, `${topic.kind}: payload is not JSON`);
    }
    switch (topic.kind) {
      case 'DATA': {
        const parsed = dataMessageSchema.safeParse(body);
        if (!parsed.success) {
          return this.reject(
            topic.gateway,
            `DATA: ${issuesOf(parsed.error)
              .map((i) => `${i.path}: ${i.message}`)
              .slice(0, 5)
              .join('; ')}`,
          );
        }
        const message = parsed.data;
        if (message.gateway !== topic.gateway) return this.reject(topic.gateway, `DATA: gateway "${message.gateway}" does not match the topic`);
        const fresh = this.store.store(message.gateway, message.samples);
        this.counters.batches++;
        this.counters.samples += fresh.length;
        this.counters.duplicates += message.samples.length - fresh.length;
        // Only now, after the commit, does the gateway learn that it may forget the batch.
        await this.broker.publish(topicFor(this.lab, message.gateway, 'ACK'), JSON.stringify({ v: 1, batch: message.batch }));
        if (fresh.length > 0)
          this.emit(
            'samples',
            fresh.map((s) => ({
              gateway: message.gateway,
              seq: s.seq,
              instrument: s.instrument,
              channel: s.channel,
              ts: s.ts,
              value: s.value,
              unit: s.unit,
              quality: s.quality,
            })),
          );
        return;
      }
      case 'BIRTH': {
        const parsed = birthMessageSchema.safeParse(body);
        if (!parsed.success)
          return this.reject(
            topic.gateway,
            `BIRTH: ${issuesOf(parsed.error)
              .map((i) => `${i.path}: ${i.message}`)
              .slice(0, 5)
              .join('; ')}`,
          );
        if (parsed.data.gateway !== topic.gateway)
          return this.reject(topic.gateway, `BIRTH: gateway "${parsed.data.gateway}" does not match the topic`);
        await this.registry.recordBirth(this.lab, parsed.data);
        this.logger.info({ gateway: topic.gateway, instruments: parsed.data.instruments.length }, 'gateway birth');
        this.emit('birth', topic.gateway);
        return;
      }
      case 'HEALTH': {
        const parsed = healthMessageSchema.safeParse(body);
        if (!parsed.success)
          return this.reject(
            topic.gateway,
            `HEALTH: ${issuesOf(parsed.error)
              .map((i) => `${i.path}: ${i.message}`)
              .slice(0, 5)
              .join('; ')}`,
          );
        if (parsed.data.gateway !== topic.gateway)
          return this.reject(topic.gateway, `HEALTH: gateway "${parsed.data.gateway}" does not match the topic`);
        for (const h of parsed.data.instruments) this.health.set(h.instrument, { gateway: topic.gateway, health: h });
        this.emit('health', parsed.data.instruments);
        return;
      }
      case 'DEATH':
        this.logger.info({ gateway: topic.gateway }, 'gateway death');
        await this.registry.touchGateway(topic.gateway);
        return;
      default:
        return;
    }
  }
}
