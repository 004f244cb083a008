// The store knows none of the lab's modules: each module defines the migrations of its own tables, the server's
// composition (src/migrations.ts) lists them all, and the store runs the list it is given. Checked on the compiled
// JavaScript the server runs: its import graph, followed from a file through every relative import (static,
// re-exports and dynamic import()).
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';
import type { Migration } from 'kysely';
import { composeMigrations, MIGRATIONS_BY_MODULE, serverMigrations } from '../../src/migrations.js';

// this file runs as server/dist/test/store/module-boundaries.test.js: the compiled sources are server/dist/src
const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const FIXTURE = fileURLToPath(new URL('../../../test/store/fixtures/sqlite-schema.json', import.meta.url));

const IMPORT = /(?:^|[;}\n])\s*(?:import|export)\s+(?:[^'"`;]*?\s+from\s+)?['"]([^'"]+)['"]/g;
const DYNAMIC_IMPORT = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/** the specifiers a compiled module imports */
function specifiersOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(IMPORT), ...text.matchAll(DYNAMIC_IMPORT)].map((m) => m[1] ?? '');
}

interface Reach {
  /** every file reached from the entry, relative to the root, each with the chain of imports that reaches it */
  files: Map<string, string[]>;
  /** the packages imported on the way (bare specifiers: node:, npm packages, workspaces) */
  packages: Map<string, string[]>;
}

/** Follows the relative imports of `entry` (a path relative to `root`) through every file they reach. */
function reach(root: string, entry: string): Reach {
  const files = new Map<string, string[]>([[entry, [entry]]]);
  const packages = new Map<string, string[]>();
  const queue = [entry];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    const chain = files.get(next) ?? [];
    for (const spec of specifiersOf(path.join(root, next))) {
      if (!spec.startsWith('.')) {
        if (!packages.has(spec)) packages.set(spec, [...chain, spec]);
        continue;
      }
      const target = path
        .relative(root, path.resolve(path.dirname(path.join(root, next)), spec))
        .split(path.sep)
        .join('/');
      if (files.has(target)) continue;
      files.set(target, [...chain, target]);
      queue.push(target);
    }
  }
  return { files, packages };
}

/** What `entry` reaches outside the folders it may use, and the workspaces other than protocols: each as its chain. */
function violations(root: string, entry: string, allowedFolders: string[]): string[] {
  const { files, packages } = reach(root, entry);
  const out: string[] = [];
  for (const [file, chain] of files) if (!allowedFolders.some((folder) => file.startsWith(`${folder}/`))) out.push(chain.join(' -> '));
  for (const [spec, chain] of packages)
    if (spec.startsWith('@labtrace/') && spec !== '@labtrace/protocols' && !spec.startsWith('@labtrace/protocols/')) out.push(chain.join(' -> '));
  return out;
}

describe('the store imports none of the modules whose tables it keeps', () => {
  test('store/database.js reaches only store/ (and the protocols package)', () => {
    const { files, packages } = reach(SRC, 'store/database.js');
    // the walk follows imports (else this test would pass on nothing)
    expect(files.has('store/portable-ddl.js')).toBe(true);
    expect(packages.has('@labtrace/protocols')).toBe(true);
    expect(violations(SRC, 'store/database.js', ['store'])).toEqual([]);
  });

  test("each module's migrations reach nothing but their own folder and the store's portable DDL", () => {
    const found = readdirSync(SRC, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .filter((folder) => readdirSync(path.join(SRC, folder)).includes('migrations.js'))
      .sort();
    // every module that defines migrations is in the composition, under its folder's name
    expect(found).toEqual(Object.keys(MIGRATIONS_BY_MODULE).sort());
    for (const folder of found) expect(violations(SRC, `${folder}/migrations.js`, [folder, 'store'])).toEqual([]);
  });

  test('the walk finds a store that imports a lab module, directly, through a re-export or dynamically', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'labtrace-boundaries-'));
    const write = (file: string, text: string): void => {
      mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
      writeFileSync(path.join(root, file), text);
    };
    write('store/portable-ddl.js', "import { sql } from 'kysely';\nexport const ddl = sql;\n");
    write('lab/calibration.js', 'export const calibrationMigration = {};\n');
    write('lab/runs.js', "export { x } from './calibration.js';\n");
    write('store/database.js', "import { ddl } from './portable-ddl.js';\nimport {\n  calibrationMigration,\n} from '../lab/calibration.js';\n");
    expect(violations(root, 'store/database.js', ['store'])).toEqual(['store/database.js -> lab/calibration.js']);
    write('store/database.js', "export * from './series.js';\n");
    write('store/series.js', "export { x } from '../lab/runs.js';\n");
    expect(violations(root, 'store/database.js', ['store'])).toEqual([
      'store/database.js -> store/series.js -> lab/runs.js',
      'store/database.js -> store/series.js -> lab/runs.js -> lab/calibration.js',
    ]);
    write('store/database.js', "export async function load() { return import('../notify/outbox.js'); }\n");
    write('notify/outbox.js', "import '@labtrace/gateway';\n");
    expect(violations(root, 'store/database.js', ['store'])).toEqual([
      'store/database.js -> notify/outbox.js',
      'store/database.js -> notify/outbox.js -> @labtrace/gateway',
    ]);
  });
});

describe("the server's list of migrations", () => {
  const expected = (JSON.parse(readFileSync(FIXTURE, 'utf8')) as { migrations: string[] }).migrations;

  test("is every migration of the pinned schema, once each, in name order (the order the store's Migrator applies)", () => {
    const names = Object.keys(serverMigrations);
    expect(names).toEqual(expected);
    expect(names).toEqual([...names].sort());
    // no module's migration is lost or shadowed in the composition
    const byModule = Object.values(MIGRATIONS_BY_MODULE).flatMap((m) => Object.keys(m));
    expect(byModule.sort()).toEqual(expected);
    for (const [module, migrations] of Object.entries(MIGRATIONS_BY_MODULE))
      for (const [name, migration] of Object.entries(migrations)) {
        expect(typeof migration.up).toBe('function');
        expect({ module, name, same: serverMigrations[name] === migration }).toEqual({ module, name, same: true });
      }
  });

  test('a name defined by two modules is refused', () => {
    const up = (): Promise<void> => Promise.resolve();
    const one: Migration = { up };
    expect(() => composeMigrations({ lab: { '0011_lab_records': one }, certificates: { '0011_lab_records': { up } } })).toThrow(
      'migration 0011_lab_records is defined by both lab and certificates',
    );
    expect(Object.keys(composeMigrations({ b: { '0002_b': one }, a: { '0001_a': one, '0003_c': one } }))).toEqual(['0001_a', '0002_b', '0003_c']);
  });
});
