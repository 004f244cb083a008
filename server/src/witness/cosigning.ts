// The lab's side of its witnesses, in the background: each configured witness gets the log's latest signed checkpoint
// (never an intermediate one it missed) with a consistency proof from the size it last cosigned, and the cosignature
// it answers is stored with that checkpoint (log/cosignatures.ts). Each witness has its own loop, so a witness that
// is down or slow delays its own cosignatures only; nothing here is on the path of ingest or checkpoint signing, which
// never wait for it. A failed submission is retried after a back-off that doubles up to `maxBackoffMs`.
import { setTimeout as sleep } from 'node:timers/promises';
import { LabtraceError } from '@labtrace/protocols';
import type { CosignatureStore, StoredCosignature } from '../log/cosignatures.js';
import type { WitnessEndpointConfig } from '../log/config.js';
import type { StoredCheckpoint } from '../log/transparency-log.js';
import type { Logger } from '../log.js';
import { WitnessClient } from './witness-client.js';

/** What the cosigning needs of the log: its latest checkpoint and consistency proofs (a LogReader is one). */
export interface CosigningLog {
  latestCheckpoint(): Promise<StoredCheckpoint>;
  consistencyProof(from: number, to: number): Promise<Uint8Array[]>;
}

/** the lease of the node that submits to the witnesses, when the lab runs on several nodes */
export const COSIGNING_JOB = 'witness-cosigning';

export interface WitnessState {
  name: string;
  key: string;
  url: string;
  /** the latest cosignature the lab holds from this witness (from whichever node submitted it) */
  cosigned: { size: number; witnessTime: number; receivedAt: number } | null;
  /** whether this node submits to the witness now (on PostgreSQL the node holding the job's lease) */
  submitting: boolean;
  /** this node's last failed submission, if any (it stays after a later success: compare with cosigned.receivedAt) */
  lastError: { code: string; message: string; at: number } | null;
  /** failures since the last success, on this node */
  failures: number;
}

export interface WitnessCosigningOptions {
  witnesses: readonly WitnessEndpointConfig[];
  /** the log once it is open (undefined before) */
  log: () => CosigningLog | undefined;
  store: CosignatureStore;
  logger: Logger;
  /** how often each witness's loop looks for a new checkpoint (default 1000 ms) */
  pollMs?: number;
  /** the first retry after a failure (default 1000 ms), doubled on each failure up to maxBackoffMs (default 60 s) */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** one submission's timeout (default 10 s) */
  timeoutMs?: number;
  now?: () => number;
}

interface Runner {
  endpoint: WitnessEndpointConfig;
  client: WitnessClient;
  /** the size of the checkpoint last cosigned, as this node knows it (-1: none) */
  cosignedSize: number;
  lastError: WitnessState['lastError'];
  failures: number;
}

export class WitnessCosigning {
  readonly #options: WitnessCosigningOptions;
  readonly #runners: Runner[];
  #abort: AbortController | undefined;
  #loops: Promise<void>[] = [];
  readonly #now: () => number;
  #registered = false;

