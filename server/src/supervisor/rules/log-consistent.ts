// The lab served a checkpoint that contradicts one the supervisor held: another tree of the same size (a fork, a
// split view), a smaller tree, a consistency proof that does not verify, or entries that do not make the signed
// root. Both signed checkpoints are the evidence; each verifies offline with the lab's public key.
import { parseCheckpoint, toHex } from '@labtrace/protocols';
import type { Bilingual, ConflictEvidence, Rule } from '../evidence.js';

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
      summary: summaryOf(c),
      subject: {},
      entries: [],
      detail: { heldCheckpoint: c.heldNote, servedCheckpoint: c.servedNote, proof: c.proof },
    }));
  },
};

const KIND: Record<ConflictEvidence['kind'], string> = {
  fork: '分叉',
  'bad-proof': '一致性证明无效',
  shrunk: '日志回退',
  'bad-entries': '条目与根哈希不符',
};

/** the size and root (hex) of a signed checkpoint as the lab served it, if it reads */
function sizeAndRoot(note: string): { size: number; root: string } | undefined {
  try {
    const c = parseCheckpoint(note.slice(0, note.indexOf('\n\n') + 1));
    return { size: c.size, root: toHex(c.rootHash) };
  } catch {
    return undefined;
  }
}

/** the follower's reason as recorded (English), and its Chinese from the two signed checkpoints */
function summaryOf(c: ConflictEvidence): Bilingual {
  const held = sizeAndRoot(c.heldNote);
  const served = sizeAndRoot(c.servedNote);
  const en = `${c.kind}: ${c.reason}`;
  const zh = (text: string): Bilingual => ({ en, zh: `${KIND[c.kind]}：${text}` });
  if (c.kind === 'bad-entries' && served !== undefined) return zh(`实验室提供的截至第 ${served.size} 条的日志条目与其签名的根哈希不符`);
  if (held === undefined || served === undefined) return zh('实验室提供的检查点与其先前签名的检查点不一致（详见两份已签名的检查点）');
  switch (c.kind) {
    case 'shrunk':
      return zh(`透明日志从 ${held.size} 条回退到 ${served.size} 条`);
    case 'fork':
      return zh(`出现两棵大小同为 ${served.size} 的树：根哈希 ${held.root} 与 ${served.root}`);
    case 'bad-proof':
      return zh(`大小为 ${served.size} 的树不是大小为 ${held.size} 的树的延伸（一致性证明未通过验证）`);
    case 'bad-entries':
      return zh(`实验室提供的截至第 ${served.size} 条的日志条目与其签名的根哈希不符`);
  }
}
