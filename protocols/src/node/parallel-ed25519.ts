// Ed25519 checks of a verification spread over worker threads (Node only; the browser has webcrypto.ts, and the
// verifier itself stays synchronous and single-threaded): a client's bundle of a one-hour run holds some 18,000
// signed batches, about a second of signature checks on one core, where the rest of its verification is less.
// As in webcrypto.ts:
//   1. the verifier runs once with a recording Ed25519 check that answers "valid" and keeps every (signature,
//      message, key) it is asked about; once there are enough of them to be worth it, they go in slices to worker
//      threads, which check them with Node's crypto while the verifier goes on hashing. Given the text being
//      verified, the workers rather start at once and check the batch headers and signatures they find in it
//      while the verifier parses it (a guess: an answer counts only for the very same signature, message and key
//      bytes; whatever they did not foresee is checked after the run);
//   2. all of them are awaited (few of them, under the threshold: checked on this thread);
//   3. when every one is valid, the first run's report is the report (the verifier got the true answers); otherwise
//      the verifier runs again, answered from those results (and by Node's crypto on this thread for any call the
//      first run did not make), so a report with a bad signature is exactly the one the synchronous verifier gives.
// The check is Node's crypto (OpenSSL's RFC 8032 verification) on every thread, as useNodeCrypto installs it.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { bytesEqual, toBase64 } from '../trust/bytes.js';
import { ed25519VerifierInUse, useEd25519Verifier } from '../trust/ed25519.js';

/** What a worker gets: signatures (64 bytes each), raw public keys (32 each) and messages (message i is messages[ends[i]..ends[i+1])). */
export interface SignatureSlice {
  id: number;
  signatures: Uint8Array;
  publicKeys: Uint8Array;
  messages: Uint8Array;
  ends: Uint32Array;
}

