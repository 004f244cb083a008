// Lab records and test runs over the REST API and socket.io: samples, methods in versions, the run state
// machine with its audit entries, the binding of a run to the exact stored sequence ranges of its
// gateways, client scoping (REST and live rooms), the out-of-service interlock and the accreditation flag.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql } from 'kysely';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { io, type Socket } from 'socket.io-client';
import {
  unpackRunSamples,
  verifyBundle,
  type ClientToServerEvents,
  type LiveSample,
  type RunWatchAnswer,
  type ServerToClientEvents,
} from '@labtrace/protocols';
import { exportBundle } from '../../src/export/bundle.js';
import { readBundle } from '../../src/export/read-bundle.js';
import { runSelections } from '../../src/export/run-selection.js';
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
import { logSize, rowCount } from '../helpers/store-reads.js';

let t: TestServer;
let gw: TestGateway;
let otherClientToken: string;
const sockets: Socket[] = [];
const IN_SCOPE = 'ISO 6892-1:2019';

beforeAll(async () => {
  // an accreditation with the tensile method's measurand in its scope (docs/accreditation.md)
  t = await startServer({
    accreditation: {
      accreditations: [
        {
          id: 'acc-1',
          body: 'CNAS',
          number: 'L1234',
          validFrom: '2020-01-01',
          validTo: Date.now() + 365 * 86_400_000,
          scope: [{ standard: IN_SCOPE, measurand: 'force', unit: 'kN', min: 0, max: 1000 }],
        },
      ],
    },
  });
  otherClientToken = await addOtherClient(t);
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('ut-1', 'ut-x', 'ut-2');
  await waitFor('the instruments', async () => (await rowCount(t.server, 'instruments')) === 3);
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

const tensile = {
  id: 'tensile',
  standard: IN_SCOPE,
  title: 'Tensile testing at room temperature',
  definition: {
    measurands: [{ name: 'force', unit: 'kN', channel: 'c' }],
    instrumentTypes: ['x'],
    limits: [{ measurand: 'force', min: 0, max: 100 }],
    decisionRule: { kind: 'simple-acceptance' },
  },
};

interface RunView {
  id: string;
  state: string;
  accredited: boolean;
  flags: string[];
  organization: string;
  ranges: { gateway: string; firstSeq: number; lastSeq: number | null }[];
  endReason: string | null;
}

async function newRun(sample: string, method = 'tensile', instruments = ['ut-1']): Promise<RunView> {
  const res = await call<RunView>('/api/runs', json({ sample, method, instruments }));
  expect(res.status).toBe(201);
  return res.body;
}

const auditOf = (recordType: string, recordId: string) => t.server.audit.list({ recordType, recordId, limit: 100 });

describe('records', () => {
  test('samples received are recorded with their condition and owner, and audited', async () => {
    const sample = {
      id: 'S-1',
      organization: ORGANIZATION,
      description: 'steel bar B500B, 12 mm',
      condition: 'as received, no damage',
      receivedAt: 1_800_000_000_000,
    };
    expect((await call('/api/lab-samples', json(sample))).status).toBe(201);
    expect((await call('/api/lab-samples', json(sample))).status).toBe(409);
    expect((await call('/api/lab-samples', json({ ...sample, id: 'S-2', organization: 'org-b' }), 'admin')).status).toBe(201);
    expect((await call('/api/lab-samples', json({ ...sample, id: 'S-3', organization: 'org-z' }))).body.error).toMatch(
      /organization: "org-z" is not known/,
    );
    expect(await auditOf('lab-sample', 'S-1')).toEqual([expect.objectContaining({ actor: 'technician', action: 'create', newValue: sample })]);
    // each client sees its own organization's samples only
    expect((await call<{ items: { id: string }[] }>('/api/lab-samples', {}, 'client')).body.items.map((s) => s.id)).toEqual(['S-1']);
    expect((await call<{ items: { id: string }[] }>('/api/lab-samples', {}, 'client-b')).body.items.map((s) => s.id)).toEqual(['S-2']);
    expect((await call('/api/lab-samples/S-2', {}, 'client')).status).toBe(404);
  });

  test('a method is validated, with the path of each problem', async () => {
    const bad = {
      ...tensile,
      definition: { ...tensile.definition, limits: [{ measurand: 'elongation', min: 5, max: 1 }], decisionRule: { kind: 'coin-toss' } },
    };
    const res = await call<{ error: string; issues: { path: string }[] }>('/api/methods', json(bad));
    expect(res.status).toBe(400);
    const paths = res.body.issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['definition.limits[0].min', 'definition.decisionRule.kind']));
    expect((await call('/api/methods', json(tensile))).status).toBe(201);
    expect((await call('/api/methods', json(tensile))).status).toBe(409);
  });

  test('a method changes only by a new version, with a reason; both versions stay', async () => {
    const change = {
      standard: tensile.standard,
      title: tensile.title,
      definition: { ...tensile.definition, limits: [{ measurand: 'force', min: 0, max: 90 }] },
    };
    expect((await call('/api/methods/tensile/versions', json(change))).body.error).toMatch(/reason: /);
    const res = await call<{ version: number; accredited: boolean }>(
      '/api/methods/tensile/versions',
      json({ ...change, reason: 'limit corrected to the product standard' }),
    );
    expect(res.body).toMatchObject({ version: 2, accredited: true });
    expect((await call<{ version: number }[]>('/api/methods/tensile', {}, 'client')).body.map((m) => m.version)).toEqual([1, 2]);
    const entries = await auditOf('method', 'tensile');
    expect(entries.map((e) => [e.action, e.reason])).toEqual([
      ['create', null],
      ['update', 'limit corrected to the product standard'],
    ]);
    expect(entries[1]).toMatchObject({ oldValue: { version: 1 }, newValue: { version: 2 } });
    expect((await call('/api/methods/none', {})).status).toBe(404);
  });

  test('nothing is deleted, and a method version is never rewritten', async () => {
    const db = t.server.db;
    expect(await rejectionOf(sql`DELETE FROM lab_samples WHERE id = 'S-1'`.execute(db))).toMatch(/never deleted/);
    expect(await rejectionOf(sql`UPDATE methods SET title = 'x' WHERE id = 'tensile'`.execute(db))).toMatch(/written once/);
  });
});

