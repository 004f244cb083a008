// The `cluster:` section of server.yaml: how a node of a lab's several (on one PostgreSQL store) is named and holds
// the leases of the jobs that run on one node at a time (leases.ts, jobs.ts).
import { hostname } from 'node:os';
import { z } from 'zod';

/**
 * What a node of the lab does (`cluster.roles`), each a set of the server's parts (server.ts):
 * - `api`: the REST API, the dashboard and its live updates (socket.io); a node without it answers only /api/health;
 * - `ingest`: takes the gateways' batches and result files from the broker, verifies, stores and acknowledges them;
 * - `jobs`: the work of one node at a time (leases: the run inspection, the InfluxDB copy, the demo, the calibration
 *   reminders) and the lab's housekeeping (the log's checkpoints, the audit trail's anchors, key events, sessions).
 */
export const NODE_ROLES = ['api', 'ingest', 'jobs'] as const;
export type NodeRole = (typeof NODE_ROLES)[number];

/** The `cluster:` section of server.yaml: this node's name, its roles and its leases (used on a PostgreSQL store). */
export const clusterSettingsSchema = z
  .strictObject({
    /**
     * what this node does (default: all of it). Every lab needs, among its nodes, each role at least once; a subset
     * needs the PostgreSQL store, and a node without `ingest` needs the external broker (gateways connect to every
     * node of the embedded one, so each of those nodes ingests)
     */
    roles: z
      .array(z.enum(NODE_ROLES))
      .min(1, 'a node needs at least one role')
      .refine((roles) => new Set(roles).size === roles.length, { message: 'a role is listed twice' })
      .default([...NODE_ROLES]),
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
