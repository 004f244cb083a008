// Certificates (test reports) of completed runs: requested by a technician or signatory, approved and issued
// by a signatory who neither performed nor created the run, amended (a new report that replaces the old one,
// 7.8.8) or revoked, each step a signed entry in the transparency log and an audit-trail entry. Nothing is
// edited or deleted: the status of a certificate is derived from its events.
import { canSee, visibleOrganizations, type Viewer as VisibilityViewer } from '../auth/visibility.js';
import { timingSafeEqual } from 'node:crypto';
import { canonicalBytes, LabtraceError, parseCheckpoint, parseNote, signEd25519, toHex, type SignerKey } from '@labtrace/protocols';
import { sql, type Kysely, type Transaction } from 'kysely';
import type {
  CertificateBlocker,
  CertificateCorrections,
  CertificateItem,
  CertificateStatus,
  Page,
  PublicCertificate,
  PublicSummary,
} from '@labtrace/protocols/api';
import { notFound } from '../api/errors.js';
import type { PageRequest } from '../api/paging.js';
import { isoOrUndefined } from '../api/time.js';
import type { Actor, AuditTrail } from '../audit/audit-trail.js';
import type { Role } from '../auth/users.js';
import type { Run } from '../lab/runs.js';
import type { Logger } from '../log.js';
import { dialectOf } from '../store/portable-ddl.js';
import type { Tables } from '../store/tables.js';
import { composeContent, timeBlockers, type ComposeInput, type ReportFields } from './compose.js';
import { certificateContentSchema, missingFields, missingItems, type CertificateContent } from './content.js';
import { renderDcc } from './render-dcc.js';
import { assertValidDcc } from './validate-dcc.js';
import { renderPdf } from './render-pdf.js';
import { readImage } from './report-assets.js';
import { findReportFont, type ReportFont, type ReportFontConfig } from './report-font.js';
import type { ReportLanguage } from './report-text.js';
import {
  certificateKey,
  contentBytes,
  publishedKey,
  sha256Hex,
  signCertificate,
  STATEMENT_PURPOSE,
  type PublishedKey,
  type SignedStatement,
} from './signing.js';
import type { CertificateLog, CertificateSources, CertificateSubject } from './sources.js';

export type { CertificateStatus } from '@labtrace/protocols/api';

/** A certificate as lists show it (GET /api/certificates): the contract's list item. */
export type CertificateView = CertificateItem;

export interface CertificateFiles {
  json: Uint8Array;
  pdf: Uint8Array;
  dcc: Uint8Array;
}

export interface CertificatesDeps {
  /** the store (on SQLite: the LabDatabase's Kysely) */
  db: Kysely<Tables>;
  audit: AuditTrail;
  /** what certificates read of the runs, results, samples, methods, customers, instruments, calibration, accreditation */
  sources: CertificateSources;
  /** the transparency log, once it is open */
  log: () => CertificateLog | undefined;
  /** the lab's name and address (config `laboratory`); its country (ISO 3166-1 alpha-2) goes into the DCC */
  laboratory: { name: string; address: string; placeOfWork?: string | undefined; country?: string | undefined } | undefined;
  /** the lab's id (config `lab`): the prefix of certificate numbers */
  lab: string;
  /** where the public verification page is reached from outside: `<base>/verify/<id>` */
  publicBaseUrl: () => string;
  /** the certificate key file (created at the first start, mode 0600) */
  keyFile: string;
  softwareVersion: string;
  logger: Logger;
  now?: () => number;
  /** the report's look (config certificates.font, certificates.accreditationMark, laboratory.logo) */
  report?: { font?: ReportFontConfig | undefined; logo?: string | undefined; accreditationMark?: string | undefined } | undefined;
  /** told of each draft once it is committed: it waits for a signatory (notifications) */
  onDraft?: ((view: CertificateView) => void) | undefined;
  /** told of every committed change of a certificate (requested, issued, amended, revoked): the live lists */
  onChanged?: ((id: string, organization: string) => void) | undefined;
}

/** Why a draft cannot be issued now: a kind with its parameters (translated by the dashboard) and the English text. */
export type Blocker = CertificateBlocker;
const blocker = (kind: Blocker['kind'], params: Blocker['params'], text: string): Blocker => ({ kind, params, text });

/** What a certificate list asks for: a page, and filters. */
export interface CertificateFilter extends Partial<PageRequest> {
  run?: string | undefined;
  status?: CertificateStatus | undefined;
  /** a substring of the report number, the customer's name, the run id, the sample's id or description */
  q?: string | undefined;
  /** issued at or after */
  from?: number | undefined;
  /** issued before */
  to?: number | undefined;
}

/** a LIKE pattern matching `text` anywhere, with LIKE's own characters escaped (ESCAPE '\\') */
const containing = (text: string): string => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

interface RequestRow {
  id: string;
  /** the request's number (the one in its id): the order of requests */
  seq: number | null;
  run: string;
  organization: string;
  amends: string | null;
  reason: string | null;
  requested_by: string;
  requested_at: number;
  /** the language asked for at the request (null: not said, or requested before languages) */
  language: string | null;
}

interface CertificateRow {
  id: string;
  run: string;
  organization: string;
  amends: string | null;
  issued_by: string;
  issued_at: number;
  statement: string;
  signature: string;
  key_id: string;
  json_file_digest: string;
  log_index: number;
}

type Viewer = VisibilityViewer & { role: Role };
/** public statuses kept in memory at most */
const STATUS_CACHE_SIZE = 10_000;
/** a stored time in a blocker's words (one that is no date is shown as its number rather than failing the request) */
const isoOf = (ms: number): string => isoOrUndefined(ms) ?? `${ms} (no date)`;

/** The PostgreSQL advisory lock under which a transaction gives the next certificate number ("lt-certn" in ASCII). */
export const CERTIFICATE_NUMBER_LOCK = '7814921158321665134';

type Db = Kysely<Tables>;

