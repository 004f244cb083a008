// Sends batches of samples to the server over MQTT. Each batch is committed to the durable outbox
// before it is published, and leaves the outbox only when the server acknowledges that it is stored
// (the broker's PUBACK only means "received"). Unacknowledged batches, including those of an earlier
// run of the gateway, are resent after every (re)connect, in order.
import { EventEmitter } from 'node:events';
import mqtt, { type MqttClient } from 'mqtt';
import {
  ackMessageSchema,
  cmdMessageSchema,
  encodeRawFile,
  fileAckMessageSchema,
  topicFor,
  type BirthMessage,
  type RawFileHeader,
  type Sample,
} from '@labtrace/protocols';
import type { Logger } from '../log.js';
import type { Outbox, StoredBatch } from '../outbox/outbox.js';

export const MQTT_SINK = 'mqtt';
/** a batch published this long ago without an ACK is published again (the server drops duplicates) */
export const RESEND_AFTER_MS = 30_000;
/** batches published and not yet acknowledged, at most: a backlog is sent as acknowledgements come, not all at once */
export const MAX_IN_FLIGHT = 32;
/** result files published and not yet confirmed, at most (each may be megabytes) */
export const MAX_FILES_IN_FLIGHT = 4;

export interface UplinkOptions {
  url: string;
  username: string;
  password: string;
  gateway: string;
  lab: string;
  keepaliveSeconds: number;
  maxBatchSamples: number;
  maxBatchDelayMs: number;
  /** bound of samples held (pending and unacknowledged); beyond it new samples are refused */
  maxHeldSamples: number;
  birth: () => Omit<BirthMessage, 'session'>;
  outbox: Outbox;
}

interface UplinkEvents {
  connected: [];
  disconnected: [];
  acked: [batch: number];
  fileAcked: [sha256: string];
  full: [refused: number];
  /** the server asks an instrument to zero or tare */
  command: [instrument: string, command: 'zero' | 'tare'];
}

export class MqttUplink extends EventEmitter<UplinkEvents> {
  private client: MqttClient | undefined;
  private pending: Sample[] = [];
  /** when each unacknowledged batch was last published in this session */
  private readonly sentAt = new Map<number, number>();
  /** when each unconfirmed result file was last published in this session */
  private readonly fileSentAt = new Map<string, number>();
  /** the highest batch number published in order; later stored batches wait for room in the window */
  private lastSent = -1;
  private resendTimer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly session = Date.now();
  /** false from a (re)connect until the unacknowledged batches are sent again, so batches go out in order */
  private ready = false;
  refused = 0;
  /** DATA messages published since the start, resends included (the metrics read it) */
  published = 0;

  constructor(
    private readonly options: UplinkOptions,
    private readonly logger: Logger,
  ) {
    super();
  }

  get isConnected(): boolean {
    return this.client?.connected === true;
  }

  /** Samples not yet confirmed by the server (another sink's backlog has its own bound). */
  get held(): number {
    return this.options.outbox.heldFor(MQTT_SINK) + this.pending.length;
  }

  async start(): Promise<void> {
    const { gateway, lab } = this.options;
    const client = mqtt.connect(this.options.url, {
      clientId: gateway,
      username: this.options.username,
      password: this.options.password,
      keepalive: this.options.keepaliveSeconds,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      clean: true,
      will: {
        topic: topicFor(lab, gateway, 'DEATH'),
        payload: Buffer.from(JSON.stringify({ v: 1, gateway, session: this.session })),
        qos: 1,
        retain: false,
      },
    });
    this.client = client;
    client.on('connect', () => {
      this.ready = false;
      this.logger.info({ gateway, url: this.options.url }, 'connected to broker');
      // Packets of one connection are handled in order, so the subscription is in place before any
      // batch sent after it is acknowledged; sending does not wait for the SUBACK, which may never
      // come when a session is taken over (a restart after a crash).
      client.subscribe([topicFor(lab, gateway, 'ACK'), topicFor(lab, gateway, 'CMD')], { qos: 1 }, (err) => {
        if (err) this.logger.error({ err: err.message }, 'cannot subscribe to ACK and CMD');
      });
      this.publishBirth();
      this.ready = true;
      this.resendUnacked();
      this.sendFiles();
      this.emit('connected');
    });
    client.on('close', () => {
      this.ready = false;
      this.sentAt.clear();
      this.fileSentAt.clear();
      this.lastSent = -1;
      this.emit('disconnected');
    });
    client.on('error', (err) => this.logger.warn({ gateway, err: err.message }, 'broker connection error'));
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    this.flushTimer = setInterval(() => this.flush(), this.options.maxBatchDelayMs);
    // A lost ACK (or a batch the server could not store) must not wait for the next reconnect.
    this.resendTimer = setInterval(
      () => {
        this.resendOverdue();
        this.sendFiles();
      },
      Math.min(RESEND_AFTER_MS, 10_000),
    );
    return Promise.resolve();
  }

