// The boundary witnesses (boundaries.json): each is the stored batch just outside the range, signed by the gateway,
// in the log, outside the range in sequence and time, chained to the range's first (before) or last (after) header,
// and the one the signed statement names. Without an after witness the statement must say that the range reaches
// the gateway's last batch in the checkpoint.
import { bytesEqual, fromBase64, toHex } from '../../trust/bytes.js';
import { verifyEd25519 } from '../../trust/ed25519.js';
import { canonicalBytes } from '../../trust/jcs.js';
import { leafHash, rootFromInclusionProof } from '../../trust/merkle.js';
import { batchHeaderHash, type BoundaryRef } from '../export-statement.js';
import {
  checkHeader,
  describeSeq,
  isCount,
  isObject,
  isString,
  parseJson,
  rangeEnds,
  Unusable,
  type BatchEntry,
  type HeaderLike,
  type VerifyContext,
} from './context.js';

type Side = 'before' | 'after';

/** One witness being checked: its header, and a failure that marks it unverified. */
interface Witness {
  side: Side;
  header: HeaderLike;
  signature: string;
  hash: string;
  lastSeq: number;
  fail: (message: string, computed?: string | number | null, claimed?: string | number | null) => void;
}

export function checkBoundaries(ctx: VerifyContext): void {
  const text = ctx.files.boundaries;
  const parsed: unknown = text === undefined ? { before: null, after: null } : parseJson(text, 'boundaries.json');
  if (!isObject(parsed) || !('before' in parsed) || !('after' in parsed)) throw new Unusable('boundaries.json', 'expected {before, after}');
  const boundaries: NonNullable<typeof ctx.report.boundaries> = { before: null, after: null };
  ctx.report.boundaries = boundaries;
  for (const side of ['before', 'after'] as const) {
    const where = `boundaries.json ${side}`;
    const witness = parsed[side];
    const named: BoundaryRef | null | undefined = ctx.statement === undefined ? undefined : ctx.statement[side];
    if (witness === null || witness === undefined) {
      if (named !== null && named !== undefined)
        ctx.problem({
          kind: 'boundary',
          where,
          message: `the signed export statement names batch ${named.batch} just ${side} the range, the bundle holds no witness of it`,
          claimed: named.batch,
        });
      continue;
    }
    if (!isObject(witness) || !checkHeader(witness.header) || !isString(witness.signature))
      throw new Unusable(where, 'expected {header, signature, logIndex, logProof} with a labtrace batch header (v 1)');
    boundaries[side] = checkWitness(ctx, side, witness, witness.header, witness.signature, named);
  }
}

function checkWitness(
  ctx: VerifyContext,
  side: Side,
  witness: Record<string, unknown>,
  header: HeaderLike,
  signature: string,
  named: BoundaryRef | null | undefined,
): NonNullable<NonNullable<VerifyContext['report']['boundaries']>[Side]> {
  const hash = batchHeaderHash(header);
  const lastSeq = header.firstSeq + header.count - 1;
  const at = `boundaries.json ${side} (batch ${header.batch} of ${header.gateway}, seq ${describeSeq(header.firstSeq, lastSeq)})`;
  let verified = true;
  const fail = (message: string, computed?: string | number | null, claimed?: string | number | null): void => {
    verified = false;
    ctx.problem({
      kind: 'boundary',
      where: at,
      message,
      ...(computed === undefined ? {} : { computed }),
      ...(claimed === undefined ? {} : { claimed }),
    });
  };
  const w: Witness = { side, header, signature, hash, lastSeq, fail };
  if (named === null) fail(`the signed export statement says no batch lies ${side} the range, the bundle holds one`);
  else if (named !== undefined && (named.batch !== header.batch || named.hash !== hash))
    fail(`not the batch the signed export statement names ${side} the range`, `${header.batch} ${hash}`, `${named.batch} ${named.hash}`);
  if (header.gateway !== ctx.selection.gateway) fail(`a batch of ${header.gateway}, the bundle is of ${ctx.selection.gateway}`);
  checkWitnessSignature(ctx, w);
  const logIndex = isCount(witness.logIndex) ? witness.logIndex : null;
  checkWitnessInclusion(ctx, w, logIndex, witness.logProof);
  checkOutsideRange(ctx, w);
  return { batch: header.batch, firstSeq: header.firstSeq, lastSeq, tsMin: header.tsMin, tsMax: header.tsMax, logIndex, hash, verified };
}

