// `labtrace server [--config file]` and `labtrace server hash-password`.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { idSchema, LabtraceError, parseWith } from '@labtrace/protocols';
import { parseInstant } from './api/time.js';
import { adminPasswordFrom, readSecretFile } from './secret-env.js';
import { AuditTrail } from './audit/audit-trail.js';
import { ROLES, Users, type Role } from './auth/users.js';
import { hashPassword } from './broker/passwords.js';
import { type ServerConfig, commandConfig } from './config.js';
import { createLogger } from './log.js';
import { guardProcess } from './process-faults.js';
import { LabtraceServer } from './server.js';
import { formatDuration, useNodeCrypto } from '@labtrace/protocols/node';
import { migrateStore } from './store/database.js';
import { serverMigrations } from './migrations.js';
import { openStore, parseDatabaseUrl, storeTargetOf, type OpenedStore, type StoreTarget } from './store/dialect.js';
import { migrateStoreCommand, migrateStoreUsage } from './migrate-store-cli.js';
import { backupCommand, backupUsage, restoreCommand } from './backup-cli.js';
import { checkCommand, checkUsage } from './check-cli.js';
import { retentionCommand, retentionUsage } from './retention/retention-cli.js';
import { Enrollment } from './trust/enrollment.js';
import { KeyRegistry } from './trust/key-registry.js';
import { SecurityEvents } from './trust/security-events.js';

export const usage = `usage: labtrace server [--config <server.yaml>]
       labtrace server hash-password     reads a password on stdin, prints its scrypt hash
       labtrace server enroll-token --gateway <id> [--ttl-hours <n>] [--token-file <file>] [--config <server.yaml>]
                                         creates a one-time enrollment token for a gateway; with --token-file,
                                         registers the token in that file instead (once: never revives a used one)
       labtrace server keys [--gateway <id>] [--config <server.yaml>]
                                         lists the gateways' keys and their validity
       labtrace server revoke-key --gateway <id> --key-id <hex> --reason <text> [--from <ISO 8601 time>]
                                         refuses the key's batches whose records reach --from (default: now)
       labtrace server user add --username <name> --role <role> [--organization <id>] [--grant-days <n>] [--grant-organizations <id,id>]
                                         creates a user and prints a one-time password
       labtrace server user passwd --username <name>
                                         sets a new password read from stdin, or prints a one-time one (empty stdin)
       labtrace server user list         lists the users, their roles and state
       labtrace server migrate [--database-url <url>] [--password-file <file>] [--config <server.yaml>]
                                         brings the store to the latest schema and prints each migration applied;
                                         idempotent, and safe to run from two nodes at once. The URL is sqlite:<file>
                                         or postgres://<user>@<host>:<port>/<database>; without one, the config's
                                         database.url and database.passwordFile (LABTRACE_DATABASE_URL,
                                         LABTRACE_DATABASE_PASSWORD_FILE override them), else the data directory's SQLite file
${migrateStoreUsage}
${backupUsage}
${checkUsage}
${retentionUsage}
  Runs the broker (MQTT on 1883, WebSocket at /mqtt), ingest, store, REST API and dashboard (8080).
  Environment: PORT, MQTT_PORT, LABTRACE_DATA_DIR, LABTRACE_DATABASE_URL, LABTRACE_DATABASE_PASSWORD_FILE and
  LABTRACE_MQTT_USERNAME override the config; LABTRACE_MQTT_PASSWORD and LABTRACE_REDIS_PASSWORD give the external
  broker's and Redis's passwords; LABTRACE_ADMIN_PASSWORD is the password of the user "admin" created at the first
  start (otherwise a one-time password is printed once), or LABTRACE_ADMIN_PASSWORD_FILE a file holding it (a
  Docker secret).`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

