// The lab's log stopped advancing while the lab reported activity: reports issued or runs measured after the last
// time the supervisor saw the log grow (ISO/IEC 17025:2017 7.5, 7.11; domain note "a log that stopped advancing").
import type { Rule } from '../evidence.js';

export const logStalled: Rule = {
  id: 'log-stalled',
  title: { en: 'The log stopped advancing while the lab reported activity', zh: '实验室有业务活动但透明日志停止增长' },
  reference: 'ISO/IEC 17025:2017 7.5.1, 7.11.2, 7.11.3; domain note "What none of today\'s tools does"',
  severity: 'major',
  remedy: {
    en: 'Restore the log (the server appends every report and batch to it) and explain the interruption (7.11.3, 8.7).',
    zh: '恢复日志（服务器将每份报告和每批数据追加到日志）并说明中断原因（7.11.3、8.7）。',
  },
  check(evidence) {
    const latest = evidence.checkpoints.at(-1);
    if (latest === undefined) return [];
    // the size stopped at `latest.size` when the supervisor first saw it; activity after that plus a grace is unexplained
    const since = latest.firstSeenAt + evidence.settings.stallGraceMs;
    const seenUntil = latest.lastSeenAt;
    if (seenUntil <= since) return [];
    const activity: { what: string; zh: string; at: number }[] = [];
    for (const c of evidence.certificates)
      if (c.issuedAt !== null && c.issuedAt > since && c.issuedAt <= seenUntil)
        activity.push({ what: `report ${c.id} issued`, zh: `检测报告 ${c.id} 签发`, at: c.issuedAt });
    for (const r of evidence.runs)
      if (r.endedAt !== null && r.endedAt > since && r.endedAt <= seenUntil && r.ranges.some((g) => g.lastSeq !== null && g.lastSeq >= g.firstSeq))
        activity.push({ what: `run ${r.id} measured`, zh: `检测 ${r.id} 完成测量`, at: r.endedAt });
    if (activity.length === 0) return [];
    activity.sort((a, b) => a.at - b.at);
    const shown = activity.slice(0, 3);
    const from = new Date(latest.firstSeenAt).toISOString();
    const to = new Date(seenUntil).toISOString();
    return [
      {
        key: `size-${latest.size}`,
        at: activity[0]?.at ?? since,
        summary: {
          en: `the log stayed at ${latest.size} entries from ${from} to ${to} while the lab reported ${activity.length} activit${activity.length === 1 ? 'y' : 'ies'} (${shown
            .map((a) => a.what)
            .join(', ')}${activity.length > 3 ? ', ...' : ''})`,
          zh: `透明日志自 ${from} 至 ${to} 一直停留在 ${latest.size} 条，而实验室在此期间报告了 ${activity.length} 项业务活动（${shown
            .map((a) => a.zh)
            .join('、')}${activity.length > 3 ? ' 等' : ''}）`,
        },
        subject: {},
        entries: latest.size > 0 ? [{ index: latest.size - 1, why: 'the last entry of the log' }] : [],
        detail: { checkpoint: latest.note, activity: activity.slice(0, 100).map((a) => ({ what: a.what, at: a.at })) },
      },
    ];
  },
};
