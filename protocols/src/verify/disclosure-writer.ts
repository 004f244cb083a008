// Writes a client's selective-disclosure bundle (disclosure.ts) from a lab's signed batches: per batch, the chosen
// records, whole or with their redacted fields replaced by commitments, and the multi-leaf proof of their leaves;
// then the statement's text. The server (server/src/export/disclosure.ts) reads the batches from its store and signs
// the statement with its log key; tests and benchmarks build bundles with the same code.
import type { BatchHeader } from '../measurement.js';
import type { Sample } from '../measurement.js';
import { toBase64 } from '../trust/bytes.js';
import { canonicalBytes } from '../trust/jcs.js';
import { rootOfPacked } from '../trust/merkle.js';
import { multiInclusionProof } from '../trust/multiproof.js';
import { readRecords } from '../trust/record.js';
import { hashSlices, sha256 } from '../trust/sha256.js';
import {
  DISCLOSED_FIELDS,
  DISCLOSURE_FORMAT,
  disclosureDigest,
  fieldCommitment,
  formatDisclosureStatement,
  redactedEntryHash,
  redactionSalt,
  type RedactableField,
  type RedactedEntry,
} from './disclosure.js';
import { headersDigest, keyEventsDigest } from './export-statement.js';

/** One stored batch: its signed header, and its records as stored (each 0x00 || canonical record bytes). */
export interface StoredBatch {
  header: BatchHeader;
  signature: string;
  records: Uint8Array;
}

/** A batch as the bundle holds it (before its log proof is added). */
export interface DisclosedBatch {
  header: BatchHeader;
  signature: string;
  indexes: number[];
  records: string;
  redacted: RedactedEntry[];
  proof: string[];
}

/** Collects the batches of one bundle and makes its statement and document. */
export class DisclosureWriter {
  readonly #redact: readonly RedactableField[];
  readonly #redacted: ReadonlySet<string>;
  readonly #saltKey: () => Uint8Array;
  #salt: Uint8Array | undefined;
  readonly #signed: { header: BatchHeader; signature: string }[] = [];
  readonly #entryHashes: Uint8Array[] = [];
  whole = 0;
  hidden = 0;

  /** `saltKey` is asked once, at the first redacted field (the server derives it from its log key). */
  constructor(redact: readonly RedactableField[], saltKey: () => Uint8Array) {
    this.#redact = redact;
    this.#redacted = new Set(redact);
    this.#saltKey = saltKey;
  }

  /**
   * The batch's records that `choose` picks, or undefined when it picks none. The records are read from the stored
   * bytes; their leaves are hashed over those bytes, so the proof is of what the gateway signed.
   */
  batch(stored: StoredBatch, choose: (sample: Sample, index: number) => boolean): DisclosedBatch | undefined {
    const { header, records: bytes } = stored;
    const bounds = new Uint32Array(header.count + 1);
    const chosen: { index: number; sample: Sample; start: number; end: number }[] = [];
    readRecords(bytes, ({ sample }, start, end, i) => {
      bounds[i] = start;
      bounds[i + 1] = end;
      if (choose(sample, i)) chosen.push({ index: i, sample, start, end });
    });
    if (chosen.length === 0) return undefined;
    const packed = hashSlices(bytes, bounds);
    const leafOf = (i: number): Uint8Array => packed.subarray(32 * i, 32 * i + 32);
    const indexes: number[] = [];
    const whole: Uint8Array[] = [];
    const redacted: RedactedEntry[] = [];
    for (const c of chosen) {
      const hides = this.#redact.filter((f) => c.sample[f] !== undefined);
      if (hides.length === 0) {
        indexes.push(c.index);
        whole.push(bytes.subarray(c.start, c.end));
        this.#entryHashes.push(leafOf(c.index));
        continue;
      }
      this.#salt ??= this.#saltKey();
      const salt = this.#salt;
      const fields: Record<string, unknown> = {};
      for (const f of DISCLOSED_FIELDS) if (!this.#redacted.has(f) && c.sample[f] !== undefined) fields[f] = c.sample[f];
      const commitments: Record<string, string> = {};
      for (const f of hides) commitments[f] = toBase64(fieldCommitment(f, redactionSalt(salt, header.gateway, c.sample.seq, f), c.sample[f]));
      redacted.push({ index: c.index, leaf: toBase64(leafOf(c.index)), fields, commitments });
    }
    for (const e of redacted) this.#entryHashes.push(redactedEntryHash(e));
    this.whole += indexes.length;
    this.hidden += redacted.length;
    const recordBytes = new Uint8Array(whole.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of whole) {
      recordBytes.set(p, at);
      at += p.length;
    }
    const proof = multiInclusionProof(
      chosen.map((c) => c.index),
      header.count,
      (start, end) => rootOfPacked(packed.subarray(32 * start, 32 * end)),
    );
    this.#signed.push({ header, signature: stored.signature });
    return { header, signature: stored.signature, indexes, records: toBase64(recordBytes), redacted, proof: proof.map(toBase64) };
  }

  /** The statement's text (to be signed by the log key) once every batch is in. */
  statement(s: {
    origin: string;
    run: string;
    created: string;
    checkpoint: { size: number; root: string };
    keys: object;
    keyEventData: readonly Uint8Array[];
  }): string {
    const packed = new Uint8Array(32 * this.#entryHashes.length);
    this.#entryHashes.forEach((h, i) => packed.set(h, 32 * i));
    return formatDisclosureStatement({
      format: DISCLOSURE_FORMAT,
      origin: s.origin,
      run: s.run,
      created: s.created,
      checkpoint: s.checkpoint,
      fields: DISCLOSED_FIELDS.filter((f) => !this.#redacted.has(f)),
      redacted: [...this.#redact],
      batches: { count: this.#signed.length, headers: headersDigest(this.#signed) },
      records: { count: this.whole + this.hidden, whole: this.whole, redacted: this.hidden },
      disclosure: disclosureDigest(packed),
      keys: toBase64(sha256(canonicalBytes(s.keys))),
      keyEvents: { count: s.keyEventData.length, root: keyEventsDigest(s.keyEventData) },
    });
  }
}

/** The bundle's text: its parts in the order of the format, one line of JSON. */
export function disclosureText(parts: {
  statement: string;
  checkpoint: string;
  keys: object;
  keyEvents: readonly { index: number; data: string; proof: string[] }[];
  batches: readonly (DisclosedBatch & { logIndex: number; logProof: string[] })[];
}): string {
  return `${asciiJson(JSON.stringify({ format: DISCLOSURE_FORMAT, ...parts }))}\n`;
}

/**
 * JSON text with every character outside ASCII written as its \u escape: the same JSON value. A bundle always holds
 * one (the em dash that starts a signed note's signature line), and a single one makes the whole text a string of
 * two-byte characters for its reader: twice the memory, and slower to decode, parse and search. (JSON.stringify
 * escapes lone surrogates already; a pair is written as its two escapes, as JSON allows.)
 */
export function asciiJson(json: string): string {
  return json.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
