// The server's schema: every module's migrations in one list, in name order, the order the store applies them in.
// Each module defines the migrations of its own tables (<module>/migrations.ts); the store (store/database.ts) runs
// the list it is given and imports none of the modules. A migration's name is what a store records once it applied
// it: names never change, and each is defined once (composeMigrations refuses a name given twice).
import type { Migration } from 'kysely';
import { LabtraceError } from '@labtrace/protocols';
import { authMigrations } from './auth/migrations.js';
import { certificateMigrations } from './certificates/migrations.js';
import { clusterMigrations } from './cluster/migrations.js';
import { fileMigrations } from './files/migrations.js';
import { inspectionMigrations } from './inspection/migrations.js';
import { labMigrations } from './lab/migrations.js';
import { logMigrations } from './log/migrations.js';
import { notifyMigrations } from './notify/migrations.js';
import { storeMigrations } from './store/migrations.js';
import { trustMigrations } from './trust/migrations.js';
import type { Migrations } from './store/database.js';

/** Joins modules' migrations into one list in name order; a name given by two modules is an error. */
export function composeMigrations(modules: Readonly<Record<string, Migrations>>): Migrations {
  const all = new Map<string, { module: string; migration: Migration }>();
  for (const [module, migrations] of Object.entries(modules))
    for (const [name, migration] of Object.entries(migrations)) {
      const other = all.get(name);
      if (other !== undefined) throw new LabtraceError('E_STORE', `migration ${name} is defined by both ${other.module} and ${module}`);
      all.set(name, { module, migration });
    }
  const ordered = [...all.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.freeze(Object.fromEntries(ordered.map(([name, { migration }]) => [name, migration])));
}

/** Which module defines each migration (the store's own first). */
export const MIGRATIONS_BY_MODULE: Readonly<Record<string, Migrations>> = {
  store: storeMigrations,
  log: logMigrations,
  trust: trustMigrations,
  auth: authMigrations,
  lab: labMigrations,
  inspection: inspectionMigrations,
  certificates: certificateMigrations,
  notify: notifyMigrations,
  cluster: clusterMigrations,
  files: fileMigrations,
};

/** Every migration of the server, in the order a store applies them. */
export const serverMigrations: Migrations = composeMigrations(MIGRATIONS_BY_MODULE);
