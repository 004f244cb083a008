// Which charts a run shows: one per measurand of its method (read from the measurand's channel), then one per
// other channel its instruments send; each with the method's limits and its inspection rules' bounds.
import type { Method } from './lab-types';

export interface LimitLine {
  value: number;
  label: string;
  /** spec: the method's acceptance limit; alarm and warn: an inspection rule's bounds */
  kind: 'spec' | 'alarm' | 'warn';
}

export interface ChartSpec {
  channel: string;
  title: string;
  unit: string;
  limits: LimitLine[];
}

export function chartSpecs(method: Method | undefined, channels: readonly string[]): ChartSpec[] {
  const specs: ChartSpec[] = [];
  const definition = method?.definition;
  for (const m of definition?.measurands ?? []) {
    if (specs.some((s) => s.channel === m.channel)) continue;
    specs.push({ channel: m.channel, title: m.name, unit: m.unit, limits: limitsOf(method, m.channel) });
  }
  for (const channel of channels)
    if (!specs.some((s) => s.channel === channel)) specs.push({ channel, title: channel, unit: '', limits: limitsOf(method, channel) });
  return specs;
}

function limitsOf(method: Method | undefined, channel: string): LimitLine[] {
  const lines: LimitLine[] = [];
  const definition = method?.definition;
  if (!definition) return lines;
  const measurands = definition.measurands.filter((m) => m.channel === channel).map((m) => m.name);
  for (const l of definition.limits ?? []) {
    if (!measurands.includes(l.measurand)) continue;
    if (l.min !== undefined) lines.push({ value: l.min, label: `${l.measurand} min ${l.min}`, kind: 'spec' });
    if (l.max !== undefined) lines.push({ value: l.max, label: `${l.measurand} max ${l.max}`, kind: 'spec' });
  }
  for (const r of definition.rules ?? []) {
    if (r.kind !== 'limits' || r.channel !== channel) continue;
    if (r.low !== undefined) lines.push({ value: r.low, label: `${r.id} low ${r.low}`, kind: 'alarm' });
    if (r.high !== undefined) lines.push({ value: r.high, label: `${r.id} high ${r.high}`, kind: 'alarm' });
    if (r.warnLow !== undefined) lines.push({ value: r.warnLow, label: `${r.id} warn ${r.warnLow}`, kind: 'warn' });
    if (r.warnHigh !== undefined) lines.push({ value: r.warnHigh, label: `${r.id} warn ${r.warnHigh}`, kind: 'warn' });
  }
  return lines;
}

/** The method version a run used: every version is listed by GET /api/methods/:id. */
export function versionOf(versions: Method[], version: number): Method | undefined {
  return versions.find((m) => m.version === version);
}
