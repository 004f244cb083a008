// The retention job: on a schedule (retention.everyHours), or once from the command line (`labtrace server retention`),
// removes what the configured retention lets go (retention/config.ts): the records' bytes of the signed batches that
// arrived more than rawBatchesDays ago, and the samples of the per-sample index of those that arrived more than
// sampleIndexDays ago (a batch whose records go loses its samples too). A removed batch keeps its header, signature,
// log index and leaf hashes (store/batch-retention.ts): the log and its proofs are untouched, and the batch's signed
// root still checks.
//
// Each removal is one transaction (at most BATCHES_PER_STEP batches, RECORDS_PER_STEP records) that also appends one
// entry of kind `retention` to the transparency log, naming the policy, what was removed per gateway (batches, records,
// sequence range) and a digest of the removed batches' header hashes, and one entry to the audit trail (action
// `delete`, record type `retention`). On PostgreSQL, nodes running the job at once take turns under an advisory lock.
import { canonicalBytes, LabtraceError, sha256, toBase64 } from '@labtrace/protocols';
import { sql, type Kysely, type Transaction } from 'kysely';
import { SYSTEM_ACTOR, type Actor, type AuditTrail } from '../audit/audit-trail.js';
import type { Logger } from '../log.js';
import { TransparencyLog } from '../log/transparency-log.js';
import {
  expiredBatches,
  expiredSummary,
  rangesOf,
  removeIndex,
  removeRecords,
  type ExpiredBatch,
  type GatewayRange,
} from '../store/batch-retention.js';
import { dialectOf } from '../store/portable-ddl.js';
import type { Tables } from '../store/tables.js';
import { ACCREDITATION_MINIMUM_DAYS, type RetentionConfig } from './config.js';

const DAY_MS = 86_400_000;
/** batches removed per transaction (and per log entry) at most */
export const BATCHES_PER_STEP = 500;
/** records hashed per transaction at most (the step's last batch may pass it): one step stays short */
const RECORDS_PER_STEP = 200_000;
/** the advisory lock (two-key form) under which a PostgreSQL node removes ('ltre') */
const RETENTION_LOCK = [0x6c74_7265, 1] as const;
/** what a retention entry of the log says it is */
export const RETENTION_ENTRY_TYPE = 'labtrace-retention';

/** Where the job appends its entries: the server's synchronous log on SQLite, or the log store (either engine). */
export type RetentionLog =
  TransparencyLog | { append(trx: Transaction<Tables>, kind: 'retention', entries: readonly Uint8Array[], at: number): Promise<number> };

/** What one part of the policy removed (or, in a dry run, would remove). */
export interface RetentionPart {
  /** the policy's days; null: kept for ever */
  days: number | null;
  /** batches that arrived before this time (ms) are expired; null: kept for ever */
  receivedBefore: number | null;
  batches: number;
  records: number;
  gateways: GatewayRange[];
  /** expired batches kept because a run still needs them (open, or completed without a certificate) */
  held: number;
}

export interface RetentionReport {
  dryRun: boolean;
  at: number;
  /** the records' bytes of signed batches */
  rawBatches: RetentionPart;
  /** samples of the per-sample index (with those of the batches whose records went) */
  sampleIndex: RetentionPart;
  /** the log entries appended (one per step), and the audit entries with them */
  logEntries: number[];
}

/** The entry of kind `retention` that a removal appends to the log (its canonical JSON). */
export interface RetentionEntry {
  type: typeof RETENTION_ENTRY_TYPE;
  at: number;
  policy: { rawBatchesDays: number | null; sampleIndexDays: number | null; minimumDays: number };
  rawBatches: { receivedBefore: number | null; batches: number; records: number; gateways: GatewayRange[]; headers: string };
  sampleIndex: { receivedBefore: number | null; batches: number; samples: number; gateways: GatewayRange[] };
}

export interface RetentionOptions {
  db: Kysely<Tables>;
  /** the log, once it is open (the server opens it after building its parts) */
  log: () => RetentionLog;
  audit: AuditTrail;
  config: RetentionConfig;
  logger: Logger;
  /** injectable for tests */
  clock?: () => number;
  /** who removes: the system (the schedule) or the command line */
  actor?: Actor;
}

/** How the scheduled job has gone since the server started (metrics, health): a failure is an alarm an operator sees. */
export interface RetentionStatus {
  /** whether a policy removes anything (else the job never runs) */
  enabled: boolean;
  /** scheduled runs that failed since the start */
  failures: number;
  /** the end of the last scheduled run that removed what was due (ms), or null */
  lastSuccessAt: number | null;
  /** the end of the last scheduled run that failed (ms), or null */
  lastFailureAt: number | null;
  /** the last failure's message, until a run succeeds */
  lastError: string | null;
}

