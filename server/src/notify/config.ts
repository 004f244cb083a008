// The notifications' settings in the server config (`notifications:`): the SMTP relay e-mail goes through, and how
// hard the outbox tries before it records a delivery as failed. The SMTP password never sits in the config: it comes
// from LABTRACE_SMTP_PASSWORD or the file `smtp.passwordFile` names.
import path from 'node:path';
import { z } from 'zod';

export const smtpConfigSchema = z
  .strictObject({
    host: z.string().trim().min(1, 'required: the SMTP relay, such as smtp.example.com'),
    port: z.number().int().min(1).max(65535).default(587),
    /** TLS from the first byte (port 465); otherwise STARTTLS when the server offers it */
    secure: z.boolean().default(false),
    /** refuse to send over a connection that did not upgrade with STARTTLS */
    requireTls: z.boolean().default(false),
    /** check the relay's certificate (turn off only for a relay on the same host) */
    rejectUnauthorized: z.boolean().default(true),
    username: z.string().min(1).max(320).optional(),
    /** file holding the SMTP password; LABTRACE_SMTP_PASSWORD overrides it */
    passwordFile: z.string().min(1).optional(),
    /** the sender, such as `labtrace <lab@example.com>` */
    from: z.string().trim().min(3).max(320),
  })
  .superRefine((c, ctx) => {
    if (c.passwordFile !== undefined && c.username === undefined)
      ctx.addIssue({ code: 'custom', path: ['username'], message: 'required when passwordFile is given' });
    if (c.secure && c.requireTls) ctx.addIssue({ code: 'custom', path: ['requireTls'], message: 'applies only without secure (STARTTLS)' });
  });
export type SmtpConfig = z.output<typeof smtpConfigSchema>;

export const notificationsConfigSchema = z
  .strictObject({
    /** e-mail goes out only with an SMTP relay; without one, e-mail subscriptions are refused */
    smtp: smtpConfigSchema.optional(),
    /** attempts of one delivery before it is recorded as failed */
    maxAttempts: z.number().int().min(1).max(100).default(10),
    /** the wait before the second attempt; it doubles each time (with jitter) up to maxDelayMs */
    baseDelayMs: z.number().int().min(10).max(3_600_000).default(10_000),
    maxDelayMs: z.number().int().min(10).max(86_400_000).default(3_600_000),
    /** the outbox's bound: past it, a new delivery is recorded as failed at once (never dropped unrecorded) */
    maxPending: z.number().int().min(1).max(10_000_000).default(100_000),
    /** one attempt's time limit (connect, send, answer) */
    timeoutMs: z.number().int().min(100).max(300_000).default(15_000),
    /** how often the outbox looks for deliveries whose time has come */
    pollMs: z.number().int().min(10).max(60_000).default(1000),
    /** a gateway counts as offline when it stayed disconnected this long (a quick reconnection tells nobody) */
    gatewayOfflineAfterMs: z.number().int().min(0).max(86_400_000).default(60_000),
    /** security events of this severity and above are notified */
    securityMinSeverity: z.enum(['info', 'notice', 'alarm']).default('alarm'),
    /** how often calibrations due are looked for (due within calibration.dueSoonDays, or expired) */
    calibrationCheckMs: z.number().int().min(100).max(86_400_000).default(3_600_000),
  })
  .superRefine((c, ctx) => {
    if (c.maxDelayMs < c.baseDelayMs) ctx.addIssue({ code: 'custom', path: ['maxDelayMs'], message: 'must not be below baseDelayMs' });
  })
  .default({
    maxAttempts: 10,
    baseDelayMs: 10_000,
    maxDelayMs: 3_600_000,
    maxPending: 100_000,
    timeoutMs: 15_000,
    pollMs: 1000,
    gatewayOfflineAfterMs: 60_000,
    securityMinSeverity: 'alarm',
    calibrationCheckMs: 3_600_000,
  });
export type NotificationsConfig = z.output<typeof notificationsConfigSchema>;

/** the SMTP password file, relative to the config file's folder */
export function resolveNotificationsConfig(n: NotificationsConfig, baseDir: string): NotificationsConfig {
  const file = n.smtp?.passwordFile;
  return n.smtp === undefined || file === undefined ? n : { ...n, smtp: { ...n.smtp, passwordFile: path.resolve(baseDir, file) } };
}
