// The inspection of a running run against faults injected into the simulated instruments, through real
// processes (`labtrace lab`): for each rule kind a fault that should fire it (a frozen sensor, a drifting
// probe, an instrument that stops answering, a noisy load cell and a noisy humidity sensor, failed reads, an
// instrument taken out of service), then the alarm with its rule and severity (REST and socket), acknowledged and cleared with a
// reason by a technician once the fault is gone, and the audit trail holding both acts.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { RunAlarm, RunAlarmEvent } from '@labtrace/protocols';
import { LabClient, type LabSocket } from '../helpers/lab-client.js';
import { startLab, waitFor, type LabProcess } from '../helpers/lab-process.js';

const TECH = 'tech.inspect';

// Parameters chosen so that each fault fires its rule within seconds, and the undisturbed simulation never
// does: the chamber's temperature and setpoint are pinned equal (no drift of their own), its humidity moves at
// every step but slowly, the machine's force stays within 0..42 kN and its reads succeed.
const RULES = [
  { id: 'humidity-stuck', kind: 'stuck', severity: 'warning', instrument: 'climate-1', channel: 'humidity', periodMs: 2000 },
  {
    id: 'temperature-drift',
    kind: 'drift',
    severity: 'alarm',
    instrument: 'climate-1',
    channel: 'temperature',
    reference: 'setpoint',
    maxDifference: 2,
    windowMs: 1000,
  },
  { id: 'temperature-gap', kind: 'missing-data', severity: 'critical', instrument: 'climate-1', channel: 'temperature', maxGapMs: 4000 },
  { id: 'force-limits', kind: 'limits', severity: 'critical', instrument: 'utm-1', channel: 'force', low: -20, high: 60 },
  // the chamber's humidity moves at most about 2 %RH/s between polls half a second apart
  { id: 'humidity-rate', kind: 'rate-of-change', severity: 'info', instrument: 'climate-1', channel: 'humidity', maxPerSecond: 20 },
  { id: 'force-quality', kind: 'quality', severity: 'warning', instrument: 'utm-1', channel: 'force', minimum: 'good' },
  { id: 'chamber-status', kind: 'instrument-status', severity: 'alarm', instrument: 'climate-1' },
] as const;
type RuleId = (typeof RULES)[number]['id'];

let lab: LabProcess;
let api: LabClient;
let socket: LabSocket | undefined;
let run: string;
const heard: RunAlarmEvent[] = [];

async function control(method: string, path: string, body?: unknown): Promise<void> {
  const res = await fetch(`${lab.controlUrl}${path}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  if (res.status !== 200) throw new Error(`simulator ${method} ${path}: ${res.status} ${await res.text()}`);
}
const fault = (instrument: string, f: Record<string, unknown>): Promise<void> => control('PUT', `/instruments/${instrument}/fault`, f);
const clearFaults = (instrument: string): Promise<void> => control('DELETE', `/instruments/${instrument}/fault`);

beforeAll(async () => {
  lab = await startLab();
  api = new LabClient(`http://127.0.0.1:${lab.httpPort}`);
  await api.signInAdmin();
  await api.addUser(TECH, 'technician');
  await control('PUT', '/instruments/climate-1/values', { temperature: 23, setpoint: 23 });
  await waitFor('both instruments known to the server', async () => {
    const list = await api.call<{ id: string }[]>(TECH, 'GET', '/api/instruments');
    return ['climate-1', 'utm-1'].every((id) => list.body.some((i) => i.id === id)) ? true : undefined;
  });
  const now = Date.now();
  for (const [instrument, unit] of [
    ['climate-1', '°C'],
    ['utm-1', 'kN'],
  ] as const) {
    await api.expect(201, TECH, 'POST', `/api/instruments/${instrument}/calibrations`, {
      calibratedAt: now - 86_400_000,
      laboratory: 'Reference Lab',
      certificate: `CAL-${instrument}`,
      results: [{ point: 'p1', reference: 20, indication: 20.01, unit }],
      uncertainty: { value: 0.1, unit, k: 2 },
      nextDueAt: now + 300 * 86_400_000,
    });
  }
  await api.expect(201, TECH, 'POST', '/api/lab-samples', {
    id: 'F-0001',
    organization: 'demo-client',
    description: 'steel bar conditioned in the chamber',
    condition: 'as received',
    receivedAt: now,
  });
  await api.expect(201, TECH, 'POST', '/api/methods', {
    id: 'inspected-tensile',
    standard: 'ISO 6892-1:2019',
    title: 'Tensile test after conditioning, inspected',
    definition: {
      measurands: [
        { name: 'force', unit: 'kN', channel: 'force' },
        { name: 'temperature', unit: '°C', channel: 'temperature' },
      ],
      decisionRule: { kind: 'simple-acceptance' },
      rules: RULES,
    },
  });
  run = (
    await api.expect<{ id: string }>(201, TECH, 'POST', '/api/runs', {
      sample: 'F-0001',
      method: 'inspected-tensile',
      instruments: ['climate-1', 'utm-1'],
    })
  ).id;
  socket = await api.socket(TECH);
  socket.on('run:alarm', (e) => heard.push(e));
  const watching = await new Promise<{ ok: boolean }>((resolve) => socket?.emit('run:watch', run, resolve));
  expect(watching.ok).toBe(true);
  await api.expect(200, TECH, 'POST', `/api/runs/${run}/start`, {});
}, 120_000);

