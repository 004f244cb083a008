// Text as the API takes it: well-formed Unicode (a lone UTF-16 surrogate cannot be stored, hashed or printed)
// without control characters (a line break only where the field is multiline). One schema for every text field.
// The server also checks the whole parsed body for what a field's schema does not cover (keys, free-form JSON).
import { z } from 'zod';

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
