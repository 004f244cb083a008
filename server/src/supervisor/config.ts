// supervisor.yaml: where the supervisor listens, its store (a SQLite file, or a PostgreSQL database), its API token, the rules' settings, and the labs it
// follows, each enrolled once with its URL, its log's public key and the read-only token its admin created.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { LabtraceError, parseConfigText, parseCosignerVerifierKey, parseSignerKey, parseVerifierKey, type SignerKey } from '@labtrace/protocols';
import { readSecretFile } from '../secret-env.js';
import { databaseConfigSchema, parseDatabaseUrl } from '../store/config.js';
import type { SupervisorDatabase } from './supervisor-store.js';

export interface RuleSettings {
  /** an amendment later than this after the report it replaces is a finding (ms) */
  lateAmendmentMs: number;
  /** activity reported this long after the log last grew, while it did not grow, is a finding (ms) */
  stallGraceMs: number;
}

export const DEFAULT_RULE_SETTINGS: RuleSettings = { lateAmendmentMs: 30 * 86_400_000, stallGraceMs: 3_600_000 };

const keyOf = (parse: (text: string) => unknown) =>
  z.string().superRefine((text, ctx) => {
    try {
      parse(text);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

const labSchema = z
  .object({
    /** the supervisor's name of the lab: letters, digits, '-', '_', '.' */
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'expected letters, digits, ".", "_" or "-"'),
    name: z.string().min(1).max(200).optional(),
    /** the lab server's base URL, e.g. https://lab.example */
    url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }),
    /** the log's checkpoint verifier key (GET /api/log/keys: log.verifierKey) */
    logKey: keyOf((t) => parseVerifierKey(t)),
    /** the log's origin line; the key's name when absent */
    origin: z.string().min(1).optional(),
    /** a file holding the read-only API token the lab's admin created for the supervisor (role auditor) */
    tokenFile: z.string().min(1).optional(),
    /** or the environment variable holding it */
    tokenEnv: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/, 'expected an environment variable name')
      .optional(),
    /**
     * a file holding the lab's standing token (at least 32 characters): with it the lab reads its own standing,
     * findings, checks and reports, and answers its findings, and nothing else (docs/supervision.md)
     */
    standingTokenFile: z.string().min(1).optional(),
    /** or the environment variable holding it */
    standingTokenEnv: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/, 'expected an environment variable name')
      .optional(),
    /** the witnesses whose cosignatures the supervisor requires on the lab's checkpoints */
    witnesses: z.array(keyOf((t) => parseCosignerVerifierKey(t))).default([]),
    witnessesRequired: z.number().int().min(0).default(0),
  })
  .strict()
  .refine((l) => l.witnessesRequired <= l.witnesses.length, { message: 'more than the witnesses listed', path: ['witnessesRequired'] })
  .refine((l) => l.tokenFile !== undefined || l.tokenEnv !== undefined, { message: 'tokenFile or tokenEnv is required', path: ['tokenFile'] });

export const supervisorConfigSchema = z
  .object({
    listen: z
      .object({ host: z.string().min(1).default('127.0.0.1'), port: z.number().int().min(0).max(65535).default(7390) })
      .strict()
      .default({ host: '127.0.0.1', port: 7390 }),
    /**
     * the supervisor's store of evidence and findings: a SQLite file, relative to the configuration file, or, as the
     * lab server's `database`, `{ url, passwordFile }` with url sqlite:<file> or postgres://<user>@<host>:<port>/<database>
     * (LABTRACE_SUPERVISOR_DATABASE_URL and LABTRACE_SUPERVISOR_DATABASE_PASSWORD_FILE override them)
     */
    database: z
      .union([z.string().min(1), databaseConfigSchema], { error: 'expected a SQLite file, or { url, passwordFile }' })
      .default('supervisor.db'),
    /** a file holding the bearer token of the supervisor's API (or LABTRACE_SUPERVISOR_TOKEN); at least 32 characters */
    tokenFile: z.string().min(1).optional(),
    /**
     * a file holding the supervisor's signing key `PRIVATE+KEY+<name>+<keyid>+<base64>` (`labtrace supervisor keygen`),
     * or LABTRACE_SUPERVISOR_KEY; it signs the compliance reports. No default: without it, reports are refused.
     */
    keyFile: z.string().min(1).optional(),
    /** how often each lab's checkpoint and new log entries are pulled (ms) */
    followEveryMs: z.number().int().min(100).default(60_000),
    rules: z
      .object({
        lateAmendmentDays: z
          .number()
          .positive()
          .default(DEFAULT_RULE_SETTINGS.lateAmendmentMs / 86_400_000),
        stallGraceMinutes: z
          .number()
          .positive()
          .default(DEFAULT_RULE_SETTINGS.stallGraceMs / 60_000),
      })
      .strict()
      .default({ lateAmendmentDays: 30, stallGraceMinutes: 60 }),
    labs: z
      .array(labSchema)
      .default([])
      .superRefine((labs, ctx) => {
        const seen = new Set<string>();
        labs.forEach((l, i) => {
          if (seen.has(l.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `lab "${l.id}" is listed twice` });
          seen.add(l.id);
        });
      }),
  })
  .strict();

