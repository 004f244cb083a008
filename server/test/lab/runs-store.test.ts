// Runs and their results through Kysely, the same code on SQLite and on a real PostgreSQL 15: planned, started,
// stopped and aborted as the state machine says, each change with its audit entry; the run's ranges bound to the
// stored batches; the list, its page and its alarms; the records, the results (kept once) and the export's selection.
// On PostgreSQL, two nodes (two pools) at once: runs numbered without a clash, one command of two applied and the
// other refused as the state machine says, a run's results kept once with one audit entry.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { encodeRecords, type RunAlarmEvent, type Sample } from '@labtrace/protocols';
import { CompiledQuery, sql, type Kysely } from 'kysely';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import { runSelections } from '../../src/export/run-selection.js';
import { RunInspection } from '../../src/inspection/run-inspection.js';
import { createLogger } from '../../src/log.js';
import type { Method, LabSample } from '../../src/lab/lab-records.js';
import { RunResultsService } from '../../src/lab/results.js';
import { Runs } from '../../src/lab/runs.js';
import type { MethodDefinition } from '../../src/lab/schemas.js';
import type { LabDatabase, Tables } from '../../src/store/database.js';
import { PgMeasurementStore } from '../../src/store/pg-measurement-store.js';
import { auditChain } from '../helpers/audit-chain.js';
import { StoreFixture, type Engine } from '../helpers/test-store.js';

const fixture = new StoreFixture('runs');
/** the sync parts of AuditTrail (reads, verify) need a LabDatabase; recordIn uses only the transaction it is given */
let unused: LabDatabase;

beforeAll(async () => {
  await fixture.start();
  unused = fixture.labDatabase();
}, 120_000);
afterAll(() => fixture.close());

const DEFINITION: MethodDefinition = {
  measurands: [{ name: 'force', unit: 'kN', channel: 'force' }],
  instrumentTypes: ['universal-testing-machine'],
  limits: [],
  decisionRule: { kind: 'simple-acceptance' },
  results: [{ name: 'Fm', title: 'maximum force', measurand: 'force', statistic: 'max', resolution: 0.01, limits: { max: 50 } }],
  rules: [{ id: 'force-limits', kind: 'limits', severity: 'alarm', channel: 'force', low: 0, high: 50 }],
};

/** the lab records Runs asks for (lab/lab-records.ts, another module: its rows are written here as it writes them) */
const SAMPLES: Record<string, LabSample> = {
  's-1': { id: 's-1', organization: 'acme', description: 'Steel BAR one', condition: 'ok', receivedAt: 0, createdBy: 'ada', createdAt: 0 },
  's-2': { id: 's-2', organization: 'other', description: 'copper wire', condition: 'ok', receivedAt: 0, createdBy: 'ada', createdAt: 0 },
};
const METHOD: Method = {
  id: 'tensile',
  version: 1,
  standard: 'ISO 6892-1',
  title: 'Tensile',
  definition: DEFINITION,
  createdBy: 'ada',
  createdAt: 0,
  accredited: false,
};
const methodOf = (id: string, version?: number): Method | undefined =>
  id === METHOD.id && (version === undefined || version === 1) ? METHOD : undefined;
const records = {
  sample: (id: string) => Promise.resolve(SAMPLES[id]),
  method: (id: string, version?: number) => Promise.resolve(methodOf(id, version)),
  methodIn: (_db: unknown, id: string, version?: number) => Promise.resolve(methodOf(id, version)),
};
const INSTRUMENTS: Record<string, { gateway: string; identity: { kind: string; model: string } }> = {
  'utm-1': { gateway: 'gw-a', identity: { kind: 'universal-testing-machine', model: 'Z050' } },
  'utm-2': { gateway: 'gw-b', identity: { kind: 'universal-testing-machine', model: 'Z100' } },
};
const parts = (batches?: PgMeasurementStore) => ({
  instruments: { instrument: (id: string) => Promise.resolve(INSTRUMENTS[id]) },
  technicians: {
    get: (username: string) => Promise.resolve(username === 'tess' ? { role: 'technician', disabled: false } : undefined),
  },
  batches,
});
const noBlockers = { blockersIn: () => Promise.resolve([] as string[]) };
const inScope = { methodScopeIn: () => Promise.resolve(() => true) };

