// `labtrace supervisor` as real processes: enroll reads a running lab's log key and checks the auditor token, and
// the supervisor started from the configuration it printed follows the lab and answers its API; SIGTERM stops it.
// Started with a PostgreSQL database in its configuration (the password in a file), it keeps its store there.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { collect, exitOf, runLabtrace } from '../helpers/lab-process.js';
import { freePort } from '../helpers/ports.js';
import { startPostgres } from '../helpers/postgres.js';
import { startServer, type TestServer } from '../helpers/server.js';

const TOKEN = 'supervisor-api-token-for-tests-0123456789';
let t: TestServer;
const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-supervisor-cli-'));

beforeAll(async () => {
  t = await startServer();
});
afterAll(async () => {
  await t.stop();
  rmSync(dir, { recursive: true, force: true });
});

function stdoutOf(proc: ReturnType<typeof runLabtrace>): () => string {
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  return () => out;
}

describe('labtrace supervisor', () => {
  test('enroll refuses a token the lab does not accept', async () => {
    writeFileSync(path.join(dir, 'bad.token'), 'not-a-token\n');
    const proc = runLabtrace(['supervisor', 'enroll', '--id', 'lab-t', '--url', t.base, '--token-file', path.join(dir, 'bad.token')]);
    const output = collect(proc);
    expect(await exitOf(proc)).toBe(1);
    expect(output()).toMatch(/answered 401: is the token a valid auditor token of this lab\?/);
  });

  test('enroll prints the entry; the supervisor started with it follows the lab and answers with its token', async () => {
    writeFileSync(path.join(dir, 'lab.token'), `${t.tokens.auditor}\n`, { mode: 0o600 });
    const enroll = runLabtrace(['supervisor', 'enroll', '--id', 'lab-t', '--url', t.base, '--token-file', path.join(dir, 'lab.token')]);
    const entry = stdoutOf(enroll);
    expect(await exitOf(enroll)).toBe(0);
    const keys = (await (await fetch(`${t.base}/api/log/keys`)).json()) as { log: { verifierKey: string } };
    expect(entry()).toContain(`logKey: "${keys.log.verifierKey}"`);
    const port = await freePort();
    writeFileSync(
      path.join(dir, 'supervisor.yaml'),
      `listen: { host: 127.0.0.1, port: ${port} }\ndatabase: supervisor.db\nfollowEveryMs: 200\nlabs:\n${entry()}`,
    );
    const proc = runLabtrace(['supervisor', '--config', path.join(dir, 'supervisor.yaml')], { LABTRACE_SUPERVISOR_TOKEN: TOKEN });
    const output = collect(proc);
    try {
      const deadline = Date.now() + 60_000;
      let labs: { id: string; tier: string; logSize: number; lastDeepCheck: number | null }[] = [];
      while (labs[0]?.lastDeepCheck === null || labs[0]?.lastDeepCheck === undefined) {
        if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`the supervisor did not follow the lab:\n${output()}`);
        await new Promise((r) => setTimeout(r, 100));
        const res = await fetch(`http://127.0.0.1:${port}/api/labs`, { headers: { authorization: `Bearer ${TOKEN}` } }).catch(() => undefined);
        if (res?.ok === true) labs = ((await res.json()) as { labs: typeof labs }).labs;
      }
      expect(labs[0]).toMatchObject({ id: 'lab-t', tier: 'A' });
      expect(labs[0]?.logSize).toBeGreaterThan(0);
      expect((await fetch(`http://127.0.0.1:${port}/api/labs`)).status).toBe(401);
      const rules = (await (await fetch(`http://127.0.0.1:${port}/api/rules`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
        rules: { id: string; title: { zh: string } }[];
      };
      expect(rules.rules.map((r) => r.id)).toContain('performer-approved');
    } finally {
      proc.kill('SIGTERM');
    }
    expect(await exitOf(proc)).toBe(0);
    // processes start slowly on a loaded machine
  }, 120_000);

  test('on PostgreSQL: the URL and the password file from supervisor.yaml, the store named without the password; a wrong password stops it at start', async () => {
    const postgres = await startPostgres({ database: 'supervision', password: 'pg-password-of-the-cli-test' });
    try {
      writeFileSync(path.join(dir, 'lab.token'), `${t.tokens.auditor}\n`, { mode: 0o600 });
      writeFileSync(path.join(dir, 'db.password'), 'pg-password-of-the-cli-test\n', { mode: 0o600 });
      writeFileSync(path.join(dir, 'wrong.password'), 'not-the-password\n', { mode: 0o600 });
      const keys = (await (await fetch(`${t.base}/api/log/keys`)).json()) as { log: { verifierKey: string } };
      const port = await freePort();
      const config = (passwordFile: string): string => {
        const file = path.join(dir, `pg-${passwordFile}.yaml`);
        writeFileSync(
          file,
          `listen: { host: 127.0.0.1, port: ${port} }\ndatabase: { url: "${postgres.url}", passwordFile: ${passwordFile} }\nfollowEveryMs: 200\n` +
            `labs:\n  - id: lab-t\n    url: ${t.base}\n    logKey: "${keys.log.verifierKey}"\n    tokenFile: lab.token\n`,
        );
        return file;
      };
      const refused = runLabtrace(['supervisor', '--config', config('wrong.password')], { LABTRACE_SUPERVISOR_TOKEN: TOKEN });
      const refusal = collect(refused);
      expect(await exitOf(refused)).not.toBe(0);
      expect(refusal()).toMatch(
        /cannot open the supervisor's store postgres:\/\/postgres@127\.0\.0\.1:\d+\/supervision: .*password authentication failed/,
      );
      expect(refusal()).not.toContain('not-the-password');
      const proc = runLabtrace(['supervisor', '--config', config('db.password')], { LABTRACE_SUPERVISOR_TOKEN: TOKEN });
      const output = collect(proc);
      try {
        const deadline = Date.now() + 60_000;
        let checked = false;
        while (!checked) {
          if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`the supervisor did not follow the lab:\n${output()}`);
          await new Promise((r) => setTimeout(r, 100));
          const res = await fetch(`http://127.0.0.1:${port}/api/labs`, { headers: { authorization: `Bearer ${TOKEN}` } }).catch(() => undefined);
          if (res?.ok === true) checked = ((await res.json()) as { labs: { lastDeepCheck: number | null }[] }).labs[0]?.lastDeepCheck != null;
        }
        expect(output()).toMatch(/"database":"postgres:\/\/postgres@127\.0\.0\.1:\d+\/supervision"/);
        expect(output()).not.toContain('pg-password-of-the-cli-test');
      } finally {
        proc.kill('SIGTERM');
      }
      expect(await exitOf(proc)).toBe(0);
      // what it followed is in PostgreSQL
      const client = new pg.Client({
        host: '127.0.0.1',
        port: postgres.port,
        user: 'postgres',
        database: 'supervision',
        password: 'pg-password-of-the-cli-test',
      });
      await client.connect();
      try {
        const { rows } = await client.query<{ size: string }>("SELECT size FROM sup_labs WHERE lab = 'lab-t'");
        expect(Number(rows[0]?.size)).toBeGreaterThan(0);
      } finally {
        await client.end();
      }
    } finally {
      await postgres.stop();
    }
  }, 180_000);
});