/** Signed by the gateway. */
function checkWitnessSignature(ctx: VerifyContext, w: Witness): void {
  const { header, fail } = w;
  const key = ctx.gatewayKeys.get(`${header.gateway} ${header.keyId}`);
  let sig: Uint8Array | undefined;
  try {
    sig = fromBase64(w.signature);
  } catch {
    sig = undefined;
  }
  if (key === undefined) fail(`signed with key ${header.keyId}, which keys.json does not list`);
  else if (sig === undefined || !verifyEd25519(sig, canonicalBytes(header), key.key.publicKey))
    fail(`the header's signature does not verify with ${header.gateway}'s key ${header.keyId}`);
  else ctx.report.counts.signaturesVerified++;
}

/** In the log, under the checkpoint's root. */
function checkWitnessInclusion(ctx: VerifyContext, w: Witness, logIndex: number | null, logProof: unknown): void {
  const { checkpoint } = ctx;
  const { header, signature, fail } = w;
  if (logIndex === null || !Array.isArray(logProof) || logIndex >= checkpoint.size) {
    fail(`not in the log's checkpoint of size ${checkpoint.size}`);
    return;
  }
  try {
    const proof = (logProof as unknown[]).map((p) => fromBase64(String(p)));
    const computed = rootFromInclusionProof(leafHash(canonicalBytes({ header, signature })), logIndex, checkpoint.size, proof);
    if (bytesEqual(computed, checkpoint.rootHash)) ctx.report.counts.inclusionsVerified++;
    else
      fail(`the inclusion proof at log index ${logIndex} leads to another root than the checkpoint's`, toHex(computed), toHex(checkpoint.rootHash));
  } catch (err) {
    fail(`the inclusion proof at log index ${logIndex} does not verify: ${(err as Error).message}`);
  }
}

/** Outside the range, in time and in sequence, and chained to it. */
function checkOutsideRange(ctx: VerifyContext, w: Witness): void {
  const { header, hash, lastSeq, fail } = w;
  const from = Date.parse(ctx.selection.from);
  const to = Date.parse(ctx.selection.to);
  if (Number.isFinite(from) && Number.isFinite(to) && header.tsMax >= from && header.tsMin <= to)
    fail(`its records (${new Date(header.tsMin).toISOString()} .. ${new Date(header.tsMax).toISOString()}) meet the range: it belongs in the bundle`);
  const { first, last } = rangeEnds(ctx.entries);
  if (w.side === 'before' && first !== undefined) {
    if (header.batch >= first.header.batch || lastSeq >= first.header.firstSeq)
      fail(`does not lie before the range's first batch ${first.header.batch} (seq from ${first.header.firstSeq})`, header.batch, first.header.batch);
    if (first.header.prev !== null && first.header.prev !== hash)
      fail(`the range's first batch ${first.header.batch} does not name this header's hash as previous`, hash, first.header.prev);
  }
  if (w.side === 'after' && last !== undefined) checkAfterLast(w, last);
}

function checkAfterLast(w: Witness, last: BatchEntry): void {
  const { header, fail } = w;
  const lastEnd = last.header.firstSeq + last.header.count - 1;
  if (header.batch <= last.header.batch || header.firstSeq <= lastEnd)
    fail(`does not lie after the range's last batch ${last.header.batch} (seq to ${lastEnd})`, header.batch, last.header.batch);
  const expected = batchHeaderHash(last.header);
  if (header.prev !== null && header.prev !== expected)
    fail(`does not name the hash of the range's last batch ${last.header.batch} as previous`, expected, header.prev);
}
