// Dotted JSON paths ("reading.value", "data[2].v", "[0].v") that say where an MQTT instrument puts a
// value: the gateway reads by them, the simulator writes by them, and the profile schema checks them.
import { LabtraceError } from './errors.js';

export type PathSegment = string | number;

const NAME = '[^.[\\]]+';
const INDEX = '\\[\\d+\\]';
export const JSON_PATH = new RegExp(`^(?:${NAME}|${INDEX})(?:${INDEX})*(?:\\.${NAME}(?:${INDEX})*)*$`);
const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);
const MAX_INDEX = 1000;

/** Why a path is not acceptable, or undefined when it is. */
export function jsonPathProblem(path: string): string | undefined {
  if (!JSON_PATH.test(path)) return `"${path}" is not a dotted path such as "reading.value" or "data[2].v"`;
  for (const m of path.matchAll(/\[(\d+)\]|([^.[\]]+)/g)) {
    if (m[2] !== undefined && FORBIDDEN.has(m[2])) return `"${m[2]}" cannot be a key`;
    if (m[1] !== undefined && Number(m[1]) > MAX_INDEX) return `index ${m[1]} is larger than ${MAX_INDEX}`;
  }
  return undefined;
}

/** Compiles a path into segments; throws E_PROFILE naming `where` if it is malformed. */
export function compilePath(path: string, where: string): PathSegment[] {
  const problem = jsonPathProblem(path);
  if (problem !== undefined) throw new LabtraceError('E_PROFILE', `${where}: ${problem}`);
  const segments: PathSegment[] = [];
  for (const m of path.matchAll(/\[(\d+)\]|([^.[\]]+)/g)) segments.push(m[1] !== undefined ? Number(m[1]) : (m[2] ?? ''));
  return segments;
}

export type PathResult = { found: true; value: unknown } | { found: false; missing: string };

/** Follows a compiled path through parsed JSON; only own properties count. */
export function readPath(root: unknown, segments: readonly PathSegment[]): PathResult {
  let current = root;
  let walked = '';
  for (const segment of segments) {
    walked += typeof segment === 'number' ? `[${segment}]` : walked === '' ? segment : `.${segment}`;
    if (typeof segment === 'number') {
      if (!Array.isArray(current) || segment >= current.length) return { found: false, missing: walked };
      current = current[segment] as unknown;
    } else {
      if (typeof current !== 'object' || current === null || Array.isArray(current) || !Object.hasOwn(current, segment)) {
        return { found: false, missing: walked };
      }
      current = (current as Record<string, unknown>)[segment];
    }
  }
  return { found: true, value: current };
}
