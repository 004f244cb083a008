// A C2SP tlog-witness: POST /add-checkpoint verifies a log's new checkpoint against the latest one this witness
// cosigned (log signature, old size, consistency proof) and answers with a cosignature/v1 line, or refuses and
// keeps the evidence when the log presents a checkpoint that contradicts what it cosigned.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ADD_CHECKPOINT_PATH,
  TLOG_SIZE_CONTENT_TYPE,
  bytesEqual,
  cosignCheckpoint,
  cosignatureSigner,
  describeCheckpoint,
  ed25519NoteVerifier,
  formatCosignerVerifierKey,
  formatTlogSize,
  isTrustError,
  openCheckpoint,
  parseAddCheckpoint,
  toHex,
  verifyConsistency,
  WitnessRequestError,
  type NoteSigner,
  type NoteVerifier,
  type SignerKey,
} from '@labtrace/protocols';
import type { Logger } from '../log.js';
import { WitnessStore, type EvidenceKind } from './witness-store.js';

export interface WitnessLog {
  origin: string;
  /** The log's note verifier keys (`name+keyid+base64(0x01 || key)`); a signature by any one is enough. */
  keys: readonly string[];
}

export interface WitnessOptions {
  key: SignerKey;
  database: string;
  host: string;
  port: number;
  logs: readonly WitnessLog[];
  /** Largest request body accepted, in bytes. */
  maxBodyBytes?: number;
  /** POSIX seconds, for the cosignatures' timestamps and the evidence. */
  now?: () => number;
}

/** An answer of the add-checkpoint endpoint. */
interface Answer {
  status: number;
  body: string;
  contentType?: string;
}

const DEFAULT_MAX_BODY = 64 * 1024;

export class Witness {
  readonly store: WitnessStore;
  private readonly signer: NoteSigner;
  private readonly logs: Map<string, NoteVerifier[]>;
  private readonly now: () => number;
  private server: http.Server | undefined;
  /** One chain of submissions per log: each waits for the one before, so none sees a state another is changing. */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(
    private readonly options: WitnessOptions,
    private readonly logger: Logger,
  ) {
    this.now = options.now ?? (() => Math.floor(Date.now() / 1000));
    this.signer = cosignatureSigner(options.key, this.now);
    this.logs = new Map(options.logs.map((l) => [l.origin, l.keys.map((k) => ed25519NoteVerifier(k))]));
    this.store = new WitnessStore(options.database);
  }

  /** The witness's public key, `name+keyid+base64(0x04 || key)`, as logs and verifiers configure it. */
  get verifierKey(): string {
    return formatCosignerVerifierKey(this.options.key.name, this.options.key.publicKey);
  }

