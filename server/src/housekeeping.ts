// The server's periodic chores on one timer, in order (key events and audit anchors enter the transparency log
// before its checkpoint is signed), each in its own try: one failing neither stops the others nor is reported
// as another's failure (a session table that cannot be pruned is not an unsigned checkpoint).
import type { Logger } from './log.js';

export interface Chore {
  /** the chore's name in the log line's `task` field */
  name: string;
  /** the log line when it fails: what did not happen, in the operator's words */
  failure: string;
  run(): void;
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

  /** Runs every chore once, in order; returns the names of those that failed. */
  runOnce(): string[] {
    const failed: string[] = [];
    for (const chore of this.chores) {
      try {
        chore.run();
      } catch (err) {
        failed.push(chore.name);
        this.logger.error({ task: chore.name, err: messageOf(err) }, chore.failure);
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
