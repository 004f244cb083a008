import { describe, expect, test } from '@jest/globals';
import type { Reporting } from '@labtrace/protocols';
import { ReportFilter, type ReportedValue } from '../src/reporting.js';

/** Feeds [value, ts] pairs to one channel and returns the values that were reported. */
function reported(filter: ReportFilter, series: [ReportedValue, number][], channel = 'c'): ReportedValue[] {
  return series.filter(([value, ts]) => filter.accept(channel, value, ts)).map(([value]) => value);
}

const periodic: Reporting = { mode: 'periodic', deadband: 0, periodMs: 60_000 };

describe('ReportFilter', () => {
  test('periodic reports every value, repeated ones too', () => {
    expect(
      reported(new ReportFilter(periodic), [
        [1, 0],
        [1, 10],
        [1, 20],
      ]),
    ).toEqual([1, 1, 1]);
  });

  test('change reports moves beyond the deadband, measured from the last reported value', () => {
    const filter = new ReportFilter({ mode: 'change', deadband: 0.5, periodMs: 60_000 });
    // 10.2 and 10.4 are within 0.5 of 10; 10.6 is not. A slow drift (10.8, 11.0) adds up to a report at 11.2.
    const values = [10, 10.2, 10.4, 10.6, 10.8, 11.0, 11.2, 10.6, 10.5];
    expect(
      reported(
        filter,
        values.map((v, i) => [v, i * 1000]),
      ),
    ).toEqual([10, 10.6, 11.2, 10.6]);
  });

  test('change with deadband 0 reports every different value and no repeats', () => {
    const filter = new ReportFilter({ mode: 'change', deadband: 0, periodMs: 60_000 });
    expect(
      reported(
        filter,
        [1, 1, 2, 2, 1].map((v, i) => [v, i]),
      ),
    ).toEqual([1, 2, 1]);
  });

  test('change reports booleans, strings and null when they differ', () => {
    const filter = new ReportFilter({ mode: 'change', deadband: 5, periodMs: 60_000 });
    const series: ReportedValue[] = [true, true, false, 'RUN', 'RUN', 'STOP', null, null, 3, 4];
    expect(
      reported(
        filter,
        series.map((v, i) => [v, i]),
      ),
    ).toEqual([true, false, 'RUN', 'STOP', null, 3]);
  });

  test('both reports on change and at least every periodMs', () => {
    const filter = new ReportFilter({ mode: 'both', deadband: 1, periodMs: 1000 });
    const series: [number, number][] = [
      [5, 0], // first
      [5, 400],
      [5.5, 999],
      [5, 1000], // period
      [7, 1200], // change
      [7, 2100],
      [7, 2200], // period since the change at 1200
    ];
    expect(filter.accept('c', 5, 0)).toBe(true);
    expect(series.slice(1).map(([v, ts]) => filter.accept('c', v, ts))).toEqual([false, false, true, true, false, true]);
  });

  test('channels are independent, and forget() makes the next value report', () => {
    const filter = new ReportFilter({ mode: 'change', deadband: 0, periodMs: 60_000 });
    expect(filter.accept('a', 1, 0)).toBe(true);
    expect(filter.accept('b', 1, 0)).toBe(true);
    expect(filter.accept('a', 1, 1)).toBe(false);
    filter.forget('a');
    expect(filter.accept('a', 1, 2)).toBe(true);
    expect(filter.accept('b', 1, 2)).toBe(false);
  });

  test('a per-channel setting overrides the default', () => {
    const filter = new ReportFilter(periodic, new Map([['slow', { mode: 'change', deadband: 10, periodMs: 60_000 } satisfies Reporting]]));
    expect(
      reported(
        filter,
        [
          [1, 0],
          [5, 1],
          [12, 2],
        ],
        'slow',
      ),
    ).toEqual([1, 12]);
    expect(
      reported(
        filter,
        [
          [1, 0],
          [5, 1],
          [12, 2],
        ],
        'fast',
      ),
    ).toEqual([1, 5, 12]);
  });
});