export class Certificates {
  private key: SignerKey | undefined;
  private published: PublishedKey[] = [];
  private readonly now: () => number;
  private readonly db: Db;
  private readonly postgres: boolean;
  /** public statuses, on SQLite only: there this process is the only writer, and each change here clears it */
  private readonly statusCache = new Map<string, PublicStatus>();
  private readonly codes = new Map<string, string>();
  private font: ReportFont | undefined;
  private fontProblem = '';
  private logo: Uint8Array | undefined;
  private accreditationMark: Uint8Array | undefined;

  constructor(private readonly deps: CertificatesDeps) {
    this.now = deps.now ?? Date.now;
    this.db = deps.db;
    this.postgres = dialectOf(deps.db as unknown as Kysely<unknown>) === 'postgres';
  }

  /** Loads (or creates, at the first start) the certificate key. */
  start(): Promise<void> {
    this.key = certificateKey(this.deps.keyFile, `labtrace-certificates/${this.deps.lab}`, this.deps.logger);
    this.published = [publishedKey(this.key)];
    // the report's font and images: a configured one that is unusable stops the start, with the reason
    const assets = loadReportAssets(this.deps.report);
    this.font = assets.font;
    this.fontProblem = assets.fontProblem;
    if (assets.font === undefined) this.deps.logger.warn(`${this.fontProblem}: certificates cannot be issued`);
    else this.deps.logger.info({ font: assets.font.regular.postscriptName, source: assets.font.source }, 'report font');
    this.logo = assets.logo;
    this.accreditationMark = assets.accreditationMark;
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.key = undefined;
    this.published = [];
    this.codes.clear();
    return Promise.resolve();
  }

  /** The lab's certificate keys (public halves), as published. */
  keys(): PublishedKey[] {
    this.signer();
    return this.published;
  }

  /** The public page of a report, with its verification code: the link its QR code and its text carry. */
  verifyUrl(id: string): string {
    return `${this.deps.publicBaseUrl().replace(/\/+$/, '')}/verify/${encodeURIComponent(id)}?code=${this.verifyCode(id)}`;
  }

  /**
   * A report's verification code: 16 hex digits of the SHA-256 of the lab key's (deterministic Ed25519)
   * signature over the report number. Printed on the report (in its verification link), it lets the holder see
   * the report's content summary online; report numbers follow each other, so the number alone shows only the
   * status and the digests.
   */
  verifyCode(id: string): string {
    let code = this.codes.get(id);
    if (code === undefined) {
      code = sha256Hex(signEd25519(new TextEncoder().encode(`labtrace-verify-code/1\u0000${id}`), this.signer().seed)).slice(0, 16);
      if (this.codes.size >= STATUS_CACHE_SIZE) this.codes.clear();
      this.codes.set(id, code);
    }
    return code;
  }

  /** What the holder of an issued report sees on the public page: undefined for a wrong code, a draft or an unknown number. */
  async publicSummary(id: string, code: string | undefined): Promise<PublicSummary | undefined> {
    if (code === undefined || (await this.publicStatus(id)).status === 'unknown') return undefined;
    const expected = Buffer.from(this.verifyCode(id));
    const given = Buffer.from(code);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    const content = (await this.issued(id))?.content;
    if (content === undefined) return undefined;
    return {
      customer: content.customer.name,
      item: { id: content.item.id, description: content.item.description },
      method: `${content.method.standard}: ${content.method.title}`,
      language: content.language ?? 'en',
      results: content.results.map((r) => ({
        name: r.name,
        title: r.title,
        reported: r.reported,
        uncertainty: r.uncertainty.reported,
        coverageFactor: r.uncertainty.coverageFactor,
        unit: r.unit,
        verdict: r.conformity?.verdict ?? null,
      })),
      verdict: content.verdict,
      run: content.test.run,
    };
  }

  /** Requests (drafts) a certificate of a completed run; its number is reserved now. */
  async request(actor: Actor & Viewer, runId: string, language?: ReportLanguage): Promise<CertificateView> {
    const run = await this.deps.sources.run(runId);
    if (!run || !canSee(actor, run.organization)) throw notFound('run', runId);
    // a completed run stays completed: the state read here still holds when the request is written
    if (run.state !== 'completed') throw new LabtraceError('E_CONFLICT', `run ${run.id} is ${run.state}: only a completed run gets a certificate`);
    const id = await this.db.transaction().execute(async (trx) => {
      const { id, seq } = await this.nextNumber(trx);
      await trx
        .insertInto('certificate_requests')
        .values({
          id,
          seq,
          run: run.id,
          organization: run.organization,
          requested_by: actor.username,
          requested_at: this.now(),
          language: language ?? null,
        })
        .execute();
      await this.deps.audit.recordIn(trx, actor, {
        action: 'create',
        recordType: 'certificate',
        recordId: id,
        newValue: { run: run.id, status: 'draft', ...(language === undefined ? {} : { language }) },
      });
      return id;
    });
    const view = await this.mustView(id);
    this.deps.onDraft?.(view);
    this.changed(view);
    return view;
  }

  /** What stands in the way of issuing a draft now (an empty list when nothing does), for the signatory's review. */
  async blockers(id: string): Promise<string[]> {
    return (await this.review(id)).blockers.map((b) => b.text);
  }

