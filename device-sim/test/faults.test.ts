// The fault set on its own: what a request gets, when faults end by themselves, and the statistics of
// the noise and drift it puts on values. Time is passed in, so nothing sleeps.
import { describe, expect, test } from '@jest/globals';
import { noise } from '../src/models/model.js';
import { FaultSet, faultSchema } from '../src/index.js';

const T = 1_000_000;
const numeric = new Set(['a', 'b']);

describe('requests', () => {
  test('no faults: every request is answered, without delay', () => {
    const f = new FaultSet(noise(1));
    expect(f.requestFate(T)).toEqual({ kind: 'answer' });
    expect(f.replyDelayMs(T)).toBe(0);
  });

  test('an exception with a count applies to that many requests, then clears itself', () => {
    const f = new FaultSet(noise(1));
    f.set({ kind: 'exception', code: 6, count: 2 }, T);
    expect([f.requestFate(T), f.requestFate(T), f.requestFate(T)]).toEqual([
      { kind: 'exception', code: 6 },
      { kind: 'exception', code: 6 },
      { kind: 'answer' },
    ]);
    expect(f.list(T)).toEqual([]);
  });

  test('no-answer wins over an exception; disconnect silences until its time is up', () => {
    const f = new FaultSet(noise(1));
    f.set({ kind: 'exception', code: 2 }, T);
    f.set({ kind: 'no-answer' }, T);
    expect(f.requestFate(T).kind).toBe('silent');
    f.clear('no-answer');
    f.clear('exception');
    f.set({ kind: 'disconnect', ms: 500 }, T);
    expect(f.requestFate(T + 499).kind).toBe('silent');
    expect(f.requestFate(T + 500).kind).toBe('answer');
    expect(f.list(T + 500)).toEqual([]);
  });

  test('slow sets the reply delay; setting a kind again replaces it', () => {
    const f = new FaultSet(noise(1));
    f.set({ kind: 'slow', ms: 100 }, T);
    f.set({ kind: 'slow', ms: 250 }, T);
    expect(f.replyDelayMs(T)).toBe(250);
    expect(f.list(T)).toEqual([{ kind: 'slow', ms: 250, since: T }]);
  });
});

describe('values', () => {
  test('noise is gaussian with the amplitude as standard deviation', () => {
    const f = new FaultSet(noise(7));
    f.set({ kind: 'noise', amplitude: 2 }, T);
    const draws: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const v = { a: 10 };
      f.perturb(v, numeric, T);
      draws.push(v.a - 10);
    }
    const mean = draws.reduce((s, x) => s + x, 0) / draws.length;
    const sd = Math.sqrt(draws.reduce((s, x) => s + (x - mean) ** 2, 0) / (draws.length - 1));
    expect(Math.abs(mean)).toBeLessThan(0.05);
    expect(sd).toBeGreaterThan(1.95);
    expect(sd).toBeLessThan(2.05);
    // the share within one standard deviation is that of a normal distribution (68.3 %), not of a uniform one (57.7 %)
    const within = draws.filter((x) => Math.abs(x) <= 2).length / draws.length;
    expect(within).toBeGreaterThan(0.67);
    expect(within).toBeLessThan(0.7);
  });

  test('drift grows linearly from the moment it was set, on the chosen channels only', () => {
    const f = new FaultSet(noise(1));
    f.set({ kind: 'drift', ratePerSecond: -0.5, channels: ['a'] }, T);
    const v = { a: 10, b: 10, flag: true, label: 'x' };
    f.perturb(v, numeric, T + 4000);
    expect(v).toEqual({ a: 8, b: 10, flag: true, label: 'x' });
  });

  test('channels that are not numeric are never touched', () => {
    const f = new FaultSet(noise(1));
    f.set({ kind: 'noise', amplitude: 5 }, T);
    const v = { a: 1, status: 3 };
    f.perturb(v, numeric, T);
    expect(v.status).toBe(3);
    expect(v.a).not.toBe(1);
  });
});

describe('the schema', () => {
  test('names what is wrong', () => {
    const r = faultSchema.safeParse({ kind: 'exception', code: 0 });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['code']);
    expect(faultSchema.safeParse({ kind: 'stuck', ms: 3 }).success).toBe(false);
    expect(faultSchema.safeParse({ kind: 'drift', ratePerSecond: -1 }).success).toBe(true);
  });
});
