// SCPI replies, read strictly: the identity of `*IDN?` (IEEE 488.2, 10.14: four fields separated by commas:
// manufacturer, model, serial number, firmware), a numeric response (IEEE 488.2 NR1, NR2, NR3: `+1.23456789E+00`),
// and an entry of the error queue (`SYST:ERR?`, SCPI-99 21.8: `<code>,"<text>"`, `0,"No error"` when it is empty).
// SCPI-99 (7.2.1) gives 9.9E37 for a value too large to measure (overload) and 9.91E37 for not-a-number.
// A reply that is none of these is refused with the reason, never guessed at.
import { LabtraceError } from '../errors.js';

export interface ScpiIdentity {
  manufacturer: string;
  model: string;
  serialNumber: string;
  firmware: string;
}

export type ScpiValue =
  | { kind: 'number'; value: number }
  /** 9.9E37 (or -9.9E37): the input is beyond the range */
  | { kind: 'overload'; text: string }
  /** 9.91E37: no value (a math error, a function without a result) */
  | { kind: 'nan'; text: string };

export interface ScpiError {
  code: number;
  message: string;
}

const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

function shown(line: string): string {
  return JSON.stringify(line.length > 60 ? `${line.slice(0, 60)}…` : line);
}

function refuse(what: string, line: string, reason: string): never {
  throw new LabtraceError('E_CODEC', `${what} ${shown(line)}: ${reason}`);
}

/** a control character (other than the line end's): noise, or bytes of another protocol */
export function hasControlCharacters(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c >= 0x7f) return true;
  }
  return false;
}

function bare(line: string): string {
  return line.replace(/\r?\n$|\r$/, '');
}

/** The `*IDN?` reply; throws E_CODEC when it is not four comma-separated fields. */
export function parseScpiIdn(line: string): ScpiIdentity {
  const text = bare(line);
  if (hasControlCharacters(text)) refuse('*IDN? reply', line, 'control characters in the line');
  const fields = text.split(',').map((f) => f.trim());
  if (fields.length !== 4) refuse('*IDN? reply', line, `${fields.length} field(s): an identity has four (manufacturer,model,serial,firmware)`);
  const [manufacturer, model, serialNumber, firmware] = fields as [string, string, string, string];
  if (manufacturer === '' || model === '') refuse('*IDN? reply', line, 'no manufacturer or no model');
  return { manufacturer, model, serialNumber, firmware };
}

/** One numeric response; throws E_CODEC for anything else (text, several values, noise). */
export function parseScpiNumber(line: string): ScpiValue {
  const text = bare(line).trim();
  if (hasControlCharacters(text)) refuse('reply', line, 'control characters in the line');
  if (text === '') refuse('reply', line, 'an empty reply');
  if (!NUMBER.test(text)) refuse('reply', line, text.includes(',') ? 'several values: a point takes one number' : 'not a number');
  const value = Number(text);
  if (Math.abs(value) === 9.91e37) return { kind: 'nan', text };
  if (Math.abs(value) >= 9.9e37) return { kind: 'overload', text };
  return { kind: 'number', value };
}

/** One entry of the error queue; code 0 means the queue is empty. Throws E_CODEC for another reply. */
export function parseScpiError(line: string): ScpiError {
  const text = bare(line).trim();
  if (hasControlCharacters(text)) refuse('SYST:ERR? reply', line, 'control characters in the line');
  const m = /^([+-]?\d{1,6})\s*,\s*"((?:[^"]|"")*)"$/.exec(text);
  if (m === null) refuse('SYST:ERR? reply', line, 'expected <code>,"<message>"');
  return { code: Number(m[1]), message: (m[2] as string).replace(/""/g, '"') };
}

/** The problem with an identity, or undefined when it is the one expected (case and spaces around fields ignored). */
export function idnMismatch(
  expected: { manufacturer: string; model: string; serialNumber?: string | undefined },
  actual: ScpiIdentity,
): string | undefined {
  const same = (a: string, b: string): boolean => a.trim().toLowerCase() === b.trim().toLowerCase();
  const problems: string[] = [];
  if (!same(expected.manufacturer, actual.manufacturer)) problems.push(`manufacturer "${actual.manufacturer}", expected "${expected.manufacturer}"`);
  if (!same(expected.model, actual.model)) problems.push(`model "${actual.model}", expected "${expected.model}"`);
  if (expected.serialNumber !== undefined && !same(expected.serialNumber, actual.serialNumber)) {
    problems.push(`serial number "${actual.serialNumber}", expected "${expected.serialNumber}"`);
  }
  return problems.length === 0 ? undefined : problems.join('; ');
}

/** How a reply value is printed by an instrument with 9 significant digits (a 6½-digit multimeter): `+1.50000000E+00`. */
export function formatScpiNumber(value: number): string {
  const text = value.toExponential(8).toUpperCase();
  const [mantissa, exponent] = text.split('E') as [string, string];
  const sign = exponent.startsWith('-') ? '-' : '+';
  const digits = exponent.replace(/^[+-]/, '').padStart(2, '0');
  return `${mantissa.startsWith('-') ? '' : '+'}${mantissa}E${sign}${digits}`;
}