type Verify = (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => boolean;

interface Call {
  signature: Uint8Array;
  message: Uint8Array;
  publicKey: Uint8Array;
}

/** signatures per slice sent to a worker: some 15 ms of work, so that the threads start early and share evenly */
const SLICE = 256;
/** below this many signatures, starting threads costs more than it saves: all are checked on this thread */
export const PARALLEL_THRESHOLD = 512;

export interface ParallelOptions {
  /** worker threads (default: the cores available, at most 4); 0 checks everything on this thread */
  threads?: number;
  /**
   * the text being verified, for the workers to look ahead in (a disclosure bundle's: its batch headers; the
   * workers start at once). On a loaded two-core machine this cost more CPU (each worker decodes and scans the
   * whole text) than the parse it overlaps saved; `labtrace verify` does not use it.
   */
  ahead?: string;
}

/** A bundle's text (UTF-8, shared), and the share of it [from, to) (in characters) in which a worker looks for headers and signatures. */
export interface AheadRequest {
  id: number;
  bytes: Uint8Array;
  from: number;
  to: number;
}

/** What a worker found ahead: signatures, keys and messages as in a slice, and whether each is valid. */
type Found = SignatureSlice & { valid: Uint8Array };

/** A few worker threads checking slices of signatures; each slice's answer is a promise. */
class Ed25519Workers {
  readonly #workers: Worker[] = [];
  readonly #waiting = new Map<number, { resolve: (answer: { valid?: Uint8Array; found?: Found }) => void; reject: (err: Error) => void }>();
  #next = 0;
  #turn = 0;

  constructor(threads: number) {
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(new URL('./ed25519-worker.js', import.meta.url));
      worker.on('message', (answer: { id: number; valid?: Uint8Array; found?: Found }) => {
        this.#waiting.get(answer.id)?.resolve(answer);
        this.#waiting.delete(answer.id);
      });
      // a worker that fails fails its requests: they are checked on this thread instead
      worker.on('error', (err) => this.#failAll(err));
      worker.on('exit', () => this.#failAll(new Error('an Ed25519 worker stopped')));
      this.#workers.push(worker);
    }
  }

  get threads(): number {
    return this.#workers.length;
  }

  async check(calls: readonly Call[]): Promise<Uint8Array> {
    let length = 0;
    for (const c of calls) length += c.message.length;
    const signatures = new Uint8Array(64 * calls.length);
    const publicKeys = new Uint8Array(32 * calls.length);
    const messages = new Uint8Array(length);
    const ends = new Uint32Array(calls.length + 1);
    let at = 0;
    calls.forEach((c, i) => {
      signatures.set(c.signature, 64 * i);
      publicKeys.set(c.publicKey, 32 * i);
      messages.set(c.message, at);
      at += c.message.length;
      ends[i + 1] = at;
    });
    const id = this.#next++;
    const answer = await this.#send(this.#turn++, { kind: 'check', id, signatures, publicKeys, messages, ends }, [
      signatures.buffer,
      publicKeys.buffer,
      messages.buffer,
      ends.buffer,
    ]);
    if (answer.valid === undefined) throw new Error('an Ed25519 worker answered without its results');
    return answer.valid;
  }

  /** Each worker looks in its share of the text for headers and signatures and checks them. */
  ahead(text: string): Promise<Found>[] {
    const n = this.#workers.length;
    // the text's UTF-8 once, shared: posting the string itself copies it to each worker on this thread
    const bytes = new Uint8Array(new SharedArrayBuffer(Buffer.byteLength(text)));
    Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).write(text, 'utf8');
    return this.#workers.map(async (_, k) => {
      const id = this.#next++;
      const from = Math.floor((text.length * k) / n);
      const to = k === n - 1 ? text.length : Math.floor((text.length * (k + 1)) / n);
      const answer = await this.#send(k, { kind: 'ahead', id, bytes, from, to }, []);
      if (answer.found === undefined) throw new Error('an Ed25519 worker answered without what it found');
      return answer.found;
    });
  }

  async stop(): Promise<void> {
    const workers = this.#workers.splice(0);
    await Promise.all(workers.map((w) => w.terminate()));
  }

  #send(
    turn: number,
    request: { id: number; kind: string } & Record<string, unknown>,
    transfer: ArrayBuffer[],
  ): Promise<{ valid?: Uint8Array; found?: Found }> {
    const worker = this.#workers[turn % Math.max(1, this.#workers.length)];
    return new Promise((resolve, reject) => {
      if (worker === undefined) {
        reject(new Error('no Ed25519 worker'));
        return;
      }
      this.#waiting.set(request.id, { resolve, reject });
      worker.postMessage(request, transfer);
    });
  }

  #failAll(err: Error): void {
    for (const w of this.#waiting.values()) w.reject(err);
    this.#waiting.clear();
  }
}

/** The answers found ahead, by signature: a call is answered only when its signature, key and message are the same bytes. */
class FoundAhead {
  readonly #bySignature = new Map<string, { found: Found; i: number }>();

  add(found: Found): void {
    const count = found.ends.length - 1;
    for (let i = 0; i < count; i++)
      this.#bySignature.set(Buffer.from(found.signatures.buffer, found.signatures.byteOffset + 64 * i, 64).toString('base64'), { found, i });
  }

  /** 1 or 0 when this very call was checked ahead, else undefined */
  answer(c: Call): number | undefined {
    const hit = this.#bySignature.get(Buffer.from(c.signature.buffer, c.signature.byteOffset, c.signature.byteLength).toString('base64'));
    if (hit === undefined) return undefined;
    const { found, i } = hit;
    const message = found.messages.subarray(found.ends[i], found.ends[i + 1]);
    const publicKey = found.publicKeys.subarray(32 * i, 32 * i + 32);
    return bytesEqual(message, c.message) && bytesEqual(publicKey, c.publicKey) ? found.valid[i] : undefined;
  }
}

const callId = (c: Call): string => `${toBase64(c.publicKey)} ${toBase64(c.signature)} ${toBase64(c.message)}`;

/**
 * Runs `run` (a synchronous verification) with its Ed25519 checks done by `verify` spread over worker threads that
 * use Node's crypto; the answer is the one `run` gives with `verify` installed. `verify` is what this thread checks
 * with (Node's crypto verification: the one useNodeCrypto installs). With `ahead` (the text being verified, large
 * enough to be worth it), the workers start at once and check the headers and signatures they find in it while this
 * thread parses and hashes; the calls they did not foresee are checked after the run. Not re-entrant: it installs
 * the package's Ed25519 check while `run` runs.
 */
