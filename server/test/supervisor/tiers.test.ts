// The published scoring table: weights per severity, the rolling period, the bands of the tiers and their schedules.
import { describe, expect, test } from '@jest/globals';
import { SCORING, standingOf } from '../../src/supervisor/tiers.js';

const NOW = Date.UTC(2026, 11, 1);
const open = (severity: 'minor' | 'major' | 'critical', daysAgo = 1) => ({ severity, detectedAt: NOW - daysAgo * 86_400_000, status: 'open' });

describe('credit tiers', () => {
  test.each([
    [[], 'A', 0],
    [[open('minor'), open('minor')], 'A', 2],
    [[open('minor'), open('minor'), open('minor')], 'B', 3],
    [[open('major')], 'B', 5],
    [[open('major'), open('major')], 'C', 10],
    [
      [
        open('major'),
        open('major'),
        open('major'),
        open('major'),
        open('minor'),
        open('minor'),
        open('minor'),
        open('minor'),
        open('minor'),
        open('minor'),
        open('minor'),
        open('minor'),
        open('minor'),
      ],
      'C',
      29,
    ],
    [[open('critical')], 'D', 30],
  ])('%j is tier %s (score %d)', (findings, tier, score) => {
    expect(standingOf(findings, NOW)).toMatchObject({ tier, score });
  });

  test('resolved findings and findings older than the rolling period do not count', () => {
    expect(standingOf([{ ...open('critical'), status: 'resolved' }, open('critical', 366)], NOW)).toMatchObject({ tier: 'A', score: 0 });
    expect(standingOf([open('critical', 364)], NOW).tier).toBe('D');
  });

  test('a lab in good standing is checked less often', () => {
    const every = SCORING.bands.map((b) => b.checkEveryMs);
    expect([...every].sort((a, b) => b - a)).toEqual(every);
    expect(standingOf([], NOW).checkEveryMs).toBe(24 * 3_600_000);
    expect(standingOf([open('critical')], NOW).checkEveryMs).toBe(15 * 60_000);
  });
});
