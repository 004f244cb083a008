// Why a log entry is evidence of a finding, in Chinese: the rules write it in English into the evidence they record
// (and the signed reports carry it so), and the people who read a finding in Chinese read it through this table. It
// serves findings recorded before as well, since their English is the same.
import type { Bilingual } from './evidence.js';

const FIXED = new Map<string, string>(
  Object.entries({
    'the issue of the report': '报告的签发',
    'the issue of the report with the mark': '带认可标识的报告的签发',
    'the issue of the report it replaces': '被替代报告的签发',
    'the amendment': '修改版报告的签发',
    'the entry the report names': '报告所指的日志条目',
    'an issue of this report in the log': '日志中该报告的一次签发',
    'the last entry of the log': '日志的最后一个条目',
    'the revocation': '密钥的吊销',
  }),
);

const PATTERNS: [RegExp, (n: string) => string][] = [
  [/^batch (\d+) under the revoked key$/, (n) => `以已吊销密钥签名的第 ${n} 批数据`],
  [/^the batch before the gap at (\d+)$/, (n) => `序号 ${n} 处缺口之前的一批数据`],
  [/^the batch after the gap at (\d+)$/, (n) => `序号 ${n} 处缺口之后的一批数据`],
];

/** a rule's reason for citing a log entry, in both languages (an unknown one is English in both) */
export function whyIn(en: string): Bilingual {
  const fixed = FIXED.get(en);
  if (fixed !== undefined) return { en, zh: fixed };
  for (const [pattern, zh] of PATTERNS) {
    const m = pattern.exec(en);
    if (m?.[1] !== undefined) return { en, zh: zh(m[1]) };
  }
  return { en, zh: en };
}
