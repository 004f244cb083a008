// Benchmark of the inspection rule engine, in this process on one core: 20 rules over 8 channels of 4
// instruments, on a stream made by the simulator's own signal models with its fault injection (noise, drift,
// stuck, disconnect), fed as ingest would: batches of samples, and tick() once per second of stream time.
//
//   utm-1  universal testing machine  force (limits, rate of change, stuck, missing data), extension (limits, rate, missing data)
//   cc-1   climate chamber            temperature (limits, drift against temperature-ref, missing data),
//                                     temperature-ref (missing data), humidity (limits, rate of change)
//   pc-1   pressure calibrator        pressure (limits, rate of change, stuck, missing data)
//   bal-1  balance                    mass (limits)
//   every channel: quality (bad); utm-1: instrument status (its calibration expires half-way through)
//
// Faults: cc-1 noise on humidity for 60 s; utm-1 a 60 s disconnect (5 s of bad samples without a value, then nothing);
// cc-1 drift of temperature from half-way; pc-1 stuck for 5 min. Samples every 100 ms per channel.
// The stream is made before measuring; each pass evaluates all of it on a fresh engine. The same stream through
// an engine without rules is measured as a baseline (the cost of the loop and of finding a sample's rules).
//
// Environment: BENCH_RULES_SAMPLES (600000), BENCH_RULES_BATCH (200 samples per evaluate call), BENCH_RULES_SECONDS
// (2: each round makes passes over the stream, each on a fresh engine, for at least this long), BENCH_RULES_ROUNDS
// (5, rules and baseline interleaved; each figure is the median of its rounds), BENCH_RULES_WARMUP_ROUNDS (2), BENCH_RULES_QUIET_WAIT_SECONDS (10: before each
// round, wait at most this long for the rest of the machine to use less than a quarter of a core).
// Writes bench/results/rules.json. Exits non-zero when the faults do not raise the alarms they should; a figure
// below the target is reported, not an error.
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { FaultSet, createModel } from '../device-sim/dist/src/index.js';
import { RuleEngine } from '../server/dist/src/inspection/engine.js';
import { parseRules } from '../server/dist/src/inspection/rules.js';
import { clockTicks, machineTicks, waitForQuiet } from './lib/proc.js';
import { round1, writeResult } from './lib/result.js';
import { envReader } from './lib/env.js';

const NAME = 'rules';
const { envNumber } = envReader(NAME);
const TARGET = 200_000;
const QUIET_OTHERS_PERCENT = 25;
const PERIOD_MS = 100;
const T0 = Date.UTC(2026, 10, 27, 8, 0, 0);

