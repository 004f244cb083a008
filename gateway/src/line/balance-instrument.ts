// Reads one balance speaking MT-SICS or Sartorius SBI, over a serial port or a serial device server.
// Poll mode asks for the weight every interval (MT-SICS `SI`, SBI `ESC P`) and waits for the reply up
// to the profile's timeout; unsolicited mode takes what the balance prints (Print key, auto print).
// Every weight gets a quality; a line that is not a reply is counted (`invalid_reply`) and never
// believed; the connection reopens by itself. Each balance has its own connection and timers, so a
// dead one delays no other instrument.
import { channelOf, parseSbiLine, parseSicsReply, type BalanceCommand, type BalanceProfile, type BalanceReading } from '@labtrace/protocols';
import type { Logger } from '../log.js';
import type { PolledSample } from '../source.js';
import { LineInstrument, type LineOutcome, type LineReader } from './line-instrument.js';

/** What is sent to ask for the weight now: MT-SICS "send immediate weight", SBI "print". */
export const POLL_COMMAND: Readonly<Record<BalanceProfile['dialect'], string>> = { 'mt-sics': 'SI\r\n', sbi: '\x1bP' };

/** One line of the balance read by its dialect; throws E_CODEC for a line that is not a reply. */
export function readLine(dialect: BalanceProfile['dialect'], line: string): BalanceReading {
  return dialect === 'mt-sics' ? parseSicsReply(line, 'SI') : parseSbiLine(line);
}

/**
 * The sample a reading gives, or undefined for none. A busy balance (MT-SICS `S I`, SBI `C`) gives no
 * sample: it has no weight to report, and the next poll asks again; health counts it (`busy`), and a
 * balance that stays busy shows as a `lastGood` that stops moving. A weight in another unit than the
 * profile's is bad with the reason: it is never stored under the wrong unit, nor converted.
 */
export function sampleOf(profile: BalanceProfile, reading: BalanceReading, ts: number): PolledSample | undefined {
  const point = profile.points[0];
  if (point === undefined) return undefined;
  const base = { instrument: profile.id, channel: channelOf(point), ts, unit: point.unit };
  switch (reading.kind) {
    case 'weight': {
      // SBI prints no unit while the weight moves: the unit is the profile's then
      if (reading.unit !== '' && reading.unit !== point.unit) {
        return {
          ...base,
          value: null,
          quality: 'bad',
          reason: `unit: the balance printed ${reading.value} ${reading.unit}, the profile expects ${point.unit}`,
        };
      }
      if (!reading.stable) return { ...base, value: reading.value, quality: 'uncertain', reason: 'unstable' };
      return { ...base, value: reading.value, quality: 'good' };
    }
    case 'overload':
    case 'underload':
      return { ...base, value: null, quality: 'bad', reason: reading.kind };
    case 'error':
      return { ...base, value: null, quality: 'bad', reason: `${reading.code}: ${reading.meaning}` };
    case 'busy':
    case 'done':
      return undefined;
  }
}

/** The balance's lines read by its dialect: a weight (or its state) per reply. */
export function balanceReader(profile: BalanceProfile): LineReader {
  const point = profile.points[0];
  const bad = (reason: string, ts: number): PolledSample[] => [
    {
      instrument: profile.id,
      channel: point === undefined ? 'weight' : channelOf(point),
      ts,
      value: null,
      unit: point?.unit ?? '',
      quality: 'bad',
      reason,
    },
  ];
  return {
    request: profile.mode === 'poll' ? POLL_COMMAND[profile.dialect] : undefined,
    bad,
    commandChannel: `${point === undefined ? 'weight' : channelOf(point)}.command`,
    ack(command: string, line: string) {
      let reading: BalanceReading;
      try {
        reading = parseSicsReply(line, SICS_COMMANDS[command as BalanceCommand] ?? command);
      } catch {
        // not this command's reply (a weight that came late)
        return undefined;
      }
      switch (reading.kind) {
        case 'done':
          return { ok: true };
        case 'error':
          return { ok: false, reason: `${reading.code}: ${reading.meaning}` };
        case 'busy':
          return { ok: false, reason: 'the balance could not do it now (I)' };
        case 'overload':
        case 'underload':
          return { ok: false, reason: `the balance refused: ${reading.kind === 'overload' ? 'upper' : 'lower'} limit exceeded` };
        case 'weight':
          return undefined;
      }
    },
    read(line: string, ts: number): LineOutcome {
      let reading: BalanceReading;
      try {
        reading = readLine(profile.dialect, line);
      } catch (err) {
        return { kind: 'invalid', reason: (err as Error).message };
      }
      // an acknowledgement is not an answer to a weight request
      if (reading.kind === 'done') return { kind: 'not-an-answer', reason: 'an acknowledgement instead of a weight' };
      const sample = sampleOf(profile, reading, ts);
      const samples = sample === undefined ? [] : [sample];
      if (reading.kind === 'busy') return { kind: 'answer', samples, count: 'busy' };
      if (reading.kind === 'error') return { kind: 'answer', samples, count: `error_${reading.code.replace(/\s+/g, '_')}` };
      return { kind: 'answer', samples };
    },
  };
}

/** MT-SICS: zero and tare (each answered `Z A`, `T S <tare> <unit>`, or why not). */
const SICS_COMMANDS: Readonly<Record<BalanceCommand, string>> = { zero: 'Z', tare: 'T' };

export class BalanceInstrument extends LineInstrument {
  constructor(
    readonly profile: BalanceProfile,
    private readonly log: Logger,
    now: () => number = Date.now,
  ) {
    super({ ...profile, what: 'balance' }, balanceReader(profile), log, now);
  }

  /**
   * Zero or tare the balance, if its profile allows it: sent between two polls, and a signed record of it
   * (good when done, bad with the reason) follows the reply. Refused (counted `command_refused`) otherwise.
   */
  command(name: BalanceCommand): { queued: true } | { queued: false; reason: string } {
    if (!this.profile.allowCommands.includes(name)) {
      const reason = `${name}: not allowed by the profile of ${this.profile.id} (allowCommands: [${this.profile.allowCommands.join(', ')}])`;
      this.countRefused();
      this.log.warn({ command: name }, `refused a command: ${reason}`);
      return { queued: false, reason };
    }
    this.queueCommand(name, `${SICS_COMMANDS[name]}\r\n`);
    return { queued: true };
  }
}
