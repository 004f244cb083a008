// The lab served a checkpoint that contradicts one the supervisor held: another tree of the same size (a fork, a
// split view), a smaller tree, a consistency proof that does not verify, or entries that do not make the signed
// root. Both signed checkpoints are the evidence; each verifies offline with the lab's public key.
import type { Rule } from '../evidence.js';

export const logConsistent: Rule = {
  id: 'log-consistent',
  title: { en: "The lab's log contradicts a checkpoint it signed before", zh: '实验室透明日志与其先前签名的检查点不一致' },
  reference: 'RFC 6962 2.1.2 (consistency); ISO/IEC 17025:2017 7.5.2, 7.11.3 (records not altered); 21 CFR 11.10(e)',
  severity: 'critical',
  remedy: {
    en: 'Explain how the log came to present two histories (restored backup, tampering); the supervisor keeps both signed checkpoints.',
    zh: '说明日志为何呈现两种历史（恢复备份、篡改）；监督方保留两份已签名的检查点。',
  },
  check(evidence) {
    return evidence.conflicts.map((c) => ({
      key: `conflict-${c.id}`,
      at: c.detectedAt,
      summary: `${c.kind}: ${c.reason}`,
      subject: {},
      entries: [],
      detail: { heldCheckpoint: c.heldNote, servedCheckpoint: c.servedNote, proof: c.proof },
    }));
  },
};
