// The transparency log: keys, signed checkpoints, inclusion and consistency proofs, entries, and the proof
// of one measurement.
import { z } from 'zod';
import { defineRoute } from './contract.js';
import { idSchema, msSchema } from './common.js';

/** A tree size or index: decimal digits without leading zeros (not "", "1e3", "0x10" or "-1"). */
export const logCount = z
  .string()
  .regex(/^(?:0|[1-9][0-9]{0,15})$/, 'expected a whole number in decimal')
  .transform(Number)
  .pipe(z.number().max(Number.MAX_SAFE_INTEGER, 'too large'));

export const checkpointQuery = z.strictObject({ size: logCount.optional() });
export const inclusionQuery = z.strictObject({ index: logCount, size: logCount });
export const consistencyQuery = z.strictObject({ from: logCount, to: logCount });
export const entriesQuery = z.strictObject({ start: logCount, end: logCount });

const base64 = z.string();

export const logKeysSchema = z.strictObject({
  log: z.strictObject({ verifierKey: z.string() }),
  gateways: z.array(
    z.strictObject({
      gateway: z.string(),
      keyId: z.string(),
      verifierKey: z.string(),
      status: z.enum(['active', 'retired', 'revoked']),
      registeredAt: msSchema,
      validUntil: msSchema.nullable(),
      lastValidBatch: z.number().int().nullable(),
      reason: z.string().nullable(),
    }),
  ),
});

export const measurementProofSchema = z.strictObject({
  gateway: z.string(),
  seq: z.number().int(),
  record: z.strictObject({ bytes: base64, sample: z.unknown() }),
  batch: z.strictObject({ header: z.unknown(), signature: z.string(), index: z.number().int(), proof: z.array(base64) }),
  log: z.strictObject({ index: z.number().int(), size: z.number().int(), proof: z.array(base64) }),
  checkpoint: z.string(),
});
export type MeasurementProof = z.output<typeof measurementProofSchema>;

export const logKeys = defineRoute({ method: 'GET', path: '/api/log/keys', response: logKeysSchema });
/** a C2SP checkpoint note, as text/plain */
export const logCheckpoint = defineRoute({ method: 'GET', path: '/api/log/checkpoint', query: checkpointQuery, response: z.string() });
/** the witnesses the lab submits its checkpoints to, and how far each cosigned */
export const logWitnessesSchema = z.strictObject({
  witnesses: z.array(
    z.strictObject({
      name: z.string(),
      key: z.string(),
      url: z.string(),
      /** the latest cosignature the lab holds: the checkpoint size, the witness's time (POSIX s), when received (ms) */
      cosigned: z.strictObject({ size: z.number().int(), witnessTime: z.number().int(), receivedAt: msSchema }).nullable(),
      /** whether the answering node submits to the witness (on several nodes, the one holding the cosigning lease) */
      submitting: z.boolean(),
      /** the answering node's last failed submission */
      lastError: z.strictObject({ code: z.string(), message: z.string(), at: msSchema }).nullable(),
      /** failed submissions since the last success, on the answering node */
      failures: z.number().int(),
    }),
  ),
});
export type LogWitnesses = z.output<typeof logWitnessesSchema>;
export const logWitnesses = defineRoute({ method: 'GET', path: '/api/log/witnesses', response: logWitnessesSchema });
export const inclusionProof = defineRoute({
  method: 'GET',
  path: '/api/log/proof/inclusion',
  query: inclusionQuery,
  response: z.strictObject({ index: z.number().int(), size: z.number().int(), leafHash: base64, proof: z.array(base64) }),
});
export const consistencyProof = defineRoute({
  method: 'GET',
  path: '/api/log/proof/consistency',
  query: consistencyQuery,
  response: z.strictObject({ from: z.number().int(), to: z.number().int(), proof: z.array(base64) }),
});
export const logEntries = defineRoute({
  method: 'GET',
  path: '/api/log/entries',
  query: entriesQuery,
  response: z.strictObject({
    entries: z.array(z.strictObject({ index: z.number().int(), kind: z.string(), at: msSchema, data: base64 })),
  }),
});
export const measurementProof = defineRoute({
  method: 'GET',
  path: '/api/log/measurement/:gateway/:seq',
  params: z.strictObject({ gateway: idSchema, seq: logCount }),
  response: measurementProofSchema,
});
