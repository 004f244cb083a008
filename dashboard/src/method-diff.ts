// What changed between two versions of a method, as a reader wants it: by part (the standard, the title, each
// measurand, limit, result and inspection rule by its name or id) whether it was added, removed or changed, and for
// a change each field from its old value to its new one. Versions are never changed in place; this compares two.
import type { Method } from '@labtrace/protocols/api';

export type ChangePart = 'standard' | 'title' | 'measurand' | 'instrumentTypes' | 'limit' | 'decisionRule' | 'result' | 'rule';

export interface FieldChange {
  /** the field's name as the contract spells it (`high`, `limits.max`, `window`) */
  field: string;
  /** the value before and after, as text ('' when the field was not set) */
  before: string;
  after: string;
}

export interface MethodChange {
  part: ChangePart;
  /** the measurand's, limit's, result's or rule's name or id ('' for the standard, title, decision rule) */
  key: string;
  change: 'added' | 'removed' | 'changed';
  /** for a change, the fields that differ; for an addition or removal, the fields it has */
  fields: FieldChange[];
}

const show = (v: unknown): string =>
  v === undefined || v === null ? '' : typeof v === 'string' ? v : typeof v === 'number' ? String(v) : JSON.stringify(v);

/** an object's fields one level down, nested objects named by their path (`limits.max`) */
function flat(value: Record<string, unknown>, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    const name = prefix === '' ? k : `${prefix}.${k}`;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) Object.assign(out, flat(v as Record<string, unknown>, name));
    else out[name] = show(v);
  }
  return out;
}

function fieldChanges(before: Record<string, unknown> | undefined, after: Record<string, unknown> | undefined, skip: string): FieldChange[] {
  const a = before === undefined ? {} : flat(before);
  const b = after === undefined ? {} : flat(after);
  // a rule's kind first: it says what the other fields mean
  const names = [...new Set([...Object.keys(a), ...Object.keys(b)])]
    .filter((n) => n !== skip)
    .sort((x, y) => (x === 'kind' ? -1 : y === 'kind' ? 1 : 0));
  return names.filter((n) => (a[n] ?? '') !== (b[n] ?? '')).map((n) => ({ field: n, before: a[n] ?? '', after: b[n] ?? '' }));
}

/** items of a list keyed by `key`, compared by key: added, removed, changed (in the newer version's order) */
function keyed<T extends object>(part: ChangePart, before: readonly T[], after: readonly T[], key: keyof T & string): MethodChange[] {
  const rec = (x: T): Record<string, unknown> => x as Record<string, unknown>;
  const old = new Map(before.map((x) => [show(rec(x)[key]), x]));
  const now = new Map(after.map((x) => [show(rec(x)[key]), x]));
  const out: MethodChange[] = [];
  for (const [k, x] of now) {
    const was = old.get(k);
    if (was === undefined) out.push({ part, key: k, change: 'added', fields: fieldChanges(undefined, rec(x), key) });
    else {
      const fields = fieldChanges(rec(was), rec(x), key);
      if (fields.length > 0) out.push({ part, key: k, change: 'changed', fields });
    }
  }
  for (const [k, x] of old) if (!now.has(k)) out.push({ part, key: k, change: 'removed', fields: fieldChanges(rec(x), undefined, key) });
  return out;
}

/** Every change from `before` to `after` (two versions of one method). */
export function methodChanges(before: Method, after: Method): MethodChange[] {
  const out: MethodChange[] = [];
  for (const part of ['standard', 'title'] as const)
    if (before[part] !== after[part])
      out.push({ part, key: '', change: 'changed', fields: [{ field: part, before: before[part], after: after[part] }] });
  const a = before.definition;
  const b = after.definition;
  out.push(...keyed('measurand', a.measurands, b.measurands, 'name'));
  const types = (list: string[]): string => list.join(', ');
  if (types(a.instrumentTypes) !== types(b.instrumentTypes))
    out.push({
      part: 'instrumentTypes',
      key: '',
      change: 'changed',
      fields: [{ field: 'instrumentTypes', before: types(a.instrumentTypes), after: types(b.instrumentTypes) }],
    });
  out.push(...keyed('limit', a.limits, b.limits, 'measurand'));
  const rule = fieldChanges(a.decisionRule, b.decisionRule, '');
  if (rule.length > 0) out.push({ part: 'decisionRule', key: '', change: 'changed', fields: rule });
  out.push(...keyed('result', a.results, b.results, 'name'));
  out.push(...keyed('rule', a.rules ?? [], b.rules ?? [], 'id'));
  return out;
}
