// The words of a printed report in Chinese and English. A report is issued in one of three languages: zh-CN,
// en, or bilingual (each heading and label in both, Chinese first, the usual form of CNAS/CMA reports). The
// values (names, numbers, identifiers, units) are printed as recorded, in every language.
import type { ReportLanguage } from '@labtrace/protocols/api';
import type { CertificateContent, CertificateResult, InstrumentTraceability } from './content.js';

// the languages are the API contract's (a report's language is asked for at its request, issue or amendment)
export { REPORT_LANGUAGES, reportLanguageSchema, type ReportLanguage } from '@labtrace/protocols/api';

/** The ISO 639-1 codes a report in this language uses (DCC usedLangCodeISO639_1), mandatory first. */
export const languageCodes = (language: ReportLanguage): ('zh' | 'en')[] =>
  language === 'en' ? ['en'] : language === 'zh-CN' ? ['zh'] : ['zh', 'en'];

/** A text in both languages. */
export interface Both {
  zh: string;
  en: string;
}

export const LABELS = {
  title: { zh: '检测报告', en: 'Test Report' },
  amendment: { zh: '更正报告', en: 'Amendment' },
  reportNo: { zh: '报告编号', en: 'Report No.' },
  issueDate: { zh: '签发日期', en: 'Date of issue' },
  placeOfWork: { zh: '检测地点', en: 'Place of work' },
  amends: { zh: '所更正的报告编号', en: 'Amendment to Report No.' },
  amendReason: { zh: '更正原因', en: 'Reason for the amendment' },
  customer: { zh: '委托方', en: 'Customer' },
  name: { zh: '名称', en: 'Name' },
  contact: { zh: '联系方式', en: 'Contact' },
  item: { zh: '检测样品', en: 'Item tested' },
  identification: { zh: '样品编号', en: 'Identification' },
  description: { zh: '样品描述', en: 'Description' },
  condition: { zh: '接收时状态', en: 'Condition on receipt' },
  received: { zh: '接收日期', en: 'Date of receipt' },
  method: { zh: '检测方法', en: 'Method' },
  standard: { zh: '依据标准', en: 'Standard' },
  methodTitle: { zh: '方法名称', en: 'Title' },
  methodVersion: { zh: '方法版本', en: 'Method version' },
  test: { zh: '检测信息', en: 'Test' },
  run: { zh: '检测任务', en: 'Test run' },
  dates: { zh: '检测日期', en: 'Dates of test' },
  technician: { zh: '检测人员', en: 'Performed by' },
  results: { zh: '检测结果', en: 'Results' },
  quantity: { zh: '检测项目', en: 'Quantity' },
  value: { zh: '结果', en: 'Value' },
  u: { zh: '扩展不确定度 U', en: 'U' },
  k: { zh: 'k', en: 'k' },
  unit: { zh: '单位', en: 'Unit' },
  limits: { zh: '技术要求', en: 'Limits' },
  verdict: { zh: '判定', en: 'Verdict' },
  notes: { zh: '结果说明', en: 'Notes on the results' },
  overall: { zh: '总体结论', en: 'Overall verdict' },
  traceability: { zh: '计量溯源', en: 'Traceability' },
  accreditation: { zh: '认可', en: 'Accreditation' },
  statement: { zh: '声明', en: 'Statement' },
  remarks: { zh: '备注', en: 'Remarks' },
  authorization: { zh: '批准', en: 'Authorization' },
  approvedBy: { zh: '批准人', en: 'Approved by' },
  role: { zh: '职务', en: 'Role' },
  approvedAt: { zh: '批准时间', en: 'Date and time' },
  meaning: { zh: '签名含义', en: 'Meaning of the signature' },
  evidence: { zh: '证据与验证', en: 'Evidence and verification' },
  end: { zh: '报告结束', en: 'End of report' },
  logo: { zh: '实验室标志', en: 'laboratory logo' },
  qr: { zh: '验证本报告的二维码', en: 'QR code linking to the verification page of this report' },
} as const satisfies Record<string, Both>;

export const VERDICTS: Record<'pass' | 'fail' | 'no-decision', Both> = {
  pass: { zh: '合格', en: 'pass' },
  fail: { zh: '不合格', en: 'fail' },
  'no-decision': { zh: '不作判定', en: 'no decision' },
};

const STATUS: Record<InstrumentTraceability['statusAtRun'], string> = {
  valid: '有效',
  'due-soon': '即将到期',
  expired: '已过期',
  'out-of-service': '停用',
  'never-calibrated': '无校准记录',
};

const STATISTIC: Record<string, string> = { max: '最大值', min: '最小值', mean: '平均值', last: '最终值', first: '初始值', median: '中位数' };

