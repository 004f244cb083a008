// A small hash router: #/ (the front page), #/runs/<id> (a run, live), #/runs/<id>/replay, #/certificates/<id>
// (a certificate and a signatory's actions on it), #/users (user administration) and #/audit (the audit trail).
import { reactive } from 'vue';

export type Route =
  | { name: 'home' }
  | { name: 'run'; id: string }
  | { name: 'replay'; id: string }
  | { name: 'certificate'; id: string }
  | { name: 'users' }
  | { name: 'audit' };

function parse(hash: string): Route {
  const m = /^#\/runs\/([^/]+)(\/replay)?$/.exec(hash);
  if (m?.[1] !== undefined) {
    const id = decodeURIComponent(m[1]);
    return m[2] === undefined ? { name: 'run', id } : { name: 'replay', id };
  }
  const c = /^#\/certificates\/([^/]+)$/.exec(hash);
  if (c?.[1] !== undefined) return { name: 'certificate', id: decodeURIComponent(c[1]) };
  if (hash === '#/users') return { name: 'users' };
  if (hash === '#/audit') return { name: 'audit' };
  return { name: 'home' };
}

export const router = reactive({ route: parse(window.location.hash) as Route });
window.addEventListener('hashchange', () => (router.route = parse(window.location.hash)));

export const runHref = (id: string): string => `#/runs/${encodeURIComponent(id)}`;
export const replayHref = (id: string): string => `${runHref(id)}/replay`;
export const certificateHref = (id: string): string => `#/certificates/${encodeURIComponent(id)}`;
