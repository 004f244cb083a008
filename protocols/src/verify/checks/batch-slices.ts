// A disclosure bundle's batches read one at a time. The bundle is one JSON document whose `batches` array holds
// nearly all of it (an hour's run: 18,000 batches, 44 MiB); parsed whole, its hundreds of thousands of objects and
// strings all live until the end, and the garbage collector copies them again and again (it cost the verifier more
// than the rest of its work together). Here the document is read with its top-level `batches` array cut out (the rest
// parsed as usual), and each element is located in the text and parsed when the verifier comes to it, so that what a
// batch's check leaves behind is garbage at once.
//
// It only locates: it never decides what the JSON means. The cut document is parsed by JSON.parse, and so is every
// element, and the separators between the elements are checked, so the text is JSON exactly when every parse
// succeeds. Anything unusual (a second top-level "batches", a value that is not an array, text after the document)
// answers undefined, and the caller parses the whole text as before.

/** JSON's white space */
const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

function skipSpace(text: string, i: number): number {
  while (isSpace(text.charCodeAt(i))) i++;
  return i;
}

/** `i` at a string's opening quote: the index after its closing quote, or -1 */
function skipString(text: string, i: number): number {
  let from = i + 1;
  for (;;) {
    const quote = text.indexOf('"', from);
    if (quote < 0) return -1;
    // escaped when preceded by an odd number of backslashes
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    from = quote + 1;
  }
}

/** `i` at a value's first character: the index after it, or -1 (JSON.parse judges it later) */
function skipValue(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === 0x22) return skipString(text, i);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    let j = i;
    for (;;) {
      const ch = text.charCodeAt(j);
      if (Number.isNaN(ch)) return -1;
      if (ch === 0x22) {
        j = skipString(text, j);
        if (j < 0) return -1;
        continue;
      }
      if (ch === 0x7b || ch === 0x5b) depth++;
      else if (ch === 0x7d || ch === 0x5d) {
        depth--;
        if (depth === 0) return j + 1;
      }
      j++;
    }
  }
  // a number or a literal: up to the next separator
  let j = i;
  for (;;) {
    const ch = text.charCodeAt(j);
    if (Number.isNaN(ch) || ch === 0x2c || ch === 0x7d || ch === 0x5d || isSpace(ch)) return j === i ? -1 : j;
    j++;
  }
}

export interface SlicedBundle {
  /** the document with `batches: []` in place of its batches */
  doc: unknown;
  /** each batch's place in the text: element k is text.slice(bounds[2k], bounds[2k + 1]) */
  bounds: Uint32Array;
  count: number;
}

/** The document and its batches' places, or undefined when the text is not a JSON object with one top-level array `batches`. */
export function sliceBatches(text: string): SlicedBundle | undefined {
  if (text.length >= 2 ** 32) return undefined;
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== 0x7b) return undefined;
  i = skipSpace(text, i + 1);
  let cut: { from: number; to: number } | undefined;
  let bounds = new Uint32Array(1024);
  let count = 0;
  if (text.charCodeAt(i) !== 0x7d) {
    for (;;) {
      if (text.charCodeAt(i) !== 0x22) return undefined;
      const keyEnd = skipString(text, i);
      if (keyEnd < 0) return undefined;
      let key: unknown;
      try {
        key = JSON.parse(text.slice(i, keyEnd));
      } catch {
        return undefined;
      }
      i = skipSpace(text, keyEnd);
      if (text.charCodeAt(i) !== 0x3a) return undefined;
      i = skipSpace(text, i + 1);
      if (key === 'batches') {
        if (cut !== undefined || text.charCodeAt(i) !== 0x5b) return undefined;
        const from = i;
        i = skipSpace(text, i + 1);
        if (text.charCodeAt(i) !== 0x5d) {
          for (;;) {
            const end = skipValue(text, i);
            if (end < 0) return undefined;
            if (2 * count + 2 > bounds.length) {
              const bigger = new Uint32Array(bounds.length * 2);
              bigger.set(bounds);
              bounds = bigger;
            }
            bounds[2 * count] = i;
            bounds[2 * count + 1] = end;
            count++;
            i = skipSpace(text, end);
            const sep = text.charCodeAt(i);
            if (sep === 0x5d) break;
            if (sep !== 0x2c) return undefined;
            i = skipSpace(text, i + 1);
          }
        }
        i++;
        cut = { from, to: i };
      } else {
        const end = skipValue(text, i);
        if (end < 0) return undefined;
        i = end;
      }
      i = skipSpace(text, i);
      const sep = text.charCodeAt(i);
      if (sep === 0x7d) break;
      if (sep !== 0x2c) return undefined;
      i = skipSpace(text, i + 1);
    }
  }
  if (cut === undefined || skipSpace(text, i + 1) !== text.length) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(`${text.slice(0, cut.from)}[]${text.slice(cut.to)}`);
  } catch {
    return undefined;
  }
  return { doc, bounds: bounds.subarray(0, 2 * count), count };
}

/** Batch k of a sliced bundle, parsed; undefined when it is not JSON (the caller then parses the whole text and says so). */
export function batchAt(text: string, sliced: SlicedBundle, k: number): unknown {
  try {
    return JSON.parse(text.slice(sliced.bounds[2 * k], sliced.bounds[2 * k + 1])) as unknown;
  } catch {
    return undefined;
  }
}
