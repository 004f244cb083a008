// A client's selective-disclosure bundle of one test run (format labtrace-disclosure/v1, protocols/src/verify/
// disclosure.ts): the run's records only, each proven to its gateway's signed batch by a multi-leaf Merkle proof per
// batch, the batch headers with their log inclusion proofs under a signed checkpoint, the gateways' keys and key
// events, and the lab's signed disclosure statement. A record carrying a field the data-export policy redacts
// (export.clientBundle.redact) is given as its leaf hash, its other fields and a salted commitment per redacted field.
//
// Read from one snapshot of the store (bundle.ts's inSnapshot), in memory (an hour's run at 50 samples/s is some
// 30-45 MB of JSON), yielding to other requests every BATCHES_PER_STEP batches. The salts are derived from the log key (a deterministic signature of the run's id), so that the lab
// can open a commitment again later without storing anything.
import {
  DisclosureWriter,
  LabtraceError,
  disclosureText,
  parseCheckpoint,
  parseNote,
  readRecords,
  sha256,
  toBase64,
  utf8,
  type BatchHeader,
  type RedactableField,
} from '@labtrace/protocols';
import { setImmediate as nextTurn } from 'node:timers/promises';
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

/** Batches disclosed between two turns of the event loop (some ten milliseconds of work). */
const BATCHES_PER_STEP = 32;

/** The salt key of a run's bundle: SHA-256 of the log key's (deterministic) signature of a text only this uses. */
export function redactionSaltKey(log: BundleLog, run: string): Uint8Array {
  return sha256(utf8(log.signNote(`labtrace-redaction-salt/v1\n${log.origin}\nrun ${run}\n`)));
}

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
  const writer = new DisclosureWriter(redact, () => redactionSaltKey(log, run.id));
  const batches: Parameters<typeof disclosureText>[0]['batches'][number][] = [];
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
    const lastSeq = last;
    const ofRun = (s: { seq: number; instrument: string }): boolean => s.seq >= range.firstSeq && s.seq <= lastSeq && mine.has(s.instrument);
    gateways.add(range.gateway);
    const rows = await db
      .selectFrom('batch_headers')
      .select(['batch', 'header', 'signature', 'records', 'log_index', 'records_removed_at'])
      .where('gateway', '=', range.gateway)
      .where('first_seq', '<=', lastSeq)
      .where((eb) => eb(eb('first_seq', '+', eb.ref('count')), '>', range.firstSeq))
      .orderBy('first_seq')
      .orderBy('batch')
      .execute();
    for (const [n, row] of rows.entries()) {
      // other requests go on between steps: an hour's run is thousands of batches
      if (n % BATCHES_PER_STEP === BATCHES_PER_STEP - 1) await nextTurn();
      if (row.records === null && row.records_removed_at !== null)
        throw new LabtraceError(
          'E_GONE',
          `disclosure: the records of batch ${Number(row.batch)} of ${range.gateway} were removed by retention on ${new Date(Number(row.records_removed_at)).toISOString()}`,
        );
      if (row.records === null)
        throw new LabtraceError('E_STORE', `disclosure: batch ${Number(row.batch)} of ${range.gateway} was stored without its records`);
      const logIndex = row.log_index === null ? null : Number(row.log_index);
      const stored = { header: JSON.parse(row.header) as BatchHeader, signature: row.signature, records: new Uint8Array(row.records) };
      if (logIndex === null || logIndex >= size) {
        // not provable under the checkpoint yet: counted, not disclosed
        readRecords(stored.records, ({ sample }) => {
          if (ofRun(sample)) pending++;
        });
        continue;
      }
      const disclosed = writer.batch(stored, ofRun);
      if (disclosed === undefined) continue;
      batches.push({ ...disclosed, logIndex, logProof: (await log.inclusionProof(logIndex, size)).map(toBase64) });
    }
  }
  const keys = { log: { origin: log.origin, verifierKey: log.verifierKey() }, gateways: await gatewayKeys(db, [...gateways]) };
  const keyEvents = await gatewayKeyEvents(db, gateways, size, log);
  const statement = log.signNote(
    writer.statement({
      origin: log.origin,
      run: run.id,
      created: created.toISOString(),
      checkpoint: { size, root: toBase64(checkpoint.rootHash) },
      keys,
      keyEventData: keyEvents.data,
    }),
  );
  const text = disclosureText({ statement, checkpoint: checkpointNote, keys, keyEvents: keyEvents.lines, batches });
  return { text, records: writer.whole + writer.hidden, redacted: writer.hidden, batches: batches.length, pending };
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
): Promise<{ lines: { index: number; data: string; proof: string[] }[]; data: Uint8Array[] }> {
  const rows = await db
    .selectFrom('log_entries')
    .select(['idx', 'data'])
    .where('kind', '=', 'key-event')
    .where('idx', '<', size)
    .orderBy('idx')
    .execute();
  const lines: { index: number; data: string; proof: string[] }[] = [];
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
