// The printed compliance report: a PDF/A-3a made with pdfkit from the signed JSON report, in zh-CN, en or bilingual,
// with the report font the certificates use (one CJK font, embedded as a subset). The PDF is a rendering, not the
// signed artefact: it prints the SHA-256 of the signed JSON (also in its document info, `Keywords`), and carries that
// JSON as an attached file, so that the PDF is tied to it and the JSON can be checked offline. Byte for byte the same
// for the same signed JSON and font: its dates are the end of the period.
import PDFDocument from 'pdfkit';
import { LabtraceError } from '@labtrace/protocols';
import { defaultReportFont, formatTime } from '../certificates/render-pdf.js';
import type { ReportFont } from '../certificates/report-font.js';
import type { Both, ReportLanguage } from '../certificates/report-text.js';
import { reportFileName, sha256Hex, type SignedReport } from './compliance-report.js';
import { whyIn } from './evidence-why.js';

const MARGIN = 50;
const TOP = 70;
const BOTTOM = 56;
const BODY = 'report-regular';
const BOLD = 'report-bold';
/** the checks run printed in the table (the most recent); the JSON lists them all */
export const PRINTED_CHECKS = 40;

/** the marker of the signed JSON's digest in the PDF's document info (ASCII, so that it is found in the file's bytes) */
export const DIGEST_KEYWORD = 'labtrace-report-sha256:';

export const WORDS = {
  title: { zh: '合规监督报告', en: 'Compliance Report' },
  subtitle: {
    zh: '无感监管：监督方依据实验室公开的证据自动检查',
    en: 'Supervision without visits: automatic checks of the evidence the laboratory publishes',
  },
  identity: { zh: '报告信息', en: 'Report' },
  supervisor: { zh: '监督方密钥', en: "Supervisor's key" },
  laboratory: { zh: '实验室', en: 'Laboratory' },
  url: { zh: '网址', en: 'URL' },
  log: { zh: '透明日志', en: 'Transparency log' },
  period: { zh: '报告期间', en: 'Period' },
  standing: { zh: '期末信用等级', en: 'Standing at the end of the period' },
  tier: { zh: '信用等级', en: 'Tier' },
  score: { zh: '分值', en: 'Score' },
  checkEvery: { zh: '深度检查频率', en: 'Deeper checks' },
  findings: { zh: '本期发现的问题', en: 'Findings in the period' },
  noFindings: { zh: '本期无发现问题。', en: 'No findings in this period.' },
  rule: { zh: '规则', en: 'Rule' },
  reference: { zh: '依据', en: 'Reference' },
  severity: { zh: '严重程度', en: 'Severity' },
  occurred: { zh: '发生时间', en: 'Occurred' },
  detected: { zh: '发现时间', en: 'Detected' },
  subject: { zh: '对象', en: 'Subject' },
  description: { zh: '说明', en: 'Description' },
  status: { zh: '期末状态', en: 'Status at the end of the period' },
  evidence: { zh: '证据', en: 'Evidence' },
  remedy: { zh: '整改方式', en: 'How to clear it' },
  responses: { zh: '回复与处理', en: 'Responses and resolution' },
  noResponses: { zh: '期末前无回复。', en: 'No response before the end of the period.' },
  checks: { zh: '本期运行的检查', en: 'Checks run in the period' },
  noChecks: { zh: '本期未运行检查。', en: 'No checks ran in this period.' },
  time: { zh: '时间', en: 'Time' },
  duration: { zh: '耗时', en: 'Duration' },
  logSize: { zh: '日志大小', en: 'Log size' },
  newFindings: { zh: '新发现', en: 'New findings' },
  result: { zh: '结果', en: 'Result' },
  rules: { zh: '检查规则及依据', en: 'Rules and their references' },
  weight: { zh: '权重', en: 'Weight' },
  scoring: { zh: '评分表', en: 'Scoring table' },
  scoreRange: { zh: '分值范围', en: 'Score' },
  signature: { zh: '签名与验证', en: 'Signature and verification' },
  end: { zh: '报告结束', en: 'End of report' },
} satisfies Record<string, Both>;

export const SEVERITY: Record<'minor' | 'major' | 'critical', Both> = {
  minor: { zh: '一般', en: 'minor' },
  major: { zh: '严重', en: 'major' },
  critical: { zh: '重大', en: 'critical' },
};

