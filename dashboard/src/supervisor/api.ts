// The console's client of the supervisor's API: every request carries the token the regulator gave at sign-in as a
// bearer token. The token lives in sessionStorage only (gone with the tab), never in a URL; a refusal is thrown as
// SupervisorError with the API's code, which the views word in the user's language.
import { ref } from 'vue';

const KEY = 'labtrace.supervisor.token';

function stored(): string | null {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

/** the token in use; null: signed out */
export const token = ref<string | null>(stored());

export function signOut(): void {
  token.value = null;
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // nothing kept
  }
}

export class SupervisorError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function send(path: string, init: RequestInit = {}, with_ = token.value): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(path, { ...init, headers: { ...(init.headers ?? {}), authorization: `Bearer ${with_ ?? ''}` }, cache: 'no-store' });
  } catch (err) {
    throw new SupervisorError(0, 'E_NETWORK', (err as Error).message);
  }
  if (res.ok) return res;
  let body: { code?: string; error?: string } = {};
  try {
    body = (await res.json()) as typeof body;
  } catch {
    // not JSON: the status says it
  }
  // the token was taken back (the supervisor restarted with another): sign in again
  if (res.status === 401 && with_ === token.value) signOut();
  throw new SupervisorError(res.status, body.code ?? `HTTP_${res.status}`, body.error ?? `HTTP ${res.status}`);
}

export async function get<T>(path: string): Promise<T> {
  return (await (await send(path)).json()) as T;
}

export async function post<T>(path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method: 'POST' };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { 'content-type': 'application/json' };
  }
  return (await (await send(path, init)).json()) as T;
}

/** Checks a token against the API; kept for this tab only when the supervisor accepts it. */
export async function signIn(candidate: string): Promise<void> {
  await send('/api/labs', {}, candidate);
  token.value = candidate;
  try {
    sessionStorage.setItem(KEY, candidate);
  } catch {
    // kept for this page only
  }
}

/** Downloads a file of the API (a link cannot carry the bearer token): fetched, then saved under the server's name. */
export async function download(path: string): Promise<string> {
  const res = await send(path);
  const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? 'report';
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return name;
}
