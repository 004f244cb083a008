// The HTTP side of server.yaml: `http:` (listener, proxy trust, rate limits), `publicBaseUrl` and `dashboardDir`.
// Schema only: the express app lives in app.ts.
import { z } from 'zod';

/** a gateway enrolls once; ten tries at once, then one every ten seconds */
const DEFAULT_ENROLL_RATE_LIMIT = { perSecond: 0.1, burst: 10 };

export const httpConfigSchema = z
  .strictObject({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8080),
    /** behind a TLS-terminating proxy: trust its X-Forwarded-* headers from these addresses, so that session cookies are marked Secure */
    trustProxy: z.array(z.string().min(1)).optional(),
    /** requests a second per client address on /api, after a burst; `false` turns the limit off */
    rateLimit: z
      .union([z.literal(false), z.strictObject({ perSecond: z.number().positive().max(1_000_000), burst: z.number().int().min(1).max(10_000_000) })])
      .default({ perSecond: 100, burst: 1000 }),
    /** POST /api/enroll per client address (it needs no sign-in): a burst, then `perSecond` */
    enrollRateLimit: z
      .strictObject({ perSecond: z.number().positive().max(1_000_000), burst: z.number().int().min(1).max(10_000_000) })
      .default(DEFAULT_ENROLL_RATE_LIMIT),
  })
  .default({ host: '127.0.0.1', port: 8080, rateLimit: { perSecond: 100, burst: 1000 }, enrollRateLimit: DEFAULT_ENROLL_RATE_LIMIT });
export type HttpConfig = z.output<typeof httpConfigSchema>;

/** the URL the public reaches the server at: reports link to <publicBaseUrl>/verify/<id> (default: the listen address) */
export const publicBaseUrlSchema = z
  .string()
  .regex(/^https?:\/\/[^/\s?#]+(\/[^\s?#]*)?$/, 'expected an http(s) URL such as https://lab.example.com')
  .optional();

/** folder of the built dashboard; defaults to the dashboard package's dist */
export const dashboardDirSchema = z.string().min(1).optional();
