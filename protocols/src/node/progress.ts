// Progress of long work on the command line (export, backup, restore, verify): on a terminal, one line redrawn in
// place (a bar, the count, the rate, the time left); otherwise (a pipe, a log file, CI) a line every few seconds.
// The caller prints its summary at the end, and says what was done when Ctrl-C stops it (stopOnInterrupt).

export interface ProgressOptions {
  /** where the lines go: stderr, so that stdout stays for what the command prints */
  stream?: Pick<NodeJS.WriteStream, 'write'> & { isTTY?: boolean; columns?: number };
  /** between two lines when not on a terminal */
  everyMs?: number;
  now?: () => number;
}

const group = (n: number): string => Math.round(n).toLocaleString('en-US');

/** "1 h 02 min", "3 min 05 s", "12 s". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

export class Progress {
  private readonly stream: NonNullable<ProgressOptions['stream']>;
  private readonly tty: boolean;
  private readonly everyMs: number;
  private readonly now: () => number;
  private readonly started: number;
  private lastLine = 0;
  private drawn = false;
  done = 0;
  total: number | undefined;

  /** `what`: the work ("export"), `unit`: what is counted, plural ("batches") */
  constructor(
    private readonly what: string,
    private readonly unit: string,
    options: ProgressOptions = {},
  ) {
    this.stream = options.stream ?? process.stderr;
    this.tty = this.stream.isTTY === true;
    this.everyMs = options.everyMs ?? 5000;
    this.now = options.now ?? Date.now;
    this.started = this.now();
    this.lastLine = this.started;
  }

  /** The count so far (and the total, when known): a redraw on a terminal, a line when one is due otherwise. */
  update(done: number, total?: number): void {
    this.done = done;
    if (total !== undefined) this.total = total;
    const now = this.now();
    if (this.tty) {
      if (now - this.lastLine < 100) return;
      this.lastLine = now;
      const text = this.describe(now);
      const width = Math.max(20, (this.stream.columns ?? 80) - 1);
      const ratio = this.total === undefined || this.total === 0 ? undefined : Math.min(1, this.done / this.total);
      const barWidth = Math.min(30, Math.max(0, width - text.length - 3));
      const bar = ratio === undefined || barWidth < 10 ? '' : `[${'#'.repeat(Math.round(ratio * barWidth)).padEnd(barWidth, '.')}] `;
      this.stream.write(`\r${`${bar}${text}`.slice(0, width).padEnd(width)}`);
      this.drawn = true;
      return;
    }
    if (now - this.lastLine < this.everyMs) return;
    this.lastLine = now;
    this.stream.write(`${this.describe(now)}\n`);
  }

  /** "export: 12,000 of 50,000 batches (24.0 %), 3,000/s, about 13 s left" */
  describe(now = this.now()): string {
    const elapsed = Math.max(1, now - this.started);
    const rate = (this.done * 1000) / elapsed;
    const of = this.total === undefined ? '' : ` of ${group(this.total)}`;
    const percent = this.total === undefined || this.total === 0 ? '' : ` (${((100 * this.done) / this.total).toFixed(1)} %)`;
    const left =
      this.total === undefined || rate <= 0 || this.done >= this.total
        ? ''
        : `, about ${formatDuration(((this.total - this.done) / rate) * 1000)} left`;
    return `${this.what}: ${group(this.done)}${of} ${this.unit}${percent}, ${group(rate)}/s${left}`;
  }

  /** Ends the line drawn on a terminal, and prints `summary` (with the time taken). */
  finish(summary: string): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
    this.stream.write(`${summary} (${formatDuration(this.now() - this.started)})\n`);
  }
}

/**
 * An AbortSignal that Ctrl-C (SIGINT) or SIGTERM aborts, once; a second Ctrl-C ends the process at once. `release`
 * removes the handlers when the work is done.
 */
export function stopOnInterrupt(): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write(`\n${name}: stopping after the current step (again to stop at once)\n`);
    controller.abort(new Error(`stopped by ${name}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    release: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
