// Calls to the server's REST API from the dashboard: the session cookie rides along, requests that change
// something echo the CSRF cookie, and a refusal is thrown with the server's own words.
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function csrf(): string {
  const match = /(?:^|;\s*)labtrace_csrf=([^;]*)/.exec(document.cookie);
  return match?.[1] === undefined ? '' : decodeURIComponent(match[1]);
}

async function refusal(res: Response, what: string): Promise<ApiError> {
  const body = (await res.json().catch(() => ({}))) as { error?: unknown };
  return new ApiError(res.status, typeof body.error === 'string' ? body.error : `${what}: ${res.status} ${res.statusText}`);
}

/** GET a JSON resource; throws ApiError with the server's message otherwise. */
export async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path);
  if (!res.ok) throw await refusal(res, `GET ${path}`);
  return (await res.json()) as T;
}

/** GET a resource that may not exist (yet): undefined on any answer but 200, and on a network failure. */
export async function getOptional<T>(path: string): Promise<T | undefined> {
  try {
    const res = await fetch(path);
    if (res.status !== 200) return undefined;
    return (await res.json()) as T;
  } catch {
    return undefined;
  }
}

/** POST a JSON body with the CSRF header; throws ApiError with the server's message when refused. */
export async function postJson<T>(path: string, body: unknown = {}): Promise<T> {
  return sendJson<T>('POST', path, body);
}

/** PATCH a JSON body with the CSRF header; throws ApiError with the server's message when refused. */
export async function patchJson<T>(path: string, body: unknown): Promise<T> {
  return sendJson<T>('PATCH', path, body);
}

async function sendJson<T>(method: 'POST' | 'PATCH', path: string, body: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrf() },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw await refusal(res, `${method} ${path}`);
  return (await res.json()) as T;
}

export const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));
