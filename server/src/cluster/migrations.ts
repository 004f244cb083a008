// The cluster's tables (owned by cluster/, touched by no other module): one row per lease, whose epoch fences the
// writes of the job that holds it (leases.ts says why an epoch and not only the advisory lock), and the positions of
// the jobs that read a stream (positions.ts).
import type { Kysely, Migration } from 'kysely';
import { ddl } from '../store/portable-ddl.js';

const clusterLeasesMigration: Migration = {
  async up(db: Kysely<unknown>) {
    // holder: the node that last acquired the lease; epoch: how many times it was acquired, on any node (each
    // acquisition adds one); acquired_at: ms since the epoch. A row is never deleted: the epoch only grows.
    await ddl(db, `CREATE TABLE cluster_leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, epoch INTEGER NOT NULL, acquired_at INTEGER NOT NULL)`);
  },
};

const jobPositionsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    // how far a job that reads a stream (the run inspection reads the stored batches in log order) got, as the last
    // item whose consequences are committed: written in the job's fenced transactions, with `epoch` the lease epoch
    // that wrote it, so that the node that takes the job over resumes right after it (positions.ts)
    await ddl(db, `CREATE TABLE job_positions (name TEXT PRIMARY KEY, position INTEGER NOT NULL, epoch INTEGER NOT NULL)`);
  },
};

export const clusterMigrations: Record<string, Migration> = {
  // leases of the jobs that must run on one node at a time, and their fencing epochs
  '0041_cluster_leases': clusterLeasesMigration,
  // where a job that reads a stream resumes when another node takes it over
  '0065_job_positions': jobPositionsMigration,
};
