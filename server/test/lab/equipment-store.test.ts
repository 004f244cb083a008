// The instruments' service status and connection health through Kysely, the same code on SQLite and on a real
// PostgreSQL 15: a status set with its audit entry (an unknown instrument refused, as its owner the registry says),
// read, its history and the blockers of a run start; health reports thinned to one point a minute and each change of
// connection, read back in buckets, pruned after their retention. On PostgreSQL, two nodes (two pools) changing one
// instrument's status at once record each change against the status it replaced, and two nodes hearing the same
// health reports store each point once.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { InstrumentHealthMessage } from '@labtrace/protocols';
import { sql, type Kysely } from 'kysely';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import { EquipmentHealth } from '../../src/lab/equipment-health.js';
import { EquipmentStatus, type ServiceStatus } from '../../src/lab/equipment.js';
import type { LabDatabase, Tables } from '../../src/store/database.js';
import { Registry } from '../../src/store/registry.js';
import { auditChain } from '../helpers/audit-chain.js';
import { StoreFixture, type Engine } from '../helpers/test-store.js';

const fixture = new StoreFixture('equipment');
/** the sync parts of AuditTrail need a LabDatabase; recordIn uses only the transaction it is given */
let unused: LabDatabase;

beforeAll(async () => {
  await fixture.start();
  unused = fixture.labDatabase();
}, 120_000);
afterAll(() => fixture.close());

/** `nodes` Kyselys on one fresh, migrated store with two instruments announced (SQLite: one file; PostgreSQL: a pool each) */
async function stores(engine: Engine, nodes = 1): Promise<Kysely<Tables>[]> {
  const dbs = await fixture.stores(engine, nodes);
  const db = dbs[0] as Kysely<Tables>;
  await new Registry({ db }).recordBirth('lab', {
    v: 1,
    gateway: 'gw-1',
    session: 1,
    version: 't',
    instruments: ['ut-1', 'ut-2'].map((id, i) => ({
      id,
      identity: { maker: 'm', model: 'x', serialNumber: String(i) },
      channels: [{ name: 'c', unit: 'kN' }],
    })),
  });
  return dbs;
}

const ADA = { username: 'ada', role: 'technician' };
const statusOn = (db: Kysely<Tables>, clock: () => number = Date.now) =>
  new EquipmentStatus(db, new AuditTrail(unused, clock), clock, new Registry({ db }));

const report = (instrument: string, connected: boolean, polls: number): InstrumentHealthMessage => ({
  instrument,
  connected,
  lastGood: null,
  polls,
  errors: connected ? {} : { timeout: polls },
  latencyMs: { p50: 3, p99: connected ? 9 : null },
});

/** every change's audit entry against the history: each one's old status is the status in force before it */
async function checkChanges(db: Kysely<Tables>, status: EquipmentStatus, instrument: string): Promise<number> {
  const history = await status.history(instrument);
  const changes = (await auditChain(db)).filter((r) => r.record_type === 'instrument-status' && r.record_id === instrument);
  expect(changes).toHaveLength(history.length);
  changes.forEach((c, i) => {
    expect(JSON.parse(c.new_value ?? 'null')).toEqual({ status: history[i]?.status });
    expect(JSON.parse(c.old_value ?? 'null')).toEqual({ status: i === 0 ? 'in-service' : history[i - 1]?.status });
    expect(c.reason).toBe(history[i]?.reason);
  });
  return changes.length;
}

