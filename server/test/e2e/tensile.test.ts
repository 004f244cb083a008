// A whole simulated tensile test to its verdict, through real processes (`labtrace lab`: simulator ->
// gateway over Modbus TCP -> server) and the REST API only: users, the machine's calibration, the client's
// sample, the ISO 6892-1 method with its results, a run covering exactly one specimen pulled to break, then
// the results (Fm within its expanded uncertainty of the maximum force the simulator was built with, Rm, the
// verdict, the records' digest) and the run's export bundle, verified offline by `labtrace verify`.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { UTS_KN } from '@labtrace/device-sim';
import { verifyBundle, type LiveSample } from '@labtrace/protocols';
import type { RunResults } from '../../src/lab/contracts.js';
import { LabClient, type LabSocket } from '../helpers/lab-client.js';
import { readBundle } from '../../src/export/read-bundle.js';
import { collect, runLabtrace, startLab, waitFor, type LabProcess } from '../helpers/lab-process.js';

const TECH = 'tech.e2e';
/** the specimen's original cross-section: a 10 mm round bar, S0 = pi d^2 / 4 */
const S0 = 78.54;

let lab: LabProcess;
let api: LabClient;
let socket: LabSocket | undefined;
/** the last specimen number the machine reported, from the live stream */
let specimen: number | undefined;

beforeAll(async () => {
  lab = await startLab();
  api = new LabClient(`http://127.0.0.1:${lab.httpPort}`);
  await api.signInAdmin();
  await api.addUser(TECH, 'technician');
  socket = await api.socket(TECH);
  socket.on('samples', (samples: LiveSample[]) => {
    for (const s of samples) {
      if (s.instrument !== 'utm-1' || s.channel !== 'specimen' || s.quality !== 'good' || typeof s.value !== 'number') continue;
      specimen = s.value;
    }
  });
}, 90_000);

afterAll(async () => {
  socket?.close();
  if (lab && lab.proc.exitCode === null) await lab.stop('SIGTERM'); // SIGTERM: the launcher stops its parts (SIGKILL would leave them running)
  if (lab) rmSync(lab.dataDir, { recursive: true, force: true });
}, 60_000);

/** Waits until the machine reports a specimen other than `than`: a new specimen begins, pulled from zero force. */
const nextSpecimen = (than: number | undefined, ms = 60_000): Promise<number> =>
  waitFor(`a specimen after ${String(than)}`, () => (specimen !== undefined && specimen !== than ? specimen : undefined), ms);