  /**
   * A draft as the signatory reviews it: what stands in the way of its issue now (an empty list when nothing does)
   * and its content as it would be issued now, by `signatory` (undefined while the run has no results). Nothing
   * is signed, logged or stored.
   */
  async review(
    id: string,
    signatory: { name: string; role: string } = { name: '(signatory)', role: 'signatory' },
    language?: ReportLanguage,
  ): Promise<{ blockers: Blocker[]; draft: CertificateContent | undefined }> {
    const req = await this.requestRow(this.db, id);
    if (!req) throw notFound('certificate', id);
    if (await this.issuedRow(this.db, id)) return { blockers: [], draft: undefined };
    const run = await this.runOf(req.run);
    const problems = await this.calibrationBlockers(run);
    if (this.font === undefined) problems.push(blocker('no-font', {}, this.fontProblem));
    const results = await this.deps.sources.results(run.id);
    let draft: CertificateContent | undefined;
    if (!results) problems.push(blocker('no-results', { run: run.id }, `run ${run.id} has no computed results`));
    else {
      draft = await this.compose(
        req,
        run,
        signatory,
        this.now(),
        await this.currentCheckpoint(false),
        language ?? languageOf(req),
        await this.fieldsOf(req),
      );
      problems.push(
        ...missingItems(draft).map((m) => blocker('missing-field', { key: m.key, item: m.item, what: m.what }, `missing: ${m.item} ${m.what}`)),
        ...timeBlockers(draft).map((text) => blocker('time', { detail: text }, text)),
      );
    }
    return { blockers: problems, draft };
  }

  /**
   * A draft printed as it would be issued now, marked as a draft on every page: neither signed, logged nor kept.
   * An issued report has its own PDF (409); a run without results cannot be printed yet (409).
   */
  async previewPdf(viewer: Viewer & { username: string }, id: string, language?: ReportLanguage): Promise<Uint8Array> {
    if (await this.issuedRow(this.db, id))
      throw new LabtraceError('E_CONFLICT', `certificate ${id} is issued: its PDF is GET /api/certificates/${id}/pdf`, {
        reason: 'certificate.issued',
        params: { id },
      });
    const signatory = viewer.role === 'signatory' ? { name: viewer.username, role: viewer.role } : undefined;
    const { draft } = await this.review(id, signatory, language);
    if (draft === undefined)
      throw new LabtraceError('E_CONFLICT', `certificate ${id} cannot be previewed: its run has no computed results`, {
        reason: 'certificate.no-results',
        params: { id },
      });
    if (this.font === undefined) throw new LabtraceError('E_CONFLICT', `certificate ${id} cannot be previewed: ${this.fontProblem}`);
    return renderPdf(draft, sha256Hex(contentBytes(draft)), {
      font: this.font,
      logo: this.logo,
      accreditationMark: this.accreditationMark,
      draftMark: { zh: '草稿 — 未签发', en: 'DRAFT — not issued' },
    });
  }

  /** Approves and issues a draft: the signatory must not be who performed or created the run. */
  async issue(actor: Actor & Viewer, id: string, language?: ReportLanguage): Promise<CertificateView> {
    const req = await this.requestRow(this.db, id);
    if (!req) throw notFound('certificate', id);
    if (req.amends !== null)
      throw new LabtraceError('E_CONFLICT', `certificate ${id} is an amendment; it is issued by POST /api/certificates/${req.amends}/amend`);
    return this.issueRequest(actor, req, language ?? languageOf(req), {});
  }

  /**
   * Amends an issued certificate (7.8.8): a new certificate with its own number, marked as the amendment of
   * the old one with the reason, issued at once by the signatory from the run's results as they are now.
   */
  async amend(
    actor: Actor & Viewer,
    oldId: string,
    reason: string,
    language?: ReportLanguage,
    corrections: CertificateCorrections = {},
  ): Promise<CertificateView> {
    if (reason.trim() === '') throw new LabtraceError('E_BAD_REQUEST', 'body: reason: required to amend a certificate');
    await this.mustCurrent(this.db, oldId, 'amend');
    const oldContent = (await this.issued(oldId))?.content;
    if (oldContent === undefined) throw new LabtraceError('E_STORE', `certificate ${oldId} has no content`);
    // the new report's fields: the old report's as issued (its own corrections included), then these corrections
    const before = correctableOf(oldContent);
    const fields: ReportFields = {
      customer: { name: corrections.customer?.name ?? before.customer.name, contact: corrections.customer?.contact ?? before.customer.contact },
      item: {
        description: corrections.item?.description ?? before.item.description,
        condition: corrections.item?.condition ?? before.item.condition,
      },
      remarks: corrections.remarks ?? before.remarks,
      statements: corrections.statements ?? before.statements,
    };
    const changes = changedFields(before, fields);
    const req = await this.db.transaction().execute(async (trx) => {
      // the old report's row is held until the end (PostgreSQL): an amendment or revocation of it from another
      // node waits, then finds this one's
      await this.lockRequest(trx, oldId);
      const old = await this.mustCurrent(trx, oldId, 'amend');
      const pending = await trx.selectFrom('certificate_requests').select('id').where('amends', '=', oldId).executeTakeFirst();
      // an amendment whose issue failed (a blocker) is retried under the same number
      let newId = pending?.id;
      if (newId === undefined) {
        const { id, seq } = await this.nextNumber(trx);
        newId = id;
        await trx
          .insertInto('certificate_requests')
          .values({
            id,
            seq,
            run: old.run,
            organization: old.organization,
            amends: oldId,
            reason,
            requested_by: actor.username,
            requested_at: this.now(),
          })
          .execute();
        await this.deps.audit.recordIn(trx, actor, {
          action: 'create',
          recordType: 'certificate',
          recordId: id,
          newValue: { run: old.run, status: 'draft', amends: oldId },
          reason,
        });
      }
      // the corrected fields, old and new, each time they are asked for (a retried amendment may correct others)
      if (Object.keys(changes.old).length > 0)
        await this.deps.audit.recordIn(trx, actor, {
          action: 'update',
          recordType: 'certificate',
          recordId: newId,
          oldValue: { amends: oldId, ...changes.old },
          newValue: { amends: oldId, ...changes.new },
          reason,
        });
      const row = await this.requestRow(trx, newId);
      if (row === undefined) throw new LabtraceError('E_STORE', `certificate ${newId} vanished`);
      return { ...row, reason };
    });
    // an amendment keeps the language of the report it replaces unless told
    return this.issueRequest(actor, req, language ?? oldContent.language ?? 'en', fields);
  }

