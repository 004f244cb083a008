// Turns a zod failure into one message per problem, each naming the path ("points[2].type: ...").
import type { z } from 'zod';
import { LabtraceError, type LabtraceErrorCode } from './errors.js';

/** one problem of an input: where, in English, and for a client to translate, zod's issue code and its parameters */
export interface Issue {
  path: string;
  message: string;
  /** zod's issue code: too_small, too_big, invalid_type, invalid_format, invalid_value, unrecognized_keys, custom, ... */
  code: string;
  /** what the code needs to be said in words: minimum, maximum, expected, format, values, keys, origin, ... */
  params?: Record<string, string | number | boolean>;
}

// never echoed: the value refused (it may be a password) and the nested failures of a union
const UNSAID = new Set(['code', 'path', 'message', 'input', 'errors', 'issues', 'inst', 'continue']);

/** The parameters of a zod issue as flat, translatable values (a list of values joined with ", "). */
export function issueParams(issue: z.core.$ZodIssue): Record<string, string | number | boolean> | undefined {
  const out: Record<string, string | number | boolean> = {};
  const fields = { ...(issue as unknown as Record<string, unknown>), ...((issue as { params?: Record<string, unknown> }).params ?? {}) };
  for (const [key, value] of Object.entries(fields)) {
    if (UNSAID.has(key) || key === 'params') continue;
    const flat = flatten(value);
    if (flat !== undefined) out[key] = flat;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

function flatten(value: unknown): string | number | boolean | undefined {
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof RegExp) return value.source;
  if (Array.isArray(value) && value.every((v) => ['string', 'number', 'boolean', 'bigint'].includes(typeof v) || v === null))
    return value.map((v) => String(v)).join(', ');
  return undefined;
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(root)' : out;
}

export function issuesOf(error: z.ZodError): Issue[] {
  return error.issues.map((issue) => {
    const params = issueParams(issue);
    return { path: formatPath(issue.path), message: issue.message, code: issue.code, ...(params === undefined ? {} : { params }) };
  });
}

/** Parses `input` with `schema`, or throws a LabtraceError whose message lists every problem, prefixed by `source`. */
export function parseWith<S extends z.ZodType>(schema: S, input: unknown, source: string, code: LabtraceErrorCode = 'E_CONFIG'): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues = issuesOf(result.error);
  const lines = issues.map((i) => `${source}: ${i.path}: ${i.message}`);
  throw new LabtraceError(code, lines.join('\n'), { details: issues });
}
