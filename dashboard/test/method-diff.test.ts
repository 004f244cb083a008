// What the method page says changed between two versions (src/method-diff.ts): each part by its name or id, added,
// removed or changed, and for a change only the fields that differ, from the old value to the new. The module is
// compiled from its source as the dashboard's build does (vite's transform), then loaded here.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { transformWithOxc } from 'vite';
import { methodDefinition, type Method } from '@labtrace/protocols/api';
import { REPO_ROOT } from '../../server/dist/test/helpers/lab-process.js';

interface Change {
  part: string;
  key: string;
  change: 'added' | 'removed' | 'changed';
  fields: { field: string; before: string; after: string }[];
}
let methodChanges: (before: Method, after: Method) => Change[];
let dir: string;

beforeAll(async () => {
  const file = path.join(REPO_ROOT, 'dashboard', 'src', 'method-diff.ts');
  const { code } = await transformWithOxc(readFileSync(file, 'utf8'), file, { lang: 'ts' });
  dir = mkdtempSync(path.join(tmpdir(), 'labtrace-method-diff-'));
  writeFileSync(path.join(dir, 'method-diff.mjs'), code);
  ({ methodChanges } = (await import(pathToFileURL(path.join(dir, 'method-diff.mjs')).href)) as { methodChanges: typeof methodChanges });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** a version as the server answers it (the definition parsed by the contract: defaults filled in) */
function version(n: number, standard: string, definition: unknown): Method {
  return {
    id: 'tensile',
    version: n,
    standard,
    title: 'Tensile',
    definition: methodDefinition.parse(definition),
    createdBy: 'technician',
    createdAt: n,
    accredited: false,
  };
}
const base = {
  measurands: [{ name: 'F', unit: 'kN', channel: 'force' }],
  limits: [{ measurand: 'F', min: 0, max: 100 }],
  decisionRule: { kind: 'simple-acceptance' },
  results: [{ name: 'Fm', title: 'Maximum force', measurand: 'F', statistic: 'max', limits: { min: 40 } }],
  rules: [
    { id: 'force-high', kind: 'limits', severity: 'alarm', channel: 'force', high: 90, warnHigh: 80 },
    { id: 'force-jump', kind: 'rate-of-change', severity: 'warning', channel: 'force', maxPerSecond: 5 },
  ],
};

describe('what changed between two versions', () => {
  test('the same content: nothing', () => {
    expect(methodChanges(version(1, 'GB/T 228.1-2021', base), version(2, 'GB/T 228.1-2021', base))).toEqual([]);
  });

  test('one limit of one rule: that rule, that field, from 90 to 85', () => {
    const after = { ...base, rules: [{ ...base.rules[0], high: 85 }, base.rules[1]] };
    expect(methodChanges(version(1, 'X', base), version(2, 'X', after))).toEqual([
      { part: 'rule', key: 'force-high', change: 'changed', fields: [{ field: 'high', before: '90', after: '85' }] },
    ]);
  });

  test('a rule removed, another added, a field left out, the standard and the decision rule changed, a result limit added', () => {
    const after = {
      ...base,
      decisionRule: { kind: 'guarded-acceptance', guardBandFactor: 1 },
      results: [{ ...base.results[0], limits: { min: 40, max: 60 } }],
      rules: [
        { id: 'force-high', kind: 'limits', severity: 'critical', channel: 'force', high: 90 },
        { id: 'no-data', kind: 'missing-data', severity: 'alarm', channel: 'force', maxGapMs: 2000 },
      ],
    };
    const changes = methodChanges(version(1, 'GB/T 228.1-2010', base), version(2, 'GB/T 228.1-2021', after));
    expect(changes).toEqual([
      { part: 'standard', key: '', change: 'changed', fields: [{ field: 'standard', before: 'GB/T 228.1-2010', after: 'GB/T 228.1-2021' }] },
      {
        part: 'decisionRule',
        key: '',
        change: 'changed',
        fields: [
          { field: 'kind', before: 'simple-acceptance', after: 'guarded-acceptance' },
          { field: 'guardBandFactor', before: '', after: '1' },
        ],
      },
      { part: 'result', key: 'Fm', change: 'changed', fields: [{ field: 'limits.max', before: '', after: '60' }] },
      {
        part: 'rule',
        key: 'force-high',
        change: 'changed',
        fields: [
          { field: 'severity', before: 'alarm', after: 'critical' },
          { field: 'warnHigh', before: '80', after: '' },
        ],
      },
      {
        part: 'rule',
        key: 'no-data',
        change: 'added',
        fields: [
          { field: 'kind', before: '', after: 'missing-data' },
          { field: 'severity', before: '', after: 'alarm' },
          { field: 'channel', before: '', after: 'force' },
          { field: 'maxGapMs', before: '', after: '2000' },
        ],
      },
      {
        part: 'rule',
        key: 'force-jump',
        change: 'removed',
        fields: [
          { field: 'kind', before: 'rate-of-change', after: '' },
          { field: 'severity', before: 'warning', after: '' },
          { field: 'channel', before: 'force', after: '' },
          { field: 'maxPerSecond', before: '5', after: '' },
        ],
      },
    ]);
  });

  test('a measurand added with its limit, and the instrument types', () => {
    const after = {
      ...base,
      measurands: [...base.measurands, { name: 'e', unit: 'mm', channel: 'extension' }],
      limits: [...base.limits, { measurand: 'e', max: 20 }],
      instrumentTypes: ['universal testing machine'],
    };
    const changes = methodChanges(version(1, 'X', base), version(2, 'X', after));
    expect(changes.map((c) => [c.part, c.key, c.change])).toEqual([
      ['measurand', 'e', 'added'],
      ['instrumentTypes', '', 'changed'],
      ['limit', 'e', 'added'],
    ]);
    expect(changes[1]?.fields).toEqual([{ field: 'instrumentTypes', before: '', after: 'universal testing machine' }]);
  });
});
