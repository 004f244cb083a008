// Replies of one connection (or one serial line) that a "slow" fault holds back. They leave in the order
// their requests came, each at its due time; a reply without delay still waits for those before it.
// Bounded: when MAX_HELD replies wait, further ones are dropped, as a device whose buffer is full would.

export const MAX_HELD = 1024;

export class ReplyQueue {
  private readonly held: { due: number; data: Buffer }[] = [];
  private timer: NodeJS.Timeout | undefined;
  dropped = 0;

  constructor(
    private readonly write: (data: Buffer) => void,
    private readonly now: () => number = Date.now,
  ) {}

  push(data: Buffer, delayMs: number): void {
    if (delayMs <= 0 && this.held.length === 0) {
      this.write(data);
      return;
    }
    if (this.held.length >= MAX_HELD) {
      this.dropped++;
      return;
    }
    const last = this.held.at(-1);
    const due = Math.max(this.now() + delayMs, last?.due ?? 0);
    this.held.push({ due, data });
    if (this.timer === undefined) this.arm();
  }

  /** Forgets every held reply (the connection is gone). */
  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.held.length = 0;
  }

  private arm(): void {
    const first = this.held[0];
    if (first === undefined) return;
    this.timer = setTimeout(() => this.flush(), Math.max(0, first.due - this.now()));
  }

  private flush(): void {
    this.timer = undefined;
    const now = this.now();
    while (this.held.length > 0 && (this.held[0]?.due ?? Infinity) <= now) {
      const next = this.held.shift();
      if (next) this.write(next.data);
    }
    this.arm();
  }
}