export async function main(argv: string[]): Promise<{ stop(): Promise<void>; done?: Promise<number> }> {
  if (argv[0] === 'hash-password') {
    const password = await readStdin();
    if (password.length < 12) throw new LabtraceError('E_CONFIG', 'password: at least 12 characters');
    process.stdout.write(`${await hashPassword(password)}\n`);
    return { stop: () => Promise.resolve() };
  }
  if (argv[0] === 'migrate') {
    const code = await migrateCommand(argv.slice(1));
    return { stop: () => Promise.resolve(), done: Promise.resolve(code) };
  }
  if (argv[0] === 'check') {
    const code = await checkCommand(argv.slice(1));
    return { stop: () => Promise.resolve(), done: Promise.resolve(code) };
  }
  if (argv[0] === 'backup' || argv[0] === 'restore') {
    const code = await (argv[0] === 'backup' ? backupCommand : restoreCommand)(argv.slice(1));
    return { stop: () => Promise.resolve(), done: Promise.resolve(code) };
  }
  if (argv[0] === 'retention') {
    const code = await retentionCommand(argv.slice(1));
    return { stop: () => Promise.resolve(), done: Promise.resolve(code) };
  }
  if (argv[0] === 'migrate-store') {
    const code = await migrateStoreCommand(argv.slice(1));
    return { stop: () => Promise.resolve(), done: Promise.resolve(code) };
  }
  if (argv[0] === 'user') {
    await userCommand(argv.slice(1));
    return { stop: () => Promise.resolve() };
  }
  if (argv[0] === 'enroll-token' || argv[0] === 'keys' || argv[0] === 'revoke-key') {
    await admin(argv[0], argv.slice(1));
    return { stop: () => Promise.resolve() };
  }
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } }, strict: true }));
  } catch (err) {
    throw new LabtraceError('E_CONFIG', `${(err as Error).message}\n${usage}`);
  }
  const config = await commandConfig(values.config);
  const hashing = useNodeCrypto();
  const logger = createLogger('server');
  guardProcess(logger);
  if (hashing.kind === 'native') logger.info('hashing: the native batched SHA-256');
  else logger.warn({ reason: hashing.reason }, "hashing: Node's crypto, one call per hash (slower; the native module is not in use)");
  if (config.broker.users.length === 0)
    logger.warn('no broker users configured: only gateways enrolled with a token can connect (anonymous access is refused)');
  const server = new LabtraceServer(config, logger, { adminPassword: adminPasswordFrom(process.env) });
  await server.start();
  return server;
}

/** The admin commands: they open the server's database directly (it may be running; SQLite WAL allows it). */
async function admin(command: 'enroll-token' | 'keys' | 'revoke-key', argv: string[]): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        gateway: { type: 'string' },
        'ttl-hours': { type: 'string' },
        'token-file': { type: 'string' },
        'key-id': { type: 'string' },
        from: { type: 'string' },
        reason: { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    throw new LabtraceError('E_CONFIG', `${(err as Error).message}\n${usage}`);
  }
  const config = await commandConfig(values.config);
  const gateway = values.gateway === undefined ? undefined : parseWith(idSchema, values.gateway, '--gateway');
  // the server's store, on either engine (a running SQLite server writes to the same file: its transactions are waited for)
  const store = adminStore(config);
  try {
    await migrateStore(store.db, serverMigrations);
    const events = new SecurityEvents(store.db, createLogger('server', 'warn'));
    const keys = new KeyRegistry(store.db, events);
    await keys.open(config.gateways);
    const out = (line: string): boolean => process.stdout.write(`${line}\n`);
    if (command === 'enroll-token') {
      if (gateway === undefined) throw new LabtraceError('E_CONFIG', `enroll-token needs --gateway <id>\n${usage}`);
      const hours = values['ttl-hours'] === undefined ? 24 : Number(values['ttl-hours']);
      if (!Number.isFinite(hours) || hours <= 0) throw new LabtraceError('E_CONFIG', '--ttl-hours: expected a positive number of hours');
      const enrollment = new Enrollment(store.db, keys, events);
      const tokenFile = values['token-file'];
      if (tokenFile !== undefined) {
        // the token stays in its file: nothing of it is printed
        const token = readSecretFile(path.resolve(tokenFile), '--token-file');
        const { registered, expiresAt, used } = await enrollment.registerToken(token, gateway, Math.round(hours * 3_600_000));
        const until = new Date(expiresAt).toISOString();
        process.stderr.write(
          registered
            ? `the enrollment token in ${tokenFile} is registered for gateway ${gateway}, valid until ${until}\n`
            : `the enrollment token in ${tokenFile} was registered for gateway ${gateway} before (${used ? 'used' : `unused, valid until ${until}`}); left as it is\n`,
        );
      } else {
        const { token, expiresAt } = await enrollment.createToken(gateway, Math.round(hours * 3_600_000));
        out(token);
        process.stderr.write(`one-time enrollment token for gateway ${gateway}, valid until ${new Date(expiresAt).toISOString()}\n`);
      }
    } else if (command === 'keys') {
      for (const k of keys.list(gateway))
        out(
          `${k.gateway} ${k.keyId} ${k.status}${k.validUntil === null ? '' : ` until ${new Date(k.validUntil).toISOString()}`}${k.status === 'revoked' ? ` (valid batches: ${k.lastValidBatch === null ? 'none' : `up to ${k.lastValidBatch}`})` : ''}${k.reason ? ` (${k.reason})` : ''} ${k.verifierKey}`,
        );
    } else {
      const keyId = values['key-id'];
      if (gateway === undefined || keyId === undefined || values.reason === undefined)
        throw new LabtraceError('E_CONFIG', `revoke-key needs --gateway, --key-id and --reason\n${usage}`);
      const from = values.from === undefined ? Date.now() : parseInstant(values.from);
      if (typeof from === 'string') throw new LabtraceError('E_CONFIG', `--from: "${values.from}": ${from}`);
      const key = await keys.revoke(gateway, keyId, from, values.reason);
      out(
        `revoked ${gateway} ${key.keyId} from ${new Date(key.validUntil ?? from).toISOString()}: no new batch under it is accepted; valid for ${key.lastValidBatch === null ? 'no batch' : `batches up to ${key.lastValidBatch}`}`,
      );
    }
  } finally {
    await store.close();
  }
}

