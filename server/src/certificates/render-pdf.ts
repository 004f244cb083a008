// The printable report: a PDF/A-3a made with pdfkit, laid out as labs hand it out: the laboratory's letterhead
// (logo, name, address) and, only when every result lies in the scope of a current accreditation, the
// accreditation mark; the results as a table (quantity, value, U, k, unit, limits, verdict) with the strings
// the server rounded once; a header and a footer on every page with the report number and "page x of y"; the
// signatory's block; a QR code to the public verification page; "End of report" at the end.
// In zh-CN, en or bilingual (each heading and label in both languages). One CJK font (report-font.ts) is
// embedded as a subset for all text, Chinese and Latin. Tagged (headings, paragraphs, the table, figures with
// their alternative text; headers, footers and rules are artifacts), with the machine-readable forms attached
// (the DCC XML and the signed content's canonical JSON, as associated files). Byte for byte the same for the
// same content and assets: the creation date is the issue time, pdfkit derives the file ID from the document
// info, and the attachments carry the issue time as their dates.
import PDFDocument from 'pdfkit';
import QRCode from 'qrcode';
import { LabtraceError } from '@labtrace/protocols';
import type { CertificateContent, CertificateResult } from './content.js';
import { findReportFont, type ReportFont } from './report-font.js';
import {
  accreditationText,
  LABELS,
  limitsText,
  RELATES_ONLY_ZH,
  resultNote,
  traceabilityText,
  VERDICTS,
  type Both,
  type ReportLanguage,
} from './report-text.js';

const MARGIN = 50;
const TOP = 78;
const BOTTOM = 56;
const BODY = 'report-regular';
const BOLD = 'report-bold';

