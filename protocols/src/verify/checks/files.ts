// The bundle's files: bundle.json (what was selected), keys.json (the log key and the gateways' keys) and
// checkpoint.txt read into the verification's context, or the bundle is unusable; and, once the batches are read,
// their number and records against what bundle.json declares.
import { toHex } from '../../trust/bytes.js';
import { parseCheckpoint, type Checkpoint } from '../../trust/checkpoint.js';
import { parseVerifierKey, type VerifierKey } from '../../trust/ed25519.js';
import { parseNote } from '../../trust/note.js';
import { BUNDLE_FORMAT, type BundleFiles, type Problem, type VerifyOptions, type VerifyReport } from '../report.js';
import { isCount, isObject, isString, parseJson, Unusable, type GatewayKeyEntry, type VerifyContext } from './context.js';
import { ReadableCheck } from './readable-lines.js';

/** Reads the files every check needs into a context (Unusable when one does not read). */
export function openBundle(report: VerifyReport, files: BundleFiles, options: VerifyOptions, problem: (p: Problem) => void): VerifyContext {
  const { bundle, origin, selection } = readBundleJson(files.bundle);
  report.selection = selection;
  const keys = parseJson(files.keys, 'keys.json');
  if (!isObject(keys) || !isObject(keys.log) || !isString(keys.log.verifierKey) || !Array.isArray(keys.gateways))
    throw new Unusable('keys.json', 'expected {log: {verifierKey}, gateways: [...]}');
  const logKey = readLogKey(report, keys.log.verifierKey, options, problem);
  // the log's name, where keys.json gives it, is that of the bundle (the checkpoint is held to the bundle's)
  if (keys.log.origin !== undefined && keys.log.origin !== origin)
    problem({
      kind: 'origin-mismatch',
      where: 'keys.json log.origin',
      message: 'keys.json names another log than bundle.json',
      computed: origin,
      claimed: JSON.stringify(keys.log.origin),
    });
  const gatewayKeys = readGatewayKeys(report, keys.gateways, problem);
  let checkpoint: Checkpoint;
  try {
    checkpoint = parseCheckpoint(parseNote(files.checkpoint).text);
  } catch (err) {
    throw new Unusable('checkpoint.txt', (err as Error).message);
  }
  return {
    report,
    files,
    options,
    problem,
    bundle,
    origin,
    selection,
    logKey,
    gatewayKeys,
    checkpoint,
    readable: new ReadableCheck(files.recordsBytes ?? files.records, problem),
    keyEvents: [],
    keyEventData: [],
    entries: [],
    signedRecords: 0,
    statement: undefined,
  };
}

/** bundle.json: what was selected, and the consistency proofs from earlier checkpoints */
function readBundleJson(text: string): {
  bundle: Record<string, unknown>;
  origin: string;
  selection: NonNullable<VerifyReport['selection']>;
} {
  const bundle = parseJson(text, 'bundle.json');
  if (!isObject(bundle) || bundle.format !== BUNDLE_FORMAT) throw new Unusable('bundle.json', `not a ${BUNDLE_FORMAT} bundle`);
  const origin = bundle.origin;
  const selection = bundle.selection;
  if (!isString(origin)) throw new Unusable('bundle.json', 'origin: expected a string');
  if (!isObject(selection) || !isString(selection.gateway) || !isString(selection.from) || !isString(selection.to))
    throw new Unusable('bundle.json', 'selection: expected {gateway, from, to}');
  return {
    bundle,
    origin,
    selection: { gateway: selection.gateway, from: selection.from, to: selection.to, created: isString(bundle.created) ? bundle.created : '' },
  };
}

/** The log key: the caller's when given (and keys.json must name the same), else keys.json's. */
export function readLogKey(report: VerifyReport, bundled: string, options: VerifyOptions, problem: (p: Problem) => void): VerifierKey {
  const logKeyText = options.logKey ?? bundled;
  let logKey: VerifierKey;
  try {
    logKey = parseVerifierKey(logKeyText.trim());
  } catch (err) {
    throw new Unusable(options.logKey === undefined ? 'keys.json log.verifierKey' : 'the trusted log key', (err as Error).message);
  }
  report.trust.logKey = logKeyText.trim();
  report.trust.logKeyId = toHex(logKey.keyId);
  if (options.logKey !== undefined && bundled.trim() !== logKeyText.trim())
    problem({
      kind: 'checkpoint-signature',
      where: 'keys.json log.verifierKey',
      message: 'the bundle names another log key than the trusted one',
      computed: logKeyText.trim(),
      claimed: bundled,
    });
  return logKey;
}

/** keys.json's gateway keys, by "gateway keyId", as the bundle states them (key-events.ts holds them to the log). */
export function readGatewayKeys(report: VerifyReport, listed: unknown[], problem: (p: Problem) => void): Map<string, GatewayKeyEntry> {
  const gatewayKeys = new Map<string, GatewayKeyEntry>();
  listed.forEach((k: unknown, i: number) => {
    const where = `keys.json gateways[${i}]`;
    if (!isObject(k) || !isString(k.gateway) || !isString(k.verifierKey))
      throw new Unusable(where, 'expected {gateway, verifierKey, status, validUntil}');
    let key: VerifierKey;
    try {
      key = parseVerifierKey(k.verifierKey);
    } catch (err) {
      throw new Unusable(where, (err as Error).message);
    }
    const keyId = toHex(key.keyId);
    if (k.keyId !== undefined && k.keyId !== keyId)
      problem({
        kind: 'key-validity',
        where: `${where} keyId`,
        message: "the stated key id is not the key's",
        computed: keyId,
        claimed: JSON.stringify(k.keyId),
      });
    const validUntil = isCount(k.validUntil) ? k.validUntil : null;
    const validFrom = isCount(k.registeredAt) ? k.registeredAt : null;
    const status = isString(k.status) ? k.status : 'active';
    const lastValidBatch = isCount(k.lastValidBatch) ? k.lastValidBatch : status === 'revoked' && k.lastValidBatch === null ? null : undefined;
    gatewayKeys.set(`${k.gateway} ${keyId}`, {
      gateway: k.gateway,
      keyId,
      key,
      status,
      validFrom,
      validUntil,
      closedAt: null,
      lastValidBatch,
      replacedBy: null,
    });
    report.trust.gatewayKeys.push({ gateway: k.gateway, keyId, status, validFrom, validUntil, lastValidBatch: lastValidBatch ?? null, logged: null });
  });
  return gatewayKeys;
}

/** Completeness against what bundle.json declares (not signed: only catches an accidental or careless cut). */
export function checkDeclaredCounts(ctx: VerifyContext): void {
  const { entries, problem } = ctx;
  const declared = isObject(ctx.bundle.counts) ? ctx.bundle.counts : {};
  const signedRecords = entries.reduce((n, e) => n + e.records, 0);
  if (isCount(declared.batches) && declared.batches !== entries.length)
    problem({
      kind: 'incomplete',
      where: 'batches.jsonl',
      message: 'bundle.json lists another number of batches than batches.jsonl holds',
      computed: entries.length,
      claimed: declared.batches,
    });
  if (isCount(declared.records) && declared.records !== signedRecords)
    problem({
      kind: 'incomplete',
      where: 'batches.jsonl',
      message: 'bundle.json lists another number of records than the signed batches hold',
      computed: signedRecords,
      claimed: declared.records,
    });
  ctx.signedRecords = signedRecords;
  ctx.report.counts.records = signedRecords;
}
