// The audit trail exported (JSON Lines and CSV) and checked offline by `labtrace verify-audit`: an
// untouched export verifies; one changed field, a removed line or a cut file does not, naming the entry.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, type TestServer } from '../helpers/server.js';

const BIN = fileURLToPath(new URL('../../../../bin/labtrace.js', import.meta.url));
let t: TestServer;
let dir: string;
const setup = { username: 'test-setup', role: 'system' };

beforeAll(async () => {
  t = await startServer();
  dir = mkdtempSync(path.join(tmpdir(), 'labtrace-audit-export-'));
  // entries with values of every shape: nested objects, a JSON null recorded on purpose, quotes, commas and new lines
  await t.server.users.createOrganization(setup, 'org-b', 'Client "B", Ltd.\nsecond line');
  await t.server.database.db.transaction().execute(async (trx) => {
    await t.server.audit.recordIn(trx, setup, {
      action: 'update',
      recordType: 'method',
      recordId: 'm-1',
      oldValue: null,
      newValue: { a: [1, 2.5, 'x'] },
      reason: 'why, "quoted"',
    });
    await t.server.audit.recordIn(trx, setup, { action: 'create', recordType: 'method', recordId: 'm-2', newValue: '' });
  });
});
afterAll(async () => {
  await t.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function exported(query = '', role: 'admin' | 'auditor' = 'auditor'): Promise<string> {
  const res = await t.fetch(`/api/audit-trail/export${query}`, {}, role);
  expect(res.status).toBe(200);
  return res.text();
}

function verify(content: string, name = 'trail.jsonl'): Promise<{ code: number; stdout: string; stderr: string }> {
  const file = path.join(dir, name);
  writeFileSync(file, content);
  return run([file]);
}

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'verify-audit', ...args], (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr }),
    );
  });
}

const lines = (text: string): Record<string, unknown>[] =>
  text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('JSON Lines', () => {
  test('a header, every entry with its hashes, a trailer; the file verifies', async () => {
    const text = await exported();
    const [header, ...rest] = lines(text);
    const trailer = rest.pop();
    expect(header).toMatchObject({ format: 'labtrace-audit-trail', version: 1, complete: true });
    const all = await t.server.audit.list({ limit: 10_000 });
    expect(rest.map((e) => e['id'])).toEqual(all.map((e) => e.id));
    expect(rest.map((e) => e['hash'])).toEqual(all.map((e) => e.hash));
    expect(trailer).toEqual({ end: true, count: all.length, lastHash: all.at(-1)?.hash });
    // a recorded JSON null stays apart from no value at all
    const m1 = rest.find((e) => e['recordId'] === 'm-1');
    expect(m1 && 'oldValue' in m1 && m1['oldValue'] === null).toBe(true);
    expect(rest.find((e) => e['recordId'] === 'm-2')).not.toHaveProperty('oldValue');
    const result = await verify(text);
    expect(result).toMatchObject({ code: 0 });
    expect(result.stdout).toMatch(new RegExp(`^VERIFIED: ${all.length} entries, 1\\.\\.${all.length}`));
  });

  test('one changed field fails, naming the entry', async () => {
    const text = await exported();
    const changed = text.replace('"recordId":"m-1"', '"recordId":"m-9"');
    expect(changed).not.toBe(text);
    const id = lines(text).find((e) => e['recordId'] === 'm-1')?.['id'];
    const result = await verify(changed);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`DOES NOT VERIFY: entry ${String(id)}: its hash does not match its fields`);
  });

  test('one changed byte in a value fails too, and so does a forged hash that breaks the link', async () => {
    const text = await exported();
    const byte = text.replace('2.5', '2.6');
    expect((await verify(byte)).stdout).toMatch(/entry \d+: its hash does not match its fields/);
    // rewrite entry 2 consistently with itself: its successor's prevHash no longer matches
    const all = lines(text);
    const second: Record<string, unknown> = all[2] ?? {};
    const { createHash } = await import('node:crypto');
    const { canonicalBytes } = await import('@labtrace/protocols');
    const forged: Record<string, unknown> = { ...second, reason: 'rewritten' };
    const fields = {
      id: forged['id'],
      at: forged['at'],
      actor: forged['actor'],
      actor_role: forged['actorRole'],
      action: forged['action'],
      record_type: forged['recordType'],
      record_id: forged['recordId'],
      old_value: 'oldValue' in forged ? new TextDecoder().decode(canonicalBytes(forged['oldValue'])) : null,
      new_value: 'newValue' in forged ? new TextDecoder().decode(canonicalBytes(forged['newValue'])) : null,
      reason: forged['reason'],
    };
    forged['hash'] = createHash('sha256').update(String(forged['prevHash'])).update(canonicalBytes(fields)).digest('hex');
    const rewritten = [all[0], all[1], forged, ...all.slice(3)].map((l) => JSON.stringify(l)).join('\n');
    const result = await verify(rewritten);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`entry ${Number(second['id']) + 1}: prevHash is not the hash of entry ${String(second['id'])}`);
  });

  test('a removed entry or a cut file fails', async () => {
    const text = await exported();
    const all = text.trim().split('\n');
    const removed = [...all.slice(0, 3), ...all.slice(4)].join('\n');
    expect((await verify(removed)).stdout).toMatch(/entries 3: missing from a complete export \(before entry 4\)/);
    const cut = all.slice(0, -1).join('\n');
    expect(await verify(cut)).toMatchObject({ code: 1, stdout: expect.stringMatching(/ends without its trailer/) });
  });

  test('a filtered export verifies each entry and lists the gaps', async () => {
    const text = await exported('?recordType=method');
    const entries = lines(text).slice(1, -1);
    expect(entries.map((e) => e['recordId'])).toEqual(['m-1', 'm-2']);
    const result = await verify(text);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/not in this file \(filtered\): 1\.\./);
  });
});