describe.each(['sqlite', 'postgres'] as const)('on %s', (engine) => {
  test('a service status is set with its audit entry, read with its history, and stands against a run start with the other checks', async () => {
    let clock = 1_000_000;
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const status = statusOn(db, () => clock);
    const heard: string[] = [];
    status.onChange((id) => heard.push(id));
    expect(await status.status('ut-1')).toBeUndefined();
    expect(await status.blockers('ut-1')).toEqual([]);
    const out = await status.setStatus(ADA, 'ut-1', 'out-of-service', 'dropped during transport');
    expect(out).toEqual({ instrument: 'ut-1', status: 'out-of-service', reason: 'dropped during transport', actor: 'ada', at: clock });
    expect(await status.status('ut-1')).toEqual(out);
    expect(await status.blockers('ut-1')).toEqual([
      `instrument "ut-1" is out of service since ${new Date(clock).toISOString()} (dropped during transport)`,
    ]);
    clock += 1000;
    const back = await status.setStatus(ADA, 'ut-1', 'in-service', 'inspected, no damage');
    expect(await status.history('ut-1')).toEqual([out, back]);
    // the status in force at a time: before the first change none, between the two the first
    expect(await status.status('ut-1', { at: out.at - 1 })).toBeUndefined();
    expect(await status.status('ut-1', { at: back.at - 1 })).toEqual(out);
    expect(await status.status('ut-1', { at: back.at })).toEqual(back);
    expect(await status.history('ut-2')).toEqual([]);
    // the checks added (the calibration's), synchronous or not, after the service status
    status.addCheck((id) => (id === 'ut-2' ? 'never calibrated' : undefined));
    status.addCheck((id) => Promise.resolve(id === 'ut-2' ? 'failed its check' : undefined));
    await status.setStatus(ADA, 'ut-2', 'out-of-service', 'noisy');
    expect(await status.blockers('ut-2')).toEqual([
      `instrument "ut-2" is out of service since ${new Date(clock).toISOString()} (noisy)`,
      'never calibrated',
      'failed its check',
    ]);
    expect(await status.blockers('ut-1')).toEqual([]);
    // refused: an instrument no gateway announced; a change without a reason (nothing kept)
    await expect(status.setStatus(ADA, 'ut-9', 'out-of-service', 'x')).rejects.toMatchObject({
      code: 'E_NOT_FOUND',
      refusal: { reason: 'record.not-found' },
    });
    await expect(status.setStatus(ADA, 'ut-1', 'out-of-service', ' ')).rejects.toMatchObject({ code: 'E_BAD_REQUEST' });
    expect(await status.history('ut-1')).toHaveLength(2);
    expect(heard).toEqual(['ut-1', 'ut-1', 'ut-2']);
    expect(await checkChanges(db, status, 'ut-1')).toBe(2);
  }, 120_000);

  test('health: one point a minute and every change of connection, read in buckets, pruned after its retention', async () => {
    let clock = 10_000_000;
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const health = new EquipmentHealth(db, { intervalMs: 60_000, retentionMs: 3_600_000 }, () => clock);
    const t0 = clock;
    await health.record([report('ut-1', true, 1), report('ut-2', true, 1)]);
    clock += 5_000;
    await health.record([report('ut-1', true, 2), report('ut-2', false, 2)]); // ut-2's change kept
    clock += 5_000;
    await health.record([report('ut-1', false, 3), report('ut-2', false, 3)]); // ut-1's change kept
    clock = t0 + 59_999;
    await health.record([report('ut-1', false, 4), report('ut-2', false, 4)]); // not due
    clock = t0 + 70_000;
    await health.record([report('ut-1', false, 5), report('ut-2', false, 5)]); // a minute after ut-1's last
    expect(await health.history('ut-1', t0, clock, 100)).toEqual([
      { at: t0, connected: true, polls: 1, errors: {}, latencyP50: 3, latencyP99: 9 },
      { at: t0 + 10_000, connected: false, polls: 3, errors: { timeout: 3 }, latencyP50: 3, latencyP99: null },
      { at: t0 + 70_000, connected: false, polls: 5, errors: { timeout: 5 }, latencyP50: 3, latencyP99: null },
    ]);
    expect((await health.history('ut-2', t0, clock, 100)).map((p) => [p.at - t0, p.connected, p.polls])).toEqual([
      [0, true, 1],
      [5_000, false, 2],
      [70_000, false, 5],
    ]);
    // one bucket: its last report, disconnected since one in it was
    expect(await health.history('ut-1', t0, clock, 1)).toEqual([
      { at: t0 + 70_000, connected: false, polls: 5, errors: { timeout: 5 }, latencyP50: 3, latencyP99: null },
    ]);
    expect(await health.history('ut-1', t0 + 1, t0 + 9_999, 10)).toEqual([]);
    // a new node's first reports are weighed against the store's last point, not stored again
    clock = t0 + 80_000;
    await new EquipmentHealth(db, { intervalMs: 60_000, retentionMs: 3_600_000 }, () => clock).record([report('ut-1', false, 6)]);
    expect(await health.history('ut-1', t0, clock, 100)).toHaveLength(3);
    // past the retention, the old points go (at the next pruning, an hour after the last)
    clock = t0 + 3 * 3_600_000;
    await health.record([report('ut-1', true, 7)]);
    expect((await health.history('ut-1', 0, clock, 100)).map((p) => p.polls)).toEqual([7]);
    expect((await health.history('ut-2', 0, clock, 100)).map((p) => p.polls)).toEqual([]);
  }, 120_000);
});

describe('two nodes on one PostgreSQL', () => {
  test('one instrument’s status changed at once from both: each change recorded against the status it replaced', async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const onA = statusOn(a);
    const onB = statusOn(b);
    const changes = Array.from({ length: 24 }, (_, i) => {
      const next: ServiceStatus = i % 3 === 0 ? 'in-service' : 'out-of-service';
      return (i % 2 ? onA : onB).setStatus(ADA, 'ut-1', next, `change ${i}`);
    });
    await Promise.all(changes);
    expect(await checkChanges(a, onB, 'ut-1')).toBe(24);
  }, 120_000);

  test('the same health reports heard by both at once: each point stored once', async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const t0 = 50_000_000;
    let clock = t0;
    const onA = new EquipmentHealth(a, {}, () => clock);
    const onB = new EquipmentHealth(b, {}, () => clock);
    const instruments = ['ut-1', 'ut-2'];
    for (let round = 0; round < 8; round++) {
      // a minute after an even round, the connection changed a second after an odd one: every round's point is due
      const reports = instruments.map((id) => report(id, Math.floor(round / 2) % 2 === 0, round));
      await Promise.all([onA.record(reports), onB.record(reports), onA.record(reports), onB.record(reports)]);
      clock += round % 2 === 0 ? 60_000 : 1_000;
    }
    for (const id of instruments) {
      expect((await onA.history(id, t0, clock, 1000)).map((p) => p.polls)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      // as stored (the history's buckets would fold two points of one time into one)
      const { rows } = await sql<{ polls: number }>`SELECT polls FROM instrument_health WHERE instrument = ${id} ORDER BY id`.execute(b);
      expect(rows.map((r) => r.polls)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    }
  }, 120_000);
});
