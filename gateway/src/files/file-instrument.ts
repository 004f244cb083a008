// An instrument whose own software writes a result file per test into a folder. A file is taken once it
// is stable (size and modification time unchanged for the profile's stableMs, and not held open for
// writing where the system says so), hashed (SHA-256), parsed by the profile, and handed to the gateway
// with its raw bytes: the file and its samples are stored in one transaction, the samples' signed records
// carry the hash. A file already taken (same hash, remembered durably) is not taken twice. A file that
// cannot be parsed is moved to the quarantine folder with a .reason.txt beside it and an alarm; no file
// is ever deleted.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdir, open, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import picomatch from 'picomatch';
import type { FileProfile } from '@labtrace/protocols';
import type { Logger } from '../log.js';
import type { InstrumentHealth, InstrumentSource, PolledSample, SourceEvents } from '../source.js';
import { parseResultFile } from './result-parser.js';

/** A result file as taken: what the gateway stores and sends beside its samples. */
export interface TakenFile {
  name: string;
  sha256: string;
  bytes: Buffer;
  takenAt: number;
}

export interface FileInstrumentDeps {
  logger: Logger;
  /** whether this instrument took a file with this hash before (durable) */
  isTaken: (sha256: string) => boolean;
  /** stores the file and its samples together; false when the outbox has no room (the file is tried again later) */
  deliver: (file: TakenFile, samples: PolledSample[]) => boolean;
  now?: () => number;
}

interface Candidate {
  size: number;
  mtimeMs: number;
  /** since when size and mtime have not changed */
  since: number;
}

const LATENCY_WINDOW = 256;
/** the largest result file taken: it travels whole in one MQTT message, and the server's broker takes 8 MiB by default */
export const MAX_FILE_BYTES = 8 * 1024 * 1024 - 64 * 1024;

export class FileInstrument extends EventEmitter<SourceEvents> implements InstrumentSource {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly candidates = new Map<string, Candidate>();
  /** files handled in this run and left in place (afterTaken: leave), by path: size and mtime when handled */
  private readonly handled = new Map<string, string>();
  private readonly health: Omit<InstrumentHealth, 'latencyMs'>;
  private readonly latencies: number[] = [];
  private nextLatency = 0;
  private busy: Promise<void> = Promise.resolve();
  private running = false;
  private readonly include: (name: string) => boolean;
  private readonly exclude: (name: string) => boolean;
  private readonly done: string;
  private readonly quarantine: string;
  private readonly now: () => number;

  constructor(
    readonly profile: FileProfile,
    private readonly deps: FileInstrumentDeps,
  ) {
    super();
    this.now = deps.now ?? Date.now;
    this.include = picomatch(profile.include, { dot: false });
    this.exclude = profile.exclude.length === 0 ? () => false : picomatch(profile.exclude, { dot: true });
    this.done = path.resolve(profile.folder, profile.doneFolder);
    this.quarantine = path.resolve(profile.folder, profile.quarantineFolder);
    this.health = { instrument: profile.id, connected: false, lastGood: null, errors: {}, polls: 0 };
  }

  get id(): string {
    return this.profile.id;
  }

