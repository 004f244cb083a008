// Rewrites src/store/tables.ts (the Kysely `Tables` type) from a freshly migrated SQLite store: run after adding a
// migration (`npm run tables -w @labtrace/server`, after `npx tsc -b`). The tests check the file against PostgreSQL too.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serverMigrations } from '../dist/src/migrations.js';
import { migrateStore } from '../dist/src/store/database.js';
import { openStore } from '../dist/src/store/dialect.js';
import { generateTables } from '../dist/src/store/tables-schema.js';

const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-tables-'));
const store = openStore({ dialect: 'sqlite', file: path.join(dir, 'labtrace.sqlite') });
try {
  await migrateStore(store.db, serverMigrations);
  const target = fileURLToPath(new URL('../src/store/tables.ts', import.meta.url));
  writeFileSync(target, await generateTables(store.db));
  console.log(`wrote ${path.relative(process.cwd(), target)}`);
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
