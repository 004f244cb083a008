// A completed run's results: each computed from the run's signed records, with an expanded uncertainty
// from its GUM budget, a statement of conformity by the method's decision rule, the scope flag and the
// digest binding the records; kept once, append-only, and shown only to those who may see the run.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql } from 'kysely';
import { encodeRecords, rootOf, roundResult, toHex, type Sample } from '@labtrace/protocols';
import type { RunResults } from '../../src/lab/contracts.js';
import { combine, decide, observe } from '../../src/lab/results.js';
import { rejectionOf } from '../helpers/rejection.js';
import { addOtherClient, jsonCaller, ORGANIZATION, postJson, send, startServer, TestGateway, type TestServer, waitFor } from '../helpers/server.js';
import { rowCount } from '../helpers/store-reads.js';

describe('the arithmetic', () => {
  test('values are reported to the digits of U, and U is rounded up to two significant digits', () => {
    expect(roundResult(42.03371, 0.2341)).toEqual({ value: '42.03', uncertainty: '0.24' });
    expect(roundResult(534.77, 3.01)).toEqual({ value: '534.8', uncertainty: '3.1' });
    expect(roundResult(534.77, 12.2)).toEqual({ value: '535', uncertainty: '13' });
    expect(roundResult(1.5, 0.24)).toEqual({ value: '1.50', uncertainty: '0.24' });
  });

  test('the budget combines as a root sum of squares, and U = 2 u_c', () => {
    const u = combine([
      { source: 'a', description: '', distribution: 'normal', standardUncertainty: 0.3 },
      { source: 'b', description: '', distribution: 'rectangular', standardUncertainty: 0.4 },
    ]);
    expect(u.combined).toBeCloseTo(0.5, 12);
    expect(u).toMatchObject({ expanded: 1, coverageFactor: 2, coverageProbability: 0.95 });
  });

  test('simple acceptance compares the value with the limit; a guard band shrinks the acceptance zone by w = factor x U', () => {
    const limits = { min: 40 };
    expect(decide(40.05, 0.1, limits, { kind: 'simple-acceptance' })).toMatchObject({ verdict: 'pass', acceptance: { min: 40 } });
    expect(decide(39.99, 0.1, limits, { kind: 'simple-acceptance' }).verdict).toBe('fail');
    const guarded = decide(40.05, 0.1, limits, { kind: 'guarded-acceptance', guardBandFactor: 1 });
    expect(guarded.verdict).toBe('fail');
    expect(guarded.acceptance.min).toBeCloseTo(40.1, 12);
    expect(guarded.ruleText).toMatch(/ILAC-G8.*guarded acceptance.*w = 1 x U/);
    expect(decide(40.15, 0.1, limits, { kind: 'guarded-acceptance', guardBandFactor: 1 }).verdict).toBe('pass');
    expect(decide(5, 1, { min: 0, max: 10 }, { kind: 'guarded-acceptance', guardBandFactor: 2 })).toMatchObject({
      verdict: 'pass',
      acceptance: { min: 2, max: 8 },
    });
    expect(decide(8.5, 1, { min: 0, max: 10 }, { kind: 'guarded-acceptance', guardBandFactor: 2 }).verdict).toBe('fail');
  });

  test('statistics over a series, with the instrument the extreme came from', () => {
    const s = { values: [1, 5, 3, 3], ts: [0, 1, 2, 3], instruments: ['a', 'b', 'a', 'a'], excluded: 0 };
    expect(observe(s, 'max')).toMatchObject({ value: 5, instruments: ['b'], count: 4 });
    expect(observe(s, 'min')).toMatchObject({ value: 1, instruments: ['a'] });
    expect(observe(s, 'mean')).toMatchObject({ value: 3, instruments: ['a', 'b'] });
    expect(observe(s, 'mean')?.stdDev).toBeCloseTo(Math.sqrt(8 / 3), 12);
    expect(observe(s, 'range')?.value).toBe(4);
    expect(observe(s, 'last')?.value).toBe(3);
    expect(observe({ values: [], ts: [], instruments: [], excluded: 2 }, 'max')).toBeUndefined();
    // a long run: more samples than a function call takes arguments
    const n = 500_000;
    const long = { values: Array.from({ length: n }, (_, i) => (i % 1000) / 10), ts: [], instruments: Array<string>(n).fill('a'), excluded: 0 };
    expect(observe(long, 'range')?.value).toBeCloseTo(99.9, 9);
    expect(observe(long, 'max')?.value).toBeCloseTo(99.9, 9);
  });
});

