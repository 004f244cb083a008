// REST routes of certificates, and the public verification: the page at /verify/:id, the byte-for-byte check of
// an uploaded file, the status as JSON and the lab's public keys. A client sees only its organization's issued
// certificates; another's answer 404, exactly like an unknown number.
import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import { LabtraceError, parseWith } from '@labtrace/protocols';
import { paragraph } from '../api/text.js';
import { principalOf, route } from '../auth/policy.js';
import type { Principal } from '../auth/users.js';
import type { Certificates } from './certificates.js';
import { reportLanguageSchema } from './report-text.js';
import { pageLanguage, verifyPage, VERIFY_PAGE_CSP } from './verify-page.js';

/** a certificate number: TR-<lab>-<n> */
export const certificateIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/, 'expected a report number such as TR-lab-000001');
const reason = paragraph(500);
/** the language the report is printed in: zh-CN, en or bilingual (default: as requested, else en; an amendment: as the report it replaces) */
const language = reportLanguageSchema.optional();
const requestBody = z.strictObject({ run: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'expected a run id'), language });
const issueBody = z.strictObject({ language });
const amendBody = z.strictObject({ reason, language });
const reasonBody = z.strictObject({ reason });
const listQuery = z.strictObject({
  run: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'expected a run id')
    .optional(),
  status: z.enum(['draft', 'valid', 'amended', 'revoked']).optional(),
});
/** the public page's and status's query: the page's language and the report's verification code (printed on it) */
const publicQuery = z.strictObject({
  lang: z.enum(['zh-CN', 'en'], { error: 'expected zh-CN or en' }).optional(),
  code: z
    .string()
    .regex(/^[0-9a-f]{16}$/, 'expected the 16 hex digits of the verification link printed on the report')
    .optional(),
});
/** the largest file the public check takes (a report's PDF is tens of kB) */
const MAX_UPLOAD = 10 * 1024 * 1024;

function who(req: Request): Principal {
  const principal = principalOf(req);
  if (!principal) throw new LabtraceError('E_AUTH', 'sign in first');
  return principal;
}

const actorOf = (p: Principal) => ({ username: p.username, role: p.role, organization: p.organization });
const pathId = (req: Request): string => parseWith(certificateIdSchema, req.params['id'], 'path: id', 'E_BAD_REQUEST');