  /** Revokes an issued certificate, with the reason; the public page says so from then on. */
  async revoke(actor: Actor & Viewer, id: string, reason: string): Promise<CertificateView> {
    if (reason.trim() === '') throw new LabtraceError('E_BAD_REQUEST', 'body: reason: required to revoke a certificate');
    await this.db.transaction().execute(async (trx) => {
      // held until the end (PostgreSQL): a second revocation, or an amendment, from another node waits for this one
      const req = await this.lockRequest(trx, id);
      const row = await this.issuedRow(trx, id);
      if (!row) throw req ? new LabtraceError('E_CONFLICT', `certificate "${id}" is a draft: it was never issued`) : notFound('certificate', id);
      if (await this.revocation(trx, id)) throw new LabtraceError('E_CONFLICT', `certificate ${id} is already revoked`);
      const before = await this.statusOf(trx, id);
      const at = this.now();
      const logIndex = await this.logged(trx, { kind: 'revoke', certificate: id, at, reason }, at);
      await trx
        .insertInto('certificate_events')
        .values({ certificate: id, kind: 'revoke', at, actor: actor.username, reason, log_index: logIndex })
        .execute();
      await this.deps.audit.recordIn(trx, actor, {
        action: 'state-change',
        recordType: 'certificate',
        recordId: id,
        oldValue: { status: before },
        newValue: { status: 'revoked', logIndex },
        reason,
      });
    });
    this.statusCache.clear();
    const view = await this.mustView(id);
    this.changed(view);
    return view;
  }

  /**
   * A page of the certificates the viewer may see (a client: its organization's issued ones; an auditor: its
   * grant's), newest first by request (the request's number), optionally of one run or status, issued in a time
   * range, or matching a text (report number, customer, run, sample id or description).
   */
  async list(viewer: Viewer, filter: CertificateFilter = {}): Promise<Page<CertificateView>> {
    const page = { limit: filter.limit ?? 50, cursor: filter.cursor };
    const limit = Math.max(1, Math.floor(page.limit));
    const q = filter.q?.trim() ?? '';
    // the runs whose customer or sample match the text: asked of their owners
    const about = q === '' ? [] : await this.deps.sources.runsAbout(q);
    // the organizations the viewer may see (auth/visibility.ts); a client sees issued certificates only
    const visible = visibleOrganizations(viewer);
    const like = this.postgres ? 'ILIKE' : 'LIKE';
    const rows = await this.db
      .selectFrom('certificate_requests as r')
      .leftJoin('certificates as c', 'c.id', 'r.id')
      .select(['r.seq as position', 'r.id'])
      .$if(visible !== undefined, (s) => (visible?.length ? s.where('r.organization', 'in', visible) : s.where(sql<boolean>`1 = 0`)))
      .$if(viewer.role === 'client', (s) => s.where('c.id', 'is not', null))
      .$if(filter.run !== undefined, (s) => s.where('r.run', '=', filter.run as string))
      .$if(filter.status !== undefined, (s) =>
        s.where((eb) => {
          // the status is derived from the events as statusOf does: revoked before amended before valid
          const revoked = eb.exists(
            eb.selectFrom('certificate_events as e').select('e.id').whereRef('e.certificate', '=', 'r.id').where('e.kind', '=', 'revoke'),
          );
          const amended = eb.exists(eb.selectFrom('certificates as a').select('a.id').whereRef('a.amends', '=', 'r.id'));
          const issued = eb('c.id', 'is not', null);
          switch (filter.status) {
            case 'draft':
              return eb('c.id', 'is', null);
            case 'revoked':
              return eb.and([issued, revoked]);
            case 'amended':
              return eb.and([issued, eb.not(revoked), amended]);
            default:
              return eb.and([issued, eb.not(revoked), eb.not(amended)]);
          }
        }),
      )
      .$if(filter.from !== undefined, (s) => s.where('c.issued_at', '>=', filter.from as number))
      .$if(filter.to !== undefined, (s) => s.where('c.issued_at', '<', filter.to as number))
      .$if(q !== '', (s) =>
        s.where((eb) => {
          const pattern = containing(q);
          const matching = (column: 'r.id' | 'r.run') => sql<boolean>`${sql.ref(column)} ${sql.raw(like)} ${pattern} ESCAPE '\\'`;
          return eb.or([matching('r.id'), matching('r.run'), ...(about.length === 0 ? [] : [eb('r.run', 'in', about)])]);
        }),
      )
      .$if(page.cursor !== undefined, (s) => s.where('r.seq', '<', Number(page.cursor)))
      .orderBy('r.seq', 'desc')
      .limit(limit + 1)
      .execute();
    const shown = rows.slice(0, limit);
    // the page's requests, and the customers and samples of their runs asked at once
    const requests: RequestRow[] = [];
    for (const r of shown) requests.push(await this.mustRequest(this.db, r.id));
    const subjects = await this.deps.sources.subjects([...new Set(requests.map((r) => r.run))]);
    const views: CertificateView[] = [];
    for (const req of requests) views.push(await this.viewOf(req, subjects.get(req.run)));
    const last = shown.at(-1);
    return { items: views, next: rows.length > limit && last !== undefined ? String(last.position) : null };
  }

  /** A certificate the viewer may see (a client: its organization's issued ones); undefined otherwise, as for an unknown one. */
  async get(viewer: Viewer, id: string): Promise<CertificateView | undefined> {
    const view = await this.view(id);
    if (view === undefined) return undefined;
    return mayView(viewer, view.organization, view.status !== 'draft') ? view : undefined;
  }

