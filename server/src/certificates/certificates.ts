// Certificates (test reports) of completed runs: requested by a technician or signatory, approved and issued
// by a signatory who neither performed nor created the run, amended (a new report that replaces the old one,
// 7.8.8) or revoked, each step a signed entry in the transparency log and an audit-trail entry. Nothing is
// edited or deleted: the status of a certificate is derived from its events.
import { canSee, visibleOrganizations, type Viewer as VisibilityViewer } from '../auth/visibility.js';
import { timingSafeEqual } from 'node:crypto';
import { canonicalBytes, LabtraceError, parseCheckpoint, parseNote, signEd25519, toHex, type SignerKey } from '@labtrace/protocols';
import type { Statement } from 'better-sqlite3';
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
import { pageOfRows, pageSql, type PageRequest } from '../api/paging.js';
import { isoOrUndefined } from '../api/time.js';
import type { Actor, AuditTrail } from '../audit/audit-trail.js';
import type { Role } from '../auth/users.js';
import type { Calibration } from '../lab/calibration.js';
import type { KeptRunResults } from '../lab/contracts.js';
import type { LabRecords } from '../lab/lab-records.js';
import type { Run, Runs } from '../lab/runs.js';
import type { Logger } from '../log.js';
import type { TransparencyLog } from '../log/transparency-log.js';
import type { LabDatabase } from '../store/database.js';
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

export type { CertificateStatus } from '@labtrace/protocols/api';

/** A certificate as lists show it (GET /api/certificates): the contract's list item. */
export type CertificateView = CertificateItem;

export interface CertificateFiles {
  json: Uint8Array;
  pdf: Uint8Array;
  dcc: Uint8Array;
}

export interface CertificatesDeps {
  database: LabDatabase;
  audit: AuditTrail;
  runs: Runs;
  records: LabRecords;
  calibration: Calibration;
  /** the run results (server.results); undefined while the server has none */
  results: () => KeptRunResults | undefined;
  log: () => TransparencyLog | undefined;
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
  /** whether an accreditation (body and number) is current at a time: the mark is printed only then (default: yes) */
  accreditationCurrent?: (accreditation: { body: string; number: string }, at: number) => boolean;
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

export class Certificates {
  private key: SignerKey | undefined;
  private published: PublishedKey[] = [];
  private readonly now: () => number;
  private readonly statusCache = new Map<string, PublicStatus>();
  private readonly statements = new Map<string, Statement>();
  private readonly codes = new Map<string, string>();
  private font: ReportFont | undefined;
  private fontProblem = '';
  private logo: Uint8Array | undefined;
  private accreditationMark: Uint8Array | undefined;

  constructor(private readonly deps: CertificatesDeps) {
    this.now = deps.now ?? Date.now;
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
  publicSummary(id: string, code: string | undefined): PublicSummary | undefined {
    if (code === undefined || this.publicStatus(id).status === 'unknown') return undefined;
    const expected = Buffer.from(this.verifyCode(id));
    const given = Buffer.from(code);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    const content = this.issued(id)?.content;
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
    };
  }

  /** Requests (drafts) a certificate of a completed run; its number is reserved now. */
  request(actor: Actor & Viewer, runId: string, language?: ReportLanguage): CertificateView {
    const db = this.deps.database.sqlite;
    const view = db.transaction(() => {
      const run = this.deps.runs.getSync(actor, runId);
      if (!run) throw notFound('run', runId);
      if (run.state !== 'completed') throw new LabtraceError('E_CONFLICT', `run ${run.id} is ${run.state}: only a completed run gets a certificate`);
      const id = this.nextId();
      this.sql('INSERT INTO certificate_requests (id, run, organization, requested_by, requested_at, language) VALUES (?, ?, ?, ?, ?, ?)').run(
        id,
        run.id,
        run.organization,
        actor.username,
        this.now(),
        language ?? null,
      );
      this.deps.audit.record(actor, {
        action: 'create',
        recordType: 'certificate',
        recordId: id,
        newValue: { run: run.id, status: 'draft', ...(language === undefined ? {} : { language }) },
      });
      return this.mustView(id);
    })();
    this.deps.onDraft?.(view);
    this.changed(view);
    return view;
  }

