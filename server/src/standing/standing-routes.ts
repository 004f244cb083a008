// The lab's own standing with its supervisor (`supervision:` in server.yaml): the tier, findings, checks and signed
// reports, read from the supervisor's API with the lab's standing token; and the lab's reasoned response to a
// finding, sent to the supervisor and recorded in the lab's audit trail (which the transparency log anchors), so that
// it stands in both logs. The token is never logged nor shown.
import express from 'express';
import type { z } from 'zod';
import type { Kysely } from 'kysely';
import { LabtraceError } from '@labtrace/protocols';
import {
  api,
  type LabStanding,
  type StandingCheck,
  type StandingFinding,
  type StandingScoring,
  type standingReportQuery,
} from '@labtrace/protocols/api';
import type { AuditTrail } from '../audit/audit-trail.js';
import { principalOf, routeOf } from '../auth/policy.js';
import type { Logger } from '../log.js';
import { readSecretFile } from '../secret-env.js';
import type { Tables } from '../store/database.js';
import type { SupervisionConfig } from './config.js';

/** how long a call to the supervisor may take before the lab answers 502 */
const SUPERVISOR_TIMEOUT_MS = 15_000;

export interface StandingDeps {
  config: SupervisionConfig | undefined;
  env: NodeJS.ProcessEnv;
  db: Kysely<Tables>;
  audit: AuditTrail;
  logger: Logger;
}

/** The standing token from its variable, else its file; E_CONFIG naming the field when it is missing or short. */
export function standingTokenOf(config: SupervisionConfig, env: NodeJS.ProcessEnv): string {
  let token = config.tokenEnv === undefined ? undefined : env[config.tokenEnv];
  let field = 'tokenEnv';
  if ((token === undefined || token === '') && config.tokenFile !== undefined) {
    field = 'tokenFile';
    token = readSecretFile(config.tokenFile, 'supervision.tokenFile');
  }
  if (token === undefined || token === '')
    throw new LabtraceError('E_CONFIG', `supervision.tokenEnv: ${config.tokenEnv ?? ''} is not set and no tokenFile is given`);
  if (token.length < 32) throw new LabtraceError('E_CONFIG', `supervision.${field}: the standing token must have at least 32 characters`);
  return token;
}

/** The supervisor's API as the lab's standing token reaches it. */
class SupervisorClient {
  constructor(
    private readonly url: string,
    readonly lab: string,
    private readonly token: string,
  ) {}

  /** a call answered 2xx, or the coded error a user of the lab's API is given */
  async call(path: string, init: { method?: string; body?: unknown } = {}): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, {
        method: init.method ?? 'GET',
        headers: { authorization: `Bearer ${this.token}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
        signal: AbortSignal.timeout(SUPERVISOR_TIMEOUT_MS),
        redirect: 'error',
      });
    } catch (err) {
      throw new LabtraceError('E_SUPERVISOR_UNAVAILABLE', `the supervisor at ${this.url} cannot be reached: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (res.ok) return res;
    const said = await res.json().then(
      (b: unknown) =>
        typeof b === 'object' && b !== null && typeof (b as { error?: unknown }).error === 'string' ? (b as { error: string }).error : '',
      () => '',
    );
    const what = `the supervisor answered HTTP ${res.status}${said === '' ? '' : `: ${said}`}`;
    if (res.status === 400) throw new LabtraceError('E_BAD_REQUEST', said === '' ? what : said);
    if (res.status === 404) throw new LabtraceError('E_NOT_FOUND', what);
    if (res.status === 409) throw new LabtraceError('E_CONFLICT', what);
    if (res.status === 401 || res.status === 403)
      throw new LabtraceError('E_SUPERVISOR_UNAVAILABLE', `the supervisor refused the lab's standing token (supervision.lab ${this.lab}): ${what}`);
    throw new LabtraceError('E_SUPERVISOR_UNAVAILABLE', what);
  }

  async json<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
    const res = await this.call(path, init);
    try {
      return (await res.json()) as T;
    } catch (err) {
      throw new LabtraceError('E_SUPERVISOR_UNAVAILABLE', `the supervisor's answer to ${path} is not JSON`, { cause: err });
    }
  }
}

interface SupervisorLab {
  tier: 'A' | 'B' | 'C' | 'D';
  score: number;
  counted: Record<string, number>;
  checkEveryMs: number;
  lastDeepCheck: number | null;
}