const RULES = parseRules([
  { id: 'force-limits', kind: 'limits', severity: 'alarm', instrument: 'utm-1', channel: 'force', low: -1, warnHigh: 45, high: 50 },
  { id: 'force-rate', kind: 'rate-of-change', severity: 'warning', instrument: 'utm-1', channel: 'force', maxPerSecond: 500 },
  { id: 'force-stuck', kind: 'stuck', severity: 'alarm', instrument: 'utm-1', channel: 'force', periodMs: 10_000 },
  { id: 'force-gap', kind: 'missing-data', severity: 'alarm', instrument: 'utm-1', channel: 'force', maxGapMs: 2000 },
  { id: 'ext-limits', kind: 'limits', severity: 'alarm', instrument: 'utm-1', channel: 'extension', low: -0.5, high: 15 },
  { id: 'ext-rate', kind: 'rate-of-change', severity: 'warning', instrument: 'utm-1', channel: 'extension', maxPerSecond: 150 },
  { id: 'ext-gap', kind: 'missing-data', severity: 'alarm', instrument: 'utm-1', channel: 'extension', maxGapMs: 2000 },
  { id: 'temp-limits', kind: 'limits', severity: 'alarm', instrument: 'cc-1', channel: 'temperature', low: -45, warnHigh: 95, high: 100 },
  {
    id: 'temp-drift',
    kind: 'drift',
    severity: 'warning',
    instrument: 'cc-1',
    channel: 'temperature',
    reference: 'temperature-ref',
    maxDifference: 0.5,
    windowMs: 30_000,
  },
  { id: 'temp-gap', kind: 'missing-data', severity: 'alarm', instrument: 'cc-1', channel: 'temperature', maxGapMs: 5000 },
  { id: 'ref-gap', kind: 'missing-data', severity: 'alarm', instrument: 'cc-1', channel: 'temperature-ref', maxGapMs: 5000 },
  { id: 'rh-limits', kind: 'limits', severity: 'warning', instrument: 'cc-1', channel: 'humidity', low: 0, high: 100 },
  { id: 'rh-rate', kind: 'rate-of-change', severity: 'warning', instrument: 'cc-1', channel: 'humidity', maxPerSecond: 20 },
  { id: 'p-limits', kind: 'limits', severity: 'alarm', instrument: 'pc-1', channel: 'pressure', low: -1, high: 1100 },
  { id: 'p-rate', kind: 'rate-of-change', severity: 'warning', instrument: 'pc-1', channel: 'pressure', maxPerSecond: 2000 },
  { id: 'p-stuck', kind: 'stuck', severity: 'alarm', instrument: 'pc-1', channel: 'pressure', periodMs: 30_000 },
  { id: 'p-gap', kind: 'missing-data', severity: 'alarm', instrument: 'pc-1', channel: 'pressure', maxGapMs: 2000 },
  // the pan rings for a second when a load goes on or off (readings marked uncertain): -66 g to 274 g on the way
  { id: 'mass-limits', kind: 'limits', severity: 'warning', instrument: 'bal-1', channel: 'mass', low: -100, high: 300 },
  { id: 'quality', kind: 'quality', severity: 'warning', minimum: 'uncertain' },
  { id: 'utm-calibration', kind: 'instrument-status', severity: 'critical', instrument: 'utm-1' },
]);

const params = {
  samples: envNumber('BENCH_RULES_SAMPLES', 600_000, 10_000, 10_000_000),
  batch: envNumber('BENCH_RULES_BATCH', 200, 1, 100_000),
  seconds: envNumber('BENCH_RULES_SECONDS', 2, 0.1, 600),
  rounds: envNumber('BENCH_RULES_ROUNDS', 5, 1, 100),
  warmupRounds: envNumber('BENCH_RULES_WARMUP_ROUNDS', 2, 0, 100),
  quietWaitSeconds: envNumber('BENCH_RULES_QUIET_WAIT_SECONDS', 10, 0, 3600),
  rules: RULES.length,
  instruments: 4,
  channels: 8,
  samplePeriodMs: PERIOD_MS,
  target: TARGET,
};

const log = (msg) => console.log(`${new Date().toISOString().slice(11, 23)} ${NAME}: ${msg}`);

// ---------------------------------------------------------------- the stream

/** Stream time (ms from T0) of the faults, scaled to the stream's length. */
function faultPlan(durationMs) {
  const at = (fraction) => Math.round((durationMs * fraction) / 1000) * 1000;
  return {
    noise: { from: at(0.15), to: at(0.15) + 60_000 },
    disconnect: { from: at(0.3), to: at(0.3) + 60_000 },
    drift: { from: at(0.5) },
    stuck: { from: at(0.7), to: at(0.7) + 300_000 },
    calibrationExpires: T0 + at(0.5),
  };
}