test('one specimen pulled to break: Fm and Rm with U (k = 2), a pass verdict, and a bundle that verifies offline', async () => {
  const now = Date.now();
  await waitFor('utm-1 known to the server', async () => {
    const list = await api.call<{ id: string }[]>(TECH, 'GET', '/api/instruments');
    return list.body.some((i) => i.id === 'utm-1') ? true : undefined;
  });

  // the machine's force channel, calibrated yesterday with U = 0.1 kN (k = 2): the newest record, so the one in
  // force at the run's start even when the demo lab has recorded the machine's delivery calibration before
  await api.expect(201, TECH, 'POST', '/api/instruments/utm-1/calibrations', {
    calibratedAt: now - 86_400_000,
    laboratory: 'Reference Force Lab',
    certificate: 'RFL-2026-0417',
    results: [
      { point: '10 kN', reference: 10, indication: 10.01, unit: 'kN' },
      { point: '40 kN', reference: 40, indication: 40.03, unit: 'kN' },
    ],
    uncertainty: { value: 0.1, unit: 'kN', k: 2 },
    acceptance: 'ISO 7500-1 class 1',
    nextDueAt: now + 364 * 86_400_000,
  });
  const calibration = await api.expect<{ status: string }>(200, TECH, 'GET', '/api/instruments/utm-1/calibration-status');
  expect(calibration.status).toBe('valid');

  await api.expect(201, TECH, 'POST', '/api/lab-samples', {
    id: 'T-0001',
    organization: 'demo-client',
    description: 'steel bar, 10 mm diameter, machined proportional test piece',
    condition: 'as received, no visible damage',
    receivedAt: now,
  });
  const resolution = 0.001; // kN: the float32 force indication as the machine reports it
  const repeatability = 0.15; // kN: from the method's validation
  await api.expect(201, TECH, 'POST', '/api/methods', {
    id: 'iso-6892-1',
    standard: 'ISO 6892-1:2019',
    title: 'Metallic materials - Tensile testing - Part 1: Method of test at room temperature',
    definition: {
      measurands: [{ name: 'force', unit: 'kN', channel: 'force' }],
      instrumentTypes: ['universal-testing-machine'],
      decisionRule: { kind: 'simple-acceptance' },
      results: [
        { name: 'Fm', title: 'maximum force', measurand: 'force', statistic: 'max', resolution, repeatability, limits: { min: 40 } },
        {
          name: 'Rm',
          title: 'tensile strength',
          measurand: 'force',
          statistic: 'max',
          resolution,
          repeatability,
          scale: { factor: 1000 / S0, unit: 'MPa', description: `1 / S0, S0 = ${S0} mm2 (d = 10.00 mm)`, relativeUncertainty: 0.002 },
          limits: { min: 470, max: 630 },
        },
      ],
    },
  });
  const run = await api.expect<{ id: string; state: string }>(201, TECH, 'POST', '/api/runs', {
    sample: 'T-0001',
    method: 'iso-6892-1',
    instruments: ['utm-1'],
  });
  expect(run.state).toBe('planned');

  // the run covers one whole specimen: started as the machine begins a specimen, stopped as it begins the next
  const before = await nextSpecimen(undefined);
  const pulled = await nextSpecimen(before);
  await api.expect(200, TECH, 'POST', `/api/runs/${run.id}/start`, {});
  const following = await nextSpecimen(pulled, 60_000);
  expect(following).toBe(pulled + 1);
  const stopped = await api.expect<{ state: string }>(200, TECH, 'POST', `/api/runs/${run.id}/stop`, {});
  expect(stopped.state).toBe('completed');

  const results = await waitFor('the results', async () => {
    const res = await api.call<RunResults>(TECH, 'GET', `/api/runs/${run.id}/results`);
    return res.status === 200 ? res.body : undefined;
  });
  expect(results).toMatchObject({ run: run.id, method: { id: 'iso-6892-1', version: 1, standard: 'ISO 6892-1:2019' }, verdict: 'pass' });
  const fm = results.results.find((r) => r.name === 'Fm');
  const rm = results.results.find((r) => r.name === 'Rm');
  if (fm === undefined || rm === undefined) throw new Error(`results without Fm or Rm: ${JSON.stringify(results)}`);
  // Fm is the maximum force the simulated machine was built with, to within the expanded uncertainty U (k = 2)
  expect(fm).toMatchObject({ unit: 'kN', statistic: 'max', instruments: ['utm-1'] });
  expect(fm.uncertainty.coverageFactor).toBe(2);
  expect(fm.uncertainty.budget.map((b) => b.source)).toEqual(['calibration', 'resolution', 'repeatability']);
  expect(fm.uncertainty.budget[0]?.description).toMatch(/RFL-2026-0417/);
  expect(fm.uncertainty.expanded).toBeCloseTo(2 * Math.hypot(0.1 / 2, resolution / (2 * Math.sqrt(3)), repeatability), 9);
  expect(Math.abs(fm.value - UTS_KN)).toBeLessThanOrEqual(fm.uncertainty.expanded);
  expect(fm.conformity).toMatchObject({ verdict: 'pass', rule: 'simple-acceptance', limits: { min: 40 } });
  expect(rm.unit).toBe('MPa');
  expect(rm.value).toBeCloseTo((fm.value * 1000) / S0, 9);
  expect(rm.conformity?.verdict).toBe('pass');

  // the results are those of the run's records: Fm is their largest good force, and the count is theirs
  const records = await api.expect<{ samples: LiveSample[]; truncated: boolean }>(200, TECH, 'GET', `/api/runs/${run.id}/records`);
  expect(records.truncated).toBe(false);
  const forces = records.samples.filter((s) => s.channel === 'force' && s.quality === 'good').map((s) => s.value as number);
  expect(fm.value).toBe(Math.max(...forces));
  expect(fm.sampleCount).toBe(forces.length);
  const numbers = new Set(records.samples.filter((s) => s.channel === 'specimen').map((s) => s.value));
  expect(numbers.has(pulled)).toBe(true);
  expect(results.records).toEqual({
    count: records.samples.length,
    digest: expect.stringMatching(/^[0-9a-f]{64}$/),
    digestAlgorithm: expect.any(String),
  });

  // the run's export bundle, written by the lab's own command and checked offline
  const out = mkdtempSync(path.join(tmpdir(), 'labtrace-tensile-export-'));
  try {
    const config = path.join(lab.dataDir, 'lab', 'server.yaml');
    const seqs = new Set(records.samples.map((s) => s.seq));
    // the bundle holds the batches in the latest signed checkpoint: wait until it covers the run's last record
    await waitFor(
      'an export covering every record of the run',
      async () => {
        rmSync(out, { recursive: true, force: true });
        const exported = await command(['export', '--run', run.id, '--out', out, '--config', config]);
        if (exported.code !== 0) throw new Error(`labtrace export failed:\n${exported.output}`);
        const verified = await command(['verify', out, '--json']);
        const report = JSON.parse(verified.stdout) as { status: string; problems: { kind: string }[] };
        // batches stored after the latest signed checkpoint are in the bundle but not yet provable: wait for the next one
        if (report.problems.length > 0 && report.problems.every((p) => p.kind === 'not-in-checkpoint')) return undefined;
        if (verified.code !== 0 || report.status !== 'verified') throw new Error(`the bundle does not verify:\n${verified.output}`);
        const held = bundleSeqs(out);
        return [...seqs].every((seq) => held.has(seq)) ? true : undefined;
      },
      30_000,
    );
    // the same bundle from the API, as an auditor downloads it: a tar archive, unpacked by the system's tar
    const res = await fetch(`${api.base}/api/runs/${run.id}/export`, { headers: { authorization: `Bearer ${api.token('admin')}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="labtrace-bundle-run-${run.id}.tar"`);
    const archive = path.join(out, 'bundle.tar');
    writeFileSync(archive, Buffer.from(await res.arrayBuffer()));
    const unpacked = path.join(out, 'unpacked');
    mkdirSync(unpacked);
    execFileSync('tar', ['-xf', archive, '-C', unpacked]);
    const fromApi = path.join(unpacked, `labtrace-bundle-run-${run.id}`);
    expect(verifyBundle(readBundle(fromApi), {}).status).toBe('verified');
    const held = bundleSeqs(fromApi);
    expect([...seqs].every((seq) => held.has(seq))).toBe(true);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}, 180_000);

/** Runs a labtrace command to its end (its output read to the last byte). */
async function command(args: string[]): Promise<{ code: number | null; stdout: string; output: string }> {
  const proc = runLabtrace(args, { LOG_LEVEL: 'warn' });
  let stdout = '';
  proc.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  const output = collect(proc);
  const code = await new Promise<number | null>((resolve) => proc.once('close', (c: number | null) => resolve(c)));
  return { code, stdout, output: output() };
}

function bundleSeqs(dir: string): Set<number> {
  const files = readBundle(dir);
  return new Set(
    files.records
      .trim()
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => (JSON.parse(line) as { seq: number }).seq),
  );
}
