// The regression guard of `npm run bench -- --compare` (bench/lib/compare.js): which figures are higher- or
// lower-is-better (declared by the benchmark, else by their unit, else not compared), which of them got worse by more
// than 15 %, and where each result was taken. The benches are plain JavaScript outside the workspaces: the module is
// loaded from the repository's bench/ at run time.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, test } from '@jest/globals';
import { REPO_ROOT } from '../helpers/lab-process.js';

type Direction = 'higher' | 'lower' | 'none';
interface ResultFile {
  name?: string;
  commit?: string;
  dirty?: boolean;
  machine?: { cpus: number; cpuModel: string; node: string; platform: string };
  results?: unknown;
  better?: Record<string, Direction>;
}
interface Compared {
  key: string;
  direction: 'higher' | 'lower';
  stored: number;
  now: number;
  worsePercent: number;
  regressed: boolean;
}
interface Comparison {
  name: string | null;
  stored: { commit: string | null; machine: string };
  now: { commit: string | null; machine: string };
  sameMachine: boolean;
  load: { stored: number; now: number } | null;
  compared: Compared[];
  regressions: Compared[];
  notCompared: { key: string; reason: string }[];
}
interface CompareModule {
  TOLERANCE: number;
  directionOf(key: string, better?: Record<string, Direction>): 'higher' | 'lower' | null;
  compareResult(stored: ResultFile, now: ResultFile, tolerance?: number): Comparison;
  formatComparison(comparisons: Comparison[], tolerance?: number): string[];
}

let m: CompareModule;
beforeAll(async () => {
  m = (await import(pathToFileURL(path.join(REPO_ROOT, 'bench', 'lib', 'compare.js')).href)) as CompareModule;
});

const MACHINE = { cpus: 2, cpuModel: 'AMD EPYC', node: 'v20.20.2', platform: 'linux-x64' };
const file = (results: unknown, extra: Partial<ResultFile> = {}): ResultFile => ({
  name: 'x',
  commit: 'aaaaaaaaaaaaaaaaaaaa',
  dirty: false,
  machine: MACHINE,
  results,
  ...extra,
});

describe('the direction of a figure', () => {
  test('from its unit: rates higher-is-better; times, CPU, memory and bytes lower-is-better', () => {
    for (const key of ['auth.requestsPerSecond', 'ackedPerSecond', 'verify.verifyRecordsPerSecondPureJs', 'forwarderVsCurl', 'fps'])
      expect([key, m.directionOf(key)]).toEqual([key, 'higher']);
    for (const key of ['auth.p99Ms', 'serverCpuUsPerRequest', 'gatewayCpuPercent', 'peakRssMiB', 'initialJsGzipKB', 'drainSeconds', 'bytesPerSample'])
      expect([key, m.directionOf(key)]).toEqual([key, 'lower']);
  });

  test('neither evident nor declared: not known (never guessed); the machine and the load generator are never ours', () => {
    for (const key of ['errors', 'overhead.p99', 'seconds', 'stealCpuPercent', 'clientCpuPercent', 'loadAverage1m', 'machineBusyPercent'])
      expect([key, m.directionOf(key)]).toEqual([key, null]);
  });

  test("a benchmark's declaration wins over the unit: exact path, then the longest prefix", () => {
    const better: Record<string, Direction> = { 'vs.ratio': 'lower', 'minimal.*': 'none', 'a.*': 'higher', 'a.b.*': 'lower' };
    expect(m.directionOf('vs.ratio', better)).toBe('lower');
    expect(m.directionOf('minimal.requestsPerSecond', better)).toBeNull();
    expect(m.directionOf('a.x', better)).toBe('higher');
    expect(m.directionOf('a.b.x', better)).toBe('lower');
    expect(m.directionOf('ab.requestsPerSecond', better)).toBe('higher');
  });
});

