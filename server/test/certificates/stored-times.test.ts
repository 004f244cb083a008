// A record stored before times were bounded (a calibration due in 9e15 ms, a sample received then) can no
// longer be entered through the API, but one already in a lab's database must not make its certificates answer
// 500 for good: the draft lists the time as a blocker naming the record, and the issue is refused with it (409).
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Sample } from '@labtrace/protocols';
import type { CertificateView } from '../../src/certificates/certificates.js';
import { jsonCaller, ORGANIZATION, postJson as json, send, startServer, TestGateway, type TestServer, waitFor } from '../helpers/server.js';

const DAY = 86_400_000;
const FAR = 9_000_000_000_000_000;
let t: TestServer;
let gw: TestGateway;
let seq = 0;
const call = jsonCaller(
  () => t,
  () => '',
);

beforeAll(async () => {
  t = await startServer();
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('utm-1', 'utm-2');
  await waitFor('the instruments', () => (t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM instruments').get() as { n: number }).n === 2);
  const now = Date.now();
  for (const instrument of ['utm-1', 'utm-2']) {
    const res = await call(
      `/api/instruments/${instrument}/calibrations`,
      json({
        calibratedAt: now - 10 * DAY,
        laboratory: 'Reference Lab',
        certificate: `CAL-${instrument}`,
        results: [{ point: 'p1', reference: 10, indication: 10.01, unit: 'kN' }],
        uncertainty: { value: 0.1, unit: 'kN', k: 2 },
        nextDueAt: now + 300 * DAY,
      }),
    );
    expect(res.status).toBe(201);
  }
  for (const id of ['B-1', 'B-2'])
    expect(
      (await call('/api/lab-samples', json({ id, organization: ORGANIZATION, description: 'steel bar', condition: 'intact', receivedAt: now - DAY })))
        .status,
    ).toBe(201);
  const method = await call(
    '/api/methods',
    json({
      id: 'tensile',
      standard: 'ISO 6892-1:2019',
      title: 'Tensile testing at room temperature',
      definition: {
        measurands: [{ name: 'force', unit: 'kN', channel: 'c' }],
        decisionRule: { kind: 'simple-acceptance' },
        results: [{ name: 'Fm', title: 'maximum force', measurand: 'force', statistic: 'max', resolution: 0.01, limits: { min: 1 } }],
      },
    }),
  );
  expect(method.status).toBe(201);
});

afterAll(async () => {
  await gw.end();
  await t.stop();
});

async function completedRun(sample: string, instrument: string): Promise<string> {
  const created = await call<{ id: string }>('/api/runs', json({ sample, method: 'tensile', instruments: [instrument] }));
  expect(created.status).toBe(201);
  const id = created.body.id;
  expect((await call(`/api/runs/${id}/start`, json({}))).status).toBe(200);
  const ts = Date.now();
  const samples: Sample[] = [10.2, 35.7, 42.0].map((value, i) => ({
    seq: seq++,
    instrument,
    channel: 'c',
    ts: ts + i,
    value,
    unit: 'kN',
    quality: 'good',
  }));
  expect(await send(t, gw, gw.sign(samples))).toBe('acked');
  expect((await call(`/api/runs/${id}/stop`, json({}))).status).toBe(200);
  return id;
}

async function draft(run: string): Promise<string> {
  const res = await call<CertificateView>('/api/certificates', json({ run }));
  expect(res.status).toBe(201);
  return res.body.id;
}

describe('a stored time that is no date', () => {
  test('a calibration due in 9e15 ms: the draft names it as a blocker and the issue is refused, never a 500', async () => {
    // as an older server stored it: a newer calibration record of utm-1 with the far due date
    t.server.database.sqlite
      .prepare(
        `INSERT INTO calibrations (instrument, calibrated_at, laboratory, certificate, results, uncertainty, next_due_at, recorded_by, recorded_at)
         VALUES ('utm-1', ?, 'Reference Lab', 'CAL-FAR', '[]', '{"value":0.1,"unit":"kN","k":2}', ?, 'admin', ?)`,
      )
      .run(Date.now() - DAY, FAR, Date.now());
    const id = await draft(await completedRun('B-1', 'utm-1'));
    const view = await call<{ blockers: string[] }>(`/api/certificates/${id}`, {}, 'signatory');
    expect(view.status).toBe(200);
    expect(view.body.blockers).toContain(
      `instrument "utm-1": calibration certificate CAL-FAR: the due date is ${FAR}, not a time between 2000-01-01T00:00:00Z .. 2200-01-01T00:00:00Z: correct the record before the report is issued`,
    );
    const issue = await call<{ error: string }>(`/api/certificates/${id}/issue`, json({}), 'signatory');
    expect(issue.status).toBe(409);
    expect(issue.body.error).toContain(`calibration certificate CAL-FAR: the due date is ${FAR}`);
  });

  test('a sample received at 9e15 ms: the draft names it as a blocker and the issue is refused, never a 500', async () => {
    t.server.database.sqlite
      .prepare(
        "INSERT INTO lab_samples (id, organization, description, condition, received_at, created_by, created_at) VALUES ('B-FAR', ?, 'steel bar', 'intact', ?, 'admin', ?)",
      )
      .run(ORGANIZATION, FAR, Date.now());
    const id = await draft(await completedRun('B-FAR', 'utm-2'));
    const view = await call<{ blockers: string[] }>(`/api/certificates/${id}`, {}, 'signatory');
    expect(view.status).toBe(200);
    expect(view.body.blockers).toEqual([
      `sample "B-FAR": the date of receipt is ${FAR}, not a time between 2000-01-01T00:00:00Z .. 2200-01-01T00:00:00Z: correct the record before the report is issued`,
    ]);
    const issue = await call<{ error: string }>(`/api/certificates/${id}/issue`, json({}), 'signatory');
    expect(issue.status).toBe(409);
    expect(issue.body.error).toContain(`sample "B-FAR": the date of receipt is ${FAR}`);
    // a sample with a good date on the same instrument still gets its certificate
    const good = await draft(await completedRun('B-2', 'utm-2'));
    expect((await call<{ blockers: string[] }>(`/api/certificates/${good}`, {}, 'signatory')).body.blockers).toEqual([]);
    expect((await call(`/api/certificates/${good}/issue`, json({}), 'signatory')).status).toBe(200);
  });
});
