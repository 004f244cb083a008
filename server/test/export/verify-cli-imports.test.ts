// `labtrace verify` is a one-off process, and the time it takes to load is part of the client's wait (issue 19's
// floor is the whole check under a second): it loads the verifier's own entry points, not the server's libraries nor
// the protocols package's whole index (its schemas and logging). Checked on the compiled JavaScript the command
// runs: the import graph followed from the command's module through every relative import and every module of the
// labtrace workspaces (static, re-exports and dynamic import()), with the npm packages it reaches on the way.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';

const IMPORT = /(?:^|[;}\n])\s*(?:import|export)\s+(?:[^'"`;]*?\s+from\s+)?['"]([^'"]+)['"]/g;
const DYNAMIC_IMPORT = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/** the npm packages (by name) a module reaches, each with the chain of files that reaches it */
function packagesReached(entry: string): { files: Set<string>; packages: Map<string, string[]> } {
  const files = new Map<string, string[]>([[entry, [entry]]]);
  const packages = new Map<string, string[]>();
  const queue = [entry];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    const chain = files.get(file) ?? [];
    const text = readFileSync(file, 'utf8');
    for (const m of [...text.matchAll(IMPORT), ...text.matchAll(DYNAMIC_IMPORT)]) {
      const spec = m[1] ?? '';
      if (spec.startsWith('node:')) continue;
      let target: string;
      if (spec.startsWith('.')) target = path.resolve(path.dirname(file), spec);
      else if (spec.startsWith('@labtrace/')) target = createRequire(file).resolve(spec);
      else {
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] ?? spec);
        if (!packages.has(name)) packages.set(name, [...chain, spec]);
        continue;
      }
      if (files.has(target)) continue;
      files.set(target, [...chain, target]);
      queue.push(target);
    }
  }
  return { files: new Set(files.keys()), packages };
}

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const HEAVY = ['zod', 'pino', 'pino-pretty', 'prom-client', 'kysely', 'better-sqlite3', 'pg', 'express', 'yaml'];

describe('labtrace verify loads what it runs', () => {
  test('from export/verify-cli.js: the verifier and Node crypto, none of the server libraries or schemas', () => {
    const { files, packages } = packagesReached(path.join(SRC, 'export/verify-cli.js'));
    // the walk goes through the workspaces (else this test would pass on nothing)
    expect([...files].some((f) => f.endsWith(path.join('verify', 'checks', 'disclosure.js')))).toBe(true);
    expect([...files].some((f) => f.endsWith(path.join('node', 'parallel-ed25519.js')))).toBe(true);
    const heavy = [...packages].filter(([name]) => HEAVY.includes(name)).map(([, chain]) => chain.join(' -> '));
    expect(heavy).toEqual([]);
    // nor the package's whole index, which brings the schemas of everything else
    expect([...files].filter((f) => /protocols[\\/]dist[\\/]src[\\/]index\.js$/.test(f))).toEqual([]);
  });

  test('the walk sees a heavy package where one is imported (the server command)', () => {
    const { packages } = packagesReached(path.join(SRC, 'cli.js'));
    expect(packages.has('zod')).toBe(true);
    expect(packages.has('pino')).toBe(true);
  });
});