  get url(): string {
    const address = this.server?.address() as AddressInfo | null | undefined;
    if (address === undefined || address === null) throw new Error('the witness is not listening');
    return `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  }

  async start(): Promise<void> {
    this.store.open();
    const server = http.createServer((req, res) => {
      this.serve(req, res).catch((err: unknown) => {
        this.logger.error({ err }, 'witness: request failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('internal error\n');
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.logger.info({ url: this.url, key: this.verifierKey, logs: [...this.logs.keys()] }, 'witness: listening');
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server !== undefined) {
      server.closeIdleConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await Promise.allSettled([...this.queues.values()]);
    this.store.close();
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    let answer: Answer;
    if (path !== ADD_CHECKPOINT_PATH) answer = { status: 404, body: 'not found\n' };
    else if (req.method !== 'POST') answer = { status: 405, body: 'add-checkpoint takes POST\n' };
    else {
      const body = await readBody(req, this.options.maxBodyBytes ?? DEFAULT_MAX_BODY);
      answer = body === undefined ? { status: 413, body: 'request body too large\n' } : await this.addCheckpoint(body);
    }
    // a body left unread (too large) would be taken for the next request: close the connection instead
    if (answer.status === 413) res.shouldKeepAlive = false;
    res.writeHead(answer.status, {
      'content-type': answer.contentType ?? 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(answer.body),
    });
    res.end(answer.body);
  }

  /** Answers one add-checkpoint body (public so that a benchmark can measure cosigning without HTTP). */
  async addCheckpoint(body: Uint8Array): Promise<Answer> {
    let request;
    try {
      request = parseAddCheckpoint(body);
    } catch (err) {
      if (err instanceof WitnessRequestError) return { status: 400, body: `${err.message}\n` };
      throw err;
    }
    const origin = request.checkpoint.origin;
    const verifiers = this.logs.get(origin);
    if (verifiers === undefined) return { status: 404, body: `unknown log "${origin}"\n` };
    // Submissions for one log run one after another; other logs are not held up.
    const previous = this.queues.get(origin) ?? Promise.resolve();
    const run = previous.then(() => this.decide(request, verifiers, body));
    const tail = run.catch(() => undefined);
    this.queues.set(origin, tail);
    void tail.then(() => {
      if (this.queues.get(origin) === tail) this.queues.delete(origin);
    });
    return run;
  }

  private decide(request: ReturnType<typeof parseAddCheckpoint>, verifiers: NoteVerifier[], body: Uint8Array): Answer {
    const { oldSize, proof, note, checkpoint } = request;
    try {
      openCheckpoint(note, verifiers, { origin: checkpoint.origin });
    } catch (err) {
      if (isTrustError(err)) return { status: 403, body: `no valid signature by the log's keys: ${err.message}\n` };
      throw err;
    }
    if (oldSize > checkpoint.size) return { status: 400, body: `old size ${oldSize} is above the checkpoint's size ${checkpoint.size}\n` };
    const latest = this.store.latest(checkpoint.origin);
    const latestSize = latest?.size ?? 0;
    const conflict = (): Answer => ({ status: 409, body: formatTlogSize(latestSize), contentType: TLOG_SIZE_CONTENT_TYPE });
    if (oldSize !== latestSize) return conflict();
    if (latest !== undefined && oldSize === checkpoint.size && !bytesEqual(latest.rootHash, checkpoint.rootHash)) {
      this.keep(
        'fork',
        checkpoint.origin,
        body,
        latest.note,
        `two roots for size ${checkpoint.size}: cosigned ${toHex(latest.rootHash)}, now ${toHex(checkpoint.rootHash)}`,
      );
      return conflict();
    }
    if (latest !== undefined && oldSize > 0) {
      try {
        verifyConsistency(oldSize, checkpoint.size, latest.rootHash, checkpoint.rootHash, proof);
      } catch (err) {
        if (!isTrustError(err)) throw err;
        this.keep('bad-proof', checkpoint.origin, body, latest.note, err.message);
        return { status: 422, body: `the consistency proof from size ${oldSize} does not verify: ${err.message}\n` };
      }
    }
    if (!this.store.advance(oldSize, { origin: checkpoint.origin, size: checkpoint.size, rootHash: checkpoint.rootHash, note })) {
      return { status: 409, body: formatTlogSize(this.store.latest(checkpoint.origin)?.size ?? 0), contentType: TLOG_SIZE_CONTENT_TYPE };
    }
    const line = cosignCheckpoint(request.parsedNote.text, this.signer);
    this.logger.info({ origin: checkpoint.origin, size: checkpoint.size, oldSize }, `witness: cosigned ${describeCheckpoint(checkpoint)}`);
    return { status: 200, body: line };
  }

  private keep(kind: EvidenceKind, origin: string, body: Uint8Array, cosignedNote: string, reason: string): void {
    const request = Buffer.from(body).toString('utf8');
    this.store.keepEvidence({ origin, kind, receivedAt: new Date(this.now() * 1000).toISOString(), request, cosignedNote, reason });
    this.logger.warn({ origin, kind, reason }, 'witness: refused a checkpoint that contradicts the one it cosigned; evidence kept');
  }
}

/** The request body, or undefined when it is larger than `limit` bytes. */
async function readBody(req: http.IncomingMessage, limit: number): Promise<Uint8Array | undefined> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > limit) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