describe('the run state machine', () => {
  test('planned -> running -> completed; illegal transitions are refused with the reason; every step is audited', async () => {
    const run = await newRun('S-1');
    expect(run).toMatchObject({ state: 'planned', accredited: true, flags: [] });
    const stop = await call(`/api/runs/${run.id}/stop`, json({}));
    expect(stop.status).toBe(409);
    expect(stop.body.error).toMatch(/is planned: it cannot be stopped/);
    expect((await call(`/api/runs/${run.id}/start`, json({}))).body).toMatchObject({ state: 'running' });
    expect((await call(`/api/runs/${run.id}/start`, json({}))).body.error).toMatch(/is running: it cannot be started/);
    expect((await call(`/api/runs/${run.id}/abort`, json({}))).body.error).toMatch(/reason: /);
    expect((await call(`/api/runs/${run.id}/stop`, json({}))).body).toMatchObject({ state: 'completed' });
    expect((await call(`/api/runs/${run.id}/abort`, json({ reason: 'too late' }))).body.error).toMatch(/is completed: it cannot be aborted/);
    expect((await auditOf('run', run.id)).map((e) => [e.actor, e.action, e.oldValue, (e.newValue as { state: string }).state])).toEqual([
      ['technician', 'create', null, 'planned'],
      ['technician', 'state-change', { state: 'planned' }, 'running'],
      ['technician', 'state-change', { state: 'running' }, 'completed'],
    ]);
    // the database refuses a change to a finished run, whatever the code does
    expect(await rejectionOf(sql`UPDATE runs SET state = 'running' WHERE id = ${run.id}`.execute(t.server.db))).toMatch(/state machine/);
  });

  test('an aborted run stays, with its reason', async () => {
    const run = await newRun('S-1');
    const res = await call<RunView>(`/api/runs/${run.id}/abort`, json({ reason: 'specimen slipped in the grips' }));
    expect(res.body).toMatchObject({ state: 'aborted', endReason: 'specimen slipped in the grips' });
    expect((await auditOf('run', run.id)).at(-1)).toMatchObject({ action: 'state-change', reason: 'specimen slipped in the grips' });
    expect((await call<RunView>(`/api/runs/${run.id}`)).body.state).toBe('aborted');
  });

  test('a run needs known records and the instrument types its method requires', async () => {
    expect((await call('/api/runs', json({ sample: 'S-9', method: 'tensile', instruments: ['ut-1'] }))).body.error).toMatch(
      /sample: "S-9" is not known/,
    );
    expect((await call('/api/runs', json({ sample: 'S-1', method: 'tensile', instruments: ['nope'] }))).body.error).toMatch(
      /instruments\[0\]: instrument "nope" is not known/,
    );
    const needsExtensometer = { ...tensile, id: 'tensile-ext', definition: { ...tensile.definition, instrumentTypes: ['x', 'extensometer'] } };
    expect((await call('/api/methods', json(needsExtensometer))).status).toBe(201);
    expect((await call('/api/runs', json({ sample: 'S-1', method: 'tensile-ext', instruments: ['ut-1'] }))).body.error).toMatch(
      /needs an instrument of type "extensometer"/,
    );
    expect((await call('/api/runs', json({ sample: 'S-1', method: 'tensile', instruments: ['ut-1'], technician: 'auditor' }))).body.error).toMatch(
      /technician: "auditor" is not an active technician/,
    );
  });
});

