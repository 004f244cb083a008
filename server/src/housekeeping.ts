// The server's periodic chores on one timer, in order (key events and audit anchors enter the transparency log
// before its checkpoint is signed), each in its own try: one failing neither stops the others nor is reported
// as another's failure (a session table that cannot be pruned is not an unsigned checkpoint).
import type { Logger } from './log.js';

export interface Chore {
  /** the chore's name in the log line's `task` field */
  name: string;
  /** the log line when it fails: what did not happen, in the operator's words */
  failure: string;
  /** a chore on the store's async queries answers a promise: its failure is logged the same way when it settles */
  run(): void | Promise<unknown>;
}

export class Housekeeping {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly chores: readonly Chore[],
    private readonly everyMs: number,
    private readonly logger: Logger,
  ) {}

  start(): Promise<void> {
    this.timer ??= setInterval(() => this.runOnce(), this.everyMs);
    return Promise.resolve();
  }

  stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    return Promise.resolve();
  }

  /**
   * Runs every chore once, in order; returns the names of those that failed at once (an async chore's failure is
   * logged when its promise rejects).
   */
  runOnce(): string[] {
    const failed: string[] = [];
    const report = (chore: Chore, err: unknown): void => this.logger.error({ task: chore.name, err: messageOf(err) }, chore.failure);
    for (const chore of this.chores) {
      try {
        const done = chore.run();
        if (done instanceof Promise) done.catch((err: unknown) => report(chore, err));
      } catch (err) {
        failed.push(chore.name);
        report(chore, err);
      }
    }
    return failed;
  }
}

/** An error's message; also of errors made in another realm (a native module's), which are no `instanceof Error` there. */
function messageOf(err: unknown): string {
  const message = typeof err === 'object' && err !== null ? (err as { message?: unknown }).message : undefined;
  return typeof message === 'string' ? message : String(err);
}
