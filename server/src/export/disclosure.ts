// A client's selective-disclosure bundle of one test run (format labtrace-disclosure/v1, protocols/src/verify/
// disclosure.ts): the run's records only, each proven to its gateway's signed batch by a multi-leaf Merkle proof per
// batch, the batch headers with their log inclusion proofs under a signed checkpoint, the gateways' keys and key
// events, and the lab's signed disclosure statement. A record carrying a field the data-export policy redacts
// (export.clientBundle.redact) is given as its leaf hash, its other fields and a salted commitment per redacted field.
//
// Read from one snapshot of the store (bundle.ts's inSnapshot), in memory: an hour's run at 50 samples/s is some
// 20 MB of JSON. The salts are derived from the log key (a deterministic signature of the run's id), so that the lab
// can open a commitment again later without storing anything.
import {
  DISCLOSED_FIELDS,
  DISCLOSURE_FORMAT,
  LabtraceError,
  canonicalBytes,
  disclosureDigest,
  fieldCommitment,
  formatDisclosureStatement,
  hashSlices,
  headersDigest,
  keyEventsDigest,
  multiInclusionProof,
  parseCheckpoint,
  parseNote,
  readRecords,
  redactedEntryHash,
  redactionSalt,
  rootOfPacked,
  sha256,
  toBase64,
  utf8,
  type BatchHeader,
  type RedactableField,
  type RedactedEntry,
  type Sample,
} from '@labtrace/protocols';
import type { Kysely } from 'kysely';
import type { Tables } from '../store/database.js';
import { inSnapshot, type BundleLog } from './bundle.js';

/** What a disclosure needs of a run: its id, instruments and sequence ranges (lab/runs.ts's Run). */
export interface DisclosedRun {
  id: string;
  instruments: readonly { id: string; gateway: string }[];
  ranges: readonly { gateway: string; firstSeq: number; lastSeq: number | null }[];
}

export interface DisclosureResult {
  /** the bundle's JSON text */
  text: string;
  records: number;
  redacted: number;
  batches: number;
  /** the run's records in batches the checkpoint does not cover yet: not in the bundle (ask again shortly) */
  pending: number;
}

/** The salt key of a run's bundle: SHA-256 of the log key's (deterministic) signature of a text only this uses. */
export function redactionSaltKey(log: BundleLog, run: string): Uint8Array {
  return sha256(utf8(log.signNote(`labtrace-redaction-salt/v1\n${log.origin}\nrun ${run}\n`)));
}

const SHOWN: readonly (typeof DISCLOSED_FIELDS)[number][] = DISCLOSED_FIELDS;

/** Makes the bundle of a run under the policy `redact` (the fields that may not leave the lab). */
export async function disclosureBundle(
  store: Kysely<Tables>,
  log: BundleLog,
  run: DisclosedRun,
  redact: readonly RedactableField[],
  created: Date = new Date(),
): Promise<DisclosureResult> {
  return inSnapshot(store, (db) => readDisclosure(db, log, run, redact, created));
}

