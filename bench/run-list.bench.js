// The runs list with 100,000 runs in the store: how long GET /api/runs takes to answer a page (50 runs, each with its
// open-alarm count), newest first, deep in the list through the cursor, filtered by state, by open alarms, searched
// over the sample's description, and as a client (one organization's runs). The runs are inserted directly with SQL
// (the state machine's audit entries are not what is measured); 1,000 of them carry alarm events, half still open.
// Sequential requests over loopback HTTP to the server in this process, as a dashboard asks. Target: a page within
// 50 ms (p95).
// Environment: BENCH_RUN_LIST_RUNS (100000), BENCH_RUN_LIST_REQUESTS (40 per case).
// Writes bench/results/run-list.json.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { URLSearchParams } from 'node:url';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { LabtraceServer, serverConfigSchema } from '../server/dist/src/index.js';
import { useNodeCrypto } from '../protocols/dist/src/node/index.js';
import { api } from '../protocols/dist/src/api/index.js';
import { percentile, round1, writeResult } from './lib/result.js';
import { envReader } from './lib/env.js';

const NAME = 'run-list';
const { envInt } = envReader(NAME);
const params = {
  runs: envInt('BENCH_RUN_LIST_RUNS', 100_000, 1000, 10_000_000),
  requests: envInt('BENCH_RUN_LIST_REQUESTS', 40, 5, 10_000),
  pageSize: 50,
  runsWithAlarms: 1000,
  targets: { pageP95Ms: 50 },
};
const log = (msg) => console.log(`${new Date().toISOString().slice(11, 23)} ${NAME}: ${msg}`);
const ORGS = ['org-a', 'org-b', 'org-c', 'org-d'];
const STATES = ['completed', 'completed', 'completed', 'aborted', 'running', 'planned'];

