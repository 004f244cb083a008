// External broker mode: instead of running its own broker, the server is an MQTT client of the lab's
// broker (Mosquitto, EMQX) and takes the gateways' messages from there. Authentication and topic
// authorization are then the broker's job (see deploy/mosquitto for a matching ACL).
//
// Delivery guarantee. The server holds a persistent session (clean session off, fixed client id) and
// subscribes at QoS 1, so QoS 1 messages published while it is briefly away are queued by the broker
// and delivered when it reconnects. MQTT.js sends the PUBACK as soon as our 'message' listeners have
// returned, which is before ingest has stored anything: a PUBACK means "handed to the server", not
// "stored". The end-to-end guarantee comes from our own ACK message, published only after a batch is
// committed; the gateway keeps and resends a batch until that ACK arrives, and ingest drops the
// duplicates. Messages are emitted synchronously from MQTT.js's 'message' event, in arrival order,
// so a BIRTH is always handled before the DATA that follows it.
//
// Several nodes (sharedGroup). Each node takes DATA through the MQTT shared subscription
// `$share/<group>/labtrace/v1/<lab>/+/DATA`: the broker hands each batch to one member of the group, and
// that node stores it and publishes its ACK (gateways read their ACK topic whoever publishes on it).
// BIRTH, DEATH and HEALTH stay ordinary subscriptions that reach every node: ingest checks each DATA
// against the instruments the gateway announced in its BIRTH (kept in memory per node), and presence
// and instrument health are served by every node's API and live updates.
import { EventEmitter } from 'node:events';
import os from 'node:os';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { LabtraceError, parseTopic, topicFor, type MessageKind } from '@labtrace/protocols';
import type { Logger } from '../log.js';
import type { BusEvents, MessageBus } from './bus.js';

export interface ExternalBrokerOptions {
  lab: string;
  /** mqtt://host:port or mqtts://host:port (or MQTT.js's tcp:// and tls://), without credentials */
  url: string;
  username: string;
  password: string;
  /** default `labtrace-server-<lab>` (with a shared group: `-<host name>` after it); must stay the same across restarts to keep the session */
  clientId?: string;
  /** the shared subscription group of the lab's server nodes; without it this node takes every batch */
  sharedGroup?: string;
  /**
   * default true. false: a node that does not ingest (cluster.roles without `ingest`) takes no batch and no result
   * file, only the gateways' presence and health; the batches are left to the nodes that store them
   */
  ingest?: boolean;
  /** PEM text of the CA that signed the broker's certificate (mqtts) */
  ca?: string;
  /** default true; false accepts any certificate (testing only) */
  rejectUnauthorized?: boolean;
  /** how long start() keeps trying to reach the broker before it gives up; default 15 s */
  connectTimeoutMs?: number;
  logger: Logger;
}

/** URL schemes of MQTT over TCP and over TLS (tcp: and tls: are MQTT.js's other names for them) */
const PROTOCOLS = ['mqtt:', 'mqtts:', 'tcp:', 'tls:'];
const SECURE = new Set(['mqtts:', 'tls:']);

/** What the server takes from gateways; its own ACK and CMD are never subscribed to. */
const INBOUND: readonly MessageKind[] = ['BIRTH', 'DATA', 'DEATH', 'HEALTH', 'FILE'];

/** What only a node that ingests takes: the batches and the result files. */
const INGESTED: readonly MessageKind[] = ['DATA', 'FILE'];

/** MQTT 3.1.1 CONNACK return codes that no retry will fix. */
const REFUSALS: Record<number, { code: 'E_AUTH' | 'E_CONFIG'; text: string }> = {
  1: { code: 'E_CONFIG', text: 'unacceptable protocol version (MQTT 3.1.1 is required)' },
  2: { code: 'E_CONFIG', text: 'client id rejected' },
  4: { code: 'E_AUTH', text: 'bad username or password' },
  // Mosquitto answers a wrong password with this code under MQTT 3.1.1.
  5: { code: 'E_AUTH', text: 'not authorized (wrong username or password, or the user may not connect)' },
};

