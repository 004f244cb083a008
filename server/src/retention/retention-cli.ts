// `labtrace server retention --dry-run|--apply [--config <server.yaml>]`: the retention job once, from the command line,
// on the server's store (SQLite or PostgreSQL; the server may be running). A dry run reports what the configured
// retention would remove and changes nothing; --apply removes it, each step with its log entry and its audit entry
// (actor cli:<user>). Exit 0 on success, 2 when the arguments or the config are refused.
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { LabtraceError, parseSignerKey } from '@labtrace/protocols';
import { useNodeCrypto } from '@labtrace/protocols/node';
import { AuditTrail } from '../audit/audit-trail.js';
import { commandConfig, logKeyFileOf } from '../config.js';
import { createLogger } from '../log.js';
import { LogStore } from '../log/log-store.js';
import { serverMigrations } from '../migrations.js';
import { migrateStore } from '../store/database.js';
import { openStore, storeTargetOf } from '../store/dialect.js';
import { Retention, type RetentionPart, type RetentionReport } from './retention.js';

export const retentionUsage = `       labtrace server retention (--dry-run | --apply) [--config <server.yaml>]
                                         the retention job once (config retention): --dry-run reports what it would
                                         remove and changes nothing; --apply removes the expired records' bytes (their
                                         headers, signatures and leaf hashes stay) and index rows, with a log entry and
                                         an audit entry per step. Without a retention policy nothing is ever removed`;

export async function retentionCommand(
  argv: string[],
  out: (line: string) => void = (l) => void process.stdout.write(`${l}\n`),
  /** the time the policy is applied at (tests) */
  clock: () => number = Date.now,
): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { config: { type: 'string', short: 'c' }, 'dry-run': { type: 'boolean' }, apply: { type: 'boolean' } },
      strict: true,
    }));
  } catch (err) {
    throw new LabtraceError('E_CONFIG', `${(err as Error).message}\n${retentionUsage}`);
  }
  if (values['dry-run'] === values.apply) throw new LabtraceError('E_CONFIG', `retention: give either --dry-run or --apply\n${retentionUsage}`);
  const config = await commandConfig(values.config);
  useNodeCrypto();
  const origin = config.log.origin ?? `labtrace/${config.lab}`;
  const keyFile = logKeyFileOf(config);
  if (!existsSync(keyFile)) throw new LabtraceError('E_CONFIG', `log.keyFile: ${keyFile} does not exist: start the server once first`);
  const signer = parseSignerKey(readFileSync(keyFile, 'utf8').trim());
  const store = openStore(storeTargetOf(config.database, config.dataDir), { passwordFile: config.database.passwordFile, busyTimeoutMs: 30_000 });
  try {
    await migrateStore(store.db, serverMigrations);
    // the store's log, checked against this key and origin before anything is appended to it
    const log = new LogStore(store.db, { origin, signer });
    await log.open();
    const retention = new Retention({
      db: store.db,
      log: () => log,
      audit: new AuditTrail(store.db),
      config: config.retention,
      logger: createLogger('server', 'warn'),
      actor: { username: `cli:${process.env['USER'] ?? 'unknown'}`, role: 'system' },
      clock,
    });
    if (!retention.enabled) {
      out('retention: no policy configured (retention.rawBatchesDays, retention.sampleIndexDays): nothing is ever removed');
      return 0;
    }
    for (const line of reportLines(await retention.run({ apply: values.apply === true }))) out(line);
    return 0;
  } finally {
    await store.close();
  }
}

/** The report as lines for people. */
export function reportLines(report: RetentionReport): string[] {
  const verb = report.dryRun ? 'would remove' : 'removed';
  const part = (name: string, unit: string, p: RetentionPart): string[] =>
    p.receivedBefore === null
      ? [`${name}: kept for ever`]
      : [
          `${name}: kept ${p.days === null ? 'as long as the raw batches' : `${p.days} days`} (received before ${new Date(p.receivedBefore).toISOString()}): ${verb} ${p.batches} batches, ${p.records} ${unit}; ${p.held} expired batches held by open or uncertified runs`,
          ...p.gateways.map((g) => `  ${g.gateway}: ${g.batches} batches, ${g.records} ${unit}, sequence numbers ${g.firstSeq}..${g.lastSeq}`),
        ];
  return [
    ...part('raw batches', 'records', report.rawBatches),
    ...part('per-sample index', 'samples', report.sampleIndex),
    ...(report.dryRun
      ? ['dry run: nothing was changed']
      : [`log entries: ${report.logEntries.length === 0 ? 'none' : report.logEntries.join(', ')}`]),
  ];
}
