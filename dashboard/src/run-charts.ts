// Which charts a run shows: one per measurand of its method (read from the measurand's channel), then one per
// other channel its instruments send; each with the method's limits and its inspection rules' bounds.
import type { Method } from '@labtrace/protocols/api';

export interface LimitLine {
  value: number;
  /** what the line bounds: the measurand (a spec limit) or the inspection rule's id */
  name: string;
  /** which bound it is; the chart words it in the user's language (chart.limit.<bound>) */
  bound: 'min' | 'max' | 'low' | 'high' | 'warnLow' | 'warnHigh';
  /** the text drawn beside the line; set by the chart from `name`, `bound` and `value` in the user's language */
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
  const line = (value: number, name: string, bound: LimitLine['bound'], kind: LimitLine['kind']): LimitLine => ({
    value,
    name,
    bound,
    kind,
    label: `${name} ${bound} ${value}`,
  });
  for (const l of definition.limits) {
    if (!measurands.includes(l.measurand)) continue;
    if (l.min !== undefined) lines.push(line(l.min, l.measurand, 'min', 'spec'));
    if (l.max !== undefined) lines.push(line(l.max, l.measurand, 'max', 'spec'));
  }
  for (const r of definition.rules ?? []) {
    if (r.kind !== 'limits' || r.channel !== channel) continue;
    if (r.low !== undefined) lines.push(line(r.low, r.id, 'low', 'alarm'));
    if (r.high !== undefined) lines.push(line(r.high, r.id, 'high', 'alarm'));
    if (r.warnLow !== undefined) lines.push(line(r.warnLow, r.id, 'warnLow', 'warn'));
    if (r.warnHigh !== undefined) lines.push(line(r.warnHigh, r.id, 'warnHigh', 'warn'));
  }
  return lines;
}

/** The method version a run used: every version is listed by GET /api/methods/:id. */
export function versionOf(versions: Method[], version: number): Method | undefined {
  return versions.find((m) => m.version === version);
}
