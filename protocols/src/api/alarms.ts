// The inspection alarms of a test run: each as it stands, every event, and their acknowledgement and clearance.
import { z } from 'zod';
import { defineRoute } from './contract.js';
import { idSchema, msSchema, reasonSchema, sampleValueSchema } from './common.js';

export const ALARM_EVENT_KINDS = ['raised', 'escalated', 'recurred', 'returned', 'acknowledged', 'cleared'] as const;

/** acknowledging or clearing an inspection alarm: the reason is required */
export const alarmActionInput = z.strictObject({ reason: reasonSchema });

export const runAlarmSchema = z.strictObject({
  /** `<rule id>/<instrument>/<channel or *>#<n>`, unique within its run */
  id: z.string(),
  ruleId: z.string(),
  kind: z.string(),
  /** the worst severity reached while open: info, warning, alarm or critical */
  severity: z.string(),
  instrument: z.string(),
  channel: z.string().nullable(),
  message: z.string(),
  raisedAt: msSchema,
  value: sampleValueSchema,
  active: z.boolean(),
  occurrences: z.number().int(),
  returnedAt: msSchema.nullable(),
  acknowledged: z.strictObject({ by: z.string(), reason: z.string(), at: msSchema }).nullable(),
  cleared: z.strictObject({ by: z.string(), reason: z.string(), at: msSchema, auto: z.boolean() }).nullable(),
});
export type RunAlarm = z.output<typeof runAlarmSchema>;

export const runAlarmEventSchema = z.strictObject({
  run: z.string(),
  seq: z.number().int(),
  event: z.enum(ALARM_EVENT_KINDS),
  at: msSchema,
  alarm: runAlarmSchema,
});
export type RunAlarmEvent = z.output<typeof runAlarmEventSchema>;

export const runAlarmsSchema = z.strictObject({ run: z.string(), alarms: z.array(runAlarmSchema), events: z.array(runAlarmEventSchema) });
export type RunAlarms = z.output<typeof runAlarmsSchema>;

// alarm ids read `<rule>/<instrument>/<channel>#<n>`: a client sends them URL-encoded
const alarmParams = z.strictObject({ id: idSchema, alarmId: z.string().min(1).max(400) });

export const runAlarms = defineRoute({
  method: 'GET',
  path: '/api/runs/:id/alarms',
  params: z.strictObject({ id: idSchema }),
  response: runAlarmsSchema,
});
export const acknowledgeAlarm = defineRoute({
  method: 'POST',
  path: '/api/runs/:id/alarms/:alarmId/acknowledge',
  params: alarmParams,
  body: alarmActionInput,
  response: runAlarmSchema,
});
export const clearAlarm = defineRoute({
  method: 'POST',
  path: '/api/runs/:id/alarms/:alarmId/clear',
  params: alarmParams,
  body: alarmActionInput,
  response: runAlarmSchema,
});

/** the open alarms (raised, not cleared) of the runs the caller may see, and how many runs have one */
export const openAlarmCountSchema = z.strictObject({ open: z.number().int().min(0), runs: z.number().int().min(0) });
export type OpenAlarmCount = z.output<typeof openAlarmCountSchema>;

export const openAlarmCount = defineRoute({ method: 'GET', path: '/api/alarms/open-count', response: openAlarmCountSchema });
