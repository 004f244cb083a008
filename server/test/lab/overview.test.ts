// The lab manager's overview (GET /api/overview): every figure on a small known data set written into the store,
// each expected figure computed here from the data set itself (day boundaries written out as ISO dates, utilisation
// by walking the period minute by minute); "today" follows the zone asked for; who may read it; the zone checked.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Overview } from '@labtrace/protocols/api';
import { ORGANIZATION, postJson, startServer, TestGateway, type TestServer, waitFor } from '../helpers/server.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
/** the server's clock: 2026-03-15 18:00 in Shanghai, 10:00 in Berlin (UTC+1 until the 29th) */
const NOW = Date.parse('2026-03-15T10:00:00Z');

let t: TestServer;
let gw: TestGateway;

interface RunRow {
  id: string;
  state: 'planned' | 'running' | 'completed' | 'aborted';
  started: number | null;
  ended: number | null;
  instruments: string[];
  verdict?: 'pass' | 'fail' | 'no-decision';
  received: number;
}

// a deterministic data set: runs over the last 45 days, whole minutes, every state
const runs: RunRow[] = [];
for (let i = 0; i < 60; i++) {
  const started = NOW - 45 * DAY + i * 18 * HOUR + (i % 7) * 13 * MIN;
  const length = (30 + ((i * 37) % 400)) * MIN;
  const kind = i % 10;
  const state: RunRow['state'] = kind === 9 ? 'aborted' : 'completed';
  const instruments = i % 3 === 0 ? ['i-1', 'i-2'] : i % 3 === 1 ? ['i-1'] : ['i-2'];
  const verdict = (['pass', 'fail', 'pass', 'no-decision'] as const)[i % 4];
  runs.push({
    id: `r-${String(i).padStart(3, '0')}`,
    state,
    started,
    ended: started + length > NOW ? null : started + length,
    instruments,
    received: started - (1 + (i % 5)) * DAY,
    ...(state === 'completed' && verdict !== undefined ? { verdict } : {}),
  });
}
// one still running since this (Shanghai) morning, one started at 01:00 Shanghai (the 14th in Berlin), two planned
runs.push({
  id: 'r-run',
  state: 'running',
  started: Date.parse('2026-03-15T08:00:00+08:00'),
  ended: null,
  instruments: ['i-2'],
  received: NOW - 3 * DAY,
});
runs.push({
  id: 'r-early',
  state: 'completed',
  started: Date.parse('2026-03-15T01:00:00+08:00'),
  ended: Date.parse('2026-03-15T01:30:00+08:00'),
  instruments: ['i-1'],
  verdict: 'fail',
  received: NOW - 2 * DAY,
});
for (const id of ['r-plan-1', 'r-plan-2']) runs.push({ id, state: 'planned', started: null, ended: null, instruments: ['i-1'], received: NOW - DAY });
for (const r of runs) if (r.state !== 'running' && r.state !== 'planned' && r.ended === null) r.state = 'running';

/** reports: the first issued for every third completed run, one amended, three drafts */
const completed = runs.filter((r) => r.state === 'completed');
const issued = completed.filter((_, i) => i % 3 === 0).map((r, i) => ({ id: `C-${i}`, run: r, at: (r.ended as number) + (i + 1) * HOUR }));
const amendment = { id: 'C-amend', amends: 'C-0', run: issued[0]?.run as RunRow, at: NOW - HOUR };
const drafts = [
  { id: 'D-1', run: completed[1] as RunRow, at: NOW - 5 * DAY },
  { id: 'D-2', run: completed[2] as RunRow, at: NOW - 2 * DAY },
  { id: 'D-3', run: completed[4] as RunRow, at: NOW - DAY },
];