export interface EnrolledLab {
  id: string;
  name: string;
  url: string;
  origin: string;
  logKey: string;
  token: string;
  /** the lab's own least-privilege token for the supervisor's API (its standing), when one is enrolled */
  standingToken?: string | undefined;
  witnesses: string[];
  witnessesRequired: number;
}

export interface SupervisorConfig {
  host: string;
  port: number;
  database: SupervisorDatabase;
  apiToken: string;
  /** the key that signs the compliance reports; none configured: reports are refused */
  key: SignerKey | undefined;
  followEveryMs: number;
  settings: RuleSettings;
  labs: EnrolledLab[];
}

const MIN_TOKEN = 32;

/** Reads supervisor.yaml; secrets come from the files it names or the environment, never from the file itself. */
export async function loadSupervisorConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<SupervisorConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new LabtraceError('E_CONFIG_READ', `${file}: ${(err as Error).message}`, { cause: err });
  }
  const parsed = parseConfigText(text, file, supervisorConfigSchema);
  const dir = path.dirname(file);
  const fromEnv = env['LABTRACE_SUPERVISOR_TOKEN'];
  const apiToken =
    fromEnv !== undefined && fromEnv !== ''
      ? fromEnv
      : parsed.tokenFile === undefined
        ? undefined
        : readSecretFile(path.resolve(dir, parsed.tokenFile), `${file}: tokenFile`);
  if (apiToken === undefined)
    throw new LabtraceError('E_CONFIG', `${file}: tokenFile: the supervisor's API needs a token (tokenFile or LABTRACE_SUPERVISOR_TOKEN)`);
  if (apiToken.length < MIN_TOKEN)
    throw new LabtraceError('E_CONFIG', `${file}: tokenFile: the API token must have at least ${MIN_TOKEN} characters`);
  const keyFromEnv = env['LABTRACE_SUPERVISOR_KEY'];
  const keyText =
    keyFromEnv !== undefined && keyFromEnv !== ''
      ? keyFromEnv
      : parsed.keyFile === undefined
        ? undefined
        : readSecretFile(path.resolve(dir, parsed.keyFile), `${file}: keyFile`);
  let key: SignerKey | undefined;
  if (keyText !== undefined) {
    try {
      key = parseSignerKey(keyText.trim());
    } catch (err) {
      throw new LabtraceError('E_CONFIG', `${file}: keyFile: ${(err as Error).message}`, { cause: err });
    }
  }
  const labs = parsed.labs.map((l, i): EnrolledLab => {
    const where = `${file}: labs[${i}]`;
    let token: string | undefined;
    if (l.tokenEnv !== undefined) token = env[l.tokenEnv];
    if ((token === undefined || token === '') && l.tokenFile !== undefined)
      token = readSecretFile(path.resolve(dir, l.tokenFile), `${where}.tokenFile`);
    if (token === undefined || token === '')
      throw new LabtraceError('E_CONFIG', `${where}.tokenEnv: ${l.tokenEnv ?? ''} is not set and no tokenFile is given`);
    const standingToken = standingTokenOf(l, env, dir, where);
    return {
      id: l.id,
      name: l.name ?? l.id,
      url: l.url.replace(/\/+$/, ''),
      origin: l.origin ?? parseVerifierKey(l.logKey).name,
      logKey: l.logKey,
      token,
      standingToken,
      witnesses: l.witnesses,
      witnessesRequired: l.witnessesRequired,
    };
  });
  // a standing token names one lab: shared with the API or with another lab, it would grant more than that
  const seen = new Map<string, number>();
  labs.forEach((l, i) => {
    if (l.standingToken === undefined) return;
    const field = `${file}: labs[${i}].${parsed.labs[i]?.standingTokenEnv !== undefined ? 'standingTokenEnv' : 'standingTokenFile'}`;
    if (l.standingToken === apiToken) throw new LabtraceError('E_CONFIG', `${field}: the lab's standing token must differ from the API token`);
    const other = seen.get(l.standingToken);
    if (other !== undefined) throw new LabtraceError('E_CONFIG', `${field}: the same standing token as labs[${other}]; each lab needs its own`);
    seen.set(l.standingToken, i);
  });
  return {
    host: parsed.listen.host,
    port: parsed.listen.port,
    database: databaseOf(parsed.database, env, file, dir),
    apiToken,
    key,
    followEveryMs: parsed.followEveryMs,
    settings: { lateAmendmentMs: parsed.rules.lateAmendmentDays * 86_400_000, stallGraceMs: parsed.rules.stallGraceMinutes * 60_000 },
    labs,
  };
}

