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
  verifyBatch,
  parseVerifierKey,
  type VerifierKey,
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

  private readonly keys: Map<string, VerifierKey>;
  private readonly warnedUnsigned = new Set<string>();
  /** the gateway of each announced instrument */
  private readonly owners = new Map<string, string>();

  constructor(
    private readonly lab: string,
    private readonly broker: Broker,
    private readonly store: MeasurementStore,
    private readonly registry: Registry,
    private readonly logger: Logger,
    gatewayKeys: { id: string; key: string }[] = [],
  ) {
    super();
    this.keys = new Map(gatewayKeys.map((g) => [g.id, parseVerifierKey(g.key)]));
  }

  async start(): Promise<void> {
    for (const i of await this.registry.instruments()) this.owners.set(i.id, i.gateway);
    this.broker.on('message', this.onMessage);
  }

  /** Why a gateway may not speak for these instruments, or undefined: an instrument belongs to the gateway that announced it first. */
  private foreign(gateway: string, instruments: Iterable<string>): string | undefined {
    for (const id of instruments) {
      const owner = this.owners.get(id);
      if (owner === undefined) return `instrument "${id}" was not announced in a BIRTH`;
      if (owner !== gateway) return `instrument "${id}" belongs to gateway ${owner}`;
    }
    return undefined;
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
        const foreign = this.foreign(message.gateway, new Set(message.samples.map((s) => s.instrument)));
        if (foreign !== undefined) return this.reject(topic.gateway, `DATA: batch ${message.batch}: ${foreign}`);
        const key = this.keys.get(message.gateway);
        if (key !== undefined) {
          if (message.signed === undefined)
            return this.reject(topic.gateway, `DATA: batch ${message.batch} is not signed, and gateway ${message.gateway} has a registered key`);
          try {
            verifyBatch(message.signed, message.samples, key, message.gateway);
          } catch (err) {
            return this.reject(topic.gateway, `DATA: ${(err as Error).message}`);
          }
        } else if (!this.warnedUnsigned.has(message.gateway)) {
          this.warnedUnsigned.add(message.gateway);
          this.logger.warn({ gateway: message.gateway }, 'no key registered for this gateway: its batches are accepted without a signature check');
        }
        let fresh: typeof message.samples;
        try {
          fresh = this.store.store(message.gateway, message.samples, Date.now(), key === undefined ? undefined : message.signed);
        } catch (err) {
          // not acknowledged: the gateway keeps the batch, nothing is lost
          this.logger.error({ gateway: message.gateway, batch: message.batch, err: (err as Error).message }, 'ALARM: batch not stored');
          return this.reject(topic.gateway, `DATA: batch ${message.batch}: ${(err as Error).message}`);
        }
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
        const taken = parsed.data.instruments.find((i) => (this.owners.get(i.id) ?? topic.gateway) !== topic.gateway);
        if (taken) return this.reject(topic.gateway, `BIRTH: instrument "${taken.id}" belongs to gateway ${this.owners.get(taken.id) ?? ''}`);
        // known before the first DATA is handled (the registry write below is asynchronous)
        for (const i of parsed.data.instruments) this.owners.set(i.id, topic.gateway);
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
        const own = parsed.data.instruments.filter((h) => this.owners.get(h.instrument) === topic.gateway);
        for (const h of own) this.health.set(h.instrument, { gateway: topic.gateway, health: h });
        this.emit('health', own);
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