/** The server's store as its configuration names it (SQLite or PostgreSQL), for an administration command. */
function adminStore(config: ServerConfig): OpenedStore {
  return openStore(storeTargetOf(config.database, config.dataDir), { passwordFile: config.database.passwordFile, busyTimeoutMs: 30_000 });
}

/** `labtrace server user ...`: user administration on the server's database, recorded in the audit trail as the command line. */
async function userCommand(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        config: { type: 'string', short: 'c' },
        username: { type: 'string' },
        role: { type: 'string' },
        organization: { type: 'string' },
        'grant-days': { type: 'string' },
        'grant-organizations': { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    throw new LabtraceError('E_CONFIG', `${(err as Error).message}\n${usage}`);
  }
  if (command !== 'add' && command !== 'passwd' && command !== 'list')
    throw new LabtraceError('E_CONFIG', `user: expected add, passwd or list\n${usage}`);
  const config = await commandConfig(values.config);
  const store = adminStore(config);
  const actor = { username: `cli:${process.env['USER'] ?? 'unknown'}`, role: 'system' };
  try {
    await migrateStore(store.db, serverMigrations);
    const users = new Users(store.db, new AuditTrail(store.db));
    const out = (line: string): boolean => process.stdout.write(`${line}\n`);
    if (command === 'list') {
      for (const u of await users.list())
        out(
          `${u.username} ${u.role}${u.organization === null ? '' : ` org=${u.organization}`}${u.disabled ? ' disabled' : ''}${u.grantUntil === null ? '' : ` until ${new Date(u.grantUntil).toISOString()}`}${u.grantOrganizations === null ? '' : ` over ${u.grantOrganizations.join(',')}`}`,
        );
      return;
    }
    const username = values.username;
    if (username === undefined) throw new LabtraceError('E_CONFIG', `user ${command} needs --username\n${usage}`);
    if (command === 'add') {
      const role = values.role as Role | undefined;
      if (role === undefined || !ROLES.includes(role)) throw new LabtraceError('E_CONFIG', `--role: expected one of ${ROLES.join(', ')}`);
      const days = values['grant-days'] === undefined ? undefined : Number(values['grant-days']);
      if (days !== undefined && (!Number.isFinite(days) || days <= 0))
        throw new LabtraceError('E_CONFIG', '--grant-days: expected a positive number');
      const { password } = await users.create(actor, {
        username,
        role,
        organization: values.organization,
        grantUntil: days === undefined ? undefined : Date.now() + Math.round(days * 86_400_000),
        // each id is checked against the known organizations by Users
        grantOrganizations: values['grant-organizations']?.split(',').map((id) => id.trim()),
      });
      out(password ?? '');
      process.stderr.write(`user ${username} (${role}) created; the one-time password above is shown only once\n`);
    } else {
      const typed = process.stdin.isTTY ? '' : await readStdin();
      const oneTime = await users.setPassword(actor, username, typed === '' ? undefined : typed);
      if (oneTime !== undefined) out(oneTime);
      process.stderr.write(`password of ${username} set; every session of the user ended\n`);
    }
  } finally {
    await store.close();
  }
}

