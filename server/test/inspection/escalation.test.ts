// An alarm's message follows its escalation, through the real rule engine of a running run fed by a gateway's
// signed batches: raised at a warning ("47 kN above the warning level 45"), then at 55 kN past the alarm limit the
// stored alarm says so. The open alarms show in the run list (count and filter) and in the open-alarm count, each
// to those who may see the run; a clearance takes them off.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { OpenAlarmCount, Page, RunAlarms, RunListItem } from '@labtrace/protocols/api';
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

const T0 = 1_800_000_000_000;
let t: TestServer;
let gw: TestGateway;
let otherClientToken: string;
let run: string;

const call = jsonCaller(
  () => t,
  () => otherClientToken,
);
const kN = (first: number, n: number, value: number) => records('ut-1', first, n, value).map((s) => ({ ...s, unit: 'kN' }));
const sendValues = async (first: number, n: number, value: number) => expect(await send(t, gw, gw.sign(kN(first, n, value)))).toBe('acked');
const alarms = async () => (await call<RunAlarms>(`/api/runs/${run}/alarms`)).body;

beforeAll(async () => {
  t = await startServer({}, undefined, { clock: () => T0 + 1000, inspectionTickMs: 60_000 });
  otherClientToken = await addOtherClient(t);
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('ut-1');
  await waitFor('the instrument', () => (t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM instruments').get() as { n: number }).n === 1);
  const method = {
    id: 'force-watched',
    standard: 'ISO 6892-1:2019',
    title: 'Tensile testing, force watched',
    definition: {
      measurands: [{ name: 'force', unit: 'kN', channel: 'c' }],
      decisionRule: { kind: 'simple-acceptance' },
      rules: [{ id: 'force-limits', kind: 'limits', severity: 'alarm', channel: 'c', warnHigh: 45, high: 50 }],
    },
  };
  expect((await call('/api/methods', postJson(method))).status).toBe(201);
  const sample = { id: 'S-E', organization: ORGANIZATION, description: 'steel bar', condition: 'intact', receivedAt: T0 };
  expect((await call('/api/lab-samples', postJson(sample))).status).toBe(201);
  run = (await call<{ id: string }>('/api/runs', postJson({ sample: 'S-E', method: 'force-watched', instruments: ['ut-1'] }))).body.id;
  expect((await call(`/api/runs/${run}/start`, postJson({}))).status).toBe(200);
});
afterAll(async () => {
  await gw.end();
  await t.stop();
});

describe('escalation', () => {
  test('raised at the warning level, the alarm carries the warning message', async () => {
    await sendValues(0, 3, 20);
    await sendValues(3, 1, 47);
    await waitFor('the alarm', async () => (await t.server.inspection.alarmsOf(run)).alarms.length === 1);
    const [alarm] = (await alarms()).alarms;
    expect(alarm).toMatchObject({ severity: 'warning', value: 47, active: true });
    expect(alarm?.message).toBe('ut-1/c 47 kN above the warning level 45');
  });

  test('at 55 kN past the alarm limit the same alarm escalates, and its message and value say so', async () => {
    await sendValues(4, 1, 55);
    await waitFor('the escalation', async () => (await t.server.inspection.alarmsOf(run)).events.some((e) => e.event === 'escalated'));
    const answer = await alarms();
    expect(answer.alarms).toHaveLength(1);
    expect(answer.alarms[0]).toMatchObject({ severity: 'alarm', value: 55 });
    expect(answer.alarms[0]?.message).toBe('ut-1/c 55 kN above the high limit 50');
    // the history keeps both: raised with the warning's words, escalated with the alarm's
    expect(answer.events.map((e) => [e.event, e.alarm.message])).toEqual([
      ['raised', 'ut-1/c 47 kN above the warning level 45'],
      ['escalated', 'ut-1/c 55 kN above the high limit 50'],
    ]);
  });
});

describe('open alarms in the list and the count', () => {
  test('the run list counts the run’s open alarms and filters on them; the count covers the runs the caller sees', async () => {
    const all = (await call<Page<RunListItem>>('/api/runs')).body;
    expect(all.items.find((r) => r.id === run)?.openAlarms).toBe(1);
    const open = (await call<Page<RunListItem>>('/api/runs?alarms=open')).body;
    expect(open.items.map((r) => r.id)).toEqual([run]);
    expect((await call<OpenAlarmCount>('/api/alarms/open-count')).body).toEqual({ open: 1, runs: 1 });
    expect((await call<OpenAlarmCount>('/api/alarms/open-count', {}, 'client')).body).toEqual({ open: 1, runs: 1 });
    // another organization's client sees none of it
    expect((await call<OpenAlarmCount>('/api/alarms/open-count', {}, 'client-b')).body).toEqual({ open: 0, runs: 0 });
    expect((await call<Page<RunListItem>>('/api/runs?alarms=open', {}, 'client-b')).body.items).toEqual([]);
    expect((await call<{ issues: { path: string }[] }>('/api/runs?alarms=closed')).status).toBe(400);
  });

  test('acknowledged it stays open; cleared, it leaves the count and the filter', async () => {
    const id = encodeURIComponent((await alarms()).alarms[0]?.id ?? '');
    await sendValues(5, 1, 20);
    await waitFor('back to normal', async () => (await t.server.inspection.alarmsOf(run)).events.some((e) => e.event === 'returned'));
    expect((await call(`/api/runs/${run}/alarms/${id}/acknowledge`, postJson({ reason: 'operator informed' }))).status).toBe(200);
    expect((await call<OpenAlarmCount>('/api/alarms/open-count')).body.open).toBe(1);
    expect((await call(`/api/runs/${run}/alarms/${id}/clear`, postJson({ reason: 'specimen replaced' }))).status).toBe(200);
    expect((await call<OpenAlarmCount>('/api/alarms/open-count')).body).toEqual({ open: 0, runs: 0 });
    expect((await call<Page<RunListItem>>('/api/runs?alarms=open')).body.items).toEqual([]);
    expect((await call<Page<RunListItem>>('/api/runs')).body.items.find((r) => r.id === run)?.openAlarms).toBe(0);
  });
});
