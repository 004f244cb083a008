// Summary of a V8 CPU profile (node --cpu-prof): self and inclusive time per function and per area
// (our packages, each dependency, Node internals), restricted to a time window.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { round1 } from './result.js';

/**
 * Self and inclusive time of the profile's functions, restricted to samples in [fromUs, toUs] (CLOCK_MONOTONIC
 * microseconds, the clock of V8's profiles on Linux: process.hrtime) when any fall there. `root` shortens paths;
 * `ours` picks the functions of the packages under study for the `our...Top` lists.
 */
export function summarizeProfile(file, fromUs, toUs, { root, ours = /(gateway|protocols)\/dist\/src\// } = {}) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const keyOf = (node) => {
    const f = node.callFrame;
    let url = f.url ?? '';
    if (url.startsWith('file://')) url = fileURLToPath(url);
    if (root && url.startsWith(root)) url = path.relative(root, url);
    return `${f.functionName || '(anonymous)'} ${url ? `${url}:${f.lineNumber + 1}` : ''}`.trim();
  };
  const areaOf = (node) => {
    const url = node.callFrame.url ?? '';
    const m = /\/(gateway|protocols|device-sim|server)\/dist\/src\//.exec(url);
    if (m) return `@labtrace/${m[1]}`;
    const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    if (nm) return nm[1];
    if (url.startsWith('node:') || /^[a-z_/]+$/.test(url)) return 'node internals';
    if (url === '') return `(${node.callFrame.functionName || 'native'})`;
    return 'other';
  };
  let t = profile.startTime;
  const times = profile.timeDeltas.map((d) => (t += d));
  let selected = profile.samples.map((id, i) => ({ id, at: times[i] })).filter((s) => s.at >= fromUs && s.at <= toUs);
  const windowed = selected.length > 0;
  if (!windowed) selected = profile.samples.map((id) => ({ id }));
  const self = new Map();
  const inclusive = new Map();
  const areas = new Map();
  for (const { id } of selected) {
    const node = nodes.get(id);
    const key = keyOf(node);
    self.set(key, (self.get(key) ?? 0) + 1);
    const area = areaOf(node);
    areas.set(area, (areas.get(area) ?? 0) + 1);
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const k = keyOf(nodes.get(cur));
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + 1);
    }
  }
  const idle = areas.get('((idle))') ?? 0;
  areas.delete('((idle))');
  self.delete('(idle)');
  // percentages of the samples where the process was busy (the idle ones left out)
  const total = selected.length - idle;
  const top = (map, n, filter = () => true) =>
    [...map.entries()]
      .filter(([k]) => filter(k))
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([fn, count]) => ({ fn, percent: round1((count / total) * 100) }));
  const isOurs = (k) => ours.test(k);
  return {
    file: path.basename(file),
    samples: selected.length,
    idlePercent: round1((idle / selected.length) * 100),
    percentsAre: 'of the non-idle samples',
    windowed,
    selfTop: top(self, 25),
    areas: top(areas, 15),
    ourInclusiveTop: top(inclusive, 25, isOurs),
    ourSelfTop: top(self, 15, isOurs),
  };
}
