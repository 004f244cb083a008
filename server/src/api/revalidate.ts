// Conditional GETs of the lists the dashboard reads again and again (the instruments, the runs): the answer carries a
// weak ETag of its body, and a request naming that ETag in If-None-Match is answered 304 without the body.
//
// Express does this by itself only for a request without `Cache-Control: no-cache` (the `fresh` module), and a
// browser's fetch() adds exactly that header to every request that sets If-None-Match itself (the Fetch standard:
// such a request bypasses the HTTP cache) — which the dashboard must do, since API answers are never stored
// (cache-control: no-store). The origin server may answer a conditional request 304 whatever the request's
// cache-control says: `no-cache` asks caches to revalidate, which is what this is.
import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';

/** the weak ETag of a body: its length and a hash of it (the form Express gives) */
export function weakEtag(body: string): string {
  const hash = createHash('sha1').update(body, 'utf8').digest('base64').slice(0, 27);
  return `W/"${Buffer.byteLength(body, 'utf8').toString(16)}-${hash}"`;
}

/** whether an If-None-Match header names `etag` (weak comparison: W/ ignored), or is `*` */
export function noneMatchNames(header: string | undefined, etag: string): boolean {
  if (header === undefined || header === '') return false;
  if (header.trim() === '*') return true;
  const opaque = (tag: string) => (tag.startsWith('W/') ? tag.slice(2) : tag);
  const wanted = opaque(etag);
  return header.split(',').some((tag) => opaque(tag.trim()) === wanted);
}

/** Sends `value` as JSON with its ETag; 304 without a body when the GET's If-None-Match names that ETag. */
export function sendRevalidated(req: Request, res: Response, value: unknown): void {
  const body = JSON.stringify(value);
  const etag = weakEtag(body);
  res.setHeader('etag', etag);
  if ((req.method === 'GET' || req.method === 'HEAD') && noneMatchNames(req.headers['if-none-match'], etag)) {
    res.status(304).end();
    return;
  }
  res.type('json').send(body);
}
