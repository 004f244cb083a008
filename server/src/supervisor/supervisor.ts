// `labtrace supervisor`: follows the enrolled labs (checkpoint and new log entries on every round; the records and
// the compliance rules as often as each lab's tier says), and answers the supervisor's JSON API: labs, tiers,
// findings with their evidence, checks run, the rule and tier tables, the lab's responses to findings, and the
// signed compliance reports per lab and period (JSON, and the PDF printed from it).
import { createHash, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { formatVerifierKey, LabtraceError, parseWith, toHex, type SignerKey } from '@labtrace/protocols';
import { errorHandler } from '../api/errors.js';
import { dashboardFiles, securityHeaders } from '../api/static-files.js';
import type { Logger } from '../log.js';
import type { EnrolledLab } from './config.js';
import type { RuleSettings } from './evidence.js';
import { checkSignedReport, composeReport, noKey, parseReportQuery, reportFileName, signReport, type SignedReport } from './compliance-report.js';
import { LabFollower } from './lab-follower.js';
import { whyIn } from './evidence-why.js';
import { renderReportPdf } from './report-pdf.js';
import { RULES } from './rules/index.js';
import { DEFAULT_LEASE_MS, SupervisorStore, type SupervisorDatabase } from './supervisor-store.js';
import { SCORING, standingOf, type Standing } from './tiers.js';

export interface SupervisorOptions {
  host: string;
  port: number;
  /** the store: a SQLite file, or where the configuration names it (SQLite or PostgreSQL) */
  database: string | SupervisorDatabase;
  apiToken: string;
  /** the key that signs the compliance reports; without it reports are refused */
  key?: SignerKey | undefined;
  followEveryMs: number;
  settings: RuleSettings;
  labs: readonly EnrolledLab[];
  /** ms since the epoch; the tests move it to cross the rolling period */
  now?: () => number;
  /** how long the store's lease keeps another supervisor out when not renewed (renewed every third of it; 30 s) */
  leaseMs?: number;
  /** ms since the epoch for the lease; the tests move it to expire a lease without waiting */
  leaseClock?: () => number;
  /** the built dashboard whose supervisor.html is the console served at / (the repository's dashboard/dist unless told) */
  consoleDir?: string;
}

/** the dashboard's build, beside the server's (server/dist/src/supervisor/ -> dashboard/dist) */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL('../../../../dashboard/dist', import.meta.url));

const responseBody = z.strictObject({
  /** who answers: the lab's name for its person in charge, or the supervisor's officer */
  author: z.string().trim().min(1).max(200),
  text: z.string().trim().min(10, 'a reasoned response has at least 10 characters').max(10_000),
});

/**
 * Whether a lab's standing token may make a request (`path` under /api, as express gives it undecoded). The routes
 * match paths without regard to case and with one trailing slash, so these do too; any other spelling is refused
 * (fail closed).
 */
export function standingAllows(lab: string, method: string, path: string): boolean {
  const parts = path.replace(/\/$/, '').split('/');
  if (parts[0] !== '') return false;
  let segments: string[];
  try {
    segments = parts.slice(1).map((p) => decodeURIComponent(p));
  } catch {
    return false;
  }
  const word = (i: number, w: string) => segments[i]?.toLowerCase() === w;
  if (method === 'GET' && segments.length === 1 && word(0, 'rules')) return true;
  if (segments.length < 2 || !word(0, 'labs') || segments[1] !== lab) return false;
  if (method === 'GET')
    return segments.length === 2 || (segments.length === 3 && ['findings', 'checks', 'reports', 'reports.pdf'].some((w) => word(2, w)));
  return method === 'POST' && segments.length === 5 && word(2, 'findings') && word(4, 'response');
}

export class Supervisor {
  readonly store: SupervisorStore;
  private readonly followers: Map<string, LabFollower>;
  private readonly now: () => number;
  private server: http.Server | undefined;
  private timer: NodeJS.Timeout | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  /** the lease was taken over by another process: this one writes no more */
  private leaseLost = false;
  /** the round in progress: rounds never overlap, and stop() waits for it */
  private round: Promise<void> = Promise.resolve();
  private readonly lastError = new Map<string, string | null>();

