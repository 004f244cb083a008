// Gateways: the server's health, the gateways and their keys, enrollment, key rotation and security events.
import { z } from 'zod';
import { defineRoute } from './contract.js';
import { idParams, idSchema, msSchema, pageOf, pageQuery, reasonSchema } from './common.js';
import { timeMs, timeMsQuery } from './time.js';

export const SECURITY_EVENT_KINDS = [
  'unsigned',
  'unknown-key',
  'revoked-key',
  'retired-key',
  'forged',
  'altered',
  'conflict',
  'foreign-gateway',
  'duplicate',
  'replay',
  'batch-gap',
  'gap-filled',
  'sequence-gap',
  'sequence-jump',
  'samples-refused',
  'chain-break',
  'clock-skew',
  'enrolled',
  'enrollment-refused',
  'key-rotated',
  'key-revoked',
  // refusals counted per source and window (see refuse())
  'malformed',
  'sequence-overlap',
  'foreign-instrument',
  'unannounced-instrument',
  'publish-refused',
  'subscribe-refused',
  'login-refused',
  'oversize-packet',
  'connection-refused',
  'enrollment-attempt',
  /** the server's store: free space below the reserve, a write failed, or it can write again (gateway "") */
  'store-capacity',
  /** the store was restored from a backup (gateway ""): a notice, or an alarm when published log entries are lost */
  'store-restored',
  /** a gateway's clock beyond ingest.maxClockOffsetMs from the server's (an alarm), or back within half of it (a notice) */
  'clock-offset',
] as const;
export const securityEventKindSchema = z.enum(SECURITY_EVENT_KINDS);

const capacitySchema = {
  freeBytes: z.number().nullable(),
  reserveBytes: z.number(),
  /** SQLite's write-ahead log; null on PostgreSQL */
  walBytes: z.number().nullable(),
  lastError: z.strictObject({ code: z.string(), message: z.string(), at: msSchema }).nullable(),
};

/** GET /api/health: 200 when the server serves, 503 (with the same body) when it cannot read or write its store */
export const healthSchema = z.strictObject({
  status: z.enum(['ok', 'degraded']),
  version: z.string(),
  broker: z.strictObject({ status: z.enum(['ok', 'down']) }),
  store: z.strictObject({ status: z.enum(['ok', 'low-space', 'cannot-write', 'down']), kind: z.enum(['sqlite', 'postgres']), ...capacitySchema }),
  measurements: z.strictObject({
    kind: z.enum(['sqlite', 'postgres', 'influxdb']),
    status: z.enum(['ok', 'failing']),
    backlog: z.strictObject({ batches: z.number().int(), samples: z.number().int() }),
    refusedBatches: z.number().int(),
    lastError: z.string().optional(),
  }),
  ingest: z.strictObject({ refusedBatches: z.number().int(), refusedByReason: z.record(z.string(), z.number().int()) }),
  gateways: z.array(
    z.strictObject({
      id: z.string(),
      connected: z.boolean(),
      lastSeen: msSchema,
      version: z.string().nullable(),
      refusing: z.strictObject({ reason: z.string(), at: msSchema }).optional(),
    }),
  ),
  faults: z.strictObject({ unhandledRejections: z.number().int() }),
  /** outbound notifications: deliveries pending and failed for good, and whether e-mail can be sent (an SMTP relay) */
  notifications: z
    .strictObject({ pending: z.number().int(), failed: z.number().int(), oldestPendingAt: msSchema.nullable(), email: z.boolean() })
    .optional(),
  /** this node among the lab's nodes: what it does (cluster.roles), and the jobs of one node at a time it holds now */
  node: z.strictObject({ roles: z.array(z.enum(['api', 'ingest', 'jobs'])), leases: z.array(z.string()) }).optional(),
  /**
   * the server's own clock: against NTP (clock.ntp; null when no server is configured; offsetMs: this server's clock
   * minus NTP's), and as its gateways see it (offsetMs: this server's clock minus the median gateway's)
   */
  clock: z
    .strictObject({
      ntp: z
        .strictObject({
          servers: z.array(z.string()),
          status: z.enum(['pending', 'ok', 'beyond-bound', 'unreachable']),
          /** a server answered the last round */
          answering: z.boolean(),
          offsetMs: z.number().int().nullable(),
          delayMs: z.number().int().nullable(),
          server: z.string().nullable(),
          stratum: z.number().int().nullable(),
          measuredAt: msSchema.nullable(),
          boundMs: z.number().int(),
          lastError: z.string().nullable(),
        })
        .nullable(),
      gateways: z.strictObject({
        count: z.number().int(),
        offsetMs: z.number().int().nullable(),
        boundMs: z.number().int(),
        beyondBound: z.boolean(),
      }),
    })
    .optional(),
});
export type Health = z.output<typeof healthSchema>;

