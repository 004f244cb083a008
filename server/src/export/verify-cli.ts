// `labtrace verify <bundle-dir> [--checkpoint <file>] [--log-key <verifier key>] [--witness <key>]...
// [--witnesses-required N] [--json]`: checks an export
// bundle offline (protocols/src/verify/verifier.ts). Exit status 0: everything verifies; 1: something does not;
// 2: the input is unusable (a missing file, text that is not JSON, a malformed key or checkpoint, bad arguments).
import { statSync } from 'node:fs';
import { parseArgs } from 'node:util';
// the verifier's own entry points, not the package's whole index: a one-off check loads only what it runs
import {
  exitCodeOf,
  formatReport,
  isDisclosureBundle,
  parseCosignerVerifierKey,
  toHex,
  verifyBundle,
  type BundleFiles,
} from '@labtrace/protocols/verify';
import { Progress, useNodeCrypto, verifyDisclosureInParallel } from '@labtrace/protocols/node/offline';
import { readBundle, readText } from './read-bundle.js';

export const usage = `usage: labtrace verify <bundle-dir | disclosure.json> [--checkpoint <file>] [--log-key <verifier key>]
                       [--witness <key>]... [--witnesses-required <n>] [--json]
  Checks an export bundle ('labtrace export') offline: the checkpoint's signature by the log key, every batch's
  signature by its gateway's key, every Merkle root from the record bytes, every header's inclusion in the log,
  the sequence numbers (gaps, overlaps, duplicates, reordering), that records.jsonl says what the signed
  bytes say, the keys' validity against the logged key events, the export statement signed by the log key
  (nothing cut from the bundle) and the batches just outside the range (boundaries.json).
  A file instead of a folder is a client's selective-disclosure bundle (labtrace-disclosure/v1, from
  GET /api/runs/<id>/disclosure): one run's records, each proven to its gateway's signed batch, the batches'
  log inclusion, the keys, the data-export policy and the lab's signed disclosure statement.
  --checkpoint <file>   a checkpoint of the log saved earlier: the bundle's must extend it (the bundle holds
                        consistency proofs from the last 100 checkpoints the server signed)
  --log-key <key>       the log key to trust (C2SP verifier key); default: the one in the bundle's keys.json
  --witness <key>       a witness to require (its cosigner key, name+keyid+base64); give it once per witness
  --witnesses-required <n>
                        how many of the named witnesses must have cosigned the checkpoint; default: all of them
  --json                prints the report as JSON
  Exit status: 0 verified, 1 something does not verify, 2 the input is unusable.`;

const done = (code: number): { stop(): Promise<void>; done: Promise<number> } => ({ stop: () => Promise.resolve(), done: Promise.resolve(code) });

export function main(argv: string[]): Promise<{ stop(): Promise<void>; done: Promise<number> }> {
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: {
        checkpoint: { type: 'string' },
        'log-key': { type: 'string' },
        witness: { type: 'string', multiple: true },
        'witnesses-required': { type: 'string' },
        json: { type: 'boolean' },
      },
      allowPositionals: true,
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`labtrace verify: ${(err as Error).message}\n${usage}\n`);
    return Promise.resolve(done(2));
  }
  const dir = positionals[0];
  if (dir === undefined || positionals.length > 1) {
    process.stderr.write(`labtrace verify: expected one bundle directory\n${usage}\n`);
    return Promise.resolve(done(2));
  }
  let witnesses: { keys: string[]; required: number } | undefined;
  try {
    witnesses = witnessPolicy(values.witness ?? [], values['witnesses-required']);
  } catch (err) {
    process.stderr.write(`labtrace verify: ${(err as Error).message}\n${usage}\n`);
    return Promise.resolve(done(2));
  }
  let files: BundleFiles | string;
  let savedCheckpoint: string | undefined;
  try {
    let disclosure: string | undefined;
    if (statSync(dir, { throwIfNoEntry: false })?.isFile() === true) {
      disclosure = readText(dir);
      if (!isDisclosureBundle(disclosure)) throw new Error(`${dir} is neither a bundle folder nor a labtrace-disclosure bundle`);
    }
    files = disclosure ?? readBundle(dir);
    if (values.checkpoint !== undefined) savedCheckpoint = readText(values.checkpoint);
  } catch (err) {
    if (values.json) process.stdout.write(`${JSON.stringify({ ok: false, status: 'unusable', error: (err as Error).message })}\n`);
    else process.stderr.write(`labtrace verify: UNUSABLE INPUT: ${(err as Error).message}\n`);
    return Promise.resolve(done(2));
  }
  useNodeCrypto();
  const options = {
    ...(savedCheckpoint === undefined ? {} : { savedCheckpoint }),
    ...(values['log-key'] === undefined ? {} : { logKey: values['log-key'] }),
    ...(witnesses === undefined ? {} : { witnesses }),
  };
  // a client's bundle: its batches' signatures checked on worker threads while the verifier hashes (the same report)
  let verified;
  if (typeof files === 'string') verified = verifyDisclosureInParallel(files, options);
  else {
    // a full bundle's progress (it can be a year of a gateway's batches), on stderr: stdout is the report; none with
    // --json, whose reader wants the report alone
    const progress = values.json === true ? undefined : new Progress('verify', 'batches');
    const declared = declaredBatches(files.bundle);
    const report = verifyBundle(files, progress === undefined ? options : { ...options, progress: (n) => progress.update(n, declared) });
    progress?.finish(`verify: ${report.counts.batches} batches, ${report.counts.records} records`);
    verified = Promise.resolve(report);
  }
  return verified.then((report) => {
    process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    return done(exitCodeOf(report));
  });
}

/**
 * The witness policy of --witness and --witnesses-required: each key must be a cosigner key (type 0x04), and the
 * number required a whole number from 1 to the number of distinct witnesses named (default: all of them, the
 * strictest). Throws a message naming the argument.
 */
export function witnessPolicy(keys: readonly string[], required: string | undefined): { keys: string[]; required: number } | undefined {
  if (keys.length === 0) {
    if (required !== undefined) throw new Error('--witnesses-required: given without any --witness key');
    return undefined;
  }
  const distinct = new Set<string>();
  keys.forEach((key) => {
    let parsed;
    try {
      parsed = parseCosignerVerifierKey(key);
    } catch (err) {
      throw new Error(
        `--witness ${JSON.stringify(key.slice(0, 120))}: not a witness cosigner key (name+keyid+base64 of 0x04 and the key): ${(err as Error).message}`,
        { cause: err },
      );
    }
    distinct.add(`${parsed.name} ${toHex(parsed.keyId)}`);
  });
  if (required === undefined) return { keys: [...keys], required: distinct.size };
  if (!/^[1-9][0-9]{0,5}$/.test(required) || Number(required) > distinct.size)
    throw new Error(
      `--witnesses-required ${JSON.stringify(required.slice(0, 40))}: expected a whole number from 1 to ${distinct.size}, the distinct --witness keys given`,
    );
  return { keys: [...keys], required: Number(required) };
}

/** The number of batches bundle.json declares (for the progress only: the verifier checks it), if it does. */
function declaredBatches(bundle: string): number | undefined {
  try {
    const n = (JSON.parse(bundle) as { counts?: { batches?: unknown } }).counts?.batches;
    return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
  } catch {
    return undefined;
  }
}
