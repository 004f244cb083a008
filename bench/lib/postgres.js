// PostgreSQL as the benches see it: the CPU of a test cluster (its postmaster and every backend), and the samples a
// store holds (each once).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { cpuTicks, processTable } from './proc.js';

/** every process of the cluster in `dir` (server/test/helpers/postgres.js): the postmaster and its children */
export function postgresPids(dir) {
  const postmaster = Number(readFileSync(path.join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  return [
    postmaster,
    ...processTable()
      .filter((p) => p.ppid === postmaster)
      .map((p) => p.pid),
  ];
}

/** the CPU ticks the cluster's processes have used (those alive now) */
export const postgresTicks = (dir) => postgresPids(dir).reduce((sum, pid) => sum + (cpuTicks(pid) ?? 0), 0);

/** the rows of the per-sample index, and how many (gateway, seq) pairs are there more than once */
export async function storedSamples(url) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query(
      'SELECT (SELECT COUNT(*) FROM samples) AS samples, (SELECT COUNT(*) FROM (SELECT gateway, seq FROM samples GROUP BY 1, 2 HAVING COUNT(*) > 1) d) AS doubled',
    );
    return { samples: Number(rows[0].samples), doubled: Number(rows[0].doubled) };
  } finally {
    await client.end();
  }
}
