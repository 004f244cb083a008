// The lab's checkpoints lack the cosignatures of the witnesses the supervisor requires: without them the lab could
// show different auditors different histories (C2SP tlog-witness, tlog-cosignature; labtrace docs/witness.md).
import type { Rule } from '../evidence.js';

export const notCosigned: Rule = {
  id: 'checkpoint-not-cosigned',
  title: { en: "The lab's checkpoints are not cosigned by the required witnesses", zh: '实验室检查点缺少所要求见证方的联署签名' },
  reference: 'C2SP tlog-witness, tlog-cosignature; ISO/IEC 17025:2017 7.11.3 (integrity of data); labtrace docs/witness.md',
  severity: 'minor',
  remedy: {
    en: 'Configure the witnesses in the lab server and publish the cosigned checkpoint on GET /api/log/checkpoint.',
    zh: '在实验室服务器中配置见证方，并在 GET /api/log/checkpoint 上发布已联署的检查点。',
  },
  check(evidence) {
    const { names, required } = evidence.witnesses;
    if (required === 0) return [];
    const latest = evidence.checkpoints.at(-1);
    if (latest === undefined) return [];
    const got = latest.cosignedBy.filter((n) => names.includes(n));
    if (got.length >= required) return [];
    return [
      {
        // one finding per period of missing cosignatures, keyed by the first size seen without them
        key: `from-size-${firstUncosigned(evidence.checkpoints, names, required)}`,
        at: latest.firstSeenAt,
        summary: {
          en: `checkpoint of size ${latest.size} carries ${got.length} of the ${required} required cosignature${required === 1 ? '' : 's'} (${names.join(', ')})`,
          zh: `大小为 ${latest.size} 的检查点只有 ${got.length} 个联署签名，要求 ${required} 个（见证方：${names.join('、')}）`,
        },
        subject: {},
        entries: [],
        detail: { checkpoint: latest.note, cosignedBy: latest.cosignedBy },
      },
    ];
  },
};

function firstUncosigned(checkpoints: LabCheckpoints, names: string[], required: number): number {
  let size = checkpoints.at(-1)?.size ?? 0;
  for (let i = checkpoints.length - 1; i >= 0; i--) {
    const c = checkpoints[i];
    if (c === undefined || c.cosignedBy.filter((n) => names.includes(n)).length >= required) break;
    size = c.size;
  }
  return size;
}

type LabCheckpoints = Parameters<Rule['check']>[0]['checkpoints'];
