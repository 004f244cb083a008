// A run's sequence range with records missing from the log: the stream between the instrument and the report lost
// records, or they were never logged (ISO/IEC 17025:2017 7.5, 7.11; domain note "gaps, duplicates ... in the
// measurement stream of a gateway").
import type { Rule, RuleFinding } from '../evidence.js';
import { loggedBatches, type LoggedBatch } from './batch-headers.js';

export const sequenceGaps: Rule = {
  id: 'sequence-gaps',
  title: { en: "Records missing from a run's sequence range", zh: '检测记录序列存在缺口' },
  reference: 'ISO/IEC 17025:2017 7.5.1, 7.11.3; domain note "Checks an auditor wants automated"',
  severity: 'major',
  remedy: {
    en: 'Explain the loss (gateway outage, network) and whether the results stand; recover the records from the gateway outbox where possible.',
    zh: '说明数据丢失的原因（网关停机、网络）以及结果是否仍然有效；尽可能从网关发件箱恢复记录。',
  },
  check(evidence) {
    const coverage = new Map<string, Covered>();
    for (const [gateway, batches] of loggedBatches(evidence.entries)) coverage.set(gateway, covered(batches));
    const findings: RuleFinding[] = [];
    for (const run of evidence.runs) {
      if (run.state !== 'completed') continue;
      for (const range of run.ranges) {
        if (range.lastSeq === null || range.lastSeq < range.firstSeq) continue;
        const gaps = gapsIn(coverage.get(range.gateway), range.firstSeq, range.lastSeq);
        if (gaps.length === 0) continue;
        const missing = gaps.reduce((n, g) => n + g.to - g.from + 1, 0);
        const shown = gaps.slice(0, 5).map((g) => (g.from === g.to ? `${g.from}` : `${g.from}-${g.to}`));
        findings.push({
          key: `${run.id}/${range.gateway}`,
          at: run.endedAt ?? run.startedAt ?? 0,
          summary: {
            en: `run ${run.id}: ${missing} record${missing === 1 ? '' : 's'} of ${range.gateway} between ${range.firstSeq} and ${range.lastSeq} are not in the log (${shown.join(', ')}${gaps.length > 5 ? ', ...' : ''})`,
            zh: `检测 ${run.id}：网关 ${range.gateway} 序号 ${range.firstSeq} 至 ${range.lastSeq} 之间有 ${missing} 条记录不在透明日志中（${shown.join('、')}${gaps.length > 5 ? ' 等' : ''}）`,
          },
          subject: { run: run.id, gateway: range.gateway },
          entries: gaps.flatMap((g) => [
            ...(g.before === undefined ? [] : [{ index: g.before, why: `the batch before the gap at ${g.from}` }]),
            ...(g.after === undefined ? [] : [{ index: g.after, why: `the batch after the gap at ${g.to}` }]),
          ]),
          detail: { gaps: gaps.map((g) => ({ from: g.from, to: g.to })) },
        });
      }
    }
    return findings;
  },
};

/** the sequence numbers the log covers, as sorted disjoint intervals, each with the log index of its first and last batch */
interface Covered {
  starts: number[];
  ends: number[];
  firstIndex: number[];
  lastIndex: number[];
}

function covered(batches: readonly LoggedBatch[]): Covered {
  const sorted = [...batches].sort((a, b) => a.firstSeq - b.firstSeq);
  const c: Covered = { starts: [], ends: [], firstIndex: [], lastIndex: [] };
  for (const b of sorted) {
    const end = b.firstSeq + b.count - 1;
    const last = c.ends.length - 1;
    if (last >= 0 && b.firstSeq <= (c.ends[last] ?? 0) + 1) {
      if (end > (c.ends[last] ?? 0)) {
        c.ends[last] = end;
        c.lastIndex[last] = b.index;
      }
    } else {
      c.starts.push(b.firstSeq);
      c.ends.push(end);
      c.firstIndex.push(b.index);
      c.lastIndex.push(b.index);
    }
  }
  return c;
}

interface Gap {
  from: number;
  to: number;
  before: number | undefined;
  after: number | undefined;
}

function gapsIn(c: Covered | undefined, from: number, to: number): Gap[] {
  if (c === undefined || c.starts.length === 0) return [{ from, to, before: undefined, after: undefined }];
  // the last interval starting at or before `from`
  let lo = 0;
  let hi = c.starts.length - 1;
  let i = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if ((c.starts[mid] ?? 0) <= from) {
      i = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  const gaps: Gap[] = [];
  let at = from;
  if (i >= 0 && (c.ends[i] ?? -1) >= at) at = (c.ends[i] ?? 0) + 1;
  let k = i + 1;
  while (at <= to) {
    const nextStart = k < c.starts.length ? (c.starts[k] ?? Infinity) : Infinity;
    const gapEnd = Math.min(to, nextStart - 1);
    if (gapEnd >= at)
      gaps.push({ from: at, to: gapEnd, before: k > 0 ? c.lastIndex[k - 1] : undefined, after: k < c.starts.length ? c.firstIndex[k] : undefined });
    if (k >= c.starts.length) break;
    at = Math.max(at, (c.ends[k] ?? 0) + 1);
    k++;
  }
  return gaps;
}
