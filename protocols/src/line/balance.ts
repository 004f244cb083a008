// Balances' line protocols: the replies of Mettler Toledo MT-SICS and the print lines of Sartorius SBI (and the KERN
// and other balances that print the same way), read into one shape: a weight with its unit and stability, a state
// without a weight (busy, overload, underload), an acknowledgement, or an error the balance reported. A line that is
// neither is refused with the reason, never guessed at.
//
// MT-SICS (MT-SICS reference manuals): a reply is `<command> <status> <value> <unit>` for a weight (`S S     100.00 g`;
// status S stable, D dynamic), `<command> <status>` otherwise (I: not executable now, +: overload or upper limit,
// -: underload or lower limit, A: done), `ES` / `ET` / `EL` for a syntax, transmission or logical error, and
// `<command> A "<text>"` for identity replies (I4: the serial number). Lines end with CR LF.
// SBI (Sartorius operating instructions, "data output format"): 16 characters, position 1 the sign or a space,
// 2-10 the value with its decimal point (leading zeros as spaces), 11 a space, 12-14 the unit or spaces, then CR LF;
// a value printed without a unit is not stable. 22 characters put a 6-character ID code first (`N     ` net,
// `G     ` gross, `T     ` tare). `High` / `Low` (or `H` / `L`, `HH` / `LL`) are overload and underload, `Err ###`
// an error number; `Stat` with them in the 22-character form.
import { LabtraceError } from '../errors.js';

export type BalanceReading =
  /** a weight: `stable` false for a dynamic (SICS D) or unit-less (SBI) value */
  | { kind: 'weight'; value: number; unit: string; stable: boolean; id?: string }
  /** no weight now: the balance is busy or timed out waiting for stability (SICS I) */
  | { kind: 'busy' }
  | { kind: 'overload' }
  | { kind: 'underload' }
  /** a command done (SICS Z A, T S with the tare, @ with the serial number...) */
  | { kind: 'done'; text?: string; value?: number; unit?: string }
  /** the balance refused the command or the line: `code` as it sent it (ES, ET, EL, Err 101) */
  | { kind: 'error'; code: string; meaning: string };

const SICS_ERRORS: Readonly<Record<string, string>> = {
  ES: 'syntax error: the balance did not recognize the command',
  ET: 'transmission error: the balance received a faulty command (parity or framing)',
  EL: 'logical error: the command cannot be executed (a parameter out of range)',
};

/** a decimal number as balances print it: an optional sign, digits with one optional point (no exponent) */
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/;
/** what a unit may be: letters, %, / and a few symbols balances use (g, kg, mg, ct, lb, oz, ozt, GN, dwt, tl, pcs, %, /lb) */
const UNIT = /^[A-Za-z%/µ°]{1,5}$/;

function refuse(line: string, reason: string): never {
  throw new LabtraceError('E_CODEC', `balance reply ${JSON.stringify(line.length > 40 ? `${line.slice(0, 40)}…` : line)}: ${reason}`);
}

/** the line without its line end (CR LF, LF or CR) */
/** a control character other than the line end's (a noisy line, a wrong baud rate) */
function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

function bare(line: string): string {
  return line.replace(/\r?\n$|\r$/, '');
}

/**
 * One MT-SICS reply line (with or without its CR LF) for the command that was sent (`S`, `SI`, `SIR`, `Z`, `T`, `I4`,
 * `@` ...): SIR repeats `S` lines. Throws E_CODEC naming the problem for a line that is not a reply to it.
 */
