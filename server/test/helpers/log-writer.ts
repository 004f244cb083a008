// A writer of the transparency log for the tests of the log store (test/log/log-store.test.ts): transactions that
// append 1 to 5 entries each, every fourth rolled back after its append, a checkpoint asked for every third. Run in
// the test's own process over a Kysely pool, or as a separate Node process:
//   node log-writer.js <database url> <writer id> <transactions>   (the log key in LABTRACE_TEST_LOG_KEY)
// which prints its result as one line of JSON; or, as a node that dies holding the log's lock,
//   node log-writer.js <database url> hold <entry as hex>
// which appends the entry in a transaction, prints {"held": <its index>} and waits, the transaction open, to be killed.
import { fileURLToPath } from 'node:url';
import type { Kysely } from 'kysely';
import { parseSignerKey } from '@labtrace/protocols';
import { useNodeCrypto } from '@labtrace/protocols/node';
import { LogStore } from '../../src/log/log-store.js';
import { openStore, parseDatabaseUrl } from '../../src/store/dialect.js';
import type { Tables } from '../../src/store/tables.js';

export const WRITER_ORIGIN = 'labtrace.example/lab-log-store';

export interface WriterResult {
  id: string;
  /** each committed append: the index of its first entry and its entries' bytes (hex) */
  committed: { first: number; data: string[] }[];
  /** the entries of the transactions rolled back after their append (hex) */
  rolledBack: string[];
  /** the checkpoints this writer signed */
  signed: number;
}

class RollBack extends Error {}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export async function runWriter(db: Kysely<Tables>, log: LogStore, id: string, transactions: number): Promise<WriterResult> {
  const result: WriterResult = { id, committed: [], rolledBack: [], signed: 0 };
  for (let t = 0; t < transactions; t++) {
    const data = Array.from({ length: 1 + (t % 5) }, (_, i) => Buffer.from(`${id}:${t}:${i}`));
    try {
      const first = await db.transaction().execute(async (trx) => {
        const first = await log.append(trx, 'batch-header', data, 1_000 + t);
        if (t % 4 === 3) throw new RollBack('the caller fails after the append');
        return first;
      });
      result.committed.push({ first, data: data.map(hex) });
    } catch (err) {
      if (!(err instanceof RollBack)) throw err;
      result.rolledBack.push(...data.map(hex));
    }
    if (t % 3 === 0 && (await log.maybeCheckpoint(2_000 + t))) result.signed++;
  }
  return result;
}

async function main(): Promise<void> {
  const [url, id, transactions] = process.argv.slice(2);
  const keyText = process.env['LABTRACE_TEST_LOG_KEY'];
  if (url === undefined || id === undefined || transactions === undefined || keyText === undefined)
    throw new Error('usage: log-writer.js <database url> <writer id> <transactions>, the key in LABTRACE_TEST_LOG_KEY');
  useNodeCrypto();
  const store = openStore(parseDatabaseUrl(url, 'url', process.cwd()), { poolSize: 3 });
  try {
    const log = new LogStore(store.db, { origin: WRITER_ORIGIN, signer: parseSignerKey(keyText), minCheckpointIntervalMs: 0 });
    await log.open();
    if (id === 'hold') {
      await store.db.transaction().execute(async (trx) => {
        const held = await log.append(trx, 'batch-header', [Buffer.from(transactions, 'hex')]);
        process.stdout.write(`${JSON.stringify({ held })}\n`);
        // the transaction stays open, holding the lock, until the process is killed
        await new Promise(() => setInterval(() => undefined, 60_000));
      });
      return;
    }
    // three writers over the process's pool at once
    const results = await Promise.all([0, 1, 2].map((n) => runWriter(store.db, log, `${id}.${n}`, Number(transactions))));
    process.stdout.write(`${JSON.stringify(results)}\n`);
  } finally {
    await store.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