  /** Flushes what is pending, waits briefly for acknowledgements, publishes DEATH and disconnects. */
  async stop(graceMs = 2000): Promise<void> {
    if (this.flushTimer) clearInterval(this.flushTimer);
    this.flushTimer = undefined;
    if (this.resendTimer) clearInterval(this.resendTimer);
    this.resendTimer = undefined;
    this.flush();
    const client = this.client;
    if (!client) return;
    const deadline = Date.now() + graceMs;
    const unacked = (): number => this.options.outbox.heldFor(MQTT_SINK) + this.options.outbox.unsentFileCount;
    while (unacked() > 0 && client.connected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (unacked() > 0) {
      this.logger.warn({ samples: unacked() }, 'stopping with unacknowledged batches; they stay in the outbox and are sent at the next start');
    }
    if (client.connected) {
      const { lab, gateway } = this.options;
      const death = client
        .publishAsync(topicFor(lab, gateway, 'DEATH'), JSON.stringify({ v: 1, gateway, session: this.session }), { qos: 1 })
        .catch(() => undefined);
      await Promise.race([death, new Promise((r) => setTimeout(r, 1000))]);
    }
    // forced: messages still in flight need no PUBACK, the outbox keeps every batch not acknowledged
    await client.endAsync(true);
    this.client = undefined;
  }

  /** Publishes a message that may be lost (QoS 0), such as health; dropped while disconnected. */
  publishRaw(topic: string, payload: string): void {
    if (this.client?.connected) this.client.publish(topic, payload, { qos: 0 });
  }

  /** Whether `n` more samples fit under the bound. */
  hasRoom(n: number): boolean {
    return this.held + n <= this.options.maxHeldSamples;
  }

  /** Queues samples; returns false (and counts them as refused) when the bound is reached, unless forced (the gateway's own records). */
  push(samples: Sample[], force = false): boolean {
    if (!force && !this.hasRoom(samples.length)) {
      this.refused += samples.length;
      this.emit('full', samples.length);
      return false;
    }
    for (const sample of samples) this.pending.push(sample);
    if (this.pending.length >= this.options.maxBatchSamples) this.flush();
    return true;
  }

  /**
   * Stores a result file's raw bytes and its samples in one transaction (the file is taken with all its
   * samples, or not at all), after what was pending, then sends them. The caller checked hasRoom.
   */
  commitFile(header: RawFileHeader, bytes: Uint8Array, samples: Sample[]): void {
    this.flush();
    const { outbox, gateway, maxBatchSamples } = this.options;
    const stored = outbox.transaction(() => {
      outbox.putFile(header, bytes);
      const batches: StoredBatch[] = [];
      for (let i = 0; i < samples.length; i += maxBatchSamples) batches.push(outbox.append(gateway, samples.slice(i, i + maxBatchSamples)));
      return batches;
    });
    for (const batch of stored) {
      if (this.sentAt.size >= MAX_IN_FLIGHT) break;
      if (batch.batch === this.lastSent + 1) this.publish(batch);
      else this.sendMore();
    }
    this.sendFiles();
  }

  /** Publishes the result files the server has not confirmed, a few at a time; one unconfirmed for RESEND_AFTER_MS goes again. */
  private sendFiles(): void {
    const client = this.client;
    if (!client?.connected || !this.ready) return;
    const now = Date.now();
    for (const header of this.options.outbox.unsentFiles(this.options.gateway, MAX_FILES_IN_FLIGHT)) {
      const at = this.fileSentAt.get(header.sha256);
      if (at !== undefined && now - at < RESEND_AFTER_MS) continue;
      const bytes = this.options.outbox.fileBytes(header.sha256);
      if (bytes === undefined) continue;
      this.fileSentAt.set(header.sha256, now);
      client.publish(topicFor(this.options.lab, this.options.gateway, 'FILE'), Buffer.from(encodeRawFile(header, bytes)), { qos: 1 }, (err) => {
        if (err) this.logger.warn({ file: header.name, err: err.message }, 'publishing a result file failed; will resend');
      });
    }
  }

  private flush(): void {
    while (this.pending.length > 0) {
      const samples = this.pending.splice(0, this.options.maxBatchSamples);
      // durable first, then sent (now, or when the window has room)
      const stored = this.options.outbox.append(this.options.gateway, samples);
      if (this.sentAt.size >= MAX_IN_FLIGHT) continue; // sent when acknowledgements make room
      // The next in order goes straight out. Otherwise earlier batches are unsent, or the window's
      // position is unknown (after a restart whose stored batches were all acknowledged, lastSent is
      // -1 while numbering continues): the outbox says what comes next.
      if (stored.batch === this.lastSent + 1) this.publish(stored);
      else this.sendMore();
    }
  }

  /** Publishes stored batches after the last one sent, in order, while the window has room. */
  private sendMore(): void {
    if (!this.client?.connected || !this.ready) return;
    while (this.sentAt.size < MAX_IN_FLIGHT) {
      const page = this.options.outbox.unackedPage(MQTT_SINK, this.lastSent, MAX_IN_FLIGHT - this.sentAt.size);
      if (page.length === 0) return;
      for (const stored of page) this.publish(stored);
    }
  }

  private resendOverdue(): void {
    const now = Date.now();
    for (const [batch, at] of this.sentAt) {
      if (now - at < RESEND_AFTER_MS) continue;
      const stored = this.options.outbox.get(batch);
      if (stored === undefined) this.sentAt.delete(batch);
      else this.publish(stored);
    }
  }

  private publish(stored: StoredBatch): void {
    const client = this.client;
    if (!client?.connected || !this.ready) return; // sent, in order, once (re)connected
    this.sentAt.set(stored.batch, Date.now());
    this.published++;
    if (stored.batch > this.lastSent) this.lastSent = stored.batch;
    const { lab, gateway } = this.options;
    const payload = typeof stored.wire === 'string' ? stored.wire : Buffer.from(stored.wire.buffer, stored.wire.byteOffset, stored.wire.byteLength);
    client.publish(topicFor(lab, gateway, 'DATA'), payload, { qos: 1 }, (err) => {
      if (err) this.logger.warn({ batch: stored.batch, err: err.message }, 'publish failed; will resend');
    });
  }

  /** Announces the gateway again (its instruments and key id). */
  publishBirth(): void {
    const { lab, gateway } = this.options;
    const birth: BirthMessage = { ...this.options.birth(), session: this.session };
    this.client?.publish(topicFor(lab, gateway, 'BIRTH'), JSON.stringify(birth), { qos: 1 });
  }

  /** Sends again, in order, everything not acknowledged from `fromBatch` on (after a reconnect, or when the server asks). */
  private resendUnacked(fromBatch = 0): void {
    for (const batch of [...this.sentAt.keys()]) if (batch >= fromBatch) this.sentAt.delete(batch);
    this.lastSent = Math.min(this.lastSent, fromBatch - 1);
    this.sendMore();
  }

  private onMessage(topic: string, payload: Buffer): void {
    if (topic.endsWith('/CMD')) return this.onCommand(payload);
    let parsed;
    try {
      const body = JSON.parse(payload.toString('utf8')) as unknown;
      const file = fileAckMessageSchema.safeParse(body);
      if (file.success) return this.onFileAck(file.data.file);
      parsed = ackMessageSchema.safeParse(body);
    } catch {
      parsed = undefined;
    }
    if (!parsed?.success) {
      this.logger.warn({ topic }, 'ignored a malformed ACK');
      return;
    }
    this.sentAt.delete(parsed.data.batch);
    const before = this.options.outbox.heldFor(MQTT_SINK);
    this.options.outbox.ack(MQTT_SINK, parsed.data.batch);
    this.sendMore();
    if (this.options.outbox.heldFor(MQTT_SINK) === before) return; // not held, or confirmed before
    this.emit('acked', parsed.data.batch);
  }

  private onFileAck(sha256: string): void {
    this.fileSentAt.delete(sha256);
    if (this.options.outbox.ackFile(sha256)) this.emit('fileAcked', sha256);
    this.sendFiles();
  }

  private onCommand(payload: Buffer): void {
    let parsed;
    try {
      parsed = cmdMessageSchema.safeParse(JSON.parse(payload.toString('utf8')));
    } catch {
      parsed = undefined;
    }
    if (!parsed?.success) {
      this.logger.warn('ignored a malformed CMD');
      return;
    }
    const cmd = parsed.data;
    this.logger.info({ cmd: cmd.cmd }, 'command from the server');
    if (cmd.cmd === 'rebirth') this.publishBirth();
    else if (cmd.cmd === 'instrument') this.emit('command', cmd.instrument, cmd.command);
    else this.resendUnacked(cmd.fromBatch);
  }
}