export function parseSicsReply(line: string, command: string): BalanceReading {
  const text = bare(line);
  if (hasControl(text)) refuse(line, 'control characters in the line');
  const trimmed = text.trim();
  const error = SICS_ERRORS[trimmed];
  if (error !== undefined) return { kind: 'error', code: trimmed, meaning: error };
  // SIR, SR, SNR... answer with S lines; SIU and SIRU with S lines too (in the displayed unit)
  const echo = /^S(I|IR|R|NR|IU|IRU|U|NRU)?$/.test(command) ? 'S' : command;
  const fields = trimmed.split(/ +/);
  if (fields[0] !== echo) refuse(line, `expected a reply to ${command} (starting with "${echo}")`);
  const status = fields[1];
  if (status === undefined) refuse(line, 'no status after the command');
  const rest = fields.slice(2);
  if (echo === 'S' || echo === 'T' || echo === 'TA') {
    if (status === 'S' || status === 'D') {
      const [value, unit, ...more] = rest;
      if (value === undefined || !NUMBER.test(value)) refuse(line, 'no weight value');
      if (unit === undefined || !UNIT.test(unit)) refuse(line, 'no unit after the weight value');
      if (more.length > 0) refuse(line, 'more fields than a weight and its unit');
      const reading = { value: Number(value), unit };
      // T S <tare> and TA A <tare>: the tare stored
      if (echo !== 'S') return { kind: 'done', ...reading };
      return { kind: 'weight', ...reading, stable: status === 'S' };
    }
    if (echo === 'TA' && status === 'A') {
      const [value, unit] = rest;
      if (value === undefined || !NUMBER.test(value) || unit === undefined || !UNIT.test(unit)) refuse(line, 'no tare value and unit');
      return { kind: 'done', value: Number(value), unit };
    }
  }
  if (!['I', '+', '-', 'A'].includes(status)) refuse(line, `unknown status "${status}"`);
  if (rest.length > 0 && status !== 'A') refuse(line, `unexpected fields after status "${status}"`);
  switch (status) {
    case 'I':
      return { kind: 'busy' };
    case '+':
      return { kind: 'overload' };
    case '-':
      return { kind: 'underload' };
    case 'A': {
      const quoted = /^"([^"]*)"$/.exec(rest.join(' '));
      if (rest.length > 0 && quoted === null) refuse(line, 'the text of the reply is not quoted');
      return quoted === null ? { kind: 'done' } : { kind: 'done', text: quoted[1] as string };
    }
    default:
      return refuse(line, `unknown status "${status}"`);
  }
}

/** One SBI print line (16 or 22 characters before CR LF; the spaces may have been trimmed by a device server). */
export function parseSbiLine(line: string): BalanceReading {
  const text = bare(line);
  if (hasControl(text)) refuse(line, 'control characters in the line');
  if (text.length > 22) refuse(line, `${text.length} characters: an SBI line has 16 or 22 with its line end`);
  let body = text;
  let id: string | undefined;
  // the 22-character form: a 6-character ID code first (letters, digits, spaces)
  if (text.length > 14 && /^[A-Za-z][A-Za-z0-9 ]{5}[ +-]/.test(text)) {
    id = text.slice(0, 6).trim();
    body = text.slice(6);
  }
  const trimmed = body.trim();
  if (trimmed === '') refuse(line, 'an empty line');
  if (/^(High|H|HH)$/.test(trimmed)) return { kind: 'overload' };
  if (/^(Low|L|LL)$/.test(trimmed)) return { kind: 'underload' };
  if (/^C$/.test(trimmed)) return { kind: 'busy' };
  const err = /^Err\s*(\d{1,4})$/.exec(trimmed);
  if (err !== null) return { kind: 'error', code: `Err ${err[1] as string}`, meaning: `the balance reported error ${err[1] as string}` };
  // sign, value (non-verified digits in brackets: 123.5[6]), unit or nothing
  const m = /^([+-])?\s*([0-9.[\]]+)\s*(\S+)?$/.exec(trimmed);
  if (m === null) refuse(line, 'not a value with its sign and unit');
  const digits = (m[2] as string).replace(/[[\]]/g, '');
  if (!NUMBER.test(digits)) refuse(line, `"${m[2] as string}" is not a number`);
  const unit = m[3];
  if (unit !== undefined && !UNIT.test(unit)) refuse(line, `"${unit}" is not a unit`);
  const value = Number(`${m[1] === '-' ? '-' : ''}${digits}`);
  return {
    kind: 'weight',
    value,
    unit: unit ?? '',
    // SBI prints the unit once the reading is stable
    stable: unit !== undefined,
    ...(id === undefined || id === '' ? {} : { id }),
  };
}
