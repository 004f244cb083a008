// Reads an instrument of the long tail (a pH meter, a thermometer, a counter, another maker's balance) that
// prints lines: each line is matched against the profile's pattern, and each named group is one point's number.
// A line that does not match is counted (`invalid_reply`) and never believed; a group that holds no number is
// that point's bad sample, with the reason. Polling, timeouts and reconnection are the line instrument's.
import { channelOf, compileLinePattern, lineNumber, type LineProfile } from '@labtrace/protocols';
import type { Logger } from '../log.js';
import type { PolledSample } from '../source.js';
import { LineInstrument, type LineOutcome, type LineReader } from './line-instrument.js';

/** The lines of a generic instrument read by its pattern: one sample per point for a line that matches. */
export function patternReader(profile: LineProfile): LineReader {
  const regex = compileLinePattern(profile.pattern);
  const base = (point: LineProfile['points'][number], ts: number) => ({ instrument: profile.id, channel: channelOf(point), ts, unit: point.unit });
  return {
    request: profile.request,
    bad: (reason, ts) => profile.points.map((p): PolledSample => ({ ...base(p, ts), value: null, quality: 'bad', reason })),
    read(line: string, ts: number): LineOutcome {
      const match = regex.exec(line);
      if (match === null) {
        const shown = JSON.stringify(line.length > 60 ? `${line.slice(0, 60)}…` : line);
        return { kind: 'invalid', reason: `line ${shown} does not match the pattern` };
      }
      let invalid = false;
      const samples = profile.points.map((point): PolledSample => {
        const text = match.groups?.[point.group];
        if (text === undefined) {
          return { ...base(point, ts), value: null, quality: 'bad', reason: `group ${point.group}: not in the line` };
        }
        try {
          return { ...base(point, ts), value: lineNumber(text, point.decimalComma) * point.scale + point.offset, quality: 'good' };
        } catch (err) {
          invalid = true;
          return { ...base(point, ts), value: null, quality: 'bad', reason: `group ${point.group}: ${(err as Error).message}` };
        }
      });
      return invalid ? { kind: 'answer', samples, count: 'invalid_value' } : { kind: 'answer', samples };
    },
  };
}

export class GenericLineInstrument extends LineInstrument {
  constructor(
    readonly profile: LineProfile,
    logger: Logger,
    now: () => number = Date.now,
  ) {
    super({ ...profile, mode: profile.request === undefined ? 'unsolicited' : 'poll', what: 'instrument' }, patternReader(profile), logger, now);
  }
}
