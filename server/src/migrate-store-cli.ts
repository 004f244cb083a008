// `labtrace server migrate-store --from sqlite:<file> --to postgres://...`: the copy of a SQLite lab into PostgreSQL
// (store/migrate-store.ts), its checks printed per table and for the log. Exit 0: copied (or, with --verify-only,
// found equal) and verified; 1: the copy does not verify or the store fails; 2: a wrong option; 3: refused (the
// source is not at the latest schema, or the target already holds lab data).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { LabtraceError, parseSignerKey, parseVerifierKey, type VerifierKey } from '@labtrace/protocols';
import { useNodeCrypto } from '@labtrace/protocols/node';
import { serverMigrations } from './migrations.js';
import { migrateStore } from './store/database.js';
import { openStore, parseDatabaseUrl, type OpenedStore, type StoreTarget } from './store/dialect.js';
import {
  checkSourceSchema,
  copySqliteToPostgres,
  CopyMismatch,
  CopyRefused,
  verifyStoreCopy,
  type VerificationReport,
} from './store/migrate-store.js';

export const migrateStoreUsage = `       labtrace server migrate-store --from sqlite:<file> --to postgres://<user>@<host>:<port>/<database>
                                     [--password-file <file>] [--log-key <verifier key> | --log-key-file <file>] [--verify-only]
                                         copies a SQLite lab (its server stopped) into an empty PostgreSQL store, brought to the
                                         latest schema first, in one transaction that commits only if the copy verifies: every
                                         table's rows, and the transparency log against the lab's latest signed checkpoint (by
                                         the log key: default the log.key beside the SQLite file). --verify-only checks an earlier
                                         copy again. Exit 0 verified, 1 not verified, 2 a wrong option, 3 refused`;

const PREFIX = 'labtrace server migrate-store';

class Usage extends LabtraceError {
  constructor(message: string) {
    super('E_CONFIG', message);
  }
}

/** The log key from a verifier key, or a file holding one or the server's log.key (whose public half is used). */
function readLogKey(text: string, field: string): VerifierKey {
  try {
    const key = text.startsWith('PRIVATE+KEY+') ? parseSignerKey(text) : parseVerifierKey(text);
    return { name: key.name, keyId: key.keyId, publicKey: key.publicKey };
  } catch (err) {
    throw new Usage(`${field}: not a log key (${(err as Error).message.replace(/PRIVATE\+KEY\+\S*/g, 'PRIVATE+KEY+...')})`);
  }
}

interface Options {
  from: Extract<StoreTarget, { dialect: 'sqlite' }>;
  to: StoreTarget;
  passwordFile: string | undefined;
  passwordFileField: string;
  logKey: VerifierKey;
  verifyOnly: boolean;
}

