// One node of a lab for the lease tests, run as its own process: it competes for the lease of the job "ticks" through
// the cluster module on a real PostgreSQL, and, while it holds it, the job appends one tick after another in
// fenced writes (each tick: the next number, the node and the epoch that wrote it). Every event is one JSON line
// on stdout. SIGTERM stops the runner (the graceful stop: jobs end, leases are given back) and keeps the process
// alive, with its store connections open, until SIGINT.
import { sql } from 'kysely';
import { LabtraceError, parseWith } from '@labtrace/protocols';
import { JobRunner } from '../../src/cluster/jobs.js';
import { clusterSettingsSchema, nodeName, PostgresLeases, type ClusterTables } from '../../src/cluster/leases.js';
import { openStore, parseDatabaseUrl } from '../../src/store/dialect.js';

type TickTables = ClusterTables & { ticks: { tick: number; node: string; epoch: number } };

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set`);
  return value;
};
const node = env('LEASE_NODE');
const target = parseDatabaseUrl(env('LEASE_DATABASE_URL'), 'LEASE_DATABASE_URL', process.cwd());
if (target.dialect !== 'postgres') throw new Error('a PostgreSQL URL is expected');
const connection = { host: target.host, port: target.port, user: target.user, database: target.database };

const print = (event: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify({ node, pid: process.pid, ...event })}\n`);
};

// the store, opened as the server opens it (the test's database ends a session left idle in a transaction)
const store = openStore(target);
const db = store.db.withTables<TickTables>();

// the settings as the server will read them (refused with the field named when they make no sense)
const settings = parseWith(
  clusterSettingsSchema,
  { node, leases: { pollMs: Number(env('LEASE_POLL_MS')), sessionTimeoutMs: Number(env('LEASE_SESSION_MS')) } },
  'lease node',
);
const leases = new PostgresLeases({ db, connection, node: nodeName(settings), ...settings.leases });
leases.on('acquired', (lease) => print({ event: 'acquired', epoch: lease.epoch }));
leases.on('lost', (lease, reason) => print({ event: 'lost', epoch: lease.epoch, reason }));
leases.on('released', (lease) => print({ event: 'released', epoch: lease.epoch }));
leases.on('connectionError', (err) => print({ event: 'connectionError', message: err.message }));

const runner = new JobRunner(leases);
runner.on('started', (_name, lease) => print({ event: 'started', epoch: lease.epoch }));
runner.on('ended', (_name, lease, end) => print({ event: 'ended', epoch: lease.epoch, end }));
runner.on('failed', (_name, lease, err) => print({ event: 'failed', epoch: lease.epoch, message: String(err) }));

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

runner.runOnce('ticks', async ({ lease, signal, fenced }) => {
  while (!signal.aborted) {
    // the work before the write; a node stalled here goes on to its write when it wakes, as a real job would
    await sleep(40);
    for (let attempt = 0; ; attempt++) {
      try {
        const tick = await fenced(async (trx) => {
          const last = await trx
            .selectFrom('ticks')
            .select(sql<string | null>`max(tick)`.as('last'))
            .executeTakeFirst();
          const next = Number(last?.last ?? 0) + 1;
          await trx.insertInto('ticks').values({ tick: next, node, epoch: lease.epoch }).execute();
          return next;
        });
        print({ event: 'tick', epoch: lease.epoch, tick });
        break;
      } catch (err) {
        if (err instanceof LabtraceError && err.code === 'E_LEASE_LOST') {
          print({ event: 'refused', epoch: lease.epoch, current: (err.details as { current: number | null }).current });
          return;
        }
        // the connection of a transaction the server ended: the same write again, on another connection
        print({ event: 'writeError', epoch: lease.epoch, message: (err as Error).message });
        if (attempt >= 5) throw err;
        await sleep(100);
      }
    }
  }
});

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  runner
    .stop()
    .then(() => print({ event: 'drained' }))
    .catch((err: unknown) => print({ event: 'stopError', message: String(err) }));
});
process.on('SIGINT', () => {
  void runner
    .stop()
    .then(() => store.close())
    .finally(() => process.exit(0));
});

await runner.start();
print({ event: 'ready' });
