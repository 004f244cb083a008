// The InfluxDB catch-up told in the log (store/series/catch-up.ts), on its own clock: a backlog below the threshold
// says nothing; a large one starts the report, each look says what was written, the rate, what is left and about
// how long; a look at which nothing moved says so; the end says how much was written in how long, and the report
// stops until the next large backlog. (The same lines against a real influxd: influx-series.test.ts.)
import { expect, test } from '@jest/globals';
import pino from 'pino';
import { CatchUpProgress } from '../../../src/store/series/catch-up.js';

interface Line {
  msg: string;
  backlog?: { batches: number; samples: number };
  written?: number;
  perSecond?: number;
}

test('a catch-up from its start to its end, on a clock the test moves', () => {
  const lines: Line[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Line) });
  let now = 1_000_000;
  let backlog = { batches: 10, samples: 2_000 };
  const progress = new CatchUpProgress({ logger, backlog: () => backlog, minSamples: 10_000, now: () => now });

  // the few batches in flight of a normal day
  now += 5000;
  progress.written(2_000);
  progress.look();
  expect(lines).toEqual([]);

  // InfluxDB was away: 600 batches of 200 samples wait
  backlog = { batches: 600, samples: 120_000 };
  now += 5000;
  progress.look();
  expect(lines.map((l) => l.msg)).toEqual(['InfluxDB catch-up: 120000 samples in 600 stored batches to write']);

  // 40,000 written in 5 s: 8,000/s, 80,000 left, about 10 s
  progress.written(40_000);
  backlog = { batches: 400, samples: 80_000 };
  now += 5000;
  progress.look();
  expect(lines[1]).toMatchObject({
    msg: 'InfluxDB catch-up: 40000 samples written, 80000 left in 400 batches, 8000/s, about 10 s left',
    written: 40_000,
    perSecond: 8000,
    backlog: { batches: 400, samples: 80_000 },
  });

  // nothing written in the next 5 s
  now += 5000;
  progress.look();
  expect(lines[2]?.msg).toBe('InfluxDB catch-up: 40000 samples written, 80000 left in 400 batches, 0/s, not moving (InfluxDB is not taking writes)');

  // the rest, and the end: 15 s after it started
  progress.written(80_000);
  backlog = { batches: 0, samples: 0 };
  now += 5000;
  progress.look();
  expect(lines[3]).toMatchObject({ msg: 'InfluxDB caught up: 120000 samples written in 15 s', written: 120_000 });

  // and quiet again
  now += 5000;
  progress.written(100);
  progress.look();
  expect(lines).toHaveLength(4);
});

test('a store that cannot be read at the moment (being closed) is not a crash: the look is skipped', () => {
  const lines: Line[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Line) });
  const progress = new CatchUpProgress({
    logger,
    backlog: () => {
      throw new Error('The database connection is not open');
    },
  });
  expect(() => progress.look()).not.toThrow();
  expect(lines).toEqual([]);
});
