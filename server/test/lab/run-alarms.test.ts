// The inspection of a running test run, end to end: the method's rules are checked on the signed batches
// a gateway sends; alarms are stored, pushed to the sockets watching the run (and only to those allowed
// to), listed over REST, acknowledged and cleared with a reason and an audit entry; a rebuilt engine set
// keeps the history; missing data shows through the server's own timer on an injected clock.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql } from 'kysely';
import { io, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, RunAlarm, RunAlarmEvent, RunWatchAnswer, ServerToClientEvents } from '@labtrace/protocols';
import type { Role } from '../../src/index.js';
import { rejectionOf } from '../helpers/rejection.js';
import {
  addOtherClient,
  jsonCaller,
  ORGANIZATION,
  postJson,
  records,
  send,
  startServer,
  TestGateway,
  type TestServer,
  waitFor,
} from '../helpers/server.js';
import { rowCount } from '../helpers/store-reads.js';

const T0 = 1_800_000_000_000;
let now = T0;
let t: TestServer;
let gw: TestGateway;
let otherClientToken: string;
const sockets: Socket[] = [];

beforeAll(async () => {
  // the inspection's timer runs every 20 ms on a clock that moves only when a test moves it
  t = await startServer({}, undefined, { clock: () => now, inspectionTickMs: 20 });
  otherClientToken = await addOtherClient(t);
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('ut-1', 'ut-2');
  await waitFor('the instruments', async () => (await rowCount(t.server, 'instruments')) === 2);
});
afterAll(async () => {
  for (const s of sockets) s.close();
  await gw.end();
  await t.stop();
});

const json = postJson;
const call = jsonCaller(
  () => t,
  () => otherClientToken,
);

const limits = { id: 'force-limits', kind: 'limits', severity: 'alarm', channel: 'c', high: 100 };
const gap = { id: 'force-gap', kind: 'missing-data', severity: 'warning', instrument: 'ut-1', channel: 'c', maxGapMs: 5000 };
const method = {
  id: 'inspected',
  standard: 'ISO 6892-1:2019',
  title: 'Tensile testing, inspected',
  definition: { measurands: [{ name: 'force', unit: 'kN', channel: 'c' }], decisionRule: { kind: 'simple-acceptance' }, rules: [limits, gap] },
};

interface AlarmsView {
  run: string;
  alarms: RunAlarm[];
  events: RunAlarmEvent[];
}

function connect(token: string): { socket: Socket<ServerToClientEvents, ClientToServerEvents>; heard: RunAlarmEvent[] } {
  const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(t.base, { transports: ['websocket'], auth: { token }, reconnection: false });
  sockets.push(socket);
  const heard: RunAlarmEvent[] = [];
  socket.on('run:alarm', (e) => heard.push(e));
  return { socket, heard };
}

const watch = (socket: Socket<ServerToClientEvents, ClientToServerEvents>, run: string): Promise<RunWatchAnswer> =>
  new Promise((resolve) => socket.emit('run:watch', run, resolve));

const alarms = async (run: string, role: Role | 'client-b' = 'technician') => call<AlarmsView>(`/api/runs/${run}/alarms`, {}, role);
const alarmPath = (run: string, id: string, action: string) => `/api/runs/${run}/alarms/${encodeURIComponent(id)}/${action}`;
const sendValues = async (first: number, n: number, value: number) =>
  expect(await send(t, gw, gw.sign(records('ut-1', first, n, value)))).toBe('acked');

describe('a method carries inspection rules', () => {
  test('a bad rule is refused with the path of the field at fault', async () => {
    const bad = {
      ...method,
      definition: {
        ...method.definition,
        rules: [
          { ...limits, high: undefined },
          { ...gap, maxGapMs: -1 },
        ],
      },
    };
    const res = await call<{ issues: { path: string }[] }>('/api/methods', json(bad));
    expect(res.status).toBe(400);
    expect(res.body.issues.map((i) => i.path)).toEqual(expect.arrayContaining(['definition.rules[0].high', 'definition.rules[1].maxGapMs']));
    const twice = { ...method, definition: { ...method.definition, rules: [limits, limits] } };
    expect((await call<{ error: string }>('/api/methods', json(twice))).body.error).toMatch(/rules\[1\]\.id: duplicate rule id "force-limits"/);
  });

  test('a good one is stored with the method', async () => {
    const res = await call<{ definition: { rules: unknown[] } }>('/api/methods', json(method));
    expect(res.status).toBe(201);
    expect(res.body.definition.rules).toEqual([limits, gap]);
  });
});

