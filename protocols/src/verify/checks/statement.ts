// The signed export statement (statement.txt, export-statement.ts): signed by the log key, made against this
// checkpoint, of this bundle's log and selection, and naming exactly the batches, records and key events the bundle
// holds (a bundle cut short in every file at once fails here).
import { toBase64, toHex } from '../../trust/bytes.js';
import { rootOf } from '../../trust/merkle.js';
import { ed25519NoteVerifier, openNote, parseNote } from '../../trust/note.js';
import { keyEventsDigest, parseExportStatement, type ExportStatement } from '../export-statement.js';
import { BUNDLE_FORMAT, type ProblemKind } from '../report.js';
import { describeSeq, rangeEnds, type VerifyContext } from './context.js';

const where = 'statement.txt';

/** Leaves the statement in the context when it reads (even with a bad signature, to name what differs). */
export function checkStatement(ctx: VerifyContext): void {
  const statement = readStatement(ctx);
  ctx.statement = statement;
  if (statement === undefined) return;
  checkHeading(ctx, statement);
  checkBatchesNamed(ctx, statement);
  checkKeyEventsNamed(ctx, statement);
}

function readStatement(ctx: VerifyContext): ExportStatement | undefined {
  const text = ctx.files.statement;
  if (text === undefined) {
    ctx.problem({
      kind: 'statement',
      where,
      message: 'the bundle has no signed export statement: whether batches were cut from it cannot be checked',
    });
    return undefined;
  }
  let statement: ExportStatement;
  try {
    statement = parseExportStatement(parseNote(text).text);
  } catch (err) {
    ctx.problem({ kind: 'statement', where, message: `the export statement does not read: ${(err as Error).message}` });
    return undefined;
  }
  let signatureVerified = false;
  try {
    openNote(text, [ed25519NoteVerifier(ctx.logKey)]);
    signatureVerified = true;
  } catch (err) {
    ctx.problem({
      kind: 'statement',
      where,
      message: `the export statement is not signed by the log key ${toHex(ctx.logKey.keyId)}: ${(err as Error).message}`,
    });
  }
  ctx.report.statement = { ...statement, signatureVerified };
  return statement;
}

/** The bundle's format, log, checkpoint and selection as the statement names them. */
function checkHeading(ctx: VerifyContext, statement: ExportStatement): void {
  const { checkpoint, selection } = ctx;
  const differs = (field: string, computed: string | number | null, claimed: string | number | null, kind: ProblemKind = 'statement'): void => {
    if (computed !== claimed)
      ctx.problem({ kind, where, message: `${field}: the bundle says otherwise than the signed export statement`, computed, claimed });
  };
  differs('format', BUNDLE_FORMAT, statement.format);
  differs('origin', ctx.origin, statement.origin);
  differs('checkpoint origin', checkpoint.origin, statement.origin);
  differs('checkpoint size', checkpoint.size, statement.checkpoint.size);
  differs('checkpoint root', toBase64(checkpoint.rootHash), statement.checkpoint.root);
  differs('gateway (bundle.json selection)', selection.gateway, statement.gateway);
  differs('from (bundle.json selection)', selection.from, statement.from);
  differs('to (bundle.json selection)', selection.to, statement.to);
}

const range = (count: number, first: number | null, last: number | null, firstSeq: number | null, lastSeq: number | null): string =>
  count === 0 ? 'no batches' : `${count} batches (batch ${describeSeq(first ?? 0, last ?? 0)}, seq ${describeSeq(firstSeq ?? 0, lastSeq ?? 0)})`;

/** The batches: the same number, the same first and last, the same headers in the same order. */
function checkBatchesNamed(ctx: VerifyContext, statement: ExportStatement): void {
  const { entries, signedRecords: records } = ctx;
  const { first: firstEntry, last: lastEntry } = rangeEnds(entries);
  const held = {
    count: entries.length,
    first: entries[0]?.header.batch ?? null,
    last: entries[entries.length - 1]?.header.batch ?? null,
    firstSeq: firstEntry?.header.firstSeq ?? null,
    lastSeq: lastEntry === undefined ? null : lastEntry.header.firstSeq + lastEntry.header.count - 1,
  };
  const heldText = range(held.count, held.first, held.last, held.firstSeq, held.lastSeq);
  const signedText = range(statement.batches.count, statement.batches.first, statement.batches.last, statement.seq.first, statement.seq.last);
  const cutAtEnd = statement.seq.last !== null && (held.lastSeq === null || held.lastSeq < statement.seq.last);
  const cutAtStart = statement.seq.first !== null && (held.firstSeq === null || held.firstSeq > statement.seq.first);
  if (cutAtEnd || cutAtStart || held.count < statement.batches.count || records < statement.records)
    ctx.problem({
      kind: 'truncated',
      where: 'batches.jsonl',
      message: `truncated: the bundle holds ${heldText} and ${records} records, the signed export statement names ${signedText} and ${statement.records} records${cutAtStart ? '; batches were cut from the start' : ''}${cutAtEnd ? '; batches were cut from the end' : ''}`,
      computed: heldText,
      claimed: signedText,
    });
  else if (
    held.count !== statement.batches.count ||
    held.first !== statement.batches.first ||
    held.last !== statement.batches.last ||
    held.firstSeq !== statement.seq.first ||
    held.lastSeq !== statement.seq.last ||
    records !== statement.records
  )
    ctx.problem({
      kind: 'statement',
      where: 'batches.jsonl',
      message: `the bundle holds ${heldText} and ${records} records, the signed export statement names ${signedText} and ${statement.records} records`,
      computed: heldText,
      claimed: signedText,
    });
  else checkHeadersDigest(ctx, statement);
}

/** headersDigest(entries), from the leaves already hashed, against the statement's. */
function checkHeadersDigest(ctx: VerifyContext, statement: ExportStatement): void {
  const digest = toBase64(rootOf(ctx.entries.map((e) => e.leaf)));
  if (digest !== statement.headers)
    ctx.problem({
      kind: 'statement',
      where: 'batches.jsonl',
      message: 'the batch headers are not the ones the signed export statement names (its headers digest differs)',
      computed: digest,
      claimed: statement.headers,
    });
}

function checkKeyEventsNamed(ctx: VerifyContext, statement: ExportStatement): void {
  const keyEventData = ctx.keyEventData;
  const eventsDigest = keyEventsDigest(keyEventData);
  if (keyEventData.length !== statement.keyEvents.count || eventsDigest !== statement.keyEvents.root)
    ctx.problem({
      kind: keyEventData.length < statement.keyEvents.count ? 'truncated' : 'statement',
      where: 'key-events.jsonl',
      message: `the bundle holds ${keyEventData.length} key events, the signed export statement names ${statement.keyEvents.count}${keyEventData.length === statement.keyEvents.count ? ' others' : ''}`,
      computed: `${keyEventData.length} ${eventsDigest}`,
      claimed: `${statement.keyEvents.count} ${statement.keyEvents.root}`,
    });
}
