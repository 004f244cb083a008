// The dashboard calls the REST API only through the contract (@labtrace/protocols/api): no request path is written by
// hand in its sources, the built page knows every route of the contract by its method and path, and the contract's
// schemas (zod) stay out of the page (they reach the dashboard as types only).
import { describe, expect, test } from '@jest/globals';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { api } from '@labtrace/protocols/api';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const SRC = path.join(ROOT, 'src');
const ASSETS = path.join(ROOT, 'dist', 'assets');

function sources(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) sources(file, out);
    else if (/\.(ts|vue)$/.test(name)) out.push(file);
  }
  return out;
}

const bundle = () =>
  readdirSync(ASSETS)
    .filter((f) => f.endsWith('.js'))
    .map((f) => readFileSync(path.join(ASSETS, f), 'utf8'))
    .join('\n');

describe('the dashboard and the REST contract', () => {
  test('no source writes an API path by hand: every request names its route of the contract', () => {
    const written = [];
    // the supervisor's console (src/supervisor/) speaks to another process, the supervisor, whose API is not the lab's
    // REST contract: it is tested against a real supervisor (supervisor-console.test.ts)
    const SUPERVISOR = path.join(SRC, 'supervisor') + path.sep;
    for (const file of sources(SRC).filter((f) => !f.startsWith(SUPERVISOR))) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/['"`]\/api\/[^'"`]*['"`]?/g)) written.push(`${path.relative(SRC, file)}: ${m[0]}`);
    }
    expect(written).toEqual([]);
    // the check reads what it claims to: a path in a string is found
    expect("getJson('/api/runs')".match(/['"`]\/api\/[^'"`]*['"`]?/g)).toEqual(["'/api/runs'"]);
  });

  test('the built page holds every route of the contract by its method and path, and no zod', () => {
    const js = bundle();
    const missing = Object.entries(api)
      .filter(([, route]) => !js.includes(route.path))
      .map(([name, route]) => `${name} ${route.method} ${route.path}`);
    expect(missing).toEqual([]);
    // zod's schemas carry their internals in `_zod`; its errors are named ZodError
    expect(js.includes('_zod')).toBe(false);
    expect(js.includes('ZodError')).toBe(false);
  });
});