  /** What stands in the way of issuing a draft now (an empty list when nothing does), for the signatory's review. */
  blockers(id: string): string[] {
    return this.review(id).blockers.map((b) => b.text);
  }

  /**
   * A draft as the signatory reviews it: what stands in the way of its issue now (an empty list when nothing does)
   * and its content as it would be issued now, by `signatory` (undefined while the run has no results). Nothing
   * is signed, logged or stored.
   */
  review(
    id: string,
    signatory: { name: string; role: string } = { name: '(signatory)', role: 'signatory' },
    language?: ReportLanguage,
  ): { blockers: Blocker[]; draft: CertificateContent | undefined } {
    const req = this.requestRow(id);
    if (!req) throw notFound('certificate', id);
    if (this.issuedRow(id)) return { blockers: [], draft: undefined };
    const run = this.runOf(req.run);
    const problems = this.calibrationBlockers(run);
    if (this.font === undefined) problems.push(blocker('no-font', {}, this.fontProblem));
    const results = this.deps.results()?.resultsOfSync(run.id);
    let draft: CertificateContent | undefined;
    if (!results) problems.push(blocker('no-results', { run: run.id }, `run ${run.id} has no computed results`));
    else {
      draft = this.compose(req, run, signatory, this.now(), this.currentCheckpoint(false), language ?? languageOf(req), this.fieldsOf(req));
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
    if (this.issuedRow(id))
      throw new LabtraceError('E_CONFLICT', `certificate ${id} is issued: its PDF is GET /api/certificates/${id}/pdf`, {
        reason: 'certificate.issued',
        params: { id },
      });
    const signatory = viewer.role === 'signatory' ? { name: viewer.username, role: viewer.role } : undefined;
    const { draft } = this.review(id, signatory, language);
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
    const req = this.requestRow(id);
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
    const old = this.mustCurrent(oldId, 'amend');
    const oldContent = this.issued(oldId)?.content;
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
    const db = this.deps.database.sqlite;
    const req = db.transaction(() => {
      this.mustCurrent(oldId, 'amend');
      const pending = this.sql('SELECT id FROM certificate_requests WHERE amends = ?').get(oldId) as { id: string } | undefined;
      // an amendment whose issue failed (a blocker) is retried under the same number
      const newId = pending?.id ?? this.nextId();
      if (pending === undefined) {
        this.sql(
          'INSERT INTO certificate_requests (id, run, organization, amends, reason, requested_by, requested_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
        ).run(newId, old.run, old.organization, oldId, reason, actor.username, this.now());
        this.deps.audit.record(actor, {
          action: 'create',
          recordType: 'certificate',
          recordId: newId,
          newValue: { run: old.run, status: 'draft', amends: oldId },
          reason,
        });
      }
      // the corrected fields, old and new, each time they are asked for (a retried amendment may correct others)
      if (Object.keys(changes.old).length > 0)
        this.deps.audit.record(actor, {
          action: 'update',
          recordType: 'certificate',
          recordId: newId,
          oldValue: { amends: oldId, ...changes.old },
          newValue: { amends: oldId, ...changes.new },
          reason,
        });
      return { ...(this.requestRow(newId) as RequestRow), reason };
    })();
    // an amendment keeps the language of the report it replaces unless told
    return this.issueRequest(actor, req, language ?? oldContent.language ?? 'en', fields);
  }

  /** Revokes an issued certificate, with the reason; the public page says so from then on. */
  revoke(actor: Actor & Viewer, id: string, reason: string): CertificateView {
    if (reason.trim() === '') throw new LabtraceError('E_BAD_REQUEST', 'body: reason: required to revoke a certificate');
    const db = this.deps.database.sqlite;
    const view = db.transaction(() => {
      const row = this.issuedRow(id);
      if (!row)
        throw this.requestRow(id)
          ? new LabtraceError('E_CONFLICT', `certificate "${id}" is a draft: it was never issued`)
          : notFound('certificate', id);
      if (this.revocation(id)) throw new LabtraceError('E_CONFLICT', `certificate ${id} is already revoked`);
      const before = this.statusOf(id);
      const at = this.now();
      const logIndex = this.logged({ kind: 'revoke', certificate: id, at, reason }, at);
      this.sql("INSERT INTO certificate_events (certificate, kind, at, actor, reason, log_index) VALUES (?, 'revoke', ?, ?, ?, ?)").run(
        id,
        at,
        actor.username,
        reason,
        logIndex,
      );
      this.statusCache.clear();
      this.deps.audit.record(actor, {
        action: 'state-change',
        recordType: 'certificate',
        recordId: id,
        oldValue: { status: before },
        newValue: { status: 'revoked', logIndex },
        reason,
      });
      return this.mustView(id);
    })();
    this.changed(view);
    return view;
  }

  /**
   * A page of the certificates the viewer may see (a client: its organization's issued ones; an auditor: its
   * grant's), newest first by request (the row id), optionally of one run or status, issued in a time range, or
   * matching a text (report number, customer, run, sample id or description).
   */
  list(viewer: Viewer, filter: CertificateFilter = {}): Page<CertificateView> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    // the organizations the viewer may see (auth/visibility.ts); a client sees issued certificates only
    const visible = visibleOrganizations(viewer);
    if (visible !== undefined) {
      where.push(`r.organization IN (${visible.map(() => '?').join(', ') || 'NULL'})`);
      params.push(...visible);
    }
    if (viewer.role === 'client') where.push('c.id IS NOT NULL');
    if (filter.run !== undefined) {
      where.push('r.run = ?');
      params.push(filter.run);
    }
    // the status is derived from the events as statusOf does: revoked before amended before valid
    const revoked = "EXISTS (SELECT 1 FROM certificate_events e WHERE e.certificate = r.id AND e.kind = 'revoke')";
    const amended = 'EXISTS (SELECT 1 FROM certificates a WHERE a.amends = r.id)';
    if (filter.status === 'draft') where.push('c.id IS NULL');
    else if (filter.status === 'revoked') where.push(`c.id IS NOT NULL AND ${revoked}`);
    else if (filter.status === 'amended') where.push(`c.id IS NOT NULL AND NOT ${revoked} AND ${amended}`);
    else if (filter.status === 'valid') where.push(`c.id IS NOT NULL AND NOT ${revoked} AND NOT ${amended}`);
    if (filter.from !== undefined) {
      where.push('c.issued_at >= ?');
      params.push(filter.from);
    }
    if (filter.to !== undefined) {
      where.push('c.issued_at < ?');
      params.push(filter.to);
    }
    const q = filter.q?.trim() ?? '';
    if (q !== '') {
      where.push(
        `(r.id LIKE ? ESCAPE '\\' OR r.run LIKE ? ESCAPE '\\' OR o.name LIKE ? ESCAPE '\\' OR s.id LIKE ? ESCAPE '\\' OR s.description LIKE ? ESCAPE '\\')`,
      );
      params.push(...Array<string>(5).fill(containing(q)));
    }
    const page = { limit: filter.limit ?? 50, cursor: filter.cursor };
    const paging = pageSql(page, 'r.rowid');
    where.push(paging.where);
    const rows = this.sql(
      `SELECT r.rowid AS position, r.id FROM certificate_requests r
       LEFT JOIN certificates c ON c.id = r.id
       LEFT JOIN organizations o ON o.id = r.organization
       LEFT JOIN runs ru ON ru.id = r.run
       LEFT JOIN lab_samples s ON s.id = ru.sample
       WHERE ${where.join(' AND ')} ${paging.orderLimit}`,
    ).all(...params, ...paging.params) as { position: number; id: string }[];
    return pageOfRows(
      rows,
      page,
      (r) => r.position,
      (r) => this.mustView(r.id),
    );
  }

