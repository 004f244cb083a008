// `labtrace server user add|passwd|list`: user administration on the server's database, in the audit trail as the command line.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { expect, test } from '@jest/globals';
import { stringify } from 'yaml';
import { spawn } from 'node:child_process';
import { BIN, collect, exitOf } from '../helpers/lab-process.js';

async function run(args: string[], input?: string): Promise<{ code: number | null; stdout: string; output: string }> {
  const proc = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, LOG_LEVEL: 'warn' }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  proc.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  const output = collect(proc);
  proc.stdin.end(input ?? '');
  const code = await exitOf(proc);
  return { code, stdout, output: output() };
}

test('add prints a one-time password once; passwd sets one from stdin; list shows roles; the audit trail names the command line', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-cli-users-'));
  const config = path.join(dir, 'server.yaml');
  writeFileSync(config, stringify({ lab: 'cli-lab', dataDir: path.join(dir, 'server') }));

  const added = await run(['server', 'user', 'add', '--username', 'alice', '--role', 'technician', '--config', config]);
  expect(added.code).toBe(0);
  expect(added.stdout.trim()).toMatch(/^[A-Za-z0-9_-]{24}$/);
  expect(added.output).toContain('user alice (technician) created');

  const auditor = await run(['server', 'user', 'add', '--username', 'kim', '--role', 'auditor', '--grant-days', '14', '--config', config]);
  expect(auditor.code).toBe(0);
  const refused = await run(['server', 'user', 'add', '--username', 'bob', '--role', 'boss', '--config', config]);
  expect(refused.code).not.toBe(0);
  expect(refused.output).toContain('--role: expected one of admin, technician, signatory, client, auditor');

  const list = await run(['server', 'user', 'list', '--config', config]);
  expect(list.stdout).toMatch(/^alice technician$/m);
  expect(list.stdout).toMatch(/^kim auditor until \d{4}-/m);

  const passwd = await run(['server', 'user', 'passwd', '--username', 'alice', '--config', config], 'alice-chosen-by-admin\n');
  expect(passwd.code).toBe(0);
  expect(passwd.stdout).toBe('');

  const db = new Database(path.join(dir, 'server', 'labtrace.sqlite'), { readonly: true });
  try {
    const trail = db.prepare('SELECT actor, action, record_id FROM audit_trail ORDER BY id').all() as {
      actor: string;
      action: string;
      record_id: string;
    }[];
    expect(trail.map((e) => `${e.action} ${e.record_id}`)).toEqual(['create alice', 'create kim', 'password-set alice']);
    expect(trail.every((e) => e.actor.startsWith('cli:'))).toBe(true);
  } finally {
    db.close();
  }
}, 60_000);
