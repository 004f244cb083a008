// Who is signed in: the server keeps the session in an httpOnly cookie; the page only knows the user and
// echoes the CSRF cookie in a header on requests that change something.
import { reactive } from 'vue';

export interface SessionUser {
  username: string;
  role: string;
  mustChange: boolean;
}

export const session = reactive({
  checked: false,
  user: undefined as SessionUser | undefined,
  error: '',
});

function csrf(): string {
  const match = /(?:^|;\s*)labtrace_csrf=([^;]*)/.exec(document.cookie);
  return match?.[1] === undefined ? '' : decodeURIComponent(match[1]);
}

export async function checkSession(): Promise<void> {
  const res = await fetch('/api/auth/me');
  session.user = res.ok ? ((await res.json()) as SessionUser) : undefined;
  session.checked = true;
}

export async function login(username: string, password: string): Promise<boolean> {
  const res = await fetch('/api/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (!res.ok) {
    session.error = res.status === 429 ? 'Too many attempts; wait a minute.' : 'Sign-in refused.';
    return false;
  }
  session.error = '';
  session.user = ((await res.json()) as { user: SessionUser }).user;
  return true;
}

/** Changes the password; the server then ends every session, so the user signs in again with the new one. */
export async function changePassword(currentPassword: string, newPassword: string): Promise<boolean> {
  const res = await fetch('/api/auth/password', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrf() },
    body: JSON.stringify({ currentPassword, newPassword }),
  });
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { error?: string };
    session.error = body.error ?? `Password change refused (${res.status}).`;
    return false;
  }
  session.user = undefined;
  session.error = 'Password changed: sign in with the new one.';
  return true;
}

export async function logout(): Promise<void> {
  await fetch('/api/auth/logout', { method: 'POST', headers: { 'x-csrf-token': csrf() } });
  session.user = undefined;
}
