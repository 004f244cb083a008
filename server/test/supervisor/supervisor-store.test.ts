// The supervisor's store, the same cases on SQLite and on a real PostgreSQL 15: the follow cursor advanced with its
// entries in one transaction (all or nothing), the bytes of the entries kept as they are, the checkpoints seen, the
// records (replaced by id, listed in byte order of their ids whatever the database's collation), the conflicts, the
// findings (each once) with the lab's responses and the resolution, the checks run, and all of it kept across a
// reopening. The store's lease: one holder at a time, refused to a second (store or supervisor) naming the holder,
// taken over once not renewed for leaseMs, released when a supervisor stops, and a supervisor whose renewal finds
// another holder stops writing. On PostgreSQL, the password comes from a file, and a wrong one is refused when the
// store opens.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { formatVerifierKey, publicKeyFromSeed } from '@labtrace/protocols';
import pino from 'pino';
import { parseDatabaseUrl } from '../../src/store/config.js';
import { DEFAULT_RULE_SETTINGS } from '../../src/supervisor/evidence.js';
import { SupervisorStore, type SupervisorDatabase } from '../../src/supervisor/supervisor-store.js';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import { waitFor } from '../helpers/server.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { rejectionOf } from '../helpers/rejection.js';
import { StoreFixture, type Engine } from '../helpers/test-store.js';

const T0 = Date.UTC(2027, 0, 1);
const fixture = new StoreFixture('supervisor', 'sup-store');
const opened: SupervisorStore[] = [];

beforeAll(async () => {
  await fixture.start();
}, 120_000);
afterAll(async () => {
  for (const store of opened.splice(0)) await store.close();
  await fixture.close();
});

/** where a new, empty store is on `engine` */
async function where(engine: Engine): Promise<SupervisorDatabase> {
  return { target: parseDatabaseUrl(await fixture.url(engine), 'url', process.cwd()) };
}

async function open(database: SupervisorDatabase): Promise<SupervisorStore> {
  const store = new SupervisorStore(database);
  await store.open();
  opened.push(store);
  return store;
}

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);
const entry = (index: number, value: unknown = { n: index }) => ({
  index,
  kind: index % 2 === 0 ? 'batch-header' : 'certificate-event',
  at: T0 + index,
  data: new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value)),
  leaf: bytes(0, 255, index % 256, 0),
});
const checkpoint = (size: number, seenAt: number, cosignedBy: string[] = []) => ({
  size,
  rootHash: `root-${size}`,
  note: `lab.example/log\n${size}\nroot\n`,
  peaks: [`peak-${size}`],
  seenAt,
  cosignedBy,
});

const finding = (key: string, zh = `${key} 的摘要`) => ({
  lab: 'lab-a',
  rule: 'sequence-gaps',
  key,
  severity: 'major' as const,
  at: T0,
  detectedAt: T0 + 1000,
  summary: { en: `summary of ${key}`, zh },
  subject: { run: key, gateway: 'gw-ä' },
  evidence: { checkpoint: 'note', entries: [{ index: 3, why: 'the batch', kind: 'batch-header', leafHash: 'AAA=', inclusionProof: ['BBB='] }] },
});

