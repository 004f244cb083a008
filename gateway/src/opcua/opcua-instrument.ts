// Reads one OPC UA server: one session, one subscription, a monitored item per point. The server's
// source timestamp is the sample time; its status code is the quality (Good good, Uncertain* uncertain,
// Bad* bad with the status name as the reason). After a server restart node-opcua's reconnection makes
// a new session and recreates the subscription and its items; a value the server sends again with a
// source timestamp already taken (the initial value of a recreated item) is dropped, so nothing is
// numbered twice; while the server keeps the session, notifications queued meanwhile are republished.
// Each instrument has its own client and timers: a dead endpoint delays no other instrument.
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type * as NodeOpcuaModule from 'node-opcua-client';
import type {
  ClientSessionPublishService,
  RepublishResponse,
  ClientMonitoredItemGroup,
  ClientSession,
  ClientSubscription,
  DataValue,
  OPCUAClient,
  UserIdentityInfo,
} from 'node-opcua-client';
import { channelOf, type OpcuaPoint, type OpcuaProfile } from '@labtrace/protocols';
import type { Logger } from '../log.js';
import type { InstrumentHealth, InstrumentSource, PolledSample, SourceEvents } from '../source.js';
import { APPLICATION_NAME, gatewayPki, type GatewayPki } from './pki.js';

const LATENCY_WINDOW = 256;

type NodeOpcua = typeof NodeOpcuaModule;
let loading: Promise<NodeOpcua> | undefined;
/** node-opcua is loaded by the first OPC UA instrument only: a gateway without one never pays for it */
export function nodeOpcua(logger?: Logger): Promise<NodeOpcua> {
  loading ??= import('node-opcua-client').then((ua) => {
    // node-opcua prints its warnings and errors as text on the console: they go into the gateway's log
    // (JSON lines), warnings at debug level (they are about the library's own checks), errors as warnings
    if (logger !== undefined) {
      const text = (args: unknown[]): string => args.map((a) => (typeof a === 'string' ? a : String(a))).join(' ');
      ua.setWarningLogger((...args: unknown[]) => logger.debug({ source: 'node-opcua' }, text(args)));
      ua.setErrorLogger((...args: unknown[]) => logger.warn({ source: 'node-opcua' }, text(args)));
    }
    return ua;
  });
  return loading;
}
const MAX_BACKOFF_MS = 30_000;

export interface OpcuaInstrumentOptions {
  logger: Logger;
  /** the gateway's data directory: its OPC UA certificate and trust list live under it */
  dataDir: string;
  /** user-name authentication: the password (read from the profile's passwordFile) */
  password?: string;
  now?: () => number;
}

/** The quality and reason an OPC UA status code gives (its top two bits: 00 good, 01 uncertain, 1x bad). */
export function qualityOf(status: { value: number; name: string }): Pick<PolledSample, 'quality' | 'reason'> {
  const severity = status.value >>> 30;
  if (severity === 0) return { quality: 'good' };
  return { quality: severity === 1 ? 'uncertain' : 'bad', reason: status.name };
}

/** A value a sample can carry, or undefined for one it cannot (a structure, an array). */
function plainValue(value: unknown): number | boolean | string | undefined {
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Date) return value.toISOString();
  // Int64 and UInt64 come as [high, low] 32-bit words
  if (Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'number')) {
    const [high, low] = value as [number, number];
    return high * 2 ** 32 + low;
  }
  return undefined;
}

/** Why a connection attempt failed, in words an operator can act on. */
export function describeFailure(err: unknown, pki: GatewayPki | undefined): { kind: string; reason: string } {
  const message = err instanceof Error ? err.message : String(err);
  if (/certificate verification failed|BadCertificateUntrusted|BadCertificate/i.test(message)) {
    return {
      kind: 'certificate_untrusted',
      reason: `the server's certificate is not trusted: it was placed in ${pki?.rejectedDir ?? 'the rejected folder'}; move it to ${pki?.trustedDir ?? 'the trusted folder'} to trust it`,
    };
  }
  if (/BadIdentityTokenRejected|BadIdentityTokenInvalid|BadUserAccessDenied/i.test(message)) {
    return { kind: 'auth', reason: 'the server refused the user identity (wrong user name or password, or certificate)' };
  }
  if (/BadSecurityPolicyRejected|BadSecurityModeRejected|endpoint.*(not found|does not exist)|cannot find endpoint/i.test(message)) {
    return { kind: 'endpoint', reason: `the server offers no endpoint with this security mode and policy: ${firstLine(message)}` };
  }
  return { kind: 'connect', reason: firstLine(message) };
}