/** a finding as the lab shows it: the rule's words, the status and the responses; the evidence stays at the supervisor */
function findingView(f: StandingFinding): StandingFinding {
  return {
    id: f.id,
    rule: f.rule,
    ...(f.title === undefined ? {} : { title: f.title }),
    ...(f.reference === undefined ? {} : { reference: f.reference }),
    ...(f.remedy === undefined ? {} : { remedy: f.remedy }),
    severity: f.severity,
    at: f.at,
    detectedAt: f.detectedAt,
    summary: f.summary,
    status: f.status,
    responses: f.responses,
  };
}

export function standingRoutes(deps: StandingDeps): express.Router {
  const router = express.Router();
  const config = deps.config;
  const client = config === undefined ? undefined : new SupervisorClient(config.url, config.lab, standingTokenOf(config, deps.env));
  const notConfigured = () => new LabtraceError('E_NOT_FOUND', 'this lab has no supervisor configured (supervision: in server.yaml)');
  const labPath = (lab: string) => `/api/labs/${encodeURIComponent(lab)}`;

  routeOf(router, api.getStanding, async (_req, res) => {
    if (client === undefined || config === undefined) {
      res.json({ configured: false } satisfies LabStanding);
      return;
    }
    const base = labPath(client.lab);
    const [lab, findings, checks, rules] = await Promise.all([
      client.json<SupervisorLab>(base),
      client.json<{ findings: StandingFinding[] }>(`${base}/findings`),
      client.json<{ checks: StandingCheck[] }>(`${base}/checks`),
      client.json<{ scoring: StandingScoring }>('/api/rules'),
    ]);
    const view: LabStanding = {
      configured: true,
      lab: client.lab,
      supervisor: config.url,
      tier: lab.tier,
      score: lab.score,
      counted: lab.counted,
      checkEveryMs: lab.checkEveryMs,
      lastDeepCheck: lab.lastDeepCheck,
      scoring: rules.scoring,
      findings: findings.findings.map(findingView),
      checks: checks.checks.slice(0, 50),
    };
    res.json(view);
  });

  /** the supervisor's report, as the contract parsed its query (the supervisor checks the period itself) */
  const report = async (kind: 'report' | 'report.pdf', query: z.output<typeof standingReportQuery>, res: express.Response) => {
    if (client === undefined) throw notConfigured();
    const q = new URLSearchParams({ from: query.from, to: query.to, lang: query.lang });
    const answer = await client.call(`${labPath(client.lab)}/${kind === 'report' ? 'reports' : 'reports.pdf'}?${q.toString()}`);
    res
      .type(kind === 'report' ? 'application/json' : 'application/pdf')
      .set(
        'content-disposition',
        answer.headers.get('content-disposition') ?? `attachment; filename="compliance-${client.lab}.${kind === 'report' ? 'json' : 'pdf'}"`,
      )
      .send(Buffer.from(await answer.arrayBuffer()));
  };
  routeOf(router, api.standingReport, (_req, res, { query }) => report('report', query, res));
  routeOf(router, api.standingReportPdf, (_req, res, { query }) => report('report.pdf', query, res));

  routeOf(router, api.respondToFinding, async (req, res, { params, body }) => {
    if (client === undefined || config === undefined) throw notConfigured();
    const principal = principalOf(req);
    if (principal === undefined) throw new LabtraceError('E_AUTH', 'sign in first');
    const actor = { username: principal.username, role: principal.role };
    const answer = await client.json<{ finding: StandingFinding }>(`${labPath(client.lab)}/findings/${params.id}/response`, {
      method: 'POST',
      body: { author: principal.username, text: body.text },
    });
    const finding = findingView(answer.finding);
    // the supervisor holds the response; the lab's own trail records it too (and the log anchors the trail)
    const entry = await deps.db.transaction().execute((trx) =>
      deps.audit.recordIn(trx, actor, {
        action: 'create',
        recordType: 'supervision-response',
        recordId: `${client.lab}/${params.id}`,
        newValue: { supervisor: config.url, lab: client.lab, finding: params.id, rule: finding.rule, severity: finding.severity, text: body.text },
      }),
    );
    deps.logger.info({ lab: client.lab, finding: params.id, auditEntry: entry.id }, 'standing: a response to a finding sent and recorded');
    res.status(201).json({ finding, auditEntry: entry.id });
  });

  return router;
}
