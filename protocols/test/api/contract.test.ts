// The API contract as a browser bundles it: nothing it reaches imports a Node module; its helpers (paths, issues).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';
import { z } from 'zod';
import { issuesOf } from '../../src/index.js';
import { api, fillPath, isTimeZone, preferencesBody, REASONS, timeZoneSchema } from '../../src/api/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** the compiled contract: dist/test/api -> dist/src/api */
const entry = path.resolve(here, '../../src/api/index.js');

/** Every module the entry reaches through relative imports, and every bare specifier they import. */
function importsOf(file: string, seen = new Set<string>(), bare = new Set<string>()): { files: Set<string>; bare: Set<string> } {
  if (seen.has(file)) return { files: seen, bare };
  seen.add(file);
  const source = readFileSync(file, 'utf8');
  for (const m of source.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    const spec = m[1] ?? m[2] ?? '';
    if (spec.startsWith('.')) importsOf(path.resolve(path.dirname(file), spec), seen, bare);
    else bare.add(spec);
  }
  return { files: seen, bare };
}

test('the contract reaches no Node module: the dashboard bundles it', () => {
  const { files, bare } = importsOf(entry);
  expect(files.size).toBeGreaterThan(15);
  // zod, and nothing else from outside
  expect([...bare].sort()).toEqual(['zod']);
  for (const file of files) expect(path.relative(path.resolve(here, '../../src'), file)).not.toMatch(/^(node|influx)\//);
});

test('route names are unique per method and path, and paths are express paths', () => {
  const keys = Object.values(api).map((r) => `${r.method} ${r.path}`);
  expect(new Set(keys).size).toBe(keys.length);
  for (const r of Object.values(api)) expect(r.path).toMatch(/^\/(api|verify)\//);
  expect(REASONS.length).toBeGreaterThan(10);
});

test('fillPath percent-encodes each parameter and refuses a missing one', () => {
  expect(fillPath(api.acknowledgeAlarm.path, { id: 'r 1', alarmId: 'force-limits/utm-1/force#1' })).toBe(
    '/api/runs/r%201/alarms/force-limits%2Futm-1%2Fforce%231/acknowledge',
  );
  expect(() => fillPath(api.getRun.path, {})).toThrow(/parameter id is missing/);
});

describe('issues a client translates', () => {
  const issues = (schema: z.ZodType, input: unknown) => {
    const result = schema.safeParse(input);
    if (result.success) throw new Error('expected a failure');
    return issuesOf(result.error);
  };

  test('each issue carries zod code and its parameters, never the value refused', () => {
    const schema = z.strictObject({
      name: z.string().min(3),
      count: z.number().max(10),
      kind: z.enum(['a', 'b']),
      at: z.number(),
      mail: z.email(),
      password: z.string().min(12),
    });
    const found = issues(schema, { name: 'ab', count: 11, kind: 'c', at: 'noon', mail: 'x', password: 'secret-typed', extra: 1 });
    const byPath = Object.fromEntries(found.map((i) => [i.path, i]));
    expect(byPath['name']).toMatchObject({ code: 'too_small', params: { minimum: 3, origin: 'string', inclusive: true } });
    expect(byPath['count']).toMatchObject({ code: 'too_big', params: { maximum: 10, origin: 'number' } });
    expect(byPath['kind']).toMatchObject({ code: 'invalid_value', params: { values: 'a, b' } });
    expect(byPath['at']).toMatchObject({ code: 'invalid_type', params: { expected: 'number' } });
    expect(byPath['mail']).toMatchObject({ code: 'invalid_format', params: { format: 'email' } });
    expect(byPath['(root)']).toMatchObject({ code: 'unrecognized_keys', params: { keys: 'extra' } });
    expect(JSON.stringify(found)).not.toContain('secret-typed');
    for (const issue of found) expect(issue.message.length).toBeGreaterThan(0);
  });

  test('a time zone is checked with Intl and kept as Intl spells it', () => {
    expect(isTimeZone('Asia/Shanghai')).toBe(true);
    expect(isTimeZone('Mars/Olympus_Mons')).toBe(false);
    expect(timeZoneSchema.parse('europe/berlin')).toBe('Europe/Berlin');
    expect(preferencesBody.safeParse({}).success).toBe(false);
    expect(preferencesBody.parse({ locale: null })).toEqual({ locale: null });
  });
});