export const gatewaySchema = z.strictObject({
  id: z.string(),
  lab: z.string(),
  version: z.string().nullable(),
  firstSeen: msSchema,
  lastSeen: msSchema,
  connected: z.boolean(),
  /**
   * its clock against the server's, from its HEALTH messages (offsetMs: its clock minus the server's; beyondBound:
   * beyond ingest.maxClockOffsetMs); null before its first HEALTH message since the server started
   */
  clock: z.strictObject({ offsetMs: z.number().int(), measuredAt: msSchema, beyondBound: z.boolean() }).nullable(),
});
export type Gateway = z.output<typeof gatewaySchema>;

/**
 * A gateway's active key older than this is due for rotation (`labtrace gateway rotate-key`): the lab's rule of
 * thumb, shown beside the gateway; nothing refuses an older key.
 */
export const KEY_ROTATION_DUE_MS = 365 * 86_400_000;

export const KEY_STATUSES = ['active', 'retired', 'revoked'] as const;
export const gatewayKeySchema = z.strictObject({
  keyId: z.string(),
  verifierKey: z.string(),
  status: z.enum(KEY_STATUSES),
  registeredAt: msSchema,
  validUntil: msSchema.nullable(),
  lastValidBatch: z.number().int().nullable(),
  reason: z.string().nullable(),
  replacedBy: z.string().nullable(),
  /** an active key: when it is due for rotation (registeredAt + KEY_ROTATION_DUE_MS); null for the others */
  rotationDueAt: msSchema.nullable(),
});
export type GatewayKey = z.output<typeof gatewayKeySchema>;

export const enrollBody = z.strictObject({
  token: z.string().regex(/^lt-enroll-[A-Za-z0-9_-]{43}$/, 'expected an enrollment token "lt-enroll-..."'),
  gateway: idSchema,
  /** the gateway's public key, verifier-key form name+keyid+base64 */
  key: z.string().min(1).max(200),
  /** Ed25519 signature, by that key, of the canonical JSON {purpose, gateway, key, token} */
  proof: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'expected a base64 Ed25519 signature'),
});

const signature = z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'expected a base64 Ed25519 signature');
export const rotateBody = z.strictObject({
  statement: z.strictObject({
    v: z.literal(1),
    purpose: z.literal('labtrace-key-rotation'),
    gateway: idSchema,
    oldKeyId: z.string().regex(/^[0-9a-f]{8}$/, 'expected 8 hex digits'),
    newKey: z.string().min(1).max(200),
    at: timeMs,
  }),
  oldSignature: signature,
  newSignature: signature,
});

/** a page of security events, newest first (by id); `since` (kept for scripts) is `from` under its older name */
export const securityEventsQuery = z.strictObject({
  ...pageQuery,
  gateway: idSchema.optional(),
  kind: securityEventKindSchema.optional(),
  /** events that last happened at or after this time */
  from: timeMsQuery.optional(),
  /** events that first happened before this time */
  to: timeMsQuery.optional(),
  since: timeMsQuery.optional(),
});

