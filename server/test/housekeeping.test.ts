// The server's periodic chores fail one by one, each logged as what it is: a session table that cannot be
// pruned is logged as that, not as an unsigned checkpoint, and the log's checkpoints go on meanwhile.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import pino from 'pino';
import { startServer, type TestServer, waitFor } from './helpers/server.js';

interface Line {
  msg: string;
  task?: string;
  err?: string;
}
const lines: Line[] = [];
let t: TestServer;

beforeAll(async () => {
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Line) });
  t = await startServer({ log: { minCheckpointIntervalMs: 100 } }, logger);
});

afterAll(async () => {
  // the sessions table back, so that the server stops as it would
  const db = t.server.database.sqlite;
  if (db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'sessions_away'").get()) db.exec('ALTER TABLE sessions_away RENAME TO sessions');
  await t.stop();
});

const sizeOf = (note: string | undefined): number => Number(/\n(\d+)\n/.exec(note ?? '')?.[1] ?? -1);

test('pruning sessions fails: logged as such, never as an unsigned checkpoint; checkpoints go on', async () => {
  const db = t.server.database.sqlite;
  // a real failure of the prune's SQL: its table is not there
  db.exec('ALTER TABLE sessions RENAME TO sessions_away');
  await waitFor('the prune failure', () => lines.some((l) => l.msg === 'expired sessions could not be pruned'));
  expect(lines.find((l) => l.msg === 'expired sessions could not be pruned')).toMatchObject({
    task: 'session-prune',
    err: 'no such table: sessions',
  });

  // an audit entry made now is anchored in the log and covered by a new checkpoint while the prune keeps failing
  const log = t.server.log;
  if (!log) throw new Error('the log is open once the server started');
  await t.server.users.createOrganization({ username: 'test-setup', role: 'system' }, 'org-h', 'Client H');
  const entry = () => db.prepare("SELECT log_index FROM audit_trail WHERE record_id = 'org-h'").get() as { log_index: number | null };
  await waitFor('the entry anchored', () => entry().log_index !== null);
  await waitFor('a checkpoint covering it', () => sizeOf(log.latestCheckpoint()?.note) > (entry().log_index ?? Infinity));
  expect(lines.filter((l) => l.msg === 'expired sessions could not be pruned').length).toBeGreaterThan(1);
  expect(lines.filter((l) => /checkpoint could not be signed/.test(l.msg))).toEqual([]);
});
