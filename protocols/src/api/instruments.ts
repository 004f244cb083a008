// Instruments: the list with each one's latest values, health and calibration, a channel's series and
// history, and the instrument's service status (in or out of service, with the runs to review).
import { z } from 'zod';
import { instrumentCommandSchema, instrumentHealthSchema } from '../measurement.js';
import { defineRoute } from './contract.js';
import {
  CALIBRATION_STATES,
  calibrationBriefSchema,
  idParams,
  idSchema,
  instrumentIdentitySchema,
  liveSampleSchema,
  msSchema,
  pageOf,
  pageQuery,
  qualitySchema,
  queryInt,
  reasonSchema,
  sampleValueSchema,
} from './common.js';
import { optionalLine } from './text.js';
import { timeMsQuery } from './time.js';

export const instrumentSchema = z.strictObject({
  id: z.string(),
  gateway: z.string(),
  identity: instrumentIdentitySchema,
  /** how the gateway reads it (modbus, mqtt, balance, ...); null when its gateway did not say */
  protocol: z.string().nullable(),
  channels: z.array(z.strictObject({ name: z.string(), unit: z.string() })),
  /** what its gateway sends to it when asked (a balance's zero and tare, if its profile allows them); empty: nothing */
  commands: z.array(instrumentCommandSchema),
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

/**
 * Asks the instrument's gateway to zero or tare it (a balance whose profile allows it). Accepted (202) once the
 * request is recorded in the audit trail and handed to the broker; what the balance did arrives as a signed record
 * on the channel `<point>.command` (good when done, bad with the balance's reason).
 */
export const instrumentCommandBody = z.strictObject({ command: instrumentCommandSchema });
export const sendInstrumentCommand = defineRoute({
  method: 'POST',
  path: '/api/instruments/:id/commands',
  params: idParams,
  body: instrumentCommandBody,
  response: z.strictObject({ instrument: z.string(), gateway: z.string(), command: instrumentCommandSchema, at: msSchema }),
});

/** one instrument, as the list's items (its page: #/instruments/:id) */
export const getInstrument = defineRoute({ method: 'GET', path: '/api/instruments/:id', params: idParams, response: instrumentSchema });

// ---- The instrument register: the lab's instruments, paged (newest registered first), searched and filtered on the
// server. The live view keeps reading the whole list (GET /api/instruments) for its latest values.

const queryBoolean = z.enum(['true', 'false']).transform((v) => v === 'true');
export const instrumentRegisterQuery = z.strictObject({
  ...pageQuery,
  /** a part of the id, maker, model, serial number or location (case-insensitive) */
  q: optionalLine(100).optional(),
  /** the calibration status now; out-of-service lists the instruments taken out of service */
  calibration: z.enum(CALIBRATION_STATES).optional(),
  /** whether the instrument's gateway is connected now */
  connected: queryBoolean.optional(),
});
export const instrumentRegisterItemSchema = z.strictObject({
  id: z.string(),
  gateway: z.string(),
  identity: instrumentIdentitySchema,
  channels: z.array(z.strictObject({ name: z.string(), unit: z.string() })),
  connected: z.boolean(),
  calibration: calibrationBriefSchema,
});
export type InstrumentRegisterItem = z.output<typeof instrumentRegisterItemSchema>;
export const instrumentRegister = defineRoute({
  method: 'GET',
  path: '/api/instrument-register',
  query: instrumentRegisterQuery,
  response: pageOf(instrumentRegisterItemSchema),
});

// ---- Connection health over time: what the gateway's HEALTH messages said, kept by the server (at most one point a
// minute per instrument, and every change of connection), so that error counters can be read over days.

export const healthQuery = z.strictObject({
  from: timeMsQuery.optional(),
  to: timeMsQuery.optional(),
  points: queryInt(1, 2000).default(500),
});
export const healthPointSchema = z.strictObject({
  at: msSchema,
  /** false when any report in the point's interval said disconnected */
  connected: z.boolean(),
  /** the gateway's counters as reported (they count from the gateway's start: a drop means it restarted) */
  polls: z.number().int(),
  errors: z.record(z.string(), z.number().int()),
  latencyP50: z.number().nullable(),
  latencyP99: z.number().nullable(),
});
export type HealthPoint = z.output<typeof healthPointSchema>;
export const instrumentHealthHistory = defineRoute({
  method: 'GET',
  path: '/api/instruments/:id/health',
  params: idParams,
  query: healthQuery,
  response: z.strictObject({ instrument: z.string(), from: msSchema, to: msSchema, points: z.array(healthPointSchema) }),
});