describe.each(['sqlite', 'postgres'] as const)('on %s', (engine) => {
  test('the cursor advances with its entries in one transaction, the bytes kept as they are', async () => {
    const store = await open(await where(engine));
    expect(await store.cursor('lab-a')).toEqual({ lab: 'lab-a', size: 0, rootHash: null, note: null, peaks: [], lastDeepCheck: null });
    // more entries than one INSERT takes, one of them not JSON
    const first = Array.from({ length: 2500 }, (_, i) => entry(i, i === 7 ? 'not json {' : { n: i }));
    await store.advance('lab-a', first, checkpoint(2500, T0 + 10));
    expect(await store.cursor('lab-a')).toEqual({
      lab: 'lab-a',
      size: 2500,
      rootHash: 'root-2500',
      note: checkpoint(2500, 0).note,
      peaks: ['peak-2500'],
      lastDeepCheck: null,
    });
    const entries = await store.entries('lab-a');
    expect(entries).toHaveLength(2500);
    expect(entries[7]).toEqual({ index: 7, kind: 'certificate-event', at: T0 + 7, value: undefined });
    expect(entries[2499]).toEqual({ index: 2499, kind: 'certificate-event', at: T0 + 2499, value: { n: 2499 } });
    expect(await store.entryLeaf('lab-a', 300)).toEqual({ kind: 'batch-header', leaf: bytes(0, 255, 300 % 256, 0) });
    expect(await store.entryLeaf('lab-a', 2500)).toBeUndefined();
    expect(await store.entries('lab-b')).toEqual([]);
    // an index held already, after more new entries than one INSERT takes: nothing of the advance is kept, neither
    // its other entries nor the new checkpoint
    const again = [...Array.from({ length: 1100 }, (_, i) => entry(2500 + i)), entry(2499)];
    expect(await rejectionOf(store.advance('lab-a', again, checkpoint(3600, T0 + 20)))).toMatch(/UNIQUE|duplicate key/i);
    expect((await store.cursor('lab-a')).size).toBe(2500);
    expect(await store.entries('lab-a')).toHaveLength(2500);
    expect((await store.checkpoints('lab-a')).map((c) => c.size)).toEqual([2500]);
    await store.advance('lab-a', [entry(2500), entry(2501)], checkpoint(2502, T0 + 20));
    expect((await store.cursor('lab-a')).size).toBe(2502);
  });

  test('the checkpoints seen: first and last seen, the cosigners of the last sighting; the deep check time beside the cursor', async () => {
    const store = await open(await where(engine));
    await store.markDeepCheck('lab-a', T0 + 5);
    expect(await store.cursor('lab-a')).toMatchObject({ size: 0, lastDeepCheck: T0 + 5, peaks: [] });
    expect(await store.latestCheckpoint('lab-a')).toBeUndefined();
    await store.advance('lab-a', [entry(0), entry(1)], checkpoint(2, T0 + 10));
    await store.sawCheckpoint('lab-a', { ...checkpoint(2, T0 + 50, ['w1']), note: 'cosigned note' });
    await store.advance('lab-a', [entry(2)], checkpoint(3, T0 + 60));
    await store.markDeepCheck('lab-a', T0 + 70);
    expect(await store.cursor('lab-a')).toMatchObject({ size: 3, lastDeepCheck: T0 + 70 });
    const held = await store.checkpoints('lab-a');
    expect(held).toEqual([
      { size: 2, rootHash: 'root-2', note: 'cosigned note', firstSeenAt: T0 + 10, lastSeenAt: T0 + 50, cosignedBy: ['w1'] },
      { size: 3, rootHash: 'root-3', note: checkpoint(3, 0).note, firstSeenAt: T0 + 60, lastSeenAt: T0 + 60, cosignedBy: [] },
    ]);
    expect(await store.latestCheckpoint('lab-a')).toEqual(held[1]);
  });

  test('records are replaced by id and listed in byte order of their ids', async () => {
    const store = await open(await where(engine));
    const ids = ['b', 'B', 'a-2', 'a-10', 'é', 'Z', '_x'];
    await store.putRecords(
      'lab-a',
      'run',
      ids.map((id) => ({ id, body: { id, v: 1 } })),
      T0,
    );
    // the same id twice in one call: the last is kept; more records than one INSERT takes
    await store.putRecords(
      'lab-a',
      'run',
      [
        { id: 'b', body: { id: 'b', v: 2 } },
        { id: 'b', body: { id: 'b', v: 3 } },
      ],
      T0 + 1,
    );
    const many = Array.from({ length: 1500 }, (_, i) => ({ id: `c-${String(i).padStart(4, '0')}`, body: [i] }));
    await store.putRecords('lab-a', 'alarms', many, T0);
    await store.putRecords('lab-b', 'run', [{ id: 'other', body: {} }], T0);
    await store.putRecords('lab-a', 'run', [], T0);
    const sorted = [...ids].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect(sorted).toEqual(['B', 'Z', '_x', 'a-10', 'a-2', 'b', 'é']);
    expect((await store.records<{ id: string }>('lab-a', 'run')).map((r) => r.id)).toEqual(sorted);
    expect((await store.recordsById<{ v: number }>('lab-a', 'run')).find(([id]) => id === 'b')).toEqual(['b', { id: 'b', v: 3 }]);
    expect(await store.recordIds('lab-a', 'run')).toEqual(new Set(ids));
    expect((await store.recordsById<number[]>('lab-a', 'alarms')).slice(-2)).toEqual([
      ['c-1498', [1498]],
      ['c-1499', [1499]],
    ]);
    expect(await store.records('lab-a', 'certificate')).toEqual([]);
  });

  test('conflicts and checks run are kept per lab, the checks newest first or by period', async () => {
    const store = await open(await where(engine));
    await store.addConflict('lab-a', {
      kind: 'fork',
      detectedAt: T0,
      heldNote: 'held',
      servedNote: 'served',
      proof: ['p1', 'p2'],
      reason: 'two trees',
    });
    await store.addConflict('lab-b', { kind: 'shrunk', detectedAt: T0, heldNote: 'h', servedNote: 's', proof: [], reason: 'went back' });
    expect(await store.conflicts('lab-a')).toEqual([
      { id: expect.any(Number), kind: 'fork', detectedAt: T0, heldNote: 'held', servedNote: 'served', proof: ['p1', 'p2'], reason: 'two trees' },
    ]);
    const run = (startedAt: number, extra: Partial<Parameters<SupervisorStore['addCheckRun']>[0]> = {}) =>
      store.addCheckRun({
        lab: 'lab-a',
        startedAt,
        durationMs: 12,
        deep: true,
        logSize: 40,
        rules: ['a', 'b'],
        newFindings: 0,
        error: null,
        ...extra,
      });
    await run(T0 + 3 * 3_600_000, { newFindings: 2 });
    await run(T0, { deep: false, error: 'the lab answered 503' });
    await run(T0 + 3_600_000);
    const checks = await store.checkRuns('lab-a');
    expect(checks.map((c) => c.startedAt)).toEqual([T0 + 3_600_000, T0, T0 + 3 * 3_600_000]);
    expect(checks[1]).toEqual({
      id: expect.any(Number),
      lab: 'lab-a',
      startedAt: T0,
      durationMs: 12,
      deep: false,
      logSize: 40,
      rules: ['a', 'b'],
      newFindings: 0,
      error: 'the lab answered 503',
    });
    expect((await store.checkRuns('lab-a', 1)).map((c) => c.startedAt)).toEqual([T0 + 3_600_000]);
    expect((await store.checkRunsBetween('lab-a', T0, T0 + 3 * 3_600_000)).map((c) => [c.startedAt, c.deep])).toEqual([
      [T0, false],
      [T0 + 3_600_000, true],
    ]);
    expect(await store.checkRuns('lab-b')).toEqual([]);
  });

  test('a finding is recorded once, with its evidence; the responses follow it, a resolution closes it; all kept when reopened', async () => {
    const database = await where(engine);
    const store = await open(database);
    await store.addFinding(finding('run-1'));
    await store.addFinding(finding('run-2', '运行 run-2 缺少批次'));
    // found again by a later check: the first record stands
    await store.addFinding({ ...finding('run-1', 'found again'), detectedAt: T0 + 9000 });
    await store.addFinding({ ...finding('run-1'), lab: 'lab-b' });
    expect(await store.findingKeys('lab-a')).toEqual(new Set(['sequence-gaps run-1', 'sequence-gaps run-2']));
    const [one, two] = await store.findings('lab-a');
    if (one === undefined || two === undefined) throw new Error('two findings expected');
    expect(one).toEqual({ ...finding('run-1'), id: expect.any(Number), status: 'open', responses: [] });
    expect(two.summary).toEqual({ en: 'summary of run-2', zh: '运行 run-2 缺少批次' });
    const other = (await store.findings('lab-b'))[0];
    if (other === undefined) throw new Error('no finding of lab-b');
    // a finding of another lab, or none, is not answered
    expect(await store.respond('lab-a', other.id, { at: T0, author: 'x', kind: 'response', text: 'not this lab' })).toBe(false);
    expect(await store.respond('lab-a', 999_999, { at: T0, author: 'x', kind: 'response', text: 'no such finding' })).toBe(false);
    expect(await store.respond('lab-a', two.id, { at: T0 + 1, author: 'quality manager', kind: 'response', text: 'corrected' })).toBe(true);
    expect(await store.respond('lab-a', two.id, { at: T0 + 2, author: 'inspector', kind: 'resolution', text: 'verified' })).toBe(true);
    expect(await store.respond('lab-a', one.id, { at: T0 + 3, author: 'quality manager', kind: 'response', text: 'in hand' })).toBe(true);
    await store.close();
    const reopened = await open(database);
    const after = await reopened.findings('lab-a');
    expect(after.map((f) => [f.id, f.status, f.responses.map((r) => [r.at, r.author, r.kind, r.text])])).toEqual([
      [one.id, 'open', [[T0 + 3, 'quality manager', 'response', 'in hand']]],
      [
        two.id,
        'resolved',
        [
          [T0 + 1, 'quality manager', 'response', 'corrected'],
          [T0 + 2, 'inspector', 'resolution', 'verified'],
        ],
      ],
    ]);
    expect((await reopened.findings('lab-b')).map((f) => [f.status, f.responses])).toEqual([['open', []]]);
  });
});

