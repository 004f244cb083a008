// A full disk during ingest, for real: the server process runs under a file size limit (RLIMIT_FSIZE, set
// with prlimit on the running process; Node ignores SIGXFSZ, so writes beyond it fail with EFBIG and SQLite
// reports the disk full or an I/O error) while an enrolled gateway sends its batches. During the fault the
// API serves nothing that is not stored, health says the store cannot write, and login answers 503. Once
// the limit is lifted the gateway's backlog arrives, and the accounting holds: every acknowledged batch is
// stored once, every stored record is in the per-sample index exactly once, and nothing else is there.
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import Database from 'better-sqlite3';
import { openBatch } from '@labtrace/protocols';
import { ADMIN_PASSWORD, audit, GATEWAY, Parts } from '../helpers/parts.js';

const run = promisify(execFile);

interface Health {
  status: string;
  store: { status: string; lastError: { code: string } | null };
  ingest: { refusedBatches: number; refusedByReason: Record<string, number> };
}

const parts = new Parts();

beforeAll(async () => {
  // no reserve: the limit must be met by a write (the reserve is tested in server/test/api/health.test.ts)
  await parts.setUp({ server: { store: { reserveBytes: 0, checkIntervalMs: 500 } } });
  await parts.start('gateway');
}, 120_000);
afterAll(async () => {
  await parts.tearDown();
}, 60_000);

const fileSize = (file: string): number => {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
};

async function health(): Promise<Health> {
  return (await (await fetch(`${parts.base}/api/health`)).json()) as Health;
}

/** (first seq, count) of the batches the gateway holds that the server has not stored */
function unstoredBatches(): { batch: number; firstSeq: number; count: number }[] {
  const outbox = new Database(parts.outboxDb, { readonly: true });
  const server = new Database(parts.serverDb, { readonly: true });
  try {
    const stored = server.prepare('SELECT 1 FROM batch_headers WHERE gateway = ? AND batch = ?');
    return (outbox.prepare('SELECT payload FROM batches ORDER BY batch').all() as { payload: Buffer | string }[])
      .filter((r) => typeof r.payload !== 'string')
      .map((r) => openBatch(r.payload as Buffer, { leaves: false }).signed.header)
      .filter((h) => stored.get(GATEWAY, h.batch) === undefined)
      .map((h) => ({ batch: h.batch, firstSeq: h.firstSeq, count: h.count }));
  } finally {
    outbox.close();
    server.close();
  }
}

/** Every (gateway, seq) /api/instruments/:id/history serves, for every channel of every instrument. */
async function servedSeqs(): Promise<number[]> {
  const instruments = await parts.getJson<{ id: string; channels: { name: string }[] }[]>('/api/instruments');
  const seqs: number[] = [];
  for (const i of instruments)
    for (const c of i.channels) {
      const samples = await parts.getJson<{ gateway: string; seq: number }[]>(
        `/api/instruments/${i.id}/history?channel=${c.name}&from=0&to=${Date.now() + 60_000}&limit=10000`,
      );
      seqs.push(...samples.filter((s) => s.gateway === GATEWAY).map((s) => s.seq));
    }
  return seqs;
}

