// Test runs: a sample tested by a method version on assigned instruments, planned -> running -> completed |
// aborted; their records, results (with uncertainty, conformity and scope) and export.
import { z } from 'zod';
import { defineRoute } from './contract.js';
import {
  calibrationBriefSchema,
  idParams,
  idSchema,
  instrumentIdentitySchema,
  liveSampleSchema,
  msSchema,
  pageOf,
  pageQuery,
  queryInt,
  reasonSchema,
} from './common.js';

export const RUN_STATES = ['planned', 'running', 'completed', 'aborted'] as const;
export const runStateSchema = z.enum(RUN_STATES);
export type RunState = z.output<typeof runStateSchema>;

export const runInput = z.strictObject({
  sample: idSchema,
  method: idSchema,
  /** the method version; the newest when absent */
  methodVersion: z.number().int().min(1).optional(),
  instruments: z
    .array(idSchema)
    .min(1)
    .max(16)
    .refine((a) => new Set(a).size === a.length, { message: 'an instrument appears twice' }),
  /** the technician who performs the run; the caller when absent */
  technician: idSchema.optional(),
});
export type RunInput = z.output<typeof runInput>;

export const startInput = z.strictObject({ reason: reasonSchema.optional() });
export const abortInput = z.strictObject({ reason: reasonSchema });

/** a completed run's overall verdict (its results: runResultsSchema.verdict) */
export const RUN_VERDICTS = ['pass', 'fail', 'no-decision'] as const;
export type RunVerdict = (typeof RUN_VERDICTS)[number];
/** which time of a run the list's `from`/`to` bound: its creation (the default), its start or its end */
export const RUN_TIMES = ['created', 'started', 'ended'] as const;
export type RunTime = (typeof RUN_TIMES)[number];

/** a time bound in a query string: whole ms since the epoch */
const queryMs = z.coerce.number().int().min(0).max(8.64e15);

/**
 * The runs list's query: a page (newest first), a search `q` over the run id, the sample's id and description, the
 * customer's name and the method's id and title, and filters. `organization` narrows a lab reader's list to one
 * customer (a client sees its own anyway); `from`/`to` bound the creation time, or with `time` the start or the end
 * (a run not started or not ended has none: it is left out); `alarms=open` keeps the runs with an alarm not yet
 * cleared; `verdict` keeps the completed runs whose results give that overall verdict (the overview's figures link
 * to the list with these filters and count what it lists).
 */
export const runsQuery = z
  .strictObject({
    ...pageQuery,
    q: z.string().trim().min(1).max(100).optional(),
    state: runStateSchema.optional(),
    sample: idSchema.optional(),
    method: idSchema.optional(),
    organization: idSchema.optional(),
    from: queryMs.optional(),
    to: queryMs.optional(),
    alarms: z.enum(['open']).optional(),
    verdict: z.enum(RUN_VERDICTS).optional(),
    time: z.enum(RUN_TIMES).optional(),
  })
  .refine((q) => q.from === undefined || q.to === undefined || q.from <= q.to, { message: 'from is after to', path: ['to'] });
export type RunsQuery = z.output<typeof runsQuery>;
export const recordsQuery = z.strictObject({ limit: queryInt(1, 100_000).default(10_000) });

const methodRef = z.strictObject({ id: z.string(), version: z.number().int(), standard: z.string() });
const accreditationRef = z.strictObject({ body: z.string(), number: z.string() });

export const runRangeSchema = z.strictObject({
  gateway: z.string(),
  /** the first sequence number of the gateway stored after the run started */
  firstSeq: z.number().int(),
  /** the last one stored before it ended; null while it runs */
  lastSeq: z.number().int().nullable(),
});

/** an instrument of a run as its view shows it: identity (null when unknown) and calibration status */
export const runEquipmentSchema = z.strictObject({
  id: z.string(),
  identity: instrumentIdentitySchema.nullable(),
  calibration: calibrationBriefSchema,
});
export type RunEquipment = z.output<typeof runEquipmentSchema>;

export const runSchema = z.strictObject({
  id: z.string(),
  sample: z.string(),
  organization: z.string(),
  method: methodRef,
  instruments: z.array(z.strictObject({ id: z.string(), gateway: z.string() })),
  technician: z.string(),
  state: runStateSchema,
  accredited: z.boolean(),
  flags: z.array(z.string()),
  createdBy: z.string(),
  createdAt: msSchema,
  startedAt: msSchema.nullable(),
  endedAt: msSchema.nullable(),
  endReason: z.string().nullable(),
  ranges: z.array(runRangeSchema),
  /** the identity and calibration of the run's instruments (GET /api/runs/:id) */
  equipment: z.array(runEquipmentSchema).optional(),
});
export type Run = z.output<typeof runSchema>;

