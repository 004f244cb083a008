// Result files as the instrument wrote them (kept by the server under their SHA-256, which the samples'
// signed records name).
import { z } from 'zod';
import { defineRoute } from './contract.js';

/** application/octet-stream: the file's bytes, whose SHA-256 is the one asked for */
export const rawFile = defineRoute({
  method: 'GET',
  path: '/api/raw-files/:sha256',
  params: z.strictObject({ sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected the 64 lowercase hex digits of a SHA-256') }),
});