test('disk full during ingest: nothing unstored is served, health and login say so, and the backlog arrives after', async () => {
  const pid = parts.procs.get('server')?.proc.pid;
  expect(pid).toBeDefined();
  await parts.waitFor('stored measurements', () => parts.stored() >= 100);
  // sign the admin in while the store can write (an API token for the reads below)
  await parts.getJson('/api/health');

  // nearly full: the server's files may grow a little more (some writes succeed, most fail, as on a disk that fills)
  const dbSize = Math.max(fileSize(parts.serverDb), fileSize(`${parts.serverDb}-wal`));
  await run('prlimit', ['--pid', String(pid), `--fsize=${dbSize + 65_536}:unlimited`]);
  try {
    await parts.waitFor(
      'health to say the store cannot write',
      async () => {
        const h = await health();
        return h.status === 'degraded' && h.store.status === 'cannot-write';
      },
      120_000,
    );
    // batches refused meanwhile are counted (a batch refused when its commit fails, resent and stored later,
    // was indexed twice before the index checked its backlog against the stored batches)
    // (a few: the server asks for refused batches again with a back-off, so a loaded machine refuses few a minute)
    await parts.waitFor(
      'batches refused for want of room',
      async () => ((await health()).ingest.refusedByReason['store-write-failed'] ?? 0) >= 3,
      180_000,
    );
    // full: no file of the server's may grow at all
    await run('prlimit', ['--pid', String(pid), '--fsize=0:unlimited']);
    // more than the gateway sends without an acknowledgement (its window, 32 batches): it then sends nothing new
    // that could reveal the store's recovery, and waits for the server (or its own resend timer)
    await parts.waitFor('the gateway to hold more than its window of unstored batches', () => unstoredBatches().length > 40, 120_000);
    const h = await health();
    expect(h.status).toBe('degraded');
    expect(h.store.status).toBe('cannot-write');

    // login: a clear 503 with a code, not a 500
    const login = await fetch(`${parts.base}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
    });
    expect(login.status).toBe(503);
    expect(await login.json()).toMatchObject({ code: 'E_STORE_UNAVAILABLE' });

    // nothing of a batch the server did not store is served
    const unstored = unstoredBatches();
    const refusedSeqs = new Set(unstored.flatMap((b) => Array.from({ length: b.count }, (_, i) => b.firstSeq + i)));
    const served = await servedSeqs();
    expect(served.filter((seq) => refusedSeqs.has(seq))).toEqual([]);
    expect(served.length).toBe(new Set(served).size);
    const first = unstored[0]!;
    expect((await parts.fetch(`/api/log/measurement/${GATEWAY}/${first.firstSeq}`)).status).toBe(404);
  } finally {
    await run('prlimit', ['--pid', String(pid), '--fsize=unlimited:unlimited']);
  }

  // space is back: the gateway's backlog arrives, and the accounting holds
  await parts.drained(120_000);
  await parts.waitFor('health ok', async () => (await health()).status === 'ok', 60_000);
  const storedRecords = (): number => {
    const db = new Database(parts.serverDb, { readonly: true });
    try {
      return (db.prepare('SELECT SUM(count) AS n FROM batch_headers WHERE gateway = ?').get(GATEWAY) as { n: number }).n;
    } finally {
      db.close();
    }
  };
  // the per-sample index follows the stored batches within a moment
  await parts.waitFor('the index to hold every stored record', () => parts.stored() >= storedRecords());
  const through = parts.ackedThrough();
  const result = audit(parts.serverDb, GATEWAY, through);
  expect(result.failures).toEqual([]);
  expect(result.missing).toEqual([]);
  const db = new Database(parts.serverDb, { readonly: true });
  try {
    // every record of the per-sample index once, and each in a stored batch; every stored record in the index
    expect(db.prepare('SELECT seq, COUNT(*) AS n FROM measurements WHERE gateway = ? GROUP BY seq HAVING n > 1').all(GATEWAY)).toEqual([]);
    const orphans = db
      .prepare(
        `SELECT COUNT(*) AS n FROM measurements m WHERE m.gateway = ? AND NOT EXISTS
           (SELECT 1 FROM batch_headers b WHERE b.gateway = m.gateway AND m.seq >= b.first_seq AND m.seq < b.first_seq + b.count)`,
      )
      .get(GATEWAY) as { n: number };
    expect(orphans.n).toBe(0);
    const { records, indexed } = db
      .prepare('SELECT SUM(count) AS records, (SELECT COUNT(*) FROM measurements WHERE gateway = ?) AS indexed FROM batch_headers WHERE gateway = ?')
      .get(GATEWAY, GATEWAY) as { records: number; indexed: number };
    expect(indexed).toBe(records);
  } finally {
    db.close();
  }
}, 600_000);
