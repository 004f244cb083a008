// A running run's inspection across a server restart: the rebuilt engine continues the alarms that were
// open (a condition persisting or coming back is the same episode, not a new alarm, and its acknowledgement
// holds), and the time-based pass reads the instrument status as it is now, so that an instrument calibrated
// while silent ends its status alarm without waiting for a sample. A real server, stopped and started again
// on the same data directory, on an injected clock.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import type { RunAlarm, RunAlarmEvent } from '@labtrace/protocols';
import { jsonCaller, ORGANIZATION, postJson, records, send, startServer, TestGateway, type TestServer, waitFor } from '../helpers/server.js';

const T0 = 1_800_000_000_000;
let now = T0;
let t: TestServer;
let gw: TestGateway;
let run: string;
const json = postJson;
const call = jsonCaller(
  () => t,
  () => '',
);
const options = { clock: () => now, inspectionTickMs: 20 };

const alarms = async (): Promise<{ alarms: RunAlarm[]; events: RunAlarmEvent[] }> =>
  (await call<{ alarms: RunAlarm[]; events: RunAlarmEvent[] }>(`/api/runs/${run}/alarms`)).body;
const alarmPath = (id: string, action: string): string => `/api/runs/${run}/alarms/${encodeURIComponent(id)}/${action}`;
const sendValues = async (first: number, n: number, value: number): Promise<void> =>
  expect(await send(t, gw, gw.sign(records('ut-1', first, n, value)))).toBe('acked');
const eventCount = (): number => (t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM run_alarms WHERE run = ?').get(run) as { n: number }).n;

beforeAll(async () => {
  t = await startServer({}, undefined, options);
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('ut-1');
  await waitFor('the instrument', () => (t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM instruments').get() as { n: number }).n === 1);
  const method = {
    id: 'inspected',
    standard: 'ISO 6892-1:2019',
    title: 'Tensile testing, inspected',
    definition: {
      measurands: [{ name: 'force', unit: 'kN', channel: 'c' }],
      decisionRule: { kind: 'simple-acceptance' },
      rules: [
        { id: 'force-limits', kind: 'limits', severity: 'alarm', channel: 'c', high: 100 },
        { id: 'cal', kind: 'instrument-status', severity: 'critical', instrument: 'ut-1' },
      ],
    },
  };
  expect((await call('/api/methods', json(method))).status).toBe(201);
  const sample = { id: 'S-1', organization: ORGANIZATION, description: 'bar', condition: 'intact', receivedAt: T0 };
  expect((await call('/api/lab-samples', json(sample))).status).toBe(201);
  run = (await call<{ id: string }>('/api/runs', json({ sample: 'S-1', method: 'inspected', instruments: ['ut-1'] }))).body.id;
  expect((await call(`/api/runs/${run}/start`, json({}))).status).toBe(200);
});
afterAll(async () => {
  await gw.end();
  await t.stop();
});

test('before the restart: a limit alarm acknowledged and returned, and a status alarm (never calibrated) present', async () => {
  await sendValues(0, 2, 150);
  await waitFor('two alarms', () => eventCount() >= 2);
  const raised = (await alarms()).alarms;
  expect(raised.map((a) => [a.ruleId, a.active]).sort()).toEqual([
    ['cal', true],
    ['force-limits', true],
  ]);
  const limit = raised.find((a) => a.ruleId === 'force-limits')?.id ?? '';
  expect((await call(alarmPath(limit, 'acknowledge'), json({ reason: 'specimen slipped' }))).status).toBe(200);
  await sendValues(2, 1, 30);
  await waitFor('the return', () => eventCount() >= 4);
  expect((await alarms()).alarms.find((a) => a.id === limit)).toMatchObject({ active: false, acknowledged: { reason: 'specimen slipped' } });
});

test('after a restart the open alarms are continued: the condition coming back recurs on the same alarm', async () => {
  const before = await alarms();
  const limit = before.alarms.find((a) => a.ruleId === 'force-limits' && a.cleared === null)?.id ?? '';
  await gw.end();
  const dataDir = t.config.dataDir;
  await t.stop();
  t = await startServer({ dataDir }, undefined, options);
  gw = await gw.reconnect(t);
  expect(t.server.inspection.inspected()).toEqual([run]);
  expect((await alarms()).events).toEqual(before.events);

  const count = eventCount();
  await sendValues(3, 1, 180);
  await waitFor('the limit condition back', () => eventCount() > count);
  const after = await alarms();
  // no new alarm: the limit alarm recurs (its acknowledgement kept), the status alarm was still present
  expect(after.events.slice(before.events.length).map((e) => [e.event, e.alarm.id])).toEqual([['recurred', limit]]);
  expect(after.alarms.find((a) => a.id === limit)).toMatchObject({ occurrences: 2, active: true, acknowledged: { by: 'technician' } });
  await sendValues(4, 1, 20);
  await waitFor('the return', () => eventCount() > count + 1);
  const cleared = await call<RunAlarm>(alarmPath(limit, 'clear'), json({ reason: 'grips replaced' }));
  expect(cleared.status).toBe(200);
  // the next occurrence after the clearance is a new alarm, numbered after every earlier one
  await sendValues(5, 1, 190);
  await waitFor('a new alarm', () => eventCount() > count + 3);
  const newest = (await alarms()).events.at(-1);
  expect(newest).toMatchObject({ event: 'raised', alarm: { id: 'force-limits/ut-1/c#3' } });
});

test('the time-based pass reads the status now: calibrating the silent instrument ends its status alarm', async () => {
  const status = (await alarms()).alarms.find((a) => a.ruleId === 'cal');
  expect(status).toMatchObject({ active: true, cleared: null });
  const id = status?.id ?? '';
  expect((await call(alarmPath(id, 'acknowledge'), json({ reason: 'calibration ordered' }))).status).toBe(200);
  const refused = await call<{ error: string }>(alarmPath(id, 'clear'), json({ reason: 'too early' }));
  expect(refused.status).toBe(409);
  // the clock moves on; the instrument sends nothing more
  now = T0 + 5_000;
  const real = Date.now();
  const calibration = {
    calibratedAt: real - 86_400_000,
    laboratory: 'Reference Lab',
    certificate: 'CAL-ut-1',
    results: [{ point: 'p1', reference: 10, indication: 10.01, unit: 'kN' }],
    uncertainty: { value: 0.1, unit: 'kN', k: 2 },
    nextDueAt: real + 300 * 86_400_000,
  };
  expect((await call('/api/instruments/ut-1/calibrations', json(calibration))).status).toBe(201);
  // no sample comes: the server's timer sees the status good again
  const returned = t.server.database.sqlite.prepare("SELECT 1 FROM run_alarms WHERE run = ? AND alarm = ? AND event = 'returned'");
  await waitFor('the status alarm to return', () => returned.get(run, id) !== undefined);
  expect((await alarms()).alarms.find((a) => a.id === id)).toMatchObject({ active: false, returnedAt: T0 + 5_000 });
  const cleared = await call<RunAlarm>(alarmPath(id, 'clear'), json({ reason: 'calibrated, certificate CAL-ut-1' }));
  expect(cleared.status).toBe(200);
  expect((await call(`/api/runs/${run}/stop`, json({}))).status).toBe(200);
});
