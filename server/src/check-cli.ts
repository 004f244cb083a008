// `labtrace server check [--config <server.yaml>]`: what the server would find at start, found without starting it
// and without writing anything: the config, the key files, the store (reachable, its schema against this version's
// migrations), the transparency log (its latest checkpoint signed by the log key, of this lab's log, and the stored
// tree's root at its size), and the free space against the reserve. One line per check. Exit 0: nothing fails
// (warnings allowed); 1: a check fails; 2: the config itself does not load.
import { existsSync, readFileSync, statfsSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import {
  LabtraceError,
  bytesEqual,
  ed25519NoteVerifier,
  formatVerifierKey,
  openCheckpoint,
  parseCheckpoint,
  parseNote,
  parseSignerKey,
  toHex,
  type SignerKey,
} from '@labtrace/protocols';
import { useNodeCrypto } from '@labtrace/protocols/node';
import { type ServerConfig, commandConfig, logKeyFileOf } from './config.js';
import { LogStore } from './log/log-store.js';
import { serverMigrations } from './migrations.js';
import type { Tables } from './store/database.js';
import { describeTarget, openStore, storeTargetOf } from './store/dialect.js';

export const checkUsage = `       labtrace server check [--config <server.yaml>]
                                         checks what the server would find at start, without starting or writing: the
                                         config, the key files, the store and its schema, the transparency log (its latest
                                         checkpoint signed by the log key, the stored tree's root) and the free space.
                                         Exit 0 nothing fails, 1 a check fails, 2 the config does not load`;

type Outcome = 'ok' | 'warn' | 'fail';
export interface CheckLine {
  outcome: Outcome;
  what: string;
  detail: string;
}

/** Runs every check on a loaded config; never throws for what it finds (a failure is a line). */
export async function checkServer(config: ServerConfig): Promise<CheckLine[]> {
  const lines: CheckLine[] = [];
  const line = (outcome: Outcome, what: string, detail: string): void => {
    lines.push({ outcome, what, detail });
  };
  line('ok', 'config', `lab "${config.lab}", data directory ${config.dataDir}`);

  // the log key: the server creates it at the first start, and refuses one that others may read
  const origin = config.log.origin ?? `labtrace/${config.lab}`;
  const keyFile = logKeyFileOf(config);
  let signer: SignerKey | undefined;
  if (!existsSync(keyFile)) line('warn', 'log.keyFile', `${keyFile} does not exist: the server creates a new log key at start`);
  else if ((statSync(keyFile).mode & 0o077) !== 0) line('fail', 'log.keyFile', `${keyFile} lets others read the private key; chmod 600 it`);
  else
    try {
      signer = parseSignerKey(readFileSync(keyFile, 'utf8').trim());
      line('ok', 'log.keyFile', `${keyFile}: ${formatVerifierKey(signer.name, signer.publicKey)}`);
    } catch (err) {
      line('fail', 'log.keyFile', `${keyFile}: not a signer key (${(err as Error).message.replace(/PRIVATE\+KEY\+\S*/g, 'PRIVATE+KEY+...')})`);
    }
  const certFile = config.certificates.keyFile ?? path.join(config.dataDir, 'certificate.key');
  if (!existsSync(certFile)) line('warn', 'certificates.keyFile', `${certFile} does not exist: the server creates a new report-signing key at start`);
  else if ((statSync(certFile).mode & 0o077) !== 0)
    line('fail', 'certificates.keyFile', `${certFile} lets others read the private key; chmod 600 it`);
  else line('ok', 'certificates.keyFile', certFile);

  // the store
  const target = storeTargetOf(config.database, config.dataDir);
  let db: Kysely<Tables> | undefined;
  let close = (): Promise<void> => Promise.resolve();
  try {
    if (target.dialect === 'sqlite') {
      if (!existsSync(target.file)) {
        line('warn', 'store', `${target.file} does not exist: the server creates a new store at start`);
      } else {
        const sqlite = new Database(target.file, { readonly: true, fileMustExist: true });
        sqlite.pragma('busy_timeout = 10000');
        db = new Kysely<Tables>({ dialect: new SqliteDialect({ database: sqlite }) });
      }
    } else {
      const opened = openStore(target, { passwordFile: config.database.passwordFile, poolSize: 1 });
      db = opened.db;
    }
    if (db !== undefined) {
      const store = db;
      close = () => store.destroy();
      await sql`select 1`.execute(db);
      line('ok', 'store', `${describeTarget(target)} answers`);
      await checkSchema(db, line);
      await checkLog(db, origin, signer, line);
    }
  } catch (err) {
    line('fail', 'store', `${describeTarget(target)}: ${(err as Error).message}`);
  } finally {
    await close();
  }

  // free space where the store writes (SQLite: beside the file)
  if (target.dialect === 'sqlite') {
    const dir = existsSync(path.dirname(target.file)) ? path.dirname(target.file) : config.dataDir;
    try {
      const fs = statfsSync(existsSync(dir) ? dir : path.dirname(dir));
      const free = fs.bavail * fs.bsize;
      const reserve = config.store.reserveBytes;
      const mib = (n: number): string => `${(n / 1048576).toFixed(0)} MiB`;
      if (free < reserve)
        line('fail', 'free space', `${mib(free)} free beside the store, below the reserve of ${mib(reserve)}: the server would refuse batches`);
      else if (free < 4 * reserve) line('warn', 'free space', `${mib(free)} free beside the store, under four times the reserve (${mib(reserve)})`);
      else line('ok', 'free space', `${mib(free)} free beside the store (reserve ${mib(reserve)})`);
    } catch (err) {
      line('warn', 'free space', `not known: ${(err as Error).message}`);
    }
  }
  return lines;
}

async function checkSchema(db: Kysely<Tables>, line: (o: Outcome, what: string, detail: string) => void): Promise<void> {
  const known = Object.keys(serverMigrations).sort();
  let applied: string[] = [];
  try {
    const rows = await sql<{ name: string }>`SELECT name FROM kysely_migration ORDER BY name`.execute(db);
    applied = rows.rows.map((r) => r.name);
  } catch {
    line('warn', 'schema', 'the store holds no schema yet: the server migrates it at start');
    return;
  }
  const unknown = applied.filter((name) => !known.includes(name));
  const pending = known.filter((name) => !applied.includes(name));
  if (unknown.length > 0) line('fail', 'schema', `the store was migrated by a later labtrace (${unknown.join(', ')}): this version cannot run on it`);
  else if (pending.length > 0)
    line(
      'warn',
      'schema',
      `${pending.length} migrations to apply at start (${pending[0] ?? ''} .. ${pending.at(-1) ?? ''}); back the store up first`,
    );
  else line('ok', 'schema', `at the latest schema (${applied.at(-1) ?? 'none'})`);
}

async function checkLog(
  db: Kysely<Tables>,
  origin: string,
  signer: SignerKey | undefined,
  line: (o: Outcome, what: string, detail: string) => void,
): Promise<void> {
  let latest: { size: number; note: string } | undefined;
  try {
    latest = (
      await sql<{ size: number | string; note: string }>`SELECT size, note FROM log_checkpoints ORDER BY size DESC LIMIT 1`.execute(db)
    ).rows.map((r) => ({ size: Number(r.size), note: r.note }))[0];
  } catch {
    line('warn', 'transparency log', 'no log yet: the server starts one at start');
    return;
  }
  if (latest === undefined) {
    line('warn', 'transparency log', 'no signed checkpoint yet: the server signs one at start');
    return;
  }
  let checkpoint;
  try {
    checkpoint = parseCheckpoint(parseNote(latest.note).text);
  } catch (err) {
    line('fail', 'transparency log', `the latest checkpoint (size ${latest.size}) is malformed: ${(err as Error).message}`);
    return;
  }
  if (checkpoint.origin !== origin)
    line('fail', 'transparency log', `the store's log is "${checkpoint.origin}", the config's "${origin}" (lab or log.origin)`);
  if (signer === undefined) {
    line('fail', 'transparency log', `the store has a log of ${checkpoint.size} entries, and no log key to sign its next checkpoints (log.keyFile)`);
    return;
  }
  try {
    openCheckpoint(latest.note, [ed25519NoteVerifier(formatVerifierKey(signer.name, signer.publicKey))]);
  } catch (err) {
    line(
      'fail',
      'transparency log',
      `the latest checkpoint (size ${checkpoint.size}) is not signed by the configured log key: ${(err as Error).message}`,
    );
    return;
  }
  try {
    const log = new LogStore(db, { origin: checkpoint.origin, signer });
    const size = await log.size();
    const root = await log.root(checkpoint.size);
    if (!bytesEqual(root, checkpoint.rootHash))
      line(
        'fail',
        'transparency log',
        `the stored tree's root at size ${checkpoint.size} is ${toHex(root)}, the signed checkpoint says ${toHex(checkpoint.rootHash)}`,
      );
    else
      line(
        'ok',
        'transparency log',
        `"${checkpoint.origin}": ${size} entries; the latest checkpoint (size ${checkpoint.size}) is signed by the log key and matches the stored tree`,
      );
  } catch (err) {
    line('fail', 'transparency log', `the stored tree cannot be read: ${(err as Error).message}`);
  }
}

export async function checkCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } }, strict: true }));
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n${checkUsage}\n`);
    return 2;
  }
  let config: ServerConfig;
  try {
    config = await commandConfig(values.config);
  } catch (err) {
    process.stdout.write(`fail  config: ${err instanceof LabtraceError ? err.message : String(err)}\n`);
    return 2;
  }
  useNodeCrypto();
  const lines = await checkServer(config);
  for (const l of lines) process.stdout.write(`${l.outcome.padEnd(4)}  ${l.what}: ${l.detail}\n`);
  return lines.some((l) => l.outcome === 'fail') ? 1 : 0;
}
