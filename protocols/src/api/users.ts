// User and organization administration (the admin's).
import { z } from 'zod';
import { defineRoute } from './contract.js';
import { idSchema, msSchema, pageOf, pageQuery } from './common.js';
import { passwordSchema, roleSchema, userSchema, usernameSchema } from './auth.js';
import { line, optionalLine, wellFormed } from './text.js';
import { timeMs } from './time.js';

// the customer organizations an auditor's grant covers; null (or left out at creation): all of them
const grantOrganizations = z
  .array(idSchema)
  .min(1, 'at least one organization, or null for all')
  .max(1000)
  .refine((ids) => new Set(ids).size === ids.length, 'an organization is listed twice')
  .nullable();

export const newUserBody = z.strictObject({
  username: usernameSchema,
  role: roleSchema,
  organization: idSchema.optional(),
  password: passwordSchema.optional(),
  grantUntil: timeMs.optional(),
  grantOrganizations: grantOrganizations.optional(),
});
export const userChangesBody = z.strictObject({
  role: roleSchema.optional(),
  organization: idSchema.nullable().optional(),
  disabled: z.boolean().optional(),
  grantUntil: timeMs.nullable().optional(),
  grantOrganizations: grantOrganizations.optional(),
  reason: wellFormed(z.string().trim().min(1, 'required: why the user is changed').max(1000), true),
});
export const resetPasswordBody = z.strictObject({ password: passwordSchema.optional() });
export const organizationBody = z.strictObject({
  id: idSchema,
  name: line(200),
  /** who to contact about its reports: a person, an e-mail address, a telephone number (7.8.2.1 e) */
  contact: line(300).optional(),
});

export const organizationSchema = z.strictObject({ id: z.string(), name: z.string(), contact: z.string().nullable(), createdAt: msSchema });
export type Organization = z.output<typeof organizationSchema>;

const usernameParams = z.strictObject({ username: usernameSchema });

/** a page of users, newest first; `q` is a part of the username (case-insensitive) */
export const usersQuery = z.strictObject({
  ...pageQuery,
  q: optionalLine(100).optional(),
  role: roleSchema.optional(),
  disabled: z.enum(['true', 'false']).optional(),
});
export const listUsers = defineRoute({ method: 'GET', path: '/api/users', query: usersQuery, response: pageOf(userSchema) });
export const createUser = defineRoute({
  method: 'POST',
  path: '/api/users',
  body: newUserBody,
  /** with the one-time password when none was given */
  response: userSchema.extend({ oneTimePassword: z.string().optional() }),
});
export const updateUser = defineRoute({
  method: 'PATCH',
  path: '/api/users/:username',
  params: usernameParams,
  body: userChangesBody,
  response: userSchema,
});
export const resetPassword = defineRoute({
  method: 'POST',
  path: '/api/users/:username/password',
  params: usernameParams,
  body: resetPasswordBody,
  response: z.strictObject({ oneTimePassword: z.string().optional() }),
});
export const listOrganizations = defineRoute({ method: 'GET', path: '/api/organizations', response: z.array(organizationSchema) });
export const createOrganization = defineRoute({
  method: 'POST',
  path: '/api/organizations',
  body: organizationBody,
  response: organizationSchema,
});
