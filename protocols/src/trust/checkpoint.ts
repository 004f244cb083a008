// C2SP tlog-checkpoint: the signed statement of a log's size and root, `origin\nsize\nbase64(root)\n` followed
// by optional extension lines, carried in a signed note.
import { fromBase64, toBase64, toHex } from './bytes.js';
import { TrustError } from './errors.js';
import { openNote, signNote, type NoteSigner, type NoteVerifier, type OpenedNote } from './note.js';
import { HASH_SIZE } from './sha256.js';

export interface Checkpoint {
  /** The log's unique name, by convention a schema-less URL. */
  origin: string;
  size: number;
  rootHash: Uint8Array;
  extensions: readonly string[];
}

export interface OpenedCheckpoint extends OpenedNote {
  checkpoint: Checkpoint;
}

const DECIMAL = /^(?:0|[1-9][0-9]*)$/;

export function formatCheckpoint(checkpoint: Checkpoint): string {
  const { origin, size, rootHash, extensions } = checkpoint;
  if (origin === '' || origin.includes('\n')) throw bad('the origin must be one non-empty line');
  if (!Number.isSafeInteger(size) || size < 0) throw bad(`tree size ${String(size)} is not an integer in 0..2^53-1`);
  if (rootHash.length !== HASH_SIZE) throw bad(`the root hash has ${rootHash.length} bytes, not ${HASH_SIZE}`);
  for (const line of extensions) if (line === '' || line.includes('\n')) throw bad('extension lines must be single non-empty lines');
  return [origin, String(size), toBase64(rootHash), ...extensions].map((line) => `${line}\n`).join('');
}

/** Parses a checkpoint body (the text of its signed note). */
export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith('\n')) throw bad('the body must end with a newline');
  const [origin, sizeLine, rootLine, ...extensions] = text.slice(0, -1).split('\n');
  if (origin === undefined || origin === '') throw bad('the first line (origin) is empty');
  if (sizeLine === undefined || rootLine === undefined) throw bad('a checkpoint has at least three lines: origin, tree size, root hash');
  if (!DECIMAL.test(sizeLine)) throw bad(`tree size "${sizeLine.slice(0, 40)}" is not a decimal number without leading zeros`);
  const size = Number(sizeLine);
  if (!Number.isSafeInteger(size)) throw bad(`tree size ${sizeLine} is larger than 2^53-1, which this implementation supports`);
  let rootHash: Uint8Array;
  try {
    rootHash = fromBase64(rootLine);
  } catch {
    throw bad(`root hash "${rootLine.slice(0, 60)}" is not standard base64`);
  }
  if (rootHash.length !== HASH_SIZE) throw bad(`the root hash has ${rootHash.length} bytes, not ${HASH_SIZE}`);
  if (extensions.some((line) => line === '')) throw bad('extension lines must not be empty');
  return { origin, size, rootHash, extensions };
}

export function signCheckpoint(checkpoint: Checkpoint, signers: readonly NoteSigner[]): string {
  return signNote(formatCheckpoint(checkpoint), signers);
}

/**
 * Verifies a signed checkpoint against the log's key and parses its body. Pass only keys whose signature alone
 * should make the checkpoint acceptable (normally the log's): any one of them suffices, and signatures by other
 * keys (witnesses) come back unchecked in `unverified`. With `origin`, a checkpoint of another log is refused
 * even if a known key signed it.
 */
export function openCheckpoint(note: string | Uint8Array, verifiers: readonly NoteVerifier[], options: { origin?: string } = {}): OpenedCheckpoint {
  const opened = openNote(note, verifiers);
  const checkpoint = parseCheckpoint(opened.text);
  if (options.origin !== undefined && checkpoint.origin !== options.origin) {
    throw new TrustError('origin-mismatch', `checkpoint is for log "${checkpoint.origin}", expected "${options.origin}"`, {
      origin: checkpoint.origin,
      expected: options.origin,
    });
  }
  return { ...opened, checkpoint };
}

/** One line for people: origin, size and root in hex. */
export function describeCheckpoint(checkpoint: Checkpoint): string {
  return `${checkpoint.origin} size ${checkpoint.size} root ${toHex(checkpoint.rootHash)}`;
}

function bad(problem: string): TrustError {
  return new TrustError('bad-checkpoint', `malformed checkpoint: ${problem}`);
}