async function readDisclosure(
  db: Kysely<Tables>,
  log: BundleLog,
  run: DisclosedRun,
  redact: readonly RedactableField[],
  created: Date,
): Promise<DisclosureResult> {
  const stored = await db.selectFrom('log_checkpoints').select('note').orderBy('size', 'desc').limit(1).executeTakeFirst();
  if (stored === undefined) throw new LabtraceError('E_STORE', 'disclosure: the transparency log has no signed checkpoint');
  const checkpointNote = stored.note;
  const checkpoint = parseCheckpoint(parseNote(checkpointNote).text);
  const size = checkpoint.size;
  const redacted = new Set<string>(redact);
  let saltKey: Uint8Array | undefined;
  const batches: object[] = [];
  const signed: { header: BatchHeader; signature: string }[] = [];
  const entryHashes: Uint8Array[] = [];
  let whole = 0;
  let hidden = 0;
  let pending = 0;
  const gateways = new Set<string>();
  for (const range of run.ranges) {
    const mine = new Set(run.instruments.filter((i) => i.gateway === range.gateway).map((i) => i.id));
    let last = range.lastSeq;
    if (last === null) {
      const newest = await db
        .selectFrom('batch_headers')
        .select((eb) => eb.fn.max(eb('first_seq', '+', eb(eb.ref('count'), '-', 1))).as('last'))
        .where('gateway', '=', range.gateway)
        .executeTakeFirst();
      last = newest?.last === null || newest?.last === undefined ? range.firstSeq - 1 : Number(newest.last);
    }
    if (last < range.firstSeq || mine.size === 0) continue;
    gateways.add(range.gateway);
    const rows = await db
      .selectFrom('batch_headers')
      .select(['batch', 'header', 'signature', 'records', 'log_index'])
      .where('gateway', '=', range.gateway)
      .where('first_seq', '<=', last)
      .where((eb) => eb(eb('first_seq', '+', eb.ref('count')), '>', range.firstSeq))
      .orderBy('first_seq')
      .orderBy('batch')
      .execute();
    for (const row of rows) {
      if (row.records === null) throw new LabtraceError('E_STORE', `disclosure: batch ${Number(row.batch)} of ${range.gateway} was stored without its records`);
      const bytes = new Uint8Array(row.records);
      const header = JSON.parse(row.header) as BatchHeader;
      const bounds = new Uint32Array(header.count + 1);
      const chosen: { index: number; sample: Sample; start: number; end: number }[] = [];
      readRecords(bytes, ({ sample }, start, end, i) => {
        bounds[i] = start;
        bounds[i + 1] = end;
        if (sample.seq >= range.firstSeq && sample.seq <= (last as number) && mine.has(sample.instrument)) chosen.push({ index: i, sample, start, end });
      });
      if (chosen.length === 0) continue;
      const logIndex = row.log_index === null ? null : Number(row.log_index);
      if (logIndex === null || logIndex >= size) {
        pending += chosen.length;
        continue;
      }
      const packed = hashSlices(bytes, bounds);
      const leafOf = (i: number): Uint8Array => packed.subarray(32 * i, 32 * i + 32);
      const indexes: number[] = [];
      const wholeParts: Uint8Array[] = [];
      const redactedEntries: RedactedEntry[] = [];
      for (const c of chosen) {
        const hides = redact.filter((f) => c.sample[f] !== undefined);
        if (hides.length === 0) {
          indexes.push(c.index);
          wholeParts.push(bytes.subarray(c.start, c.end));
          entryHashes.push(leafOf(c.index));
          continue;
        }
        saltKey ??= redactionSaltKey(log, run.id);
        const fields: Record<string, unknown> = {};
        for (const f of SHOWN) if (!redacted.has(f) && c.sample[f] !== undefined) fields[f] = c.sample[f];
        const commitments: Record<string, string> = {};
        for (const f of hides) commitments[f] = toBase64(fieldCommitment(f, redactionSalt(saltKey, range.gateway, c.sample.seq, f), c.sample[f]));
        redactedEntries.push({ index: c.index, leaf: toBase64(leafOf(c.index)), fields, commitments });
      }
      for (const e of redactedEntries) entryHashes.push(redactedEntryHash(e));
      whole += indexes.length;
      hidden += redactedEntries.length;
      const recordBytes = new Uint8Array(wholeParts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of wholeParts) {
        recordBytes.set(p, at);
        at += p.length;
      }
      const proof = multiInclusionProof(
        chosen.map((c) => c.index),
        header.count,
        (start, end) => rootOfPacked(packed.subarray(32 * start, 32 * end)),
      );
      signed.push({ header, signature: row.signature });
      batches.push({
        header,
        signature: row.signature,
        logIndex,
        logProof: (await log.inclusionProof(logIndex, size)).map(toBase64),
        indexes,
        records: toBase64(recordBytes),
        redacted: redactedEntries,
        proof: proof.map(toBase64),
      });
    }
  }
  const keys = { log: { origin: log.origin, verifierKey: log.verifierKey() }, gateways: await gatewayKeys(db, [...gateways]) };
  const keyEvents = await gatewayKeyEvents(db, gateways, size, log);
  const packedEntries = new Uint8Array(32 * entryHashes.length);
  entryHashes.forEach((h, i) => packedEntries.set(h, 32 * i));
  const statement = log.signNote(
    formatDisclosureStatement({
      format: DISCLOSURE_FORMAT,
      origin: log.origin,
      run: run.id,
      created: created.toISOString(),
      checkpoint: { size, root: toBase64(checkpoint.rootHash) },
      fields: SHOWN.filter((f) => !redacted.has(f)),
      redacted: [...redact],
      batches: { count: signed.length, headers: headersDigest(signed) },
      records: { count: whole + hidden, whole, redacted: hidden },
      disclosure: disclosureDigest(packedEntries),
      keys: toBase64(sha256(canonicalBytes(keys))),
      keyEvents: { count: keyEvents.data.length, root: keyEventsDigest(keyEvents.data) },
    }),
  );
  const doc = { format: DISCLOSURE_FORMAT, statement, checkpoint: checkpointNote, keys, keyEvents: keyEvents.lines, batches };
  return { text: `${JSON.stringify(doc)}\n`, records: whole + hidden, redacted: hidden, batches: batches.length, pending };
}

/** Every key of the gateways, with its status and validity, as the full bundle's keys.json lists them. */
async function gatewayKeys(db: Kysely<Tables>, gateways: string[]): Promise<object[]> {
  if (gateways.length === 0) return [];
  const rows = await db
    .selectFrom('gateway_keys')
    .select(['gateway', 'key_id', 'verifier_key', 'status', 'registered_at', 'valid_until', 'last_valid_batch', 'replaced_by'])
    .where('gateway', 'in', gateways.sort())
    .orderBy('gateway')
    .orderBy('registered_at')
    .orderBy('key_id')
    .execute();
  return rows.map((k) => ({
    gateway: k.gateway,
    keyId: k.key_id,
    verifierKey: k.verifier_key,
    status: k.status,
    registeredAt: Number(k.registered_at),
    validUntil: k.valid_until === null ? null : Number(k.valid_until),
    lastValidBatch: k.last_valid_batch === null ? null : Number(k.last_valid_batch),
    replacedBy: k.replaced_by,
  }));
}

/** The log's key events of the gateways within the checkpoint, each with its inclusion proof. */
async function gatewayKeyEvents(
  db: Kysely<Tables>,
  gateways: ReadonlySet<string>,
  size: number,
  log: BundleLog,
): Promise<{ lines: object[]; data: Uint8Array[] }> {
  const rows = await db.selectFrom('log_entries').select(['idx', 'data']).where('kind', '=', 'key-event').where('idx', '<', size).orderBy('idx').execute();
  const lines: object[] = [];
  const data: Uint8Array[] = [];
  for (const r of rows) {
    const bytes = new Uint8Array(r.data);
    let gateway: unknown;
    try {
      gateway = (JSON.parse(new TextDecoder().decode(bytes)) as { gateway?: unknown }).gateway;
    } catch {
      gateway = undefined;
    }
    if (typeof gateway !== 'string' || !gateways.has(gateway)) continue;
    const index = Number(r.idx);
    data.push(bytes);
    lines.push({ index, data: toBase64(bytes), proof: (await log.inclusionProof(index, size)).map(toBase64) });
  }
  return { lines, data };
}