export const formatTime = (ms: number): string => `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
export const formatDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

export function uncertaintyText(r: CertificateContent['results'][number]): string {
  const unit = r.unit === '' ? '' : ` ${r.unit}`;
  return `U = ${r.uncertainty.reported}${unit} (k = ${r.uncertainty.coverageFactor}, coverage probability ${Math.round(r.uncertainty.coverageProbability * 1000) / 10} %)`;
}

export interface PdfAssets {
  /** the report font; the one found by default (report-font.ts) when not given */
  font?: ReportFont | undefined;
  /** the laboratory's logo (PNG or JPEG) */
  logo?: Uint8Array | undefined;
  /** the accreditation body's mark (PNG or JPEG), printed only on a report whose content carries the accreditation */
  accreditationMark?: Uint8Array | undefined;
  /**
   * a draft's preview: this text (e.g. "DRAFT - not issued") across every page and under the title; such a PDF is
   * never signed or stored
   */
  draftMark?: Both | undefined;
  /** the files attached to the PDF: the DCC XML and the signed content (canonical JSON) */
  attachments?: { dcc?: Uint8Array | undefined; content?: Uint8Array | undefined } | undefined;
}

let defaultFont: { font: ReportFont | undefined; tried: string[] } | undefined;
/** The font found without configuration (read once per process). */
export function defaultReportFont(): { font: ReportFont | undefined; tried: string[] } {
  defaultFont ??= findReportFont(undefined);
  return defaultFont;
}

/** PDF/A keeps the document info and its XMP copy equal; pdfkit writes the XMP unescaped, so no markup characters there. */
const infoText = (s: string): string => s.replace(/&/g, '＆').replace(/</g, '＜').replace(/>/g, '＞');

export function renderPdf(content: CertificateContent, contentDigest: string, assets: PdfAssets = {}): Promise<Uint8Array> {
  const font = assets.font ?? defaultReportFont().font;
  if (font === undefined)
    throw new LabtraceError(
      'E_CONFLICT',
      `no report font: reports need a CJK font (npm package @expo-google-fonts/noto-sans-sc, Debian fonts-noto-cjk, or config certificates.font); tried ${defaultReportFont().tried.join('; ')}`,
    );
  const language: ReportLanguage = content.language ?? 'en';
  const at = new Date(content.issuedAt);
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
      Title: infoText(`${pick(LABELS.title, language)} ${content.id}`),
      Author: infoText(content.laboratory.name),
      Subject: infoText(`${content.method.standard}: ${content.item.id}`),
      Producer: 'labtrace',
      Creator: 'labtrace',
      CreationDate: at,
      ModDate: at,
    },
  });
  // (a parsed fontkit font is what pdfkit embeds; its types know only paths and buffers)
  doc.registerFont(BODY, font.regular.font as unknown as Buffer);
  doc.registerFont(BOLD, font.bold.font as unknown as Buffer);
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
  const block = (type: string, draw: () => void, options: { lang?: string; alt?: string } = {}): void => {
    root.add(doc.struct(type, options, draw));
  };
  const artifact = (draw: () => void): void => {
    doc.markContent('Artifact', { type: 'Layout' });
    draw();
    doc.endMarkedContent();
  };
  const label = (b: Both): string => both(b, language);
  const ensure = (height: number): void => {
    if (doc.y + height > bottomY()) doc.addPage();
  };

  // --- letterhead: logo, laboratory name and address; the accreditation mark where the rules allow it ---
  const top = doc.y;
  let textX = MARGIN;
  if (assets.logo !== undefined) {
    block('Figure', () => doc.image(Buffer.from(assets.logo ?? []), MARGIN, top, { fit: [110, 50] }), { alt: label(LABELS.logo) });
    textX = MARGIN + 120;
  }
  const markShown = content.accreditation !== null && assets.accreditationMark !== undefined;
  const textWidth = width - (textX - MARGIN) - (markShown ? 100 : 0);
  block('P', () => {
    doc.font(BOLD).fontSize(14).text(content.laboratory.name, textX, top, { width: textWidth });
    doc.font(BODY).fontSize(9).text(content.laboratory.address, textX, doc.y, { width: textWidth });
  });
  let headBottom = Math.max(doc.y, top + (assets.logo === undefined ? 0 : 52));
  if (markShown && content.accreditation !== null) {
    const accreditation = content.accreditation;
    const markX = MARGIN + width - 90;
    block('Figure', () => doc.image(Buffer.from(assets.accreditationMark ?? []), markX, top, { fit: [90, 44], align: 'center' }), {
      alt: `${accreditation.body} ${accreditation.number}`,
    });
    block('P', () =>
      doc
        .font(BODY)
        .fontSize(7)
        .text(`${accreditation.body} ${accreditation.number}`, markX, top + 46, { width: 90, align: 'center' }),
    );
    headBottom = Math.max(headBottom, doc.y);
  }
  doc.x = MARGIN;
  doc.y = headBottom + 6;
  artifact(() =>
    doc
      .moveTo(MARGIN, doc.y)
      .lineTo(MARGIN + width, doc.y)
      .lineWidth(0.8)
      .stroke(),
  );
  doc.y += 12;

  // --- title and the report's identity ---
  const title = content.amendment === null ? both(LABELS.title, language) : `${both(LABELS.title, language)} - ${both(LABELS.amendment, language)}`;
  block('H1', () => doc.font(BOLD).fontSize(17).text(title, MARGIN, doc.y, { width, align: 'center' }));
  doc.moveDown(0.5);
  const draftMark = assets.draftMark;
  if (draftMark !== undefined) {
    block('P', () => doc.font(BOLD).fontSize(12).fillColor('#b91c1c').text(both(draftMark, language), MARGIN, doc.y, { width, align: 'center' }));
    doc.fillColor('black');
    doc.moveDown(0.5);
  }

  const LABEL_WIDTH = language === 'bilingual' ? 215 : language === 'en' ? 150 : 110;
  const row = (l: Both, value: string): void => {
    doc.font(BOLD).fontSize(9.5);
    const labelHeight = doc.heightOfString(label(l), { width: LABEL_WIDTH - 8 });
    doc.font(BODY);
    const h = Math.max(labelHeight, doc.heightOfString(value, { width: width - LABEL_WIDTH }));
    ensure(h);
    const y = doc.y;
    block('P', () => {
      doc.font(BOLD).text(label(l), MARGIN, y, { width: LABEL_WIDTH - 8 });
      doc.font(BODY).text(value, MARGIN + LABEL_WIDTH, y, { width: width - LABEL_WIDTH });
    });
    doc.x = MARGIN;
    doc.y = y + h + 2;
  };
  const heading = (b: Both): void => {
    ensure(40);
    doc.moveDown(0.6);
    block('H2', () => doc.font(BOLD).fontSize(11.5).text(label(b), MARGIN, doc.y, { width }));
    doc.moveDown(0.25);
  };
  const para = (b: Both, size = 9.5): void => {
    for (const [text, lang] of texts(b, language)) {
      block('P', () => doc.font(BODY).fontSize(size).text(text, MARGIN, doc.y, { width }), { lang });
      doc.moveDown(0.15);
    }
  };

  row(LABELS.reportNo, content.id);
  row(LABELS.issueDate, formatTime(content.issuedAt));
  row(LABELS.placeOfWork, content.placeOfWork);
  if (content.amendment !== null) {
    row(LABELS.amends, content.amendment.amends);
    row(LABELS.amendReason, content.amendment.reason);
    para({ zh: `本报告完全替代报告 ${content.amendment.amends}。`, en: `This report replaces Report No. ${content.amendment.amends} in full.` });
  }

  heading(LABELS.customer);
  row(LABELS.name, content.customer.name);
  row(LABELS.contact, content.customer.contact);

  heading(LABELS.item);
  row(LABELS.identification, content.item.id);
  row(LABELS.description, content.item.description);
  row(LABELS.condition, content.item.condition);
  row(LABELS.received, formatDay(content.receivedAt));

  heading(LABELS.method);
  row(LABELS.standard, content.method.standard);
  row(LABELS.methodTitle, content.method.title);
  row(
    LABELS.methodVersion,
    `${content.method.id} ${pick({ zh: '第', en: 'version' }, language)} ${content.method.version}${language === 'en' ? '' : ' 版'}`,
  );

  heading(LABELS.test);
  row(LABELS.run, content.test.run);
  row(LABELS.dates, `${formatTime(content.test.startedAt)} ${pick({ zh: '至', en: 'to' }, language)} ${formatTime(content.test.endedAt)}`);
  row(LABELS.technician, content.test.technician);

  heading(LABELS.results);
  resultsTable(doc, root, content.results, language, width, bottomY);
  doc.moveDown(0.4);
  row(LABELS.overall, both(VERDICTS[content.verdict], language));
  block('H3', () => doc.font(BOLD).fontSize(9.5).text(label(LABELS.notes), MARGIN, doc.y, { width }));
  for (const r of content.results) para(resultNote(r), 8.5);
  para(
    {
      zh: '扩展不确定度 U 为合成标准不确定度乘以包含因子 k（GUM）。结果与 U 按 GUM 修约一次：U 保留两位有效数字，结果修约到相同位数。',
      en: 'The expanded uncertainty U is the combined standard uncertainty multiplied by the coverage factor k (GUM). The value and U are rounded once: U to two significant digits, the value to the same decimal place.',
    },
    8.5,
  );

  heading(LABELS.traceability);
  for (const i of content.traceability) for (const t of traceabilityText(i, formatDay)) para(t);

  heading(LABELS.accreditation);
  para(accreditationText(content));

  heading(LABELS.statement);
  para({ zh: RELATES_ONLY_ZH, en: content.statement });
  // the signatory's own words, as written (one language)
  const own = (text: string): void => {
    block('P', () => doc.font(BODY).fontSize(9.5).text(text, MARGIN, doc.y, { width }));
    doc.moveDown(0.15);
  };
  for (const statement of content.statements ?? []) own(statement);
  if (content.remarks !== undefined) {
    heading(LABELS.remarks);
    own(content.remarks);
  }

  // --- the signatory's block ---
  heading(LABELS.authorization);
  row(LABELS.approvedBy, content.authorization.name);
  row(LABELS.role, content.authorization.role);
  row(LABELS.approvedAt, formatTime(content.authorization.at));
  row(LABELS.meaning, both({ zh: '批准本报告', en: `${content.authorization.meaning} of this report` }, language));
  para({
    zh: `由 ${content.authorization.name}（${content.authorization.role}）于 ${formatTime(content.authorization.at)} 以实验室密钥电子签名批准（Ed25519）；签名可按下方信息验证。`,
    en: `Approved by ${content.authorization.name} (${content.authorization.role}) on ${formatTime(content.authorization.at)}. Meaning of the signature: ${content.authorization.meaning} of this report. Signed electronically with the laboratory's key (Ed25519); check it as below.`,
  });

  heading(LABELS.evidence);
  para(
    {
      zh: `测量记录：${content.records.count} 条，摘要（${content.records.digestAlgorithm}）${content.records.digest}`,
      en: `Measurement records: ${content.records.count}, digest (${content.records.digestAlgorithm}) ${content.records.digest}`,
    },
    8.5,
  );
  para(
    {
      zh: `透明日志 ${content.checkpoint.origin}（签发时）：树大小 ${content.checkpoint.size}，根哈希 ${content.checkpoint.rootHash}`,
      en: `Transparency log ${content.checkpoint.origin} at issue: tree size ${content.checkpoint.size}, root hash ${content.checkpoint.rootHash}`,
    },
    8.5,
  );
  para(
    {
      zh: `机读报告（规范 JSON）SHA-256：${contentDigest}；本 PDF 附有该 JSON 与 DCC XML。`,
      en: `Machine-readable certificate (canonical JSON) SHA-256: ${contentDigest}; this PDF carries that JSON and the DCC XML as attachments.`,
    },
    8.5,
  );
  para({ zh: `在线验证本报告：${content.verifyUrl}`, en: `Verify this report online: ${content.verifyUrl}` }, 8.5);
  const qr = QRCode.create(content.verifyUrl, { errorCorrectionLevel: 'M' });
  const size = qr.modules.size;
  const cell = 2.2;
  ensure((size + 8) * cell + 30);
  const x0 = MARGIN + 4 * cell;
  const y0 = doc.y + 4 * cell;
  block(
    'Figure',
    () => {
      for (let r = 0; r < size; r++) for (let c = 0; c < size; c++) if (qr.modules.get(r, c)) doc.rect(x0 + c * cell, y0 + r * cell, cell, cell);
      doc.fillColor('black').fill();
    },
    { alt: `${label(LABELS.qr)}: ${content.verifyUrl}` },
  );
  doc.y = y0 + (size + 4) * cell;
  doc.x = MARGIN;
  doc.moveDown(0.5);
  block('P', () => doc.font(BOLD).fontSize(11).text(both(LABELS.end, language), MARGIN, doc.y, { width, align: 'center' }));

  // --- header and footer on every page: laboratory, report number, page x of y ---
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
      .text(content.laboratory.name, MARGIN, 28, { width: width / 2, lineBreak: false, height: 10, ellipsis: true });
    doc.text(`${label(LABELS.reportNo)} ${content.id}`, MARGIN + width / 2, 28, { width: width / 2, align: 'right', lineBreak: false });
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
    doc.fillColor('black').text(footer(content.id, n, count, language), MARGIN, doc.page.height - 38, {
      width,
      align: 'center',
      lineBreak: false,
    });
    if (draftMark !== undefined) {
      // across the page, behind nothing (an artifact): a preview is never mistaken for the report
      doc.save();
      doc.rotate(-35, { origin: [doc.page.width / 2, doc.page.height / 2] });
      doc
        .font(BOLD)
        .fontSize(language === 'bilingual' ? 28 : 44)
        .fillColor('#dc2626')
        .fillOpacity(0.18)
        .text(both(draftMark, language), 0, doc.page.height / 2 - 30, { width: doc.page.width, align: 'center', lineBreak: false });
      doc.restore();
    }
    doc.endMarkedContent();
    doc.fillColor('black').strokeColor('black');
    doc.page.margins.bottom = bottom;
    doc.page.margins.top = topMargin;
  }
  root.end();

  // --- the machine-readable forms, attached (PDF/A-3 associated files) ---
  const id = content.id;
  // (AFRelationship is pdfkit 0.20's `relationship`, newer than its published types)
  const attach = (data: Uint8Array, options: PDFKit.Mixins.PDFAttachmentOptions & { relationship: 'Alternative' | 'Source' }): void => {
    doc.file(Buffer.from(data), options);
  };
  if (assets.attachments?.dcc !== undefined)
    attach(assets.attachments.dcc, {
      name: `${id}.dcc.xml`,
      type: 'application/xml',
      relationship: 'Alternative',
      description: 'Digital Calibration Certificate (PTB DCC 3.3.0) of this report',
      creationDate: at,
      modifiedDate: at,
    });
  if (assets.attachments?.content !== undefined)
    attach(assets.attachments.content, {
      name: `${id}.content.json`,
      type: 'application/json',
      relationship: 'Source',
      description: 'the signed content of this report (canonical JSON); its SHA-256 is what the laboratory signed',
      creationDate: at,
      modifiedDate: at,
    });
  doc.end();
  return done;
}

