// `labtrace supervisor` as real processes: enroll reads a running lab's log key and checks the auditor token, and
// the supervisor started from the configuration it printed follows the lab and answers its API; SIGTERM stops it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { collect, exitOf, runLabtrace } from '../helpers/lab-process.js';
import { freePort } from '../helpers/ports.js';
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
});