function errorText(err: Error & { code?: unknown }): string {
  // A refused connection to a name with several addresses is an AggregateError with an empty message.
  if (typeof err.code !== 'string' || err.message.includes(err.code)) return err.message;
  return err.message === '' ? err.code : `${err.message} (${err.code})`;
}

/** A CONNACK refusal that no retry will fix, as the end of a sentence about the broker. */
function refusalOf(err: Error & { code?: unknown }, username: string): { code: 'E_AUTH' | 'E_CONFIG'; message: string } | undefined {
  const refusal = typeof err.code === 'number' ? REFUSALS[err.code] : undefined;
  return refusal && { code: refusal.code, message: `refused user "${username}": ${refusal.text}` };
}

/** Granted QoS of each filter; MQTT.js rejects a SUBACK that holds a refusal (128) but keeps the packet. */
async function subscribe(client: MqttClient, filters: string[]): Promise<number[]> {
  try {
    return (await client.subscribeAsync(filters, { qos: 1 })).map((g) => g.qos);
  } catch (err) {
    const granted = (err as { packet?: { granted?: (number | { qos: number })[] } }).packet?.granted;
    if (!granted) throw err;
    return granted.map((g) => (typeof g === 'number' ? g : g.qos));
  }
}

/** `labtrace-server-<lab>`, and for a member of a shared group the host name after it, so that nodes differ by default. */
export function defaultClientId(lab: string, sharedGroup: string | undefined, host = os.hostname()): string {
  const base = `labtrace-server-${lab}`;
  if (sharedGroup === undefined) return base;
  const node = host.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64);
  return node === '' ? base : `${base}-${node}`;
}

export class ExternalBroker extends EventEmitter<BusEvents> implements MessageBus {
  private client: MqttClient | undefined;
  private readonly gateways = new Set<string>();
  /** the last connection problem logged, so that a broker that stays away is not logged every second */
  private lastProblem: string | undefined;
  /** the broker's address without credentials, for logs and errors */
  private readonly where: string;
  readonly clientId: string;
  /** true in a shared group: this node receives only part of each gateway's batches */
  readonly sharedIngest: boolean;
  /** the filters subscribed to, in INBOUND's order (DATA through the shared subscription in a group) */
  private readonly filters: string[];

