// A signal model produces an instrument's physical values as a function of time.
export type ChannelValues = Record<string, number | boolean | string>;

export interface SignalModel {
  readonly kind: string;
  /** Advances the model to `now` (ms) and returns the values of every channel it knows. */
  step(now: number): ChannelValues;
}

/** Small deterministic noise source (mulberry32) so runs are reproducible with a seed. */
export function noise(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  };
}