function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? text;
  return line.length > 180 ? `${line.slice(0, 179)}…` : line;
}

function pemToDer(pem: string): Buffer {
  const body = pem.replace(/-----(BEGIN|END) [A-Z ]+-----/g, '').replace(/\s+/g, '');
  return Buffer.from(body, 'base64');
}

interface Item {
  point: OpcuaPoint;
  channel: string;
  /** the source times taken lately (ms * 1e6 + ns), oldest first: a value sent again has one of them */
  seen: Set<number>;
}

/** how many source times per item are remembered: more than a server queue replays after a reconnection */
const SEEN_PER_ITEM = 1024;

export class OpcuaInstrument extends EventEmitter<SourceEvents> implements InstrumentSource {
  private readonly health: Omit<InstrumentHealth, 'latencyMs'>;
  private readonly latencies: number[] = [];
  private nextLatency = 0;
  private readonly items: Item[];
  private readonly now: () => number;
  private readonly logger: Logger;
  private client: OPCUAClient | undefined;
  private session: ClientSession | undefined;
  private subscription: ClientSubscription | undefined;
  private running = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private backoffMs = 500;
  private pki: GatewayPki | undefined;
  private loop: Promise<void> = Promise.resolve();
  private ua: NodeOpcua | undefined;
  /** items by the client handle of their monitored item (for notifications fetched again by Republish) */
  private readonly byHandle = new Map<number, Item>();
  /** the subscription's last data notification: a gap in sequence numbers is asked for again */
  private lastSeq: { subscriptionId: number; seq: number } | undefined;
  private lastReason: string | undefined = 'not connected yet';

  constructor(
    readonly profile: OpcuaProfile,
    private readonly options: OpcuaInstrumentOptions,
  ) {
    super();
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
    this.items = profile.points.map((point) => ({ point, channel: channelOf(point), seen: new Set<number>() }));
    this.health = { instrument: profile.id, connected: false, lastGood: null, errors: {}, polls: 0 };
  }

  get id(): string {
    return this.profile.id;
  }

  /** Why the instrument is not connected (undefined while it is). */
  get reason(): string | undefined {
    return this.lastReason;
  }

