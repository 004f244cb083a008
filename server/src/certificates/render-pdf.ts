// The printable certificate: a PDF made with pdfkit, byte for byte the same for the same content (the creation
// date is the issue time, and pdfkit derives the file ID from the document info, so nothing random enters).
// Every page carries the report number and "page x of y"; the last ends with "End of report"; a QR code links
// to the public verification page.
import PDFDocument from 'pdfkit';
import QRCode from 'qrcode';
import type { CertificateContent } from './content.js';

const MARGIN = 50;
const FONT = 'Helvetica';
const BOLD = 'Helvetica-Bold';

export const formatTime = (ms: number): string => `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
export const formatDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** The standard PDF fonts speak WinAnsi; a few common signs outside it are spelled out. */
const printable = (s: string): string => s.replace(/\u2212/g, '-').replace(/\u2009|\u202f/g, ' ');

export function uncertaintyText(r: CertificateContent['results'][number]): string {
  const unit = r.unit === '' ? '' : ` ${r.unit}`;
  return `U = ${r.uncertainty.reported}${unit} (k = ${r.uncertainty.coverageFactor}, coverage probability ${Math.round(r.uncertainty.coverageProbability * 1000) / 10} %)`;
}

export function renderPdf(content: CertificateContent, contentDigest: string): Promise<Uint8Array> {
  const at = new Date(content.issuedAt);
  const doc = new PDFDocument({
    size: 'A4',
    margin: MARGIN,
    bufferPages: true,
    compress: true,
    info: {
      Title: `${content.title} ${content.id}`,
      Author: content.laboratory.name,
      Subject: `${content.method.standard}: ${content.item.id}`,
      Producer: 'labtrace',
      Creator: 'labtrace',
      CreationDate: at,
      ModDate: at,
    },
  });
  const chunks: Buffer[] = [];
  doc.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<Uint8Array>((resolve, reject) => {
    doc.on('end', () => resolve(new Uint8Array(Buffer.concat(chunks))));
    doc.on('error', reject);
  });
  const width = doc.page.width - 2 * MARGIN;
  const heading = (s: string): void => {
    doc.moveDown(0.6).font(BOLD).fontSize(11).text(printable(s)).font(FONT).fontSize(9.5).moveDown(0.2);
  };
  const line = (label: string, value: string): void => {
    doc
      .font(BOLD)
      .text(`${printable(label)}: `, { continued: true })
      .font(FONT)
      .text(printable(value));
  };
  const para = (s: string): void => {
    doc.font(FONT).text(printable(s), { width });
  };

  doc.font(BOLD).fontSize(16).text(printable(content.title));
  doc.font(FONT).fontSize(10).text(printable(content.laboratory.name)).text(printable(content.laboratory.address));
  doc.moveDown(0.5).fontSize(9.5);
  line('Report No.', content.id);
  line('Date of issue', formatTime(content.issuedAt));
  line('Place of work', content.placeOfWork);
  if (content.amendment !== null) {
    doc.moveDown(0.3);
    line('Amendment to Report No.', content.amendment.amends);
    line('Reason for the amendment', content.amendment.reason);
    para(`This report replaces Report No. ${content.amendment.amends} in full.`);
  }

  heading('Customer');
  line('Name', content.customer.name);
  line('Contact', content.customer.contact);

  heading('Item tested');
  line('Identification', content.item.id);
  line('Description', content.item.description);
  line('Condition on receipt', content.item.condition);
  line('Date of receipt', formatDay(content.receivedAt));

  heading('Method');
  line('Standard', content.method.standard);
  line('Title', content.method.title);
  line('Method version', `${content.method.id} version ${content.method.version}`);

  heading('Test');
  line('Test run', content.test.run);
  line('Dates of test', `${formatTime(content.test.startedAt)} to ${formatTime(content.test.endedAt)}`);
  line('Performed by', content.test.technician);

  heading('Results');
  for (const r of content.results) {
    const unit = r.unit === '' ? '' : ` ${r.unit}`;
    doc.font(BOLD).text(printable(`${r.name} (${r.title}): ${r.reported}${unit}`), { width });
    para(`  ${uncertaintyText(r)}; ${r.statistic} of ${r.sampleCount} samples of ${r.measurand} from ${r.instruments.join(', ')}`);
    if (r.conformity !== null) para(`  ${r.conformity.statement}`);
    if (!r.accredited) para(`  * Not accredited: ${r.scopeNote ?? 'outside the accreditation scope'}`);
  }
  doc.moveDown(0.3);
  line('Overall verdict', content.verdict);
  para('The expanded uncertainty U is the combined standard uncertainty multiplied by the coverage factor k (GUM).');

  heading('Traceability');
  for (const i of content.traceability) {
    para(i.statement);
    para(`  Instrument identity: ${i.maker} ${i.model}, serial number ${i.serialNumber}${i.firmware === null ? '' : `, firmware ${i.firmware}`}`);
  }

  heading('Accreditation');
  if (content.accreditation !== null)
    para(
      `Accredited by ${content.accreditation.body}, accreditation No. ${content.accreditation.number}. Every result in this report lies inside the scope of accreditation.`,
    );
  else if (content.notAccredited.length > 0)
    para(
      `The results marked * (${content.notAccredited.join(', ')}) lie outside the scope of accreditation; this report carries no accreditation mark.`,
    );
  else para('This report carries no accreditation mark.');

  heading('Statement');
  para(content.statement);

  heading('Authorization');
  para(
    `Approved by ${content.authorization.name} (${content.authorization.role}) on ${formatTime(content.authorization.at)}. Meaning of the signature: ${content.authorization.meaning} of this report.`,
  );

  heading('Evidence and verification');
  para(`Measurement records: ${content.records.count}, digest (${content.records.digestAlgorithm}) ${content.records.digest}`);
  para(`Transparency log ${content.checkpoint.origin} at issue: tree size ${content.checkpoint.size}, root hash ${content.checkpoint.rootHash}`);
  para(`Machine-readable certificate (canonical JSON) SHA-256: ${contentDigest}`);
  para(`Verify this report online: ${content.verifyUrl}`);
  const qr = QRCode.create(content.verifyUrl, { errorCorrectionLevel: 'M' });
  const size = qr.modules.size;
  const cell = 2.2;
  if (doc.y + (size + 8) * cell > doc.page.height - MARGIN - 40) doc.addPage();
  const x0 = MARGIN + 4 * cell;
  const y0 = doc.y + 4 * cell;
  for (let r = 0; r < size; r++) for (let c = 0; c < size; c++) if (qr.modules.get(r, c)) doc.rect(x0 + c * cell, y0 + r * cell, cell, cell);
  doc.fillColor('black').fill();
  doc.y = y0 + (size + 4) * cell;
  doc.x = MARGIN;
  doc.moveDown(0.5).font(BOLD).fontSize(11).text('End of report', { align: 'center', width });

  // the report number and page x of y on every page, in the bottom margin
  const { start, count } = doc.bufferedPageRange();
  for (let i = start; i < start + count; i++) {
    doc.switchToPage(i);
    const bottom = doc.page.margins.bottom;
    doc.page.margins.bottom = 0;
    doc
      .font(FONT)
      .fontSize(8)
      .text(printable(`Report No. ${content.id} - page ${i - start + 1} of ${count}`), MARGIN, doc.page.height - 35, {
        width,
        align: 'center',
        lineBreak: false,
      });
    doc.page.margins.bottom = bottom;
  }
  doc.end();
  return done;
}