beforeAll(async () => {
  t = await startServer({}, undefined, { clock: () => NOW });
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('i-live');
  await waitFor(
    'the announced instrument',
    () => t.server.database.sqlite.prepare("SELECT 1 FROM instruments WHERE id = 'i-live'").get() !== undefined,
  );
  const db = t.server.database.sqlite;
  db.transaction(() => {
    db.prepare("INSERT INTO gateways (id, lab, version, session, first_seen, last_seen) VALUES ('gw-x', 'lab-t', '1', 1, ?, ?)").run(
      NOW - 9 * DAY,
      NOW - 2 * DAY,
    );
    for (const id of ['i-1', 'i-2', 'i-3'])
      db.prepare("INSERT INTO instruments (id, gateway, identity, channels, updated_at) VALUES (?, 'gw-x', '{}', '[]', ?)").run(id, NOW - 9 * DAY);
    db.prepare(
      "INSERT INTO methods (id, version, standard, title, definition, created_by, created_at) VALUES ('m-1', 1, 'S', 'T', '{}', 'tech', ?)",
    ).run(NOW - 60 * DAY);
    for (const r of runs) {
      db.prepare(
        `INSERT INTO lab_samples (id, organization, description, condition, received_at, created_by, created_at) VALUES (?, ?, 'item', 'ok', ?, 'tech', ?)`,
      ).run(`s-${r.id}`, ORGANIZATION, r.received, r.received);
      db.prepare(
        `INSERT INTO runs (id, sample, organization, method_id, method_version, instruments, technician, state, accredited, created_by, created_at, started_at, ended_at)
         VALUES (?, ?, ?, 'm-1', 1, ?, 'technician', ?, 0, 'technician', ?, ?, ?)`,
      ).run(
        r.id,
        `s-${r.id}`,
        ORGANIZATION,
        JSON.stringify(r.instruments.map((id) => ({ id, gateway: 'gw-x' }))),
        r.state,
        r.received,
        r.started,
        r.ended,
      );
      if (r.verdict !== undefined && r.state === 'completed')
        db.prepare('INSERT INTO run_results (run, computed_at, results) VALUES (?, ?, ?)').run(
          r.id,
          r.ended,
          JSON.stringify({ run: r.id, verdict: r.verdict }),
        );
    }
    const request = db.prepare(
      'INSERT INTO certificate_requests (id, run, organization, amends, reason, requested_by, requested_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    const certificate = db.prepare(
      `INSERT INTO certificates (id, run, organization, amends, issued_by, issued_at, content, json, pdf, dcc, statement, signature, key_id, json_file_digest, log_index)
       VALUES (?, ?, ?, ?, 'signatory', ?, x'00', x'00', x'00', x'00', '{}', 's', 'k', 'd', 0)`,
    );
    for (const c of [...issued, { ...amendment }]) {
      const amends = 'amends' in c ? c.amends : null;
      request.run(c.id, c.run.id, ORGANIZATION, amends, amends === null ? null : 'typo', 'technician', c.at - HOUR);
      certificate.run(c.id, c.run.id, ORGANIZATION, amends, c.at);
    }
    for (const d of drafts) request.run(d.id, d.run.id, ORGANIZATION, null, null, 'technician', d.at);
    // i-1 due in 10 days, i-2 expired 3 days ago, i-3 valid for 200 days (calibrated twice: the newest counts)
    const calibration = db.prepare(
      `INSERT INTO calibrations (instrument, calibrated_at, laboratory, certificate, results, uncertainty, next_due_at, recorded_by, recorded_at)
       VALUES (?, ?, 'cal lab', 'c', '[]', '[]', ?, 'tech', ?)`,
    );
    calibration.run('i-1', NOW - 355 * DAY, NOW + 10 * DAY, NOW - 355 * DAY);
    calibration.run('i-2', NOW - 368 * DAY, NOW - 3 * DAY, NOW - 368 * DAY);
    calibration.run('i-3', NOW - 400 * DAY, NOW + 5 * DAY, NOW - 400 * DAY);
    calibration.run('i-3', NOW - 165 * DAY, NOW + 200 * DAY, NOW - 165 * DAY);
    // alarms: a1 open, a2 acknowledged (open), a3 cleared, a4 escalated (open) on another run
    const alarm = db.prepare(
      `INSERT INTO run_alarms (run, alarm, event, at, rule_id, severity, instrument, channel, detail) VALUES (?, ?, ?, ?, 'rule', 'alarm', 'i-1', 'c', '{}')`,
    );
    alarm.run('r-run', 'a1', 'raised', NOW - 3 * HOUR);
    alarm.run('r-run', 'a2', 'raised', NOW - 3 * HOUR);
    alarm.run('r-run', 'a2', 'acknowledged', NOW - 2 * HOUR);
    alarm.run('r-run', 'a3', 'raised', NOW - 3 * HOUR);
    alarm.run('r-run', 'a3', 'cleared', NOW - HOUR);
    alarm.run('r-early', 'a4', 'raised', NOW - 9 * HOUR);
    alarm.run('r-early', 'a4', 'escalated', NOW - 8 * HOUR);
  })();
});

