// Samples and the MQTT messages that carry them from a gateway to the server.
import { z } from 'zod';
import { idSchema, identitySchema } from './profile.js';
import { QUALITIES } from './quality.js';
export { QUALITIES, type Quality } from './quality.js';

export const sampleSchema = z.strictObject({
  /** per-gateway sequence number, contiguous and never reused */
  seq: z.number().int().min(0),
  instrument: idSchema,
  channel: idSchema,
  /** milliseconds since the Unix epoch, when the instrument was read */
  ts: z.number().int().min(0).max(9_223_372_036_854, 'must fit 63 bits of nanoseconds'),
  value: z.union([z.number(), z.string().max(4096), z.boolean(), z.null()]),
  unit: z.string().max(32),
  quality: z.enum(QUALITIES),
  reason: z.string().max(200).optional(),
  /** SHA-256 (hex) of the result file the value was read from: the raw file the server keeps under that hash */
  file: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'expected the 64 hex digits of a SHA-256')
    .optional(),
});
export type Sample = z.output<typeof sampleSchema>;

const base64Hash = z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'expected a base64 SHA-256 hash');

export const batchHeaderSchema = z.strictObject({
  v: z.literal(1),
  gateway: idSchema,
  /** hex of the 4-byte C2SP key id of the signing key */
  keyId: z.string().regex(/^[0-9a-f]{8}$/, 'expected 8 hex digits'),
  batch: z.number().int().min(0),
  firstSeq: z.number().int().min(0),
  count: z.number().int().min(1),
  tsMin: z.number().int().min(0),
  tsMax: z.number().int().min(0),
  /** RFC 6962 root of the records' canonical JSON, base64 */
  root: base64Hash,
  /** SHA-256 of the previous header's canonical JSON, base64; null for a gateway's first batch */
  prev: base64Hash.nullable(),
});
export type BatchHeader = z.output<typeof batchHeaderSchema>;

export const signedBatchSchema = z.strictObject({
  header: batchHeaderSchema,
  /** Ed25519 signature of the header's canonical JSON, base64 */
  signature: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'expected a base64 Ed25519 signature'),
});
export type SignedBatch = z.output<typeof signedBatchSchema>;

export const dataMessageSchema = z.strictObject({
  v: z.literal(1),
  gateway: idSchema,
  batch: z.number().int().min(0),
  samples: z.array(sampleSchema).min(1).max(10_000),
  /** the gateway's signature over the batch (see trust/batch.ts) */
  signed: signedBatchSchema.optional(),
});
export type DataMessage = z.output<typeof dataMessageSchema>;

/** how a gateway reads an instrument: its profile's `protocol` (modbus, mqtt, balance, ...); new kinds need no new schema */
export const instrumentProtocolSchema = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'expected a protocol name: a-z, 0-9 and -, at most 32');

/** Requests that change an instrument (a balance's zero and tare): sent only when its profile allows them. */
export const INSTRUMENT_COMMANDS = ['zero', 'tare'] as const;
export type InstrumentCommand = (typeof INSTRUMENT_COMMANDS)[number];
export const instrumentCommandSchema = z.enum(INSTRUMENT_COMMANDS);

export const birthInstrumentSchema = z.strictObject({
  id: idSchema,
  identity: identitySchema,
  /** how the gateway reads it (absent from gateways older than this field) */
  protocol: instrumentProtocolSchema.optional(),
  channels: z.array(z.strictObject({ name: idSchema, unit: z.string().max(32) })),
  /** the commands its gateway sends to it when the server asks (its profile's allowCommands); absent: none */
  commands: z.array(instrumentCommandSchema).max(INSTRUMENT_COMMANDS.length).optional(),
});
export type BirthInstrument = z.output<typeof birthInstrumentSchema>;

export const birthMessageSchema = z.strictObject({
  v: z.literal(1),
  gateway: idSchema,
  session: z.number().int().min(0),
  version: z.string().max(64),
  /** hex key id of the key that signs this session's batches */
  keyId: z
    .string()
    .regex(/^[0-9a-f]{8}$/, 'expected 8 hex digits')
    .optional(),
  instruments: z.array(birthInstrumentSchema),
});
export type BirthMessage = z.output<typeof birthMessageSchema>;

