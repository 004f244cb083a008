// `labtrace supervisor --config supervisor.yaml` runs the supervisor; `labtrace supervisor enroll` prepares a lab's
// entry: it reads the lab's public log key and checks that the read-only token reads what the rules need;
// `keygen` makes the key that signs the compliance reports, and `verify-report` checks a report offline.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  ed25519NoteVerifier,
  formatSignerKey,
  formatVerifierKey,
  isValidKeyName,
  LabtraceError,
  openCheckpoint,
  parseVerifierKey,
  publicKeyFromSeed,
} from '@labtrace/protocols';
import { useNodeCrypto } from '@labtrace/protocols/node';
import { createLogger } from '../log.js';
import { guardProcess } from '../process-faults.js';
import { readSecretFile } from '../secret-env.js';
import { loadSupervisorConfig } from './config.js';
import { Supervisor } from './supervisor.js';
import { verifyReport } from './verify-report-cli.js';

export const usage = `usage: labtrace supervisor --config <supervisor.yaml>
       labtrace supervisor enroll --id <lab id> --url <lab base URL> --token-file <file>
       labtrace supervisor keygen --name <supervisor key name>
       labtrace supervisor verify-report <report.json> --key <public key> [--pdf <report.pdf>]

Follows the labs listed in supervisor.yaml through what they publish (signed checkpoints, log entries, and with a
read-only API token their runs, certificates, calibrations and alarms), runs the compliance rules, keeps the
findings with their proofs and gives each lab a credit tier (docs/supervision.md). The API answers with the token
of tokenFile or LABTRACE_SUPERVISOR_TOKEN. Its store is supervisor.yaml's database: a SQLite file (supervisor.db by
default), or { url: postgres://<user>@<host>:<port>/<database>, passwordFile } (LABTRACE_SUPERVISOR_DATABASE_URL and
LABTRACE_SUPERVISOR_DATABASE_PASSWORD_FILE override them); one supervisor process per database (a second is refused).

enroll reads the lab's log key (GET /api/log/keys) and its signed checkpoint, checks that the token (an API token of
a user with the role auditor, created by the lab's admin) reads the runs and certificates, and prints the entry to
add to supervisor.yaml. Compare the key it prints with the one the lab gives you by another channel.

keygen prints a new key for signing the compliance reports (keep it secret: put it in the file named by keyFile in
supervisor.yaml, or in LABTRACE_SUPERVISOR_KEY) and, on stderr, the public key to give to labs and to whoever
checks the reports. verify-report checks a signed report offline with that public key (exit 0 valid, 1 does not
verify, 2 unusable input).`;

export async function main(argv: string[]): Promise<{ stop(): Promise<void>; done?: Promise<number> }> {
  if (argv[0] === 'verify-report') return verifyReport(argv.slice(1));
  if (argv[0] === 'keygen') {
    keygen(argv.slice(1));
    return { stop: () => Promise.resolve(), done: Promise.resolve(0) };
  }
  useNodeCrypto();
  if (argv[0] === 'enroll') {
    await enroll(argv.slice(1));
    return { stop: () => Promise.resolve(), done: Promise.resolve(0) };
  }
  const { values } = parseOrExplain(argv, { config: { type: 'string', short: 'c' } });
  if (typeof values.config !== 'string') throw new LabtraceError('E_CONFIG', `supervisor needs --config\n${usage}`);
  const config = await loadSupervisorConfig(path.resolve(values.config));
  const logger = createLogger('supervisor');
  guardProcess(logger);
  const supervisor = new Supervisor(config, logger);
  await supervisor.start();
  return supervisor;
}

function keygen(argv: string[]): void {
  const { values } = parseOrExplain(argv, { name: { type: 'string' } });
  const name = values.name;
  if (typeof name !== 'string' || !isValidKeyName(name))
    throw new LabtraceError('E_CONFIG', `keygen needs --name, a key name without spaces or "+"\n${usage}`);
  const seed = new Uint8Array(randomBytes(32));
  process.stdout.write(`${formatSignerKey(name, seed)}\n`);
  process.stderr.write(`public key: ${formatVerifierKey(name, publicKeyFromSeed(seed))}\n`);
  seed.fill(0);
}

async function enroll(argv: string[]): Promise<void> {
  const { values } = parseOrExplain(argv, { id: { type: 'string' }, url: { type: 'string' }, 'token-file': { type: 'string' } });
  const { id, url, 'token-file': tokenFile } = values as { id?: string; url?: string; 'token-file'?: string };
  if (id === undefined || url === undefined || tokenFile === undefined)
    throw new LabtraceError('E_CONFIG', `enroll needs --id, --url and --token-file\n${usage}`);
  const base = url.replace(/\/+$/, '');
  const token = readSecretFile(path.resolve(tokenFile), '--token-file');
  const get = async (p: string, auth: boolean): Promise<Response> => {
    const res = await fetch(`${base}${p}`, { headers: auth ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(30_000) });
    if (!res.ok)
      throw new LabtraceError('E_CONFIG', `${base}${p} answered ${res.status}${auth ? ': is the token a valid auditor token of this lab?' : ''}`);
    return res;
  };
  const keys = (await (await get('/api/log/keys', false)).json()) as { log: { verifierKey: string } };
  const logKey = keys.log.verifierKey;
  const origin = parseVerifierKey(logKey).name;
  const opened = openCheckpoint(await (await get('/api/log/checkpoint', false)).text(), [ed25519NoteVerifier(logKey)], { origin });
  for (const p of ['/api/runs?limit=1', '/api/certificates?limit=1', '/api/instruments']) await get(p, true);
  process.stderr.write(`the lab's log ${origin} is at ${opened.checkpoint.size} entries; the token reads runs, certificates and instruments\n`);
  process.stdout.write(`  - id: ${id}\n    url: ${base}\n    logKey: "${logKey}"\n    tokenFile: ${path.resolve(tokenFile)}\n`);
}

function parseOrExplain(args: string[], options: NonNullable<ParseArgsConfig['options']>): { values: Record<string, unknown> } {
  try {
    return parseArgs({ args, options, strict: true });
  } catch (err) {
    throw new LabtraceError('E_CONFIG', `${(err as Error).message}\n${usage}`);
  }
}
