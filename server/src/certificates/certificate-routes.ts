// REST routes of certificates (contract: protocols/src/api/certificates.ts), and the public verification: the page
// at /verify/:id, the byte-for-byte check of an uploaded file, the status as JSON and the lab's public keys. A
// client sees only its organization's issued certificates; another's answer 404, exactly like an unknown number.
import express, { type Request, type Response } from 'express';
import { LabtraceError } from '@labtrace/protocols';
import {
  amendCertificate,
  certificateDcc,
  certificateJson,
  certificatePdf,
  certificatePreviewPdf,
  getCertificate,
  issueCertificate,
  listCertificates,
  publicCertificate,
  publicKeys,
  requestCertificate,
  revokeCertificate,
  verifyPage as verifyPageRoute,
  verifyUpload,
} from '@labtrace/protocols/api';
import { notFound } from '../api/errors.js';
import { principalOf, routeOf } from '../auth/policy.js';
import type { Principal } from '../auth/users.js';
import type { Certificates } from './certificates.js';
import { pageLanguage, verifyPage, VERIFY_PAGE_CSP } from './verify-page.js';

/** the largest file the public check takes (a report's PDF is tens of kB) */
const MAX_UPLOAD = 10 * 1024 * 1024;

function who(req: Request): Principal {
  const principal = principalOf(req);
  if (!principal) throw new LabtraceError('E_AUTH', 'sign in first');
  return principal;
}

const actorOf = (p: Principal) => ({ username: p.username, role: p.role, organization: p.organization });

export function certificateRoutes(certificates: Certificates, lab: () => string): express.Router {
  const router = express.Router();
  // the pages of a status, rendered once per language (and with or without its summary): statuses are cached
  // objects, replaced whenever one changes
  const pages = new WeakMap<object, Map<string, string>>();

  /** a certificate the caller may see; another organization's answers like an unknown one */
  const visible = async (req: Request, id: string): Promise<string> => {
    if (!(await certificates.get(who(req), id))) throw notFound('certificate', id);
    return id;
  };
  const issuedFiles = async (id: string) => {
    const files = await certificates.files(id);
    if (!files)
      throw new LabtraceError('E_CONFLICT', `certificate ${id} is a draft: it has no files until it is issued`, {
        reason: 'certificate.draft',
        params: { id },
      });
    return files;
  };
  const download = (res: Response, id: string, type: string, ext: string, bytes: Uint8Array): void => {
    res.type(type).set('content-disposition', `attachment; filename="${id}.${ext}"`).send(Buffer.from(bytes));
  };

  routeOf(router, listCertificates, async (req, res, { query }) => {
    res.json(await certificates.list(who(req), query));
  });

  routeOf(router, requestCertificate, async (req, res, { body }) => {
    res.status(201).json(await certificates.request(actorOf(who(req)), body.run, body.language));
  });

  // the view, with the issued content, or for a draft what still blocks its issue and its content as it would
  // be issued now (by the signatory reading it)
  routeOf(router, getCertificate, async (req, res, { params }) => {
    const id = await visible(req, params.id);
    const principal = who(req);
    const view = await certificates.get(principal, id);
    const issued = await certificates.issued(id);
    if (issued !== undefined) {
      res.json({ ...view, content: issued.content, statement: issued.statement, signature: issued.signature });
      return;
    }
    const review = await certificates.review(id, principal.role === 'signatory' ? { name: principal.username, role: principal.role } : undefined);
    res.json({
      ...view,
      blockers: review.blockers.map((b) => b.text),
      blockerDetails: review.blockers,
      ...(review.draft === undefined ? {} : { draft: review.draft }),
    });
  });

  // a draft printed as it would be issued, marked as a draft: shown inline (the signatory's review frames it)
  routeOf(router, certificatePreviewPdf, async (req, res, { params, query }) => {
    const id = await visible(req, params.id);
    const pdf = await certificates.previewPdf(who(req), id, query.language);
    res
      .type('application/pdf')
      .set('content-disposition', `inline; filename="${id}-draft.pdf"`)
      .set('cache-control', 'no-store')
      .send(Buffer.from(pdf));
  });

  routeOf(router, certificatePdf, async (req, res, { params }) => {
    const id = await visible(req, params.id);
    download(res, id, 'application/pdf', 'pdf', (await issuedFiles(id)).pdf);
  });

  routeOf(router, certificateJson, async (req, res, { params }) => {
    const id = await visible(req, params.id);
    download(res, id, 'application/json', 'json', (await issuedFiles(id)).json);
  });

  routeOf(router, certificateDcc, async (req, res, { params }) => {
    const id = await visible(req, params.id);
    download(res, id, 'application/xml', 'dcc.xml', (await issuedFiles(id)).dcc);
  });

  routeOf(router, issueCertificate, async (req, res, { params, body }) => {
    res.json(await certificates.issue(actorOf(who(req)), params.id, body.language));
  });

  routeOf(router, amendCertificate, async (req, res, { params, body }) => {
    res.status(201).json(await certificates.amend(actorOf(who(req)), params.id, body.reason, body.language, body.corrections));
  });

  routeOf(router, revokeCertificate, async (req, res, { params, body }) => {
    res.json(await certificates.revoke(actorOf(who(req)), params.id, body.reason));
  });

  // --- public ---

  routeOf(router, publicKeys, (_req, res) => {
    res.json({ certificates: certificates.keys() });
  });

  routeOf(router, publicCertificate, async (_req, res, { params, query }) => {
    const status = await certificates.publicStatus(params.id);
    // with the report's verification code, what its holder may see of it, as on the page
    const summary = await certificates.publicSummary(params.id, query.code);
    res.status(status.status === 'unknown' ? 404 : 200).json(summary === undefined ? status : { ...status, summary });
  });

  routeOf(router, verifyPageRoute, async (req, res, { params, query }) => {
    const status = await certificates.publicStatus(params.id);
    const language = pageLanguage(query.lang, req.get('accept-language'));
    const summary = await certificates.publicSummary(params.id, query.code);
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

  routeOf(router, verifyUpload, express.raw({ type: 'application/octet-stream', limit: MAX_UPLOAD }), async (req, res, { params, body }) => {
    if (!req.is('application/octet-stream') || !Buffer.isBuffer(body))
      throw new LabtraceError('E_BAD_REQUEST', 'body: send the file itself as application/octet-stream');
    if (body.length === 0) throw new LabtraceError('E_BAD_REQUEST', 'body: the file is empty');
    const answer = await certificates.match(params.id, new Uint8Array(body.buffer, body.byteOffset, body.byteLength));
    res.set('cache-control', 'no-store').json(answer);
  });

  return router;
}