  constructor(options: WitnessCosigningOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#runners = options.witnesses.map((endpoint) => ({
      endpoint,
      client: new WitnessClient(endpoint, { timeoutMs: options.timeoutMs ?? 10_000 }),
      cosignedSize: -1,
      lastError: null,
      failures: 0,
    }));
  }

  /** whether any witness is configured */
  get configured(): boolean {
    return this.#runners.length > 0;
  }

  /** Starts one loop per witness (none configured: nothing runs). */
  async start(): Promise<void> {
    if (this.#abort !== undefined || this.#runners.length === 0) return;
    const latest = await this.#options.store.latest();
    for (const runner of this.#runners) {
      const mine = latest.filter((c) => c.witness === runner.client.name && c.keyId === runner.client.keyIdHex);
      runner.cosignedSize = Math.max(-1, ...mine.map((c) => c.size));
    }
    const abort = new AbortController();
    this.#abort = abort;
    this.#loops = this.#runners.map((runner) => this.#loop(runner, abort.signal));
  }

  async stop(): Promise<void> {
    const abort = this.#abort;
    if (abort === undefined) return;
    abort.abort();
    await Promise.all(this.#loops);
    this.#loops = [];
    this.#abort = undefined;
  }

  /**
   * On several nodes (PostgreSQL): one node at a time submits, the one holding the lease `witness-cosigning` (the
   * checkpoints are signed by whichever node holds the log's lock, so the lease is the cosigning's own). Registers the
   * job once, when witnesses are configured.
   */
  runAsJob(jobs: { runOnce(name: string, job: (context: { signal: AbortSignal }) => Promise<void>): void }): void {
    if (this.#registered || this.#runners.length === 0) return;
    this.#registered = true;
    jobs.runOnce(COSIGNING_JOB, ({ signal }) => this.runWhile(signal));
  }

  /** Runs while `signal` is not aborted: the job of the node holding the cosigning lease (PostgreSQL). */
  async runWhile(signal: AbortSignal): Promise<void> {
    await this.start();
    try {
      if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    } finally {
      await this.stop();
    }
  }

  /** Each configured witness's state: its latest stored cosignature, and this node's submissions. */
  async state(): Promise<WitnessState[]> {
    const latest = this.#runners.length === 0 ? [] : await this.#options.store.latest();
    return this.#runners.map((runner) => {
      const stored: StoredCosignature | undefined = latest.find((c) => c.witness === runner.client.name && c.keyId === runner.client.keyIdHex);
      return {
        name: runner.client.name,
        key: runner.endpoint.key,
        url: runner.endpoint.url,
        cosigned: stored === undefined ? null : { size: stored.size, witnessTime: stored.witnessTime, receivedAt: stored.receivedAt },
        submitting: this.#abort !== undefined,
        lastError: runner.lastError,
        failures: runner.failures,
      };
    });
  }

  async #loop(runner: Runner, signal: AbortSignal): Promise<void> {
    const { pollMs = 1000, minBackoffMs = 1000, maxBackoffMs = 60_000 } = this.#options;
    while (!signal.aborted) {
      let delay = pollMs;
      try {
        await this.#submitLatest(runner);
        runner.failures = 0;
      } catch (err) {
        runner.failures++;
        const code = err instanceof LabtraceError ? err.code : 'E_INTERNAL';
        runner.lastError = { code, message: (err as Error).message, at: this.#now() };
        delay = Math.min(maxBackoffMs, minBackoffMs * 2 ** Math.min(runner.failures - 1, 30));
        // a witness holding another history than the lab's is an alarm; one that cannot be reached is not yet
        const log = this.#options.logger;
        const fields = { witness: runner.client.name, code, failures: runner.failures, retryInMs: delay, err: (err as Error).message };
        if (code === 'E_CONFLICT' || code === 'E_AUTH') log.error(fields, 'ALARM: a witness refused the log checkpoint');
        else log.warn(fields, 'a witness did not cosign the log checkpoint; retrying later');
      }
      try {
        await sleep(delay, undefined, { signal });
      } catch {
        return; // aborted: stopping
      }
    }
  }

  /** Submits the log's latest checkpoint if this witness has not cosigned it yet. */
  async #submitLatest(runner: Runner): Promise<void> {
    const log = this.#options.log();
    if (log === undefined) return;
    const latest = await log.latestCheckpoint();
    if (latest.size <= runner.cosignedSize) return;
    const { cosignature, line } = await runner.client.cosign(latest.note, (oldSize) => log.consistencyProof(oldSize, latest.size));
    await this.#options.store.add(latest.size, cosignature, line, this.#now());
    runner.cosignedSize = latest.size;
    this.#options.logger.debug({ witness: runner.client.name, size: latest.size }, 'a witness cosigned the log checkpoint');
  }
}
