// Credit tiers: the published scoring table. A lab's score is the sum of the weights of its open findings detected
// within the rolling period; the score's band is its tier, and the tier sets how often the supervisor runs the
// deeper checks (a lab in good standing is checked less often).
import type { Severity } from './evidence.js';

export type Tier = 'A' | 'B' | 'C' | 'D';

export const SCORING = {
  /** findings older than this (by the time the supervisor detected them) no longer count */
  rollingPeriodMs: 365 * 86_400_000,
  weights: { minor: 1, major: 5, critical: 30 } satisfies Record<Severity, number>,
  /** the tier of a score: the first band whose bound the score stays below */
  bands: [
    { tier: 'A', below: 3, checkEveryMs: 24 * 3_600_000 },
    { tier: 'B', below: 10, checkEveryMs: 6 * 3_600_000 },
    { tier: 'C', below: 30, checkEveryMs: 3_600_000 },
    { tier: 'D', below: Infinity, checkEveryMs: 15 * 60_000 },
  ] as const satisfies readonly { tier: Tier; below: number; checkEveryMs: number }[],
} as const;

export interface Standing {
  tier: Tier;
  score: number;
  /** open findings counted, by severity */
  counted: Record<Severity, number>;
  /** how often the deeper checks run at this tier */
  checkEveryMs: number;
}

/** The standing of a lab from its findings: only open ones (not resolved by the supervisor) detected within the period count. */
export function standingOf(findings: readonly { severity: Severity; detectedAt: number; status: string }[], now: number): Standing {
  const counted: Record<Severity, number> = { minor: 0, major: 0, critical: 0 };
  let score = 0;
  for (const f of findings) {
    if (f.status !== 'open' || f.detectedAt < now - SCORING.rollingPeriodMs) continue;
    counted[f.severity] += 1;
    score += SCORING.weights[f.severity];
  }
  // the last band has no bound, so one always matches
  const band = SCORING.bands.find((b) => score < b.below) ?? SCORING.bands[3];
  return { tier: band.tier, score, counted, checkEveryMs: band.checkEveryMs };
}
