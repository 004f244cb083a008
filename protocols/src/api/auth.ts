// Sign-in, sign-out, the password, API tokens and the signed-in user's own preferences.
import { z } from 'zod';
import { defineRoute, noContent } from './contract.js';
import { msSchema, reasonSchema } from './common.js';
import { line } from './text.js';

export const ROLES = ['admin', 'technician', 'signatory', 'client', 'auditor'] as const;
export const roleSchema = z.enum(ROLES);
export type Role = z.output<typeof roleSchema>;

export const usernameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{1,62}$/, 'expected 2-63 characters: lower-case letters, digits, ".", "_" or "-"');
export const passwordSchema = z.string().min(12, 'at least 12 characters').max(200, 'at most 200 characters');

/** the languages the dashboard, the public pages and reports speak */
export const LOCALES = ['zh-CN', 'en'] as const;
export const localeSchema = z.enum(LOCALES);
export type Locale = z.output<typeof localeSchema>;

/**
 * Whether `zone` is an IANA time zone this runtime knows (Asia/Shanghai, Europe/Berlin, UTC). An offset (+08:00) is
 * not one: newer runtimes' Intl (Node.js 22 and later, current browsers) take offsets as zones, older ones refuse
 * them, and a fixed offset is no zone a person lives in (no daylight saving), so it is refused on every runtime alike.
 */
export function isTimeZone(zone: string): boolean {
  if (zone.length === 0 || zone.length > 64 || /^[+\-\u2212]/.test(zone)) return false;
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** an IANA time zone name, checked with Intl and kept in its canonical spelling (asia/shanghai: Asia/Shanghai) */
export const timeZoneSchema = z
  .string()
  .max(64, 'at most 64 characters')
  .refine(isTimeZone, { message: 'expected an IANA time zone such as Asia/Shanghai or Europe/Berlin' })
  .transform((zone) => new Intl.DateTimeFormat('en', { timeZone: zone }).resolvedOptions().timeZone);

/** a user's own settings: null follows the browser */
export const preferencesSchema = z.strictObject({
  /** the language; null: the browser's */
  locale: localeSchema.nullable(),
  /** the time zone times are shown in; null: the browser's */
  timeZone: z.string().nullable(),
});
export type Preferences = z.output<typeof preferencesSchema>;

/** a user as the API shows it (never a password or a session) */
export const userSchema = z.strictObject({
  username: z.string(),
  role: roleSchema,
  organization: z.string().nullable(),
  disabled: z.boolean(),
  grantUntil: msSchema.nullable(),
  /** the organizations an auditor's grant covers; null: all of them */
  grantOrganizations: z.array(z.string()).nullable(),
  mustChange: z.boolean(),
  lockedUntil: msSchema.nullable(),
  createdAt: msSchema,
  passwordChangedAt: msSchema,
  ...preferencesSchema.shape,
});
export type User = z.output<typeof userSchema>;
/** the dashboard's name for a user of the list */
export type UserItem = User;

/** the signed-in user, with the CSRF token a cookie session echoes in x-csrf-token */
export const meSchema = userSchema.extend({ csrf: z.string().optional() });
export type Me = z.output<typeof meSchema>;

export const loginBody = z.strictObject({ username: z.string().min(1).max(100), password: z.string().min(1).max(200) });
export const passwordBody = z.strictObject({ currentPassword: z.string().min(1).max(200), newPassword: passwordSchema });
export const tokenBody = z.strictObject({ name: line(100), ttlDays: z.number().int().min(1).max(365).default(90) });
export const preferencesBody = z
  .strictObject({ locale: localeSchema.nullable().optional(), timeZone: timeZoneSchema.nullable().optional() })
  .refine((p) => p.locale !== undefined || p.timeZone !== undefined, { message: 'give locale, timeZone or both' });

export const login = defineRoute({
  method: 'POST',
  path: '/api/auth/login',
  body: loginBody,
  response: z.strictObject({ token: z.string(), csrf: z.string(), expiresAt: msSchema, user: userSchema }),
});
export const logout = defineRoute({ method: 'POST', path: '/api/auth/logout', response: noContent });
export const me = defineRoute({ method: 'GET', path: '/api/auth/me', response: meSchema });
export const changePassword = defineRoute({ method: 'POST', path: '/api/auth/password', body: passwordBody, response: noContent });
export const createToken = defineRoute({
  method: 'POST',
  path: '/api/auth/tokens',
  body: tokenBody,
  response: z.strictObject({ token: z.string(), expiresAt: msSchema, id: z.number().int() }),
});
export const updatePreferences = defineRoute({ method: 'PATCH', path: '/api/auth/preferences', body: preferencesBody, response: meSchema });

/** an API token as listed: never its secret, which is shown once at creation */
export const apiTokenSchema = z.strictObject({
  id: z.number().int(),
  name: z.string(),
  /** whose token it is: it acts as this user, with the user's role */
  username: z.string(),
  role: roleSchema,
  createdAt: msSchema,
  expiresAt: msSchema,
});
export type ApiToken = z.output<typeof apiTokenSchema>;

/** the caller's own API tokens (an admin's: every user's), newest first; expired ones are left out */
export const listTokens = defineRoute({ method: 'GET', path: '/api/auth/tokens', response: z.array(apiTokenSchema) });
export const revokeToken = defineRoute({
  method: 'POST',
  path: '/api/auth/tokens/:id/revoke',
  params: z.strictObject({ id: z.coerce.number().int().min(1) }),
  body: z.strictObject({ reason: reasonSchema.optional() }),
  response: apiTokenSchema,
});
