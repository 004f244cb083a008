// The soak run's pure parts (bench/lib/soak-figures.js): its command line refuses what it cannot run with a message
// naming the option, its schedule injects every fault in every run it accepts, the slope of a resource does not take a
// restart for a step, and the stored-measurements counter is checked per server lifetime. The benches are plain
// JavaScript outside the workspaces: the module is loaded from the repository's bench/ at run time.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, test } from '@jest/globals';
import { REPO_ROOT } from '../helpers/lab-process.js';

interface Options {
  minutes: number;
  rate: number;
  influx: boolean;
  faults: string[];
  result: string | null;
  help: boolean;
}
interface Lifetime {
  pid: number;
  before: number;
  counter: number | null;
  atScrape: number | null;
  quiet: boolean;
}
interface Fit {
  perHour: number;
  points: number;
  spanMs: number;
}
interface SoakFigures {
  FAULT_KINDS: string[];
  parseSoakArgs(argv: string[]): Options;
  faultSchedule(durationMs: number, options?: { influx?: boolean; faults?: string[] }): { kind: string; atMs: number; holdMs: number }[];
  pooledSlopePerHour(lifetimes: { t: number; value: number }[][], warmupMs?: number): Fit | null;
  isFlat(fit: Fit | null, limitPerHour: number, margin: number): { ok: boolean; rise: number | null };
  checkCounter(lifetimes: Lifetime[], slack: number): { counted: number; problems: string[] };
}

let m: SoakFigures;
beforeAll(async () => {
  m = (await import(pathToFileURL(path.join(REPO_ROOT, 'bench', 'lib', 'soak-figures.js')).href)) as SoakFigures;
});

describe('the command line', () => {
  test('an hour at 5 polls a second unless told; the options in both spellings', () => {
    expect(m.parseSoakArgs([])).toEqual({ minutes: 60, rate: 5, influx: true, faults: m.FAULT_KINDS, result: null, help: false });
    expect(m.parseSoakArgs(['--minutes', '10', '--rate=2.5', '--no-influx', '--result', 'out.json'])).toEqual({
      minutes: 10,
      rate: 2.5,
      influx: false,
      faults: m.FAULT_KINDS,
      result: 'out.json',
      help: false,
    });
  });

  test('--faults picks the faults (in their order), or none', () => {
    expect(m.parseSoakArgs(['--faults', 'gateway-kill,instrument-disconnect']).faults).toEqual(['instrument-disconnect', 'gateway-kill']);
    expect(m.parseSoakArgs(['--faults=none']).faults).toEqual([]);
  });

  test.each([
    [['--minutes', '0'], '--minutes: expected a number from 1 to 1440, got "0"'],
    [['--minutes', 'ten'], '--minutes: expected a number from 1 to 1440, got "ten"'],
    [['--minutes'], '--minutes: expected a number from 1 to 1440, got nothing'],
    [['--minutes', '--rate', '2'], '--minutes: expected a number from 1 to 1440, got nothing'],
    [['--minutes='], '--minutes: expected a number from 1 to 1440, got ""'],
    [['--rate', '50'], '--rate: expected a number from 0.5 to 20, got "50"'],
    [['--no-influx=yes'], '--no-influx takes no value'],
    [['--hours', '1'], 'unknown argument "--hours"'],
    [['--faults', 'gateway-kill,power-cut'], '--faults: unknown fault "power-cut"'],
    [['--faults'], '--faults: expected a comma-separated list'],
  ])('%j is refused: %s', (argv, message) => {
    expect(() => m.parseSoakArgs(argv)).toThrow(message);
  });
});

