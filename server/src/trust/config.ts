// The trust side of server.yaml: `securityEvents:` (how floods of refusals are counted) and `gateways:` (registered
// gateway keys). Schema only: the key registry and the security events live beside this file.
import { z } from 'zod';
import { idSchema, parseVerifierKey } from '@labtrace/protocols';

/**
 * refusals that can come in floods (failed MQTT logins, garbage payloads, enrollment attempts) are one security
 * event per kind and source per window, with a count; at most `maxSourcesPerWindow` sources of a kind per window
 */
export const securityEventsConfigSchema = z
  .strictObject({
    windowMs: z.number().int().min(1000).max(86_400_000).default(60_000),
    maxSourcesPerWindow: z.number().int().min(1).max(100_000).default(200),
  })
  .default({ windowMs: 60_000, maxSourcesPerWindow: 200 });
export type SecurityEventsConfig = z.output<typeof securityEventsConfigSchema>;

/** registered gateway keys (verifier-key form name+keyid+base64); a registered gateway's batches must be signed with its key */
export const gatewaysConfigSchema = z
  .array(
    z.strictObject({
      id: idSchema,
      key: z.string().superRefine((text, ctx) => {
        try {
          parseVerifierKey(text);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message });
        }
      }),
    }),
  )
  .default([]);
export type GatewaysConfig = z.output<typeof gatewaysConfigSchema>;