const HELD = new RegExp(
  `is held by another supervisor process \\(host ${os.hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, pid ${process.pid}, since \\d{4}-.*only one supervisor may write a store`,
);

describe.each(['sqlite', 'postgres'] as const)('the lease on %s', (engine) => {
  test('one store holds it: a second is refused, naming the holder, until the first releases it', async () => {
    const database = await where(engine);
    const first = await open(database);
    const second = await open(database);
    await first.takeLease(T0, 30_000);
    // taking it again is renewing it
    await first.takeLease(T0 + 1000, 30_000);
    const refused = await second.takeLease(T0 + 2000, 30_000).then(
      () => undefined,
      (err: unknown) => err as { code?: string; message: string },
    );
    expect(refused?.code).toBe('E_CONFLICT');
    expect(refused?.message).toMatch(HELD);
    expect(refused?.message).toContain(`since ${new Date(T0).toISOString()}`);
    await first.releaseLease();
    await second.takeLease(T0 + 3000, 30_000);
    expect(await rejectionOf(first.takeLease(T0 + 4000, 30_000))).toMatch(HELD);
  });

  test('a lease not renewed for leaseMs is taken over, and its holder learns it when it renews', async () => {
    const database = await where(engine);
    const first = await open(database);
    const second = await open(database);
    await first.takeLease(T0, 30_000);
    expect(await first.renewLease(T0 + 10_000)).toBe(true);
    // renewed at T0 + 10 s: held until T0 + 40 s
    expect(await rejectionOf(second.takeLease(T0 + 39_999, 30_000))).toMatch(HELD);
    await second.takeLease(T0 + 40_000, 30_000);
    expect(await first.renewLease(T0 + 40_001)).toBe(false);
    // the first gives up nothing it no longer holds
    await first.releaseLease();
    expect(await rejectionOf(first.takeLease(T0 + 40_002, 30_000))).toMatch(HELD);
    expect(await second.renewLease(T0 + 40_003)).toBe(true);
  });

  test('a second supervisor is refused while the first runs and starts once it stopped; one whose renewal finds another holder stops writing', async () => {
    const database = await where(engine);
    const lines: string[] = [];
    // the supervisors' lease clock stands still: their renewals say T0, whatever the time the test takes
    const leaseNow = T0;
    const supervisor = () =>
      new Supervisor(
        {
          host: '127.0.0.1',
          port: 0,
          database,
          apiToken: 'supervisor-api-token-for-the-lease-test',
          followEveryMs: 3_600_000,
          settings: DEFAULT_RULE_SETTINGS,
          // a lab that does not answer: its rounds fail, and are logged and retried
          labs: [
            {
              id: 'lab-a',
              name: 'Lab A',
              url: 'http://127.0.0.1:9',
              origin: 'a.example/log',
              logKey: formatVerifierKey('a.example/log', publicKeyFromSeed(new Uint8Array(32).fill(7))),
              token: 't',
              witnesses: [],
              witnessesRequired: 0,
            },
          ],
          leaseMs: 300,
          leaseClock: () => leaseNow,
        },
        pino({ level: 'info' }, { write: (line: string) => lines.push(line) }),
      );
    const check = async (s: Supervisor) =>
      (await fetch(`${s.url}/api/labs/lab-a/check`, { method: 'POST', headers: { authorization: 'Bearer supervisor-api-token-for-the-lease-test' } }))
        .status;
    const first = supervisor();
    await first.start();
    const second = supervisor();
    try {
      expect(await rejectionOf(second.start())).toMatch(HELD);
    } finally {
      await first.stop();
      // started after all (the lease not checked): stopped, so that the test ends
      await second.stop();
    }
    // stopped, the first released its lease: the second starts at once
    await second.start();
    try {
      expect(await check(second)).toBe(200);
      // the second's process was paused longer than leaseMs (its last renewal said T0): another takes the lease over
      const other = await open(database);
      await other.takeLease(T0 + 600, 300);
      await waitFor('the ALARM of the lost lease', () =>
        lines.some((l) => l.includes("ALARM: supervisor: another supervisor process took the store's lease")),
      );
      expect(await check(second)).toBe(409);
    } finally {
      await second.stop();
    }
    // stopping, the second left the lease to its holder
    expect(await rejectionOf((await open(database)).takeLease(T0 + 601, 300))).toMatch(HELD);
  });
});