  /** A certificate the viewer may see (a client: its organization's issued ones); undefined otherwise, as for an unknown one. */
  get(viewer: Viewer, id: string): CertificateView | undefined {
    const view = this.view(id);
    if (view === undefined) return undefined;
    if (!canSee(viewer, view.organization) || (viewer.role === 'client' && view.status === 'draft')) return undefined;
    return view;
  }

  /** The issued content, statement and signature of a certificate. */
  issued(id: string): { content: CertificateContent; statement: SignedStatement; signature: string } | undefined {
    const row = this.sql('SELECT content, statement, signature FROM certificates WHERE id = ?').get(id) as
      { content: Buffer; statement: string; signature: string } | undefined;
    if (!row) return undefined;
    return {
      content: JSON.parse(row.content.toString('utf8')) as CertificateContent,
      statement: JSON.parse(row.statement) as SignedStatement,
      signature: row.signature,
    };
  }

  /** The renderings as issued (byte for byte). */
  files(id: string): CertificateFiles | undefined {
    const row = this.sql('SELECT json, pdf, dcc FROM certificates WHERE id = ?').get(id) as { json: Buffer; pdf: Buffer; dcc: Buffer } | undefined;
    return row === undefined ? undefined : { json: new Uint8Array(row.json), pdf: new Uint8Array(row.pdf), dcc: new Uint8Array(row.dcc) };
  }

