// `clock:` in the server's and the gateway's config: the NTP servers their own clock is measured against, how often,
// and the bound beyond which its offset is an alarm. Off when no server is named (no network access by default).
import { z } from 'zod';

export const NTP_PORT = 123;

/** `host`, `host:port`, `[v6]` or `[v6]:port`: the host and port, or undefined when it is none of these */
export function parseNtpServer(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/.exec(text);
  if (m === null) return undefined;
  const port = m[3] === undefined ? NTP_PORT : Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1] ?? m[2] ?? '', port };
}

export const ntpConfigSchema = z
  .strictObject({
    /** NTP servers, `host` or `host:port` (port 123 by default); none: the clock is not measured */
    servers: z
      .array(z.string().refine((s) => parseNtpServer(s) !== undefined, "expected 'host', 'host:port' or '[v6 address]:port'"))
      .max(8)
      .default([]),
    /** how often the servers are asked */
    everySeconds: z.number().int().min(1).max(86_400).default(64),
    /** how far our clock may be from the servers' before it is an alarm (and back within half of it, a notice) */
    maxOffsetMs: z.number().int().min(1).max(3_600_000).default(1000),
    /** how long a server has to answer */
    timeoutMs: z.number().int().min(50).max(60_000).default(2000),
  })
  .default({ servers: [], everySeconds: 64, maxOffsetMs: 1000, timeoutMs: 2000 });
export type NtpConfig = z.output<typeof ntpConfigSchema>;

export const clockConfigSchema = z
  .strictObject({ ntp: ntpConfigSchema })
  .default({ ntp: { servers: [], everySeconds: 64, maxOffsetMs: 1000, timeoutMs: 2000 } });
export type ClockConfig = z.output<typeof clockConfigSchema>;

/** no NTP answer for this many rounds in a row is an alarm (an unreachable server hides a clock that drifts) */
export const NTP_UNREACHABLE_ROUNDS = 3;
