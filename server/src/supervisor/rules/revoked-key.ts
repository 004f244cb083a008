// Records signed by a gateway key after its revocation took effect, as the lab's own log tells both (the key event
// and the batch headers): data whose integrity the lab itself disowned (ISO/IEC 17025:2017 7.11.3; 21 CFR 11.10(d)).
import { field, type Rule, type RuleFinding } from '../evidence.js';
import { loggedBatches } from './batch-headers.js';

export const revokedKey: Rule = {
  id: 'revoked-key-records',
  title: { en: 'Records signed by a revoked key', zh: '记录由已吊销的密钥签名' },
  reference: 'ISO/IEC 17025:2017 7.11.3; 21 CFR 11.10(d), 11.300; domain note "Technical records"',
  severity: 'critical',
  remedy: {
    en: 'Identify the runs and reports that rest on these records, withdraw or amend them, and record the corrective action (8.7).',
    zh: '找出依赖这些记录的测试和报告，撤回或修改它们，并记录纠正措施（8.7）。',
  },
  check(evidence) {
    const revoked = new Map<string, { index: number; from: number; lastValidBatch: number | null }>();
    for (const e of evidence.entries) {
      if (e.kind !== 'key-event' || field(e.value, 'event') !== 'revoked') continue;
      const gateway = field(e.value, 'gateway');
      const keyId = field(e.value, 'keyId');
      const from = field(e.value, 'from');
      const last = field(e.value, 'lastValidBatch');
      if (typeof gateway !== 'string' || typeof keyId !== 'string' || typeof from !== 'number') continue;
      revoked.set(`${gateway}/${keyId}`, { index: e.index, from, lastValidBatch: typeof last === 'number' ? last : null });
    }
    if (revoked.size === 0) return [];
    const findings: RuleFinding[] = [];
    for (const [gateway, batches] of loggedBatches(evidence.entries)) {
      const byKey = new Map<string, typeof batches>();
      for (const b of batches) {
        const r = revoked.get(`${gateway}/${b.keyId}`);
        if (r === undefined) continue;
        if ((r.lastValidBatch !== null && b.batch <= r.lastValidBatch) || (r.lastValidBatch === null && b.at < r.from)) continue;
        const list = byKey.get(b.keyId);
        if (list === undefined) byKey.set(b.keyId, [b]);
        else list.push(b);
      }
      for (const [keyId, after] of byKey) {
        const r = revoked.get(`${gateway}/${keyId}`);
        if (r === undefined) continue;
        const records = after.reduce((n, b) => n + b.count, 0);
        findings.push({
          key: `${gateway}/${keyId}`,
          at: r.from,
          summary: {
            en: `${after.length} batch${after.length === 1 ? '' : 'es'} (${records} records) of ${gateway} signed by key ${keyId} are in the log after its revocation from ${new Date(r.from).toISOString()}`,
            zh: `网关 ${gateway} 以密钥 ${keyId} 签名的 ${after.length} 批数据（${records} 条记录）在该密钥自 ${new Date(r.from).toISOString()} 起吊销后仍记入透明日志`,
          },
          subject: { gateway, keyId },
          entries: [
            { index: r.index, why: 'the revocation' },
            ...after.slice(0, 20).map((b) => ({ index: b.index, why: `batch ${b.batch} under the revoked key` })),
          ],
          detail: { batches: after.map((b) => b.batch) },
        });
      }
    }
    return findings;
  },
};
