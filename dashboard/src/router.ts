// A small hash router: #/ (the front page), #/runs/<id> (a run, live) and #/runs/<id>/replay.
import { reactive } from 'vue';

export type Route = { name: 'home' } | { name: 'run'; id: string } | { name: 'replay'; id: string };

function parse(hash: string): Route {
  const m = /^#\/runs\/([^/]+)(\/replay)?$/.exec(hash);
  if (m?.[1] !== undefined) {
    const id = decodeURIComponent(m[1]);
    return m[2] === undefined ? { name: 'run', id } : { name: 'replay', id };
  }
  return { name: 'home' };
}

export const router = reactive({ route: parse(window.location.hash) as Route });
window.addEventListener('hashchange', () => (router.route = parse(window.location.hash)));

export const runHref = (id: string): string => `#/runs/${encodeURIComponent(id)}`;
export const replayHref = (id: string): string => `${runHref(id)}/replay`;