  /**
   * Whether the viewer may see a certificate (its id, customer, and whether it is issued; undefined otherwise, as for
   * an unknown one), read on `db`: the caller's transaction (the notifier, planning its deliveries), or the store.
   */
  async visibleIn(db: Db, viewer: Viewer, id: string): Promise<{ id: string; organization: string; issued: boolean } | undefined> {
    const req = await db.selectFrom('certificate_requests').select('organization').where('id', '=', id).executeTakeFirst();
    if (req === undefined) return undefined;
    const issued = (await db.selectFrom('certificates').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
    return mayView(viewer, req.organization, issued) ? { id, organization: req.organization, issued } : undefined;
  }

  /**
   * How many drafts wait for a signatory, and the oldest one's request time (null without drafts): what the lab
   * manager's overview shows, read in `db` (the overview's snapshot transaction) or the store.
   */
  async drafts(db: Db = this.db): Promise<{ count: number; oldestRequestedAt: number | null }> {
    const unissued = db
      .selectFrom('certificate_requests as q')
      .where((eb) => eb.not(eb.exists(eb.selectFrom('certificates as c').select('c.id').whereRef('c.id', '=', 'q.id'))));
    const row = await unissued.select((eb) => [eb.fn.countAll().as('n'), eb.fn.min('q.requested_at').as('oldest')]).executeTakeFirstOrThrow();
    return { count: Number(row.n), oldestRequestedAt: row.oldest === null ? null : Number(row.oldest) };
  }

  /** The issued content, statement and signature of a certificate. */
  async issued(id: string): Promise<{ content: CertificateContent; statement: SignedStatement; signature: string } | undefined> {
    const row = await this.db.selectFrom('certificates').select(['content', 'statement', 'signature']).where('id', '=', id).executeTakeFirst();
    if (!row) return undefined;
    return {
      content: JSON.parse(Buffer.from(row.content).toString('utf8')) as CertificateContent,
      statement: JSON.parse(row.statement) as SignedStatement,
      signature: row.signature,
    };
  }

  /** The renderings as issued (byte for byte). */
  async files(id: string): Promise<CertificateFiles | undefined> {
    const row = await this.db.selectFrom('certificates').select(['json', 'pdf', 'dcc']).where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : { json: new Uint8Array(row.json), pdf: new Uint8Array(row.pdf), dcc: new Uint8Array(row.dcc) };
  }

  /**
   * The public status of an issued certificate: drafts and unknown numbers alike are 'unknown'. On SQLite kept in
   * memory (the public page is read far more often than a certificate changes; every change here clears it); on
   * PostgreSQL read every time, since another node may have changed it.
   */
  async publicStatus(id: string): Promise<PublicStatus> {
    const cached = this.statusCache.get(id);
    if (cached !== undefined) return cached;
    const status = await this.readPublicStatus(id);
    if (this.postgres) return status;
    if (this.statusCache.size >= STATUS_CACHE_SIZE) this.statusCache.clear();
    this.statusCache.set(id, status);
    return status;
  }

  /** Whether uploaded bytes are, byte for byte, one of the certificate's renderings as issued (by their SHA-256). */
  async match(
    id: string,
    bytes: Uint8Array,
  ): Promise<{ match: boolean; format: 'pdf' | 'json' | 'dcc' | 'unknown'; status: PublicStatus['status'] }> {
    const status = await this.publicStatus(id);
    const format = formatOf(bytes);
    if (status.status === 'unknown' || format === 'unknown') return { match: false, format, status: status.status };
    const expected = format === 'json' ? status.jsonFileDigest : status.digests[format];
    return { match: sha256Hex(bytes) === expected, format, status: status.status };
  }

  private async readPublicStatus(id: string): Promise<PublicStatus> {
    const view = await this.view(id);
    const row = await this.issuedRow(this.db, id);
    if (view === undefined || view.status === 'draft' || row === undefined) return { id, status: 'unknown' };
    return {
      id,
      status: view.status,
      issuedAt: row.issued_at,
      amends: view.amends,
      amendReason: view.amendReason,
      amendedBy: view.amendedBy,
      revokedAt: view.revokedAt,
      revocationReason: view.revocationReason,
      digests: (JSON.parse(row.statement) as SignedStatement).digests,
      jsonFileDigest: row.json_file_digest,
      keyId: row.key_id,
      logIndex: row.log_index,
      statement: JSON.parse(row.statement) as SignedStatement,
      signature: row.signature,
    };
  }

  // --- internals ---

  private signer(): SignerKey {
    if (this.key === undefined) throw new LabtraceError('E_STORE', 'certificates: start() loads the certificate key first');
    return this.key;
  }

  /** announces a change of a certificate to the live lists */
  private changed(view: CertificateView): void {
    try {
      this.deps.onChanged?.(view.id, view.organization);
    } catch (err) {
      this.deps.logger.warn({ certificate: view.id, err }, 'the change of a certificate could not be announced');
    }
  }

  /** a request's own fields: an amendment that was not issued yet keeps the fields of the report it replaces */
  private async fieldsOf(req: RequestRow): Promise<ReportFields> {
    if (req.amends === null) return {};
    const old = (await this.issued(req.amends))?.content;
    return old === undefined ? {} : correctableOf(old);
  }

  private async issueRequest(actor: Actor & Viewer, req: RequestRow, language: ReportLanguage, fields: ReportFields): Promise<CertificateView> {
    const id = req.id;
    if (await this.issuedRow(this.db, id)) throw new LabtraceError('E_CONFLICT', `certificate ${id} is already issued`);
    const run = await this.runOf(req.run);
    // separation of duties: the approval is a second person's (21 CFR 11, ISO/IEC 17025 7.8.1.2)
    if (actor.username === run.technician || actor.username === run.createdBy)
      throw new LabtraceError(
        'E_FORBIDDEN',
        `${actor.username} ${actor.username === run.technician ? 'performed' : 'created'} run ${run.id}: the certificate must be approved by another signatory`,
      );
    const blockers = (await this.calibrationBlockers(run)).map((b) => b.text);
    if (this.font === undefined) blockers.push(this.fontProblem);
    if (blockers.length > 0) throw new LabtraceError('E_CONFLICT', `certificate ${id} cannot be issued: ${blockers.join('; ')}`);
    const at = this.now();
    const checkpoint = await this.currentCheckpoint(true);
    const content = await this.compose(req, run, { name: actor.username, role: actor.role }, at, checkpoint, language, fields);
    const missing = missingFields(content);
    if (missing.length > 0) throw new LabtraceError('E_CONFLICT', `certificate ${id} cannot be issued: missing ${missing.join('; ')}`);
    const times = timeBlockers(content);
    if (times.length > 0) throw new LabtraceError('E_CONFLICT', `certificate ${id} cannot be issued: ${times.join('; ')}`);
    const valid = certificateContentSchema.safeParse(content);
    if (!valid.success)
      throw new LabtraceError(
        'E_CONFLICT',
        `certificate ${id} cannot be issued: ${valid.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    const key = this.signer();
    const digest = sha256Hex(contentBytes(content));
    const dcc = renderDcc(content, digest, { softwareVersion: this.deps.softwareVersion, country: this.deps.laboratory?.country });
    // the DCC must be valid against the official PTB schema, or nothing is issued
    await assertValidDcc(dcc, id);
    // the PDF/A-3 carries the DCC and the signed content (whose digest the statement signs) as attachments
    const pdf = await renderPdf(content, digest, {
      font: this.font,
      logo: this.logo,
      accreditationMark: this.accreditationMark,
      attachments: { dcc, content: contentBytes(content) },
    });
    const statement: SignedStatement = {
      purpose: STATEMENT_PURPOSE,
      v: 1,
      certificate: id,
      issuedAt: at,
      keyId: toHex(key.keyId),
      digestAlgorithm: 'SHA-256',
      digests: { json: digest, pdf: sha256Hex(pdf), dcc: sha256Hex(dcc) },
    };
    const { bytes: json, signature } = signCertificate(key, content, statement);
    await this.db.transaction().execute(async (trx) => {
      // the rows are held until the end (PostgreSQL), the report replaced first: a node issuing the same draft, or
      // amending or revoking the same report, at the same time waits here, then finds it issued (one issue, one
      // log entry, one number)
      if (req.amends !== null) await this.lockRequest(trx, req.amends);
      await this.lockRequest(trx, id);
      if (await this.issuedRow(trx, id)) throw new LabtraceError('E_CONFLICT', `certificate ${id} is already issued`);
      if (req.amends !== null) await this.mustCurrent(trx, req.amends, 'amend');
      const kind = req.amends === null ? 'issue' : 'amend';
      const logIndex = await this.logged(
        trx,
        {
          kind,
          certificate: id,
          at,
          keyId: statement.keyId,
          digests: statement.digests,
          signature,
          ...(req.amends === null ? {} : { amends: req.amends, reason: req.reason }),
        },
        at,
      );
      await trx
        .insertInto('certificates')
        .values({
          id,
          run: run.id,
          organization: run.organization,
          amends: req.amends,
          issued_by: actor.username,
          issued_at: at,
          content: Buffer.from(contentBytes(content)),
          json: Buffer.from(json),
          pdf: Buffer.from(pdf),
          dcc: Buffer.from(dcc),
          statement: JSON.stringify(statement),
          signature,
          key_id: statement.keyId,
          json_file_digest: sha256Hex(json),
          log_index: logIndex,
        })
        .execute();
      await trx
        .insertInto('certificate_events')
        .values({ certificate: id, kind, at, actor: actor.username, reason: req.reason, log_index: logIndex })
        .execute();
      await this.deps.audit.recordIn(trx, actor, {
        action: 'state-change',
        recordType: 'certificate',
        recordId: id,
        oldValue: { status: 'draft' },
        newValue: {
          status: 'valid',
          digests: statement.digests,
          keyId: statement.keyId,
          logIndex,
          ...(req.amends === null ? {} : { amends: req.amends }),
        },
        reason: req.reason ?? undefined,
      });
      if (req.amends !== null)
        await this.deps.audit.recordIn(trx, actor, {
          action: 'state-change',
          recordType: 'certificate',
          recordId: req.amends,
          oldValue: { status: 'valid' },
          newValue: { status: 'amended', amendedBy: id },
          reason: req.reason ?? undefined,
        });
    });
    this.statusCache.clear();
    this.deps.logger.info({ certificate: id, run: run.id, by: actor.username, amends: req.amends }, 'certificate issued');
    const view = await this.mustView(id);
    this.changed(view);
    if (req.amends !== null) this.changed(await this.mustView(req.amends));
    return view;
  }

  /** The run's instruments must have been calibrated and in service while it ran, and none may now hold it under review. */
  private async calibrationBlockers(run: Run): Promise<Blocker[]> {
    const sources = this.deps.sources;
    const problems: Blocker[] = [];
    const start = run.startedAt ?? run.createdAt;
    const end = run.endedAt ?? start;
    for (const { id } of run.instruments) {
      const states = [await sources.calibrationStatus(id, start), await sources.calibrationStatus(id, end)];
      const expired = states.find((s) => s.status === 'expired');
      const of = { instrument: id, run: run.id };
      if (states.some((s) => s.status === 'out-of-service'))
        problems.push(blocker('instrument-out-of-service', of, `instrument "${id}" was out of service during run ${run.id}`));
      else if (expired)
        problems.push(
          blocker(
            'instrument-out-of-calibration',
            { ...of, certificate: expired.calibration?.certificate ?? '?', dueAt: expired.dueAt ?? 0 },
            `instrument "${id}" was out of calibration during run ${run.id}: certificate ${expired.calibration?.certificate ?? '?'} expired on ${isoOf(expired.dueAt ?? 0)}`,
          ),
        );
      else if (states.some((s) => s.status === 'never-calibrated'))
        problems.push(
          blocker(
            'instrument-never-calibrated',
            of,
            `instrument "${id}" had no calibration record during run ${run.id}: no traceability statement can be made`,
          ),
        );
      if ((await sources.calibrationStatus(id)).status === 'out-of-service') {
        const review = await sources.calibrationReview(id);
        if (review.runs.some((r) => r.id === run.id))
          problems.push(
            blocker(
              'instrument-under-review',
              { ...of, since: review.since },
              `instrument "${id}" is now out of service and run ${run.id} is under review (it measured since the instrument's last good check or calibration${review.since > 0 ? ` on ${isoOf(review.since)}` : ''})`,
            ),
          );
      }
    }
    return problems;
  }

  private async compose(
    req: RequestRow,
    run: Run,
    signatory: { name: string; role: string },
    at: number,
    checkpoint: ComposeInput['checkpoint'],
    language: ReportLanguage,
    fields: ReportFields,
  ): Promise<CertificateContent> {
    const sources = this.deps.sources;
    const results = await sources.results(run.id);
    if (!results)
      throw new LabtraceError('E_CONFLICT', `run ${run.id} has no computed results: a certificate reports the results of a completed run`);
    const sample = await sources.sample(run.sample);
    if (!sample) throw new LabtraceError('E_STORE', `sample ${run.sample} of run ${run.id} vanished`);
    const customer = await sources.customer(run.organization);
    const methodTitle = await sources.methodTitle(run.method.id, run.method.version);
    const start = run.startedAt ?? run.createdAt;
    const end = run.endedAt ?? start;
    const instruments: ComposeInput['instruments'] = [];
    for (const { id } of run.instruments)
      instruments.push({
        id,
        identity: await sources.instrumentIdentity(id),
        atStart: await sources.calibrationStatus(id, start),
        atEnd: await sources.calibrationStatus(id, end),
      });
    return composeContent({
      id: req.id,
      laboratory: this.deps.laboratory,
      run,
      sample,
      customer: { id: run.organization, name: customer?.name ?? '', contact: customer?.contact ?? null },
      methodTitle: methodTitle ?? '',
      results,
      instruments,
      signatory,
      issuedAt: at,
      checkpoint,
      amendment: req.amends === null ? null : { amends: req.amends, reason: req.reason ?? '' },
      fields,
      verifyUrl: this.verifyUrl(req.id),
      language,
      accreditationCurrent: results.accreditation === undefined ? true : await sources.accreditationCurrent(results.accreditation, at),
    });
  }

  /** The log's latest signed checkpoint (signing a new one first when `fresh` and one is due). */
  private async currentCheckpoint(fresh: boolean): Promise<ComposeInput['checkpoint']> {
    const log = this.mustLog();
    const note = fresh ? await log.checkpoint(this.now()) : await log.latestCheckpoint();
    const c = parseCheckpoint(parseNote(note).text);
    return { origin: c.origin, size: c.size, rootHash: toHex(c.rootHash) };
  }

  private logged(trx: Transaction<Tables>, entry: Record<string, unknown>, at: number): Promise<number> {
    return this.mustLog().append(trx, canonicalBytes({ v: 1, ...entry }), at);
  }

  private mustLog(): CertificateLog {
    const log = this.deps.log();
    if (!log) throw new LabtraceError('E_STORE', 'the transparency log is not open');
    return log;
  }

  /** An issued certificate that is neither revoked nor amended; otherwise why not. */
  private async mustCurrent(db: Db, id: string, what: string): Promise<CertificateRow> {
    const row = await this.issuedRow(db, id);
    if (!row)
      throw (await this.requestRow(db, id))
        ? new LabtraceError('E_CONFLICT', `certificate "${id}" is a draft: it was never issued`)
        : notFound('certificate', id);
    if (await this.revocation(db, id)) throw new LabtraceError('E_CONFLICT', `certificate ${id} is revoked: it cannot be ${what}ed`);
    const by = await this.amendedBy(db, id);
    if (by !== null) throw new LabtraceError('E_CONFLICT', `certificate ${id} is already amended by ${by}; ${what} ${by} instead`);
    return row;
  }

  /**
   * The next report number, in the transaction that writes its request: on PostgreSQL under an advisory lock held
   * until that transaction ends, so that two nodes never give one number twice (SQLite's write transaction
   * serializes it already). Numbers count the requests, amendments included, from 1.
   */
  private async nextNumber(trx: Transaction<Tables>): Promise<{ id: string; seq: number }> {
    if (this.postgres) await sql`SELECT pg_advisory_xact_lock(${CERTIFICATE_NUMBER_LOCK})`.execute(trx);
    const { n } = await trx
      .selectFrom('certificate_requests')
      .select((eb) => eb.fn.max('seq').as('n'))
      .executeTakeFirstOrThrow();
    const seq = Number(n ?? 0) + 1;
    return { id: `TR-${this.deps.lab}-${String(seq).padStart(6, '0')}`, seq };
  }

  /** A request's row, held until the transaction ends (FOR UPDATE, on PostgreSQL; SQLite's transaction holds the store). */
  private lockRequest(trx: Transaction<Tables>, id: string): Promise<RequestRow | undefined> {
    return trx
      .selectFrom('certificate_requests')
      .selectAll()
      .where('id', '=', id)
      .$if(this.postgres, (q) => q.forUpdate())
      .executeTakeFirst();
  }

  private async runOf(id: string): Promise<Run> {
    const run = await this.deps.sources.run(id);
    if (!run) throw new LabtraceError('E_STORE', `run ${id} vanished`);
    return run;
  }

  private requestRow(db: Db, id: string): Promise<RequestRow | undefined> {
    return db.selectFrom('certificate_requests').selectAll().where('id', '=', id).executeTakeFirst();
  }

  private issuedRow(db: Db, id: string): Promise<CertificateRow | undefined> {
    return db
      .selectFrom('certificates')
      .select(['id', 'run', 'organization', 'amends', 'issued_by', 'issued_at', 'statement', 'signature', 'key_id', 'json_file_digest', 'log_index'])
      .where('id', '=', id)
      .executeTakeFirst();
  }

  private revocation(db: Db, id: string): Promise<{ at: number; reason: string | null } | undefined> {
    return db.selectFrom('certificate_events').select(['at', 'reason']).where('certificate', '=', id).where('kind', '=', 'revoke').executeTakeFirst();
  }

  private async amendedBy(db: Db, id: string): Promise<string | null> {
    const row = await db.selectFrom('certificates').select('id').where('amends', '=', id).executeTakeFirst();
    return row?.id ?? null;
  }

  private async statusOf(db: Db, id: string): Promise<CertificateStatus> {
    if (!(await this.issuedRow(db, id))) return 'draft';
    if (await this.revocation(db, id)) return 'revoked';
    return (await this.amendedBy(db, id)) === null ? 'valid' : 'amended';
  }

  private async view(id: string): Promise<CertificateView | undefined> {
    const req = await this.requestRow(this.db, id);
    if (!req) return undefined;
    return this.viewOf(req, (await this.deps.sources.subjects([req.run])).get(req.run));
  }

  private async mustRequest(db: Db, id: string): Promise<RequestRow> {
    const req = await this.requestRow(db, id);
    if (!req) throw new LabtraceError('E_STORE', `certificate ${id} vanished`);
    return req;
  }

  /** a request as lists and the API show it, with its issue, amendment and revocation, and its run's subject */
  private async viewOf(req: RequestRow, subject: CertificateSubject | undefined): Promise<CertificateView> {
    const db = this.db;
    const id = req.id;
    const row = await this.issuedRow(db, id);
    const revoked = row ? await this.revocation(db, id) : undefined;
    const amendedBy = row ? await this.amendedBy(db, id) : null;
    const statement = row ? (JSON.parse(row.statement) as SignedStatement) : undefined;
    return {
      id,
      run: req.run,
      organization: req.organization,
      status: !row ? 'draft' : revoked ? 'revoked' : amendedBy === null ? 'valid' : 'amended',
      requestedBy: req.requested_by,
      requestedAt: req.requested_at,
      issuedBy: row?.issued_by ?? null,
      issuedAt: row?.issued_at ?? null,
      amends: req.amends,
      amendReason: req.amends === null ? null : req.reason,
      amendedBy,
      revokedAt: revoked?.at ?? null,
      revocationReason: revoked?.reason ?? null,
      digests: statement?.digests ?? null,
      keyId: row?.key_id ?? null,
      logIndex: row?.log_index ?? null,
      verifyUrl: this.verifyUrl(id),
      // the customer's name and the sample of the run, as the records hold them now (a list shows and searches them)
      customer: subject?.customer ?? '',
      sample: subject?.sample ?? { id: '', description: '' },
    };
  }

  private async mustView(id: string): Promise<CertificateView> {
    const view = await this.view(id);
    if (!view) throw new LabtraceError('E_STORE', `certificate ${id} vanished`);
    return view;
  }
}

