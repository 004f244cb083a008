// The generic line dialect: a line an instrument prints, read by the profile's pattern (a JavaScript regular
// expression with named groups), each named group one point's number. The pattern is checked when the profile
// is loaded: it must compile, and it may not nest quantifiers ((\d+)+ and the like), which can take
// exponential time on a line that almost matches and would stall every instrument of the gateway.
import { LabtraceError } from '../errors.js';

/** The named groups of a pattern, or the problem with it in words. */
export function linePatternGroups(pattern: string): string[] | string {
  let regex: RegExp;
  try {
    regex = new RegExp(`(?:${pattern})|`);
  } catch (err) {
    return `not a valid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`;
  }
  const nested = nestedQuantifier(pattern);
  if (nested !== undefined) {
    return `a quantified group holds a quantifier (${nested}): it can take exponential time on a line that almost matches; write it without the nesting`;
  }
  // the empty alternative matches "", and the match names every group of the pattern
  const groups = regex.exec('')?.groups;
  return groups === undefined ? [] : Object.keys(groups);
}

/** The first group with a quantifier inside that is itself repeated by * + or {n,}, as written; undefined when none. */
function nestedQuantifier(pattern: string): string | undefined {
  const stack: { start: number; quantified: boolean }[] = [];
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === '(') stack.push({ start: i, quantified: false });
    else if (c === '*' || c === '+' || (c === '{' && /^\{\d+(,\d*)?\}/.test(pattern.slice(i)))) {
      const top = stack[stack.length - 1];
      if (top !== undefined) top.quantified = true;
    } else if (c === ')') {
      const group = stack.pop();
      if (group === undefined) continue;
      const next = pattern.slice(i + 1);
      const repeated = /^(?:[*+]|\{\d+,\d*\})/.test(next) && !/^\{(\d+),\1\}/.test(next);
      if (group.quantified && repeated) return pattern.slice(group.start, i + 2);
      // a quantifier inside makes the enclosing group quantified too
      const parent = stack[stack.length - 1];
      if (parent !== undefined && (group.quantified || repeated)) parent.quantified = true;
    }
  }
  return undefined;
}

/** Compiles a pattern already checked by the profile schema. */
export function compileLinePattern(pattern: string): RegExp {
  const problem = linePatternGroups(pattern);
  if (typeof problem === 'string') throw new LabtraceError('E_PROFILE', `pattern: ${problem}`);
  return new RegExp(pattern);
}

const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * The number a group captured: spaces dropped (instruments pad between the sign and the digits), a decimal comma
 * read as a point when the profile says so. Throws E_CODEC for text that is no number.
 */
export function lineNumber(text: string, decimalComma: boolean): number {
  let t = text.replace(/\s+/g, '');
  if (decimalComma) {
    if (t.includes('.')) throw new LabtraceError('E_CODEC', `"${text}": a point in a number printed with a decimal comma`);
    t = t.replace(',', '.');
  }
  if (!NUMBER.test(t)) throw new LabtraceError('E_CODEC', `"${text.length > 40 ? `${text.slice(0, 40)}…` : text}" is not a number`);
  return Number(t);
}