  start(): Promise<void> {
    this.running = true;
    // never awaited here: a server that does not answer must not hold up the gateway's start
    this.loop = this.connect();
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.retryTimer);
    // closing the client ends a connection attempt in flight (a server that never answers)
    await this.teardown();
    await this.loop;
  }

  getHealth(): InstrumentHealth {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const at = (p: number): number | null =>
      sorted.length === 0 ? null : (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? null);
    return {
      ...this.health,
      errors: { ...this.health.errors },
      latencyMs: { p50: at(0.5), p99: at(0.99) },
      ...(this.lastReason === undefined ? {} : { problem: this.lastReason }),
    };
  }

  private count(kind: string): void {
    this.health.errors[kind] = (this.health.errors[kind] ?? 0) + 1;
  }

  private setConnected(connected: boolean, reason?: string): void {
    this.lastReason = connected ? undefined : reason;
    if (this.health.connected === connected) return;
    this.health.connected = connected;
    this.emit('health', this.getHealth());
  }

  /** One attempt at a session and its subscription; on failure, another after a growing pause. */
  private async connect(): Promise<void> {
    if (!this.running) return;
    const { connection } = this.profile;
    try {
      this.pki ??= await gatewayPki(this.options.dataDir);
      const pki = this.pki;
      const ua = await nodeOpcua(this.logger);
      this.ua = ua;
      const { MessageSecurityMode, SecurityPolicy } = ua;
      const client = ua.OPCUAClient.create({
        applicationName: APPLICATION_NAME,
        applicationUri: pki.applicationUri,
        clientName: this.profile.id,
        clientCertificateManager: pki.manager,
        certificateFile: pki.certificateFile,
        privateKeyFile: pki.privateKeyFile,
        securityMode: MessageSecurityMode[connection.securityMode],
        securityPolicy: SecurityPolicy[connection.securityPolicy],
        endpointMustExist: false,
        keepSessionAlive: true,
        requestedSessionTimeout: 60_000,
        transportTimeout: connection.timeoutMs,
        defaultTransactionTimeout: connection.timeoutMs,
        // the first attempt fails fast (this loop retries with its own back-off and a reason); once
        // connected, node-opcua reconnects by itself and repairs the session and subscription
        connectionStrategy: { maxRetry: 1, initialDelay: 200, maxDelay: 10_000 },
      });
      this.client = client;
      client.on('connection_lost', () => {
        this.count('connect');
        this.logger.warn({ endpoint: connection.endpointUrl }, 'OPC UA connection lost: reconnecting');
        this.setConnected(false, `connection to ${connection.endpointUrl} lost: reconnecting`);
      });
      client.on('connection_reestablished', () => this.logger.info('OPC UA connection re-established'));
      client.on('reconnection_attempt_has_failed', (err: Error) => {
        const failure = describeFailure(err, this.pki);
        this.count(failure.kind);
        this.setConnected(false, failure.reason);
      });
      client.on('after_reconnection', () => {
        if (this.session !== undefined) this.setConnected(true);
      });
      await client.connect(connection.endpointUrl);
      if (!this.running) return;
      const session = await client.createSession(this.identity(ua));
      this.session = session;
      session.on('session_restored', () => {
        this.logger.info('OPC UA session restored');
        this.setConnected(true);
      });
      session.on('session_closed', () => {
        if (this.running) this.setConnected(false, 'session closed by the server');
      });
      await this.subscribe(ua, session);
      this.backoffMs = 500;
      this.logger.info({ endpoint: connection.endpointUrl, securityMode: connection.securityMode }, 'OPC UA instrument connected');
      this.setConnected(true);
    } catch (err) {
      const failure = describeFailure(err, this.pki);
      this.count(failure.kind);
      this.logger.warn({ endpoint: connection.endpointUrl, reason: failure.reason }, 'OPC UA instrument not reachable');
      this.setConnected(false, failure.reason);
      await this.teardown();
      if (!this.running) return;
      const delay = this.backoffMs * (0.8 + Math.random() * 0.4);
      this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
      this.retryTimer = setTimeout(() => {
        this.loop = this.connect();
      }, delay);
    }
  }

  private identity({ UserTokenType }: NodeOpcua): UserIdentityInfo {
    const auth = this.profile.connection.auth;
    switch (auth.kind) {
      case 'anonymous':
        return { type: UserTokenType.Anonymous };
      case 'username':
        return { type: UserTokenType.UserName, userName: auth.username, password: this.options.password ?? '' };
      case 'certificate':
        return {
          type: UserTokenType.Certificate,
          certificateData: pemToDer(readFileSync(auth.certificateFile, 'utf8')),
          privateKey: readFileSync(auth.privateKeyFile, 'utf8'),
        };
    }
  }

  private async subscribe(ua: NodeOpcua, session: ClientSession): Promise<void> {
    const { AttributeIds, DataChangeFilter, DataChangeTrigger, DeadbandType, TimestampsToReturn } = ua;
    const sub = this.profile.subscription;
    const subscription = await session.createSubscription2({
      requestedPublishingInterval: sub.publishingIntervalMs,
      requestedLifetimeCount: 100,
      requestedMaxKeepAliveCount: 10,
      maxNotificationsPerPublish: 0,
      publishingEnabled: true,
      priority: 10,
    });
    this.subscription = subscription;
    const nodeIds = await this.resolve(ua, session);
    // one group of monitored items per set of parameters (sampling interval, queue size, deadband)
    const groups = new Map<string, number[]>();
    nodeIds.forEach((nodeId, i) => {
      if (nodeId === undefined) return;
      const p = this.items[i]?.point;
      const key = JSON.stringify([p?.samplingIntervalMs ?? sub.samplingIntervalMs, p?.queueSize ?? sub.queueSize, p?.deadband ?? null]);
      groups.set(key, [...(groups.get(key) ?? []), i]);
    });
    for (const [key, indexes] of groups) {
      const [samplingInterval, queueSize, deadband] = JSON.parse(key) as [number, number, OpcuaPoint['deadband'] | null];
      const group: ClientMonitoredItemGroup = await subscription.monitorItems(
        indexes.map((i) => ({ nodeId: nodeIds[i] ?? '', attributeId: AttributeIds.Value })),
        {
          samplingInterval,
          queueSize,
          discardOldest: true,
          ...(deadband
            ? {
                filter: new DataChangeFilter({
                  trigger: DataChangeTrigger.StatusValue,
                  deadbandType: deadband.type === 'absolute' ? DeadbandType.Absolute : DeadbandType.Percent,
                  deadbandValue: deadband.value,
                }),
              }
            : {}),
        },
        TimestampsToReturn.Both,
      );
      group.monitoredItems.forEach((monitored, k) => {
        const item = this.items[indexes[k] ?? -1];
        if (item !== undefined && !monitored.statusCode.isGood()) {
          this.count('monitored_item');
          this.report([this.badSample(item, `monitored item refused: ${monitored.statusCode.name}`)]);
        }
      });
      group.on('changed', (_monitored, dataValue, k) => {
        const item = this.items[indexes[k] ?? -1];
        if (item !== undefined) this.onValue(item, dataValue);
      });
      group.monitoredItems.forEach((monitored, k) => {
        const item = this.items[indexes[k] ?? -1];
        if (item !== undefined) this.byHandle.set(monitored.monitoringParameters.clientHandle, item);
      });
    }
    // node-opcua's client republishes from the last sequence number it saw: a newer notification that
    // arrives first after a reconnection hides the ones before it. A gap is asked for here, one number
    // at a time, while the server still keeps them (its retransmission queue)
    subscription.on('raw_notification', (message: { sequenceNumber: number; notificationData?: unknown[] | null }) => {
      if ((message.notificationData ?? []).length === 0) return; // a keep-alive announces the next number, it uses none
      const subscriptionId = subscription.subscriptionId;
      const last = this.lastSeq;
      const seq = message.sequenceNumber;
      if (last === undefined || last.subscriptionId !== subscriptionId || seq <= last.seq) {
        if (last === undefined || last.subscriptionId !== subscriptionId) this.lastSeq = { subscriptionId, seq };
        return;
      }
      this.lastSeq = { subscriptionId, seq };
      if (seq > last.seq + 1) void this.republish(ua, session, subscriptionId, last.seq + 1, seq - 1);
    });
  }

  /** Asks the server again for the notifications numbered from..to; what it no longer has is counted as lost. */
  private async republish(ua: NodeOpcua, session: ClientSession, subscriptionId: number, from: number, to: number): Promise<void> {
    for (let seq = from; seq <= Math.min(to, from + 1000); seq++) {
      try {
        // node-opcua's session has the service, its ClientSession type does not name it
        const publishing = session as unknown as ClientSessionPublishService;
        const response = await new Promise<RepublishResponse>((resolve, reject) =>
          publishing.republish(new ua.RepublishRequest({ subscriptionId, retransmitSequenceNumber: seq }), (err, res) =>
            err || !res ? reject(err ?? new Error('no response')) : resolve(res),
          ),
        );
        this.count('republished');
        for (const data of response.notificationMessage.notificationData ?? []) {
          if (!(data instanceof ua.DataChangeNotification)) continue;
          for (const n of data.monitoredItems ?? []) {
            const item = this.byHandle.get(n.clientHandle);
            if (item !== undefined) this.onValue(item, n.value);
          }
        }
      } catch (err) {
        // BadMessageNotAvailable: the server no longer has it (node-opcua's own republish may have taken it)
        this.count('republish_failed');
        this.logger.debug({ seq, err: String(err) }, 'OPC UA republish');
      }
    }
  }

  /** The node of each point: its NodeId, or its browse path translated by the server (undefined: not found). */
  private async resolve({ makeBrowsePath }: NodeOpcua, session: ClientSession): Promise<(string | undefined)[]> {
    const byPath = this.items.map((item, i) => ({ item, i })).filter(({ item }) => item.point.browsePath !== undefined);
    const nodeIds: (string | undefined)[] = this.items.map((item) => item.point.nodeId);
    if (byPath.length === 0) return nodeIds;
    const results = await session.translateBrowsePath(byPath.map(({ item }) => makeBrowsePath('ObjectsFolder', item.point.browsePath ?? '')));
    byPath.forEach(({ item, i }, k) => {
      const result = results[k];
      const target = result?.targets?.[0];
      if (result?.statusCode.isGood() && target) nodeIds[i] = target.targetId.toString();
      else {
        this.count('browse_path');
        this.report([this.badSample(item, `browse path ${item.point.browsePath ?? ''} not found: ${result?.statusCode.name ?? 'no result'}`)]);
      }
    });
    return nodeIds;
  }

  private onValue(item: Item, dataValue: DataValue): void {
    const arrival = this.now();
    this.health.polls++;
    const source = dataValue.sourceTimestamp;
    const ts = source?.getTime() ?? dataValue.serverTimestamp?.getTime() ?? arrival;
    if (source) {
      // the source time at 1 ns: a value the server sends again (a recreated item's initial value)
      // has a time already taken, and is dropped. Not "older than the last": after a reconnection a
      // republished (older) notification may come after a new one, and is no duplicate
      const key = source.getTime() * 1e6 + Math.floor((dataValue.sourcePicoseconds ?? 0) / 1000);
      if (item.seen.has(key)) {
        this.count('duplicate');
        return;
      }
      item.seen.add(key);
      if (item.seen.size > SEEN_PER_ITEM) item.seen.delete(item.seen.values().next().value ?? key);
      this.pushLatency(Math.max(0, arrival - ts));
    }
    const status = dataValue.statusCode;
    const { quality, reason } = qualityOf(status);
    const value = plainValue(dataValue.value.value);
    let sample: PolledSample;
    if (value === undefined && quality !== 'bad') {
      this.count('unsupported_value');
      sample = this.badSample(item, `unsupported value of data type ${this.ua?.DataType[dataValue.value.dataType] ?? dataValue.value.dataType}`, ts);
    } else if (typeof value === 'number' && !Number.isFinite(value) && quality !== 'bad') {
      // a Double may be NaN or infinite on the wire; a sample carries finite numbers only
      this.count('not_finite');
      sample = this.badSample(item, `not a finite number: ${value}`, ts);
    } else {
      sample = {
        instrument: this.profile.id,
        channel: item.channel,
        ts,
        value: quality === 'bad' || (typeof value === 'number' && !Number.isFinite(value)) ? null : (value ?? null),
        unit: item.point.unit,
        quality,
        ...(reason === undefined ? {} : { reason }),
      };
    }
    if (quality !== 'good') this.count(`status_${status.name}`.slice(0, 64));
    else this.health.lastGood = arrival;
    this.report([sample]);
  }

  private pushLatency(ms: number): void {
    this.emit('latency', ms);
    if (this.latencies.length < LATENCY_WINDOW) this.latencies.push(ms);
    else this.latencies[this.nextLatency] = ms;
    this.nextLatency = (this.nextLatency + 1) % LATENCY_WINDOW;
  }

  private report(samples: PolledSample[]): void {
    if (samples.length > 0) this.emit('samples', samples);
  }

  private badSample(item: Item, reason: string, ts = this.now()): PolledSample {
    return { instrument: this.profile.id, channel: item.channel, ts, value: null, unit: item.point.unit, quality: 'bad', reason };
  }

  private async teardown(): Promise<void> {
    const { client, session, subscription } = this;
    this.client = undefined;
    this.session = undefined;
    this.subscription = undefined;
    try {
      await subscription?.terminate();
    } catch {
      // the server may be gone
    }
    try {
      await session?.close(true);
    } catch {
      // idem
    }
    try {
      await client?.disconnect();
    } catch (err) {
      this.logger.debug({ err: String(err) }, 'OPC UA disconnect');
    }
    if (this.health.connected) this.setConnected(false, 'stopped');
  }
}
