// The checkpoint: signed by the log key, of the bundle's log (origin); with a checkpoint saved earlier, that the
// bundle's extends it (by a consistency proof in bundle.json); and with a witness policy, that enough of the named
// witnesses cosigned it (C2SP cosignature/v1 lines after the log's signature).
import type { LabtraceError } from '../../errors.js';
import { bytesEqual, fromBase64, toHex } from '../../trust/bytes.js';
import { openCheckpoint, parseCheckpoint, type Checkpoint } from '../../trust/checkpoint.js';
import { verifyConsistency } from '../../trust/merkle.js';
import { cosignatureVerifier, openCosignatures } from '../../trust/cosignature.js';
import { ed25519NoteVerifier, parseNote, type NoteVerifier } from '../../trust/note.js';
import type { VerifyOptions } from '../report.js';
import { isObject, Unusable, type VerifyContext } from './context.js';

export function checkCheckpoint(ctx: VerifyContext): void {
  const { checkpoint, report, problem } = ctx;
  let signatureVerified = false;
  try {
    openCheckpoint(ctx.files.checkpoint, [ed25519NoteVerifier(ctx.logKey)]);
    signatureVerified = true;
  } catch (err) {
    problem({
      kind: 'checkpoint-signature',
      where: 'checkpoint.txt',
      message: `not signed by the log key ${report.trust.logKey}: ${(err as Error).message}`,
    });
  }
  if (checkpoint.origin !== ctx.origin)
    problem({
      kind: 'origin-mismatch',
      where: 'checkpoint.txt',
      message: 'the checkpoint is of another log than the bundle names',
      computed: checkpoint.origin,
      claimed: ctx.origin,
    });
  report.checkpoint = { origin: checkpoint.origin, size: checkpoint.size, root: toHex(checkpoint.rootHash), signatureVerified };
  // the saved checkpoint: the bundle's must extend it
  if (ctx.options.savedCheckpoint !== undefined) checkSaved(ctx, ctx.options.savedCheckpoint);
  if (ctx.options.witnesses !== undefined) checkWitnesses(ctx, ctx.options.witnesses);
}

/**
 * The witness policy: each named witness's cosignature of the checkpoint body is checked on its own (a bad one is a
 * problem and does not count); fewer valid ones than required is a problem. Signature lines by other keys are
 * ignored, as a note verifier does.
 */
function checkWitnesses(ctx: VerifyContext, policy: NonNullable<VerifyOptions['witnesses']>): void {
  const verifiers = new Map<string, NoteVerifier>();
  for (const [i, key] of policy.keys.entries()) {
    let verifier: NoteVerifier;
    try {
      verifier = cosignatureVerifier(key);
    } catch (err) {
      throw new Unusable(`witness key ${i + 1}`, `not a witness cosigner key: ${(err as Error).message}`);
    }
    verifiers.set(`${verifier.name} ${toHex(verifier.keyId)}`, verifier);
  }
  if (!Number.isSafeInteger(policy.required) || policy.required < 1 || policy.required > verifiers.size)
    throw new Unusable(
      'witnesses required',
      `${String(policy.required)} is not a number from 1 to the ${verifiers.size} distinct witness keys named`,
    );
  const cosignedBy: { name: string; keyId: string; timestamp: number }[] = [];
  for (const verifier of verifiers.values()) {
    try {
      const [cosignature] = openCosignatures(ctx.files.checkpoint, [verifier]).cosignatures;
      if (cosignature !== undefined) cosignedBy.push({ name: cosignature.name, keyId: toHex(cosignature.keyId), timestamp: cosignature.timestamp });
    } catch (err) {
      ctx.problem({
        kind: 'witness-cosignature',
        where: 'checkpoint.txt',
        message: `the cosignature by witness ${verifier.name} does not verify: ${(err as Error).message}`,
      });
    }
  }
  ctx.report.witnesses = { required: policy.required, named: verifiers.size, cosignedBy };
  if (cosignedBy.length < policy.required)
    ctx.problem({
      kind: 'witnesses-required',
      where: 'checkpoint.txt',
      message: `cosigned by ${cosignedBy.length} of the ${verifiers.size} named witnesses, ${policy.required} required`,
      computed: cosignedBy.length,
      claimed: policy.required,
    });
}

function checkSaved(ctx: VerifyContext, savedNote: string): void {
  const { report, checkpoint: current } = ctx;
  let saved: Checkpoint;
  try {
    saved = parseCheckpoint(parseNote(savedNote).text);
  } catch (err) {
    throw new Unusable('the saved checkpoint', (err as Error).message);
  }
  const where = `saved checkpoint (size ${saved.size})`;
  const savedReport = { size: saved.size, root: toHex(saved.rootHash), consistent: false };
  report.savedCheckpoint = savedReport;
  const fail = (message: string, computed?: string | number, claimed?: string | number): void =>
    ctx.problem({
      kind: 'inconsistent-checkpoint',
      where,
      message,
      ...(computed === undefined ? {} : { computed }),
      ...(claimed === undefined ? {} : { claimed }),
    });
  try {
    openCheckpoint(savedNote, [ed25519NoteVerifier(ctx.logKey)]);
  } catch (err) {
    fail(`not signed by the log key: ${(err as Error).message}`);
    return;
  }
  if (saved.origin !== current.origin) return fail('the saved checkpoint is of another log', saved.origin, current.origin);
  if (saved.size > current.size) return fail("the saved checkpoint is newer than the bundle's: export again", current.size, saved.size);
  if (saved.size === 0) {
    savedReport.consistent = true;
    return;
  }
  if (saved.size === current.size) {
    if (!bytesEqual(saved.rootHash, current.rootHash))
      return fail('two signed roots for the same tree size: the log forked', toHex(current.rootHash), toHex(saved.rootHash));
    savedReport.consistent = true;
    return;
  }
  const proof = consistencyProof(ctx.bundle, saved.size);
  if (proof === undefined) return fail(`the bundle holds no consistency proof from size ${saved.size} to ${current.size}`);
  try {
    verifyConsistency(saved.size, current.size, saved.rootHash, current.rootHash, proof);
    savedReport.consistent = true;
  } catch (err) {
    const details = (err as LabtraceError).details as { computed?: string; claimed?: string } | undefined;
    fail(`the bundle's checkpoint does not extend the saved one: ${(err as Error).message}`, details?.computed, details?.claimed);
  }
}

/** bundle.json's consistency proof from the saved size (undefined: none); unusable when it is not base64. */
function consistencyProof(bundle: Record<string, unknown>, from: number): Uint8Array[] | undefined {
  const proofs = Array.isArray(bundle.consistency) ? (bundle.consistency as unknown[]) : [];
  const entry = proofs.find((p): p is Record<string, unknown> => isObject(p) && p.from === from);
  if (entry === undefined || !Array.isArray(entry.proof)) return undefined;
  try {
    return (entry.proof as unknown[]).map((p) => fromBase64(String(p)));
  } catch (err) {
    throw new Unusable(`bundle.json consistency from ${from}`, (err as Error).message);
  }
}