describe('on PostgreSQL', () => {
  test("the records' order is the bytes' also where the database collates text by a language's rules", async () => {
    const url = await fixture.url('postgres');
    const admin = new pg.Client({ connectionString: url.replace(/\/[^/]+$/, '/postgres') });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE sup_icu TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`);
    } finally {
      await admin.end();
    }
    const store = await open({ target: parseDatabaseUrl(url.replace(/\/[^/]+$/, '/sup_icu'), 'url', process.cwd()) });
    await store.putRecords(
      'lab-a',
      'run',
      ['b', 'B', 'a', 'Z'].map((id) => ({ id, body: id })),
      T0,
    );
    // en-US would say a, b, B, Z
    expect(await store.records('lab-a', 'run')).toEqual(['B', 'Z', 'a', 'b']);
  });

  describe('with a password', () => {
    let cluster: TestPostgres;
    beforeAll(async () => {
      cluster = await startPostgres({ database: 'supervision', password: 'pg-secret-for-the-test' });
    }, 120_000);
    afterAll(() => cluster.stop());

    test('reads it from the password file, and a wrong one is refused when the store opens, without the password', async () => {
      const target = parseDatabaseUrl(cluster.url, 'url', process.cwd());
      const right = path.join(fixture.tempDir(), 'right');
      const wrong = path.join(fixture.tempDir(), 'wrong');
      writeFileSync(right, 'pg-secret-for-the-test\n');
      writeFileSync(wrong, 'not-the-password\n');
      const store = await open({ target, passwordFile: right, passwordFileField: 'supervisor.yaml: database.passwordFile' });
      await store.markDeepCheck('lab-a', T0);
      expect((await store.cursor('lab-a')).lastDeepCheck).toBe(T0);
      const refused = await rejectionOf(new SupervisorStore({ target, passwordFile: wrong }).open());
      expect(refused).toMatch(
        /cannot open the supervisor's store postgres:\/\/postgres@127\.0\.0\.1:\d+\/supervision: .*password authentication failed/,
      );
      expect(refused).not.toMatch(/not-the-password/);
      expect(
        await rejectionOf(
          new SupervisorStore({ target, passwordFile: `${wrong}-missing`, passwordFileField: 'supervisor.yaml: database.passwordFile' }).open(),
        ),
      ).toMatch(/supervisor\.yaml: database\.passwordFile: .*file not found/);
    });
  });
});