export class Retention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private readonly clock: () => number;
  private readonly state: Omit<RetentionStatus, 'enabled'> = { failures: 0, lastSuccessAt: null, lastFailureAt: null, lastError: null };

  constructor(private readonly options: RetentionOptions) {
    this.clock = options.clock ?? Date.now;
  }

  /** whether the policy removes anything at all (without a value nothing is ever removed) */
  get enabled(): boolean {
    return this.options.config.rawBatchesDays !== undefined || this.options.config.sampleIndexDays !== undefined;
  }

  status(): RetentionStatus {
    return { enabled: this.enabled, ...this.state };
  }

  /** One scheduled run, its outcome kept for status(). */
  runScheduled(): Promise<void> {
    return this.run({ apply: true }).then(
      () => {
        this.state.lastSuccessAt = this.clock();
        this.state.lastError = null;
      },
      (err: unknown) => {
        const message = (err as Error).message;
        this.state.failures++;
        this.state.lastFailureAt = this.clock();
        this.state.lastError = message;
        this.options.logger.error({ task: 'retention', err: message }, 'ALARM: retention failed: expired records were not removed');
      },
    );
  }

  /** Runs the job every `everyHours`, the first time a minute after start (nothing runs without a policy). */
  start(): Promise<void> {
    if (!this.enabled || this.timer !== undefined) return Promise.resolve();
    const every = this.options.config.everyHours * 3_600_000;
    const tick = (): void => {
      if (this.running !== undefined) return;
      this.running = this.runScheduled().finally(() => (this.running = undefined));
    };
    this.timer = setTimeout(() => {
      tick();
      this.timer = setInterval(tick, every);
    }, 60_000);
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** The cut-off times of the policy now: batches that arrived before them are expired. */
  private cutoffs(now: number): { records: number | null; index: number | null } {
    const { rawBatchesDays, sampleIndexDays } = this.options.config;
    for (const [field, days] of [
      ['rawBatchesDays', rawBatchesDays],
      ['sampleIndexDays', sampleIndexDays],
    ] as const)
      // the config refuses these already; a policy built in code is held to the same floor
      if (days !== undefined && !(days >= ACCREDITATION_MINIMUM_DAYS))
        throw new LabtraceError(
          'E_CONFIG',
          `retention.${field}: ${days} days is below the accreditation minimum of ${ACCREDITATION_MINIMUM_DAYS} days`,
        );
    const records = rawBatchesDays === undefined ? null : now - rawBatchesDays * DAY_MS;
    const own = sampleIndexDays === undefined ? null : now - sampleIndexDays * DAY_MS;
    // a batch whose records go takes its samples with it: the index keeps at most what the raw batches keep
    const index = records === null ? own : own === null ? records : Math.max(own, records);
    return { records, index };
  }

  /**
   * Removes what is expired now (`apply`), or reports what would be removed and changes nothing (a dry run). Steps
   * run until nothing expired is left; each commits with its log and audit entries.
   */
  async run({ apply }: { apply: boolean }): Promise<RetentionReport> {
    const at = this.clock();
    const cut = this.cutoffs(at);
    const { rawBatchesDays, sampleIndexDays } = this.options.config;
    const part = (days: number | undefined, before: number | null): RetentionPart => ({
      days: days ?? null,
      receivedBefore: before,
      batches: 0,
      records: 0,
      gateways: [],
      held: 0,
    });
    const report: RetentionReport = {
      dryRun: !apply,
      at,
      rawBatches: part(rawBatchesDays, cut.records),
      sampleIndex: part(sampleIndexDays, cut.index),
      logEntries: [],
    };
    const db = this.options.db;
    // what a run holds back, and in a dry run what would go
    if (cut.records !== null) {
      const s = await expiredSummary(db, 'records', cut.records);
      report.rawBatches.held = s.held;
      if (!apply) Object.assign(report.rawBatches, totals(s.gateways));
    }
    if (cut.index !== null) {
      const s = await expiredSummary(db, 'index', cut.index);
      report.sampleIndex.held = s.held;
      if (!apply) Object.assign(report.sampleIndex, totals(s.gateways));
    }
    if (!apply) return report;
    const raw: GatewayRange[] = [];
    const index: GatewayRange[] = [];
    for (;;) {
      const step = await db.transaction().execute((trx) => this.step(trx, cut, at));
      if (step === undefined) break;
      report.logEntries.push(step.logIndex);
      raw.push(...step.entry.rawBatches.gateways);
      index.push(...step.entry.sampleIndex.gateways);
      report.rawBatches.batches += step.entry.rawBatches.batches;
      report.rawBatches.records += step.entry.rawBatches.records;
      report.sampleIndex.batches += step.entry.sampleIndex.batches;
      report.sampleIndex.records += step.entry.sampleIndex.samples;
      // the event loop gets a turn between steps (ingest and requests go on)
      await new Promise((resolve) => setImmediate(resolve));
    }
    report.rawBatches.gateways = merged(raw);
    report.sampleIndex.gateways = merged(index);
    if (report.logEntries.length > 0)
      this.options.logger.info(
        {
          task: 'retention',
          rawBatches: report.rawBatches.batches,
          records: report.rawBatches.records,
          indexBatches: report.sampleIndex.batches,
          samples: report.sampleIndex.records,
          logEntries: report.logEntries,
        },
        'retention removed expired records',
      );
    return report;
  }

  /**
   * One step in the caller's transaction: the oldest expired batches, their records and samples removed, one log
   * entry and one audit entry; undefined when nothing expired is left. On SQLite its body awaits only its own queries,
   * so that the synchronous writers of the same connection cannot land inside it (store/sqlite-transactions test).
   */
  private async step(
    trx: Transaction<Tables>,
    cut: { records: number | null; index: number | null },
    at: number,
  ): Promise<{ logIndex: number; entry: RetentionEntry } | undefined> {
    if (dialectOf(trx as unknown as Kysely<unknown>) === 'postgres')
      await sql`SELECT pg_advisory_xact_lock(${RETENTION_LOCK[0]}, ${RETENTION_LOCK[1]})`.execute(trx);
    const records = cut.records === null ? [] : limitRecords(await expiredBatches(trx, 'records', cut.records, BATCHES_PER_STEP));
    // the samples of the batches whose records go, and of those past the index's own retention
    const indexOnly = cut.index === null || records.length > 0 ? [] : await expiredBatches(trx, 'index', cut.index, BATCHES_PER_STEP);
    const fromIndex = [...records.filter((b) => !b.indexRemoved), ...indexOnly];
    if (records.length === 0 && fromIndex.length === 0) return undefined;
    const removedRecords = await removeRecords(trx, records, at);
    const removedSamples = await removeIndex(trx, fromIndex, at);
    const { rawBatchesDays, sampleIndexDays } = this.options.config;
    const entry: RetentionEntry = {
      type: RETENTION_ENTRY_TYPE,
      at,
      policy: { rawBatchesDays: rawBatchesDays ?? null, sampleIndexDays: sampleIndexDays ?? null, minimumDays: ACCREDITATION_MINIMUM_DAYS },
      rawBatches: {
        receivedBefore: cut.records,
        batches: records.length,
        records: removedRecords,
        gateways: rangesOf(records),
        headers: headersDigest(records),
      },
      sampleIndex: { receivedBefore: cut.index, batches: fromIndex.length, samples: removedSamples, gateways: rangesOf(fromIndex) },
    };
    const data = canonicalBytes(entry);
    const log = this.options.log();
    const logIndex = log instanceof TransparencyLog ? log.append('retention', [data], at) : await log.append(trx, 'retention', [data], at);
    await this.options.audit.recordIn(trx, this.options.actor ?? SYSTEM_ACTOR, {
      action: 'delete',
      recordType: 'retention',
      recordId: `log-${logIndex}`,
      oldValue: entry,
      reason: policyText(rawBatchesDays, sampleIndexDays),
    });
    return { logIndex, entry };
  }
}