/** An issued report's content as its holder may see it online (with the report's verification code): the contract's. */
export type { PublicSummary } from '@labtrace/protocols/api';

/** What anyone may read of a report's status (without its summary): the contract's answer of the public status. */
export type PublicStatus = DistributiveOmit<PublicCertificate, 'summary'>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * The report's font and images as configured (certificates.start reads them once): a configured file that cannot
 * be used throws, naming its config key; no font at all is not an error here but a problem every issue names.
 */
export function loadReportAssets(report: CertificatesDeps['report']): {
  font: ReportFont | undefined;
  fontProblem: string;
  logo: Uint8Array | undefined;
  accreditationMark: Uint8Array | undefined;
} {
  const found = findReportFont(report?.font);
  return {
    font: found.font,
    fontProblem:
      found.font === undefined
        ? `no report font (a CJK font is needed to print reports; install the npm dependencies, Debian's fonts-noto-cjk, or set certificates.font; tried ${found.tried.join('; ')})`
        : '',
    logo: report?.logo === undefined ? undefined : readImage(report.logo, 'laboratory.logo'),
    accreditationMark: report?.accreditationMark === undefined ? undefined : readImage(report.accreditationMark, 'certificates.accreditationMark'),
  };
}

/** Whether a viewer may see a certificate of an organization: a client only its own issued ones. */
function mayView(viewer: Viewer, organization: string, issued: boolean): boolean {
  return canSee(viewer, organization) && (viewer.role !== 'client' || issued);
}

