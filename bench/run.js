// Runs the benchmarks (every bench/*.bench.js, or the one named on the command line), one after the
// other as child processes, then prints one table of the key figures of every result file.
//
//   node bench/run.js             all benchmarks
//   node bench/run.js skeleton    only bench/skeleton.bench.js
//   node bench/run.js --compare [name...]
//                                 the same, then each new result against the stored one (the result file as it was
//                                 before the run: committed, or the last run's): every figure worse by more than 15 %
//                                 named, with the commit and machine of both (bench/lib/compare.js); exit code 3
//                                 when any is worse
//
// Each benchmark writes bench/results/<name>.json: { name, date, commit, machine, params, results }.
// The exit code is non-zero when a benchmark crashed or wrote no result.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareResult, flatten, formatComparison } from './lib/compare.js';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH_DIR);
const RESULTS_DIR = path.join(BENCH_DIR, 'results');
const SUFFIX = '.bench.js';

const available = readdirSync(BENCH_DIR)
  .filter((f) => f.endsWith(SUFFIX))
  .map((f) => f.slice(0, -SUFFIX.length))
  .sort();

const args = process.argv.slice(2);
const compare = args.includes('--compare');
const unknownFlags = args.filter((a) => a.startsWith('--') && a !== '--compare');
if (unknownFlags.length > 0) {
  console.error(`bench: unknown option ${unknownFlags.join(', ')}; the one option is --compare`);
  process.exit(2);
}
const wanted = args
  .filter((a) => !a.startsWith('--'))
  .map((a) =>
    path
      .basename(a)
      .replace(/\.bench\.js$/, '')
      .replace(/\.js$/, ''),
  );
const unknown = wanted.filter((w) => !available.includes(w));
if (unknown.length > 0) {
  console.error(`bench: no benchmark ${unknown.map((u) => `"${u}"`).join(', ')}; available: ${available.join(', ') || '(none)'}`);
  process.exit(2);
}
const selected = wanted.length > 0 ? wanted : available;

/** Runs one benchmark to completion; resolves with how it ended. */
function runOne(name) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [path.join('bench', `${name}${SUFFIX}`)], { cwd: ROOT, stdio: 'inherit' });
    // A Ctrl-C reaches the benchmark too (same process group); it cleans up and exits on its own.
    const ignore = () => undefined;
    process.on('SIGINT', ignore);
    child.once('error', (err) => {
      process.off('SIGINT', ignore);
      resolve({ name, ok: false, fresh: false, reason: err.message, seconds: (Date.now() - started) / 1000 });
    });
    child.once('exit', (code, signal) => {
      process.off('SIGINT', ignore);
      const seconds = (Date.now() - started) / 1000;
      const file = path.join(RESULTS_DIR, `${name}.json`);
      const fresh = existsSync(file) && statSync(file).mtimeMs >= started;
      if (code !== 0) return resolve({ name, ok: false, fresh, reason: signal ? `killed by ${signal}` : `exit code ${code}`, seconds });
      if (!fresh) return resolve({ name, ok: false, reason: `exited 0 but wrote no bench/results/${name}.json`, seconds });
      resolve({ name, ok: true, fresh, seconds });
    });
  });
}

/** the stored result files of the selected benchmarks and the results they write (auth writes auth*.json), read before they run */
const storedBefore = new Map();
if (compare && existsSync(RESULTS_DIR)) {
  for (const file of readdirSync(RESULTS_DIR).filter((f) => f.endsWith('.json'))) {
    try {
      storedBefore.set(file, { data: JSON.parse(readFileSync(path.join(RESULTS_DIR, file), 'utf8')) });
    } catch {
      // unreadable: nothing to compare with
    }
  }
}
const runStarted = Date.now();

const outcomes = new Map();
for (const name of selected) {
  console.log(`\n=== bench ${name} ===`);
  const outcome = await runOne(name);
  outcomes.set(name, outcome);
  console.log(`=== bench ${name}: ${outcome.ok ? 'done' : `FAILED (${outcome.reason})`} in ${outcome.seconds.toFixed(1)} s ===`);
}