describe('CSV', () => {
  test('the same entries as text columns; verifies, and a changed field fails naming the entry', async () => {
    const text = await exported('?format=csv', 'admin');
    expect(text.split('\n')[0]).toBe('id,at,actor,actorRole,action,recordType,recordId,oldValue,newValue,reason,prevHash,hash,logIndex');
    expect(await verify(text, 'trail.csv')).toMatchObject({ code: 0 });
    const changed = text.replace('why, ""quoted""', 'why, ""quoted!""');
    expect(changed).not.toBe(text);
    const result = await verify(changed, 'trail.csv');
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/entry \d+: its hash does not match its fields/);
  });
});

describe('unusable input', () => {
  test('exit 2: no such file, not an export, no argument', async () => {
    expect(await run([path.join(dir, 'nothing.jsonl')])).toMatchObject({ code: 2, stderr: expect.stringMatching(/file not found/) });
    expect(await verify('{"hello":1}\n')).toMatchObject({ code: 2, stderr: expect.stringMatching(/not a labtrace-audit-trail version 1 header/) });
    expect(await verify('a,b\n1,2\n', 'x.csv')).toMatchObject({ code: 2, stderr: expect.stringMatching(/first line must be the columns/) });
    expect(await run([])).toMatchObject({ code: 2, stderr: expect.stringMatching(/expected one file/) });
  });

  test('the query is validated, naming the field', async () => {
    const res = await t.fetch('/api/audit-trail/export?format=xml', {}, 'auditor');
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/query: format/);
  });
});

test("the browser's hash of an entry (protocols, pure JavaScript) is the server's (Node's crypto)", async () => {
  const { auditEntryHash } = await import('@labtrace/protocols');
  const { entryHash, GENESIS_HASH } = await import('../../src/audit/audit-trail.js');
  const fields = {
    id: 7,
    at: 1_800_000_000_123,
    actor: '王工',
    actor_role: 'technician',
    action: 'update',
    record_type: 'method',
    record_id: 'm-1',
    old_value: '{"a":1}',
    new_value: null,
    reason: 'typo "fixed"',
  };
  expect(auditEntryHash(GENESIS_HASH, fields)).toBe(entryHash(GENESIS_HASH, fields));
  expect(auditEntryHash('f'.repeat(64), { ...fields, reason: null })).toBe(entryHash('f'.repeat(64), { ...fields, reason: null }));
});