const RULES: Record<'simple-acceptance' | 'guarded-acceptance', string> = {
  'simple-acceptance': '简单接受规则（ILAC-G8 4.2.1）',
  'guarded-acceptance': '保护带接受规则（ILAC-G8 4.2.2）',
};

export const RELATES_ONLY_ZH = '检测结果仅对所检样品（按接收时状态）有效。未经本实验室书面批准，不得部分复制本报告。';

/** The limits of a result as the table prints them ("—" when the method sets none). */
export function limitsText(r: CertificateResult): string {
  const l = r.conformity?.limits;
  if (l === undefined) return '—';
  if (l.min !== undefined && l.max !== undefined) return `${l.min} – ${l.max}`;
  if (l.min !== undefined) return `≥ ${l.min}`;
  if (l.max !== undefined) return `≤ ${l.max}`;
  return '—';
}

/** The note printed under the table for one result. */
export function resultNote(r: CertificateResult): Both {
  const instruments = r.instruments.join(', ');
  const outside = r.accredited ? null : (r.scopeNote ?? 'outside the accreditation scope');
  const unit = r.unit === '' ? '' : ` ${r.unit}`;
  const range = (l: { min?: number | undefined; max?: number | undefined }, and: string, atLeast: string, atMost: string): string =>
    l.min !== undefined && l.max !== undefined
      ? `${l.min}${unit}${and}${l.max}${unit}`
      : l.min !== undefined
        ? `${atLeast}${l.min}${unit}`
        : `${atMost}${String(l.max)}${unit}`;
  const zhConformity =
    r.conformity === null
      ? ''
      : `${r.conformity.verdict === 'pass' ? '符合' : '不符合'}规定要求（${range(r.conformity.limits, ' 至 ', '不小于 ', '不大于 ')}）；判定规则：${RULES[r.conformity.rule]}。`;
  return {
    zh: `${r.name}：${r.measurand} 的 ${r.sampleCount} 个测量值的${STATISTIC[r.statistic] ?? r.statistic}，仪器 ${instruments}；包含概率 ${pct(r)} %。${zhConformity}${outside === null ? '' : `* 不在认可范围内：${outside}`}`,
    en: `${r.name} (${r.title}): ${r.statistic} of ${r.sampleCount} samples of ${r.measurand} from ${instruments}; coverage probability ${pct(r)} %.${r.conformity === null ? '' : ` ${r.conformity.statement}`}${outside === null ? '' : ` * Not accredited: ${outside}`}`,
  };
}

const pct = (r: CertificateResult): number => Math.round(r.uncertainty.coverageProbability * 1000) / 10;

export function traceabilityText(i: InstrumentTraceability, day: (ms: number) => string): Both[] {
  const identity: Both = {
    zh: `仪器信息：${i.maker} ${i.model}，序列号 ${i.serialNumber}${i.firmware === null ? '' : `，固件 ${i.firmware}`}${i.location === null ? '' : `，位置 ${i.location}`}`,
    en: `Instrument identity: ${i.maker} ${i.model}, serial number ${i.serialNumber}${i.firmware === null ? '' : `, firmware ${i.firmware}`}${i.location === null ? '' : `, location ${i.location}`}`,
  };
  const zh =
    i.calibration === null
      ? `仪器 ${i.id} 在检测时无校准记录。`
      : `仪器 ${i.id} 的测量结果通过 ${i.calibration.laboratory} 出具的校准证书 ${i.calibration.certificate} 溯源至国际单位制（SI），校准日期 ${day(i.calibration.calibratedAt)}，有效期至 ${day(i.calibration.dueAt)}；检测期间的校准状态：${STATUS[i.statusAtRun]}。`;
  return [{ zh, en: i.statement }, identity];
}

export function accreditationText(c: CertificateContent): Both {
  if (c.accreditation !== null)
    return {
      zh: `本实验室经 ${c.accreditation.body} 认可，认可编号 ${c.accreditation.number}。本报告中的全部结果均在认可范围内。`,
      en: `Accredited by ${c.accreditation.body}, accreditation No. ${c.accreditation.number}. Every result in this report lies inside the scope of accreditation.`,
    };
  if (c.notAccredited.length > 0)
    return {
      zh: `标有 * 的结果（${c.notAccredited.join(', ')}）不在认可范围内；本报告不使用认可标识。`,
      en: `The results marked * (${c.notAccredited.join(', ')}) lie outside the scope of accreditation; this report carries no accreditation mark.`,
    };
  return { zh: '本报告不使用认可标识。', en: 'This report carries no accreditation mark.' };
}