/** the batches of one step: at most RECORDS_PER_STEP records (at least one batch) */
function limitRecords(batches: ExpiredBatch[]): ExpiredBatch[] {
  let records = 0;
  let n = 0;
  for (const b of batches) {
    if (n > 0 && records + b.count > RECORDS_PER_STEP) break;
    records += b.count;
    n++;
  }
  return batches.slice(0, n);
}

/** SHA-256 (base64) of the removed batches' header hashes, each as its line `gateway batch hash`, in that order */
function headersDigest(batches: readonly ExpiredBatch[]): string {
  const lines = [...batches]
    .sort((a, b) => (a.gateway < b.gateway ? -1 : a.gateway > b.gateway ? 1 : a.batch - b.batch))
    .map((b) => `${b.gateway} ${b.batch} ${b.hash ?? ''}\n`)
    .join('');
  return toBase64(sha256(new TextEncoder().encode(lines)));
}

function totals(gateways: GatewayRange[]): Pick<RetentionPart, 'batches' | 'records' | 'gateways'> {
  return { batches: gateways.reduce((n, g) => n + g.batches, 0), records: gateways.reduce((n, g) => n + g.records, 0), gateways };
}

/** the ranges of several steps, one per gateway */
function merged(ranges: readonly GatewayRange[]): GatewayRange[] {
  const by = new Map<string, GatewayRange>();
  for (const r of ranges) {
    const g = by.get(r.gateway);
    if (g === undefined) by.set(r.gateway, { ...r });
    else
      Object.assign(g, {
        batches: g.batches + r.batches,
        records: g.records + r.records,
        firstSeq: Math.min(g.firstSeq, r.firstSeq),
        lastSeq: Math.max(g.lastSeq, r.lastSeq),
      });
  }
  return [...by.values()].sort((a, b) => (a.gateway < b.gateway ? -1 : a.gateway > b.gateway ? 1 : 0));
}

function policyText(rawBatchesDays: number | undefined, sampleIndexDays: number | undefined): string {
  const days = (d: number | undefined): string => (d === undefined ? 'for ever' : `${d} days`);
  return `retention policy: raw batches kept ${days(rawBatchesDays)}, per-sample index ${days(sampleIndexDays)} (accreditation minimum ${ACCREDITATION_MINIMUM_DAYS} days)`;
}