export const securityEventSchema = z.strictObject({
  id: z.number().int(),
  at: msSchema,
  /** the gateway the event is about; '' for what comes from an unauthenticated source */
  gateway: z.string(),
  kind: securityEventKindSchema,
  severity: z.enum(['info', 'notice', 'alarm']),
  batch: z.number().int().nullable(),
  detail: z.string(),
  count: z.number().int(),
  lastAt: msSchema,
  address: z.string().nullable(),
  client: z.string().nullable(),
});
export type SecurityEvent = z.output<typeof securityEventSchema>;

export const health = defineRoute({ method: 'GET', path: '/api/health', response: healthSchema });
export const listGateways = defineRoute({ method: 'GET', path: '/api/gateways', response: z.array(gatewaySchema) });
export const enroll = defineRoute({
  method: 'POST',
  path: '/api/enroll',
  body: enrollBody,
  response: z.strictObject({
    gateway: z.string(),
    keyId: z.string(),
    mqtt: z.strictObject({ username: z.string(), password: z.string() }),
  }),
});
export const gatewayKeys = defineRoute({ method: 'GET', path: '/api/gateways/:id/keys', params: idParams, response: z.array(gatewayKeySchema) });
export const rotateKey = defineRoute({
  method: 'POST',
  path: '/api/gateways/:id/keys/rotate',
  params: idParams,
  body: rotateBody,
  response: z.strictObject({ keyId: z.string(), status: z.enum(KEY_STATUSES), registeredAt: msSchema }),
});
export const listSecurityEvents = defineRoute({
  method: 'GET',
  path: '/api/security-events',
  query: securityEventsQuery,
  response: pageOf(securityEventSchema),
});

/** an enrollment token waiting for its gateway: never the token itself, which is shown once at creation */
export const enrollmentTokenSchema = z.strictObject({
  id: z.number().int(),
  gateway: z.string(),
  createdAt: msSchema,
  expiresAt: msSchema,
});
export type EnrollmentToken = z.output<typeof enrollmentTokenSchema>;

export const enrollmentTokenBody = z.strictObject({
  gateway: idSchema,
  /** how long the token may be used: 1 hour to 30 days */
  ttlHours: z.number().int('expected whole hours').min(1, 'at least 1 hour').max(720, 'at most 720 hours (30 days)').default(24),
});

/** every gateway's keys, connected or not (a gateway enrolled but not yet connected has keys and no other record) */
export const listGatewayKeys = defineRoute({
  method: 'GET',
  path: '/api/gateway-keys',
  response: z.array(gatewayKeySchema.extend({ gateway: z.string() })),
});

export const listEnrollmentTokens = defineRoute({
  method: 'GET',
  path: '/api/gateways/enrollment-tokens',
  /** the tokens neither used nor expired nor revoked, newest first */
  response: z.array(enrollmentTokenSchema),
});
export const createEnrollmentToken = defineRoute({
  method: 'POST',
  path: '/api/gateways/enrollment-tokens',
  body: enrollmentTokenBody,
  /** with the token, this once: only its hash is kept */
  response: enrollmentTokenSchema.extend({ token: z.string() }),
});
export const revokeEnrollmentToken = defineRoute({
  method: 'POST',
  path: '/api/gateways/enrollment-tokens/:id/revoke',
  params: z.strictObject({ id: z.coerce.number().int().min(1) }),
  body: z.strictObject({ reason: reasonSchema }),
  response: enrollmentTokenSchema,
});
export const revokeGatewayKey = defineRoute({
  method: 'POST',
  path: '/api/gateways/:id/keys/:keyId/revoke',
  params: z.strictObject({ id: idSchema, keyId: z.string().regex(/^[0-9a-f]{8}$/, 'expected 8 hex digits') }),
  body: z.strictObject({
    reason: reasonSchema,
    /** batches stored under the key that arrived from this time on become invalid too; left out: from now */
    from: timeMs.optional(),
  }),
  response: gatewayKeySchema,
});
