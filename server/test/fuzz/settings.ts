// How much the fuzz suites run: a bounded, seeded run in `npm test`; `npm run fuzz` sets FUZZ_RUNS for a
// longer one. FUZZ_SEED replays a run (the seed is printed with every failure).
import type { Parameters } from 'fast-check';

/** the seed of this run: FUZZ_SEED, or the fixed one of the CI run */
export const FUZZ_SEED = Number.parseInt(process.env['FUZZ_SEED'] ?? '', 10) || 20_261_206;

/** FUZZ_RUNS when set: the number of cases of every property, instead of each one's CI count */
const override = Number.parseInt(process.env['FUZZ_RUNS'] ?? '', 10);

/** the cases of a property: its CI count, or FUZZ_RUNS */
export function runs(ci: number): number {
  return Number.isFinite(override) && override > 0 ? override : ci;
}

/** fast-check parameters of a property: seeded, and the seed in the failure message */
export function params<T>(ci: number): Parameters<T> {
  return { seed: FUZZ_SEED, numRuns: runs(ci), verbose: 1 };
}