  async start(): Promise<void> {
    this.running = true;
    try {
      await mkdir(this.quarantine, { recursive: true });
      if (this.profile.afterTaken === 'move') await mkdir(this.done, { recursive: true });
    } catch (err) {
      this.count('folder');
      this.deps.logger.error({ folder: this.profile.folder, err: (err as Error).message }, 'ALARM: result folder not usable');
    }
    const folder = path.resolve(this.profile.folder);
    // only the folder itself: done/ and quarantine/ below it are never read again
    const watcher = watch(folder, { depth: 0, ignoreInitial: false, alwaysStat: true, ignorePermissionErrors: true });
    this.watcher = watcher;
    const seen = (file: string): void => {
      if (path.dirname(file) === folder) this.observe(file);
    };
    watcher.on('add', seen);
    watcher.on('change', seen);
    watcher.on('unlink', (file) => this.candidates.delete(file));
    watcher.on('error', (err) => {
      this.count('watch');
      this.deps.logger.warn({ err: String(err) }, 'watching the result folder failed');
    });
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    this.setConnected(true);
    const every = Math.max(25, Math.min(1000, Math.floor(this.profile.stableMs / 4)));
    this.timer = setInterval(() => {
      this.busy = this.busy
        .then(() => this.checkCandidates())
        .catch((err: unknown) => {
          this.deps.logger.error({ err: String(err) }, 'checking result files failed unexpectedly');
        });
    }, every);
  }

  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.busy;
    await this.watcher?.close();
    this.watcher = undefined;
    this.setConnected(false);
  }

  getHealth(): InstrumentHealth {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const at = (p: number): number | null =>
      sorted.length === 0 ? null : (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? null);
    return { ...this.health, errors: { ...this.health.errors }, latencyMs: { p50: at(0.5), p99: at(0.99) } };
  }

  private count(kind: string): void {
    this.health.errors[kind] = (this.health.errors[kind] ?? 0) + 1;
  }

  private setConnected(connected: boolean): void {
    if (this.health.connected === connected) return;
    this.health.connected = connected;
    this.emit('health', this.getHealth());
  }

  /** A file appeared or changed: it waits until it is stable. */
  private observe(file: string): void {
    const name = path.basename(file);
    if (!this.include(name) || this.exclude(name) || name.endsWith('.reason.txt')) return;
    // a change while the file is being taken makes a new candidate: the taking does not forget it (afterTaken)
    this.candidates.set(file, { size: -1, mtimeMs: -1, since: this.now() });
  }

  private async checkCandidates(): Promise<void> {
    for (const [file, c] of [...this.candidates]) {
      if (!this.running) return;
      let st;
      try {
        st = await stat(file);
      } catch {
        this.candidates.delete(file); // gone (moved away by someone else)
        continue;
      }
      if (!st.isFile()) {
        this.candidates.delete(file);
        continue;
      }
      const now = this.now();
      if (st.size !== c.size || st.mtimeMs !== c.mtimeMs) {
        this.candidates.set(file, { size: st.size, mtimeMs: st.mtimeMs, since: now });
        continue;
      }
      if (now - c.since < this.profile.stableMs) continue;
      const key = `${st.size}:${st.mtimeMs}`;
      if (this.handled.get(file) === key) {
        this.candidates.delete(file);
        continue;
      }
      if (await lockedForWriting(file)) {
        c.since = now;
        continue;
      }
      await this.take(file, c, st.mtimeMs);
    }
  }

  /** Takes one stable file: hash, parse, deliver; or quarantine it. */
  private async take(file: string, c: Candidate, mtimeMs: number): Promise<void> {
    const name = path.basename(file);
    const started = this.now();
    if (c.size > MAX_FILE_BYTES) {
      const reason = `${c.size} bytes: larger than the ${MAX_FILE_BYTES} bytes a result file may have (it travels whole in one MQTT message)`;
      await this.toQuarantine(file, 'not-hashed', reason, this.deps.logger.child({ file: name }));
      return;
    }
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (err) {
      this.count('io');
      this.deps.logger.warn({ file: name, err: (err as Error).message }, 'result file not readable yet');
      return;
    }
    if (bytes.length !== c.size) {
      // it changed while being read: wait for it to settle again
      this.candidates.set(file, { size: bytes.length, mtimeMs, since: this.now() });
      return;
    }
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const logger = this.deps.logger.child({ file: name, sha256 });
    if (this.deps.isTaken(sha256)) {
      this.count('duplicate_file');
      logger.warn('result file already taken (same SHA-256): not taken again');
      await this.afterTaken(file, c, mtimeMs, sha256);
      return;
    }
    let samples: PolledSample[];
    try {
      samples = await parseResultFile(this.profile, bytes, Math.round(mtimeMs));
    } catch (err) {
      await this.toQuarantine(file, sha256, (err as Error).message, logger);
      return;
    }
    const taken: TakenFile = { name, sha256, bytes, takenAt: this.now() };
    let delivered: boolean;
    try {
      delivered = this.deps.deliver(taken, samples);
    } catch (err) {
      // a file the outbox can never hold (larger than its bound, a record that does not fit) goes to quarantine
      await this.toQuarantine(file, sha256, `not stored: ${(err as Error).message}`, logger);
      return;
    }
    if (!delivered) {
      this.count('outbox_full');
      logger.warn({ samples: samples.length }, 'outbox full: the result file waits in its folder');
      c.since = this.now();
      return;
    }
    this.health.polls++;
    this.health.lastGood = taken.takenAt;
    this.pushLatency(this.now() - started);
    logger.info({ samples: samples.length, bytes: bytes.length }, 'result file taken');
    this.emit('health', this.getHealth());
    await this.afterTaken(file, c, mtimeMs, sha256);
  }

  /**
   * A file taken (or found taken before): left in place and remembered by the size and time its taken bytes had (a
   * file written again meanwhile differs, and is looked at again), or moved to the done folder.
   */
  private async afterTaken(file: string, c: Candidate, mtimeMs: number, sha256: string): Promise<void> {
    if (this.candidates.get(file) === c) this.candidates.delete(file);
    if (this.profile.afterTaken === 'leave') {
      this.handled.set(file, `${c.size}:${mtimeMs}`);
      return;
    }
    try {
      await rename(file, await freeName(this.done, path.basename(file), sha256));
    } catch (err) {
      this.count('io');
      this.deps.logger.warn({ file: path.basename(file), err: (err as Error).message }, 'taken result file could not be moved to the done folder');
    }
  }

  private async toQuarantine(file: string, sha256: string, reason: string, logger: Logger): Promise<void> {
    this.candidates.delete(file);
    this.count('quarantined');
    const name = path.basename(file);
    logger.error({ reason }, 'ALARM: result file could not be parsed: moved to quarantine');
    try {
      const target = await freeName(this.quarantine, name, sha256);
      await rename(file, target);
      // written aside and renamed: whoever watches the quarantine folder never reads half a reason
      const reasonFile = `${target}.reason.txt`;
      await writeFile(
        `${reasonFile}.part`,
        `${reason}\n\nfile: ${name}\nsha256: ${sha256}\ninstrument: ${this.profile.id}\nquarantined: ${new Date(this.now()).toISOString()}\n`,
      );
      await rename(`${reasonFile}.part`, reasonFile);
    } catch (err) {
      // left where it is, and remembered, so that it is not parsed again and again
      this.count('io');
      const st = await stat(file).catch(() => undefined);
      if (st) this.handled.set(file, `${st.size}:${st.mtimeMs}`);
      logger.error({ err: (err as Error).message }, 'ALARM: the file could not be moved to quarantine: left in place');
    }
    this.emit('health', this.getHealth());
  }

  private pushLatency(ms: number): void {
    this.emit('latency', ms);
    if (this.latencies.length < LATENCY_WINDOW) this.latencies.push(ms);
    else this.latencies[this.nextLatency] = ms;
    this.nextLatency = (this.nextLatency + 1) % LATENCY_WINDOW;
  }
}

/** A name in `dir` not used yet: the file's own, or with the start of its hash added. */
async function freeName(dir: string, name: string, sha256: string): Promise<string> {
  for (const candidate of [name, `${name}.${sha256.slice(0, 12)}`, `${name}.${sha256.slice(0, 12)}.${Date.now()}`]) {
    const target = path.join(dir, candidate);
    try {
      await stat(target);
    } catch {
      return target;
    }
  }
  return path.join(dir, `${name}.${sha256}.${process.hrtime.bigint()}`);
}

/**
 * Whether another program still holds the file open for writing, where the system can tell: Windows refuses
 * to share a file its writer opened without sharing (EBUSY, EPERM). Other systems have no such lock; there
 * the stable size and time decide.
 */
async function lockedForWriting(file: string): Promise<boolean> {
  if (process.platform !== 'win32') return false;
  try {
    const handle = await open(file, 'r+');
    await handle.close();
    return false;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'EBUSY' || code === 'EPERM';
  }
}
