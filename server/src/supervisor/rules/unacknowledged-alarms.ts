// A run completed while alarms raised during it were neither acknowledged nor cleared (ISO/IEC 17025:2017 7.7,
// 7.10: results monitored, nonconforming work dealt with).
import type { Rule, RuleFinding } from '../evidence.js';

export const unacknowledgedAlarms: Rule = {
  id: 'unacknowledged-alarms',
  title: { en: 'Run completed with unacknowledged alarms', zh: '检测在告警未确认的情况下结束' },
  reference: 'ISO/IEC 17025:2017 7.7, 7.10',
  severity: 'minor',
  remedy: {
    en: 'Acknowledge each alarm with its reason and, where the results are affected, handle the run as nonconforming work (7.10).',
    zh: '逐一确认每个报警并说明原因；结果受影响时，将该次测试作为不符合工作处理（7.10）。',
  },
  check(evidence) {
    const findings: RuleFinding[] = [];
    for (const run of evidence.runs) {
      if (run.state !== 'completed' || run.endedAt === null) continue;
      const end = run.endedAt;
      const open = (evidence.alarms.get(run.id) ?? []).filter(
        (a) => a.raisedAt <= end && (a.acknowledgedAt === null || a.acknowledgedAt > end) && (a.clearedAt === null || a.clearedAt > end),
      );
      if (open.length === 0) continue;
      findings.push({
        key: run.id,
        at: end,
        summary: {
          en: `run ${run.id} was completed with ${open.length} alarm${open.length === 1 ? '' : 's'} not acknowledged: ${open.map((a) => a.id).join(', ')}`,
          zh: `检测 ${run.id} 结束时仍有 ${open.length} 个告警未确认：${open.map((a) => a.id).join('、')}`,
        },
        subject: { run: run.id },
        entries: [],
        detail: { alarms: open },
      });
    }
    return findings;
  },
};