  constructor(
    private readonly options: SupervisorOptions,
    private readonly logger: Logger,
  ) {
    this.now = options.now ?? (() => Date.now());
    this.store = new SupervisorStore(options.database);
    this.followers = new Map(options.labs.map((l) => [l.id, new LabFollower(l, this.store, logger, options.settings)]));
  }

  get url(): string {
    const address = this.server?.address() as AddressInfo | null | undefined;
    if (address === undefined || address === null) throw new Error('the supervisor is not listening');
    return `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  }

  async start(): Promise<void> {
    await this.store.open();
    const leaseMs = this.options.leaseMs ?? DEFAULT_LEASE_MS;
    const leaseNow = this.options.leaseClock ?? (() => Date.now());
    try {
      await this.store.takeLease(leaseNow(), leaseMs);
    } catch (err) {
      await this.store.close();
      throw err;
    }
    this.leaseTimer = setInterval(() => void this.renewLease(leaseNow()), leaseMs / 3);
    this.leaseTimer.unref();
    const app = this.app();
    await new Promise<void>((resolve, reject) => {
      const server = app.listen(this.options.port, this.options.host, (err?: Error) => (err === undefined ? resolve() : reject(err)));
      this.server = server;
    });
    this.logger.info({ url: this.url, database: this.store.description, labs: [...this.followers.keys()] }, 'supervisor: listening');
    this.schedule(0);
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const server = this.server;
    this.server = undefined;
    if (server !== undefined) {
      server.closeIdleConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await this.round;
    clearInterval(this.leaseTimer);
    this.leaseTimer = undefined;
    try {
      await this.store.releaseLease();
    } catch (err) {
      this.logger.warn({ err }, "supervisor: the store's lease could not be released; another supervisor may take it once it expires");
    }
    await this.store.close();
  }

  /** Renews the store's lease; taken over by another process (this one was paused too long), stops writing. */
  private async renewLease(now: number): Promise<void> {
    let ours: boolean;
    try {
      ours = await this.store.renewLease(now);
    } catch (err) {
      this.logger.warn({ err }, "supervisor: the store's lease could not be renewed; retried");
      return;
    }
    if (ours || this.leaseLost) return;
    this.leaseLost = true;
    clearInterval(this.leaseTimer);
    this.leaseTimer = undefined;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.logger.error(
      { database: this.store.description },
      "ALARM: supervisor: another supervisor process took the store's lease; this one stopped following the labs (restart it once the other has stopped)",
    );
  }

  /** refuses a write once the lease was taken over */
  private mayWrite(): void {
    if (this.leaseLost)
      throw new LabtraceError('E_CONFLICT', "another supervisor process holds the supervisor's store: only one supervisor may write a store");
  }

  /** One round over every lab: follow the log, and run the deeper checks of the labs whose tier says they are due. */
  runRound(force = false): Promise<void> {
    this.round = this.round.then(async () => {
      if (this.leaseLost) return;
      for (const follower of this.followers.values()) await this.visit(follower, force);
    });
    return this.round;
  }

  /** The standing of one lab now. */
  async standing(lab: string): Promise<Standing> {
    return standingOf(await this.store.findings(lab), this.now());
  }

  private schedule(delay: number): void {
    if (this.server === undefined || this.leaseLost) return;
    this.timer = setTimeout(() => {
      this.runRound().then(
        () => this.schedule(this.options.followEveryMs),
        (err: unknown) => {
          this.logger.error({ err }, 'supervisor: a round failed');
          this.schedule(this.options.followEveryMs);
        },
      );
    }, delay);
  }

  private async visit(follower: LabFollower, force: boolean): Promise<void> {
    const lab = follower.lab.id;
    const now = this.now();
    try {
      const followed = await follower.follow(now);
      const last = (await this.store.cursor(lab)).lastDeepCheck;
      const due = last === null || now - last >= (await this.standing(lab)).checkEveryMs;
      if (force || due || followed.conflict) {
        await follower.pullRecords(now);
        const added = await follower.check(now);
        await this.store.markDeepCheck(lab, now);
        if (added > 0) this.logger.warn({ lab, added, tier: (await this.standing(lab)).tier }, 'supervisor: new findings');
      }
      this.lastError.set(lab, null);
    } catch (err) {
      this.lastError.set(lab, (err as Error).message);
      this.logger.warn({ lab, err }, 'supervisor: following the lab failed; retried next round');
    }
  }

  private app(): express.Express {
    const app = express();
    app.disable('x-powered-by');
    app.use(securityHeaders());
    // the token first: a request without it has its body neither read nor parsed
    app.use('/api', (req: Request, res: Response, next: NextFunction) => {
      const who = this.caller(req.headers.authorization);
      if (who === undefined) return next(new LabtraceError('E_AUTH', 'the supervisor API needs its bearer token'));
      if ('supervisor' in who) return next();
      // a lab's standing token: its own standing, findings, checks and reports, and its responses; nothing else
      if (!standingAllows(who.lab, req.method, req.path))
        return next(new LabtraceError('E_FORBIDDEN', `lab ${who.lab}'s standing token reads its own standing and answers its findings only`));
      res.locals['standingLab'] = who.lab;
      next();
    });
    app.use('/api', express.json({ limit: '64kb' }));
    app.get('/api/rules', (_req, res) => {
      res.json({
        rules: RULES.map((r) => ({
          id: r.id,
          title: r.title,
          reference: r.reference,
          severity: r.severity,
          weight: SCORING.weights[r.severity],
          remedy: r.remedy,
        })),
        scoring: { ...SCORING, bands: SCORING.bands.map((b) => ({ ...b, below: Number.isFinite(b.below) ? b.below : null })) },
      });
    });
    app.get('/api/labs', async (_req, res) => {
      res.json({ labs: await Promise.all([...this.followers.values()].map((f) => this.labView(f.lab))) });
    });
    app.get('/api/labs/:lab', async (req, res) => {
      res.json(await this.labView(this.follower(req.params.lab).lab));
    });
    app.get('/api/labs/:lab/findings', async (req, res) => {
      const lab = this.follower(req.params.lab).lab.id;
      const rules = new Map(RULES.map((r) => [r.id, r]));
      res.json({
        findings: (await this.store.findings(lab)).map((f) => {
          const rule = rules.get(f.rule);
          // each cited entry's reason also in Chinese (`whyText`), beside the English recorded (`why`)
          const entries = f.evidence.entries.map((e) => ({ ...e, whyText: whyIn(e.why) }));
          return { ...f, evidence: { ...f.evidence, entries }, title: rule?.title, reference: rule?.reference, remedy: rule?.remedy };
        }),
      });
    });
    app.get('/api/labs/:lab/checks', async (req, res) => {
      res.json({ checks: await this.store.checkRuns(this.follower(req.params.lab).lab.id) });
    });
    // a check now, whatever the tier's schedule says (an inspector's request)
    app.post('/api/labs/:lab/check', async (req, res) => {
      const follower = this.follower(req.params.lab);
      this.mayWrite();
      this.round = this.round.then(() => this.visit(follower, true));
      await this.round;
      res.json({ ...(await this.labView(follower.lab)), checks: await this.store.checkRuns(follower.lab.id, 1) });
    });
    app.get('/api/key', (_req, res) => {
      const key = this.options.key;
      if (key === undefined) throw noKey();
      res.json({ name: key.name, keyId: toHex(key.keyId), algorithm: 'Ed25519', verifierKey: formatVerifierKey(key.name, key.publicKey) });
    });
    // the signed compliance report of a lab over a period: the JSON is the signed artefact, the PDF is printed from it
    app.get('/api/labs/:lab/reports', async (req, res) => {
      const { file, bytes } = await this.report(req);
      res
        .type('application/json')
        .set('content-disposition', `attachment; filename="${reportFileName(file.report, 'json')}"`)
        .send(Buffer.from(bytes));
    });
    app.get('/api/labs/:lab/reports.pdf', async (req, res) => {
      const { file, bytes } = await this.report(req);
      const pdf = await renderReportPdf(file, bytes);
      res
        .type('application/pdf')
        .set('content-disposition', `attachment; filename="${reportFileName(file.report, 'pdf')}"`)
        .send(Buffer.from(pdf));
    });
    app.post('/api/labs/:lab/findings/:id/response', async (req, res) => {
      await this.respond(req, res, 'response');
    });
    app.post('/api/labs/:lab/findings/:id/resolve', async (req, res) => {
      await this.respond(req, res, 'resolution');
    });
    const noRoute = (_req: Request, _res: Response, next: NextFunction): void => next(new LabtraceError('E_NOT_FOUND', 'no such route'));
    app.use('/api', noRoute);
    // the console (dashboard/supervisor.html and its assets): a page without data; everything it shows comes from the
    // API with the token the regulator gives it
    const consoleDir = this.options.consoleDir ?? DEFAULT_CONSOLE_DIR;
    if (existsSync(path.join(consoleDir, 'supervisor.html'))) app.use(dashboardFiles(consoleDir, 'supervisor.html'));
    app.use(noRoute);
    app.use(errorHandler(this.logger));
    return app;
  }

  /** The signed report a request asks for: the lab, then the query (each parameter named when it is refused), then the key. */
  private async report(req: Request): Promise<{ file: SignedReport; bytes: Uint8Array }> {
    const lab = this.follower(String(req.params['lab'])).lab;
    const query = parseReportQuery(req.query, this.now());
    const key = this.options.key;
    if (key === undefined) throw noKey();
    const bytes = signReport(key, await composeReport(this.store, lab, key, query));
    // the file as a verifier reads it: what is served is what verifies
    const check = checkSignedReport(bytes, [key]);
    if (!check.ok) throw new Error(`a compliance report failed its own check: ${check.problem}`);
    return { file: check.file, bytes };
  }

  private async respond(req: Request, res: Response, kind: 'response' | 'resolution'): Promise<void> {
    const lab = this.follower(String(req.params['lab'])).lab.id;
    const id = Number(req.params['id']);
    const body = parseWith(responseBody, req.body, 'body', 'E_BAD_REQUEST');
    this.mayWrite();
    // what a lab says through its standing token is marked as the lab's: it cannot speak as the supervisor's officer
    const author = res.locals['standingLab'] === undefined ? body.author : `lab ${lab}: ${body.author}`;
    if (!Number.isSafeInteger(id) || !(await this.store.respond(lab, id, { at: this.now(), author, kind, text: body.text })))
      throw new LabtraceError('E_NOT_FOUND', `finding ${String(req.params['id'])} of lab ${lab} is not known`);
    res.status(201).json({ finding: (await this.store.findings(lab)).find((f) => f.id === id), standing: await this.standing(lab) });
  }

  private async labView(lab: EnrolledLab): Promise<Record<string, unknown>> {
    const cursor = await this.store.cursor(lab.id);
    const findings = await this.store.findings(lab.id);
    const latest = await this.store.latestCheckpoint(lab.id);
    const witnesses = lab.witnesses.map((k) => k.split('+')[0] ?? k);
    return {
      id: lab.id,
      name: lab.name,
      url: lab.url,
      origin: lab.origin,
      ...standingOf(findings, this.now()),
      openFindings: findings.filter((f) => f.status === 'open').length,
      findings: findings.length,
      logSize: cursor.size,
      lastDeepCheck: cursor.lastDeepCheck,
      lastError: this.lastError.get(lab.id) ?? null,
      /** the latest checkpoint held: when its size was first seen, and when the lab last served it (the last follow) */
      checkpoint: latest === undefined ? null : { size: latest.size, firstSeenAt: latest.firstSeenAt, lastSeenAt: latest.lastSeenAt },
      /** the witnesses required on the lab's checkpoints, and those whose cosignature verified on the latest one */
      witnesses: {
        names: witnesses,
        required: lab.witnessesRequired,
        cosignedBy: latest === undefined ? [] : latest.cosignedBy.filter((n) => witnesses.includes(n)),
      },
    };
  }

  private follower(id: string): LabFollower {
    const f = this.followers.get(id);
    if (f === undefined) throw new LabtraceError('E_NOT_FOUND', `lab "${id}" is not enrolled`);
    return f;
  }

  /** Who holds the bearer token: the supervisor (its API token), an enrolled lab (its standing token), or nobody. */
  private caller(header: string | undefined): { supervisor: true } | { lab: string } | undefined {
    if (header === undefined || !header.startsWith('Bearer ')) return undefined;
    // compare digests, so that the time taken says nothing of the token; every lab's is compared, whichever matches
    const given = createHash('sha256').update(header.slice(7).trim()).digest();
    const same = (token: string) => timingSafeEqual(given, createHash('sha256').update(token).digest());
    let who: { supervisor: true } | { lab: string } | undefined = same(this.options.apiToken) ? { supervisor: true } : undefined;
    for (const lab of this.options.labs) if (lab.standingToken !== undefined && same(lab.standingToken) && who === undefined) who = { lab: lab.id };
    return who;
  }
}
