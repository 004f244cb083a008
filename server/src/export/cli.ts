// `labtrace export --out <dir> (--run <id> | --gateway <id> --from <ISO> --to <ISO>) [--config server.yaml]`: writes an export
// bundle (see bundle.ts) from the server's database, the one server.yaml's `database` names (LABTRACE_DATABASE_URL
// and LABTRACE_DATABASE_PASSWORD_FILE applied, as `labtrace server migrate` takes it): the data directory's SQLite
// file, opened directly as the admin commands do (the server may be running; SQLite WAL allows it), or PostgreSQL.
// The export reads the latest signed checkpoint and signs nothing but its statement.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { idSchema, LabtraceError, parseSignerKey, parseWith } from '@labtrace/protocols';
import { parseInstant } from '../api/time.js';
import { commandConfig, logKeyFileOf } from '../config.js';
import { LogStore } from '../log/log-store.js';
import { Progress, stopOnInterrupt, useNodeCrypto } from '@labtrace/protocols/node';
import { openStore, storeTargetOf } from '../store/dialect.js';
import { LabDatabase } from '../store/database.js';
import { serverMigrations } from '../migrations.js';
import { exportBundle } from './bundle.js';
import { runSelections } from './run-selection.js';

export const usage = `usage: labtrace export --out <dir> --gateway <id> --from <ISO 8601 time> --to <ISO 8601 time> [--config <server.yaml>]
       labtrace export --out <dir> --run <run id> [--config <server.yaml>]
  Writes an export bundle of the gateway's stored batches whose records meet the time range: the signed batches
  and their records, the readable records, the keys, the latest signed checkpoint and the log proofs.
  With --run: a bundle of the batches holding the run's sequence range at each of its gateways (in <dir>, or in
  <dir>/<gateway> when the run has several).
  The store is the one server.yaml's database section names (LABTRACE_DATABASE_URL overrides it): the data
  directory's SQLite file by default, or PostgreSQL (--run needs the SQLite store in this version).
  Check it with 'labtrace verify <dir>'.`;

export async function main(argv: string[]): Promise<{ stop(): Promise<void>; done: Promise<number> }> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        out: { type: 'string', short: 'o' },
        gateway: { type: 'string' },
        run: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    throw new LabtraceError('E_CONFIG', `${(err as Error).message}\n${usage}`);
  }
  if (values.out === undefined) throw new LabtraceError('E_CONFIG', `export needs --out\n${usage}`);
  let selection: { gateway: string; from: number; to: number } | { run: string };
  if (values.run !== undefined) {
    if (values.gateway !== undefined || values.from !== undefined || values.to !== undefined)
      throw new LabtraceError('E_CONFIG', `--run: not with --gateway, --from or --to (the run says what to export)\n${usage}`);
    selection = { run: parseWith(idSchema, values.run, '--run') };
  } else {
    if (values.gateway === undefined || values.from === undefined || values.to === undefined)
      throw new LabtraceError('E_CONFIG', `export needs --run, or --gateway, --from and --to\n${usage}`);
    const from = parseInstant(values.from);
    const to = parseInstant(values.to);
    if (typeof from === 'string') throw new LabtraceError('E_CONFIG', `--from: "${values.from}": ${from}`);
    if (typeof to === 'string') throw new LabtraceError('E_CONFIG', `--to: "${values.to}": ${to}`);
    selection = { gateway: parseWith(idSchema, values.gateway, '--gateway'), from, to };
  }
  const config = await commandConfig(values.config);
  useNodeCrypto();
  const origin = config.log.origin ?? `labtrace/${config.lab}`;
  const keyFile = logKeyFileOf(config);
  if (!existsSync(keyFile)) throw new LabtraceError('E_CONFIG', `log.keyFile: ${keyFile} does not exist (the server creates it at its first start)`);
  let signer;
  try {
    signer = parseSignerKey(readFileSync(keyFile, 'utf8').trim());
  } catch (err) {
    throw new LabtraceError('E_CONFIG', `log.keyFile: ${keyFile}: not a signer key (${(err as Error).message})`, { cause: err });
  }
  const target = storeTargetOf(config.database, config.dataDir);
  // SQLite: the file migrated as the admin commands do, and kept for the run selection (still on better-sqlite3);
  // PostgreSQL: migrated on purpose only (`labtrace server migrate`), never by an export
  const database = target.dialect === 'sqlite' ? new LabDatabase(config.dataDir, serverMigrations, target.file) : undefined;
  const store = database === undefined ? openStore(target, { passwordFile: config.database.passwordFile, poolSize: 2 }) : undefined;
  const db = database?.db ?? store?.db;
  if (db === undefined) throw new Error('export: no store opened');
  // Ctrl-C stops between two steps and says what was written
  const interrupt = stopOnInterrupt();
  const outDir = path.resolve(values.out);
  let shown: Progress | undefined;
  const progressOf = (what: string) => {
    const progress = new Progress(what, 'batches looked at');
    shown = progress;
    return {
      progress,
      options: {
        signal: interrupt.signal,
        progress: (p: { looked: number; total: number }) => progress.update(p.looked, p.total),
      },
    };
  };
  try {
    await database?.migrate();
    const log = new LogStore(db, { origin, signer });
    await log.open();
    if ('run' in selection) {
      const { state, selections } = await runSelections(db, selection.run);
      if (selections.length === 0) throw new LabtraceError('E_CONFIG', `--run: run "${selection.run}" has no stored records`);
      if (state === 'running') process.stderr.write(`run ${selection.run} is still running: the bundle holds what is stored so far\n`);
      for (const s of selections) {
        const dir = selections.length === 1 ? outDir : path.join(outDir, s.gateway);
        const { progress, options } = progressOf(`export of ${s.gateway}`);
        const { batches, records } = await exportBundle(db, log, { outDir: dir, gateway: s.gateway, from: s.from, to: s.to, ...options });
        progress.finish(`export of ${s.gateway}: ${records} records in ${batches} batches`);
        process.stdout.write(
          `exported run ${selection.run}: sequence ${s.firstSeq}..${s.lastSeq} of ${s.gateway}, in ${records} records of ${batches} batches, to ${dir}\n`,
        );
      }
    } else {
      const { gateway, from, to } = selection;
      const { progress, options } = progressOf(`export of ${gateway}`);
      const { batches, records } = await exportBundle(db, log, { outDir, gateway, from, to, ...options });
      progress.finish(`export of ${gateway}: ${records} records in ${batches} batches`);
      process.stdout.write(`exported ${records} records in ${batches} batches of ${gateway} to ${outDir}\n`);
    }
  } catch (err) {
    if (!interrupt.signal.aborted) throw err;
    // stopped by Ctrl-C: what was done, and that the bundle is not whole
    const looked = shown?.done ?? 0;
    process.stderr.write(
      `export stopped: ${looked} batches were looked at; the bundle in ${outDir} is incomplete and will not verify: delete it, or export again\n`,
    );
    return { stop: () => Promise.resolve(), done: Promise.resolve(130) };
  } finally {
    interrupt.release();
    await (database ?? store)?.close();
  }
  return { stop: () => Promise.resolve(), done: Promise.resolve(0) };
}