/** A lab's standing token from its variable, else its file; none enrolled: undefined. */
function standingTokenOf(
  l: { standingTokenFile?: string | undefined; standingTokenEnv?: string | undefined },
  env: NodeJS.ProcessEnv,
  dir: string,
  where: string,
): string | undefined {
  if (l.standingTokenFile === undefined && l.standingTokenEnv === undefined) return undefined;
  let token: string | undefined;
  let field = 'standingTokenEnv';
  if (l.standingTokenEnv !== undefined) token = env[l.standingTokenEnv];
  if ((token === undefined || token === '') && l.standingTokenFile !== undefined) {
    field = 'standingTokenFile';
    token = readSecretFile(path.resolve(dir, l.standingTokenFile), `${where}.standingTokenFile`);
  }
  if (token === undefined || token === '')
    throw new LabtraceError('E_CONFIG', `${where}.standingTokenEnv: ${l.standingTokenEnv ?? ''} is not set and no standingTokenFile is given`);
  if (token.length < MIN_TOKEN)
    throw new LabtraceError('E_CONFIG', `${where}.${field}: the standing token must have at least ${MIN_TOKEN} characters`);
  return token;
}

/**
 * The store supervisor.yaml names, the environment applied: a URL wrong, or a password file where it has no place
 * (SQLite, or a URL holding a password already), is an E_CONFIG naming where it came from (never repeating the URL,
 * which may hold a password). The password file is read when the store opens.
 */
function databaseOf(
  database: string | { url?: string | undefined; passwordFile?: string | undefined },
  env: NodeJS.ProcessEnv,
  file: string,
  dir: string,
): SupervisorDatabase {
  const envUrl = env['LABTRACE_SUPERVISOR_DATABASE_URL'] || undefined;
  const envPasswordFile = env['LABTRACE_SUPERVISOR_DATABASE_PASSWORD_FILE'] || undefined;
  // a string is the SQLite file as before, or a URL (sqlite:, postgres:) written in place of the section
  const isUrl = typeof database === 'string' && /^(sqlite|postgres|postgresql):/i.test(database);
  const section = typeof database !== 'string' ? database : isUrl ? { url: database } : { file: database };
  const url = envUrl ?? ('url' in section ? section.url : undefined);
  const urlField = envUrl !== undefined ? 'LABTRACE_SUPERVISOR_DATABASE_URL' : `${file}: database${isUrl ? '' : '.url'}`;
  const target =
    url !== undefined
      ? parseDatabaseUrl(url, urlField, dir)
      : { dialect: 'sqlite' as const, file: path.resolve(dir, 'file' in section ? section.file : 'supervisor.db') };
  const passwordFile = envPasswordFile ?? ('passwordFile' in section ? section.passwordFile : undefined);
  const passwordFileField = envPasswordFile !== undefined ? 'LABTRACE_SUPERVISOR_DATABASE_PASSWORD_FILE' : `${file}: database.passwordFile`;
  if (passwordFile === undefined) return { target };
  if (target.dialect === 'sqlite')
    throw new LabtraceError('E_CONFIG', `${passwordFileField}: a SQLite store has no password (the file is for PostgreSQL)`);
  if (target.password !== undefined)
    throw new LabtraceError('E_CONFIG', `${passwordFileField}: the URL holds a password too; give it in one place (the file)`);
  return { target, passwordFile: path.resolve(dir, passwordFile), passwordFileField };
}