afterAll(async () => {
  socket?.close();
  if (lab && lab.proc.exitCode === null) await lab.stop('SIGTERM'); // SIGTERM: the launcher stops its parts (SIGKILL would leave them running)
  if (lab) rmSync(lab.dataDir, { recursive: true, force: true });
}, 60_000);

const alarmsOf = async (): Promise<{ alarms: RunAlarm[]; events: RunAlarmEvent[] }> =>
  api.expect<{ alarms: RunAlarm[]; events: RunAlarmEvent[] }>(200, TECH, 'GET', `/api/runs/${run}/alarms`);
const alarmPath = (id: string, action: string): string => `/api/runs/${run}/alarms/${encodeURIComponent(id)}/${action}`;

/**
 * Injects a fault and waits for its rule's alarm (a new one, or an open one of the same rule recurring: a loaded
 * machine may have tripped the rule before); the technician acknowledges it; the fault is healed; once the
 * condition has returned the technician clears it. Both acts carry a reason and are in the audit trail.
 */
async function firesAndIsHandled(ruleId: RuleId, inject: () => Promise<void>, heal: () => Promise<void>): Promise<RunAlarm> {
  const rule = RULES.find((r) => r.id === ruleId);
  if (rule === undefined) throw new Error(`no rule ${ruleId}`);
  // events after this one are the fault's (by their place in the history: a sample polled just before a status
  // change is judged after it, so its time can precede the change)
  const after = Math.max(0, ...(await alarmsOf()).events.map((e) => e.seq));
  await inject();
  const fired = await waitFor(
    `an alarm of ${ruleId}`,
    async () => (await alarmsOf()).events.find((e) => e.alarm.ruleId === ruleId && (e.event === 'raised' || e.event === 'recurred') && e.seq > after),
    30_000,
  );
  const id = fired.alarm.id;
  expect(fired.alarm).toMatchObject({ ruleId, kind: rule.kind, severity: rule.severity, instrument: rule.instrument, active: true });
  // the run's watchers heard it as it happened
  await waitFor(`${id} pushed on the socket`, () => (heard.some((e) => e.alarm.id === id && e.event === fired.event) ? true : undefined));

  const ackReason = `${ruleId}: seen, fault being investigated`;
  const acknowledged = await api.call<RunAlarm>(TECH, 'POST', alarmPath(id, 'acknowledge'), { reason: ackReason });
  if (acknowledged.status !== 409) expect(acknowledged.status).toBe(200); // 409: acknowledged in an earlier episode
  await heal();
  await waitFor(
    `${id} to return to normal`,
    async () => ((await alarmsOf()).alarms.find((a) => a.id === id)?.active === false ? true : undefined),
    30_000,
  );
  const clearReason = `${ruleId}: fault removed, data checked`;
  const cleared = await api.expect<RunAlarm>(200, TECH, 'POST', alarmPath(id, 'clear'), { reason: clearReason });
  expect(cleared.cleared).toMatchObject({ by: TECH, reason: clearReason, auto: false });

  const page = await api.expect<{ items: { actor: string; action: string; reason: string; newValue: { state: string } }[] }>(
    200,
    'admin',
    'GET',
    `/api/audit-trail?recordType=run-alarm&recordId=${encodeURIComponent(`${run}/${id}`)}`,
  );
  // newest first: read in the order they happened
  const trail = page.items.reverse();
  expect(trail.map((e) => [e.actor, e.newValue.state, e.reason])).toEqual([
    ...(acknowledged.status === 200 ? [[TECH, 'acknowledged', ackReason]] : []),
    [TECH, 'cleared', clearReason],
  ]);
  return cleared;
}

