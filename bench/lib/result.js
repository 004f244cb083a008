// What every result file carries besides its figures: the commit, the machine, and the file itself.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const ROOT = path.dirname(BENCH_DIR);
export const RESULTS_DIR = path.join(BENCH_DIR, 'results');

export const round1 = (x) => (x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10) / 10);

function git(args) {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export function machineInfo() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? null,
    memGiB: round1(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()}-${os.arch()}`,
  };
}

/**
 * Writes bench/results/<name>.json: { name, date, commit, dirty, machine, params, results, better, detail }; returns
 * its path. `better` declares, for the regression guard (lib/compare.js), which figures are higher-is-better or
 * lower-is-better where their names do not say it ({ "figure.path" or "prefix.*": "higher" | "lower" | "none" }).
 * `file` writes elsewhere than bench/results/<name>.json (a test's run).
 */
export function writeResult(name, { params, results, detail, better }, file = path.join(RESULTS_DIR, `${name}.json`)) {
  const status = git(['status', '--porcelain']);
  const result = {
    name,
    date: new Date().toISOString(),
    commit: git(['rev-parse', 'HEAD']) || null,
    dirty: status === null ? null : status !== '',
    machine: machineInfo(),
    params,
    results,
    ...(better === undefined ? {} : { better }),
    detail,
  };
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  return file;
}

/** Percentile p (0-100) of an ascending array, nearest rank; null when empty. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
