// Every issued report is in the lab's log, and every report the log announces is in the lab's list: a report outside
// the log cannot be checked by its holder; one in the log but not listed was hidden (ISO/IEC 17025:2017 7.8.1, 8.4).
import { certificateEvents, entryAt, field, type Bilingual, type Rule, type RuleFinding } from '../evidence.js';

export const certificatesLogged: Rule = {
  id: 'certificates-logged',
  title: { en: "Certificates missing from the lab's log, or from its list", zh: '证书未记入透明日志或未在证书列表中' },
  reference: 'ISO/IEC 17025:2017 7.8.1.2, 8.4.2; CNAS-CL01 8.4; domain note "a way to verify authenticity"',
  severity: 'critical',
  remedy: {
    en: 'Explain each report: enter it in the log (issue it again as an amendment, 7.8.8) or list it; answer with the log index.',
    zh: '说明每份报告：将其记入日志（作为修改版重新签发，7.8.8）或列入清单；以日志序号作答。',
  },
  check(evidence) {
    const size = evidence.entries.length;
    const events = certificateEvents(evidence.entries);
    const listed = new Set<string>();
    const findings: RuleFinding[] = [];
    for (const cert of evidence.certificates) {
      if (cert.issuedAt === null) continue;
      listed.add(cert.id);
      // the log the supervisor holds may trail the list by a few entries: judge only what it could hold
      if (cert.logIndex !== null && cert.logIndex >= size) continue;
      const entry = entryAt(evidence, cert.logIndex);
      const problem: Bilingual | undefined =
        cert.logIndex === null
          ? { en: 'has no log entry', zh: '没有透明日志条目' }
          : entry?.kind !== 'certificate-event' || field(entry.value, 'certificate') !== cert.id
            ? { en: `names log entry ${cert.logIndex}, which is not its issue`, zh: `所指的日志条目 ${cert.logIndex} 不是其签发记录` }
            : cert.digests !== null && !sameDigests(field(entry.value, 'digests'), cert.digests)
              ? { en: `differs from its log entry ${cert.logIndex} (digests)`, zh: `与其日志条目 ${cert.logIndex} 不符（摘要不同）` }
              : undefined;
      if (problem === undefined) continue;
      const logged = (events.get(cert.id) ?? []).filter((e) => field(e.value, 'kind') !== 'revoke');
      findings.push({
        key: `listed/${cert.id}`,
        at: cert.issuedAt,
        summary: {
          en: `report ${cert.id} ${problem.en}${logged.length === 0 ? ', and no issue of it is in the log' : ''}`,
          zh: `检测报告 ${cert.id} ${problem.zh}${logged.length === 0 ? '，且透明日志中没有该报告的签发记录' : ''}`,
        },
        subject: { certificate: cert.id, run: cert.run },
        entries: [
          ...(cert.logIndex !== null && entry !== undefined ? [{ index: cert.logIndex, why: 'the entry the report names' }] : []),
          ...logged.map((e) => ({ index: e.index, why: 'an issue of this report in the log' })),
        ],
      });
    }
    for (const [id, list] of events) {
      if (listed.has(id)) continue;
      const issue = list.find((e) => field(e.value, 'kind') !== 'revoke');
      if (issue === undefined) continue;
      findings.push({
        key: `logged/${id}`,
        at: issue.at,
        summary: {
          en: `report ${id} is in the log (entry ${issue.index}) but not in the lab's list of reports`,
          zh: `检测报告 ${id} 已记入透明日志（条目 ${issue.index}），但不在实验室的报告清单中`,
        },
        subject: { certificate: id },
        entries: [{ index: issue.index, why: 'the issue of the report' }],
      });
    }
    return findings;
  },
};

function sameDigests(logged: unknown, listed: Record<string, string>): boolean {
  const keys = Object.keys(listed);
  return keys.length > 0 && keys.every((k) => field(logged, k) === listed[k]);
}
