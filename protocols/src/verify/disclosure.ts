// The client's selective-disclosure bundle (format labtrace-disclosure/v1): one JSON file holding one test run's
// records and nothing of the other records of the batches they were signed in, with what proves them offline
// (docs/trust.md, "The client's bundle"):
//   format       "labtrace-disclosure/v1"
//   statement    the disclosure statement (below), a C2SP signed note by the lab's log key
//   checkpoint   a signed checkpoint of the log (C2SP tlog-checkpoint)
//   keys         {log: {origin, verifierKey}, gateways: [{gateway, verifierKey, status, registeredAt, validUntil,
//                lastValidBatch}]} as the full export bundle's keys.json
//   keyEvents    [{index, data (base64 of the log leaf data), proof}]: the log's key events of the gateways
//   batches      per signed batch holding a disclosed record: {header, signature (the gateway's), logIndex, logProof
//                (RFC 9162 inclusion of the log leaf {header, signature} under the checkpoint), indexes (the places in
//                the batch of the records disclosed whole, ascending), records (base64: those records, each 0x00 ||
//                canonical record bytes, in that order), redacted ([{index, leaf, fields, commitments}]: records
//                with a redacted field), proof (multiproof.ts: every disclosed leaf to the header's root)}
//
// A record disclosed whole is proven by the gateway's signature: its bytes hash to a leaf that the proof leads to the
// signed root. A record with a redacted field cannot be: its Merkle leaf is SHA-256 over all its bytes, so without
// the field the leaf cannot be recomputed. The bundle gives its leaf hash (proven in the signed batch at its place:
// its gateway, key and sequence number are proven), the fields it may show, and for each redacted field a salted
// commitment, SHA-256("labtrace-redacted-field/v1\n" || salt || field || "\n" || JCS(value)). Those fields and
// commitments are the lab's statement, signed by its log key (the `disclosure` digest below), not the gateway's:
// opening a commitment (the salt and the value) to whoever may see the field rebuilds the record bytes, and then
// the leaf either matches or the lab's signed statement is shown false. The salt is the lab's secret (derived from
// its log key: redactionSalt), 32 bytes, so that a commitment to a value of few possibilities cannot be guessed.
//
// The statement, one field per line:
//   labtrace-disclosure-statement/v1
//   origin <the log's origin>
//   run <run id>
//   created <ISO 8601>
//   checkpoint <size> <base64 root>
//   fields <the record fields the bundle shows, comma-separated>
//   redacted <the fields it replaces by commitments where a record carries them, comma-separated, or ->
//   batches <count> <base64 headers digest>      RFC 6962 root of the batches' log leaves, in bundle order
//   records <count> <whole> <redacted>
//   disclosure <base64 SHA-256>                  over the entries' hashes in bundle order (batch by batch: the whole
//                                                records by index, then the redacted ones by index); a whole record's
//                                                hash is its Merkle leaf, a redacted one's SHA-256(0x02 || JCS({index,
//                                                leaf, fields, commitments}))
//   keys <base64 SHA-256 of JCS(keys)>
//   key-events <count> <base64 root>             RFC 6962 root over the events' leaf data, in bundle order
import type { Sample } from '../measurement.js';
import { concatBytes, toBase64, utf8 } from '../trust/bytes.js';
import { canonicalBytes } from '../trust/jcs.js';
import { sha256 } from '../trust/sha256.js';

export const DISCLOSURE_FORMAT = 'labtrace-disclosure/v1';
export const DISCLOSURE_STATEMENT_FORMAT = 'labtrace-disclosure-statement/v1';

/** The fields of a record as a disclosure shows them (the gateway and key are the signed header's). */
export const DISCLOSED_FIELDS = ['seq', 'ts', 'instrument', 'channel', 'value', 'unit', 'quality', 'reason', 'file'] as const;
/** What a lab may redact: all but the sequence number, which the record's place in its signed batch proves anyway. */
export const REDACTABLE_FIELDS = ['ts', 'instrument', 'channel', 'value', 'unit', 'quality', 'reason', 'file'] as const;
export type RedactableField = (typeof REDACTABLE_FIELDS)[number];

export interface DisclosureStatement {
  format: string;
  origin: string;
  run: string;
  created: string;
  checkpoint: { size: number; root: string };
  fields: string[];
  redacted: RedactableField[];
  batches: { count: number; headers: string };
  records: { count: number; whole: number; redacted: number };
  disclosure: string;
  keys: string;
  keyEvents: { count: number; root: string };
}

/** A record with a redacted field, as the bundle holds it. */
export interface RedactedEntry {
  index: number;
  /** base64 of the record's Merkle leaf hash */
  leaf: string;
  /** the fields shown (DISCLOSED_FIELDS without the redacted ones) */
  fields: Record<string, unknown>;
  /** per redacted field, base64 of its commitment */
  commitments: Record<string, string>;
}

/** Whether a record carries a value in a field (reason and file may be absent: then nothing is hidden). */
export function carries(sample: Sample, field: RedactableField): boolean {
  return sample[field] !== undefined;
}

/** A record's field by name, as JSON (the value a commitment is made to). */
export function fieldValue(sample: Sample, field: (typeof DISCLOSED_FIELDS)[number]): unknown {
  return sample[field];
}

const SALT_PREFIX = utf8('labtrace-redaction-salt/v1\n');
const COMMITMENT_PREFIX = utf8('labtrace-redacted-field/v1\n');

/**
 * The salt of one field of one record: SHA-256 of the bundle's salt key and the record's gateway, sequence number
 * and the field's name. The salt key is the lab's secret (the server derives it from its log key, so it can open a
 * commitment again later without storing anything).
 */
