// The wire format of C2SP tlog-witness: the add-checkpoint request body (`old <size>`, up to 63 base64
// consistency-proof hashes, a blank line, the signed checkpoint) and the 409 answer's body (`<size>\n`). Pure
// parsing: whether the checkpoint's signatures and the proof verify is the witness's business.
import { fromBase64, fromUtf8, toBase64 } from './bytes.js';
import { LabtraceError } from '../errors.js';
import { parseCheckpoint, type Checkpoint } from './checkpoint.js';
import { parseNote, type Note } from './note.js';
import { HASH_SIZE } from './sha256.js';

export const ADD_CHECKPOINT_PATH = '/add-checkpoint';
/** The Content-Type of a witness's 409 answer, whose body is its latest cosigned size and a newline. */
export const TLOG_SIZE_CONTENT_TYPE = 'text/x.tlog.size';
/** A client must not send more proof lines than this (enough for any tree of up to 2^63 leaves). */
export const MAX_PROOF_LINES = 63;

/** What is wrong with a request body, in `details.problem` of the error. */
export type WitnessRequestProblem =
  'not-text' | 'no-blank-line' | 'old-line' | 'old-size' | 'proof-hash' | 'too-many-proof-lines' | 'proof-from-zero' | 'checkpoint';

export class WitnessRequestError extends LabtraceError {
  readonly problem: WitnessRequestProblem;

  constructor(problem: WitnessRequestProblem, message: string, cause?: unknown) {
    super('E_BAD_REQUEST', `add-checkpoint request: ${message}`, { details: { problem }, ...(cause === undefined ? {} : { cause }) });
    this.name = 'WitnessRequestError';
    this.problem = problem;
  }
}

export interface AddCheckpointRequest {
  /** The size of the checkpoint the witness last cosigned, as the client believes it. */
  oldSize: number;
  /** Consistency proof from oldSize to the checkpoint's size (RFC 6962 section 2.1.2); empty when oldSize is 0. */
  proof: Uint8Array[];
  /** The signed checkpoint note, exactly as sent. */
  note: string;
}

export interface ParsedAddCheckpoint extends AddCheckpointRequest {
  /** The note split into text and signature lines, none of them checked. */
  parsedNote: Note;
  /** The checkpoint body, not yet verified. */
  checkpoint: Checkpoint;
}

const DECIMAL = /^(?:0|[1-9][0-9]*)$/;

export function formatAddCheckpoint(request: AddCheckpointRequest): string {
  const { oldSize, proof, note } = request;
  if (!Number.isSafeInteger(oldSize) || oldSize < 0)
    throw new WitnessRequestError('old-size', `old size ${String(oldSize)} is not an integer in 0..2^53-1`);
  if (proof.length > MAX_PROOF_LINES)
    throw new WitnessRequestError('too-many-proof-lines', `${proof.length} proof hashes, at most ${MAX_PROOF_LINES}`);
  if (oldSize === 0 && proof.length > 0) throw new WitnessRequestError('proof-from-zero', 'the proof must be empty when the old size is 0');
  proof.forEach((hash, i) => {
    if (hash.length !== HASH_SIZE) throw new WitnessRequestError('proof-hash', `proof hash ${i + 1} has ${hash.length} bytes, not ${HASH_SIZE}`);
  });
  parseNote(note);
  return [`old ${oldSize}`, ...proof.map(toBase64), '', ''].join('\n') + note;
}

/** Parses an add-checkpoint request body; throws a WitnessRequestError (E_BAD_REQUEST, HTTP 400) naming the problem. */
export function parseAddCheckpoint(body: string | Uint8Array): ParsedAddCheckpoint {
  let text: string;
  try {
    text = typeof body === 'string' ? body : fromUtf8(body);
  } catch (cause) {
    throw new WitnessRequestError('not-text', 'the body is not UTF-8 text', cause);
  }
  const blank = text.indexOf('\n\n');
  if (blank < 0) throw new WitnessRequestError('no-blank-line', 'no empty line between the old size and proof lines and the checkpoint');
  const [oldLine = '', ...proofLines] = text.slice(0, blank).split('\n');
  if (!oldLine.startsWith('old ')) throw new WitnessRequestError('old-line', `the first line must be "old <size>", not "${oldLine.slice(0, 40)}"`);
  const sizeText = oldLine.slice(4);
  if (!DECIMAL.test(sizeText))
    throw new WitnessRequestError('old-size', `old size "${sizeText.slice(0, 40)}" is not a decimal number without leading zeros`);
  const oldSize = Number(sizeText);
  if (!Number.isSafeInteger(oldSize))
    throw new WitnessRequestError('old-size', `old size ${sizeText} is larger than 2^53-1, which this witness supports`);
  if (proofLines.length > MAX_PROOF_LINES) {
    throw new WitnessRequestError('too-many-proof-lines', `${proofLines.length} proof lines, at most ${MAX_PROOF_LINES}`);
  }
  if (oldSize === 0 && proofLines.length > 0) throw new WitnessRequestError('proof-from-zero', 'the proof must be empty when the old size is 0');
  const proof = proofLines.map((line, i) => {
    let hash: Uint8Array;
    try {
      hash = fromBase64(line);
    } catch (cause) {
      throw new WitnessRequestError('proof-hash', `proof line ${i + 1} is not standard base64`, cause);
    }
    if (hash.length !== HASH_SIZE) throw new WitnessRequestError('proof-hash', `proof line ${i + 1} has ${hash.length} bytes, not ${HASH_SIZE}`);
    return hash;
  });
  const note = text.slice(blank + 2);
  let parsedNote: Note;
  let checkpoint: Checkpoint;
  try {
    parsedNote = parseNote(note);
    checkpoint = parseCheckpoint(parsedNote.text);
  } catch (cause) {
    throw new WitnessRequestError('checkpoint', `the checkpoint: ${cause instanceof Error ? cause.message : String(cause)}`, cause);
  }
  return { oldSize, proof, note, parsedNote, checkpoint };
}

/** The body of a 409 answer: the witness's latest cosigned size and a newline. */
export function formatTlogSize(size: number): string {
  if (!Number.isSafeInteger(size) || size < 0) throw new WitnessRequestError('old-size', `size ${String(size)} is not an integer in 0..2^53-1`);
  return `${size}\n`;
}

export function parseTlogSize(body: string): number {
  const line = body.endsWith('\n') ? body.slice(0, -1) : undefined;
  if (line === undefined || !DECIMAL.test(line) || !Number.isSafeInteger(Number(line))) {
    throw new WitnessRequestError('old-size', `a tree size answer is a decimal number and a newline, not "${body.slice(0, 40)}"`);
  }
  return Number(line);
}
