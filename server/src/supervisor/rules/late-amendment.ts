// An amendment long after the report it replaces, or without a reason (ISO/IEC 17025:2017 7.8.8).
import type { Rule, RuleFinding } from '../evidence.js';

export const lateAmendment: Rule = {
  id: 'late-amendment',
  title: { en: 'Amendment long after issue, or without a reason', zh: '报告在签发后很久才修改，或修改无理由' },
  reference: 'ISO/IEC 17025:2017 7.8.8.1, 7.8.8.2',
  severity: 'minor',
  remedy: {
    en: 'Give the reason of the amendment and why it came late; show that the customer was told (7.8.8.1).',
    zh: '说明修改的原因及迟延的理由；证明已告知客户（7.8.8.1）。',
  },
  check(evidence) {
    const byId = new Map(evidence.certificates.map((c) => [c.id, c]));
    const findings: RuleFinding[] = [];
    for (const cert of evidence.certificates) {
      if (cert.amends === null || cert.issuedAt === null) continue;
      const old = byId.get(cert.amends);
      const late = old?.issuedAt !== null && old?.issuedAt !== undefined ? cert.issuedAt - old.issuedAt : undefined;
      const noReason = cert.amendReason === null || cert.amendReason.trim() === '';
      const lateDays = late !== undefined && late > evidence.settings.lateAmendmentMs ? Math.floor(late / 86_400_000) : undefined;
      if (!noReason && lateDays === undefined) continue;
      findings.push({
        key: cert.id,
        at: cert.issuedAt,
        summary: {
          en: `report ${cert.id} amends ${cert.amends}${lateDays === undefined ? '' : ` ${lateDays} days after its issue`}${noReason ? ' without a reason' : ''}`,
          zh: `检测报告 ${cert.id} 修改了 ${cert.amends}${lateDays === undefined ? '' : `，距原报告签发已 ${lateDays} 天`}${noReason ? '，且未说明修改理由' : ''}`,
        },
        subject: { certificate: cert.id, run: cert.run },
        entries: [
          ...(cert.logIndex === null ? [] : [{ index: cert.logIndex, why: 'the amendment' }]),
          ...(old?.logIndex === null || old === undefined ? [] : [{ index: old.logIndex, why: 'the issue of the report it replaces' }]),
        ],
        detail: { lateByMs: late ?? null, reason: cert.amendReason },
      });
    }
    return findings;
  },
};