async function main() {
  useNodeCrypto();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-bench-run-list-'));
  const config = serverConfigSchema.parse({
    lab: 'bench',
    dataDir,
    http: { host: '127.0.0.1', port: 0, rateLimit: false },
    mqtt: { host: '127.0.0.1', port: 0 },
  });
  const server = new LabtraceServer(config, pino({ level: 'silent' }), { adminPassword: 'bench-admin-password', announce: () => undefined });
  await server.start();
  try {
    const system = { username: 'bench', role: 'system' };
    for (const org of ORGS) await server.users.createOrganization(system, org, `Customer ${org}`, `quality@${org}.example`);
    await server.users.create(system, { username: 'tech', role: 'technician', password: 'bench-tech-password' });
    await server.users.create(system, { username: 'cli', role: 'client', password: 'bench-client-password', organization: 'org-b' });
    const token = async (user) => (await server.users.createApiToken(system, user, 'bench', 86_400_000)).token;
    const tokens = { technician: await token('tech'), client: await token('cli') };
    await server.labRecords.createMethod(system, {
      id: 'tensile',
      standard: 'ISO 6892-1:2019',
      title: 'Tensile testing at room temperature',
      definition: {
        measurands: [{ name: 'force', unit: 'kN', channel: 'c' }],
        instrumentTypes: [],
        limits: [],
        results: [],
        rules: [],
        decisionRule: { kind: 'simple-acceptance' },
      },
    });
    const now = Date.now();
    const samples = 1000;
    for (let i = 0; i < samples; i++)
      await server.labRecords.createSample(system, {
        id: `S-${i}`,
        organization: ORGS[i % ORGS.length],
        description: i === 777 ? 'copper wire, batch needle-777' : `steel bar B500B lot ${i}`,
        condition: 'intact',
        receivedAt: now - 86_400_000,
      });

    log(`inserting ${params.runs} runs`);
    const t0 = performance.now();
    const db = server.database.sqlite;
    const insertRun = db.prepare(`INSERT INTO runs (id, sample, organization, method_id, method_version, instruments, technician, state,
      accredited, created_by, created_at, started_at, ended_at, end_reason) VALUES (?, ?, ?, 'tensile', 1, '[{"id":"utm-1","gateway":"gw-a"}]',
      'tech', ?, 0, 'tech', ?, ?, ?, NULL)`);
    const insertAlarm = db.prepare(`INSERT INTO run_alarms (run, alarm, event, at, rule_id, severity, instrument, channel, detail, person, reason)
      VALUES (?, ?, ?, ?, 'force-limits', 'alarm', 'utm-1', 'c', ?, ?, ?)`);
    const alarmEvery = Math.floor(params.runs / params.runsWithAlarms);
    db.transaction(() => {
      for (let i = 1; i <= params.runs; i++) {
        const sample = (i * 7) % samples;
        const state = STATES[i % STATES.length];
        const created = now - (params.runs - i) * 60_000;
        const started = state === 'planned' ? null : created + 1000;
        const ended = state === 'completed' || state === 'aborted' ? created + 600_000 : null;
        insertRun.run(`run-${i}`, `S-${sample}`, ORGS[sample % ORGS.length], state, created, started, ended);
        if (i % alarmEvery === 0) {
          const alarm = `force-limits/utm-1/c#${i}`;
          const detail = (extra) =>
            JSON.stringify({
              id: alarm,
              ruleId: 'force-limits',
              kind: 'limits',
              severity: 'alarm',
              instrument: 'utm-1',
              channel: 'c',
              message: 'utm-1/c 55 kN above the high limit 50',
              raisedAt: created + 2000,
              value: 55,
              active: false,
              occurrences: 1,
              returnedAt: created + 3000,
              acknowledged: null,
              cleared: null,
              ...extra,
            });
          insertAlarm.run(`run-${i}`, alarm, 'raised', created + 2000, detail({ active: true, returnedAt: null }), null, null);
          insertAlarm.run(`run-${i}`, alarm, 'returned', created + 3000, detail({}), null, null);
          // every other one cleared: the rest stay open
          if ((i / alarmEvery) % 2 === 0) {
            const ack = { by: 'tech', reason: 'checked', at: created + 4000 };
            insertAlarm.run(`run-${i}`, alarm, 'acknowledged', created + 4000, detail({ acknowledged: ack }), 'tech', 'checked');
            insertAlarm.run(
              `run-${i}`,
              alarm,
              'cleared',
              created + 5000,
              detail({ acknowledged: ack, cleared: { ...ack, at: created + 5000, auto: false } }),
              'tech',
              'checked',
            );
          }
        }
      }
    })();
    // a store in its steady state: the bulk insert's WAL copied into the database, as the server's checkpoints do
    db.pragma('wal_checkpoint(TRUNCATE)');
    log(`inserted in ${Math.round(performance.now() - t0)} ms`);

    const base = `http://127.0.0.1:${server.httpPort}`;
    async function page(query, role) {
      const started = performance.now();
      const res = await fetch(`${base}/api/runs${query}`, { headers: { authorization: `Bearer ${tokens[role]}` } });
      const body = await res.json();
      const ms = performance.now() - started;
      if (res.status !== 200) throw new Error(`${query}: ${res.status} ${JSON.stringify(body)}`);
      return { ms, body };
    }
    // a cursor deep in the list: the page after the first 90% of the runs
    const deep = String(Math.floor(params.runs / 10));
    const cases = {
      'first page': ['?limit=50', 'technician'],
      'deep page (cursor)': [`?limit=50&cursor=${deep}`, 'technician'],
      'state=running': ['?limit=50&state=running', 'technician'],
      'alarms=open': ['?limit=50&alarms=open', 'technician'],
      'q (sample description, one match in 100)': ['?limit=50&q=needle-777', 'technician'],
      'client (one organization)': ['?limit=50', 'client'],
    };
    const results = {};
    for (const [name, [query, role]] of Object.entries(cases)) {
      for (let i = 0; i < 3; i++) await page(query, role); // warm the statements and the page cache
      const times = [];
      let items = 0;
      for (let i = 0; i < params.requests; i++) {
        const { ms, body } = await page(query, role);
        times.push(ms);
        items = body.items.length;
      }
      times.sort((a, b) => a - b);
      // the same page read in this process, without HTTP: the store's and the mapping's share of the time
      const viewer = role === 'client' ? { role: 'client', organization: 'org-b' } : { role: 'technician', organization: null };
      const parsed = api.listRuns.query.parse(Object.fromEntries(new URLSearchParams(query)));
      const direct = [];
      for (let i = 0; i < params.requests; i++) {
        const started = performance.now();
        await server.runs.page(viewer, parsed);
        direct.push(performance.now() - started);
      }
      direct.sort((a, b) => a - b);
      results[name] = {
        items,
        p50Ms: round1(percentile(times, 50)),
        p95Ms: round1(percentile(times, 95)),
        maxMs: round1(times.at(-1)),
        inProcessP50Ms: round1(percentile(direct, 50)),
      };
      log(
        `${name}: ${items} runs, p50 ${results[name].p50Ms} ms, p95 ${results[name].p95Ms} ms (in process: p50 ${results[name].inProcessP50Ms} ms)`,
      );
    }
    const count = await (async () => {
      const started = performance.now();
      const res = await fetch(`${base}/api/alarms/open-count`, { headers: { authorization: `Bearer ${tokens.technician}` } });
      const body = await res.json();
      return { ms: round1(performance.now() - started), ...body };
    })();
    log(`open-count: ${count.open} open alarms in ${count.runs} runs, ${count.ms} ms`);
    const first = results['first page'];
    const file = writeResult(NAME, {
      params,
      results: {
        // the machine's load while measuring (2 cores shared with other work): latencies scale with it
        loadAverage: os.loadavg().map(round1),
        pageP95Ms: first.p95Ms,
        pageP50Ms: first.p50Ms,
        meetsTarget: Object.values(results).every((r) => r.p95Ms !== null && r.p95Ms <= params.targets.pageP95Ms),
        cases: results,
        openCount: count,
      },
    });
    log(`wrote ${file}`);
  } finally {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