/**
 * `labtrace server migrate`: the store's migrations, run on purpose (before a rolling upgrade, so that the nodes still
 * running the old version meet the new schema at a moment the operator chose; a node also migrates at its start,
 * safely beside its peers). Exit 0 when the store is at the latest schema, 2 for a wrong option or URL, 1 when the store fails.
 */
async function migrateCommand(argv: string[]): Promise<number> {
  let target: StoreTarget;
  let passwordFile: string | undefined;
  let passwordFileField = '--password-file';
  try {
    let values;
    try {
      ({ values } = parseArgs({
        args: argv,
        options: { config: { type: 'string', short: 'c' }, 'database-url': { type: 'string' }, 'password-file': { type: 'string' } },
        strict: true,
      }));
    } catch (err) {
      throw new LabtraceError('E_CONFIG', `${(err as Error).message}\n${usage}`);
    }
    const fromOption = values['database-url'];
    passwordFile = values['password-file'];
    if (fromOption === undefined) {
      // the server's own store: server.yaml's `database` (or the data directory's SQLite file), with
      // LABTRACE_DATABASE_URL and LABTRACE_DATABASE_PASSWORD_FILE applied as the server applies them
      const config = await commandConfig(values.config);
      target = storeTargetOf(config.database, config.dataDir);
      if (passwordFile === undefined && config.database.passwordFile !== undefined) {
        passwordFile = config.database.passwordFile;
        passwordFileField = process.env['LABTRACE_DATABASE_PASSWORD_FILE'] ? 'LABTRACE_DATABASE_PASSWORD_FILE' : 'database.passwordFile';
      }
    } else {
      target = parseDatabaseUrl(fromOption, '--database-url', process.cwd());
      if (passwordFile === undefined && process.env['LABTRACE_DATABASE_PASSWORD_FILE']) {
        passwordFile = process.env['LABTRACE_DATABASE_PASSWORD_FILE'];
        passwordFileField = 'LABTRACE_DATABASE_PASSWORD_FILE';
      }
    }
  } catch (err) {
    if (!(err instanceof LabtraceError) || !err.code.startsWith('E_CONFIG')) throw err;
    process.stderr.write(`labtrace server migrate: ${err.code}: ${err.message}\n`);
    return 2;
  }
  let store;
  try {
    store = openStore(target, {
      passwordFile,
      poolSize: 1,
      passwordFileField,
      busyTimeoutMs: 600_000,
    });
  } catch (err) {
    if (!(err instanceof LabtraceError) || !err.code.startsWith('E_CONFIG')) throw err;
    process.stderr.write(`labtrace server migrate: ${err.code}: ${err.message}\n`);
    return 2;
  }
  try {
    const applied = await migrateStore(store.db, serverMigrations, undefined, {
      exclusive: true,
      // each as it is applied, with its time: a migration that rewrites a large table takes minutes
      onStep: (step) => process.stdout.write(`applied ${step.name} (${step.index}/${step.total}, ${formatDuration(step.ms)})\n`),
    });
    process.stdout.write(
      applied.length === 0
        ? `${store.description}: the schema is up to date; nothing applied\n`
        : `${store.description}: ${applied.length} migration${applied.length === 1 ? '' : 's'} applied\n`,
    );
    return 0;
  } finally {
    await store.close();
  }
}