function parseOptions(argv: string[]): Options {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        from: { type: 'string' },
        to: { type: 'string' },
        'password-file': { type: 'string' },
        'log-key': { type: 'string' },
        'log-key-file': { type: 'string' },
        'verify-only': { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (err) {
    throw new Usage((err as Error).message);
  }
  const cwd = process.cwd();
  if (values.from === undefined) throw new Usage('--from: missing (expected sqlite:<file>, the lab to copy)');
  const from = parseDatabaseUrl(values.from, '--from', cwd);
  if (from.dialect !== 'sqlite') throw new Usage('--from: expected sqlite:<file> (the copy goes from SQLite to PostgreSQL)');
  if (!existsSync(from.file)) throw new Usage(`--from: ${from.file}: file not found`);
  if (values.to === undefined) throw new Usage('--to: missing (expected postgres://<user>@<host>:<port>/<database>)');
  const to = parseDatabaseUrl(values.to, '--to', cwd);
  if (to.dialect !== 'postgres') throw new Usage('--to: expected postgres://<user>@<host>:<port>/<database> (the copy goes into PostgreSQL)');
  let passwordFile = values['password-file'];
  let passwordFileField = '--password-file';
  if (passwordFile === undefined) {
    passwordFile = process.env['LABTRACE_DATABASE_PASSWORD_FILE'] || undefined;
    passwordFileField = 'LABTRACE_DATABASE_PASSWORD_FILE';
  }
  let logKey: VerifierKey;
  if (values['log-key'] !== undefined && values['log-key-file'] !== undefined) throw new Usage('--log-key: give the key or its file, not both');
  if (values['log-key'] !== undefined) logKey = readLogKey(values['log-key'].trim(), '--log-key');
  else {
    const file = values['log-key-file'] ?? path.join(path.dirname(from.file), 'log.key');
    if (values['log-key-file'] === undefined && !existsSync(file))
      throw new Usage(
        `--log-key: no log.key beside ${from.file}: give the lab's log key (--log-key <verifier key>, as GET /api/log/keys shows it, or --log-key-file <file>)`,
      );
    let text: string;
    try {
      text = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new Usage(`--log-key-file: ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message}`);
    }
    logKey = readLogKey(text, values['log-key-file'] === undefined ? `--log-key (the log.key beside ${from.file})` : '--log-key-file');
  }
  return { from, to, passwordFile, passwordFileField, logKey, verifyOnly: values['verify-only'] === true };
}

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

function printReport(report: VerificationReport): void {
  const width = Math.max(...report.tables.map((t) => t.table.length), 5);
  out(`${'table'.padEnd(width)}  ${'SQLite rows'.padStart(12)}  ${'PostgreSQL rows'.padStart(15)}  digest`);
  for (const t of report.tables)
    out(
      `${t.table.padEnd(width)}  ${String(t.sourceRows).padStart(12)}  ${String(t.targetRows).padStart(15)}  ${t.match ? 'match' : 'MISMATCH'} ${t.targetDigest}${t.match ? '' : ` (SQLite ${t.sourceDigest})`}`,
    );
  const { log } = report;
  const cp = log.checkpoint;
  out(
    `transparency log: ${log.size} entries, root ${log.root}; ${cp === null ? 'no verified checkpoint' : `checkpoint of ${cp.origin} at size ${cp.size}, root ${cp.root}`}: ${log.problems.length === 0 ? `root at the checkpoint matches, consistency proof ${cp?.size ?? 0} -> ${log.size} verifies, the ${log.checkpoints} stored checkpoints agree` : 'FAILED'}`,
  );
  for (const p of report.problems) process.stderr.write(`MISMATCH: ${p}\n`);
  const rows = report.tables.reduce((n, t) => n + t.targetRows, 0);
  out(
    report.ok
      ? `verified: ${report.tables.length} tables, ${rows} rows equal; the copied log is the lab's log`
      : `NOT VERIFIED: ${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}`,
  );
}

export async function migrateStoreCommand(argv: string[]): Promise<number> {
  let options: Options;
  let target: OpenedStore;
  try {
    options = parseOptions(argv);
    target = openStore(options.to, {
      passwordFile: options.passwordFile,
      passwordFileField: options.passwordFileField,
      poolSize: 2,
      bigintAsText: true,
    });
  } catch (err) {
    if (!(err instanceof LabtraceError) || !err.code.startsWith('E_CONFIG')) throw err;
    process.stderr.write(`${PREFIX}: ${err.code}: ${err.message}\n`);
    return 2;
  }
  useNodeCrypto();
  let source: Database.Database | undefined;
  try {
    // read-only: the copy changes nothing in the lab it copies
    source = new Database(options.from.file, { readonly: true, fileMustExist: true });
    checkSourceSchema(source, serverMigrations);
    if (options.verifyOnly) {
      const report = await verifyStoreCopy(source, target.db, { logKey: options.logKey });
      printReport(report);
      return report.ok ? 0 : 1;
    }
    // the copy carries the store's own per-sample index; batches outside it (kept by the index worker in its own
    // file, or a backlog not indexed yet) would have no samples on PostgreSQL, which does not index them again
    const unindexed = source.prepare('SELECT COUNT(*) FROM batch_headers WHERE indexed = 0').pluck().get() as number;
    if (unindexed > 0)
      throw new CopyRefused(
        `${unindexed} stored batches are not in the store's per-sample index (store.indexWorker keeps it in a file of its own, or the server stopped before indexing them): start the server with store.indexWorker off (it indexes them after its start), stop it, and copy again: this command says how many are left`,
      );
    const applied = await migrateStore(target.db, serverMigrations);
    process.stderr.write(
      `${target.description}: ${applied.length === 0 ? 'at the latest schema' : `${applied.length} migrations applied`}; copying sqlite:${options.from.file}\n`,
    );
    const started = Date.now();
    const copy = await copySqliteToPostgres(source, target.db, {
      logKey: options.logKey,
      migrations: serverMigrations,
      onTable: (table, rows) => process.stderr.write(`copied ${table}: ${rows} rows\n`),
    });
    printReport(copy.verification);
    const rows = copy.tables.reduce((n, t) => n + t.rows, 0);
    const seconds = (ms: number): string => (ms / 1000).toFixed(1);
    out(
      `copied ${copy.tables.length} tables, ${rows} rows, in ${seconds(Date.now() - started)} s (copy ${seconds(copy.timings.copyMs)} s, verification ${seconds(copy.timings.verifyMs)} s), and committed`,
    );
    const sequences = Object.entries(copy.sequences);
    if (sequences.length > 0) out(`next ids: ${sequences.map(([column, next]) => `${column} ${next}`).join(', ')}`);
    return 0;
  } catch (err) {
    if (err instanceof CopyMismatch) {
      printReport(err.report);
      process.stderr.write(`${PREFIX}: the copy does not verify; it was rolled back and the PostgreSQL store is empty again\n`);
      return 1;
    }
    if (err instanceof CopyRefused) {
      process.stderr.write(`${PREFIX}: refused: ${err.message}\n`);
      return 3;
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(
      `${PREFIX}: failed: ${message}\n${options.verifyOnly ? '' : 'Nothing of the copy was committed (one transaction): fix the cause and run the same command again.\n'}`,
    );
    return 1;
  } finally {
    source?.close();
    await target.close();
  }
}