/** The results table: repeated header row on each page, one row per result, the strings as the server rounded them. */
function resultsTable(
  doc: PDFKit.PDFDocument,
  root: PDFKit.PDFStructureElement,
  results: readonly CertificateResult[],
  language: ReportLanguage,
  width: number,
  bottomY: () => number,
): void {
  const headers = [LABELS.quantity, LABELS.value, LABELS.u, LABELS.k, LABELS.unit, LABELS.limits, LABELS.verdict].map((b) =>
    language === 'bilingual' && !b.zh.includes(b.en) ? `${b.zh}\n${b.en}` : pick(b, language),
  );
  const fractions = [0.27, 0.13, 0.13, 0.06, 0.1, 0.17, 0.14];
  const widths = fractions.map((f) => f * width);
  const xs = widths.map((_, i) => MARGIN + widths.slice(0, i).reduce((a, b) => a + b, 0));
  const PAD = 3;
  const cells = results.map((r) => [
    `${r.name}${r.accredited ? '' : ' *'}  ${r.title}`,
    r.reported,
    r.uncertainty.reported,
    String(r.uncertainty.coverageFactor),
    r.unit === '' ? '—' : r.unit,
    limitsText(r),
    r.conformity === null ? '—' : both(VERDICTS[r.conformity.verdict], language),
  ]);
  const heightOf = (texts: string[], bold: boolean): number => {
    doc.font(bold ? BOLD : BODY).fontSize(8.5);
    return Math.max(...texts.map((t, i) => doc.heightOfString(t, { width: (widths[i] ?? 0) - 2 * PAD }))) + 2 * PAD;
  };
  const table = doc.struct('Table');
  root.add(table);
  const header = (): void => {
    // the grey of the header row goes first, as an artifact, then the row
    const h = heightOf(headers, true);
    if (doc.y + h + heightOf(cells[0] ?? headers, false) > bottomY()) doc.addPage();
    doc.markContent('Artifact', { type: 'Layout' });
    doc.rect(MARGIN, doc.y, width, h).fillColor('#e8e8e8').fill().fillColor('black');
    doc.endMarkedContent();
    drawRowInner(headers, true);
  };
  const drawRowInner = (texts: string[], isHeader: boolean): void => {
    const h = heightOf(texts, isHeader);
    const y = doc.y;
    const tr = doc.struct('TR');
    table.add(tr);
    texts.forEach((t, i) => {
      tr.add(
        doc.struct(isHeader ? 'TH' : 'TD', (isHeader ? { scope: 'Column' } : {}) as PDFKit.Mixins.StructureElementOptions, () => {
          doc
            .font(isHeader ? BOLD : BODY)
            .fontSize(8.5)
            .text(t, (xs[i] ?? 0) + PAD, y + PAD, { width: (widths[i] ?? 0) - 2 * PAD, align: i === 0 ? 'left' : 'center' });
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
  header();
  for (const texts of cells) {
    if (doc.y + heightOf(texts, false) > bottomY()) {
      doc.addPage();
      header();
    }
    drawRowInner(texts, false);
  }
  table.end();
}

function pick(b: Both, language: ReportLanguage): string {
  return language === 'en' ? b.en : b.zh;
}

/** A heading or a value in the report's language; bilingual: Chinese, then English. */
function both(b: Both, language: ReportLanguage): string {
  return language === 'en' ? b.en : language === 'zh-CN' || b.zh === b.en ? b.zh : `${b.zh} ${b.en}`;
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

export function footer(id: string, page: number, pages: number, language: ReportLanguage): string {
  const en = `Report No. ${id} - page ${page} of ${pages}`;
  const zh = `报告编号 ${id} - 第 ${page} 页 共 ${pages} 页`;
  return language === 'en' ? en : language === 'zh-CN' ? zh : `${zh} / ${en}`;
}
