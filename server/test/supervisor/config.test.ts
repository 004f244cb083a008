import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { formatCosignerVerifierKey, formatSignerKey, formatVerifierKey, publicKeyFromSeed, toHex } from '@labtrace/protocols';
import { loadSupervisorConfig } from '../../src/supervisor/config.js';

const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-supervisor-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const logKey = formatVerifierKey('lab.example/log', publicKeyFromSeed(new Uint8Array(32).fill(1)));
const witness = formatCosignerVerifierKey('regulator.example/w1', publicKeyFromSeed(new Uint8Array(32).fill(2)));
const API = { LABTRACE_SUPERVISOR_TOKEN: 'x'.repeat(40), LAB_A_TOKEN: 'lab-a-token' };

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

const lab = (extra = ''): string =>
  `labs:\n  - id: lab-a\n    url: http://127.0.0.1:8080/\n    logKey: "${logKey}"\n    tokenEnv: LAB_A_TOKEN\n${extra}`;

describe('supervisor.yaml', () => {
  test('reads the labs with their tokens, the origin from the log key, defaults for the rest', async () => {
    write('lab-b.token', 'lab-b-token\n');
    const file = write(
      'ok.yaml',
      `${lab(`    witnesses: ["${witness}"]\n    witnessesRequired: 1\n`)}  - id: lab-b\n    url: https://lab-b.example\n    logKey: "${logKey}"\n    origin: other.example/log\n    tokenFile: lab-b.token\nrules: { lateAmendmentDays: 10 }\n`,
    );
    const config = await loadSupervisorConfig(file, API);
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 7390,
      database: { target: { dialect: 'sqlite', file: path.join(dir, 'supervisor.db') } },
      apiToken: API.LABTRACE_SUPERVISOR_TOKEN,
      settings: { lateAmendmentMs: 10 * 86_400_000, stallGraceMs: 3_600_000 },
      labs: [
        { id: 'lab-a', url: 'http://127.0.0.1:8080', origin: 'lab.example/log', token: 'lab-a-token', witnesses: [witness], witnessesRequired: 1 },
        { id: 'lab-b', origin: 'other.example/log', token: 'lab-b-token', witnesses: [], witnessesRequired: 0 },
      ],
    });
  });

  test.each([
    ['a log key that is not a verifier key', lab().replace(logKey, 'nope'), /labs\[0\]\.logKey/],
    ['a URL that is not http(s)', lab().replace('http://127.0.0.1:8080/', 'ftp://x'), /labs\[0\]\.url/],
    ['more witnesses required than listed', lab('    witnessesRequired: 2\n'), /labs\[0\]\.witnessesRequired: more than the witnesses listed/],
    ['a lab without a token', lab().replace('    tokenEnv: LAB_A_TOKEN\n', ''), /labs\[0\]\.tokenFile: tokenFile or tokenEnv is required/],
    ['a lab listed twice', `${lab()}${lab().replace('labs:\n', '')}`, /labs\[1\]\.id: lab "lab-a" is listed twice/],
    ['an unknown field', `${lab()}polling: 1\n`, /polling/],
  ])('refuses %s, naming the field', async (_what, text, message) => {
    await expect(loadSupervisorConfig(write('bad.yaml', text), API)).rejects.toThrow(message);
  });

  test("reads a lab's standing token from its variable or its file", async () => {
    write('lab-b.standing', `${'b'.repeat(40)}\n`);
    const file = write(
      'standing.yaml',
      `${lab('    standingTokenEnv: LAB_A_STANDING\n')}  - id: lab-b\n    url: https://lab-b.example\n    logKey: "${logKey}"\n    tokenEnv: LAB_A_TOKEN\n    standingTokenFile: lab-b.standing\n  - id: lab-c\n    url: https://lab-c.example\n    logKey: "${logKey}"\n    tokenEnv: LAB_A_TOKEN\n`,
    );
    const config = await loadSupervisorConfig(file, { ...API, LAB_A_STANDING: 'a'.repeat(40) });
    expect(config.labs.map((l) => l.standingToken)).toEqual(['a'.repeat(40), 'b'.repeat(40), undefined]);
  });

  test.each([
    [
      'a short standing token',
      { LAB_A_STANDING: 'a'.repeat(31) },
      /labs\[0\]\.standingTokenEnv: the standing token must have at least 32 characters/,
    ],
    [
      'a standing token that is the API token',
      { LAB_A_STANDING: API.LABTRACE_SUPERVISOR_TOKEN },
      /labs\[0\]\.standingTokenEnv: the lab's standing token must differ from the API token/,
    ],
    ['a standing token variable not set', {}, /labs\[0\]\.standingTokenEnv: LAB_A_STANDING is not set/],
  ])('refuses %s, naming the field', async (_what, env, message) => {
    const file = write('standing-bad.yaml', lab('    standingTokenEnv: LAB_A_STANDING\n'));
    await expect(loadSupervisorConfig(file, { ...API, ...env })).rejects.toThrow(message);
  });

  test("refuses two labs sharing a standing token, naming the second lab's field", async () => {
    write('shared.standing', 'c'.repeat(40));
    const second = lab('    standingTokenFile: shared.standing\n').replace('labs:\n', '').replace('id: lab-a', 'id: lab-b');
    const file = write('standing-shared.yaml', `${lab('    standingTokenFile: shared.standing\n')}${second}`);
    await expect(loadSupervisorConfig(file, API)).rejects.toThrow(/labs\[1\]\.standingTokenFile: the same standing token as labs\[0\]/);
    await expect(loadSupervisorConfig(write('standing-typo.yaml', lab('    standingTokenEnv: lower-case\n')), API)).rejects.toThrow(
      /labs\[0\]\.standingTokenEnv: expected an environment variable name/,
    );
  });

  test('has no default API token: without one, or with a short one, it does not start', async () => {
    const file = write('notoken.yaml', lab());
    await expect(loadSupervisorConfig(file, { LAB_A_TOKEN: 't' })).rejects.toThrow(/tokenFile: the supervisor's API needs a token/);
    await expect(loadSupervisorConfig(file, { LAB_A_TOKEN: 't', LABTRACE_SUPERVISOR_TOKEN: 'short' })).rejects.toThrow(/at least 32 characters/);
  });

  test('refuses a lab whose token variable is not set', async () => {
    await expect(loadSupervisorConfig(write('unset.yaml', lab()), { LABTRACE_SUPERVISOR_TOKEN: 'x'.repeat(40) })).rejects.toThrow(
      /labs\[0\]\.tokenEnv: LAB_A_TOKEN is not set/,
    );
  });

  test("reads the reports' signing key from keyFile or LABTRACE_SUPERVISOR_KEY, has none by default, and names keyFile when it is wrong", async () => {
    const signer = formatSignerKey('regulator.example/reports', new Uint8Array(32).fill(3));
    const other = formatSignerKey('regulator.example/other', new Uint8Array(32).fill(4));
    write('supervisor.key', `${signer}\n`);
    const withFile = await loadSupervisorConfig(write('key.yaml', `keyFile: supervisor.key\n${lab()}`), API);
    expect(withFile.key?.name).toBe('regulator.example/reports');
    expect(toHex(withFile.key?.publicKey ?? new Uint8Array())).toBe(toHex(publicKeyFromSeed(new Uint8Array(32).fill(3))));
    // the environment wins over the file
    const fromEnv = await loadSupervisorConfig(write('key.yaml', `keyFile: supervisor.key\n${lab()}`), { ...API, LABTRACE_SUPERVISOR_KEY: other });
    expect(fromEnv.key?.name).toBe('regulator.example/other');
    expect((await loadSupervisorConfig(write('nokey.yaml', lab()), API)).key).toBeUndefined();
    write('bad.key', 'PRIVATE+KEY+nope\n');
    await expect(loadSupervisorConfig(write('badkey.yaml', `keyFile: bad.key\n${lab()}`), API)).rejects.toThrow(/badkey\.yaml: keyFile: /);
    await expect(loadSupervisorConfig(write('nofile.yaml', `keyFile: missing.key\n${lab()}`), API)).rejects.toThrow(/keyFile: .*file not found/);
  });

  test('keeps its store in a SQLite file by default, or in the database a URL names (PostgreSQL with its password file)', async () => {
    const read = async (database: string, env: NodeJS.ProcessEnv = {}) =>
      (await loadSupervisorConfig(write('db.yaml', `database: ${database}\n${lab()}`), { ...API, ...env })).database;
    expect(await read('evidence/sup.db')).toEqual({ target: { dialect: 'sqlite', file: path.join(dir, 'evidence/sup.db') } });
    expect(await read('{ url: "sqlite:sup.sqlite" }')).toEqual({ target: { dialect: 'sqlite', file: path.join(dir, 'sup.sqlite') } });
    expect(await read('{ url: "postgres://sup@db.example:5433/supervision", passwordFile: secrets/db-password }')).toEqual({
      target: { dialect: 'postgres', host: 'db.example', port: 5433, user: 'sup', database: 'supervision', password: undefined, ssl: undefined },
      passwordFile: path.join(dir, 'secrets/db-password'),
      passwordFileField: `${path.join(dir, 'db.yaml')}: database.passwordFile`,
    });
    // a URL in place of the section; the environment's URL and password file win over the file's
    expect((await read('"postgresql://sup@db.example/supervision"')).target).toMatchObject({ dialect: 'postgres', port: 5432 });
    const fromEnv = await read('sup.db', {
      LABTRACE_SUPERVISOR_DATABASE_URL: 'postgres://other@127.0.0.1:6000/sup',
      LABTRACE_SUPERVISOR_DATABASE_PASSWORD_FILE: '/run/secrets/pw',
    });
    expect(fromEnv).toEqual({
      target: expect.objectContaining({ dialect: 'postgres', user: 'other', port: 6000 }),
      passwordFile: '/run/secrets/pw',
      passwordFileField: 'LABTRACE_SUPERVISOR_DATABASE_PASSWORD_FILE',
    });
  });

  test.each([
    ['a URL of another engine', '{ url: "mysql://sup@db/x" }', {}, /db\.yaml: database\.url: unknown scheme "mysql:"/],
    ['a PostgreSQL URL without its database', '{ url: "postgres://sup@db.example" }', {}, /database\.url: the database name is missing/],
    ['a URL in place of the section without its user', '"postgres://db.example/sup"', {}, /db\.yaml: database: the user is missing/],
    ['a password file for SQLite', '{ url: "sqlite:sup.db", passwordFile: pw }', {}, /database\.passwordFile: a SQLite store has no password/],
    [
      'a password both in the URL and in a file',
      '{ url: "postgres://sup:s3cret-pw@db.example/sup", passwordFile: pw }',
      {},
      /database\.passwordFile: the URL holds a password too/,
    ],
    [
      'a wrong URL in the environment',
      'sup.db',
      { LABTRACE_SUPERVISOR_DATABASE_URL: 'postgres://:s3cret-pw@db/x' },
      /LABTRACE_SUPERVISOR_DATABASE_URL: the user is missing/,
    ],
    ['an unknown field of the section', '{ url: "sqlite:x.db", user: sup }', {}, /db\.yaml: database: Unrecognized key: "user"/],
    ['neither a file nor a section', '5', {}, /db\.yaml: database: expected a SQLite file, or \{ url, passwordFile \}/],
  ])('refuses %s, naming the field and never the password', async (_what, database, env, message) => {
    const loading = loadSupervisorConfig(write('db.yaml', `database: ${database}\n${lab()}`), { ...API, ...env });
    await expect(loading).rejects.toThrow(message);
    await expect(loading).rejects.not.toThrow(/s3cret-pw/);
  });
});
