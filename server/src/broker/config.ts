// The MQTT side of server.yaml: `mqtt:` (the embedded broker's listeners, or the lab's external broker) and
// `broker:` (the embedded broker's users). Schema only: the brokers live in broker.ts and external-broker.ts.
import path from 'node:path';
import { z } from 'zod';
import { idSchema } from '@labtrace/protocols';

const port = z.number().int().min(0).max(65535);
/** 8 MiB: above the largest batch of numbers a gateway sends (docs/trust.md, MQTT) */
export const DEFAULT_MAX_PACKET_BYTES = 8 * 1024 * 1024;

export const brokerUserSchema = z.strictObject({
  username: z.string().min(1).max(128),
  /** scrypt hash made by `hashPassword` (never a clear-text password) */
  passwordHash: z.string().regex(/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/, 'expected a hash "scrypt$N$r$p$salt$hash"'),
  role: z.enum(['gateway', 'reader']),
  /** for role gateway: the gateway id this user may publish as */
  gateway: idSchema.optional(),
});
export type BrokerUser = z.output<typeof brokerUserSchema>;

export const mqttConfigSchema = z
  .strictObject({
    host: z.string().min(1).default('127.0.0.1'),
    port: port.default(1883),
    /** an MQTT over TLS listener of the embedded broker (certificate and key in PEM files) */
    tls: z.strictObject({ port: port.default(8883), certFile: z.string().min(1), keyFile: z.string().min(1) }).optional(),
    /**
     * external broker mode: no embedded broker; the server connects to the lab's broker as a client
     * and ingests from there (the broker's ACL must give each gateway only its own topics)
     */
    external: z
      .strictObject({
        url: z.string().regex(/^(mqtts?|tcp|tls):\/\/.+/, 'expected a URL such as mqtt://broker:1883 or mqtts://broker:8883'),
        username: z.string().min(1),
        /** file holding the password; LABTRACE_MQTT_PASSWORD overrides it */
        passwordFile: z.string().min(1).optional(),
        /** CA certificate (PEM) that signed the broker's certificate, for mqtts:// */
        caFile: z.string().min(1).optional(),
        /**
         * the client id of this node's persistent session; it must stay the same across restarts and differ between
         * nodes. Default `labtrace-server-<lab>`, with a shared group `labtrace-server-<lab>-<host name>` (set it
         * when two nodes run on one host). Brokers with `use_username_as_clientid` (the shipped Mosquitto
         * configuration) use the username instead: give each node its own user there.
         */
        clientId: z
          .string()
          .regex(/^[A-Za-z0-9._:-]{1,128}$/, "expected 1 to 128 letters, digits, '.', '_', '-' or ':'")
          .optional(),
        /**
         * several server nodes share the gateways' batches: each node subscribes to DATA through the MQTT shared
         * subscription `$share/<sharedGroup>/labtrace/v1/<lab>/+/DATA` and the broker gives each batch to one member
         * of the group (BIRTH, DEATH and HEALTH still reach every node). Every node of the lab uses the same group.
         */
        sharedGroup: z
          .string()
          .regex(/^[A-Za-z0-9._-]{1,64}$/, "expected 1 to 64 letters, digits, '.', '_' or '-' (an MQTT topic level, without '+', '#' or '/')")
          .optional(),
      })
      .optional(),
    /**
     * the embedded broker on several server nodes (docs/scale-out.md): the nodes' Aedes brokers share one Redis 7,
     * messages between nodes over mqemitter-redis, sessions, subscriptions, retained messages and QoS 1 messages in
     * flight in aedes-persistence-redis. Gateways connect to any node; each node ingests the batches published by
     * the gateways connected to it. One Redis (not one database number: pub/sub spans them) per lab.
     */
    cluster: z
      .strictObject({
        redis: z.strictObject({
          url: z
            .string()
            .regex(
              /^rediss?:\/\/[^\s/@]+(\/\d{1,2})?$/,
              'expected a URL such as redis://redis:6379 (no user or password in it: use username and passwordFile)',
            ),
          username: z.string().min(1).max(128).optional(),
          /** file holding the Redis password; LABTRACE_REDIS_PASSWORD overrides it */
          passwordFile: z.string().min(1).optional(),
        }),
      })
      .optional(),
    /**
     * the largest MQTT packet the embedded broker takes from an authenticated client, on every listener; a
     * connection declaring a larger one is closed at its fixed header (before any of it is buffered). The
     * default holds the largest batch of numbers (10,000 samples with 64-character ids: about 5.1 MB as JSON);
     * batches of long text values may need more. Before authentication a packet may have 64 KiB at most.
     */
    maxPacketBytes: z.number().int().min(65_536).max(268_435_455).default(DEFAULT_MAX_PACKET_BYTES),
    /** open MQTT connections (TCP, TLS and WebSocket together) from one address; more are closed at once */
    maxConnectionsPerAddress: z.number().int().min(1).max(100_000).default(64),
  })
  .default({ host: '127.0.0.1', port: 1883, maxPacketBytes: DEFAULT_MAX_PACKET_BYTES, maxConnectionsPerAddress: 64 });
export type MqttConfig = z.output<typeof mqttConfigSchema>;

export const brokerConfigSchema = z
  .strictObject({
    users: z.array(brokerUserSchema).default([]),
    allowAnonymous: z.literal(false).default(false),
  })
  .default({ users: [], allowAnonymous: false });
export type BrokerConfig = z.output<typeof brokerConfigSchema>;

/** the TLS, external broker and cluster Redis files, relative to the config file's folder */
export function resolveMqttConfig(mqtt: MqttConfig, baseDir: string): MqttConfig {
  return {
    ...mqtt,
    ...(mqtt.tls === undefined
      ? {}
      : { tls: { ...mqtt.tls, certFile: path.resolve(baseDir, mqtt.tls.certFile), keyFile: path.resolve(baseDir, mqtt.tls.keyFile) } }),
    ...(mqtt.external === undefined
      ? {}
      : {
          external: {
            ...mqtt.external,
            ...(mqtt.external.passwordFile === undefined ? {} : { passwordFile: path.resolve(baseDir, mqtt.external.passwordFile) }),
            ...(mqtt.external.caFile === undefined ? {} : { caFile: path.resolve(baseDir, mqtt.external.caFile) }),
          },
        }),
    ...(mqtt.cluster?.redis.passwordFile === undefined
      ? {}
      : { cluster: { redis: { ...mqtt.cluster.redis, passwordFile: path.resolve(baseDir, mqtt.cluster.redis.passwordFile) } } }),
  };
}
