// An audit entry's change, field by field: the recorded old and new values (JSON) compared path by path, so that an
// auditor reads "status: valid → revoked" instead of two JSON documents. Objects are walked to their leaves (a.b.c);
// arrays and scalars are compared whole. A value that is not an object (a state, a password-set marker) is one
// change with an empty field name.
export interface FieldChange {
  /** the dotted path of the field ('' for the value as a whole) */
  field: string;
  /** undefined: the field did not exist on that side */
  old: unknown;
  new: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

function walk(path: string, a: unknown, b: unknown, out: FieldChange[]): void {
  if (isObject(a) && isObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) walk(path === '' ? k : `${path}.${k}`, a[k], b[k], out);
    return;
  }
  if (isObject(a) && b === undefined) {
    for (const k of Object.keys(a).sort()) walk(path === '' ? k : `${path}.${k}`, a[k], undefined, out);
    return;
  }
  if (a === undefined && isObject(b)) {
    for (const k of Object.keys(b).sort()) walk(path === '' ? k : `${path}.${k}`, undefined, b[k], out);
    return;
  }
  if (!same(a, b)) out.push({ field: path, old: a, new: b });
}

/** The fields that differ between the recorded old and new values (null, as the trail answers "none", is no value). */
export function fieldChanges(oldValue: unknown, newValue: unknown): FieldChange[] {
  const out: FieldChange[] = [];
  walk('', oldValue === null ? undefined : oldValue, newValue === null ? undefined : newValue, out);
  return out;
}
