// The method form's checks (src/method-form.ts) against the contract's own schemas (protocols/src/api/methods.ts and
// inspection-rules.ts): for each form, the page accepts it exactly when the server's schema does, each problem the
// page finds lies on a path the server names too, and what the page sends is what the schema takes. The form's
// module is compiled from its source as the dashboard's build does (vite's transform), then loaded here.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { transformWithOxc } from 'vite';
import { methodInput, methodVersionInput, type Method } from '@labtrace/protocols/api';
import { REPO_ROOT } from '../../server/dist/test/helpers/lab-process.js';

/** the module's parts this test uses (its own types stay with the dashboard's build) */
interface RuleDraft {
  id: string;
  kind: string;
  severity: string;
  instrument: string;
  [field: string]: string | boolean;
}
interface Draft {
  id: string;
  standard: string;
  title: string;
  measurands: { name: string; unit: string; channel: string }[];
  instrumentTypes: string;
  limits: { measurand: string; min: string; max: string }[];
  decisionRule: string;
  guardBandFactor: string;
  results: {
    name: string;
    title: string;
    measurand: string;
    statistic: string;
    resolution: string;
    repeatability: string;
    min: string;
    max: string;
    kept: Record<string, unknown>;
  }[];
  rules: RuleDraft[];
  reason: string;
}
interface FormModule {
  emptyMethod(): Draft;
  emptyRule(kind: string, id?: string): RuleDraft;
  methodDraft(m: Method): Draft;
  methodBody(d: Draft, mode: 'create' | 'version'): { body?: Record<string, unknown>; problems: { path: string; key: string }[] };
  RULE_FIELDS: Record<string, readonly string[]>;
  SECONDS_FIELDS: Record<string, string | undefined>;
}
let form: FormModule;
let dir: string;

