// The one HTTP client of the dashboard. Calls are typed by the REST contract (@labtrace/protocols/api): the
// path, parameters, query and body a route takes and the JSON it answers. The session rides in its httpOnly
// cookie; requests that change something echo the CSRF cookie in a header. A refusal is thrown as ApiError with
// the server's stable code, reason, parameters and per-field issues, which views translate (useErrorText).
import type { Api, ApiErrorBody, ApiIssue, RouteContract, RouteInput, RouteOutput } from '@labtrace/protocols/api';
// the path helper alone: the contract's schemas (zod) stay out of the page
import { fillPath } from '@labtrace/protocols/api/path';
// each route's method and path, read from the contract when the dashboard is built (vite.config.ts)
import { routes } from 'virtual:labtrace-routes';

/** A route of the contract as the page holds it: its method and path, typed by the route's schemas. */
export interface Route<C extends RouteContract = RouteContract> {
  readonly method: C['method'];
  readonly path: string;
  /** never set: carries the route's contract for the types of `call` */
  readonly contract?: C;
}

/** what a caller gives for a route (the contract's RouteInput) */
export type CallInput<C extends RouteContract> = RouteInput<C>;
/** the input argument: optional when nothing in it is required */
type InputArg<C extends RouteContract> = Record<never, never> extends CallInput<C> ? [input?: CallInput<C>] : [input: CallInput<C>];

/** every route of the REST API by the contract's name: `call(api.getRun, { params: { id } })` */
export const api = routes as unknown as { readonly [K in keyof Api]: Route<Api[K]> };

export class ApiError extends Error {
  readonly code: string;
  readonly reason: string | undefined;
  readonly params: Record<string, string | number | boolean>;
  readonly issues: ApiIssue[];
  constructor(
    readonly status: number,
    body: Partial<ApiErrorBody>,
  ) {
    super(body.error ?? `HTTP ${status}`);
    this.code = body.code ?? (status === 0 ? 'E_NETWORK' : `HTTP_${status}`);
    this.reason = body.reason;
    this.params = body.params ?? {};
    this.issues = body.issues ?? [];
  }
}

/** the CSRF cookie the server set at sign-in, echoed on every request that changes something */
export function csrfToken(): string {
  const match = /(?:^|;\s*)labtrace_csrf=([^;]*)/.exec(document.cookie);
  return match?.[1] === undefined ? '' : decodeURIComponent(match[1]);
}

/** A query string of the defined values: {from: 1, to: undefined} -> "?from=1". */
function queryString(query: Record<string, unknown> | undefined): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v === undefined || v === null || v === '') continue;
    q.set(k, typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v));
  }
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}

/** one session-ending listener (useSession): a 401 means the session is gone */
let onUnauthorized: (() => void) | undefined;
export function whenUnauthorized(listener: () => void): void {
  onUnauthorized = listener;
}

/** Sends a request; answers the parsed JSON body (undefined for 204), or throws ApiError. */
async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, headers: {} };
  if (method !== 'GET' && method !== 'HEAD') {
    init.headers = { 'x-csrf-token': csrfToken(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) };
    if (body !== undefined) init.body = JSON.stringify(body);
  }
  let res: Response;
  try {
    res = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, { error: err instanceof Error ? err.message : String(err), code: 'E_NETWORK' });
  }
  if (!res.ok) {
    const answer = (await res.json().catch(() => ({}))) as Partial<ApiErrorBody>;
    // a refused sign-in or a wrong current password is a 401 too: not the end of a session
    if (res.status === 401 && !path.startsWith(api.login.path) && !path.startsWith(api.changePassword.path)) onUnauthorized?.();
    throw new ApiError(res.status, answer);
  }
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** Calls a route of the contract: `call(api.getRun, { params: { id } })`. */
export function call<C extends RouteContract>(route: Route<C>, ...[input]: InputArg<C>): Promise<RouteOutput<C>> {
  const i = (input ?? {}) as { params?: Record<string, unknown>; query?: Record<string, unknown>; body?: unknown };
  const path = fillPath(route.path, i.params) + queryString(i.query);
  return request<RouteOutput<C>>(route.method, path, route.method === 'GET' ? undefined : (i.body ?? {}));
}

/** the URL of a route's file download (a PDF, an export), for an <a href download> */
export function downloadUrl<C extends RouteContract>(route: Route<C>, ...[input]: InputArg<C>): string {
  const i = (input ?? {}) as { params?: Record<string, unknown>; query?: Record<string, unknown> };
  return fillPath(route.path, i.params) + queryString(i.query);
}