export function redactionSalt(saltKey: Uint8Array, gateway: string, seq: number, field: string): Uint8Array {
  return sha256(concatBytes(SALT_PREFIX, saltKey, utf8(`${gateway}\n${seq}\n${field}\n`)));
}

/** The commitment to a field's value: SHA-256("labtrace-redacted-field/v1\n" || salt || field || "\n" || JCS(value)). */
export function fieldCommitment(field: string, salt: Uint8Array, value: unknown): Uint8Array {
  return sha256(concatBytes(COMMITMENT_PREFIX, salt, utf8(`${field}\n`), canonicalBytes(value ?? null)));
}

const REDACTED_ENTRY = new Uint8Array([0x02]);

/** A redacted entry's hash in the disclosure digest: SHA-256(0x02 || JCS({index, leaf, fields, commitments})). */
export function redactedEntryHash(entry: RedactedEntry): Uint8Array {
  return sha256(
    concatBytes(REDACTED_ENTRY, canonicalBytes({ index: entry.index, leaf: entry.leaf, fields: entry.fields, commitments: entry.commitments })),
  );
}

/** The `disclosure` digest: SHA-256 of the entries' hashes (32 bytes each), concatenated in bundle order. */
export function disclosureDigest(packedEntryHashes: Uint8Array): string {
  return toBase64(sha256(packedEntryHashes));
}

const list = (values: readonly string[]): string => (values.length === 0 ? '-' : values.join(','));
const word = (name: string, value: string): string => {
  if (value === '' || /\s/u.test(value)) throw new Error(`disclosure statement: ${name} "${value}" must be one non-empty word`);
  return value;
};

export function formatDisclosureStatement(s: DisclosureStatement): string {
  return [
    DISCLOSURE_STATEMENT_FORMAT,
    `origin ${word('origin', s.origin)}`,
    `run ${word('run', s.run)}`,
    `created ${word('created', s.created)}`,
    `checkpoint ${s.checkpoint.size} ${s.checkpoint.root}`,
    `fields ${list(s.fields)}`,
    `redacted ${list(s.redacted)}`,
    `batches ${s.batches.count} ${s.batches.headers}`,
    `records ${s.records.count} ${s.records.whole} ${s.records.redacted}`,
    `disclosure ${s.disclosure}`,
    `keys ${s.keys}`,
    `key-events ${s.keyEvents.count} ${s.keyEvents.root}`,
    '',
  ].join('\n');
}

const BASE64_HASH = /^[A-Za-z0-9+/]{43}=$/;
const COUNT = /^(0|[1-9][0-9]{0,15})$/;

/** Reads a disclosure statement's text; throws an Error naming the line that does not read. */
export function parseDisclosureStatement(text: string): DisclosureStatement {
  const rows = text.split('\n');
  if (rows[rows.length - 1] === '') rows.pop();
  if (rows[0] !== DISCLOSURE_STATEMENT_FORMAT) throw new Error(`line 1: expected "${DISCLOSURE_STATEMENT_FORMAT}"`);
  const names = ['origin', 'run', 'created', 'checkpoint', 'fields', 'redacted', 'batches', 'records', 'disclosure', 'keys', 'key-events'];
  const arity = [1, 1, 1, 2, 1, 1, 2, 3, 1, 1, 2];
  if (rows.length !== names.length + 1) throw new Error(`expected ${names.length + 1} lines, found ${rows.length}`);
  const fields = new Map<string, string[]>();
  names.forEach((name, i) => {
    const parts = (rows[i + 1] ?? '').split(' ');
    if (parts[0] !== name) throw new Error(`line ${i + 2}: expected "${name} ..."`);
    const values = parts.slice(1);
    if (values.length !== arity[i] || values.some((v) => v === '')) throw new Error(`${name}: expected ${arity[i]} value(s)`);
    fields.set(name, values);
  });
  const at = (name: string, i = 0): string => fields.get(name)?.[i] ?? '';
  const count = (name: string, i = 0): number => {
    const v = at(name, i);
    if (!COUNT.test(v) || !Number.isSafeInteger(Number(v))) throw new Error(`${name}: "${v}" is not a count`);
    return Number(v);
  };
  const hash = (name: string, i = 0): string => {
    const v = at(name, i);
    if (!BASE64_HASH.test(v)) throw new Error(`${name}: "${v}" is not a base64 SHA-256 hash`);
    return v;
  };
  const names_ = (name: string, allowed: readonly string[]): string[] => {
    const v = at(name);
    if (v === '-') return [];
    const out = v.split(',');
    for (const f of out) if (!allowed.includes(f)) throw new Error(`${name}: "${f}" is not a record field`);
    if (new Set(out).size !== out.length) throw new Error(`${name}: a field is named twice`);
    return out;
  };
  return {
    format: DISCLOSURE_STATEMENT_FORMAT,
    origin: at('origin'),
    run: at('run'),
    created: at('created'),
    checkpoint: { size: count('checkpoint'), root: hash('checkpoint', 1) },
    fields: names_('fields', DISCLOSED_FIELDS),
    redacted: names_('redacted', REDACTABLE_FIELDS) as RedactableField[],
    batches: { count: count('batches'), headers: hash('batches', 1) },
    records: { count: count('records'), whole: count('records', 1), redacted: count('records', 2) },
    disclosure: hash('disclosure'),
    keys: hash('keys'),
    keyEvents: { count: count('key-events'), root: hash('key-events', 1) },
  };
}

/** Whether a file's text is a disclosure bundle (rather than a full export bundle's folder or anything else). */
export function isDisclosureBundle(text: string): boolean {
  return /^\s*\{\s*"format"\s*:\s*"labtrace-disclosure\//.test(text.slice(0, 200));
}