afterAll(async () => {
  await gw?.end();
  await t?.stop();
});

async function overview(zone: string, role: 'admin' | 'signatory' | 'auditor' = 'admin'): Promise<Overview> {
  const res = await t.fetch(`/api/overview?zone=${encodeURIComponent(zone)}`, {}, role);
  expect(res.status).toBe(200);
  return (await res.json()) as Overview;
}

const inRange = (x: number | null, from: number, to: number): boolean => x !== null && x >= from && x < to;
const sorted = (a: number[]) => [...a].sort((x, y) => x - y);

describe('the figures', () => {
  test('in Shanghai: runs today and this month, verdicts, turnaround, drafts, calibrations, alarms, gateways', async () => {
    const o = await overview('Asia/Shanghai');
    const today = Date.parse('2026-03-15T00:00:00+08:00');
    const month = Date.parse('2026-03-01T00:00:00+08:00');
    expect(o.zone).toBe('Asia/Shanghai');
    expect(o.periods.today.from).toBe(today);
    expect(o.periods.month.from).toBe(month);
    const counts = (from: number) => ({
      started: runs.filter((r) => inRange(r.started, from, NOW + 1)).length,
      completed: runs.filter((r) => r.state === 'completed' && inRange(r.ended, from, NOW + 1)).length,
      aborted: runs.filter((r) => r.state === 'aborted' && inRange(r.ended, from, NOW + 1)).length,
    });
    expect(o.runs.today).toEqual(counts(today));
    expect(o.runs.today.started).toBeGreaterThanOrEqual(2); // r-run and r-early at least
    expect(o.runs.month).toEqual(counts(month));
    expect(o.runs.running).toBe(runs.filter((r) => r.state === 'running').length);
    expect(o.runs.planned).toBe(2);

    const monthCompleted = runs.filter((r) => r.state === 'completed' && inRange(r.ended, month, NOW + 1));
    expect(o.verdicts).toEqual({
      pass: monthCompleted.filter((r) => r.verdict === 'pass').length,
      fail: monthCompleted.filter((r) => r.verdict === 'fail').length,
      noDecision: monthCompleted.filter((r) => r.verdict === 'no-decision').length,
    });
    expect(o.verdicts.pass + o.verdicts.fail).toBeGreaterThan(0);

    const tat = sorted(issued.filter((c) => inRange(c.at, month, NOW + 1)).map((c) => c.at - c.run.received));
    expect(o.turnaround.reports).toBe(tat.length);
    const mid = Math.floor(tat.length / 2);
    expect(o.turnaround.medianMs).toBe(tat.length % 2 ? tat[mid] : Math.round(((tat[mid - 1] as number) + (tat[mid] as number)) / 2));
    expect(o.turnaround.p90Ms).toBe(tat[Math.ceil(0.9 * tat.length) - 1]);
    const durations = sorted(monthCompleted.map((r) => (r.ended as number) - (r.started as number)));
    expect(o.turnaround.runs).toBe(durations.length);
    const dm = Math.floor(durations.length / 2);
    expect(o.turnaround.testMedianMs).toBe(
      durations.length % 2 ? durations[dm] : Math.round(((durations[dm - 1] as number) + (durations[dm] as number)) / 2),
    );

    expect(o.drafts).toEqual({ count: 3, oldestAt: NOW - 5 * DAY });
    // i-1 due in 10 days; i-2 expired; i-live never calibrated; i-3's newest calibration is valid for 200 days
    expect(o.calibrations).toEqual({ dueSoon: 1, expired: 1, never: 1, days: 30 });
    expect(o.alarms).toEqual({ open: 3, unacknowledged: 2, runs: 2 });

    expect(o.gateways.items).toContainEqual({ id: 'gw-x', connected: false, lastSeen: NOW - 2 * DAY });
    expect(o.gateways.items.find((g) => g.id === 'gw-a')?.connected).toBe(true);
    expect(o.gateways.connected).toBe(o.gateways.items.filter((g) => g.connected).length);
    expect(o.gateways.total).toBe(o.gateways.items.length);
  });

  test('runs per day and utilisation over the 30 days', async () => {
    const o = await overview('Asia/Shanghai');
    const first = Date.parse('2026-02-14T00:00:00+08:00');
    expect(o.periods.days.from).toBe(first);
    expect(o.daily).toHaveLength(30);
    expect(o.daily[0]?.day).toBe('2026-02-14');
    expect(o.daily[29]?.day).toBe('2026-03-15');
    o.daily.forEach((d, i) => {
      const from = first + i * DAY; // no daylight saving in Shanghai
      expect(d.from).toBe(from);
      const to = Math.min(from + DAY, NOW + 1);
      expect(d.started).toBe(runs.filter((r) => inRange(r.started, from, to)).length);
      expect(d.completed).toBe(runs.filter((r) => r.state === 'completed' && inRange(r.ended, from, to)).length);
    });
    // busy minutes counted one by one: a minute is busy when a run holding the instrument covers it
    for (const id of ['i-1', 'i-2', 'i-3']) {
      let busy = 0;
      for (let m = first; m < NOW; m += MIN)
        if (runs.some((r) => r.instruments.includes(id) && r.started !== null && r.started <= m && (r.ended ?? NOW + 1) >= m + MIN)) busy += MIN;
      // a run still going is busy up to the end of the period (now, inclusive)
      if (runs.some((r) => r.instruments.includes(id) && r.state === 'running')) busy += 1;
      const u = o.utilisation.find((x) => x.instrument === id);
      expect(u?.busyMs).toBe(busy);
      expect(u?.share).toBeCloseTo(busy / (NOW + 1 - first), 9);
    }
    expect(o.utilisation.find((x) => x.instrument === 'i-3')?.busyMs).toBe(0);
  });

  test("today is the caller's day: 01:00 in Shanghai is yesterday in Berlin", async () => {
    const shanghai = await overview('Asia/Shanghai');
    const berlin = await overview('Europe/Berlin');
    expect(berlin.periods.today.from).toBe(Date.parse('2026-03-15T00:00:00+01:00'));
    const early = runs.find((r) => r.id === 'r-early')?.started as number;
    expect(inRange(early, shanghai.periods.today.from, NOW + 1)).toBe(true);
    expect(inRange(early, berlin.periods.today.from, NOW + 1)).toBe(false);
    expect(berlin.runs.today.started).toBe(runs.filter((r) => inRange(r.started, berlin.periods.today.from, NOW + 1)).length);
    expect(berlin.runs.today.started).toBeLessThan(shanghai.runs.today.started);
    // the zone is answered in its canonical spelling
    expect((await overview('europe/berlin')).zone).toBe('Europe/Berlin');
  });
});

