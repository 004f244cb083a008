// A batch whose savepoint or commit fails is neither acknowledged nor served: the per-sample index holds
// committed batches only, each once, also when the refused batch is sent again and stored. The failures
// are real SQLite failures, made by a trigger that aborts a write inside the ingest transaction (a
// savepoint), or by a deferred foreign key that fails the commit itself.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { records, send, startServer, TestGateway, type TestServer } from '../helpers/server.js';

let t: TestServer;
let gw: TestGateway;

beforeAll(async () => {
  t = await startServer();
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('fill-1');
});
afterAll(async () => {
  await gw.end();
  await t.stop();
});

/** the sequence numbers /api/instruments/fill-1/history serves, in order */
async function served(): Promise<number[]> {
  const res = await t.fetch('/api/instruments/fill-1/history?channel=c&from=0&to=2000000000000&limit=10000');
  expect(res.status).toBe(200);
  return ((await res.json()) as { seq: number }[]).map((s) => s.seq);
}

const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

test('a batch whose savepoint fails is not served; sent again and stored, it is served once', async () => {
  expect(await send(t, gw, gw.sign(records('fill-1', 0, 100)))).toBe('acked');
  const db = t.server.database.sqlite;
  // the batch is stored, then its header's log entry fails: the savepoint rolls back
  db.exec("CREATE TRIGGER test_log_fails BEFORE INSERT ON log_entries BEGIN SELECT RAISE(ABORT, 'the log entry could not be written'); END");
  const second = gw.sign(records('fill-1', 100, 100));
  try {
    expect(await send(t, gw, second)).toMatch(/could not be written/);
    expect(await served()).toEqual(range(0, 100));
    expect((await t.fetch('/api/log/measurement/gw-a/150')).status).toBe(404);
  } finally {
    db.exec('DROP TRIGGER test_log_fails');
  }
  // the gateway sends it again: stored and served once
  expect(await send(t, gw, second)).toBe('acked');
  expect(await served()).toEqual(range(0, 200));
  // its proof once the next checkpoint is signed (at most a second later)
  let status = 0;
  for (let i = 0; i < 100 && status !== 200; i++) {
    status = (await t.fetch('/api/log/measurement/gw-a/150')).status;
    if (status !== 200) await new Promise((r) => setTimeout(r, 50));
  }
  expect(status).toBe(200);
});

test('a batch whose commit fails is not served; sent again and stored, it is served once', async () => {
  const db = t.server.database.sqlite;
  // every statement succeeds; the commit finds a deferred foreign key unmet and fails
  db.exec(`CREATE TABLE test_parent (id INTEGER PRIMARY KEY);
    CREATE TABLE test_child (parent INTEGER REFERENCES test_parent(id) DEFERRABLE INITIALLY DEFERRED);
    CREATE TRIGGER test_commit_fails AFTER INSERT ON batch_headers BEGIN INSERT INTO test_child VALUES (-1); END`);
  const third = gw.sign(records('fill-1', 200, 100));
  try {
    expect(await send(t, gw, third)).toMatch(/FOREIGN KEY/);
    expect(await served()).toEqual(range(0, 200));
    expect((await t.fetch('/api/log/measurement/gw-a/250')).status).toBe(404);
    // a read indexes what waits for the index: nothing of the refused batch
    expect(t.server.store.count()).toBe(200);
  } finally {
    db.exec('DROP TRIGGER test_commit_fails; DROP TABLE test_child; DROP TABLE test_parent');
  }
  expect(await send(t, gw, third)).toBe('acked');
  expect(await served()).toEqual(range(0, 300));
  expect(t.server.store.count()).toBe(300);
  const rows = db.prepare('SELECT seq, COUNT(*) AS n FROM measurements WHERE gateway = ? GROUP BY seq HAVING n > 1').all('gw-a');
  expect(rows).toEqual([]);
});
