// A sample's quality, in a module of its own without zod: the browser verifier (trust/record.ts) reads it, and the
// page must not carry the schemas of measurement.ts.
export const QUALITIES = ['good', 'uncertain', 'bad'] as const;
export type Quality = (typeof QUALITIES)[number];