/** `nodes` Kyselys on one fresh, migrated store with its organizations and samples */
async function stores(engine: Engine, nodes = 1): Promise<Kysely<Tables>[]> {
  const dbs = await fixture.stores(engine, nodes);
  const db = dbs[0] as Kysely<Tables>;
  for (const org of ['acme', 'other']) await sql`INSERT INTO organizations (id, name, created_at) VALUES (${org}, ${`${org} Ltd`}, 0)`.execute(db);
  for (const s of Object.values(SAMPLES))
    await sql`INSERT INTO lab_samples (id, organization, description, condition, received_at, created_by, created_at)
      VALUES (${s.id}, ${s.organization}, ${s.description}, 'ok', 0, 'ada', 0)`.execute(db);
  await sql`INSERT INTO methods (id, version, standard, title, definition, created_by, created_at)
    VALUES ('tensile', 1, 'ISO 6892-1', 'Tensile', ${JSON.stringify(DEFINITION)}, 'ada', 0)`.execute(db);
  return dbs;
}

/** a stored batch of the gateway (as the measurement store keeps it: header, records' bytes) */
async function storeBatch(db: Kysely<Tables>, gateway: string, batch: number, samples: Sample[]): Promise<void> {
  const { bytes } = encodeRecords(gateway, new Uint8Array([1, 2, 3, 4]), samples);
  const ts = samples.map((s) => s.ts);
  await db
    .insertInto('batch_headers')
    .values({
      gateway,
      batch,
      first_seq: samples[0]?.seq ?? 0,
      count: samples.length,
      header: JSON.stringify({ batch, tsMin: Math.min(...ts), tsMax: Math.max(...ts) }),
      signature: 'sig',
      received_at: 0,
      hash: `h-${gateway}-${batch}`,
      records: bytes,
      log_index: batch,
    })
    .execute();
}

const force = (seq: number, value: number, instrument = 'utm-1'): Sample => ({
  seq,
  instrument,
  channel: 'force',
  ts: 1_000 + seq,
  value,
  unit: 'kN',
  quality: 'good',
});

const TESS = { username: 'tess', role: 'technician' };
const LAB = { role: 'admin', organization: null } as const;
const CLIENT = { role: 'client', organization: 'acme' } as const;
const noCalibration = {
  status: () =>
    Promise.resolve({ instrument: '', status: 'never-calibrated' as const, dueAt: null, calibration: null, lastCheck: null, lastGoodAt: null }),
  calibrations: () => Promise.resolve([]),
};
const notAccredited = { covers: () => Promise.resolve({ accredited: false as const, reason: 'no accreditation' }) };

function inspectionOn(db: Kysely<Tables>, runs: Runs): RunInspection {
  return new RunInspection(
    db,
    new AuditTrail(unused),
    runs,
    records,
    { status: () => Promise.resolve(undefined) },
    createLogger('runs-store', 'silent'),
    {
      tickMs: 3_600_000,
    },
  );
}

function runsOn(db: Kysely<Tables>, engine: 'sqlite' | 'postgres', clock: () => number = Date.now): Runs {
  return new Runs(
    db,
    new AuditTrail(unused, clock),
    records,
    noBlockers,
    inScope,
    parts(engine === 'postgres' ? new PgMeasurementStore(db as unknown as Kysely<unknown>) : undefined),
    clock,
  );
}

