// Turns a zod failure into one message per problem, each naming the path ("points[2].type: ...").
import type { z } from 'zod';
import { LabtraceError, type LabtraceErrorCode } from './errors.js';

export interface Issue {
  path: string;
  message: string;
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
  return error.issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message }));
}

/** Parses `input` with `schema`, or throws a LabtraceError whose message lists every problem, prefixed by `source`. */
export function parseWith<S extends z.ZodType>(schema: S, input: unknown, source: string, code: LabtraceErrorCode = 'E_CONFIG'): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues = issuesOf(result.error);
  const lines = issues.map((i) => `${source}: ${i.path}: ${i.message}`);
  throw new LabtraceError(code, lines.join('\n'), { details: issues });
}