export function certificateRoutes(certificates: Certificates, lab: () => string): express.Router {
  const router = express.Router();
  // the pages of a status, rendered once per language (and with or without its summary): statuses are cached
  // objects, replaced whenever one changes
  const pages = new WeakMap<object, Map<string, string>>();

  const visible = (req: Request): string => {
    const id = pathId(req);
    if (!certificates.get(who(req), id)) throw new LabtraceError('E_NOT_FOUND', `certificate "${id}" is not known`);
    return id;
  };
  const issuedFiles = (id: string) => {
    const files = certificates.files(id);
    if (!files) throw new LabtraceError('E_CONFLICT', `certificate ${id} is a draft: it has no files until it is issued`);
    return files;
  };
  const download = (res: Response, id: string, type: string, ext: string, bytes: Uint8Array): void => {
    res.type(type).set('content-disposition', `attachment; filename="${id}.${ext}"`).send(Buffer.from(bytes));
  };

  route(router, 'GET', '/api/certificates', (req, res) => {
    const query = parseWith(listQuery, req.query, 'query', 'E_BAD_REQUEST');
    res.json(certificates.list(who(req), query));
  });

  route(router, 'POST', '/api/certificates', (req, res) => {
    const body = parseWith(requestBody, req.body, 'body', 'E_BAD_REQUEST');
    res.status(201).json(certificates.request(actorOf(who(req)), body.run, body.language));
  });

  // the view, with the issued content, or for a draft what still blocks its issue
  route(router, 'GET', '/api/certificates/:id', (req, res) => {
    const id = visible(req);
    const view = certificates.get(who(req), id);
    const issued = certificates.issued(id);
    res.json(
      issued === undefined
        ? { ...view, blockers: certificates.blockers(id) }
        : { ...view, content: issued.content, statement: issued.statement, signature: issued.signature },
    );
  });

  route(router, 'GET', '/api/certificates/:id/pdf', (req, res) => {
    const id = visible(req);
    download(res, id, 'application/pdf', 'pdf', issuedFiles(id).pdf);
  });

  route(router, 'GET', '/api/certificates/:id/json', (req, res) => {
    const id = visible(req);
    download(res, id, 'application/json', 'json', issuedFiles(id).json);
  });

  route(router, 'GET', '/api/certificates/:id/dcc.xml', (req, res) => {
    const id = visible(req);
    download(res, id, 'application/xml', 'dcc.xml', issuedFiles(id).dcc);
  });

  route(router, 'POST', '/api/certificates/:id/issue', async (req, res) => {
    const id = pathId(req);
    const body = parseWith(issueBody, req.body ?? {}, 'body', 'E_BAD_REQUEST');
    res.json(await certificates.issue(actorOf(who(req)), id, body.language));
  });

  route(router, 'POST', '/api/certificates/:id/amend', async (req, res) => {
    const id = pathId(req);
    const body = parseWith(amendBody, req.body ?? {}, 'body', 'E_BAD_REQUEST');
    res.status(201).json(await certificates.amend(actorOf(who(req)), id, body.reason, body.language));
  });

  route(router, 'POST', '/api/certificates/:id/revoke', (req, res) => {
    const id = pathId(req);
    const body = parseWith(reasonBody, req.body ?? {}, 'body', 'E_BAD_REQUEST');
    res.json(certificates.revoke(actorOf(who(req)), id, body.reason));
  });

  // --- public ---

  route(router, 'GET', '/api/public/keys', (_req, res) => {
    res.json({ certificates: certificates.keys() });
  });

  route(router, 'GET', '/api/public/certificates/:id', (req, res) => {
    const id = pathId(req);
    const query = parseWith(publicQuery.omit({ lang: true }), req.query, 'query', 'E_BAD_REQUEST');
    const status = certificates.publicStatus(id);
    // with the report's verification code, what its holder may see of it, as on the page
    const summary = certificates.publicSummary(id, query.code);
    res.status(status.status === 'unknown' ? 404 : 200).json(summary === undefined ? status : { ...status, summary });
  });

  route(router, 'GET', '/verify/:id', (req, res) => {
    const id = pathId(req);
    const query = parseWith(publicQuery, req.query, 'query', 'E_BAD_REQUEST');
    const status = certificates.publicStatus(id);
    const language = pageLanguage(query.lang, req.get('accept-language'));
    const summary = certificates.publicSummary(id, query.code);
    const key = `${language}\u0000${query.code ?? ''}\u0000${summary === undefined ? 0 : 1}`;
    let byKey = pages.get(status);
    if (byKey === undefined) {
      byKey = new Map();
      pages.set(status, byKey);
    }
    let page = byKey.get(key);
    if (page === undefined) {
      page = verifyPage(status, lab(), { language, summary, code: query.code });
      // (bounded: a status is replaced on every change; wrong codes would otherwise grow it)
      if (byKey.size < 16) byKey.set(key, page);
    }
    res
      .status(status.status === 'unknown' ? 404 : 200)
      .set('content-language', language)
      .set('vary', 'Accept-Language')
      .set('content-security-policy', VERIFY_PAGE_CSP)
      .set('cache-control', 'no-store')
      .type('html')
      .send(page);
  });

  route(router, 'POST', '/verify/:id', express.raw({ type: 'application/octet-stream', limit: MAX_UPLOAD }), (req, res) => {
    const id = pathId(req);
    if (!req.is('application/octet-stream') || !Buffer.isBuffer(req.body))
      throw new LabtraceError('E_BAD_REQUEST', 'body: send the file itself as application/octet-stream');
    const body = req.body;
    if (body.length === 0) throw new LabtraceError('E_BAD_REQUEST', 'body: the file is empty');
    res.set('cache-control', 'no-store').json(certificates.match(id, new Uint8Array(body.buffer, body.byteOffset, body.byteLength)));
  });

  return router;
}