describe('a run against the stored result', () => {
  test('names every figure worse by more than 15 %, in either direction, and no other', () => {
    const stored = file({ a: { requestsPerSecond: 1000, p99Ms: 100 }, cpuPercent: 50, peakRssMiB: 200, fps: 60 });
    const now = file({ a: { requestsPerSecond: 849, p99Ms: 116 }, cpuPercent: 57, peakRssMiB: 100, fps: 51.5 }, { commit: 'bbbbbbbbbbbbbbb' });
    const c = m.compareResult(stored, now);
    expect(c.regressions.map((r) => r.key).sort()).toEqual(['a.p99Ms', 'a.requestsPerSecond']);
    expect(c.compared.find((r) => r.key === 'a.requestsPerSecond')).toMatchObject({ direction: 'higher', worsePercent: 15.1, regressed: true });
    // within 15 %: not named (57 is 14 % above 50; 51.5 is 14.2 % below 60); better: not named
    expect(c.compared.find((r) => r.key === 'cpuPercent')).toMatchObject({ regressed: false, worsePercent: 14 });
    expect(c.compared.find((r) => r.key === 'fps')).toMatchObject({ regressed: false });
    expect(c.compared.find((r) => r.key === 'peakRssMiB')).toMatchObject({ regressed: false, worsePercent: -50 });
    expect(c.compared).toHaveLength(5);
  });

  test('figures of unknown direction, missing from the run or not numbers are listed as not compared', () => {
    const c = m.compareResult(file({ errors: 0, gone: { perSecond: 1 }, n: { p99Ms: 3 }, label: 'x' }), file({ errors: 4, n: { p99Ms: null } }));
    expect(c.regressions).toEqual([]);
    expect(c.notCompared).toEqual([
      { key: 'errors', reason: 'direction unknown' },
      { key: 'gone.perSecond', reason: 'not in this run' },
      { key: 'n.p99Ms', reason: 'not a number in this run' },
    ]);
  });

  test("the run's declaration applies to the stored figures too; a figure declared 'none' is not compared", () => {
    const c = m.compareResult(
      file({ ratio: 2, minimal: { requestsPerSecond: 2000 } }),
      file({ ratio: 2.5, minimal: { requestsPerSecond: 100 } }, { better: { ratio: 'lower', 'minimal.*': 'none' } }),
    );
    expect(c.regressions.map((r) => r.key)).toEqual(['ratio']);
    expect(c.notCompared).toEqual([{ key: 'minimal.requestsPerSecond', reason: 'direction unknown' }]);
  });

  test('a cost that was zero and is not now is worse; a rate that fell to zero is worse', () => {
    const c = m.compareResult(file({ waitMs: 0, perSecond: 10 }), file({ waitMs: 2, perSecond: 0 }));
    expect(c.regressions.map((r) => r.key).sort()).toEqual(['perSecond', 'waitMs']);
  });

  test('says on which commit and machine each was taken, and when the machines differ', () => {
    const other = { ...MACHINE, cpus: 8, cpuModel: 'Intel Xeon' };
    const c = m.compareResult(file({ perSecond: 10 }), file({ perSecond: 5 }, { commit: 'bbbbbbbbbbbbbbb', dirty: true, machine: other }));
    expect(c.stored).toMatchObject({ commit: 'aaaaaaaaaa', machine: 'AMD EPYC, 2 cores, node v20.20.2, linux-x64' });
    expect(c.now).toMatchObject({ commit: 'bbbbbbbbbb', machine: 'Intel Xeon, 8 cores, node v20.20.2, linux-x64' });
    expect(c.sameMachine).toBe(false);
    const lines = m.formatComparison([c]);
    expect(lines[0]).toBe(
      'x: stored aaaaaaaaaa on AMD EPYC, 2 cores, node v20.20.2, linux-x64; now bbbbbbbbbb (dirty) on Intel Xeon, 8 cores, node v20.20.2, linux-x64',
    );
    expect(lines).toContain('  not the same machine: the figures may differ for that alone');
    expect(lines).toContain('  WORSE perSecond: 10 -> 5 (+50% worse, higher is better)');
    expect(m.compareResult(file({}), file({})).sameMachine).toBe(true);
    // the load of the machine, where both recorded it
    const loaded = m.formatComparison([m.compareResult(file({ loadAverage1m: 4.4 }), file({ loadAverage1m: 14.2 }))]);
    expect(loaded).toContain("  the machine's load average (1 min) at the end of each: stored 4.4, now 14.2");
  });
});
