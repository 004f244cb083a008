// RFC 8785 JSON Canonicalization Scheme: the one byte form of a JSON value that we sign and hash.
// Keys are sorted by UTF-16 code units, numbers use the ECMAScript shortest round-trip form (which
// JSON.stringify produces), strings use JSON.stringify's minimal escaping. Anything that is not plain JSON is
// refused rather than silently dropped or converted, because a signature over a lossy form proves little.
import { hasLoneSurrogate, utf8 } from './bytes.js';
import { TrustError } from './errors.js';

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** The canonical JSON text of a value. Throws E_CODEC (reason not-json) naming the path of the first offending value. */
export function canonicalize(value: unknown): string {
  // plain JSON, the usual case, without the paths that only an error message needs; anything else again, with them
  return quick(value, 0) ?? serialize(value, '$', []);
}

const encoder = new TextEncoder();

/** The canonical JSON of a value as UTF-8 bytes. */
export function canonicalBytes(value: unknown): Uint8Array {
  const text = quick(value, 0);
  // canonical text has no lone surrogate (quick checked every string and key): it encodes as it is
  return text === undefined ? utf8(serialize(value, '$', [])) : encoder.encode(text);
}

/** nesting beyond this goes to `serialize` (which also finds a value containing itself) */
const QUICK_DEPTH = 64;

/**
 * The canonical text of plain JSON (the same as `serialize`), or undefined for anything `serialize` might refuse:
 * then `serialize` runs and names the path. Keys sort by UTF-16 code units, as Array.prototype.sort compares strings.
 */
function quick(value: unknown, depth: number): string | undefined {
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : undefined;
    case 'string':
      return hasLoneSurrogate(value) ? undefined : JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      if (depth >= QUICK_DEPTH) return undefined;
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          const item = quick(value[i], depth + 1);
          if (item === undefined) return undefined;
          out += i === 0 ? item : `,${item}`;
        }
        return `${out}]`;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if ((proto !== Object.prototype && proto !== null) || Object.getOwnPropertySymbols(value).length > 0) return undefined;
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).sort();
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string;
        if (hasLoneSurrogate(key)) return undefined;
        const item = quick(record[key], depth + 1);
        if (item === undefined) return undefined;
        out += `${i === 0 ? '' : ','}${JSON.stringify(key)}:${item}`;
      }
      return `${out}}`;
    }
    default:
      return undefined;
  }
}

function serialize(value: unknown, path: string, parents: object[]): string {
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw notJson(path, `${String(value)} is not a JSON number`);
      return JSON.stringify(value);
    case 'string':
      return quote(value, path);
    case 'object': {
      if (value === null) return 'null';
      if (parents.includes(value)) throw notJson(path, 'the value contains itself');
      parents.push(value);
      const text = Array.isArray(value) ? serializeArray(value, path, parents) : serializeObject(value, path, parents);
      parents.pop();
      return text;
    }
    default:
      throw notJson(path, `a ${typeof value} is not a JSON value`);
  }
}

function serializeArray(array: readonly unknown[], path: string, parents: object[]): string {
  const parts: string[] = [];
  for (let i = 0; i < array.length; i++) parts.push(serialize(array[i], `${path}[${i}]`, parents));
  return `[${parts.join(',')}]`;
}

function serializeObject(object: object, path: string, parents: object[]): string {
  const proto: unknown = Object.getPrototypeOf(object);
  if (proto !== Object.prototype && proto !== null) {
    const kind = (object as { constructor?: { name?: unknown } }).constructor?.name;
    throw notJson(path, `a ${typeof kind === 'string' ? kind : 'non-plain object'} is not a JSON object`);
  }
  if (Object.getOwnPropertySymbols(object).length > 0) throw notJson(path, 'symbol keys are not JSON');
  const record = object as Record<string, unknown>;
  // Default string comparison in JavaScript is by UTF-16 code units, as RFC 8785 section 3.2.3 requires.
  const keys = Object.keys(record).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const parts: string[] = [];
  for (const key of keys) {
    const keyPath = IDENTIFIER.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
    parts.push(`${quote(key, keyPath)}:${serialize(record[key], keyPath, parents)}`);
  }
  return `{${parts.join(',')}}`;
}

function quote(text: string, path: string): string {
  // I-JSON (RFC 7493), which RFC 8785 builds on, has no lone surrogates; JSON.stringify would escape them.
  if (hasLoneSurrogate(text)) throw notJson(path, 'a string with a lone UTF-16 surrogate is not I-JSON');
  return JSON.stringify(text);
}

function notJson(path: string, problem: string): TrustError {
  return new TrustError('not-json', `${path}: ${problem}`, { path });
}