describe('the schedule', () => {
  test.each([1, 2, 10, 60])('every fault at least once in %i minutes, each cycle in its first 80 %%, in order', (minutes) => {
    const ms = minutes * 60_000;
    const plan = m.faultSchedule(ms);
    const cycles = Math.max(1, Math.round(minutes / 10));
    for (const kind of m.FAULT_KINDS) expect(plan.filter((f) => f.kind === kind)).toHaveLength(cycles);
    const cycleMs = ms / cycles;
    for (const f of plan) expect(f.atMs % cycleMs).toBeLessThanOrEqual(0.8 * cycleMs);
    expect(plan.map((f) => f.atMs)).toEqual([...plan.map((f) => f.atMs)].sort((a, b) => a - b));
  });

  test('without InfluxDB there is no InfluxDB fault', () => {
    expect(m.faultSchedule(600_000, { influx: false }).map((f) => f.kind)).not.toContain('influx-down');
  });

  test('only the faults asked for, each once per cycle', () => {
    const plan = m.faultSchedule(1_200_000, { faults: ['instrument-disconnect', 'gateway-kill'] });
    expect(plan.map((f) => f.kind)).toEqual(['instrument-disconnect', 'gateway-kill', 'instrument-disconnect', 'gateway-kill']);
    expect(m.faultSchedule(600_000, { faults: [] })).toEqual([]);
  });
});

describe('the slope of a resource', () => {
  const line = (t0: number, n: number, v0: number, perMinute: number): { t: number; value: number }[] =>
    Array.from({ length: n }, (_, i) => ({ t: t0 + i * 60_000, value: v0 + perMinute * i }));

  test('is per hour, and a restart to a lower level is no step', () => {
    // two lifetimes growing 1 MiB a minute, the second starting far lower: 60 MiB/h, not a fall
    expect(m.pooledSlopePerHour([line(0, 10, 200, 1), line(600_000, 10, 80, 1)])!.perHour).toBeCloseTo(60, 6);
    // flat lifetimes at different levels: flat
    expect(m.pooledSlopePerHour([line(0, 10, 200, 0), line(600_000, 10, 80, 0)])!.perHour).toBeCloseTo(0, 6);
  });

  test('leaves out the warm-up of each lifetime, and lifetimes too short to fit', () => {
    const warming = [...line(0, 3, 50, 40), ...line(180_000, 10, 170, 0)];
    expect(m.pooledSlopePerHour([warming], 150_000)!.perHour).toBeCloseTo(0, 6);
    expect(m.pooledSlopePerHour([warming], 0)!.perHour).toBeGreaterThan(100);
    expect(m.pooledSlopePerHour([line(0, 2, 0, 5)])).toBeNull();
  });

  test('is flat below the limit, or above it while what it adds over the longest lifetime is within the margin', () => {
    // 1 fd a minute over 9 minutes fitted: 60/h, 9 fds
    const fit = m.pooledSlopePerHour([line(0, 10, 20, 1), line(600_000, 4, 20, 1)])!;
    expect(fit.spanMs).toBe(9 * 60_000);
    const steep = m.isFlat(fit, 30, 8);
    expect(steep.ok).toBe(false);
    expect(steep.rise).toBeCloseTo(9, 6);
    expect(m.isFlat(fit, 30, 10).ok).toBe(true);
    expect(m.isFlat(fit, 60.5, 0).ok).toBe(true);
    expect(m.isFlat(null, 30, 8)).toEqual({ ok: false, rise: null });
  });
});

describe('the stored-measurements counter', () => {
  const life = (l: Partial<Lifetime>): Lifetime => ({ pid: 1, before: 0, counter: 0, atScrape: 0, quiet: false, ...l });

  test('matches the store per lifetime: behind by less than the slack while loaded, exactly once quiet', () => {
    const ok = m.checkCounter(
      [
        life({ counter: 1000, atScrape: 1100 }),
        life({ pid: 2, before: 1150, counter: 0, atScrape: 1150 }),
        life({ pid: 3, before: 1150, counter: 500, atScrape: 1650, quiet: true }),
      ],
      200,
    );
    expect(ok).toEqual({ counted: 1500, problems: [] });
  });

  test.each([
    [life({ counter: 1000, atScrape: 1300 }), 'the counter says 1000 stored, the store holds 1300 more (allowed lag 200)'],
    [life({ counter: 1000, atScrape: 900 }), 'the counter says 1000 stored, the store holds 900 more'],
    [life({ counter: 1000, atScrape: 1001, quiet: true }), 'the counter says 1000 stored, the store holds 1001 more (allowed lag 0)'],
    [life({ counter: null, atScrape: null }), 'never scraped'],
  ])('a counter off the store is named: %j', (l, message) => {
    const { problems } = m.checkCounter([l], 200);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(message);
  });
});
