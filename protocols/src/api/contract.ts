// The REST API's contract, written once: each route's method, path and the zod schemas of its path parameters,
// query, body and response. The server validates what it takes with these schemas and the dashboard's client is
// typed by them, so the two cannot drift apart. Times are milliseconds since the epoch (UTC) everywhere.
import { z } from 'zod';

export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

/** an empty object: a route without path parameters, query or body */
export const none = z.strictObject({});

/** the response of a route that answers 204 No Content: no body */
export const noContent = z.undefined();

export interface RouteContract<
  P extends z.ZodType = z.ZodType,
  Q extends z.ZodType = z.ZodType,
  B extends z.ZodType = z.ZodType,
  R extends z.ZodType = z.ZodType,
> {
  method: HttpMethod;
  /** an express path: `/api/runs/:id` */
  path: string;
  params: P;
  query: Q;
  body: B;
  /** the JSON answered on success; `z.unknown()` for a file download */
  response: R;
}

/** A route's contract; parts left out are empty objects. */
export function defineRoute<
  P extends z.ZodType = typeof none,
  Q extends z.ZodType = typeof none,
  B extends z.ZodType = typeof none,
  R extends z.ZodType = z.ZodUnknown,
>(route: { method: HttpMethod; path: string; params?: P; query?: Q; body?: B; response?: R }): RouteContract<P, Q, B, R> {
  return {
    method: route.method,
    path: route.path,
    params: (route.params ?? none) as P,
    query: (route.query ?? none) as Q,
    body: (route.body ?? none) as B,
    response: (route.response ?? z.unknown()) as R,
  };
}

/** one part of a request: left out when its schema takes nothing, optional when every field of it is */
type Part<K extends string, S extends z.ZodType> = [keyof z.input<S>] extends [never]
  ? Record<never, never>
  : Record<never, never> extends z.input<S>
    ? { [P in K]?: z.input<S> }
    : { [P in K]: z.input<S> };

/**
 * What a caller gives for a route: its path parameters, query and body as the route's schemas take them (their input
 * types); a part whose schema takes nothing is left out, one whose fields are all optional may be.
 */
export type RouteInput<C extends RouteContract> = Part<'params', C['params']> & Part<'query', C['query']> & Part<'body', C['body']>;

/** what a route answers */
export type RouteOutput<C extends RouteContract> = z.output<C['response']>;

export { fillPath } from './path.js';

/**
 * One problem of a refused request, in a form a client translates: the field (`points[2].min`), a stable code
 * (zod's issue codes: too_small, invalid_type, ...; or a labtrace code) and its parameters (minimum, expected, ...).
 * `message` is the server's English for logs and API users.
 */
export const apiIssueSchema = z.object({
  path: z.string(),
  message: z.string(),
  code: z.string().optional(),
  params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
});
export type ApiIssue = z.output<typeof apiIssueSchema>;

/** Every refusal's body: the server's English, a stable code (E_BAD_REQUEST, E_NOT_FOUND, ...) and, for bad input, the issues. */
export const apiErrorSchema = z.object({
  error: z.string(),
  code: z.string(),
  /** a finer, stable reason a client translates (e.g. `run.not-planned`), with its parameters */
  reason: z.string().optional(),
  params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  issues: z.array(apiIssueSchema).optional(),
  requestId: z.string().optional(),
});
export type ApiErrorBody = z.output<typeof apiErrorSchema>;
