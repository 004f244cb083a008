// Key events (key-events.jsonl): their inclusion in the log, and each key's validity derived from them
// (key-validity.ts): keys.json may be stricter than the log (an event not logged yet), never laxer, and batches are
// held to the stricter. Runs before the batches, so that they are held to it.
import { bytesEqual, fromBase64, toHex } from '../../trust/bytes.js';
import { leafHash, rootFromInclusionProof } from '../../trust/merkle.js';
import { deriveKeyValidity, readKeyEventEntry, stricterStatus, weakerStatus, type LoggedKeyValidity } from '../key-validity.js';
import type { VerifyReport } from '../report.js';
import { isCount, isObject, isString, lines, parseJson, Unusable, type GatewayKeyEntry, type VerifyContext } from './context.js';

export function checkKeyEvents(ctx: VerifyContext): void {
  for (const { line, text } of lines(ctx.files.keyEvents ?? '')) checkKeyEventLine(ctx, line, text);
  checkKeyValidity(ctx);
}

function checkKeyEventLine(ctx: VerifyContext, line: number, text: string): void {
  const { report, problem } = ctx;
  const { size, rootHash: root } = ctx.checkpoint;
  const where = `key-events.jsonl line ${line}`;
  const e = parseJson(text, where);
  if (!isObject(e) || !isCount(e.index) || !isString(e.data) || !Array.isArray(e.proof)) throw new Unusable(where, 'expected {index, data, proof}');
  let data: Uint8Array;
  let event: unknown;
  try {
    data = fromBase64(e.data);
    event = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data)) as unknown;
  } catch (err) {
    throw new Unusable(where, `data: ${(err as Error).message}`);
  }
  const ev = isObject(event) ? event : {};
  ctx.keyEventData.push(data);
  const read = readKeyEventEntry(event);
  if (read.kind === 'event') ctx.keyEvents.push({ index: e.index, record: read.record });
  else if (read.kind === 'unreadable')
    problem({ kind: 'key-validity', where, message: `the logged key event does not read (${read.reason}): the keys cannot be checked against it` });
  report.keyEvents.push({
    index: e.index,
    at: isCount(ev.at) ? ev.at : null,
    kind: read.kind === 'event' ? read.record.event : read.kind === 'legacy' ? 'legacy text event' : null,
    gateway: isString(ev.gateway) ? ev.gateway : null,
  });
  if (e.index >= size) {
    problem({ kind: 'not-in-checkpoint', where, message: `log index ${e.index} is outside the checkpoint's tree of size ${size}` });
    return;
  }
  try {
    const computed = rootFromInclusionProof(
      leafHash(data),
      e.index,
      size,
      (e.proof as unknown[]).map((p) => fromBase64(String(p))),
    );
    if (bytesEqual(computed, root)) report.counts.inclusionsVerified++;
    else
      problem({
        kind: 'key-event-inclusion',
        where,
        message: 'the inclusion proof leads to another root',
        computed: toHex(computed),
        claimed: toHex(root),
      });
  } catch (err) {
    problem({ kind: 'key-event-inclusion', where, message: `the inclusion proof does not verify: ${(err as Error).message}` });
  }
}

/**
 * Derives each key's validity from the logged key events and compares keys.json with it: keys.json may be stricter
 * (an event not in the checkpoint yet) but not laxer. The stricter of the two is what batches are held to.
 */
function checkKeyValidity(ctx: VerifyContext): void {
  const logged = deriveKeyValidity(ctx.keyEvents);
  for (const reported of ctx.report.trust.gatewayKeys) {
    const id = `${reported.gateway} ${reported.keyId}`;
    const l = logged.get(id);
    const entry = ctx.gatewayKeys.get(id);
    if (l === undefined || entry === undefined) continue;
    reported.logged = {
      status: l.status,
      validFrom: l.validFrom,
      validUntil: l.validUntil,
      closedAt: l.closedAt,
      lastValidBatch: l.lastValidBatch,
      events: l.events,
    };
    compareWithLog(ctx, reported, entry, l);
    holdToStricter(entry, l);
  }
}

const time = (ms: number | null): string => (ms === null ? 'no limit' : new Date(ms).toISOString());

/** keys.json's statement of one key against the logged key events': a problem where keys.json is laxer. */
function compareWithLog(
  ctx: VerifyContext,
  reported: VerifyReport['trust']['gatewayKeys'][number],
  entry: GatewayKeyEntry,
  l: LoggedKeyValidity,
): void {
  const { problem } = ctx;
  const where = `keys.json (${reported.gateway} key ${reported.keyId})`;
  const events = `log ${l.events.length === 1 ? 'entry' : 'entries'} ${l.events.join(', ')}`;
  if (weakerStatus(entry.status, l.status))
    problem({
      kind: 'key-validity',
      where,
      message: `keys.json says the key is ${entry.status}, the logged key events (${events}) say ${l.status}`,
      computed: l.status,
      claimed: entry.status,
    });
  if (l.validUntil !== null && (entry.validUntil === null || entry.validUntil > l.validUntil))
    problem({
      kind: 'key-validity',
      where,
      message: `keys.json makes the key valid until ${time(entry.validUntil)}, the logged key events (${events}) until ${time(l.validUntil)}`,
      computed: l.validUntil,
      claimed: entry.validUntil,
    });
  if (l.validFrom !== null && entry.validFrom !== null && entry.validFrom < l.validFrom)
    problem({
      kind: 'key-validity',
      where,
      message: `keys.json makes the key valid from ${time(entry.validFrom)}, the logged enrollment (${events}) from ${time(l.validFrom)}`,
      computed: l.validFrom,
      claimed: entry.validFrom,
    });
  if (l.status === 'revoked' && l.lastValidBatch !== null && entry.lastValidBatch !== null && (entry.lastValidBatch ?? Infinity) > l.lastValidBatch)
    problem({
      kind: 'key-validity',
      where,
      message: `keys.json makes the revoked key valid for batches up to ${entry.lastValidBatch ?? 'any'}, the logged key events (${events}) up to ${l.lastValidBatch}`,
      computed: l.lastValidBatch,
      claimed: entry.lastValidBatch ?? null,
    });
  else if (l.status === 'revoked' && l.lastValidBatch === null && entry.lastValidBatch !== null)
    problem({
      kind: 'key-validity',
      where,
      message: `keys.json makes the revoked key valid for batches up to ${entry.lastValidBatch ?? 'any'}, the logged key events (${events}) for none`,
      computed: null,
      claimed: entry.lastValidBatch ?? null,
    });
}

/** The key as batches are held to it: the stricter of keys.json and the logged key events. */
function holdToStricter(entry: GatewayKeyEntry, l: LoggedKeyValidity): void {
  if (l.validUntil !== null && (entry.validUntil === null || l.validUntil < entry.validUntil)) entry.validUntil = l.validUntil;
  entry.closedAt = l.closedAt;
  if (l.status !== 'active') entry.replacedBy = l.replacedBy;
  if (l.status === 'revoked')
    entry.lastValidBatch =
      entry.status === 'revoked' && entry.lastValidBatch !== undefined
        ? entry.lastValidBatch === null || l.lastValidBatch === null
          ? null
          : Math.min(entry.lastValidBatch, l.lastValidBatch)
        : l.lastValidBatch;
  if (entry.status === 'active' || entry.status === 'retired' || entry.status === 'revoked') entry.status = stricterStatus(entry.status, l.status);
}