  /**
   * The public status of an issued certificate: drafts and unknown numbers alike are 'unknown'. Kept in memory
   * (the public page is read far more often than a certificate changes); every change here clears it.
   */
  publicStatus(id: string): PublicStatus {
    const cached = this.statusCache.get(id);
    if (cached !== undefined) return cached;
    const status = this.readPublicStatus(id);
    if (this.statusCache.size >= STATUS_CACHE_SIZE) this.statusCache.clear();
    this.statusCache.set(id, status);
    return status;
  }

  /** Whether uploaded bytes are, byte for byte, one of the certificate's renderings as issued (by their SHA-256). */
  match(id: string, bytes: Uint8Array): { match: boolean; format: 'pdf' | 'json' | 'dcc' | 'unknown'; status: PublicStatus['status'] } {
    const status = this.publicStatus(id);
    const format = formatOf(bytes);
    if (status.status === 'unknown' || format === 'unknown') return { match: false, format, status: status.status };
    const expected = format === 'json' ? status.jsonFileDigest : status.digests[format];
    return { match: sha256Hex(bytes) === expected, format, status: status.status };
  }

  private readPublicStatus(id: string): PublicStatus {
    const view = this.view(id);
    const row = this.issuedRow(id);
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

  /** a prepared statement, prepared once */
  private sql(text: string): Statement {
    let statement = this.statements.get(text);
    if (statement === undefined) {
      statement = this.deps.database.sqlite.prepare(text);
      this.statements.set(text, statement);
    }
    return statement;
  }

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
  private fieldsOf(req: RequestRow): ReportFields {
    if (req.amends === null) return {};
    const old = this.issued(req.amends)?.content;
    return old === undefined ? {} : correctableOf(old);
  }

  private async issueRequest(actor: Actor & Viewer, req: RequestRow, language: ReportLanguage, fields: ReportFields): Promise<CertificateView> {
    const id = req.id;
    if (this.issuedRow(id)) throw new LabtraceError('E_CONFLICT', `certificate ${id} is already issued`);
    const run = this.runOf(req.run);
    // separation of duties: the approval is a second person's (21 CFR 11, ISO/IEC 17025 7.8.1.2)
    if (actor.username === run.technician || actor.username === run.createdBy)
      throw new LabtraceError(
        'E_FORBIDDEN',
        `${actor.username} ${actor.username === run.technician ? 'performed' : 'created'} run ${run.id}: the certificate must be approved by another signatory`,
      );
    const blockers = this.calibrationBlockers(run).map((b) => b.text);
    if (this.font === undefined) blockers.push(this.fontProblem);
    if (blockers.length > 0) throw new LabtraceError('E_CONFLICT', `certificate ${id} cannot be issued: ${blockers.join('; ')}`);
    const at = this.now();
    const checkpoint = this.currentCheckpoint(true);
    const content = this.compose(req, run, { name: actor.username, role: actor.role }, at, checkpoint, language, fields);
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
    const db = this.deps.database.sqlite;
    db.transaction(() => {
      if (this.issuedRow(id)) throw new LabtraceError('E_CONFLICT', `certificate ${id} is already issued`);
      if (req.amends !== null) this.mustCurrent(req.amends, 'amend');
      const kind = req.amends === null ? 'issue' : 'amend';
      const logIndex = this.logged(
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
      this.sql(
        `INSERT INTO certificates (id, run, organization, amends, issued_by, issued_at, content, json, pdf, dcc, statement, signature, key_id,
         json_file_digest, log_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        id,
        run.id,
        run.organization,
        req.amends,
        actor.username,
        at,
        Buffer.from(contentBytes(content)),
        Buffer.from(json),
        Buffer.from(pdf),
        Buffer.from(dcc),
        JSON.stringify(statement),
        signature,
        statement.keyId,
        sha256Hex(json),
        logIndex,
      );
      this.sql('INSERT INTO certificate_events (certificate, kind, at, actor, reason, log_index) VALUES (?, ?, ?, ?, ?, ?)').run(
        id,
        kind,
        at,
        actor.username,
        req.reason,
        logIndex,
      );
      this.deps.audit.record(actor, {
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
        this.deps.audit.record(actor, {
          action: 'state-change',
          recordType: 'certificate',
          recordId: req.amends,
          oldValue: { status: 'valid' },
          newValue: { status: 'amended', amendedBy: id },
          reason: req.reason ?? undefined,
        });
    })();
    this.statusCache.clear();
    this.deps.logger.info({ certificate: id, run: run.id, by: actor.username, amends: req.amends }, 'certificate issued');
    const view = this.mustView(id);
    this.changed(view);
    if (req.amends !== null) this.changed(this.mustView(req.amends));
    return view;
  }

  /** The run's instruments must have been calibrated and in service while it ran, and none may now hold it under review. */
  private calibrationBlockers(run: Run): Blocker[] {
    const problems: Blocker[] = [];
    const start = run.startedAt ?? run.createdAt;
    const end = run.endedAt ?? start;
    for (const { id } of run.instruments) {
      const states = [this.deps.calibration.status(id, start), this.deps.calibration.status(id, end)];
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
      if (this.deps.calibration.status(id).status === 'out-of-service') {
        const review = this.deps.calibration.review(id);
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

  private compose(
    req: RequestRow,
    run: Run,
    signatory: { name: string; role: string },
    at: number,
    checkpoint: ComposeInput['checkpoint'],
    language: ReportLanguage,
    fields: ReportFields,
  ): CertificateContent {
    const results = this.deps.results()?.resultsOfSync(run.id);
    if (!results)
      throw new LabtraceError('E_CONFLICT', `run ${run.id} has no computed results: a certificate reports the results of a completed run`);
    const sample = this.deps.records.sample(run.sample);
    if (!sample) throw new LabtraceError('E_STORE', `sample ${run.sample} of run ${run.id} vanished`);
    const org = this.sql('SELECT id, name, contact FROM organizations WHERE id = ?').get(run.organization) as
      { id: string; name: string; contact: string | null } | undefined;
    const method = this.deps.records.method(run.method.id, run.method.version);
    const start = run.startedAt ?? run.createdAt;
    const end = run.endedAt ?? start;
    return composeContent({
      id: req.id,
      laboratory: this.deps.laboratory,
      run,
      sample,
      customer: { id: run.organization, name: org?.name ?? '', contact: org?.contact ?? null },
      methodTitle: method?.title ?? '',
      results,
      instruments: run.instruments.map(({ id }) => {
        const row = this.sql('SELECT identity FROM instruments WHERE id = ?').get(id) as { identity: string } | undefined;
        return {
          id,
          identity: row === undefined ? undefined : (JSON.parse(row.identity) as ComposeInput['instruments'][number]['identity']),
          atStart: this.deps.calibration.status(id, start),
          atEnd: this.deps.calibration.status(id, end),
        };
      }),
      signatory,
      issuedAt: at,
      checkpoint,
      amendment: req.amends === null ? null : { amends: req.amends, reason: req.reason ?? '' },
      fields,
      verifyUrl: this.verifyUrl(req.id),
      language,
      accreditationCurrent:
        results.accreditation === undefined || this.deps.accreditationCurrent === undefined
          ? true
          : this.deps.accreditationCurrent(results.accreditation, at),
    });
  }

  /** The log's latest signed checkpoint (signing a new one first when `fresh` and one is due). */
  private currentCheckpoint(fresh: boolean): ComposeInput['checkpoint'] {
    const log = this.mustLog();
    const note = fresh && !this.deps.database.sqlite.inTransaction ? log.checkpoint(this.now()) : log.latestCheckpoint().note;
    const c = parseCheckpoint(parseNote(note).text);
    return { origin: c.origin, size: c.size, rootHash: toHex(c.rootHash) };
  }

  private logged(entry: Record<string, unknown>, at: number): number {
    return this.mustLog().append('certificate-event', [canonicalBytes({ v: 1, ...entry })], at);
  }

  private mustLog(): TransparencyLog {
    const log = this.deps.log();
    if (!log) throw new LabtraceError('E_STORE', 'the transparency log is not open');
    return log;
  }

  /** An issued certificate that is neither revoked nor amended; otherwise why not. */
  private mustCurrent(id: string, what: string): CertificateRow {
    const row = this.issuedRow(id);
    if (!row)
      throw this.requestRow(id)
        ? new LabtraceError('E_CONFLICT', `certificate "${id}" is a draft: it was never issued`)
        : notFound('certificate', id);
    if (this.revocation(id)) throw new LabtraceError('E_CONFLICT', `certificate ${id} is revoked: it cannot be ${what}ed`);
    const by = this.amendedBy(id);
    if (by !== null) throw new LabtraceError('E_CONFLICT', `certificate ${id} is already amended by ${by}; ${what} ${by} instead`);
    return row;
  }

  private nextId(): string {
    const n = (this.sql('SELECT COUNT(*) AS n FROM certificate_requests').get() as { n: number }).n + 1;
    return `TR-${this.deps.lab}-${String(n).padStart(6, '0')}`;
  }

  private runOf(id: string): Run {
    const run = this.deps.runs.getSync({ role: 'admin', organization: null }, id);
    if (!run) throw new LabtraceError('E_STORE', `run ${id} vanished`);
    return run;
  }

  private requestRow(id: string): RequestRow | undefined {
    return this.sql('SELECT * FROM certificate_requests WHERE id = ?').get(id) as RequestRow | undefined;
  }

  private issuedRow(id: string): CertificateRow | undefined {
    return this.deps.database.sqlite
      .prepare(
        'SELECT id, run, organization, amends, issued_by, issued_at, statement, signature, key_id, json_file_digest, log_index FROM certificates WHERE id = ?',
      )
      .get(id) as CertificateRow | undefined;
  }

  private revocation(id: string): { at: number; reason: string | null } | undefined {
    return this.sql("SELECT at, reason FROM certificate_events WHERE certificate = ? AND kind = 'revoke'").get(id) as
      { at: number; reason: string | null } | undefined;
  }

  private amendedBy(id: string): string | null {
    const row = this.sql('SELECT id FROM certificates WHERE amends = ?').get(id) as { id: string } | undefined;
    return row?.id ?? null;
  }

  private statusOf(id: string): CertificateStatus {
    if (!this.issuedRow(id)) return 'draft';
    if (this.revocation(id)) return 'revoked';
    return this.amendedBy(id) === null ? 'valid' : 'amended';
  }

  private view(id: string): CertificateView | undefined {
    const req = this.requestRow(id);
    if (!req) return undefined;
    const row = this.issuedRow(id);
    const revoked = row ? this.revocation(id) : undefined;
    const statement = row ? (JSON.parse(row.statement) as SignedStatement) : undefined;
    return {
      id,
      run: req.run,
      organization: req.organization,
      status: this.statusOf(id),
      requestedBy: req.requested_by,
      requestedAt: req.requested_at,
      issuedBy: row?.issued_by ?? null,
      issuedAt: row?.issued_at ?? null,
      amends: req.amends,
      amendReason: req.amends === null ? null : req.reason,
      amendedBy: row ? this.amendedBy(id) : null,
      revokedAt: revoked?.at ?? null,
      revocationReason: revoked?.reason ?? null,
      digests: statement?.digests ?? null,
      keyId: row?.key_id ?? null,
      logIndex: row?.log_index ?? null,
      verifyUrl: this.verifyUrl(id),
      ...this.subjectOf(req.run, req.organization),
    };
  }

  /** the customer's name and the sample of a run, as the records hold them now (a list shows and searches them) */
  private subjectOf(run: string, organization: string): { customer: string; sample: { id: string; description: string } } {
    const row = this.sql(
      `SELECT o.name AS customer, s.id AS sample, s.description AS description FROM runs r
       LEFT JOIN lab_samples s ON s.id = r.sample LEFT JOIN organizations o ON o.id = ? WHERE r.id = ?`,
    ).get(organization, run) as { customer: string | null; sample: string | null; description: string | null } | undefined;
    return { customer: row?.customer ?? '', sample: { id: row?.sample ?? '', description: row?.description ?? '' } };
  }

  private mustView(id: string): CertificateView {
    const view = this.view(id);
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