export async function withParallelEd25519<T>(run: () => T, verify: Verify, options: ParallelOptions = {}): Promise<T> {
  const threads = Math.max(0, Math.floor(options.threads ?? Math.min(availableParallelism(), 4)));
  const previous = ed25519VerifierInUse();
  const calls: Call[] = [];
  /** what the workers were asked: the calls (by number) and their answers, in that order */
  const asked: { calls: number[]; valid: Promise<Uint8Array> }[] = [];
  /** the calls sent to the workers so far (calls[0..sent)), and the workers once started */
  const state: { sent: number; workers: Ed25519Workers | undefined } = { sent: 0, workers: undefined };
  const ask = (numbers: number[]): void => {
    state.workers ??= new Ed25519Workers(threads);
    const valid = state.workers.check(numbers.map((i) => calls[i] as Call));
    // awaited below; a rejection before then must not count as unhandled
    void valid.catch(() => undefined);
    asked.push({ calls: numbers, valid });
  };
  const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, k) => from + k);
  const aheadText = threads > 0 ? options.ahead : undefined;
  let found: Promise<Found>[] = [];
  if (aheadText !== undefined) {
    state.workers = new Ed25519Workers(threads);
    found = state.workers.ahead(aheadText);
    for (const f of found) void f.catch(() => undefined);
  }
  try {
    let first: T;
    try {
      useEd25519Verifier((signature, message, publicKey) => {
        // copies: the verifier may reuse its buffers
        calls.push({ signature: signature.slice(), message: message.slice(), publicKey: publicKey.slice() });
        // without a look ahead, slices go to the workers as the run makes them
        if (aheadText === undefined && threads > 0 && calls.length >= PARALLEL_THRESHOLD && calls.length - state.sent >= SLICE) {
          ask(range(state.sent, calls.length));
          state.sent = calls.length;
        }
        return true;
      });
      first = run();
    } finally {
      useEd25519Verifier(previous);
    }
    const valid = new Uint8Array(calls.length);
    /** the calls nobody checked or was asked to check yet */
    let open: number[] = [];
    if (aheadText !== undefined) {
      const ahead = new FoundAhead();
      for (const f of found) {
        try {
          ahead.add(await f);
        } catch {
          // that share of the text: its calls are checked below
        }
      }
      calls.forEach((c, i) => {
        const answer = ahead.answer(c);
        if (answer === undefined) open.push(i);
        else valid[i] = answer;
      });
    } else open = range(state.sent, calls.length);
    // what is left: on the workers when there are many, else here
    const workers = state.workers;
    if (workers !== undefined && open.length >= (aheadText === undefined ? 1 : PARALLEL_THRESHOLD)) {
      const per = Math.ceil(open.length / workers.threads);
      for (let from = 0; from < open.length; from += per) ask(open.slice(from, from + per));
      open = [];
    }
    for (const i of open) valid[i] = check(verify, calls[i] as Call) ? 1 : 0;
    for (const a of asked) {
      try {
        const answers = await a.valid;
        a.calls.forEach((i, k) => (valid[i] = answers[k] ?? 0));
      } catch {
        // the worker failed: its calls are checked here
        for (const i of a.calls) valid[i] = check(verify, calls[i] as Call) ? 1 : 0;
      }
    }
    if (valid.every((v) => v === 1)) return first;
    const known = new Map<string, boolean>();
    calls.forEach((c, i) => known.set(callId(c), valid[i] === 1));
    try {
      useEd25519Verifier(
        (signature, message, publicKey) => known.get(callId({ signature, message, publicKey })) ?? verify(signature, message, publicKey),
      );
      return run();
    } finally {
      useEd25519Verifier(previous);
    }
  } finally {
    await state.workers?.stop();
  }
}

/** as verifyEd25519 calls an installed check: an exception is a bad signature */
function check(verify: Verify, c: Call): boolean {
  try {
    return verify(c.signature, c.message, c.publicKey);
  } catch {
    return false;
  }
}