describe('who reads it', () => {
  test('the admin, the signatory and an auditor over every organization; not a technician or a client', async () => {
    await overview('UTC', 'signatory');
    await overview('UTC', 'auditor');
    for (const role of ['technician', 'client'] as const) {
      const res = await t.fetch('/api/overview?zone=UTC', {}, role);
      expect(res.status).toBe(403);
    }
    expect((await t.fetch('/api/overview?zone=UTC', {}, null)).status).toBe(401);
  });

  test('an auditor whose grant names some organizations is refused: the figures are lab-wide', async () => {
    const res = await t.fetch(
      '/api/users',
      postJson({
        username: 'auditor-a',
        role: 'auditor',
        password: 'auditor-a-secret-pw',
        grantUntil: Date.now() + DAY,
        grantOrganizations: [ORGANIZATION],
      }),
    );
    expect(res.status).toBe(201);
    const token = (await t.server.users.createApiToken({ username: 'test', role: 'system' }, 'auditor-a', 'tests', DAY)).token;
    const refused = await fetch(`${t.base}/api/overview?zone=UTC`, { headers: { authorization: `Bearer ${token}` } });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { reason: string }).reason).toBe('auth.grant-too-narrow');
  });
});

describe('the zone', () => {
  test.each([['Mars/Olympus_Mons'], ['+08:00'], ['']])('%p is refused with 400 naming the zone', async (zone) => {
    const res = await t.fetch(`/api/overview?zone=${encodeURIComponent(zone)}`);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { code: string; issues: { path: string }[] };
    expect(body.code).toBe('E_BAD_REQUEST');
    expect(body.issues.map((i) => i.path)).toContain('zone');
  });

  test('a missing zone or an unknown field is refused with 400', async () => {
    for (const q of ['', '?zone=UTC&extra=1']) {
      const res = await t.fetch(`/api/overview${q}`);
      expect(res.status).toBe(400);
    }
  });
});