function connect(token: string): Socket<ServerToClientEvents, ClientToServerEvents> {
  const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(t.base, { transports: ['websocket'], auth: { token }, reconnection: false });
  sockets.push(socket);
  return socket;
}

const watch = (socket: Socket<ServerToClientEvents, ClientToServerEvents>, run: string): Promise<RunWatchAnswer> =>
  new Promise((resolve) => socket.emit('run:watch', run, resolve));

describe('a run binds the stored records of its instruments', () => {
  test('its ranges are the gateway sequence numbers stored while it ran; its records come from those batches', async () => {
    const ut1 = (first: number, n: number): ReturnType<typeof records> => records('ut-1', first, n);
    const other = (first: number, n: number): ReturnType<typeof records> => records('ut-x', first, n, 7);
    expect(await send(t, gw, gw.sign([...ut1(0, 3), ...other(3, 2)]))).toBe('acked');
    const run = await newRun('S-1');
    const client = connect(t.tokens.client);
    const live: LiveSample[] = [];
    client.on('run:samples', (id, samples) => {
      if (id === run.id) live.push(...unpackRunSamples(samples));
    });
    expect(await watch(client, run.id)).toEqual({ ok: true, state: 'planned' });

    const started = (await call<RunView>(`/api/runs/${run.id}/start`, json({ reason: 'specimen mounted' }))).body;
    expect(started.ranges).toEqual([{ gateway: 'gw-a', firstSeq: 5, lastSeq: null }]);
    expect(await send(t, gw, gw.sign([...ut1(5, 3), ...other(8, 2)]))).toBe('acked');
    expect(await send(t, gw, gw.sign(ut1(10, 2)))).toBe('acked');
    // while it runs, the open range reaches the newest stored record
    expect((await call<{ samples: LiveSample[] }>(`/api/runs/${run.id}/records`, {}, 'client')).body.samples.map((s) => s.seq)).toEqual([
      5, 6, 7, 10, 11,
    ]);
    await waitFor('the live samples', () => live.length === 5);
    // the room carries every stored record of the run, exactly as the records route reads it back
    expect(live).toEqual((await call<{ samples: LiveSample[] }>(`/api/runs/${run.id}/records`, {}, 'client')).body.samples);

    const stopped = (await call<RunView>(`/api/runs/${run.id}/stop`, json({}))).body;
    expect(stopped.ranges).toEqual([{ gateway: 'gw-a', firstSeq: 5, lastSeq: 11 }]);
    expect(await send(t, gw, gw.sign(ut1(12, 2)))).toBe('acked');

    const res = await call<{
      samples: LiveSample[];
      batches: { batch: number; firstSeq: number; count: number; logIndex: number | null }[];
      truncated: boolean;
    }>(`/api/runs/${run.id}/records`, {}, 'client');
    expect(res.status).toBe(200);
    // only the run's instrument, only the range: not the batch before the start nor the one after the stop
    expect(res.body.samples.map((s) => [s.instrument, s.seq])).toEqual([5, 6, 7, 10, 11].map((seq) => ['ut-1', seq]));
    expect(res.body.truncated).toBe(false);
    // the batches named are the stored, logged ones
    const stored = await t.server.db
      .selectFrom('batch_headers')
      .select(['gateway', 'batch', 'first_seq as firstSeq', 'count', 'log_index as logIndex'])
      .where('gateway', '=', 'gw-a')
      .where('batch', 'in', [1, 2])
      .orderBy('batch')
      .execute();
    expect(res.body.batches).toEqual(stored);
    expect(res.body.batches.every((b) => typeof b.logIndex === 'number')).toBe(true);
    // the live room saw the same records, and no more after the stop
    expect(live.map((s) => s.seq)).toEqual([5, 6, 7, 10, 11]);
    expect((await auditOf('run', run.id)).at(-1)?.newValue).toMatchObject({
      state: 'completed',
      ranges: [{ gateway: 'gw-a', firstSeq: 5, lastSeq: 11 }],
    });
    // its export bundle (labtrace export --run): every record of its range, and it verifies offline
    const selections = (await runSelections(t.server.db, run.id)).selections;
    expect(selections).toEqual([expect.objectContaining({ gateway: 'gw-a', firstSeq: 5, lastSeq: 11 })]);
    const reader = t.server.logReader;
    const log = t.server.logStore ?? t.server.log;
    if (reader === undefined || log === undefined) throw new Error('no transparency log');
    await waitFor(
      'a checkpoint over the run',
      async () => (await reader.checkpoint()) !== '' && (await reader.latestCheckpoint()).size === (await logSize(t.server)),
      5000,
    );
    const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-run-export-'));
    try {
      const [only] = selections;
      if (only === undefined) throw new Error('no selection');
      await exportBundle(t.server.db, log, { outDir: dir, gateway: only.gateway, from: only.from, to: only.to });
      const files = readBundle(dir);
      const report = verifyBundle(files, {});
      expect(report.problems).toEqual([]);
      expect(report.status).toBe('verified');
      const exported = files.records
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { seq: number; instrument: string });
      const seqs = new Set(exported.map((r) => r.seq));
      for (const seq of [5, 6, 7, 8, 9, 10, 11]) expect(seqs.has(seq)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a client cannot see another client's run", () => {
  let theirs: RunView;
  beforeAll(async () => {
    theirs = await newRun('S-2');
  });

  test('REST: not listed, and 404 by id exactly like an unknown run', async () => {
    expect(theirs.organization).toBe('org-b');
    const mine = (await call<{ items: RunView[] }>('/api/runs', {}, 'client')).body.items;
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((r) => r.organization === ORGANIZATION)).toBe(true);
    expect((await call<{ items: RunView[] }>('/api/runs', {}, 'client-b')).body.items.map((r) => r.id)).toEqual([theirs.id]);
    expect((await call<{ items: RunView[] }>('/api/runs', {}, 'auditor')).body.items.map((r) => r.id)).toContain(theirs.id);
    const denied = await call<{ error: string }>(`/api/runs/${theirs.id}`, {}, 'client');
    const unknown = await call<{ error: string }>('/api/runs/run-999', {}, 'client');
    expect(denied.status).toBe(404);
    expect(unknown.status).toBe(404);
    expect(denied.body.error).toBe(unknown.body.error.replace('run-999', theirs.id));
    expect((await call(`/api/runs/${theirs.id}/records`, {}, 'client')).status).toBe(404);
    expect((await call(`/api/runs/${theirs.id}`, {}, 'client-b')).status).toBe(200);
    // and a client changes no run at all
    expect((await call(`/api/runs/${theirs.id}/abort`, json({ reason: 'x' }), 'client-b')).status).toBe(403);
  });

  test("a run shows its instruments' identity and calibration status to whoever may see it, a client included", async () => {
    // the client reads no instrument list of the lab, yet witnesses what measures its test
    expect((await call('/api/instruments', {}, 'client-b')).status).toBe(403);
    const seen = await call<{ equipment: { id: string; identity: { model: string } | null; calibration: { status: string } }[] }>(
      `/api/runs/${theirs.id}`,
      {},
      'client-b',
    );
    expect(seen.body.equipment).toEqual([
      { id: 'ut-1', identity: { maker: 'm', model: 'x', serialNumber: '1' }, calibration: { status: 'never-calibrated', dueAt: null } },
    ]);
  });

  test("socket.io: joining another client's run room is refused, and its samples never arrive", async () => {
    const intruder = connect(t.tokens.client);
    const owner = connect(otherClientToken);
    const seen: string[] = [];
    intruder.on('run:samples', (id) => seen.push(`intruder ${id}`));
    owner.on('run:samples', (id) => seen.push(`owner ${id}`));
    expect(await watch(intruder, theirs.id)).toEqual({ ok: false, error: `run "${theirs.id}" is not known` });
    expect(await watch(owner, theirs.id)).toEqual({ ok: true, state: 'planned' });
    expect((await call(`/api/runs/${theirs.id}/start`, json({}))).status).toBe(200);
    expect(await send(t, gw, gw.sign(records('ut-1', 14, 2)))).toBe('acked');
    await waitFor('the owner to receive the samples', () => seen.includes(`owner ${theirs.id}`));
    expect(seen.filter((s) => s.startsWith('intruder'))).toEqual([]);
    expect((await call(`/api/runs/${theirs.id}/stop`, json({}))).status).toBe(200);
  });
});

describe('interlocks', () => {
  test('a run does not start with an instrument out of service; it starts once the instrument is back', async () => {
    expect((await call('/api/instruments/ut-2/status', json({ status: 'out-of-service' }))).body.error).toMatch(/reason: /);
    expect((await call('/api/instruments/ut-2/status', json({ status: 'out-of-service', reason: 'load cell overload' }))).status).toBe(201);
    const run = await newRun('S-1', 'tensile', ['ut-1', 'ut-2']);
    const refused = await call(`/api/runs/${run.id}/start`, json({}));
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatch(/instrument "ut-2" is out of service since .* \(load cell overload\)/);
    expect((await call<RunView>(`/api/runs/${run.id}`)).body).toMatchObject({ state: 'planned', ranges: [] });
    expect((await call('/api/instruments/ut-2/status', json({ status: 'in-service', reason: 'load cell replaced and checked' }))).status).toBe(201);
    expect((await call(`/api/runs/${run.id}/start`, json({}))).body).toMatchObject({ state: 'running' });
    expect((await auditOf('instrument-status', 'ut-2')).map((e) => [e.oldValue, e.newValue, e.reason])).toEqual([
      [{ status: 'in-service' }, { status: 'out-of-service' }, 'load cell overload'],
      [{ status: 'out-of-service' }, { status: 'in-service' }, 'load cell replaced and checked'],
    ]);
    expect((await call(`/api/runs/${run.id}/abort`, json({ reason: 'end of test' }))).status).toBe(200);
  });

  test("a method outside the accreditation scope may run, flagged 'not accredited'", async () => {
    const hardness = { ...tensile, id: 'hardness', standard: 'ISO 6506-1:2014', title: 'Brinell hardness' };
    expect((await call<{ accredited: boolean }>('/api/methods', json(hardness))).body.accredited).toBe(false);
    const run = await newRun('S-1', 'hardness');
    expect(run).toMatchObject({ accredited: false, flags: ['not accredited'] });
    expect((await call<RunView>(`/api/runs/${run.id}/start`, json({}))).body).toMatchObject({ state: 'running', flags: ['not accredited'] });
    expect((await call(`/api/runs/${run.id}/stop`, json({}))).status).toBe(200);
  });
});
