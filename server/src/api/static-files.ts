// The dashboard's built files and the compression of responses.
//
// The build writes `<file>.br` and `<file>.gz` beside every text file it emits (dashboard/vite.config.ts); they
// are sent as they are to a client that accepts them, with the original's type. Hashed assets
// (`assets/<name>-<hash>.<ext>`) never change: cached for a year. Everything else (index.html, unhashed files)
// is revalidated on every use. API JSON and HTML pages made per request are compressed on the fly; downloads
// (tar, PDF, CSV, NDJSON) are not, so their streaming and back-pressure stay as they are.
import { statSync } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import compression from 'compression';
import helmet from 'helmet';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';

/** what Vite writes under assets/: a name, a dash, an 8-character content hash, an extension */
const HASHED_ASSET = /^assets\/(?:[^/]+\/)*[^/]+-[A-Za-z0-9_-]{8}\.[A-Za-z0-9]+$/;
export const IMMUTABLE = 'public, max-age=31536000, immutable';
export const REVALIDATE = 'no-cache';

/**
 * The security headers of every response of a server that serves the dashboard's pages (helmet's defaults: a
 * content security policy of the page's own origin, no framing, no sniffing...); plain HTTP on a lab's network is
 * allowed (no upgrade-insecure-requests).
 */
export const securityHeaders = (): RequestHandler => helmet({ contentSecurityPolicy: { directives: { 'upgrade-insecure-requests': null } } });

/** the types compressed on the fly: JSON and text the server makes; never downloads */
const COMPRESSIBLE = /^(?:application\/json|text\/html|text\/plain|text\/css|text\/javascript|application\/javascript|image\/svg\+xml)\s*(?:;|$)/i;

/**
 * Compresses JSON and text responses of 1 KiB or more (br or gzip, as the client prefers); leaves downloads alone.
 * Brotli at quality 4 (the middleware's) with a 256 KiB window instead of brotli's 4 MiB: the same bytes out for the
 * API's answers (a few KiB to a few hundred), and a third of the CPU for a small one (the encoder's state for a 4 MiB
 * window is set up for every response: ~300 µs for a 1.7 KiB list, ~125 µs with 256 KiB).
 */
export function compressResponses(): RequestHandler {
  return compression({
    threshold: 1024,
    brotli: { params: { [zlib.constants.BROTLI_PARAM_LGWIN]: 18 } },
    filter: (_req, res) => COMPRESSIBLE.test(String(res.getHeader('content-type') ?? '')),
  });
}

/** the precompressed encodings, in the server's order of preference */
const ENCODINGS = [
  { name: 'br', suffix: '.br' },
  { name: 'gzip', suffix: '.gz' },
] as const;

/**
 * The encoding to send: the client's highest q among those there are, the server's order between equals; none
 * without an Accept-Encoding header (HTTP would allow anything, but a client that says nothing gets the plain file).
 * Not express's req.acceptsEncodings: between equal q it follows the client's order, and browsers list gzip
 * before br ("gzip, deflate, br, zstd"), so they would never get the smaller file.
 */
function chooseEncoding<E extends { name: string }>(header: string | undefined, available: readonly E[]): E | undefined {
  if (header === undefined) return undefined;
  const q = new Map<string, number>();
  for (const part of header.split(',')) {
    const [name = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const value = params.find((p) => p.startsWith('q='));
    const weight = value === undefined ? 1 : Number(value.slice(2));
    if (name !== '' && Number.isFinite(weight)) q.set(name, weight);
  }
  let best: E | undefined;
  let bestQ = 0;
  for (const e of available) {
    const weight = q.get(e.name) ?? q.get('*') ?? 0;
    if (weight > bestQ) [best, bestQ] = [e, weight];
  }
  return best;
}

function cacheControlOf(relative: string): string {
  return HASHED_ASSET.test(relative.split(path.sep).join('/')) ? IMMUTABLE : REVALIDATE;
}

function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * Serves `dir` (the built dashboard) with its cache headers, a precompressed variant when the client accepts one,
 * and `page` (index.html; the supervisor's console serves supervisor.html) for any other GET (the page routes in
 * the browser).
 */
export function dashboardFiles(dir: string, page = 'index.html'): RequestHandler {
  const root = path.resolve(dir);
  const plain = express.static(root, {
    index: false,
    cacheControl: false,
    setHeaders: (res, file) => res.setHeader('cache-control', cacheControlOf(path.relative(root, file))),
  });

  /** sends `relative` (a file under root), precompressed when the client accepts it; false when it is no file */
  const sendVariant = (req: Request, res: Response, next: NextFunction, relative: string): boolean => {
    const file = path.join(root, relative);
    if (!isFile(file)) return false;
    res.vary('Accept-Encoding');
    const encoding = chooseEncoding(
      req.headers['accept-encoding'],
      ENCODINGS.filter((e) => isFile(file + e.suffix)),
    );
    res.setHeader('cache-control', cacheControlOf(relative));
    if (encoding === undefined) {
      res.sendFile(file, { cacheControl: false, dotfiles: 'allow' }, (err) => err && next(err));
      return true;
    }
    res.type(path.extname(file));
    res.setHeader('content-encoding', encoding.name);
    res.sendFile(file + encoding.suffix, { cacheControl: false, dotfiles: 'allow' }, (err) => {
      if (!err) return;
      if (!res.headersSent) res.removeHeader('content-encoding');
      next(err);
    });
    return true;
  };

  return (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    let relative: string;
    try {
      relative = path.normalize(decodeURIComponent(req.path)).replace(/^[/\\]+/, '');
    } catch {
      return next();
    }
    // a path out of the directory, a dotfile or a variant itself: express.static decides (refuses or 404s)
    const outside = relative.split(/[/\\]/).some((part) => part === '..' || part.startsWith('.'));
    if (outside || relative.endsWith('.br') || relative.endsWith('.gz')) {
      plain(req, res, next);
      return;
    }
    if (relative !== '' && sendVariant(req, res, next, relative)) return;
    // an asset that is not there is a 404, not the page (a browser would run the HTML as a script)
    if (relative.startsWith('assets/')) return next();
    if (!sendVariant(req, res, next, page)) next();
  };
}