/** The fields an amendment corrects, as a report holds them. */
interface Correctable {
  customer: { name: string; contact: string };
  item: { description: string; condition: string };
  remarks: string;
  statements: string[];
}

function correctableOf(content: CertificateContent): Correctable {
  return {
    customer: { name: content.customer.name, contact: content.customer.contact },
    item: { description: content.item.description, condition: content.item.condition },
    remarks: content.remarks ?? '',
    statements: [...(content.statements ?? [])],
  };
}

/** The corrected fields, old and new, by their path in the content (for the audit trail). */
function changedFields(before: Correctable, after: ReportFields): { old: Record<string, unknown>; new: Record<string, unknown> } {
  const pairs: [string, unknown, unknown][] = [
    ['customer.name', before.customer.name, after.customer?.name],
    ['customer.contact', before.customer.contact, after.customer?.contact],
    ['item.description', before.item.description, after.item?.description],
    ['item.condition', before.item.condition, after.item?.condition],
    ['remarks', before.remarks, after.remarks ?? ''],
    ['statements', before.statements, [...(after.statements ?? [])]],
  ];
  const out = { old: {} as Record<string, unknown>, new: {} as Record<string, unknown> };
  for (const [field, was, now] of pairs)
    if (JSON.stringify(was) !== JSON.stringify(now)) {
      out.old[field] = was;
      out.new[field] = now;
    }
  return out;
}

/** The language asked for at a request, or en. */
function languageOf(req: RequestRow): ReportLanguage {
  return req.language === 'zh-CN' || req.language === 'bilingual' ? req.language : 'en';
}

/** Which rendering a file is, by its first bytes. */
export function formatOf(bytes: Uint8Array): 'pdf' | 'json' | 'dcc' | 'unknown' {
  const head = new TextDecoder().decode(bytes.subarray(0, 16)).trimStart();
  if (head.startsWith('%PDF-')) return 'pdf';
  if (head.startsWith('{')) return 'json';
  if (head.startsWith('<?xml') || head.startsWith('<dcc:')) return 'dcc';
  return 'unknown';
}