const STATUS: Record<'open' | 'resolved', Both> = { open: { zh: '未关闭', en: 'open' }, resolved: { zh: '已解决', en: 'resolved' } };
const RESPONSE_KIND: Record<'response' | 'resolution', Both> = {
  response: { zh: '实验室回复', en: 'response' },
  resolution: { zh: '监督方处理', en: 'resolution' },
};
const SUBJECT: Record<string, Both> = {
  run: { zh: '检测', en: 'run' },
  certificate: { zh: '报告', en: 'report' },
  instrument: { zh: '仪器', en: 'instrument' },
  gateway: { zh: '网关', en: 'gateway' },
  keyId: { zh: '密钥', en: 'key' },
};

/** A duration as the scoring table states it: days, hours or minutes. */
export function durationText(ms: number, language: ReportLanguage): string {
  const [n, unit]: [number, Both] =
    ms % 86_400_000 === 0 && ms >= 86_400_000
      ? [ms / 86_400_000, { zh: '天', en: 'days' }]
      : ms % 3_600_000 === 0
        ? [ms / 3_600_000, { zh: '小时', en: 'hours' }]
        : [Math.round(ms / 60_000), { zh: '分钟', en: 'minutes' }];
  return language === 'en' ? `${n} ${unit.en}` : language === 'zh-CN' ? `${n} ${unit.zh}` : `${n} ${unit.zh} / ${n} ${unit.en}`;
}

/** A heading or a value in the report's language; bilingual: Chinese, then English. */
export function both(b: Both, language: ReportLanguage): string {
  return language === 'en' ? b.en : language === 'zh-CN' || b.zh === b.en ? b.zh : `${b.zh} ${b.en}`;
}

/**
 * A rule's remedy or a finding's summary in the report's language, both on two lines in a bilingual report (a report
 * signed before the Chinese remedies or summaries has the English only).
 */
function sentences(text: string | Both, language: ReportLanguage): string {
  if (typeof text === 'string') return text;
  return language === 'bilingual' && text.zh !== text.en ? `${text.zh}\n${text.en}` : both(text, language);
}

/** why a log entry is cited, in Chinese (and in English too in a bilingual report) */
function whyText(why: string, language: ReportLanguage): string {
  const { zh, en } = whyIn(why);
  return language === 'bilingual' && zh !== en ? `${zh} / ${en}` : zh;
}

/** The paragraphs of a text in the report's language, each with its language tag. */
function texts(b: Both, language: ReportLanguage): [string, string][] {
  if (language === 'en') return [[b.en, 'en']];
  if (language === 'zh-CN') return [[b.zh, 'zh-CN']];
  return [
    [b.zh, 'zh-CN'],
    [b.en, 'en'],
  ];
}

const at = (iso: string): string => formatTime(Date.parse(iso));
const day = (iso: string): string => iso.slice(0, 10);

