// A REST client of a running lab (`labtrace lab` or a server process), as its people use it: the admin signs
// in with the test password and creates users; a new user signs in with the one-time password, must change
// it, and signs in again with their own. Requests failing on the way (a kept-alive connection the server
// closed, likelier on a loaded machine) are made again.
import { io, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, ServerToClientEvents } from '@labtrace/protocols';
import { LAB_ADMIN_PASSWORD, signIn } from './lab-process.js';

export interface Answer<T> {
  status: number;
  body: T;
}

export type LabSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export class LabClient {
  private readonly tokens = new Map<string, string>();

  constructor(readonly base: string) {}

  /** Signs the admin in (LABTRACE_ADMIN_PASSWORD of the tests). */
  async signInAdmin(): Promise<void> {
    this.tokens.set('admin', await signIn(this.base, 'admin', LAB_ADMIN_PASSWORD));
  }

  token(user: string): string {
    const token = this.tokens.get(user);
    if (token === undefined) throw new Error(`${user} has not signed in`);
    return token;
  }

  /**
   * The admin creates a user; the user signs in with the one-time password (which opens only the password
   * change), sets their own, and signs in with it. Returns the user's bearer token.
   */
  async addUser(username: string, role: string, extra: Record<string, unknown> = {}): Promise<string> {
    const created = await this.call<{ oneTimePassword?: string; mustChange?: boolean }>('admin', 'POST', '/api/users', { username, role, ...extra });
    if (created.status !== 201 || created.body.oneTimePassword === undefined)
      throw new Error(`creating ${username}: ${created.status} ${JSON.stringify(created.body)}`);
    const first = await signIn(this.base, username, created.body.oneTimePassword);
    const own = `${username}-own-password-for-tests`;
    const changed = await this.request(first, 'POST', '/api/auth/password', { currentPassword: created.body.oneTimePassword, newPassword: own });
    if (changed.status !== 204) throw new Error(`${username} changing the one-time password: ${changed.status} ${JSON.stringify(changed.body)}`);
    const token = await signIn(this.base, username, own);
    this.tokens.set(username, token);
    return token;
  }

  /** A request as a signed-in user; the body, when given, as JSON. */
  call<T = unknown>(user: string, method: string, path: string, body?: unknown): Promise<Answer<T>> {
    return this.request<T>(this.token(user), method, path, body);
  }

  /** As call(), and fails with the answer unless the status is the one expected. */
  async expect<T = unknown>(status: number, user: string, method: string, path: string, body?: unknown): Promise<T> {
    const answer = await this.call<T>(user, method, path, body);
    if (answer.status !== status)
      throw new Error(`${method} ${path} as ${user}: expected ${status}, got ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body;
  }

  /** A socket.io connection as a signed-in user, connected. */
  async socket(user: string): Promise<LabSocket> {
    const socket: LabSocket = io(this.base, { transports: ['websocket'], auth: { token: this.token(user) } });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', (err) => reject(err));
    });
    return socket;
  }

  private async request<T>(token: string, method: string, path: string, body?: unknown): Promise<Answer<T>> {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const init: RequestInit = { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) };
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await fetch(`${this.base}${path}`, init);
        const text = await res.text();
        return { status: res.status, body: (text === '' ? undefined : JSON.parse(text)) as T };
      } catch (err) {
        // fetch's network failures are TypeErrors; only a read is safe to repeat blindly
        if (attempt >= 3 || !(err instanceof TypeError) || method !== 'GET') throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
}