describe('results of a run', () => {
  let t: TestServer;
  let gw: TestGateway;
  let otherClientToken: string;
  const IN_SCOPE = 'ISO 6892-1:2019';
  const S0 = 78.54; // mm2, a 10 mm bar
  const sent: Sample[] = [];
  let seq = 0;
  const call = jsonCaller(
    () => t,
    () => otherClientToken,
  );
  const json = postJson;

  beforeAll(async () => {
    t = await startServer({
      accreditation: {
        accreditations: [
          {
            id: 'acc-1',
            body: 'CNAS',
            number: 'L1234',
            validFrom: '2020-01-01',
            validTo: Date.now() + 365 * 86_400_000,
            scope: [
              { standard: IN_SCOPE, measurand: 'force', unit: 'kN', min: 0, max: 100 },
              { standard: IN_SCOPE, measurand: 'temperature', unit: 'degC', min: -40, max: 100 },
            ],
          },
        ],
      },
    });
    otherClientToken = await addOtherClient(t);
    gw = await TestGateway.connect(t, 'gw-a');
    await gw.birth('utm-1', 'th-1');
    await waitFor('the instruments', async () => (await rowCount(t.server, 'instruments')) === 2);
    const now = Date.now();
    // the force channel calibrated with U = 0.1 kN (k = 2); the thermometer with U = 0.5 % of reading (k = 2)
    for (const [instrument, uncertainty] of [
      ['utm-1', { value: 0.1, unit: 'kN', k: 2 }],
      ['th-1', { value: 0.5, unit: '%', k: 2 }],
    ] as const) {
      const res = await call(
        `/api/instruments/${instrument}/calibrations`,
        json({
          calibratedAt: now - 10 * 86_400_000,
          laboratory: 'Reference Lab',
          certificate: `CAL-${instrument}`,
          results: [{ point: 'p1', reference: 10, indication: 10.01, unit: uncertainty.unit }],
          uncertainty,
          nextDueAt: now + 300 * 86_400_000,
        }),
      );
      expect(res.status).toBe(201);
    }
    expect(
      (
        await call(
          '/api/lab-samples',
          json({ id: 'B-1', organization: ORGANIZATION, description: 'steel bar', condition: 'intact', receivedAt: now }),
        )
      ).status,
    ).toBe(201);
  });
  afterAll(async () => {
    await gw.end();
    await t.stop();
  });

  async function method(id: string, standard: string, decisionRule: unknown, fmMin = 40): Promise<void> {
    const res = await call(
      '/api/methods',
      json({
        id,
        standard,
        title: 'Tensile test',
        definition: {
          measurands: [
            { name: 'force', unit: 'kN', channel: 'force' },
            { name: 'temperature', unit: 'degC', channel: 'temp' },
          ],
          decisionRule,
          results: [
            {
              name: 'Fm',
              title: 'maximum force',
              measurand: 'force',
              statistic: 'max',
              resolution: 0.01,
              repeatability: 0.05,
              limits: { min: fmMin },
            },
            {
              name: 'Rm',
              title: 'tensile strength',
              measurand: 'force',
              statistic: 'max',
              resolution: 0.01,
              repeatability: 0.05,
              scale: { factor: 1000 / S0, unit: 'MPa', description: `1 / S0, S0 = ${S0} mm2`, relativeUncertainty: 0.002 },
              limits: { min: 500, max: 650 },
            },
            { name: 'T', title: 'mean temperature', measurand: 'temperature', statistic: 'mean', resolution: 0.1 },
          ],
        },
      }),
    );
    expect(res.status).toBe(201);
  }

  /** Runs the method with the given forces (kN) and temperatures, and returns the completed run's id. */
  async function run(methodId: string, forces: number[], temps: number[], extra: Sample[] = []): Promise<string> {
    const created = await call<{ id: string }>('/api/runs', json({ sample: 'B-1', method: methodId, instruments: ['utm-1', 'th-1'] }));
    expect(created.status).toBe(201);
    const id = created.body.id;
    expect((await call(`/api/runs/${id}/start`, json({}))).status).toBe(200);
    const ts = Date.now();
    const samples: Sample[] = [
      ...forces.map((value, i) => ({ seq: 0, instrument: 'utm-1', channel: 'force', ts: ts + i, value, unit: 'kN', quality: 'good' as const })),
      ...temps.map((value, i) => ({ seq: 0, instrument: 'th-1', channel: 'temp', ts: ts + i, value, unit: 'degC', quality: 'good' as const })),
      ...extra,
    ].map((s) => ({ ...s, seq: seq++ }));
    sent.push(...samples);
    expect(await send(t, gw, gw.sign(samples))).toBe('acked');
    expect((await call(`/api/runs/${id}/stop`, json({}))).status).toBe(200);
    return id;
  }

  test('each result with its budget, U (k = 2), conformity by simple acceptance, scope, and the digest of its records', async () => {
    await method('tensile', IN_SCOPE, { kind: 'simple-acceptance' });
    const forces = [10.2, 35.7, 42.031, 41.9, 0.4];
    const temps = [22.9, 23.1, 23.0, 23.2];
    const before = seq;
    const id = await run('tensile', forces, temps, [
      { seq: 0, instrument: 'th-1', channel: 'temp', ts: Date.now(), value: 99, unit: 'degC', quality: 'bad' },
    ]);
    const res = await call<RunResults>(`/api/runs/${id}/results`, {}, 'client');
    expect(res.status).toBe(200);
    const r = res.body;
    expect(r).toMatchObject({
      run: id,
      method: { id: 'tensile', version: 1, standard: IN_SCOPE },
      verdict: 'pass',
      accredited: true,
      accreditation: { body: 'CNAS', number: 'L1234' },
    });

    // the digest: the Merkle root of the run's records' leaf hashes, recomputed here from what was sent
    const mine = sent.filter((s) => s.seq >= before);
    expect(r.records).toEqual({
      count: mine.length,
      digest: toHex(rootOf(encodeRecords('gw-a', gw.key.keyId, mine).leaves)),
      digestAlgorithm: expect.any(String),
    });

    const byName = new Map(r.results.map((x) => [x.name, x]));
    const fm = byName.get('Fm');
    // u: calibration 0.1/2, resolution 0.01/(2 sqrt 3), repeatability 0.05
    const uFm = Math.sqrt(0.05 ** 2 + (0.01 / (2 * Math.sqrt(3))) ** 2 + 0.05 ** 2);
    expect(fm).toMatchObject({ value: 42.031, unit: 'kN', statistic: 'max', instruments: ['utm-1'], sampleCount: 5, accredited: true });
    expect(fm?.uncertainty.expanded).toBeCloseTo(2 * uFm, 12);
    expect(fm?.uncertainty.budget.map((b) => b.source)).toEqual(['calibration', 'resolution', 'repeatability']);
    expect(fm?.uncertainty.budget[0]?.description).toMatch(/certificate CAL-utm-1 \(Reference Lab\), U = 0.1 kN \(k = 2\)/);
    expect(fm).toMatchObject({ reported: '42.03', reportedUncertainty: '0.15' });
    expect(fm?.conformity).toMatchObject({ verdict: 'pass', rule: 'simple-acceptance', limits: { min: 40 }, acceptance: { min: 40 } });

    const rm = byName.get('Rm');
    const k = 1000 / S0;
    const rmValue = 42.031 * k;
    expect(rm?.value).toBeCloseTo(rmValue, 9);
    expect(rm?.unit).toBe('MPa');
    expect(rm?.uncertainty.expanded).toBeCloseTo(2 * Math.sqrt((uFm * k) ** 2 + (0.002 * rmValue) ** 2), 9);
    expect(rm?.conformity?.verdict).toBe('pass');

    // a mean: the scatter of the mean as its repeatability, the calibration relative to the reading; the bad sample left out
    const temp = byName.get('T');
    const mean = 23.05;
    const s = Math.sqrt(temps.reduce((a, v) => a + (v - mean) ** 2, 0) / 3);
    expect(temp?.value).toBeCloseTo(mean, 12);
    expect(temp?.sampleCount).toBe(4);
    expect(temp?.notes).toEqual([expect.stringMatching(/1 sample\(s\) of bad quality/)]);
    expect(temp?.uncertainty.expanded).toBeCloseTo(2 * Math.sqrt(((0.005 * mean) / 2) ** 2 + (0.1 / (2 * Math.sqrt(3))) ** 2 + (s / 2) ** 2), 12);
    expect(temp?.conformity).toBeNull();

    // kept as computed: the same on a second read, written once, and in the audit trail
    expect((await call(`/api/runs/${id}/results`)).body).toEqual(r);
    expect(await rejectionOf(sql`UPDATE run_results SET results = ${'{}'}`.execute(t.server.db))).toMatch(/written once/);
    expect(await rejectionOf(sql`DELETE FROM run_results`.execute(t.server.db))).toMatch(/never deleted/);
    expect(await t.server.audit.list({ recordType: 'run-results', recordId: id, limit: 10 })).toEqual([
      expect.objectContaining({ actor: 'system', action: 'create', newValue: expect.objectContaining({ verdict: 'pass' }) }),
    ]);
  });

  test('a value inside the limits but within the guard band fails under guarded acceptance, and passes under simple acceptance', async () => {
    await method('tensile-g', IN_SCOPE, { kind: 'guarded-acceptance', guardBandFactor: 1 }, 41.95);
    const guarded = (await call<RunResults>(`/api/runs/${await run('tensile-g', [42.0], [23])}/results`)).body;
    const fm = guarded.results.find((x) => x.name === 'Fm');
    expect(fm?.conformity).toMatchObject({ verdict: 'fail', rule: 'guarded-acceptance' });
    expect(fm?.conformity?.acceptance.min).toBeCloseTo(41.95 + (fm?.uncertainty.expanded ?? NaN), 12);
    expect(guarded.verdict).toBe('fail');
    await method('tensile-s', IN_SCOPE, { kind: 'simple-acceptance' }, 41.95);
    expect((await call<RunResults>(`/api/runs/${await run('tensile-s', [42.0], [23])}/results`)).body.verdict).toBe('pass');
  });

  test('a method outside the scope: every result flagged, with the reason', async () => {
    await method('tensile-x', 'ASTM E8/E8M-22', { kind: 'simple-acceptance' });
    const r = (await call<RunResults>(`/api/runs/${await run('tensile-x', [42.0], [23])}/results`)).body;
    expect(r.accredited).toBe(false);
    expect(r.accreditation).toBeUndefined();
    for (const x of r.results)
      expect(x).toMatchObject({
        accredited: false,
        scopeNote: expect.stringMatching(/ASTM E8\/E8M-22 is not in the scope of any active accreditation/),
      });
  });

  test('a result outside the accredited range is flagged, the others keep the mark, and the run is not accredited', async () => {
    const r = (await call<RunResults>(`/api/runs/${await run('tensile', [120.5], [23])}/results`)).body;
    expect(r.results.find((x) => x.name === 'Fm')).toMatchObject({
      accredited: false,
      scopeNote: expect.stringMatching(/force = 120.5 kN lies outside the accredited range 0.100 kN of CNAS L1234/),
    });
    expect(r.results.find((x) => x.name === 'T')).toMatchObject({ accredited: true, accreditation: { body: 'CNAS', number: 'L1234' } });
    expect(r).toMatchObject({ accredited: false, verdict: 'fail' });
    expect(r.accreditation).toBeUndefined();
  });

  test("results kept before the one rounding are given with its strings: the value to U's place, U up to two digits", async () => {
    const earlier = (await call<RunResults>(`/api/runs/${await run('tensile', [42.031, 41.9], [23.0])}/results`)).body;
    // a run whose results were kept by an earlier version: the value with more digits than U's, no reported U
    const created = await call<{ id: string }>('/api/runs', json({ sample: 'B-1', method: 'tensile', instruments: ['utm-1', 'th-1'] }));
    const id = created.body.id;
    expect((await call(`/api/runs/${id}/start`, json({}))).status).toBe(200);
    const legacy = {
      ...earlier,
      run: id,
      results: earlier.results.map(({ reportedUncertainty: _, ...r }) => ({ ...r, reported: r.value.toFixed(6) })),
    };
    await t.server.db
      .insertInto('run_results')
      .values({ run: id, computed_at: Date.now(), results: JSON.stringify(legacy) })
      .execute();
    expect((await call(`/api/runs/${id}/stop`, json({}))).status).toBe(200);
    const given = (await call<RunResults>(`/api/runs/${id}/results`)).body;
    expect(given.results.map((r) => r.name)).toEqual(earlier.results.map((r) => r.name));
    for (const r of given.results) {
      const once = roundResult(r.value, r.uncertainty.expanded);
      expect({ value: r.reported, uncertainty: r.reportedUncertainty }).toEqual(once);
      expect(r.reported).not.toBe(r.value.toFixed(6));
    }
  });

  test('a result without samples is listed as missing; a running run has no results yet; another client sees none', async () => {
    const id = await run('tensile', [42.0], []);
    const r = (await call<RunResults>(`/api/runs/${id}/results`)).body;
    expect(r.missing).toEqual(['T']);
    expect(r.results.map((x) => x.name)).toEqual(['Fm', 'Rm']);

    const created = await call<{ id: string }>('/api/runs', json({ sample: 'B-1', method: 'tensile', instruments: ['utm-1'] }));
    expect((await call(`/api/runs/${created.body.id}/results`)).body.error).toMatch(/is planned: results are computed when a run completes/);
    expect((await call(`/api/runs/${id}/results`, {}, 'client-b')).status).toBe(404);
  });
});