describe('each rule kind fired by a fault of the simulator', () => {
  test('a frozen humidity sensor (fault stuck): stuck', async () => {
    const alarm = await firesAndIsHandled(
      'humidity-stuck',
      () => fault('climate-1', { kind: 'stuck' }),
      () => clearFaults('climate-1'),
    );
    expect(alarm.message).toMatch(/has not moved/);
  }, 60_000);

  test('a temperature probe drifting away from the setpoint (fault drift): drift against the reference channel', async () => {
    const alarm = await firesAndIsHandled(
      'temperature-drift',
      () => fault('climate-1', { kind: 'drift', ratePerSecond: 4, channels: ['temperature'] }),
      () => clearFaults('climate-1'),
    );
    expect(alarm.message).toMatch(/differs from climate-1\/setpoint/);
  }, 60_000);

  test('a chamber that stops answering (fault no-answer): missing data', async () => {
    const alarm = await firesAndIsHandled(
      'temperature-gap',
      () => fault('climate-1', { kind: 'no-answer' }),
      () => clearFaults('climate-1'),
    );
    expect(alarm.message).toMatch(/sent no data/);
    expect(alarm.value).toBeNull();
  }, 60_000);

  test('a noisy load cell (fault noise, large amplitude): limits', async () => {
    const alarm = await firesAndIsHandled(
      'force-limits',
      () => fault('utm-1', { kind: 'noise', amplitude: 200, channels: ['force'] }),
      () => clearFaults('utm-1'),
    );
    expect(alarm.message).toMatch(/(above the high|below the low) limit/);
    expect(Math.abs(alarm.value as number)).toBeGreaterThan(20);
  }, 60_000);

  test('a noisy humidity sensor (fault noise): rate of change', async () => {
    const alarm = await firesAndIsHandled(
      'humidity-rate',
      () => fault('climate-1', { kind: 'noise', amplitude: 30, channels: ['humidity'] }),
      () => clearFaults('climate-1'),
    );
    expect(alarm.message).toMatch(/changed by .* %RH\/s, more than 20/);
  }, 60_000);

  test('reads the machine refuses (fault exception): the gateway marks them bad, quality', async () => {
    const alarm = await firesAndIsHandled(
      'force-quality',
      () => fault('utm-1', { kind: 'exception', code: 4 }),
      () => clearFaults('utm-1'),
    );
    expect(alarm.message).toMatch(/quality bad/);
  }, 60_000);

  test('the chamber taken out of service while it produces data: instrument status', async () => {
    const alarm = await firesAndIsHandled(
      'chamber-status',
      () => api.expect(201, TECH, 'POST', '/api/instruments/climate-1/status', { status: 'out-of-service', reason: 'door seal damaged' }),
      () => api.expect(201, TECH, 'POST', '/api/instruments/climate-1/status', { status: 'in-service', reason: 'seal replaced and checked' }),
    );
    expect(alarm.message).toMatch(/out of service/);
  }, 60_000);

  test('the run ends with every alarm cleared, each by the technician with a reason', async () => {
    await api.expect(200, TECH, 'POST', `/api/runs/${run}/stop`, {});
    const { alarms } = await alarmsOf();
    const handled = new Set(alarms.filter((a) => a.cleared !== null && a.cleared.by === TECH).map((a) => a.ruleId));
    expect([...handled].sort()).toEqual(RULES.map((r) => r.id).sort());
  }, 30_000);
});
