// Faults injected into a running simulated instrument: the schema of each kind (the control API and
// the CLI parse by it) and the set active on one instrument, which the transports and the signal consult.
import { z } from 'zod';

const channels = z.array(z.string().min(1)).min(1).optional();

export const faultSchema = z.discriminatedUnion('kind', [
  /** requests are swallowed (MQTT: nothing is published) */
  z.strictObject({ kind: z.literal('no-answer') }),
  /** replies (MQTT: messages) leave `ms` late; a Modbus reply keeps its transaction id, so a client that gave up may get it later */
  z.strictObject({ kind: z.literal('slow'), ms: z.number().int().min(1).max(600_000) }),
  /** every request is answered with exception `code` (6: busy), or only the next `count` requests */
  z.strictObject({
    kind: z.literal('exception'),
    code: z.number().int().min(1).max(255),
    count: z.number().int().min(1).max(1_000_000).optional(),
  }),
  /** every connection is dropped now and new ones are refused for `ms` (on a shared bus: the unit is silent for `ms`) */
  z.strictObject({ kind: z.literal('disconnect'), ms: z.number().int().min(0).max(3_600_000) }),
  /** the served values freeze where they are */
  z.strictObject({ kind: z.literal('stuck') }),
  /** gaussian noise of standard deviation `amplitude` (engineering units) on numeric channels */
  z.strictObject({ kind: z.literal('noise'), amplitude: z.number().finite().positive(), channels }),
  /** a linear drift of `ratePerSecond` engineering units per second since the fault was set */
  z.strictObject({ kind: z.literal('drift'), ratePerSecond: z.number().finite(), channels }),
  /** 32- and 64-bit values are served with their 16-bit words in reverse order */
  z.strictObject({ kind: z.literal('wrong-byte-order') }),
  /** a balance answers a weight request with overload (MT-SICS `S +`, SBI `High`) */
  z.strictObject({ kind: z.literal('overload') }),
  /** a balance answers a weight request with underload (MT-SICS `S -`, SBI `Low`) */
  z.strictObject({ kind: z.literal('underload') }),
  /** a balance answers a weight request with busy (MT-SICS `S I`, SBI `C`) */
  z.strictObject({ kind: z.literal('busy') }),
  /** a balance answers every request (or the next `count`) with an error: MT-SICS ES, ET or EL, SBI `Err <n>` */
  z.strictObject({
    kind: z.literal('error-reply'),
    code: z
      .string()
      .regex(/^(ES|ET|EL|Err \d{1,4})$/, 'expected ES, ET, EL or "Err <number>"')
      .optional(),
    count: z.number().int().min(1).max(1_000_000).optional(),
  }),
  /** a balance answers every request (or the next `count`) with a line of noise, as a wrong baud rate gives */
  z.strictObject({ kind: z.literal('garbage'), count: z.number().int().min(1).max(1_000_000).optional() }),
  /** a SCPI instrument puts `code,"message"` in its error queue at every measurement query (or the next `count`) */
  z.strictObject({
    kind: z.literal('error-queue'),
    code: z
      .number()
      .int()
      .min(-32768)
      .max(32767)
      .refine((c) => c !== 0, 'code 0 means "No error"'),
    message: z
      .string()
      .min(1)
      .max(200)
      .regex(/^[\x20-\x21\x23-\x7e]+$/, 'printable ASCII without double quotes')
      .default('Simulated error'),
    count: z.number().int().min(1).max(1_000_000).optional(),
  }),
]);

export type Fault = z.output<typeof faultSchema>;
export type FaultKind = Fault['kind'];
export const FAULT_KINDS = [
  'no-answer',
  'slow',
  'exception',
  'disconnect',
  'stuck',
  'noise',
  'drift',
  'wrong-byte-order',
  'overload',
  'underload',
  'busy',
  'error-reply',
  'garbage',
  'error-queue',
] as const satisfies readonly FaultKind[];

/** The numeric field of each kind that takes a value (`--value` of the CLI). */
export const FAULT_VALUE_FIELD = {
  'no-answer': undefined,
  slow: 'ms',
  exception: 'code',
  disconnect: 'ms',
  stuck: undefined,
  noise: 'amplitude',
  drift: 'ratePerSecond',
  'wrong-byte-order': undefined,
  overload: undefined,
  underload: undefined,
  busy: undefined,
  'error-reply': 'count',
  garbage: 'count',
  'error-queue': 'code',
} as const satisfies Record<FaultKind, string | undefined>;

/** Kinds that only make sense for a Modbus instrument. */
export const MODBUS_ONLY_FAULTS: ReadonlySet<FaultKind> = new Set(['exception', 'wrong-byte-order']);

/** Kinds that only make sense for a balance (a line protocol). */
export const LINE_ONLY_FAULTS: ReadonlySet<FaultKind> = new Set(['overload', 'underload', 'busy', 'error-reply', 'garbage']);

/** What a SCPI instrument can be made to do: no Modbus exceptions, no balance states but overload (9.9E37). */
export const SCPI_FAULTS: ReadonlySet<FaultKind> = new Set([
  'no-answer',
  'slow',
  'disconnect',
  'stuck',
  'noise',
  'drift',
  'overload',
  'garbage',
  'error-queue',
]);

/** A fault as it is active: when it was set, when it ends by itself, how many requests it still applies to. */
export type ActiveFault = Fault & { since: number; until?: number; remaining?: number };