describe('a running run is inspected', () => {
  let run: string;
  let watcher: ReturnType<typeof connect>;
  let outsider: ReturnType<typeof connect>;
  let limitAlarm: string;

  beforeAll(async () => {
    const sample = { id: 'S-1', organization: ORGANIZATION, description: 'bar', condition: 'intact', receivedAt: T0 };
    expect((await call('/api/lab-samples', json(sample))).status).toBe(201);
    const created = await call<{ id: string }>('/api/runs', json({ sample: 'S-1', method: 'inspected', instruments: ['ut-1'] }));
    run = created.body.id;
    watcher = connect(t.tokens.client);
    outsider = connect(otherClientToken);
    expect(await watch(watcher.socket, run)).toMatchObject({ ok: true });
    expect(await watch(outsider.socket, run)).toMatchObject({ ok: false });
  });

  test('no engine before the start; one once it runs', async () => {
    expect(t.server.inspection.inspected()).not.toContain(run);
    expect((await call(`/api/runs/${run}/start`, json({}))).status).toBe(200);
    expect(t.server.inspection.inspected()).toContain(run);
  });

  test('an out-of-limit value raises an alarm: stored, pushed to the run’s watchers only, listed over REST', async () => {
    await sendValues(0, 5, 20);
    expect((await alarms(run)).body.alarms).toEqual([]);
    await sendValues(5, 2, 150);
    await waitFor('the alarm pushed', () => watcher.heard.length > 0);
    const raised = watcher.heard[0];
    expect(raised).toMatchObject({
      run,
      event: 'raised',
      at: T0 + 5,
      alarm: { ruleId: 'force-limits', severity: 'alarm', instrument: 'ut-1', channel: 'c', value: 150, active: true },
    });
    limitAlarm = raised?.alarm.id ?? '';
    const view = (await alarms(run, 'client')).body;
    expect(view.alarms).toEqual([expect.objectContaining({ id: limitAlarm, occurrences: 1, acknowledged: null })]);
    expect(view.events.map((e) => e.event)).toEqual(['raised']);
    const row = await t.server.db
      .selectFrom('run_alarms')
      .select(['event', 'rule_id as ruleId', 'severity', 'channel'])
      .where('run', '=', run)
      .execute();
    expect(row).toEqual([{ event: 'raised', ruleId: 'force-limits', severity: 'alarm', channel: 'c' }]);
    // another organization's client neither hears nor reads it
    expect(outsider.heard).toEqual([]);
    expect((await alarms(run, 'client-b')).status).toBe(404);
    expect(await rejectionOf(sql`DELETE FROM run_alarms`.execute(t.server.db))).toMatch(/never deleted/);
  });

  test('acknowledging and clearing need the right role and a reason; each is audited', async () => {
    expect((await call(alarmPath(run, limitAlarm, 'acknowledge'), json({ reason: 'seen' }), 'client')).status).toBe(403);
    const noReason = await call<{ error: string }>(alarmPath(run, limitAlarm, 'acknowledge'), json({}));
    expect(noReason.status).toBe(400);
    expect(noReason.body.error).toMatch(/reason/);
    expect((await call(alarmPath(run, 'force-limits/ut-1/c#99', 'acknowledge'), json({ reason: 'x' }))).status).toBe(404);
    const ack = await call<RunAlarm>(alarmPath(run, limitAlarm, 'acknowledge'), json({ reason: 'specimen slipped in the grips' }));
    expect(ack.status).toBe(200);
    expect(ack.body.acknowledged).toMatchObject({ by: 'technician', reason: 'specimen slipped in the grips', at: now });
    // still past the limit: it cannot be cleared yet
    const early = await call<{ error: string }>(alarmPath(run, limitAlarm, 'clear'), json({ reason: 'done' }));
    expect(early.status).toBe(409);
    expect(early.body.error).toMatch(/while its condition is present/);
    await sendValues(7, 2, 30);
    await waitFor('the return pushed', () => watcher.heard.some((e) => e.event === 'returned'));
    const cleared = await call<RunAlarm>(alarmPath(run, limitAlarm, 'clear'), json({ reason: 'grips replaced, specimen re-tested' }), 'admin');
    expect(cleared.status).toBe(200);
    expect(cleared.body.cleared).toMatchObject({ by: 'admin', auto: false });
    await waitFor('the clearance pushed', () => watcher.heard.some((e) => e.event === 'cleared'));
    expect(watcher.heard.map((e) => e.event)).toEqual(['raised', 'acknowledged', 'returned', 'cleared']);
    const events = (await alarms(run)).body.events;
    expect(events.map((e) => [e.event, e.alarm.acknowledged?.by ?? null, e.alarm.cleared?.reason ?? null])).toEqual([
      ['raised', null, null],
      ['acknowledged', 'technician', null],
      ['returned', 'technician', null],
      ['cleared', 'technician', 'grips replaced, specimen re-tested'],
    ]);
    const audit = await t.server.audit.list({ recordType: 'run-alarm', recordId: `${run}/${limitAlarm}`, limit: 10 });
    expect(audit.map((e) => [e.actor, e.action, e.oldValue, e.newValue, e.reason])).toEqual([
      ['technician', 'update', { state: 'open' }, { state: 'acknowledged' }, 'specimen slipped in the grips'],
      ['admin', 'update', { state: 'acknowledged' }, { state: 'cleared' }, 'grips replaced, specimen re-tested'],
    ]);
    expect((await call(alarmPath(run, limitAlarm, 'clear'), json({ reason: 'again' }))).status).toBe(409);
  });

  test('missing data is raised by the server’s timer when the clock passes the gap', async () => {
    now = T0 + 60_000;
    await waitFor('the gap alarm', () => watcher.heard.some((e) => e.alarm.ruleId === 'force-gap'));
    const gapAlarm = watcher.heard.find((e) => e.alarm.ruleId === 'force-gap');
    expect(gapAlarm).toMatchObject({ event: 'raised', at: T0 + 60_000, alarm: { severity: 'warning', value: null, active: true } });
    expect(gapAlarm?.alarm.id).toMatch(/#2$/);
  });

  test('a rebuilt engine set keeps the history; an alarm from before can still be acknowledged; new ids do not repeat', async () => {
    const before = (await alarms(run)).body;
    await t.server.inspection.stop();
    expect(t.server.inspection.inspected()).toEqual([]);
    await t.server.inspection.start();
    expect(t.server.inspection.inspected()).toEqual([run]);
    expect((await alarms(run)).body).toEqual(before);
    const gapAlarm = before.alarms.find((a) => a.ruleId === 'force-gap');
    const ack = await call<RunAlarm>(alarmPath(run, gapAlarm?.id ?? '', 'acknowledge'), json({ reason: 'gateway restarted' }));
    expect(ack.body).toMatchObject({ acknowledged: { by: 'technician', reason: 'gateway restarted' } });
    expect((await call(alarmPath(run, gapAlarm?.id ?? '', 'acknowledge'), json({ reason: 'twice' }))).status).toBe(409);
    await sendValues(9, 1, 500);
    await waitFor('a new alarm', () => watcher.heard.filter((e) => e.event === 'raised').length === 3);
    expect(watcher.heard.filter((e) => e.event === 'raised').at(-1)?.alarm.id).toBe('force-limits/ut-1/c#3');
    // the gap alarm was continued by the rebuilt engine: data coming back returns it, acknowledgement kept
    await waitFor('the gap alarm returned', () => watcher.heard.some((e) => e.event === 'returned' && e.alarm.id === gapAlarm?.id));
    expect(watcher.heard.find((e) => e.event === 'returned' && e.alarm.id === gapAlarm?.id)?.alarm.acknowledged).toMatchObject({
      reason: 'gateway restarted',
    });
  });

  test('the engine goes with the stop; the alarms stay and can still be closed', async () => {
    expect((await call(`/api/runs/${run}/stop`, json({}))).status).toBe(200);
    expect(t.server.inspection.inspected()).toEqual([]);
    const open = (await alarms(run)).body.alarms.filter((a) => a.cleared === null);
    expect(open.map((a) => a.id)).toEqual([expect.stringMatching(/^force-gap/), 'force-limits/ut-1/c#3']);
    const gapAlarm = open[0]?.id ?? '';
    expect((await call(alarmPath(run, gapAlarm, 'clear'), json({ reason: 'run ended; data complete in the records' }))).status).toBe(200);
    expect((await alarms(run, 'client')).body.alarms.find((a) => a.id === gapAlarm)?.cleared).toMatchObject({ by: 'technician' });
    expect(outsider.heard).toEqual([]);
  });
});

describe('the instrument-status rule reads the calibration status', () => {
  test('an instrument never calibrated raises its alarm on its first sample in the run', async () => {
    const checked = {
      id: 'status-checked',
      standard: 'ISO 6892-1:2019',
      title: 'Tensile testing, instrument status checked',
      definition: {
        measurands: [{ name: 'force', unit: 'kN', channel: 'c' }],
        decisionRule: { kind: 'simple-acceptance' },
        rules: [{ id: 'cal', kind: 'instrument-status', severity: 'critical', instrument: 'ut-1' }],
      },
    };
    expect((await call('/api/methods', json(checked))).status).toBe(201);
    const sample = { id: 'S-2', organization: ORGANIZATION, description: 'bar', condition: 'intact', receivedAt: T0 };
    expect((await call('/api/lab-samples', json(sample))).status).toBe(201);
    const run = (await call<{ id: string }>('/api/runs', json({ sample: 'S-2', method: 'status-checked', instruments: ['ut-1'] }))).body.id;
    expect((await call(`/api/runs/${run}/start`, json({}))).status).toBe(200);
    expect((await t.server.calibration.status('ut-1')).status).toBe('never-calibrated');
    await sendValues(10, 1, 20);
    await waitFor('the status alarm', async () => (await rowCount(t.server, 'run_alarms', { run })) > 0);
    const [alarm] = (await alarms(run)).body.alarms;
    expect(alarm).toMatchObject({ ruleId: 'cal', severity: 'critical' });
    expect(JSON.stringify(alarm)).toMatch(/no calibration record/);
    expect((await call(`/api/runs/${run}/stop`, json({}))).status).toBe(200);
  });
});