/** Renders the signed report; `json` is the signed file's bytes, whose digest the PDF prints and which it attaches. */
export function renderReportPdf(signed: SignedReport, json: Uint8Array, font?: ReportFont): Promise<Uint8Array> {
  const reportFont = font ?? defaultReportFont().font;
  if (reportFont === undefined)
    throw new LabtraceError(
      'E_CONFLICT',
      `no report font: reports need a CJK font (npm package @expo-google-fonts/noto-sans-sc or Debian fonts-noto-cjk); tried ${defaultReportFont().tried.join('; ')}`,
    );
  const report = signed.report;
  const language = report.language;
  const digest = sha256Hex(json);
  const end = new Date(report.period.to);
  const label = (b: Both): string => both(b, language);
  const periodText = `${at(report.period.from)} ${language === 'en' ? 'to' : language === 'zh-CN' ? '至' : '至 / to'} ${at(report.period.to)}`;
  const doc = new PDFDocument({
    size: 'A4',
    margins: { top: TOP, bottom: BOTTOM, left: MARGIN, right: MARGIN },
    bufferPages: true,
    compress: true,
    pdfVersion: '1.7',
    subset: 'PDF/A-3a',
    tagged: true,
    lang: language === 'en' ? 'en' : 'zh-CN',
    displayTitle: true,
    info: {
      Title: infoText(`${label(WORDS.title)} ${report.lab.id} ${day(report.period.from)} - ${day(report.period.to)}`),
      Author: infoText(report.supervisor.name),
      Subject: infoText(`${report.lab.name}: ${periodText}`),
      // ASCII only, so that a verifier finds it in the file's bytes (pdfkit writes non-ASCII info as UTF-16)
      Keywords: `${DIGEST_KEYWORD}${digest}`,
      Producer: 'labtrace',
      Creator: 'labtrace supervisor',
      CreationDate: end,
      ModDate: end,
    },
  });
  // (a parsed fontkit font is what pdfkit embeds; its types know only paths and buffers)
  doc.registerFont(BODY, reportFont.regular.font as unknown as Buffer);
  doc.registerFont(BOLD, reportFont.bold.font as unknown as Buffer);
  doc.font(BODY);
  const chunks: Buffer[] = [];
  doc.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<Uint8Array>((resolve, reject) => {
    doc.on('end', () => resolve(new Uint8Array(Buffer.concat(chunks))));
    doc.on('error', reject);
  });

  const width = doc.page.width - 2 * MARGIN;
  const bottomY = (): number => doc.page.height - BOTTOM;
  const root = doc.struct('Document');
  doc.addStructure(root);
  const block = (type: string, draw: () => void, options: { lang?: string } = {}): void => {
    root.add(doc.struct(type, options, draw));
  };
  const ensure = (height: number): void => {
    if (doc.y + height > bottomY()) doc.addPage();
  };
  const LABEL_WIDTH = language === 'bilingual' ? 190 : language === 'en' ? 150 : 100;
  const row = (l: Both, value: string): void => {
    doc.font(BOLD).fontSize(9);
    const labelHeight = doc.heightOfString(label(l), { width: LABEL_WIDTH - 8 });
    doc.font(BODY);
    const h = Math.max(labelHeight, doc.heightOfString(value, { width: width - LABEL_WIDTH }));
    ensure(h);
    const y = doc.y;
    const page = doc.page;
    block('P', () => {
      doc.font(BOLD).text(label(l), MARGIN, y, { width: LABEL_WIDTH - 8 });
      doc.font(BODY).text(value, MARGIN + LABEL_WIDTH, y, { width: width - LABEL_WIDTH });
    });
    doc.x = MARGIN;
    // a value longer than a page (many responses) went on over the next: go on below where it ended
    doc.y = doc.page === page ? y + h + 2 : doc.y + 2;
  };
  const heading = (b: Both): void => {
    ensure(50);
    doc.moveDown(0.7);
    block('H2', () => doc.font(BOLD).fontSize(12).text(label(b), MARGIN, doc.y, { width }));
    doc.moveDown(0.25);
  };
  const para = (b: Both, size = 9): void => {
    for (const [t, lang] of texts(b, language)) {
      block('P', () => doc.font(BODY).fontSize(size).text(t, MARGIN, doc.y, { width }), { lang });
      doc.moveDown(0.15);
    }
  };
  // text as recorded (an identifier, a person's words): printed once, whatever the language
  const own = (t: string, size = 9): void => {
    block('P', () => doc.font(BODY).fontSize(size).text(t, MARGIN, doc.y, { width }));
    doc.moveDown(0.15);
  };
  const table = (headers: Both[], rows: string[][], fractions: number[]): void => {
    const heads = headers.map((h) => (language === 'bilingual' && h.zh !== h.en ? `${h.zh}\n${h.en}` : language === 'en' ? h.en : h.zh));
    const widths = fractions.map((f) => f * width);
    const xs = widths.map((_, i) => MARGIN + widths.slice(0, i).reduce((a, b) => a + b, 0));
    const PAD = 3;
    const heightOf = (cells: string[], bold: boolean): number => {
      doc.font(bold ? BOLD : BODY).fontSize(8);
      return Math.max(...cells.map((t, i) => doc.heightOfString(t, { width: (widths[i] ?? 0) - 2 * PAD }))) + 2 * PAD;
    };
    const element = doc.struct('Table');
    root.add(element);
    const draw = (cells: string[], isHeader: boolean): void => {
      const h = heightOf(cells, isHeader);
      const y = doc.y;
      const tr = doc.struct('TR');
      element.add(tr);
      cells.forEach((t, i) => {
        tr.add(
          doc.struct(isHeader ? 'TH' : 'TD', (isHeader ? { scope: 'Column' } : {}) as PDFKit.Mixins.StructureElementOptions, () => {
            doc
              .font(isHeader ? BOLD : BODY)
              .fontSize(8)
              .text(t, (xs[i] ?? 0) + PAD, y + PAD, { width: (widths[i] ?? 0) - 2 * PAD });
          }),
        );
      });
      tr.end();
      doc.markContent('Artifact', { type: 'Layout' });
      doc.rect(MARGIN, y, width, h).lineWidth(0.5).strokeColor('#555555').stroke();
      for (const x of xs.slice(1))
        doc
          .moveTo(x, y)
          .lineTo(x, y + h)
          .stroke();
      doc.strokeColor('black');
      doc.endMarkedContent();
      doc.x = MARGIN;
      doc.y = y + h;
    };
    const header = (): void => {
      if (doc.y + heightOf(heads, true) + heightOf(rows[0] ?? heads, false) > bottomY()) doc.addPage();
      draw(heads, true);
    };
    header();
    for (const cells of rows) {
      if (doc.y + heightOf(cells, false) > bottomY()) {
        doc.addPage();
        header();
      }
      draw(cells, false);
    }
    element.end();
    doc.moveDown(0.4);
  };

  // --- title and identity ---
  block('H1', () => doc.font(BOLD).fontSize(17).text(label(WORDS.title), MARGIN, doc.y, { width, align: 'center' }));
  doc.moveDown(0.3);
  para(WORDS.subtitle, 9);
  doc.moveDown(0.3);
  row(WORDS.laboratory, `${report.lab.name} (${report.lab.id})`);
  row(WORDS.url, report.lab.url);
  row(WORDS.log, report.lab.origin);
  row(WORDS.period, periodText);
  row(WORDS.supervisor, `${report.supervisor.name}+${report.supervisor.keyId} (Ed25519)`);

  // --- the standing at the end of the period ---
  heading(WORDS.standing);
  const { standing } = report;
  row(WORDS.tier, standing.tier);
  const counted = (['minor', 'major', 'critical'] as const).map((s) => `${both(SEVERITY[s], language)} ${standing.counted[s]}`).join(', ');
  row(WORDS.score, `${standing.score} (${counted})`);
  row(WORDS.checkEvery, durationText(standing.checkEveryMs, language));
  const days = Math.round(report.scoring.rollingPeriodMs / 86_400_000);
  para({
    zh: `分值为期末前 ${days} 天内发现且期末仍未关闭的问题的权重之和；等级按下文评分表确定。`,
    en: `The score is the sum of the weights of the findings detected in the ${days} days before the end of the period and still open at its end; the tier is the score's band in the scoring table below.`,
  });

  // --- findings ---
  heading(WORDS.findings);
  const { summary } = report;
  if (summary.findings === 0) {
    block('P', () => doc.font(BOLD).fontSize(10).text(label(WORDS.noFindings), MARGIN, doc.y, { width }));
    doc.moveDown(0.3);
  } else {
    const bySeverity = (['minor', 'major', 'critical'] as const).map((s) => `${both(SEVERITY[s], language)} ${summary.bySeverity[s]}`).join(', ');
    para({
      zh: `本期发现 ${summary.findings} 个问题（${bySeverity}）；期末未关闭 ${summary.openAtEnd} 个，已解决 ${summary.resolvedAtEnd} 个。`,
      en: `${summary.findings} finding${summary.findings === 1 ? '' : 's'} detected in the period (${bySeverity}); at its end ${summary.openAtEnd} open, ${summary.resolvedAtEnd} resolved.`,
    });
  }
  const rules = new Map(report.rules.map((r) => [r.id, r]));
  for (const f of report.findings) {
    const rule = rules.get(f.rule);
    ensure(90);
    doc.moveDown(0.4);
    const title = rule === undefined ? f.rule : both(rule.title, language);
    block('H3', () => doc.font(BOLD).fontSize(10).text(`#${f.id}  ${title}`, MARGIN, doc.y, { width }));
    doc.moveDown(0.2);
    row(WORDS.rule, `${f.rule} (${both(SEVERITY[f.severity], language)})`);
    if (rule !== undefined) row(WORDS.reference, rule.reference);
    row(WORDS.occurred, at(f.occurredAt));
    row(WORDS.detected, at(f.detectedAt));
    const subject = Object.entries(f.subject).map(([k, v]) => `${SUBJECT[k] === undefined ? k : both(SUBJECT[k], language)} ${v}`);
    if (subject.length > 0) row(WORDS.subject, subject.join(', '));
    row(WORDS.description, sentences(f.summary, language));
    row(WORDS.status, both(STATUS[f.status], language));
    const evidence = f.evidence.entries.map((e) =>
      language === 'en'
        ? `log entry ${e.index} (${e.kind}), ${e.why}: leaf hash ${e.leafHash}${e.inclusionProof === null ? '' : `, inclusion proof: ${e.inclusionProof.length} hashes`}`
        : `日志条目 ${e.index}（${e.kind}），${whyText(e.why, language)}：叶哈希 ${e.leafHash}${e.inclusionProof === null ? '' : `，包含证明：${e.inclusionProof.length} 个哈希`}`,
    );
    const checkpoint = checkpointLine(f.evidence.checkpoint, language);
    if (checkpoint !== undefined) evidence.push(checkpoint);
    if (f.evidence.detail !== undefined)
      evidence.push(language === 'en' ? 'further evidence in the JSON report (evidence.detail)' : '其他证据见 JSON 报告（evidence.detail）');
    if (evidence.length > 0) row(WORDS.evidence, evidence.join('\n'));
    if (rule !== undefined) row(WORDS.remedy, sentences(rule.remedy, language));
    row(
      WORDS.responses,
      f.responses.length === 0
        ? label(WORDS.noResponses)
        : f.responses.map((r) => `${at(r.at)} ${r.author} (${both(RESPONSE_KIND[r.kind], language)}):\n${r.text}`).join('\n'),
    );
  }

  // --- checks run ---
  heading(WORDS.checks);
  const { checks } = report;
  if (checks.count === 0) para(WORDS.noChecks);
  else {
    const first = checks.runs[0];
    const last = checks.runs.at(-1);
    para({
      zh: `共 ${checks.count} 次检查（首次 ${first === undefined ? '' : at(first.startedAt)}，末次 ${last === undefined ? '' : at(last.startedAt)}），失败 ${checks.failed} 次，新发现 ${checks.newFindings} 个问题；每次检查运行全部 ${report.rules.length} 条规则。`,
      en: `${checks.count} check${checks.count === 1 ? '' : 's'} run (first ${first === undefined ? '' : at(first.startedAt)}, last ${last === undefined ? '' : at(last.startedAt)}), ${checks.failed} failed, ${checks.newFindings} new finding${checks.newFindings === 1 ? '' : 's'}; each check runs the rules listed below.`,
    });
    const printed = checks.runs.slice(-PRINTED_CHECKS);
    if (printed.length < checks.count)
      para({
        zh: `下表列出最近 ${printed.length} 次检查；全部检查见 JSON 报告（checks.runs）。`,
        en: `The table lists the last ${printed.length} checks; the JSON report lists them all (checks.runs).`,
      });
    table(
      [WORDS.time, WORDS.duration, WORDS.logSize, WORDS.newFindings, WORDS.result],
      printed.map((r) => [
        at(r.startedAt),
        `${r.durationMs} ms`,
        String(r.logSize),
        String(r.newFindings),
        r.error === null ? (language === 'en' ? 'completed' : language === 'zh-CN' ? '完成' : '完成 completed') : r.error,
      ]),
      [0.25, 0.12, 0.13, 0.12, 0.38],
    );
  }

  // --- rules and scoring ---
  heading(WORDS.rules);
  table(
    [WORDS.rule, WORDS.reference, WORDS.severity, WORDS.weight],
    report.rules.map((r) => [`${r.id}\n${both(r.title, language)}`, r.reference, both(SEVERITY[r.severity], language), String(r.weight)]),
    [0.45, 0.33, 0.12, 0.1],
  );
  heading(WORDS.scoring);
  const w = report.scoring.weights;
  para({
    zh: `权重：一般 ${w.minor}，严重 ${w.major}，重大 ${w.critical}。统计期：期末前 ${days} 天；监督方处理（解决）的问题不再计分。`,
    en: `Weights: minor ${w.minor}, major ${w.major}, critical ${w.critical}. Rolling period: ${days} days before the end of the period; a finding the supervisor resolved no longer counts.`,
  });
  let lower = 0;
  table(
    [WORDS.tier, WORDS.scoreRange, WORDS.checkEvery],
    report.scoring.bands.map((b) => {
      const range = b.below === null ? `>= ${lower}` : `${lower} - ${b.below - 1}`;
      lower = b.below ?? lower;
      return [b.tier, range, durationText(b.checkEveryMs, language)];
    }),
    [0.2, 0.4, 0.4],
  );

  // --- how to check it ---
  heading(WORDS.signature);
  para({
    zh: `本 PDF 由已签名的 JSON 报告生成，并附有该 JSON 文件；签名对象是 JSON 报告，不是本 PDF。`,
    en: 'This PDF is printed from the signed JSON report, which it carries as an attached file; the JSON report is what the supervisor signed, not this PDF.',
  });
  para({ zh: `已签名 JSON 报告的 SHA-256：`, en: 'SHA-256 of the signed JSON report:' });
  own(digest, 8.5);
  para({
    zh: `签名：监督方密钥 ${report.supervisor.name}（密钥标识 ${report.supervisor.keyId}，Ed25519）。离线验证：labtrace supervisor verify-report ${reportFileName(report, 'json')} --key <监督方公钥> --pdf ${reportFileName(report, 'pdf')}`,
    en: `Signed with the supervisor's key ${report.supervisor.name} (key id ${report.supervisor.keyId}, Ed25519). Verify offline: labtrace supervisor verify-report ${reportFileName(report, 'json')} --key <the supervisor's public key> --pdf ${reportFileName(report, 'pdf')}`,
  });
  doc.moveDown(0.5);
  block('P', () => doc.font(BOLD).fontSize(11).text(label(WORDS.end), MARGIN, doc.y, { width, align: 'center' }));

  // --- header and footer on every page ---
  const { start, count } = doc.bufferedPageRange();
  for (let i = start; i < start + count; i++) {
    doc.switchToPage(i);
    const n = i - start + 1;
    const bottom = doc.page.margins.bottom;
    const topMargin = doc.page.margins.top;
    doc.page.margins.bottom = 0;
    doc.page.margins.top = 0;
    doc.markContent('Artifact', { type: 'Pagination' });
    doc
      .font(BODY)
      .fontSize(7.5)
      .fillColor('#333333')
      .text(`${label(WORDS.title)}: ${report.lab.name}`, MARGIN, 28, { width: width / 2, lineBreak: false, height: 10, ellipsis: true });
    doc.text(`${day(report.period.from)} - ${day(report.period.to)}`, MARGIN + width / 2, 28, { width: width / 2, align: 'right', lineBreak: false });
    doc
      .moveTo(MARGIN, 42)
      .lineTo(MARGIN + width, 42)
      .lineWidth(0.4)
      .strokeColor('#777777')
      .stroke();
    doc
      .moveTo(MARGIN, doc.page.height - 44)
      .lineTo(MARGIN + width, doc.page.height - 44)
      .stroke();
    const pageText =
      language === 'en'
        ? `page ${n} of ${count}`
        : language === 'zh-CN'
          ? `第 ${n} 页 共 ${count} 页`
          : `第 ${n} 页 共 ${count} 页 / page ${n} of ${count}`;
    doc.fillColor('black').text(`${report.lab.id} - ${pageText}`, MARGIN, doc.page.height - 38, { width, align: 'center', lineBreak: false });
    doc.endMarkedContent();
    doc.fillColor('black').strokeColor('black');
    doc.page.margins.bottom = bottom;
    doc.page.margins.top = topMargin;
  }
  root.end();

  // (AFRelationship is pdfkit 0.20's `relationship`, newer than its published types)
  const attachment: PDFKit.Mixins.PDFAttachmentOptions & { relationship: 'Source' } = {
    name: reportFileName(report, 'json'),
    type: 'application/json',
    relationship: 'Source',
    description: 'the signed compliance report (canonical JSON) this PDF is printed from',
    creationDate: end,
    modifiedDate: end,
  };
  doc.file(Buffer.from(json), attachment);
  doc.end();
  return done;
}