// ---- the table: one column per result file, one row per figure of `results` ----

function format(value) {
  if (value === undefined) return '';
  if (value === null) return '-';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return String(value);
    if (Number.isInteger(value)) return String(value);
    return Math.abs(value) >= 100 ? value.toFixed(0) : value.toFixed(1);
  }
  return String(value);
}

const files = existsSync(RESULTS_DIR)
  ? readdirSync(RESULTS_DIR)
      .filter((f) => f.endsWith('.json'))
      .sort()
  : [];
const columns = [];
for (const file of files) {
  const name = file.slice(0, -'.json'.length);
  try {
    const data = JSON.parse(readFileSync(path.join(RESULTS_DIR, file), 'utf8'));
    const outcome = outcomes.get(name);
    const status = outcome === undefined ? 'not run now' : outcome.ok ? 'ok' : outcome.fresh ? 'FAILED; result of this run' : 'FAILED; older result';
    const meta = new Map([
      ['status', status],
      ['date', typeof data.date === 'string' ? data.date.replace('T', ' ').slice(0, 19) : data.date],
      ['commit', typeof data.commit === 'string' ? data.commit.slice(0, 10) : null],
    ]);
    columns.push({ name: data.name ?? name, meta, figures: flatten(data.results ?? {}, '', new Map()) });
  } catch (err) {
    columns.push({ name, meta: new Map([['status', `unreadable: ${err.message}`]]), figures: new Map() });
  }
}
for (const [name, outcome] of outcomes) {
  if (!outcome.ok && !columns.some((c) => c.name === name))
    columns.push({ name, meta: new Map([['status', `FAILED (${outcome.reason})`]]), figures: new Map() });
}

if (columns.length === 0) {
  console.log('\nbench: no result files');
} else {
  const metaKeys = ['status', 'date', 'commit'];
  const figureKeys = [];
  for (const c of columns) for (const k of c.figures.keys()) if (!figureKeys.includes(k)) figureKeys.push(k);
  const rows = [
    ['', ...columns.map((c) => c.name)],
    ...metaKeys.map((k) => [k, ...columns.map((c) => format(c.meta.get(k)))]),
    null,
    ...figureKeys.map((k) => [k, ...columns.map((c) => format(c.figures.get(k)))]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.filter(Boolean).map((r) => r[i].length)));
  const line = (r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  console.log('\nbenchmark results (bench/results/*.json)\n');
  console.log(line(rows[0]));
  console.log(rule);
  for (const r of rows.slice(1)) console.log(r === null ? rule : line(r));
}

// ---- --compare: every result file this run wrote, against the same file as it was before ----
let regressions = 0;
if (compare) {
  const comparisons = [];
  const fresh = existsSync(RESULTS_DIR)
    ? readdirSync(RESULTS_DIR)
        .filter((f) => f.endsWith('.json') && statSync(path.join(RESULTS_DIR, f)).mtimeMs >= runStarted)
        .sort()
    : [];
  const without = [];
  for (const file of fresh) {
    const before = storedBefore.get(file);
    if (before === undefined) {
      without.push(file);
      continue;
    }
    comparisons.push(compareResult(before.data, JSON.parse(readFileSync(path.join(RESULTS_DIR, file), 'utf8'))));
  }
  console.log(`\ncompared with the stored results (worse by more than 15%)\n`);
  for (const line of formatComparison(comparisons)) console.log(line);
  if (without.length > 0) console.log(`no stored result to compare with: ${without.join(', ')}`);
  if (fresh.length === 0) console.log('no result file written by this run: nothing compared');
  regressions = comparisons.reduce((n, c) => n + c.regressions.length, 0);
  if (regressions > 0) console.error(`\nbench: ${regressions} figure(s) worse by more than 15% than the stored results (named above)`);
}

const failed = [...outcomes.values()].filter((o) => !o.ok);
if (failed.length > 0) {
  console.error(`\nbench: ${failed.length} benchmark(s) failed: ${failed.map((f) => `${f.name} (${f.reason})`).join(', ')}`);
  process.exit(1);
}
if (regressions > 0) process.exit(3);
