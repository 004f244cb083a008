// The supervisor against a lab double whose log the test rewrites: a second tree of the same size (a split view) and
// a tree that does not extend the one held are findings whose evidence, the two signed checkpoints, verifies offline
// with the lab's key alone; the supervisor keeps the checkpoint it held. A log that stops while the lab reports
// activity is a finding too.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import pino from 'pino';
import { ed25519NoteVerifier, openCheckpoint, toHex } from '@labtrace/protocols';
import { DEFAULT_RULE_SETTINGS } from '../../src/supervisor/evidence.js';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import { DOUBLE_ORIGIN, LabDouble } from './log-double.js';

const TOKEN = 'supervisor-api-token-for-tests-0123456789';
const HOUR = 3_600_000;
let dir: string;
let lab: LabDouble;
let supervisor: Supervisor;
let now = Date.UTC(2026, 11, 1);

beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'labtrace-supervisor-'));
  lab = new LabDouble();
  await lab.start();
  supervisor = new Supervisor(
    {
      host: '127.0.0.1',
      port: 0,
      database: path.join(dir, 'supervisor.db'),
      apiToken: TOKEN,
      followEveryMs: HOUR,
      settings: DEFAULT_RULE_SETTINGS,
      labs: [
        {
          id: 'double',
          name: 'double',
          url: lab.url,
          origin: DOUBLE_ORIGIN,
          logKey: lab.logKey,
          token: 'lab-token',
          witnesses: [],
          witnessesRequired: 0,
        },
      ],
      now: () => now,
    },
    pino({ level: 'silent' }),
  );
  await supervisor.start();
});

afterEach(async () => {
  await supervisor.stop();
  await lab.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function check(): Promise<{ logSize: number; tier: string; lastError: string | null }> {
  const res = await fetch(`${supervisor.url}/api/labs/double/check`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  return (await res.json()) as { logSize: number; tier: string; lastError: string | null };
}

async function findings(): Promise<
  { rule: string; severity: string; summary: { en: string; zh: string }; evidence: { detail?: Record<string, unknown> } }[]
> {
  const res = await fetch(`${supervisor.url}/api/labs/double/findings`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return ((await res.json()) as { findings: [] }).findings;
}

describe('a lab that contradicts its own checkpoints', () => {
  test('another tree of the same size is a fork: both signed checkpoints are kept and verify offline', async () => {
    lab.entries = ['a', 'b', 'c', 'd'];
    expect(await check()).toMatchObject({ logSize: 4, tier: 'A', lastError: null });
    expect(await findings()).toEqual([]);
    lab.entries = ['a', 'b', 'X', 'd'];
    const view = await check();
    // the supervisor keeps following the history it held
    expect(view).toMatchObject({ logSize: 4, tier: 'D' });
    const [fork] = await findings();
    expect(fork).toMatchObject({ rule: 'log-consistent', severity: 'critical' });
    const detail = fork?.evidence.detail as { heldCheckpoint: string; servedCheckpoint: string };
    const key = [ed25519NoteVerifier(lab.logKey)];
    const held = openCheckpoint(detail.heldCheckpoint, key, { origin: DOUBLE_ORIGIN }).checkpoint;
    const served = openCheckpoint(detail.servedCheckpoint, key, { origin: DOUBLE_ORIGIN }).checkpoint;
    expect(held.size).toBe(served.size);
    expect(toHex(held.rootHash)).not.toBe(toHex(served.rootHash));
    // what was found, in both languages, with both roots as they are
    expect(fork?.summary).toEqual({
      en: `fork: two trees of size 4: roots ${toHex(held.rootHash)} and ${toHex(served.rootHash)}`,
      zh: `分叉：出现两棵大小同为 4 的树：根哈希 ${toHex(held.rootHash)} 与 ${toHex(served.rootHash)}`,
    });
  });

  test('a larger tree that does not extend the one held is refused with its proof as evidence', async () => {
    lab.entries = ['a', 'b', 'c'];
    await check();
    lab.entries = ['a', 'B', 'c', 'd', 'e'];
    expect(await check()).toMatchObject({ logSize: 3, tier: 'D' });
    const [f] = await findings();
    expect(f?.summary.en).toMatch(/^bad-proof: the tree of size 5 does not extend the one of size 3/);
    expect(f?.summary.zh).toBe('一致性证明无效：大小为 5 的树不是大小为 3 的树的延伸（一致性证明未通过验证）');
    expect((f?.evidence.detail as { proof: string[] }).proof.length).toBeGreaterThan(0);
  });

  test('a log that grows consistently is followed without a finding', async () => {
    lab.entries = ['a', 'b', 'c'];
    await check();
    lab.entries = ['a', 'b', 'c', 'd', 'e'];
    expect(await check()).toMatchObject({ logSize: 5, tier: 'A', lastError: null });
    expect(await findings()).toEqual([]);
  });
});

describe('a log that stopped advancing', () => {
  test('reports issued after the log last grew, past the grace, are a finding; before the grace they are not', async () => {
    lab.entries = ['a', 'b'];
    const start = now;
    await check();
    // half an hour later the lab reports a report issued, the log still at 2 entries: within the grace
    lab.certificates = [certificate('TR-1', start + HOUR / 2)];
    now = start + HOUR;
    await check();
    expect((await findings()).map((f) => f.rule)).not.toContain('log-stalled');
    // two hours on, another report, and the log has not grown
    lab.certificates.push(certificate('TR-2', start + 90 * 60_000));
    now = start + 2 * HOUR;
    await check();
    const stalled = (await findings()).filter((f) => f.rule === 'log-stalled');
    expect(stalled).toHaveLength(1);
    expect(stalled[0]?.summary.en).toMatch(/the log stayed at 2 entries .*\(report TR-2 issued\)/);
    expect(stalled[0]?.summary.zh).toMatch(/^透明日志自 \S+ 至 \S+ 一直停留在 2 条，而实验室在此期间报告了 1 项业务活动（检测报告 TR-2 签发）$/);
  });
});

function certificate(id: string, issuedAt: number): Record<string, unknown> {
  return { id, run: 'run-1', status: 'valid', issuedBy: 's', issuedAt, amends: null, amendReason: null, logIndex: null, digests: null };
}

describe('the schedule of deeper checks follows the tier', () => {
  test('tier A is checked again after a day, tier D after 15 minutes', async () => {
    lab.entries = ['a', 'b'];
    const start = now;
    await supervisor.runRound();
    const checks = async (): Promise<number> => (await supervisor.store.checkRuns('double')).length;
    const first = await checks();
    expect(first).toBeGreaterThanOrEqual(1);
    now = start + 2 * HOUR;
    await supervisor.runRound();
    expect(await checks()).toBe(first);
    now = start + 25 * HOUR;
    await supervisor.runRound();
    expect(await checks()).toBe(first + 1);
    // a fork: checked at once, the lab is tier D, and checked again 15 minutes later
    lab.entries = ['a', 'X'];
    await supervisor.runRound();
    expect(await checks()).toBe(first + 2);
    expect((await supervisor.standing('double')).tier).toBe('D');
    lab.entries = ['a', 'b'];
    now += 10 * 60_000;
    await supervisor.runRound();
    expect(await checks()).toBe(first + 2);
    now += 6 * 60_000;
    await supervisor.runRound();
    expect(await checks()).toBe(first + 3);
  });
});
