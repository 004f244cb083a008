// `labtrace server backup` and `labtrace server restore` (store/backup.ts): the store the server's config names,
// its keys where the config puts them. Exit 0: done; 1: the archive or the restored log does not verify; 2: a wrong
// option or a PostgreSQL tool missing; 3: refused (an existing file or store, a backup of the other engine, a gap not
// accepted).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { LabtraceError, parseSignerKey, parseVerifierKey, type VerifierKey } from '@labtrace/protocols';
import { useNodeCrypto } from '@labtrace/protocols/node';
import { type ServerConfig, commandConfig, logKeyFileOf } from './config.js';
import { BackupInvalid, BackupRefused, backupStore, restoreStore, type KeyPlace, type RestoreTarget, type SnapshotSource } from './store/backup.js';
import { storeTargetOf } from './store/dialect.js';
import { PgRestoreTarget, PgSnapshotSource } from './store/pg-backup.js';
import { SqliteRestoreTarget, SqliteSnapshotSource } from './store/sqlite-backup.js';

export const backupUsage = `       labtrace server backup --out <file> [--include-keys] [--config <server.yaml>]
                                         writes a consistent backup of the store while the server runs (a tar: manifest.json,
                                         labtrace.sqlite, or labtrace.pgdump taken by pg_dump -Fc on PostgreSQL: from the
                                         PATH or LABTRACE_PG_BINDIR); the log and certificate keys are listed, and copied only
                                         with --include-keys. Never overwrites a file. Exit 0 written, 2 a wrong option or no
                                         pg_dump, 3 refused
       labtrace server restore --from <file> (--checkpoint <file> | --unpublished) [--accept-gap]
                                     [--log-key <verifier key>] [--config <server.yaml>]
                                         restores a backup where the config puts the store, which must hold none (SQLite:
                                         no file; PostgreSQL: a database without tables, loaded by pg_restore and dropped
                                         again if it does not verify; a backup of the other engine is refused), after
                                         checking its log, and against the last checkpoint the lab published (saved from
                                         GET /api/log/checkpoint): a backup that contradicts it is refused, and one that lacks
                                         entries published after it is refused unless --accept-gap (then recorded as an alarm).
                                         Exit 0 restored, 1 does not verify, 2 a wrong option, 3 refused`;

class Usage extends LabtraceError {
  constructor(message: string) {
    super('E_CONFIG', message);
  }
}

/** The store the config names, as a backup reads it or a restore writes it. */
function storeOf(config: ServerConfig): { source: SnapshotSource; target: RestoreTarget } {
  const target = storeTargetOf(config.database, config.dataDir);
  return target.dialect === 'sqlite'
    ? { source: new SqliteSnapshotSource(target.file), target: new SqliteRestoreTarget(target.file) }
    : { source: new PgSnapshotSource(target, config.database.passwordFile), target: new PgRestoreTarget(target, config.database.passwordFile) };
}

function keyPlaces(config: ServerConfig): KeyPlace[] {
  return [
    { role: 'log', file: logKeyFileOf(config) },
    { role: 'certificates', file: config.certificates.keyFile ?? path.join(config.dataDir, 'certificate.key') },
  ];
}

const say = (line: string): boolean => process.stderr.write(`${line}\n`);

/** Runs one of the two commands; returns the exit code, printing the outcome (stdout) and progress (stderr). */
async function run(command: () => Promise<void>): Promise<number> {
  try {
    await command();
    return 0;
  } catch (err) {
    if (err instanceof Usage) {
      say(`error: ${err.message}\n${backupUsage}`);
      return 2;
    }
    if (err instanceof BackupRefused) {
      say(`refused: ${err.message}`);
      return 3;
    }
    if (err instanceof BackupInvalid) {
      say(`does not verify:\n${err.problems.map((p) => `  - ${p}`).join('\n')}`);
      return 1;
    }
    if (err instanceof LabtraceError && err.code === 'E_CONFIG') {
      say(`error: ${err.message}`);
      return 2;
    }
    throw err;
  }
}

function parse<T extends Record<string, { type: 'string' | 'boolean' }>>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new Usage((err as Error).message);
  }
}

export function backupCommand(argv: string[]): Promise<number> {
  return run(async () => {
    const values = parse(argv, { out: { type: 'string' }, 'include-keys': { type: 'boolean' }, config: { type: 'string' } });
    if (values.out === undefined || values.out === '') throw new Usage('--out: missing (the archive to write)');
    useNodeCrypto();
    const config = await commandConfig(values.config);
    const manifest = await backupStore({
      source: storeOf(config).source,
      out: path.resolve(values.out),
      keys: keyPlaces(config),
      includeKeys: values['include-keys'] === true,
      progress: say,
    });
    const keys = manifest.keys
      .map((k) => `${k.role} key ${k.file}: ${!k.present ? 'not found' : k.included ? 'included' : 'not included (keep it safe apart)'}`)
      .join('\n  ');
    process.stdout.write(
      `backup written: ${path.resolve(values.out)}\n  log "${manifest.log.origin}" at size ${manifest.log.size}, ${manifest.counts.batches} batches, ` +
        `${manifest.store.bytes} bytes, SHA-256 ${manifest.store.sha256}\n  ${keys}\n`,
    );
  });
}

function logKeyOption(text: string): VerifierKey {
  try {
    const key = text.startsWith('PRIVATE+KEY+') ? parseSignerKey(text) : parseVerifierKey(text);
    return { name: key.name, keyId: key.keyId, publicKey: key.publicKey };
  } catch (err) {
    throw new Usage(`--log-key: not a log key (${(err as Error).message.replace(/PRIVATE\+KEY\+\S*/g, 'PRIVATE+KEY+...')})`);
  }
}

export function restoreCommand(argv: string[]): Promise<number> {
  return run(async () => {
    const values = parse(argv, {
      from: { type: 'string' },
      checkpoint: { type: 'string' },
      unpublished: { type: 'boolean' },
      'accept-gap': { type: 'boolean' },
      'log-key': { type: 'string' },
      config: { type: 'string' },
    });
    if (values.from === undefined || values.from === '') throw new Usage('--from: missing (the backup archive)');
    if (values.checkpoint !== undefined && values.unpublished === true) throw new Usage('--checkpoint and --unpublished: give one of them');
    let published: string | undefined;
    if (values.checkpoint !== undefined) {
      try {
        published = readFileSync(path.resolve(values.checkpoint), 'utf8');
      } catch (err) {
        throw new Usage(`--checkpoint: ${values.checkpoint}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    }
    useNodeCrypto();
    const config = await commandConfig(values.config);
    const { target } = storeOf(config);
    const report = await restoreStore({
      from: path.resolve(values.from),
      target,
      keys: keyPlaces(config),
      published,
      unpublished: values.unpublished === true,
      logKey: values['log-key'] === undefined ? undefined : logKeyOption(values['log-key']),
      acceptGap: values['accept-gap'] === true,
      progress: say,
    });
    const against =
      report.published === null
        ? 'not checked against a published checkpoint (--unpublished: recorded as an alarm)'
        : report.gap > 0
          ? `the published checkpoint has size ${report.published.size}: ${report.gap} entries lost (accepted: recorded as an alarm)`
          : `consistent with the published checkpoint of size ${report.published.size}`;
    process.stdout.write(
      `restored: ${target.description}\n  log "${report.manifest.log.origin}" of ${report.log.size} entries, ${report.log.checkpoints} checkpoints checked; ${against}\n` +
        (report.keysWritten.length > 0 ? `  keys written: ${report.keysWritten.join(', ')}\n` : ''),
    );
  });
}
