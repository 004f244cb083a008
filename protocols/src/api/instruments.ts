// Instruments: the list with each one's latest values, health and calibration, a channel's series and
// history, and the instrument's service status (in or out of service, with the runs to review).
import { z } from 'zod';
import { instrumentHealthSchema } from '../measurement.js';
import { defineRoute } from './contract.js';
import {
  calibrationBriefSchema,
  idParams,
  idSchema,
  instrumentIdentitySchema,
  liveSampleSchema,
  msSchema,
  qualitySchema,
  queryInt,
  reasonSchema,
  sampleValueSchema,
} from './common.js';
import { timeMsQuery } from './time.js';

export const instrumentSchema = z.strictObject({
  id: z.string(),
  gateway: z.string(),
  identity: instrumentIdentitySchema,
  channels: z.array(z.strictObject({ name: z.string(), unit: z.string() })),
  /** the newest sample of each channel */
  latest: z.record(z.string(), z.strictObject({ value: sampleValueSchema, ts: msSchema, quality: qualitySchema })),
  connected: z.boolean(),
  health: instrumentHealthSchema.nullable(),
  calibration: calibrationBriefSchema.optional(),
});
export type Instrument = z.output<typeof instrumentSchema>;
/** the dashboard's name for an instrument of the list */
export type InstrumentView = Instrument;

export const seriesQuery = z.strictObject({
  channel: idSchema,
  from: timeMsQuery.optional(),
  to: timeMsQuery.optional(),
  points: queryInt(1, 5000).default(600),
});
export const historyQuery = z.strictObject({
  channel: idSchema,
  from: timeMsQuery.optional(),
  to: timeMsQuery.optional(),
  limit: queryInt(1, 10_000).default(600),
});

export const seriesPointSchema = z.strictObject({ ts: msSchema, min: z.number(), max: z.number(), mean: z.number(), count: z.number().int() });
export const seriesSchema = z.strictObject({
  instrument: z.string(),
  channel: z.string(),
  from: msSchema,
  to: msSchema,
  bucketMs: z.number().int(),
  points: z.array(seriesPointSchema),
});
export type Series = z.output<typeof seriesSchema>;

export const SERVICE_STATUSES = ['in-service', 'out-of-service'] as const;
export const instrumentStatusBody = z.strictObject({ status: z.enum(SERVICE_STATUSES), reason: reasonSchema });
export const instrumentStatusRecordSchema = z.strictObject({
  instrument: z.string(),
  status: z.enum(SERVICE_STATUSES),
  reason: z.string(),
  actor: z.string(),
  at: msSchema,
});
export type InstrumentStatusRecord = z.output<typeof instrumentStatusRecordSchema>;

/** the runs that measured with an instrument since its last good check or calibration (6.4.9) */
export const reviewSchema = z.strictObject({
  instrument: z.string(),
  since: msSchema,
  runs: z.array(
    z.strictObject({
      id: z.string(),
      sample: z.string(),
      organization: z.string(),
      state: z.string(),
      startedAt: msSchema,
      endedAt: msSchema.nullable(),
    }),
  ),
});
export type Review = z.output<typeof reviewSchema>;

export const listInstruments = defineRoute({ method: 'GET', path: '/api/instruments', response: z.array(instrumentSchema) });
export const instrumentSeries = defineRoute({
  method: 'GET',
  path: '/api/instruments/:id/series',
  params: idParams,
  query: seriesQuery,
  response: seriesSchema,
});
export const instrumentHistory = defineRoute({
  method: 'GET',
  path: '/api/instruments/:id/history',
  params: idParams,
  query: historyQuery,
  response: z.array(liveSampleSchema),
});
export const instrumentStatus = defineRoute({
  method: 'GET',
  path: '/api/instruments/:id/status',
  params: idParams,
  response: z.strictObject({
    instrument: z.string(),
    current: instrumentStatusRecordSchema.nullable(),
    /** why the instrument must not be used now (empty when nothing stands against it) */
    blockers: z.array(z.string()),
    history: z.array(instrumentStatusRecordSchema),
  }),
});
export const setInstrumentStatus = defineRoute({
  method: 'POST',
  path: '/api/instruments/:id/status',
  params: idParams,
  body: instrumentStatusBody,
  /** with the runs to review when the instrument goes out of service */
  response: instrumentStatusRecordSchema.extend({ review: reviewSchema.optional() }),
});