function makeStream(count) {
  const perStep = 8;
  // the disconnect drops samples: the stream runs until it has `count`
  const durationMs = Math.ceil(count / perStep) * PERIOD_MS;
  const plan = faultPlan(durationMs);
  const utm = createModel('universal-testing-machine', T0, 2);
  const chamber = createModel('climate-chamber', T0, 1);
  const calibrator = createModel('pressure-calibrator', T0, 3);
  const balance = createModel('balance', T0, 4);
  const rand = (() => {
    let a = 7;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
    };
  })();
  const utmFaults = new FaultSet(rand);
  const chamberFaults = new FaultSet(rand);
  const calibratorFaults = new FaultSet(rand);
  const numeric = new Set(['force', 'extension', 'temperature', 'humidity', 'pressure']);
  const seq = new Map();
  const out = [];
  let frozenPressure = null;
  const push = (gateway, instrument, channel, ts, value, unit, quality = 'good') => {
    const n = (seq.get(instrument) ?? 0) + 1;
    seq.set(instrument, n);
    out.push({ gateway, seq: n, instrument, channel, ts, value, unit, quality });
  };
  for (let i = 0; out.length < count; i++) {
    const t = i * PERIOD_MS;
    const now = T0 + t;
    if (t === plan.noise.from) chamberFaults.set({ kind: 'noise', amplitude: 3, channels: ['humidity'] }, now);
    if (t === plan.noise.to) chamberFaults.clear('noise');
    if (t === plan.disconnect.from) utmFaults.set({ kind: 'disconnect', ms: plan.disconnect.to - plan.disconnect.from }, now);
    if (t === plan.drift.from) chamberFaults.set({ kind: 'drift', ratePerSecond: 0.002, channels: ['temperature'] }, now);
    if (t === plan.stuck.from) calibratorFaults.set({ kind: 'stuck' }, now);
    if (t === plan.stuck.to) calibratorFaults.clear('stuck');

    const u = utm.step(now);
    utmFaults.perturb(u, numeric, now);
    if (utmFaults.has('disconnect', now)) {
      if (t - plan.disconnect.from < 5000) {
        push('gw-1', 'utm-1', 'force', now, null, 'kN', 'bad');
        push('gw-1', 'utm-1', 'extension', now, null, 'mm', 'bad');
      }
    } else {
      push('gw-1', 'utm-1', 'force', now, u.force, 'kN');
      push('gw-1', 'utm-1', 'extension', now, u.extension, 'mm');
    }
    const c = chamber.step(now);
    const reference = c.temperature + rand() * 0.02;
    chamberFaults.perturb(c, numeric, now);
    push('gw-1', 'cc-1', 'temperature', now, c.temperature, '°C');
    push('gw-1', 'cc-1', 'temperature-ref', now, reference, '°C');
    push('gw-1', 'cc-1', 'humidity', now, c.humidity, '%RH');
    const p = calibrator.step(now);
    if (calibratorFaults.has('stuck', now)) frozenPressure ??= p.pressure;
    else frozenPressure = null;
    push('gw-2', 'pc-1', 'pressure', now, frozenPressure ?? p.pressure, 'bar');
    const b = balance.step(now);
    push('gw-2', 'bal-1', 'mass', now, b.mass, 'g', b.stable === true ? 'good' : 'uncertain');
  }
  const samples = out.slice(0, count);
  return { samples, durationMs: (samples[samples.length - 1]?.ts ?? T0) - T0 + PERIOD_MS, plan };
}

// ---------------------------------------------------------------- measurement

function runOnce(samples, rules, plan) {
  const engine = new RuleEngine(rules, {
    clock: () => T0,
    instrumentStatus: (_instrument, ts) => (ts < plan.calibrationExpires ? 'valid' : 'expired'),
  });
  const raised = [];
  engine.on('raised', (alarm) => raised.push(alarm));
  const batch = params.batch;
  let nextTick = T0 + 1000;
  const start = performance.now();
  for (let i = 0; i < samples.length; i += batch) {
    const chunk = samples.slice(i, i + batch);
    engine.evaluate(chunk);
    const last = chunk[chunk.length - 1].ts;
    while (last >= nextTick) {
      engine.tick(nextTick);
      nextTick += 1000;
    }
  }
  const ms = performance.now() - start;
  return { ms, raised };
}

const clkTck = clockTicks();

