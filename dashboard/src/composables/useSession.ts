// Who is signed in, and their preferences (language, time zone) kept on the server. The session itself lives in
// an httpOnly cookie; the page only knows the user. One state for the whole dashboard.
import { computed, reactive } from 'vue';
import type { User } from '@labtrace/protocols/api';
import { ApiError, api, call, whenUnauthorized } from '../api/client';
import { defaultLanguage, isLanguage, rememberLanguage, setLanguage, type Language } from '../i18n';

/** the signed-in user as the server answers it: role, organization, saved language and time zone (null: the browser's) */
export type SessionUser = User;

const state = reactive({
  checked: false,
  user: undefined as SessionUser | undefined,
  /** the last sign-in or password-change refusal, for the form to translate */
  error: undefined as ApiError | undefined,
  /** a notice for the sign-in form (a catalogue key), e.g. after a password change */
  notice: '',
});

function adopt(user: SessionUser | undefined): void {
  state.user = user;
  const saved = user?.locale;
  void setLanguage(isLanguage(saved) ? saved : defaultLanguage());
}

whenUnauthorized(() => {
  if (state.user) state.user = undefined;
});

let browserZone: string | undefined;
/** the browser's own time zone (asked once: a DateTimeFormat is costly to make, and every view asks) */
export const browserTimeZone = (): string => (browserZone ??= Intl.DateTimeFormat().resolvedOptions().timeZone);

export async function checkSession(): Promise<void> {
  try {
    // the CSRF token rides in its cookie too; the user is what the page keeps
    const { csrf: _csrf, ...user } = await call(api.me);
    adopt(user);
  } catch {
    adopt(undefined);
  }
  state.checked = true;
}

export async function login(username: string, password: string): Promise<boolean> {
  try {
    const answer = await call(api.login, { body: { username, password } });
    state.error = undefined;
    state.notice = '';
    adopt(answer.user);
    return true;
  } catch (err) {
    state.error = err instanceof ApiError ? err : new ApiError(0, { error: String(err), code: 'E_NETWORK' });
    return false;
  }
}

/** Changes the password; the server then ends every session, so the user signs in again with the new one. */
export async function changePassword(currentPassword: string, newPassword: string): Promise<boolean> {
  try {
    await call(api.changePassword, { body: { currentPassword, newPassword } });
  } catch (err) {
    state.error = err instanceof ApiError ? err : new ApiError(0, { error: String(err), code: 'E_NETWORK' });
    return false;
  }
  state.user = undefined;
  state.error = undefined;
  state.notice = 'auth.passwordChanged';
  return true;
}

export async function logout(): Promise<void> {
  await call(api.logout).catch(() => undefined);
  state.user = undefined;
}

/**
 * Saves the user's language and time zone on the server (null: follow the browser) and applies them at once. The
 * language is also remembered on this device, so a choice made before signing in still holds. A refusal is thrown.
 */
export async function savePreferences(preferences: { locale?: Language | null; timeZone?: string | null }): Promise<void> {
  if (preferences.locale !== undefined) {
    rememberLanguage(preferences.locale ?? undefined);
    if (!state.user) void setLanguage(preferences.locale ?? defaultLanguage());
  }
  if (!state.user) return;
  const { csrf: _csrf, ...user } = await call(api.updatePreferences, { body: preferences });
  if (state.user) adopt(user);
}

/** The session, its user's language and time zone, and the actions on it. */
export function useSession() {
  return {
    session: state,
    user: computed(() => state.user),
    /** the time zone every time is shown in: the user's choice, else the browser's */
    timeZone: computed(() => state.user?.timeZone ?? browserTimeZone()),
    checkSession,
    login,
    logout,
    changePassword,
    savePreferences,
  };
}

export const session = state;
