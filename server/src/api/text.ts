// Text as the API takes it: well-formed Unicode (a lone UTF-16 surrogate cannot be stored, hashed or printed)
// without control characters (a line break only where the field is multiline). One schema for every text field,
// and a check of the whole parsed body for what a field's schema does not cover (keys, free-form JSON).
import type { RequestHandler } from 'express';
import { z } from 'zod';
import { formatPath, LabtraceError } from '@labtrace/protocols';

// C0 controls and DEL; a multiline field keeps tab, line feed and carriage return (matching them is the point)
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
// eslint-disable-next-line no-control-regex
const CONTROL_MULTILINE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

// a high surrogate not followed by a low one, or a low one not preceded by a high one (String.isWellFormed of ES2024)
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
export const isWellFormed = (s: string): boolean => !LONE_SURROGATE.test(s);

const codePoint = (c: string): string => `U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;

/** Why `s` is not text a field may hold, or undefined when it may. */
export function textProblem(s: string, multiline = false): string | undefined {
  if (!isWellFormed(s)) return 'contains a lone UTF-16 surrogate (not well-formed Unicode)';
  const control = (multiline ? CONTROL_MULTILINE : CONTROL).exec(s);
  if (control) return `contains the control character ${codePoint(control[0])}${multiline ? '' : ' (one line expected)'}`;
  return undefined;
}

/** `schema` with the checks of text: well-formed, no control characters (but tab and line breaks when multiline) */
export const wellFormed = <S extends z.ZodType<string>>(schema: S, multiline: boolean) =>
  schema.superRefine((s, ctx) => {
    const problem = textProblem(s, multiline);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  });

/** a required line of text: trimmed, 1..max characters, well-formed, no control characters */
export const line = (max: number) => wellFormed(z.string().trim().min(1, 'required').max(max, `at most ${max} characters`), false);
/** required text that may hold line breaks and tabs (descriptions, reasons) */
export const paragraph = (max: number) => wellFormed(z.string().trim().min(1, 'required').max(max, `at most ${max} characters`), true);
/** a line that may be empty (a unit, a filter): well-formed, no control characters */
export const optionalLine = (max: number) => wellFormed(z.string().max(max, `at most ${max} characters`), false);

/**
 * Refuses a JSON body holding a string or a key that is not well-formed Unicode, naming its path (400). Walks
 * without recursion: a body nested thousands deep must not overflow the stack.
 */
export function wellFormedBody(): RequestHandler {
  return (req, _res, next) => {
    const body: unknown = req.body;
    if (body === null || typeof body !== 'object') return next();
    // each item knows its parent, so that a path is built only for the one refused
    interface Item {
      value: unknown;
      key: string | number | undefined;
      parent: Item | undefined;
    }
    const pathOf = (item: Item): (string | number)[] => {
      const path: (string | number)[] = [];
      for (let i: Item | undefined = item; i?.key !== undefined; i = i.parent) path.push(i.key);
      return path.reverse();
    };
    const stack: Item[] = [{ value: body, key: undefined, parent: undefined }];
    for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
      const { value } = item;
      if (typeof value === 'string') {
        if (!isWellFormed(value))
          return next(
            new LabtraceError('E_BAD_REQUEST', `body: ${formatPath(pathOf(item))}: contains a lone UTF-16 surrogate (not well-formed Unicode)`),
          );
      } else if (Array.isArray(value)) {
        for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i] as unknown, key: i, parent: item });
      } else if (value !== null && typeof value === 'object') {
        for (const [key, v] of Object.entries(value).reverse()) {
          if (!isWellFormed(key))
            return next(
              new LabtraceError(
                'E_BAD_REQUEST',
                `body: ${formatPath(pathOf(item))}: a key contains a lone UTF-16 surrogate (not well-formed Unicode)`,
              ),
            );
          stack.push({ value: v, key, parent: item });
        }
      }
    }
    next();
  };
}
