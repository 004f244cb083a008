// The `cluster:` section of server.yaml: how a node of a lab's several (on one PostgreSQL store) is named and holds
// the leases of the jobs that run on one node at a time (leases.ts, jobs.ts).
import { hostname } from 'node:os';
import { z } from 'zod';

/** The `cluster:` section of server.yaml: this node's name and its leases (used on a PostgreSQL store). */
export const clusterSettingsSchema = z
  .strictObject({
    /** this node's name among the lab's nodes (recorded as a lease's holder); default: the host name and process id */
    node: z
      .string()
      .regex(/^[\w.:-]{1,64}$/, 'expected 1 to 64 letters, digits, _ . : or -')
      .optional(),
    leases: z
      .strictObject({
        /** how often a node checks the leases it holds and tries for those it wants */
        pollMs: z.number().int().min(50).max(60_000).default(1000),
        /**
         * how long a node may go without confirming its leases: PostgreSQL ends the lease session of a node that
         * stays silent longer (idle_session_timeout), so that another node takes its jobs over; a node that finds
         * itself silent longer takes its leases for lost
         */
        sessionTimeoutMs: z.number().int().min(500).max(3_600_000).default(10_000),
      })
      .refine((l) => l.sessionTimeoutMs >= 3 * l.pollMs, {
        message: 'sessionTimeoutMs must be at least 3 times pollMs (a node must confirm its leases several times before its session is ended)',
        path: ['sessionTimeoutMs'],
      })
      .prefault({}),
  })
  .prefault({});
export type ClusterSettings = z.output<typeof clusterSettingsSchema>;

/** the node's name: the configured one, else `<host name>-<pid>` cut to the allowed characters */
export function nodeName(config: ClusterSettings): string {
  return config.node ?? `${hostname()}-${process.pid}`.replace(/[^\w.:-]/g, '_').slice(0, 64);
}

/** the cluster's table, for Kysely (a type rather than an interface, so that `db.withTables<ClusterTables>()` takes it) */