export const runRecordsSchema = z.strictObject({
  run: z.string(),
  ranges: z.array(runRangeSchema),
  /** the stored batches the records come from, each with its place in the transparency log */
  batches: z.array(
    z.strictObject({
      gateway: z.string(),
      batch: z.number().int(),
      firstSeq: z.number().int(),
      count: z.number().int(),
      logIndex: z.number().int().nullable(),
    }),
  ),
  samples: z.array(liveSampleSchema),
  /** more records exist than the limit let through */
  truncated: z.boolean(),
});
export type RunRecords = z.output<typeof runRecordsSchema>;

const bounds = z.strictObject({ min: z.number().optional(), max: z.number().optional() });

export const runResultSchema = z.strictObject({
  /** the result's name in the method: "Fm", "Rm" */
  name: z.string(),
  title: z.string(),
  measurand: z.string(),
  unit: z.string(),
  statistic: z.string(),
  value: z.number(),
  /** the value as the report gives it, rounded once by the server: shown verbatim, never rounded again */
  reported: z.string(),
  /** U as the report gives it (up to two significant digits, the value's decimal place): shown verbatim */
  reportedUncertainty: z.string(),
  uncertainty: z.strictObject({
    combined: z.number(),
    expanded: z.number(),
    coverageFactor: z.number(),
    coverageProbability: z.number(),
    budget: z.array(
      z.strictObject({
        source: z.string(),
        description: z.string(),
        distribution: z.enum(['normal', 'rectangular', 'statistical']),
        standardUncertainty: z.number(),
      }),
    ),
  }),
  conformity: z
    .strictObject({
      verdict: z.enum(['pass', 'fail']),
      rule: z.enum(['simple-acceptance', 'guarded-acceptance']),
      ruleText: z.string(),
      limits: bounds,
      acceptance: bounds,
    })
    .nullable(),
  instruments: z.array(z.string()),
  sampleCount: z.number().int(),
  accredited: z.boolean(),
  accreditation: accreditationRef.optional(),
  scopeNote: z.string().optional(),
  notes: z.array(z.string()).optional(),
});
export type RunResult = z.output<typeof runResultSchema>;

export const runResultsSchema = z.strictObject({
  run: z.string(),
  method: methodRef,
  computedAt: msSchema,
  records: z.strictObject({ count: z.number().int(), digest: z.string(), digestAlgorithm: z.string() }),
  results: z.array(runResultSchema),
  verdict: z.enum(RUN_VERDICTS),
  accredited: z.boolean(),
  accreditation: accreditationRef.optional(),
  /** results the method defines that the run's records could not give */
  missing: z.array(z.string()).optional(),
});
export type RunResults = z.output<typeof runResultsSchema>;

/** a run in the list: the run and how many of its alarms are open (raised and not cleared) */
export const runListItemSchema = runSchema.extend({ openAlarms: z.number().int().min(0) });
export type RunListItem = z.output<typeof runListItemSchema>;

export const listRuns = defineRoute({ method: 'GET', path: '/api/runs', query: runsQuery, response: pageOf(runListItemSchema) });
export const getRun = defineRoute({ method: 'GET', path: '/api/runs/:id', params: idParams, response: runSchema });
export const runRecords = defineRoute({
  method: 'GET',
  path: '/api/runs/:id/records',
  params: idParams,
  query: recordsQuery,
  response: runRecordsSchema,
});
export const runResults = defineRoute({ method: 'GET', path: '/api/runs/:id/results', params: idParams, response: runResultsSchema });
export const createRun = defineRoute({ method: 'POST', path: '/api/runs', body: runInput, response: runSchema });
export const startRun = defineRoute({ method: 'POST', path: '/api/runs/:id/start', params: idParams, body: startInput, response: runSchema });
export const stopRun = defineRoute({ method: 'POST', path: '/api/runs/:id/stop', params: idParams, body: startInput, response: runSchema });
export const abortRun = defineRoute({ method: 'POST', path: '/api/runs/:id/abort', params: idParams, body: abortInput, response: runSchema });