/** PDF/A keeps the document info and its XMP copy equal; pdfkit writes the XMP unescaped, so no markup characters there. */
const infoText = (s: string): string => s.replace(/&/g, '＆').replace(/</g, '＜').replace(/>/g, '＞');

/** The checkpoint a finding's proofs lead to, as one line: its origin, size and root hash (the note's first lines). */
function checkpointLine(note: string | null, language: ReportLanguage): string | undefined {
  if (note === null) return undefined;
  const [origin, size, root] = note.split('\n');
  if (origin === undefined || size === undefined || root === undefined) return undefined;
  return language === 'en'
    ? `the proofs lead to the lab's signed checkpoint ${origin}, size ${size}, root hash ${root}`
    : `证明指向实验室签名的检查点 ${origin}，大小 ${size}，根哈希 ${root}`;
}

/**
 * The SHA-256 of the signed JSON a PDF names in its document info, if it names one (pdfkit writes each info value
 * as a string object of its own, `(labtrace-report-sha256:<hex>)`, outside any compressed stream).
 */
export function pdfReportDigest(pdf: Uint8Array): string | undefined {
  const source = Buffer.from(pdf).toString('latin1');
  return new RegExp(`\\(${DIGEST_KEYWORD}([0-9a-f]{64})\\)`).exec(source)?.[1];
}