/** What happens to one Modbus request. */
export type RequestFate = { kind: 'answer' } | { kind: 'silent' } | { kind: 'exception'; code: number };

const ANSWER: RequestFate = { kind: 'answer' };
const SILENT: RequestFate = { kind: 'silent' };

export class FaultSet {
  private readonly active = new Map<FaultKind, ActiveFault>();
  private spare: number | undefined;

  /** `uniform` returns numbers in [-0.5, 0.5), as the models' noise source does. */
  constructor(private readonly uniform: () => number) {}

  get size(): number {
    return this.active.size;
  }

  /** Activates a fault, replacing an active one of the same kind. */
  set(fault: Fault, now: number): ActiveFault {
    const entry: ActiveFault = { ...fault, since: now };
    if (fault.kind === 'disconnect') entry.until = now + fault.ms;
    if (
      (fault.kind === 'exception' || fault.kind === 'error-reply' || fault.kind === 'garbage' || fault.kind === 'error-queue') &&
      fault.count !== undefined
    ) {
      entry.remaining = fault.count;
    }
    this.active.set(fault.kind, entry);
    return entry;
  }

  /** Clears one kind, or every fault. Returns whether something was active. */
  clear(kind?: FaultKind): boolean {
    if (kind === undefined) {
      const had = this.active.size > 0;
      this.active.clear();
      return had;
    }
    return this.active.delete(kind);
  }

  get<K extends FaultKind>(kind: K, now: number): Extract<ActiveFault, { kind: K }> | undefined {
    const entry = this.active.get(kind);
    if (entry === undefined) return undefined;
    if (entry.until !== undefined && now >= entry.until) {
      this.active.delete(kind);
      return undefined;
    }
    return entry as Extract<ActiveFault, { kind: K }>;
  }

  has(kind: FaultKind, now: number): boolean {
    return this.get(kind, now) !== undefined;
  }

  list(now: number): ActiveFault[] {
    return FAULT_KINDS.map((k) => this.get(k, now)).filter((f): f is ActiveFault => f !== undefined);
  }

  /** Decides what a Modbus request gets, and counts it against an `exception` fault limited to `count` requests. */
  requestFate(now: number): RequestFate {
    if (this.active.size === 0) return ANSWER;
    if (this.has('no-answer', now) || this.has('disconnect', now)) return SILENT;
    const exception = this.get('exception', now);
    if (exception === undefined) return ANSWER;
    if (exception.remaining !== undefined) {
      exception.remaining -= 1;
      if (exception.remaining <= 0) this.active.delete('exception');
    }
    return { kind: 'exception', code: exception.code };
  }

  /**
   * What a balance sends instead of its reply, if anything: an error code, a line of noise, or nothing
   * (undefined: answer normally). Counts the reply against a fault limited to `count` replies.
   */
  lineReplyFate(now: number): { kind: 'silent' } | { kind: 'error'; code: string | undefined } | { kind: 'garbage' } | undefined {
    if (this.active.size === 0) return undefined;
    if (this.has('no-answer', now) || this.has('disconnect', now)) return { kind: 'silent' };
    const garbage = this.get('garbage', now);
    if (garbage !== undefined) {
      this.countDown(garbage);
      return { kind: 'garbage' };
    }
    const error = this.get('error-reply', now);
    if (error !== undefined) {
      this.countDown(error);
      return { kind: 'error', code: error.code };
    }
    return undefined;
  }

  /** The entry a SCPI measurement query puts in the error queue, if any (counted against `count`). */
  scpiErrorFate(now: number): { code: number; message: string } | undefined {
    if (this.active.size === 0) return undefined;
    const fault = this.get('error-queue', now);
    if (fault === undefined) return undefined;
    this.countDown(fault);
    return { code: fault.code, message: fault.message };
  }

  private countDown(fault: ActiveFault): void {
    if (fault.remaining === undefined) return;
    fault.remaining -= 1;
    if (fault.remaining <= 0) this.active.delete(fault.kind);
  }

  /** How long a reply waits before it leaves. */
  replyDelayMs(now: number): number {
    return this.active.size === 0 ? 0 : (this.get('slow', now)?.ms ?? 0);
  }

  /** Applies drift and noise to the numeric channels of `values` (in place). */
  perturb(values: Record<string, number | boolean | string>, numeric: ReadonlySet<string>, now: number): void {
    if (this.active.size === 0) return;
    const drift = this.get('drift', now);
    const noise = this.get('noise', now);
    if (drift === undefined && noise === undefined) return;
    for (const [channel, value] of Object.entries(values)) {
      if (typeof value !== 'number' || !numeric.has(channel)) continue;
      let v = value;
      if (drift !== undefined && (drift.channels === undefined || drift.channels.includes(channel))) {
        v += (drift.ratePerSecond * (now - drift.since)) / 1000;
      }
      if (noise !== undefined && (noise.channels === undefined || noise.channels.includes(channel))) {
        v += noise.amplitude * this.gaussian();
      }
      values[channel] = v;
    }
  }

  /** A standard normal deviate (Marsaglia's polar method), two per draw. */
  private gaussian(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    let u: number;
    let v: number;
    let s: number;
    do {
      u = 2 * this.uniform();
      v = 2 * this.uniform();
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const m = Math.sqrt((-2 * Math.log(s)) / s);
    this.spare = v * m;
    return u * m;
  }
}