export const deathMessageSchema = z.strictObject({ v: z.literal(1), gateway: idSchema, session: z.number().int().min(0) });
export type DeathMessage = z.output<typeof deathMessageSchema>;

export const ackMessageSchema = z.strictObject({ v: z.literal(1), batch: z.number().int().min(0) });
export type AckMessage = z.output<typeof ackMessageSchema>;

/** What the server asks of a gateway: announce itself again, or send again the batches it still holds. */
export const cmdMessageSchema = z.discriminatedUnion('cmd', [
  z.strictObject({ v: z.literal(1), cmd: z.literal('rebirth') }),
  z.strictObject({
    v: z.literal(1),
    cmd: z.literal('resend'),
    /** the first batch number the server is missing (batches before it are all stored) */
    fromBatch: z.number().int().min(0),
  }),
  /** a command that changes an instrument (a balance's zero or tare): sent only when its profile allows it */
  z.strictObject({
    v: z.literal(1),
    cmd: z.literal('instrument'),
    instrument: idSchema,
    command: instrumentCommandSchema,
  }),
]);
export type CmdMessage = z.output<typeof cmdMessageSchema>;

/**
 * The channels of a gateway's own records, which use the gateway id as instrument: a declared jump
 * of the sequence numbers (value: the first number skipped) and samples refused while the outbox was
 * full (value: how many). Signed like every record, so a gap is never silent.
 */
export const GATEWAY_EVENT_CHANNELS = ['sequence-jump', 'samples-refused'] as const;
export type GatewayEventChannel = (typeof GATEWAY_EVENT_CHANNELS)[number];

export const instrumentHealthSchema = z.strictObject({
  instrument: idSchema,
  connected: z.boolean(),
  lastGood: z.number().int().min(0).nullable(),
  errors: z.record(z.string().max(64), z.number().int().min(0)),
  polls: z.number().int().min(0),
  latencyMs: z.strictObject({ p50: z.number().min(0).nullable(), p99: z.number().min(0).nullable() }),
  /** how late polls start against their schedule */
  pollJitterMs: z.strictObject({ p50: z.number().min(0).nullable(), p99: z.number().min(0).nullable() }).optional(),
  breaker: z.enum(['closed', 'open', 'half-open']).optional(),
  /**
   * what keeps the instrument from being read now, in words an operator can act on (a SCPI identity that does not
   * match, errors it reported, an OPC UA server certificate not trusted, a refused user)
   */
  problem: z.string().max(500).optional(),
});
export type InstrumentHealthMessage = z.output<typeof instrumentHealthSchema>;

export const healthMessageSchema = z.strictObject({
  v: z.literal(1),
  gateway: idSchema,
  ts: z.number().int().min(0),
  instruments: z.array(instrumentHealthSchema).max(10_000),
  /**
   * the gateway's own clock against NTP (its clock.ntp), once measured: its clock minus NTP's in ms, when, whether
   * beyond its bound, and whether a server answered the last round. Absent without NTP, so that a gateway without it
   * sends what servers before this field accept.
   */
  clock: z
    .strictObject({
      offsetMs: z.number().int().min(-1e12).max(1e12),
      measuredAt: z.number().int().min(0),
      beyondBound: z.boolean(),
      answering: z.boolean(),
    })
    .optional(),
});
export type HealthMessage = z.output<typeof healthMessageSchema>;

/** FILE: a result file's raw bytes (raw-file.ts) */
export const MESSAGE_KINDS = ['BIRTH', 'DATA', 'DEATH', 'HEALTH', 'ACK', 'CMD', 'FILE'] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];

export function topicFor(lab: string, gateway: string, kind: MessageKind): string {
  return `labtrace/v1/${lab}/${gateway}/${kind}`;
}

export function parseTopic(topic: string): { lab: string; gateway: string; kind: MessageKind } | undefined {
  const parts = topic.split('/');
  if (parts.length !== 5 || parts[0] !== 'labtrace' || parts[1] !== 'v1') return undefined;
  const [, , lab, gateway, kind] = parts;
  if (lab === undefined || gateway === undefined || kind === undefined) return undefined;
  if (!(MESSAGE_KINDS as readonly string[]).includes(kind)) return undefined;
  return { lab, gateway, kind: kind as MessageKind };
}