describe.each(['sqlite', 'postgres'] as const)('on %s', (engine) => {
  test('a run planned, started, stopped: its ranges bound to the stored batches, its records, results and selection', async () => {
    let clock = 5_000;
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const runs = runsOn(db, engine, () => clock);
    const results = new RunResultsService(db, new AuditTrail(unused, () => clock), runs, records, noCalibration, notAccredited, () => clock);
    await storeBatch(db, 'gw-a', 0, [force(0, 1), force(1, 99)]);
    // refused input names the field
    await expect(runs.create(TESS, { sample: 'nope', method: 'tensile', instruments: ['utm-1'] })).rejects.toMatchObject({ code: 'E_BAD_REQUEST' });
    await expect(runs.create(TESS, { sample: 's-1', method: 'tensile', instruments: ['utm-9'] })).rejects.toThrow(/instruments\[0\]/);
    await expect(runs.create({ username: 'ada', role: 'admin' }, { sample: 's-1', method: 'tensile', instruments: ['utm-1'] })).rejects.toThrow(
      /technician/,
    );
    const planned = await runs.create(TESS, { sample: 's-1', method: 'tensile', instruments: ['utm-1'] });
    expect(planned).toMatchObject({ id: 'run-1', state: 'planned', organization: 'acme', method: { standard: 'ISO 6892-1' }, ranges: [] });
    await expect(runs.stop(TESS, 'run-1')).rejects.toMatchObject({ code: 'E_CONFLICT', refusal: { reason: 'run.transition-refused' } });
    await expect(runs.start(TESS, 'run-9')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    clock = 6_000;
    const started = await runs.start(TESS, 'run-1', 'mounted');
    expect(started).toMatchObject({ state: 'running', startedAt: 6_000, ranges: [{ gateway: 'gw-a', firstSeq: 2, lastSeq: null }] });
    // stored while it runs: its records (the batch before the start is not the run's)
    await storeBatch(db, 'gw-a', 1, [force(2, 30), force(3, 42.05), force(4, 7, 'utm-other')]);
    expect((await runs.recordsOf(started, 10)).samples.map((s) => s.value)).toEqual([30, 42.05]);
    expect((await runSelections(db, 'run-1')).selections).toEqual([{ gateway: 'gw-a', firstSeq: 2, lastSeq: 4, from: 1_002, to: 1_004 }]);
    clock = 7_000;
    const stopped = await runs.stop(TESS, 'run-1', 'broke');
    expect(stopped).toMatchObject({ state: 'completed', endedAt: 7_000, endReason: 'broke', ranges: [{ gateway: 'gw-a', firstSeq: 2, lastSeq: 4 }] });
    // stored after the stop: not the run's
    await storeBatch(db, 'gw-a', 2, [force(5, 77)]);
    const records1 = await runs.recordsOf(stopped, 10);
    expect(records1.samples.map((s) => s.seq)).toEqual([2, 3]);
    expect(records1.batches.map((b) => b.batch)).toEqual([1]);
    expect((await runs.recordsOf(stopped, 1)).truncated).toBe(true);
    await expect(runs.abort(TESS, 'run-1', 'late')).rejects.toMatchObject({ code: 'E_CONFLICT' });
    await expect(runs.abort(TESS, 'run-1', ' ')).rejects.toMatchObject({ code: 'E_BAD_REQUEST' });
    // results: computed from the records, kept once; a second read answers the kept ones
    const first = await results.resultsOf('run-1');
    expect(first).toMatchObject({ run: 'run-1', verdict: 'pass', records: { count: 2 }, results: [{ name: 'Fm', value: 42.05 }] });
    clock = 9_000;
    expect(await results.resultsOf('run-1')).toEqual(first);
    expect(await results.resultsOf('run-9')).toBeUndefined();
    // the review of an instrument that failed a check: the runs that measured with it since
    expect(await runs.measuredWith('utm-1', 6_500)).toEqual([
      { id: 'run-1', sample: 's-1', organization: 'acme', state: 'completed', startedAt: 6_000, endedAt: 7_000 },
    ]);
    expect(await runs.measuredWith('utm-1', 7_001)).toEqual([]);
    expect(await runs.measuredWith('utm-', 0)).toEqual([]);
    // visibility: another organization's run reads as unknown
    expect(await runs.get(CLIENT, 'run-1')).toMatchObject({ id: 'run-1' });
    expect(await runs.get({ role: 'client', organization: 'other' }, 'run-1')).toBeUndefined();
    const trail = await auditChain(db);
    expect(trail.map((r) => [r.action, r.record_type, r.record_id])).toEqual([
      ['create', 'run', 'run-1'],
      ['state-change', 'run', 'run-1'],
      ['state-change', 'run', 'run-1'],
      ['create', 'run-results', 'run-1'],
    ]);
  }, 120_000);

  test('the list, its pages (newest first, searched without regard to case) and the open alarms', async () => {
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const runs = runsOn(db, engine);
    for (const sample of ['s-1', 's-2', 's-1', 's-1', 's-2']) await runs.create(TESS, { sample, method: 'tensile', instruments: ['utm-1', 'utm-2'] });
    await runs.abort(TESS, 'run-2', 'no specimen');
    expect((await runs.list(LAB)).map((r) => r.id)).toEqual(['run-1', 'run-2', 'run-3', 'run-4', 'run-5']);
    expect((await runs.list(CLIENT)).map((r) => r.id)).toEqual(['run-1', 'run-3', 'run-4']);
    expect((await runs.list(LAB, { state: 'aborted' })).map((r) => r.id)).toEqual(['run-2']);
    const first = await runs.page(LAB, { limit: 2 });
    expect(first.items.map((r) => r.id)).toEqual(['run-5', 'run-4']);
    const second = await runs.page(LAB, { limit: 2, cursor: first.next ?? undefined });
    expect(second.items.map((r) => r.id)).toEqual(['run-3', 'run-2']);
    const third = await runs.page(LAB, { limit: 2, cursor: second.next ?? undefined });
    expect(third).toEqual({ items: [expect.objectContaining({ id: 'run-1' })], next: null });
    expect((await runs.page(LAB, { limit: 10, q: 'COPPER' })).items.map((r) => r.id)).toEqual(['run-5', 'run-2']);
    expect((await runs.page(LAB, { limit: 10, q: 'acme ltd' })).items.map((r) => r.id)).toEqual(['run-4', 'run-3', 'run-1']);
    expect((await runs.page(LAB, { limit: 10, q: '%' })).items).toEqual([]);
    expect((await runs.page(CLIENT, { limit: 10, state: 'planned' })).items.map((r) => r.id)).toEqual(['run-4', 'run-3', 'run-1']);
    // alarms: raised on run-3 (open), raised and cleared on run-4
    const alarm = (run: string, id: string, event: string) =>
      db
        .insertInto('run_alarms')
        .values({
          run,
          alarm: id,
          event,
          at: 0,
          rule_id: 'r',
          severity: 'alarm',
          instrument: 'utm-1',
          channel: 'force',
          detail: '{}',
          person: null,
          reason: null,
        })
        .execute();
    await alarm('run-3', 'a#1', 'raised');
    await alarm('run-3', 'a#2', 'raised');
    await alarm('run-4', 'a#1', 'raised');
    await alarm('run-4', 'a#1', 'cleared');
    await alarm('run-5', 'a#1', 'raised');
    expect(await runs.openAlarms(LAB)).toEqual({ open: 3, runs: 2 });
    expect(await runs.openAlarms(CLIENT)).toEqual({ open: 2, runs: 1 });
    const withAlarms = await runs.page(LAB, { limit: 10, alarms: 'open' });
    expect(withAlarms.items.map((r) => [r.id, r.openAlarms])).toEqual([
      ['run-5', 1],
      ['run-3', 2],
    ]);
  }, 120_000);

  test('a page reads the runs from the index of their number, not by sorting them all', async () => {
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    for (let i = 0; i < 3; i++) await runsOn(db, engine).create(TESS, { sample: 's-1', method: 'tensile', instruments: ['utm-1'] });
    // the page's query as the module sends it, then the engine's plan of it
    const sent: CompiledQuery[] = [];
    const watched = db.withPlugin({
      transformQuery: (args) => {
        sent.push(db.getExecutor().compileQuery(args.node, args.queryId));
        return args.node;
      },
      transformResult: (args) => Promise.resolve(args.result),
    });
    for (const [viewer, index] of [
      [LAB, 'runs_by_number'],
      [CLIENT, 'runs_by_organization_number'],
    ] as const) {
      sent.length = 0;
      expect((await runsOn(watched, engine).page(viewer, { limit: 2, cursor: '3' })).items.map((r) => r.id)).toEqual(['run-2', 'run-1']);
      const query = sent.find((q) => /ORDER BY/i.test(q.sql) && /from "runs"/i.test(q.sql));
      if (query === undefined) throw new Error('no page query was sent');
      const plan =
        engine === 'sqlite'
          ? (await db.executeQuery<{ detail: string }>(CompiledQuery.raw(`EXPLAIN QUERY PLAN ${query.sql}`, [...query.parameters]))).rows.map(
              (r) => r.detail,
            )
          : await db.transaction().execute(async (trx) => {
              // a few rows: told not to scan the table, the planner shows whether the index can serve the order
              await sql`SET LOCAL enable_seqscan = off`.execute(trx);
              const { rows } = await trx.executeQuery<{ 'QUERY PLAN': string }>(CompiledQuery.raw(`EXPLAIN ${query.sql}`, [...query.parameters]));
              return rows.map((r) => r['QUERY PLAN']);
            });
      expect(plan.join('\n')).toContain(index);
      expect(plan.join('\n')).not.toMatch(/TEMP B-TREE FOR ORDER BY|Sort Key/);
    }
  }, 120_000);

  test("a running run's alarms: raised by its engine, acknowledged and cleared by a person, stored in order with the audit", async () => {
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const runs = runsOn(db, engine);
    const inspection = inspectionOn(db, runs);
    const heard: RunAlarmEvent[] = [];
    inspection.on('alarm', (e) => heard.push(e));
    await inspection.start();
    const run = await runs.create(TESS, { sample: 's-1', method: 'tensile', instruments: ['utm-1'] });
    await runs.start(TESS, run.id);
    expect(inspection.inspected()).toEqual([run.id]);
    runs.onSamples([{ ...force(0, 60), gateway: 'gw-a' }]);
    runs.onSamples([{ ...force(1, 70), gateway: 'gw-a' }]);
    const raised = await inspection.alarmsOf(run.id);
    expect(raised.alarms).toEqual([expect.objectContaining({ ruleId: 'force-limits', active: true, acknowledged: null })]);
    const id = raised.alarms[0]?.id ?? '';
    await expect(inspection.clear(TESS, run.id, id, 'too early')).rejects.toMatchObject({ code: 'E_CONFLICT' });
    await expect(inspection.acknowledge(TESS, run.id, id, ' ')).rejects.toMatchObject({ code: 'E_BAD_REQUEST' });
    expect(await inspection.acknowledge(TESS, run.id, id, 'seen')).toMatchObject({ acknowledged: { by: 'tess', reason: 'seen' } });
    runs.onSamples([{ ...force(2, 10), gateway: 'gw-a' }]);
    expect(await inspection.clear(TESS, run.id, id, 'back in limits')).toMatchObject({ cleared: { by: 'tess', auto: false } });
    const after = await inspection.alarmsOf(run.id);
    expect(after.events.map((e) => e.event)).toEqual(['raised', 'acknowledged', 'returned', 'cleared']);
    expect(after.events.map((e) => e.seq)).toEqual([...after.events.map((e) => e.seq)].sort((x, y) => x - y));
    expect(heard).toEqual(after.events);
    // an alarm the engine no longer holds (its run ended): acted on as stored
    runs.onSamples([{ ...force(3, 99), gateway: 'gw-a' }]);
    await runs.stop(TESS, run.id);
    expect(inspection.inspected()).toEqual([]);
    const second = (await inspection.alarmsOf(run.id)).alarms.find((a) => a.cleared === null);
    expect(second).toBeDefined();
    await inspection.acknowledge(TESS, run.id, second?.id ?? '', 'after the stop');
    await expect(inspection.acknowledge(TESS, run.id, second?.id ?? '', 'twice')).rejects.toMatchObject({ code: 'E_CONFLICT' });
    await expect(inspection.acknowledge(TESS, run.id, 'nope', 'x')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await inspection.stop();
    const alarmTrail = (await auditChain(db)).filter((r) => r.record_type === 'run-alarm');
    expect(alarmTrail.map((r) => [r.record_id, r.reason])).toEqual([
      [`${run.id}/${id}`, 'seen'],
      [`${run.id}/${id}`, 'back in limits'],
      [`${run.id}/${second?.id ?? ''}`, 'after the stop'],
    ]);
  }, 120_000);
});

describe('two nodes on one PostgreSQL', () => {
  test('runs planned at once on both are numbered without a clash', async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const onA = runsOn(a, 'postgres');
    const onB = runsOn(b, 'postgres');
    const created = await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 ? onA : onB).create(TESS, { sample: 's-1', method: 'tensile', instruments: ['utm-1'] })),
    );
    expect(created.map((r) => r.id).sort()).toEqual(Array.from({ length: 8 }, (_, i) => `run-${i + 1}`).sort());
    expect((await auditChain(a)).filter((r) => r.action === 'create')).toHaveLength(8);
  }, 120_000);

  test('the same command, or two commands, for one run at once: one applied, the other refused by the state machine', async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const onA = runsOn(a, 'postgres');
    const onB = runsOn(b, 'postgres');
    for (let i = 0; i < 6; i++) await onA.create(TESS, { sample: 's-1', method: 'tensile', instruments: ['utm-1', 'utm-2'] });
    const ids = Array.from({ length: 6 }, (_, i) => `run-${i + 1}`);
    const codes = (settled: PromiseSettledResult<unknown>[]) =>
      settled.map((r) => (r.status === 'fulfilled' ? 'ok' : ((r.reason as { code?: string; message: string }).code ?? (r.reason as Error).message)));
    const starts = await Promise.allSettled(ids.flatMap((id) => [onA.start(TESS, id), onB.start(TESS, id)]));
    expect(codes(starts).sort()).toEqual([...Array(6).fill('E_CONFLICT'), ...Array(6).fill('ok')].sort());
    // stop and abort at once: one ends the run, the other finds it ended
    const ends = await Promise.allSettled(ids.flatMap((id) => [onA.stop(TESS, id), onB.abort(TESS, id, 'at once')]));
    expect(codes(ends).sort()).toEqual([...Array(6).fill('E_CONFLICT'), ...Array(6).fill('ok')].sort());
    const ranges = await a.selectFrom('run_ranges').selectAll().execute();
    expect(ranges).toHaveLength(12);
    expect(ranges.every((r) => r.last_seq === -1)).toBe(true);
    const trail = await auditChain(a);
    expect(trail.filter((r) => r.action === 'state-change')).toHaveLength(12);
  }, 120_000);

  test('a run started on one node is followed on the other once it reloads the running runs, and let go once stopped', async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const onA = runsOn(a, 'postgres');
    const onB = runsOn(b, 'postgres');
    const heardOnB: { run: string; seqs: number[] }[] = [];
    onB.on('samples', (run, samples) => heardOnB.push({ run, seqs: samples.map((x) => x.seq) }));
    const live = (seq: number) => [{ ...force(seq, 10), gateway: 'gw-a' }];
    const run = await onA.create(TESS, { sample: 's-1', method: 'tensile', instruments: ['utm-1'] });
    await onA.start(TESS, run.id);
    // node B stores a sample of the run's instrument: before a reload it does not know the run is running
    onB.onSamples(live(0));
    expect(heardOnB).toEqual([]);
    await onB.reloadRunning();
    onB.onSamples(live(1));
    expect(heardOnB).toEqual([{ run: run.id, seqs: [1] }]);
    await onA.stop(TESS, run.id);
    await onB.reloadRunning();
    onB.onSamples(live(2));
    expect(heardOnB).toEqual([{ run: run.id, seqs: [1] }]);
  }, 120_000);

  test("a run's results read on both nodes at once are kept once, with one audit entry", async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const onA = runsOn(a, 'postgres');
    const onB = runsOn(b, 'postgres');
    await storeBatch(a, 'gw-a', 0, [force(0, 12)]);
    const run = await onA.create(TESS, { sample: 's-1', method: 'tensile', instruments: ['utm-1'] });
    await onA.start(TESS, run.id);
    await storeBatch(a, 'gw-a', 1, [force(1, 41), force(2, 43)]);
    await onB.stop(TESS, run.id);
    const resultsOn = (db: Kysely<Tables>, runs: Runs) =>
      new RunResultsService(db, new AuditTrail(unused), runs, records, noCalibration, notAccredited);
    const [x, y, z] = await Promise.all([
      resultsOn(a, onA).resultsOf(run.id),
      resultsOn(b, onB).resultsOf(run.id),
      resultsOn(b, onB).resultsOf(run.id),
    ]);
    expect(x).toMatchObject({ results: [{ name: 'Fm', value: 43 }] });
    expect(y).toEqual(x);
    expect(z).toEqual(x);
    expect(await a.selectFrom('run_results').selectAll().execute()).toHaveLength(1);
    expect((await auditChain(a)).filter((r) => r.record_type === 'run-results')).toHaveLength(1);
  }, 120_000);

  test('a stored alarm acknowledged on both nodes at once: one acknowledgement, the other refused', async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const onA = runsOn(a, 'postgres');
    const run = await onA.create(TESS, { sample: 's-1', method: 'tensile', instruments: ['utm-1'] });
    const alarms = Array.from({ length: 8 }, (_, i) => `x#${i + 1}`);
    for (const alarm of alarms)
      await a
        .insertInto('run_alarms')
        .values({
          run: run.id,
          alarm,
          event: 'raised',
          at: 0,
          rule_id: 'force-limits',
          severity: 'alarm',
          instrument: 'utm-1',
          channel: 'force',
          detail: JSON.stringify({
            id: alarm,
            ruleId: 'force-limits',
            kind: 'limits',
            severity: 'alarm',
            instrument: 'utm-1',
            channel: 'force',
            message: 'high',
            raisedAt: 0,
            value: 60,
            active: true,
            occurrences: 1,
            returnedAt: null,
            acknowledged: null,
            cleared: null,
          }),
          person: null,
          reason: null,
        })
        .execute();
    const onB = runsOn(b, 'postgres');
    // both pools connected before the race; an inspection per act (each node's acts of one inspection take turns)
    expect(await onB.get(LAB, run.id)).toBeDefined();
    const settled = await Promise.allSettled(
      alarms.flatMap((alarm) => [inspectionOn(a, onA), inspectionOn(b, onB)].map((i) => i.acknowledge(TESS, run.id, alarm, 'seen'))),
    );
    const codes = settled.map((r) =>
      r.status === 'fulfilled' ? 'ok' : ((r.reason as { code?: string; message: string }).code ?? (r.reason as Error).message),
    );
    expect(codes.sort()).toEqual([...Array(8).fill('E_CONFLICT'), ...Array(8).fill('ok')].sort());
    expect(await a.selectFrom('run_alarms').selectAll().where('event', '=', 'acknowledged').execute()).toHaveLength(8);
    expect((await auditChain(a)).filter((r) => r.record_type === 'run-alarm')).toHaveLength(8);
  }, 120_000);
});