  constructor(private readonly options: ExternalBrokerOptions) {
    super();
    this.clientId = options.clientId ?? defaultClientId(options.lab, options.sharedGroup);
    this.where = ExternalBroker.checkUrl(options.url);
    const group = options.sharedGroup;
    if (group !== undefined && !/^[^/+#\s]+$/.test(group))
      throw new LabtraceError('E_CONFIG', `external MQTT broker: sharedGroup "${group}" is not one MQTT topic level (no '+', '#', '/' or spaces)`);
    this.sharedIngest = group !== undefined && options.ingest !== false;
    this.filters = (options.ingest === false ? INBOUND.filter((kind) => !INGESTED.includes(kind)) : INBOUND).map((kind) => {
      const filter = topicFor(options.lab, '+', kind);
      return kind === 'DATA' && group !== undefined ? `$share/${group}/${filter}` : filter;
    });
  }

  /** Returns `protocol//host:port`; refuses other protocols and credentials in the URL (they would end up in logs). */
  private static checkUrl(url: string): string {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new LabtraceError('E_CONFIG', 'external MQTT broker: the url is not a URL (expected mqtt://host:port or mqtts://host:port)');
    }
    if (!PROTOCOLS.includes(parsed.protocol))
      throw new LabtraceError('E_CONFIG', `external MQTT broker: unsupported protocol "${parsed.protocol}" (expected mqtt:// or mqtts://)`);
    if (parsed.username !== '' || parsed.password !== '')
      throw new LabtraceError('E_CONFIG', 'external MQTT broker: give the username and password separately, not in the url');
    return `${parsed.protocol}//${parsed.host}`;
  }

  get running(): boolean {
    return this.client?.connected === true;
  }

  connectedGateways(): string[] {
    return [...this.gateways];
  }

  /** Connects and subscribes; rejects if the broker refuses us or cannot be reached in time. */
  async start(): Promise<void> {
    if (this.client) return;
    const { username, password, logger } = this.options;
    const timeoutMs = this.options.connectTimeoutMs ?? 15_000;
    const connectOptions: IClientOptions = {
      clientId: this.clientId,
      username,
      password,
      // MQTT 3.1.1 has no session expiry of its own: Mosquitto keeps the session until
      // persistent_client_expiration (never, by default), EMQX for its session_expiry_interval (2 h by
      // default). With MQTT 5 it would end at disconnect unless we asked for an expiry.
      protocolVersion: 4,
      clean: false,
      reconnectPeriod: 1000,
      connectTimeout: Math.min(timeoutMs, 10_000),
      // A refusal after we were once connected (a broker restarting its auth backend) must not stop reconnecting.
      reconnectOnConnackError: true,
      keepalive: 30,
    };
    if (this.options.ca !== undefined) connectOptions.ca = this.options.ca;
    if (this.options.rejectUnauthorized !== undefined) connectOptions.rejectUnauthorized = this.options.rejectUnauthorized;
    if (this.options.ca !== undefined && !SECURE.has(new URL(this.where).protocol))
      logger.warn({ url: this.where }, 'external MQTT broker: a CA is configured but the url is not mqtts://; it is not used');

    const sharedGroup = this.options.sharedGroup;
    logger.info({ url: this.where, username, clientId: this.clientId, sharedGroup }, 'connecting to the external MQTT broker');
    const client = mqtt.connect(this.options.url, connectOptions);
    this.client = client;
    let up = false;
    // Registered before the first packet can arrive: with a persistent session the broker sends the
    // queued messages right after CONNACK, before our SUBSCRIBE.
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    // Until start() has settled, the promise below reports connection trouble; afterwards it is logged.
    client.on('error', (err) => {
      if (up && this.client === client) this.problem(`external MQTT broker: ${refusalOf(err, username)?.message ?? errorText(err)}`);
    });
    client.on('close', () => {
      if (up && this.client === client) this.problem('lost the connection to the external MQTT broker; reconnecting');
    });
    client.on('connect', (connack) => {
      if (!up || this.client !== client) return;
      this.lastProblem = undefined;
      if (connack.sessionPresent) {
        logger.info({ url: this.where }, 'reconnected to the external MQTT broker; its session kept what arrived meanwhile');
        return;
      }
      // The broker lost our session (restarted without persistence, or expired it): what gateways
      // published meanwhile is gone (they resend unacknowledged DATA), and so are DEATHs, so presence
      // starts over; gateways reappear with their next BIRTH, DATA or HEALTH.
      logger.warn({ url: this.where }, 'reconnected to the external MQTT broker without our session; messages published meanwhile are lost');
      for (const gateway of [...this.gateways]) {
        this.gateways.delete(gateway);
        this.emit('gatewayDisconnected', gateway);
      }
    });

    try {
      await this.firstConnection(client, timeoutMs);
    } catch (err) {
      this.client = undefined;
      await client.endAsync(true);
      throw err;
    }
    up = true;
    logger.info({ url: this.where, clientId: this.clientId, sharedGroup }, 'connected to the external MQTT broker');
  }

  /** Waits for the first CONNACK and SUBACK; a refusal ends the wait at once, network trouble only at the deadline. */
  private firstConnection(client: MqttClient, timeoutMs: number): Promise<void> {
    const { lab, username } = this.options;
    return new Promise<void>((resolve, reject) => {
      let lastError: string | undefined;
      const settle = (err?: LabtraceError) => {
        clearTimeout(timer);
        client.off('connect', onConnect);
        client.off('error', onError);
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => {
        const cause = lastError === undefined ? '' : `: ${lastError}`;
        settle(
          new LabtraceError(
            'E_CONFIG',
            `cannot reach the MQTT broker at ${this.where} within ${Math.round(timeoutMs / 1000)} s${cause} (check the url, that the broker runs and, for mqtts, its CA)`,
          ),
        );
      }, timeoutMs);
      const onError = (err: Error) => {
        const refusal = refusalOf(err, username);
        if (refusal) return settle(new LabtraceError(refusal.code, `the MQTT broker at ${this.where} ${refusal.message}`, { cause: err }));
        lastError = errorText(err); // network or TLS trouble: MQTT.js tries again every second until the deadline
      };
      const onConnect = () => {
        client.off('connect', onConnect);
        this.subscribeAll(client, lab).then(
          (refused) => {
            if (refused.length === 0) return settle();
            settle(
              new LabtraceError(
                'E_AUTH',
                `the MQTT broker at ${this.where} refused user "${username}" the subscription to ${refused.join(', ')}; check its ACL`,
              ),
            );
          },
          (err: Error) =>
            settle(new LabtraceError('E_CONFIG', `cannot subscribe at the MQTT broker at ${this.where}: ${err.message}`, { cause: err })),
        );
      };
      client.on('connect', onConnect);
      client.on('error', onError);
    });
  }

  /** Subscribes to what ingest needs; returns the filters the broker refused. */
  private async subscribeAll(client: MqttClient, lab: string): Promise<string[]> {
    const granted = await subscribe(client, this.filters);
    const refused = this.filters.filter((_, i) => (granted[i] ?? 0x80) >= 0x80);
    // A session kept from a run without a group still holds the plain DATA subscription, which would bring
    // this node every batch besides its share (unsubscribing from a filter the session lacks is no error).
    if (refused.length === 0 && this.sharedIngest) await client.unsubscribeAsync(topicFor(lab, '+', 'DATA'));
    // A node that no longer ingests may keep a session from when it did: its batches and files go to the others.
    if (refused.length === 0 && this.options.ingest === false) {
      const group = this.options.sharedGroup;
      const kept = INGESTED.map((kind) => topicFor(lab, '+', kind));
      await client.unsubscribeAsync(group === undefined ? kept : [...kept, `$share/${group}/${topicFor(lab, '+', 'DATA')}`]);
    }
    return refused;
  }

  private problem(text: string): void {
    if (text === this.lastProblem) return;
    this.lastProblem = text;
    this.options.logger.warn({ url: this.where }, text);
  }

  private onMessage(topic: string, payload: Buffer): void {
    const parsed = parseTopic(topic);
    if (!parsed || parsed.lab !== this.options.lab || !INBOUND.includes(parsed.kind)) return;
    const { gateway, kind } = parsed;
    try {
      // A gateway that speaks is connected, also when its BIRTH came before our first subscription.
      if (kind === 'BIRTH' || (kind !== 'DEATH' && !this.gateways.has(gateway))) {
        this.gateways.add(gateway);
        this.emit('gatewayConnected', gateway);
      }
      this.emit('message', topic, payload);
      if (kind === 'DEATH' && this.gateways.delete(gateway)) this.emit('gatewayDisconnected', gateway);
    } catch (err) {
      // A throwing listener must not break MQTT.js's packet handling (and with it the connection).
      this.options.logger.error({ gateway, kind, err: (err as Error).message }, 'a listener failed on an MQTT message');
    }
  }

  /** Publishes as the server. Resolves on the broker's PUBACK (QoS 1); while the connection is down,
   * MQTT.js queues the message and sends it after reconnecting. */
  async publish(topic: string, payload: string, qos: 0 | 1 = 1): Promise<void> {
    const client = this.client;
    if (!client) return;
    await client.publishAsync(topic, payload, { qos });
  }

  /** Disconnects cleanly (the broker keeps our session), after giving in-flight publishes a moment. A member of a
   * shared group leaves the group first: Mosquitto goes on handing a stopped member its share of the batches and
   * keeps them in its session until it returns, where the other members could take them now. */
  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.gateways.clear();
    if (!client) return;
    const deadline = Date.now() + 2000;
    const shared = this.filters[INBOUND.indexOf('DATA')];
    if (this.sharedIngest && shared !== undefined && client.connected) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([client.unsubscribeAsync(shared).catch(() => undefined), new Promise((r) => (timer = setTimeout(r, 1000)))]);
      clearTimeout(timer);
    }
    while (client.connected && Object.keys(client.outgoing).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // A graceful end waits for every outstanding PUBACK, which may never come; force it then.
    const graceful = client.connected && Object.keys(client.outgoing).length === 0;
    await client.endAsync(!graceful);
    this.options.logger.info({ url: this.where }, 'disconnected from the external MQTT broker');
  }
}
