// The person who performed (or created) a run approved its report: no second person reviewed it
// (ISO/IEC 17025:2017 6.2, 7.8.1.2; 21 CFR 11 separation of duties).
import type { Rule, RuleFinding } from '../evidence.js';

export const performerApproved: Rule = {
  id: 'performer-approved',
  title: { en: 'The person who performed a run approved its report', zh: '检测执行人批准了本人检测的报告' },
  reference: 'ISO/IEC 17025:2017 6.2, 7.8.1.2; 21 CFR 11.10(g); domain note "Checks an auditor wants automated"',
  severity: 'major',
  remedy: {
    en: 'Have another authorized signatory review the report and amend it (7.8.8); answer with the review.',
    zh: '由另一名授权签字人复核并修改该报告（7.8.8）；以复核记录作答。',
  },
  check(evidence) {
    const runs = new Map(evidence.runs.map((r) => [r.id, r]));
    const findings: RuleFinding[] = [];
    for (const cert of evidence.certificates) {
      if (cert.issuedBy === null || cert.issuedAt === null) continue;
      const run = runs.get(cert.run);
      if (run === undefined) continue;
      const role = cert.issuedBy === run.technician ? 'performed' : cert.issuedBy === run.createdBy ? 'created' : undefined;
      if (role === undefined) continue;
      const did = role === 'performed' ? '执行了' : '创建了';
      findings.push({
        key: cert.id,
        at: cert.issuedAt,
        summary: {
          en: `${cert.issuedBy} ${role} run ${run.id} and approved its report ${cert.id}`,
          zh: `${cert.issuedBy} ${did}检测 ${run.id}，又批准了该检测的报告 ${cert.id}`,
        },
        subject: { certificate: cert.id, run: run.id },
        entries: cert.logIndex === null ? [] : [{ index: cert.logIndex, why: 'the issue of the report' }],
      });
    }
    return findings;
  },
};