async function measure(label, samples, rules, plan) {
  await waitForQuiet(params.quietWaitSeconds * 1000, QUIET_OTHERS_PERCENT);
  const cpu0 = process.cpuUsage();
  const m0 = machineTicks();
  // passes over the whole stream, each on a fresh engine, until the round has lasted its time
  const r = { ms: 0, passes: 0, raised: [] };
  while (r.ms < params.seconds * 1000) {
    const pass = runOnce(samples, rules, plan);
    r.ms += pass.ms;
    r.passes += 1;
    r.raised = pass.raised;
  }
  const m1 = machineTicks();
  const cpu = process.cpuUsage(cpu0);
  const ownPercent = ((cpu.user + cpu.system) / 1000 / r.ms) * 100;
  // the passes' own time is what is timed; the machine's ticks also cover the gaps between passes (small)
  const othersPercent = m0 === null || m1 === null ? null : Math.max(0, ((m1.proc - m0.proc) / clkTck / (r.ms / 1000)) * 100 - ownPercent);
  const perSecond = (r.passes * samples.length) / (r.ms / 1000);
  log(
    `${label}: ${Math.round(perSecond).toLocaleString('en')} samples/s (${r.passes} passes, ${Math.round(r.ms)} ms, cpu ${Math.round(ownPercent)} %, others ${othersPercent === null ? '?' : Math.round(othersPercent)} %)`,
  );
  return { perSecond, ms: r.ms, cpuPercent: ownPercent, othersCpuPercent: othersPercent, raised: r.raised };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
};

const genStart = performance.now();
const { samples, durationMs, plan } = makeStream(params.samples);
log(
  `stream: ${samples.length.toLocaleString('en')} samples, ${Math.round(durationMs / 60_000)} min of stream time, made in ${Math.round(performance.now() - genStart)} ms`,
);

for (let i = 0; i < params.warmupRounds; i++) {
  runOnce(samples, RULES, plan);
  runOnce(samples, [], plan);
}

const withRules = [];
const baseline = [];
for (let i = 0; i < params.rounds; i++) {
  withRules.push(await measure(`round ${i + 1}, 20 rules`, samples, RULES, plan));
  baseline.push(await measure(`round ${i + 1}, no rules`, samples, [], plan));
}

// the faults must have raised what they are for, or the figure is of an engine that does nothing
const raised = withRules[0].raised;
const byRule = {};
for (const a of raised) byRule[a.ruleId] = (byRule[a.ruleId] ?? 0) + 1;
const expected = ['rh-rate', 'force-gap', 'quality', 'temp-drift', 'p-stuck', 'utm-calibration'];
const missing = expected.filter((id) => byRule[id] === undefined);

const rate = median(withRules.map((r) => r.perSecond));
const floor = median(baseline.map((r) => r.perSecond));
const results = {
  samplesPerSecond: Math.round(rate),
  target: TARGET,
  pass: rate >= TARGET,
  nsPerSample: round1(1e9 / rate),
  baselineNoRulesSamplesPerSecond: Math.round(floor),
  baselineNsPerSample: round1(1e9 / floor),
  rulesNsPerSample: round1(1e9 / rate - 1e9 / floor),
  cpuPercent: round1(median(withRules.map((r) => r.cpuPercent))),
  othersCpuPercent: round1(median(withRules.map((r) => r.othersCpuPercent ?? NaN))),
  alarmsRaised: raised.length,
};
const detail = {
  rounds: withRules.map((r) => Math.round(r.perSecond)),
  baselineRounds: baseline.map((r) => Math.round(r.perSecond)),
  alarmsByRule: byRule,
  alarms: raised.map((a) => ({ rule: a.ruleId, atMs: a.raisedAt - T0, severity: a.severity, message: a.message })),
  streamMinutes: round1(durationMs / 60_000),
  faults: {
    noiseHumidity: [plan.noise.from, plan.noise.to],
    disconnectUtm: [plan.disconnect.from, plan.disconnect.to],
    driftTemperatureFrom: plan.drift.from,
    stuckPressure: [plan.stuck.from, plan.stuck.to],
    calibrationExpiresAt: plan.calibrationExpires - T0,
  },
  loadavg: os.loadavg().map(round1),
};
const file = writeResult(NAME, { params, results, detail });
log(
  `median ${results.samplesPerSecond.toLocaleString('en')} samples/s with ${RULES.length} rules (target ${TARGET.toLocaleString('en')}: ${results.pass ? 'met' : 'not met'}); ${results.nsPerSample} ns/sample, of which the rules ${results.rulesNsPerSample}`,
);
log(`alarms raised: ${JSON.stringify(byRule)}`);
log(`wrote ${file}`);
if (missing.length > 0) {
  console.error(`${NAME}: the injected faults raised no alarm of ${missing.join(', ')}`);
  process.exit(1);
}
