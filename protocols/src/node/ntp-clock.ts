// This process's own clock against NTP servers (config `clock.ntp`), shared by the server and the gateway: every
// `everySeconds` each server is asked once, and the reading with the lowest delay (the least room for an asymmetric
// path) is the estimate. Going beyond `maxOffsetMs` is one change, coming back within half of it another; no answer
// from any server for NTP_UNREACHABLE_ROUNDS rounds in a row is one change, and the next answer another. What the
// changes become (a security event, a log line) is for the process.
import { EventEmitter } from 'node:events';
import { parseNtpServer, NTP_UNREACHABLE_ROUNDS, type NtpConfig } from '../clock/config.js';
import { querySntp, type SntpSample } from './sntp-client.js';

export interface NtpStatus {
  /** servers are named in the config */
  enabled: boolean;
  servers: string[];
  /** the last estimate: our clock minus the servers', in ms (positive: ours is ahead); null before the first */
  offsetMs: number | null;
  delayMs: number | null;
  /** the server the estimate came from, and its stratum */
  server: string | null;
  stratum: number | null;
  /** when the estimate was taken (our clock) */
  measuredAt: number | null;
  /** rounds in a row without any answer, and the last reason */
  failedRounds: number;
  lastError: string | null;
  boundMs: number;
  /** beyond the bound (and not yet back within half of it) */
  beyondBound: boolean;
  /** no answer for NTP_UNREACHABLE_ROUNDS rounds in a row (and none since) */
  unreachable: boolean;
}

export type NtpChange =
  | { kind: 'beyond' | 'back'; offsetMs: number; server: string }
  | { kind: 'unreachable'; failedRounds: number; lastError: string }
  | { kind: 'reachable'; server: string };

export interface NtpClockEvents {
  change: [change: NtpChange];
}

export interface NtpClockOptions {
  /** the clock measured (Unix ms): Date.now unless a test sets its own */
  now?: () => number;
}

export class NtpClock extends EventEmitter<NtpClockEvents> {
  private readonly servers: { name: string; host: string; port: number }[];
  private readonly now: () => number;
  private best: SntpSample | undefined;
  private failedRounds = 0;
  private lastError: string | null = null;
  private beyond = false;
  private unreachable = false;
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<NtpStatus> | undefined;

  constructor(
    private readonly config: NtpConfig,
    options: NtpClockOptions = {},
  ) {
    super();
    this.now = options.now ?? Date.now;
    this.servers = config.servers.flatMap((name) => {
      const s = parseNtpServer(name);
      return s === undefined ? [] : [{ name, ...s }];
    });
  }

  get enabled(): boolean {
    return this.servers.length > 0;
  }

  /** Polls now and every `everySeconds` (nothing when no server is named). */
  start(): Promise<void> {
    if (!this.enabled || this.timer !== undefined) return Promise.resolve();
    const tick = (): void => void this.poll();
    this.timer = setInterval(tick, this.config.everySeconds * 1000);
    tick();
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.round;
  }

  /** One round (or the one under way): every server asked once; resolves with the status after it. Never rejects. */
  poll(): Promise<NtpStatus> {
    this.round ??= this.pollOnce().finally(() => (this.round = undefined));
    return this.round;
  }

  private async pollOnce(): Promise<NtpStatus> {
    if (!this.enabled) return this.status();
    const results = await Promise.allSettled(this.servers.map((s) => querySntp(s.host, s.port, { timeoutMs: this.config.timeoutMs, now: this.now })));
    let best: SntpSample | undefined;
    for (const r of results)
      if (r.status === 'fulfilled') {
        if (best === undefined || r.value.delayMs < best.delayMs) best = r.value;
      } else this.lastError = r.reason instanceof Error ? r.reason.message : String(r.reason);
    if (best === undefined) {
      this.failedRounds++;
      if (!this.unreachable && this.failedRounds >= NTP_UNREACHABLE_ROUNDS) {
        this.unreachable = true;
        this.emit('change', { kind: 'unreachable', failedRounds: this.failedRounds, lastError: this.lastError ?? '' });
      }
      return this.status();
    }
    this.best = best;
    this.failedRounds = 0;
    if (this.unreachable) {
      this.unreachable = false;
      this.emit('change', { kind: 'reachable', server: best.server });
    }
    const size = Math.abs(best.offsetMs);
    if (!this.beyond && size > this.config.maxOffsetMs) {
      this.beyond = true;
      this.emit('change', { kind: 'beyond', offsetMs: best.offsetMs, server: best.server });
    } else if (this.beyond && size <= this.config.maxOffsetMs / 2) {
      this.beyond = false;
      this.emit('change', { kind: 'back', offsetMs: best.offsetMs, server: best.server });
    }
    return this.status();
  }

  status(): NtpStatus {
    const b = this.best;
    return {
      enabled: this.enabled,
      servers: this.servers.map((s) => s.name),
      offsetMs: b?.offsetMs ?? null,
      delayMs: b?.delayMs ?? null,
      server: b?.server ?? null,
      stratum: b?.stratum ?? null,
      measuredAt: b?.at ?? null,
      failedRounds: this.failedRounds,
      lastError: this.lastError,
      boundMs: this.config.maxOffsetMs,
      beyondBound: this.beyond,
      unreachable: this.unreachable,
    };
  }
}
