// The gateways' clock offsets, as the server sees them: every HEALTH message says when the gateway sent it (its
// clock); the server notes when it arrived (its own). Arrival minus sending is the network's delay less the
// gateway's offset, so the smallest of the last few is the closest to minus the offset (queued or delayed messages
// only make it larger, never smaller). A gateway whose offset goes beyond the bound is an alarm once, and a notice
// when it is back within half the bound: sample times are evidence, and a gateway's clock dates them.

/** HEALTH messages the estimate is taken over (a gateway sends one every 5 s, and on every change) */
export const OFFSET_WINDOW = 12;
/** older observations are not used: a clock that was set meanwhile is measured afresh */
export const OFFSET_MAX_AGE_MS = 10 * 60_000;

export interface ClockOffset {
  /** the gateway's clock minus the server's, in ms (positive: the gateway is ahead) */
  offsetMs: number;
  /** when the last observation arrived (server clock) */
  measuredAt: number;
  /** beyond the bound (and not yet back within half of it) */
  beyondBound: boolean;
}

/** What changed with an observation: the offset went beyond the bound, or came back. */
export type OffsetChange = { kind: 'beyond' | 'back'; offsetMs: number } | undefined;

export class ClockOffsets {
  private readonly seen = new Map<string, { delays: { at: number; delay: number }[]; beyond: boolean }>();
  /** what each gateway's last HEALTH message said of its own clock against NTP (ms, its clock minus NTP's) */
  private readonly ntp = new Map<string, number>();

  constructor(readonly boundMs: number) {}

  /** A HEALTH message sent at `sentAt` (the gateway's clock) arrived at `receivedAt` (the server's). */
  observe(gateway: string, sentAt: number, receivedAt: number): OffsetChange {
    const g = this.seen.get(gateway) ?? { delays: [], beyond: false };
    this.seen.set(gateway, g);
    g.delays.push({ at: receivedAt, delay: receivedAt - sentAt });
    while (g.delays.length > OFFSET_WINDOW || (g.delays[0] !== undefined && receivedAt - g.delays[0].at > OFFSET_MAX_AGE_MS)) g.delays.shift();
    const offsetMs = this.offsetOf(g.delays);
    if (!g.beyond && Math.abs(offsetMs) > this.boundMs) {
      g.beyond = true;
      return { kind: 'beyond', offsetMs };
    }
    if (g.beyond && Math.abs(offsetMs) <= this.boundMs / 2) {
      g.beyond = false;
      return { kind: 'back', offsetMs };
    }
    return undefined;
  }

  /** The gateway's offset, or undefined before its first HEALTH message. */
  of(gateway: string): ClockOffset | undefined {
    const g = this.seen.get(gateway);
    const last = g?.delays.at(-1);
    if (g === undefined || last === undefined) return undefined;
    return { offsetMs: this.offsetOf(g.delays), measuredAt: last.at, beyondBound: g.beyond };
  }

  /** The gateway's own offset against NTP, as its HEALTH message says (undefined: it does not measure it, or NTP is down). */
  ntpSays(gateway: string, offsetMs: number | undefined): void {
    if (offsetMs === undefined) this.ntp.delete(gateway);
    else this.ntp.set(gateway, offsetMs);
  }

  /**
   * Every gateway measured within OFFSET_MAX_AGE_MS of `now`: its offset against the server, and against NTP when
   * it says (the server's clock as they see it).
   */
  recent(now: number): { offsetMs: number; ntpOffsetMs: number | undefined }[] {
    const offsets: { offsetMs: number; ntpOffsetMs: number | undefined }[] = [];
    for (const [gateway, g] of this.seen) {
      const last = g.delays.at(-1);
      if (last !== undefined && now - last.at <= OFFSET_MAX_AGE_MS)
        offsets.push({ offsetMs: this.offsetOf(g.delays), ntpOffsetMs: this.ntp.get(gateway) });
    }
    return offsets;
  }

  private offsetOf(delays: readonly { delay: number }[]): number {
    let least = Infinity;
    for (const d of delays) if (d.delay < least) least = d.delay;
    // (-0 reads as 0)
    return least === Infinity ? 0 : 0 - least;
  }
}
