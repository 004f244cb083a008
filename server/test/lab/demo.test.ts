// The demo lab of `npm start`: its method recorded once, and a run per specimen of the testing machine,
// started when a specimen is mounted and stopped when the next one is, with the machine calibrated first
// and results computed from the run's records.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import type { Sample } from '@labtrace/protocols';
import type { RunResults } from '../../src/lab/contracts.js';
import { DEMO_METHOD_ID } from '../../src/lab/demo.js';
import { ORGANIZATION, send, startServer, TestGateway, type TestServer, waitFor } from '../helpers/server.js';

let t: TestServer;
let gw: TestGateway;
let seq = 0;

beforeAll(async () => {
  t = await startServer({ demo: { enabled: true, organization: ORGANIZATION, pauseSpecimens: 0 } });
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.announce([
    {
      id: 'utm-1',
      identity: { maker: 'ZwickRoell', model: 'Z050', serialNumber: 'ZR-1', kind: 'universal-testing-machine' },
      channels: [
        { name: 'force', unit: 'kN' },
        { name: 'extension', unit: 'mm' },
        { name: 'specimen', unit: '' },
      ],
    },
  ]);
  await waitFor('the testing machine', () => t.server.database.sqlite.prepare("SELECT 1 FROM instruments WHERE id = 'utm-1'").get() !== undefined);
});
afterAll(async () => {
  await gw.end();
  await t.stop();
});

/** One reading of the machine: force, extension and the specimen counter. */
async function reading(specimen: number, force: number, extension: number): Promise<void> {
  const ts = Date.now();
  const samples: Sample[] = [
    { seq: seq++, instrument: 'utm-1', channel: 'force', ts, value: force, unit: 'kN', quality: 'good' },
    { seq: seq++, instrument: 'utm-1', channel: 'extension', ts, value: extension, unit: 'mm', quality: 'good' },
    { seq: seq++, instrument: 'utm-1', channel: 'specimen', ts, value: specimen, unit: '', quality: 'good' },
  ];
  expect(await send(t, gw, gw.sign(samples))).toBe('acked');
}

const runsOf = async () => (await t.server.runs.list({ role: 'admin', organization: null })).filter((r) => r.method.id === DEMO_METHOD_ID);

test('the demo method is recorded once, and a run follows each specimen from mounting to break, with its results', async () => {
  expect((await t.server.labRecords.method(DEMO_METHOD_ID))?.standard).toBe('ISO 6892-1:2019');
  await reading(1, 0, 12);
  expect(await runsOf()).toEqual([]);
  // a new specimen is mounted: the machine gets its calibration and a run starts
  await reading(2, 0, 0);
  await waitFor('the demo run', async () => (await runsOf()).length === 1);
  const [run] = await runsOf();
  expect(run).toMatchObject({ state: 'running', technician: 'technician', organization: ORGANIZATION, createdBy: 'demo' });
  expect((await t.server.calibration.status('utm-1')).status).toBe('valid');
  for (const [force, extension] of [
    [10, 0.4],
    [30, 1.2],
    [41.7, 6],
    [42.05, 9],
    [35, 12],
  ] as const)
    await reading(2, force, extension);
  // the next specimen: the run is completed, and another starts
  await reading(3, 0, 0);
  await waitFor('the completed run', async () => (await runsOf()).some((r) => r.id === run?.id && r.state === 'completed'));
  const done = (await runsOf()).find((r) => r.id === run?.id) as NonNullable<typeof run>;
  const results = (await t.server.results.resultsOf(done.id)) as RunResults;
  expect(results.verdict).toBe('pass');
  expect(results.results.map((r) => r.name)).toEqual(['Fm', 'Rm', 'A']);
  const [fm, rm, a] = results.results.map((r) => r.value);
  expect(fm).toBe(42.05);
  expect(rm).toBeCloseTo((42.05 * 1000) / 78.54, 9);
  expect(a).toBeCloseTo((12 * 100) / 50, 9);
  expect(results.results.every((r) => r.uncertainty.budget.some((b) => b.source === 'calibration'))).toBe(true);
  expect((await runsOf()).filter((r) => r.state === 'running')).toHaveLength(1);
  // its certificate: requested by the technician, approved and issued by the signatory, verifiable
  await waitFor('the demo certificate', async () =>
    (await t.server.certificates.list({ role: 'admin', organization: null }, { run: done.id })).items.some((c) => c.status === 'valid'),
  );
  const [certificate] = (await t.server.certificates.list({ role: 'admin', organization: null }, { run: done.id })).items;
  expect(certificate).toMatchObject({ requestedBy: 'technician', issuedBy: 'signatory', organization: ORGANIZATION });
  const status = (await (await t.fetch(`/api/public/certificates/${certificate?.id ?? ''}`, {}, null)).json()) as { status: string };
  expect(status.status).toBe('valid');
  expect((await t.server.audit.list({ recordType: 'run', recordId: done.id, limit: 10 })).map((e) => [e.actor, e.action, e.reason])).toEqual([
    ['demo', 'create', null],
    ['demo', 'state-change', 'specimen 2 mounted'],
    ['demo', 'state-change', 'specimen 2 broke'],
  ]);
});