beforeAll(async () => {
  const file = path.join(REPO_ROOT, 'dashboard', 'src', 'method-form.ts');
  const { code } = await transformWithOxc(readFileSync(file, 'utf8'), file, { lang: 'ts' });
  dir = mkdtempSync(path.join(tmpdir(), 'labtrace-method-form-'));
  const out = path.join(dir, 'method-form.mjs');
  writeFileSync(out, code);
  form = (await import(pathToFileURL(out).href)) as FormModule;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** a complete, valid form: a tensile method with two rules and a result */
function valid(): Draft {
  const d = form.emptyMethod();
  Object.assign(d, { id: 'tensile', standard: 'GB/T 228.1-2021', title: '金属材料 拉伸试验', decisionRule: 'simple-acceptance' });
  d.measurands = [{ name: 'F', unit: 'kN', channel: 'force' }];
  d.limits = [{ measurand: 'F', min: '0', max: '100' }];
  d.results = [
    { name: 'Fm', title: '最大力', measurand: 'F', statistic: 'max', resolution: '0.01', repeatability: '', min: '40', max: '', kept: {} },
  ];
  const high = form.emptyRule('limits', 'force-high');
  Object.assign(high, { channel: 'force', high: '90', warnHigh: '80' });
  const jump = form.emptyRule('rate-of-change', 'force-jump');
  Object.assign(jump, { channel: 'force', maxPerSecond: '5', severity: 'warning' });
  d.rules = [high, jump];
  return d;
}

/** the forms to compare: each a change of the valid one */
const CASES: [string, (d: Draft) => void][] = [
  ['valid', () => undefined],
  ['no id', (d) => (d.id = '')],
  ['an id with a space', (d) => (d.id = 'a b')],
  ['a 65-character id', (d) => (d.id = 'x'.repeat(65))],
  ['no standard', (d) => (d.standard = '  ')],
  ['a 101-character standard', (d) => (d.standard = 's'.repeat(101))],
  ['a title with a control character', (d) => (d.title = 'bad\u0007')],
  ['no measurand (and so no limit or result)', (d) => Object.assign(d, { measurands: [], limits: [], results: [] })],
  ['a measurand twice', (d) => d.measurands.push({ name: 'F', unit: 'kN', channel: 'force2' })],
  ['a measurand without a unit (a count)', (d) => (d.measurands[0]!.unit = '')],
  ['a 33-character unit', (d) => (d.measurands[0]!.unit = 'u'.repeat(33))],
  ['a limit of an unknown measurand', (d) => (d.limits[0]!.measurand = 'G')],
  ['a limit without min or max', (d) => Object.assign(d.limits[0]!, { min: '', max: '' })],
  ['a limit min above max', (d) => Object.assign(d.limits[0]!, { min: '5', max: '1' })],
  ['a limit that is no number', (d) => (d.limits[0]!.max = 'ten')],
  ['guarded acceptance without its factor', (d) => (d.decisionRule = 'guarded-acceptance')],
  ['guarded acceptance with factor 11', (d) => Object.assign(d, { decisionRule: 'guarded-acceptance', guardBandFactor: '11' })],
  ['guarded acceptance with factor 2', (d) => Object.assign(d, { decisionRule: 'guarded-acceptance', guardBandFactor: '2' })],
  ['a result of an unknown measurand', (d) => (d.results[0]!.measurand = 'G')],
  ['a result with a negative resolution', (d) => (d.results[0]!.resolution = '-1')],
  ['a result with limits min above max', (d) => Object.assign(d.results[0]!, { min: '50', max: '10' })],
  ['a result without a title', (d) => (d.results[0]!.title = '')],
  ['a rule id used twice', (d) => (d.rules[1]!.id = 'force-high')],
  ['a rule id with a space', (d) => (d.rules[0]!.id = 'force high')],
  ['a warning level above the alarm level', (d) => (d.rules[0]!.warnHigh = '95')],
  ['a low limit above the high limit', (d) => (d.rules[0]!.low = '100')],
  ['a limits rule without any limit', (d) => Object.assign(d.rules[0]!, { high: '', warnHigh: '' })],
  ['a limits rule without a channel', (d) => (d.rules[0]!.channel = '')],
  ['a rate of 0 per second', (d) => (d.rules[1]!.maxPerSecond = '0')],
  ['a rate that is no number', (d) => (d.rules[1]!.maxPerSecond = '5 kN')],
  [
    'a stuck rule of 30 s',
    (d) => d.rules.push(Object.assign(form.emptyRule('stuck', 'stuck-1'), { channel: 'force', periodS: '30', epsilon: '0.01' })),
  ],
  ['a stuck rule without its period', (d) => d.rules.push(Object.assign(form.emptyRule('stuck', 'stuck-1'), { channel: 'force' }))],
  [
    'a stuck rule of 8 days',
    (d) => d.rules.push(Object.assign(form.emptyRule('stuck', 'stuck-1'), { channel: 'force', periodS: String(8 * 86_400) })),
  ],
  [
    'a drift rule',
    (d) =>
      d.rules.push(
        Object.assign(form.emptyRule('drift', 'drift-1'), { channel: 'force', reference: 'force-ref', maxDifference: '0.5', windowS: '60' }),
      ),
  ],
  [
    'a drift rule without its reference',
    (d) => d.rules.push(Object.assign(form.emptyRule('drift', 'drift-1'), { channel: 'force', maxDifference: '0.5', windowS: '60' })),
  ],
  ['a missing-data rule of 2.5 s', (d) => d.rules.push(Object.assign(form.emptyRule('missing-data', 'gap-1'), { channel: 'force', maxGapS: '2.5' }))],
  ['a quality rule on every channel', (d) => d.rules.push(Object.assign(form.emptyRule('quality', 'q-1'), { minimum: 'uncertain' }))],
  ['an instrument-status rule', (d) => d.rules.push(Object.assign(form.emptyRule('instrument-status', 'st-1'), { instrument: 'ut-1' }))],
  ['an instrument-status rule without its instrument', (d) => d.rules.push(form.emptyRule('instrument-status', 'st-1'))],
  [
    '65 rules',
    (d) => d.rules.push(...Array.from({ length: 63 }, (_, i) => Object.assign(form.emptyRule('limits', `r-${i}`), { channel: 'force', high: '1' }))),
  ],
];

describe('the method form checks what the contract checks', () => {
  test.each(CASES)('%s', (_name, change) => {
    const draft = valid();
    change(draft);
    for (const mode of ['create', 'version'] as const) {
      if (mode === 'version') draft.reason = 'limit corrected';
      const { body, problems } = form.methodBody(draft, mode);
      // what the server's schema says of the same form, sent as the page would send it (problems aside)
      const schema = mode === 'create' ? methodInput : methodVersionInput;
      const sent = body ?? sendAnyway(draft, mode);
      const parsed = schema.safeParse(sent);
      const serverPaths = parsed.success ? [] : parsed.error.issues.map((i) => pathText(i.path));
      expect({ mode, pageAccepts: problems.length === 0 }).toEqual({ mode, pageAccepts: parsed.success });
      // every problem the page finds is one the server names at the same field
      for (const p of problems)
        expect({
          mode,
          path: p.path,
          server: serverPaths.some((s) => s === p.path || s.startsWith(`${p.path}.`) || s.startsWith(`${p.path}[`)),
        }).toEqual({ mode, path: p.path, server: true });
      if (parsed.success) expect(parsed.data).toMatchObject(body as object);
    }
  });

  test('a version read back is the same form: version N as a draft sends version N again', () => {
    const { body } = form.methodBody(valid(), 'create');
    const method = { ...(methodInput.parse(body) as object), version: 1, createdBy: 'technician', createdAt: 0, accredited: false } as Method;
    const again = form.methodBody(form.methodDraft(method), 'create');
    expect(again.problems).toEqual([]);
    expect(methodInput.parse(again.body)).toEqual(methodInput.parse(body));
  });
});

/** the body the page would build without its checks: its checks turned off by building from the problems' draft */
function sendAnyway(draft: Draft, mode: 'create' | 'version'): unknown {
  // the page sends nothing when it finds a problem; the server is asked about the same fields as typed, numbers as
  // Number() reads them and empty fields left out
  const num = (s: string): number | undefined => (s.trim() === '' ? undefined : Number(s));
  const rule = (r: Draft['rules'][number]): Record<string, unknown> => {
    const out: Record<string, unknown> = { id: r.id.trim(), kind: r.kind, severity: r.severity };
    if (r.instrument.trim() !== '') out['instrument'] = r.instrument.trim();
    const fields = form.RULE_FIELDS[r.kind] ?? [];
    for (const f of fields) {
      const v = r[f] ?? '';
      if (f === 'warnSeverity') {
        if (v !== '') out[f] = v;
      } else if (f === 'minimum') out[f] = v;
      else if (f === 'channel' || f === 'reference' || f === 'referenceInstrument') {
        if (String(v).trim() !== '') out[f] = String(v).trim();
      } else {
        const n = num(String(v));
        const msField = form.SECONDS_FIELDS[f];
        if (n !== undefined) out[msField ?? f] = msField === undefined ? n : Math.round(n * 1000);
      }
    }
    return out;
  };
  return {
    ...(mode === 'create' ? { id: draft.id.trim() } : { reason: draft.reason }),
    standard: draft.standard,
    title: draft.title,
    definition: {
      measurands: draft.measurands.map((m) => ({ name: m.name, unit: m.unit, channel: m.channel })),
      instrumentTypes: draft.instrumentTypes.split('\n').filter((s) => s.trim() !== ''),
      limits: draft.limits.map((l) => ({ measurand: l.measurand, min: num(l.min), max: num(l.max) })),
      decisionRule:
        draft.decisionRule === 'guarded-acceptance'
          ? { kind: draft.decisionRule, guardBandFactor: num(draft.guardBandFactor) }
          : { kind: draft.decisionRule },
      results: draft.results.map((r) => ({
        name: r.name,
        title: r.title,
        measurand: r.measurand,
        statistic: r.statistic,
        resolution: num(r.resolution),
        repeatability: num(r.repeatability),
        ...(r.min === '' && r.max === '' ? {} : { limits: { min: num(r.min), max: num(r.max) } }),
      })),
      rules: draft.rules.map(rule),
    },
  };
}

const pathText = (p: PropertyKey[]): string =>
  p.reduce<string>((out, k) => (typeof k === 'number' ? `${out}[${k}]` : out === '' ? String(k) : `${out}.${String(k)}`), '');
