// The printed report in zh-CN, en and bilingual, as poppler and qpdf read it: Chinese text from the records comes
// out of pdftotext exactly as recorded, the CJK font is embedded as a subset (no font left unembedded), the
// headings are in the report's language(s), the results table prints the rounded strings of the content, the
// file is a structurally sound, tagged PDF/A-3a whose attachments are the DCC XML and the signed content, and
// the accreditation mark appears only on a report whose results all lie in the scope.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import pino from 'pino';
import QRCode from 'qrcode';
import { toHex } from '@labtrace/protocols';
import { composeContent } from '../../src/certificates/compose.js';
import type { CertificateContent } from '../../src/certificates/content.js';
import { renderDcc } from '../../src/certificates/render-dcc.js';
import { renderPdf } from '../../src/certificates/render-pdf.js';
import { readImage } from '../../src/certificates/report-assets.js';
import { DEBIAN_FONT_DIR, findReportFont, loadFace } from '../../src/certificates/report-font.js';
import type { ReportLanguage } from '../../src/certificates/report-text.js';
import { certificateKey, checkSignedJson, contentBytes, sha256Hex, signCertificate, STATEMENT_PURPOSE } from '../../src/certificates/signing.js';
import { dccSchemaErrors } from '../../src/certificates/validate-dcc.js';
import { composeInput, result, runResults } from './fixtures.js';
import { pdfAttachments, pdfFonts, pdfSource, pdfText, qpdfCheck, resultRows } from './pdf-text.js';

const CUSTOMER = '上海某某检测技术有限公司';
const DESCRIPTION = '热轧带肋钢筋 HRB400，直径 12 mm';
const CONDITION = '外观完好，无锈蚀';
const REASON = '委托方名称更正';
const DIGEST = 'c'.repeat(64);
const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-report-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function chinese(language: ReportLanguage, overrides: Parameters<typeof composeInput>[0] = {}): CertificateContent {
  return composeContent(
    composeInput({
      language,
      customer: { id: 'org-a', name: CUSTOMER, contact: '021-12345678' },
      sample: { id: 'S-1', description: DESCRIPTION, condition: CONDITION, receivedAt: Date.UTC(2026, 10, 19) },
      amendment: { amends: 'TR-lab-t-000000', reason: REASON },
      ...overrides,
    }),
  );
}

async function render(c: CertificateContent, assets: Parameters<typeof renderPdf>[2] = {}): Promise<{ pdf: Uint8Array; dcc: Uint8Array }> {
  const dcc = renderDcc(c, DIGEST, { softwareVersion: '0.1.0', country: 'CN' });
  const pdf = await renderPdf(c, DIGEST, { attachments: { dcc, content: contentBytes(c) }, ...assets });
  return { pdf, dcc };
}

/** The value printed beside a label (the label's line, split where the layout leaves two or more spaces). */
function valueOf(pages: string[], label: string): string | undefined {
  const line = pages
    .flatMap((p) => p.split('\n'))
    .map((l) => l.trim())
    .find((l) => l.startsWith(`${label}  `));
  return line?.split(/\s{2,}/)[1];
}

const HEADINGS = {
  zh: ['委托方', '检测样品', '检测方法', '检测结果', '计量溯源', '声明', '批准', '报告结束'],
  en: ['Customer', 'Item tested', 'Method', 'Results', 'Traceability', 'Statement', 'Authorization', 'End of report'],
};

describe.each(['zh-CN', 'bilingual', 'en'] as const)('a report in %s with Chinese customer, item, condition and amendment reason', (language) => {
  const content = chinese(language);
  let pdf: Uint8Array;
  let dcc: Uint8Array;
  let pages: string[];

  test('pdftotext gives back exactly the Chinese strings recorded', async () => {
    ({ pdf, dcc } = await render(content));
    pages = pdfText(pdf);
    const label = (zh: string, en: string): string => (language === 'en' ? en : language === 'zh-CN' ? zh : `${zh} ${en}`);
    expect(valueOf(pages, label('名称', 'Name'))).toBe(CUSTOMER);
    expect(valueOf(pages, label('样品描述', 'Description'))).toBe(DESCRIPTION);
    expect(valueOf(pages, label('接收时状态', 'Condition on receipt'))).toBe(CONDITION);
    expect(valueOf(pages, label('更正原因', 'Reason for the amendment'))).toBe(REASON);
  });

  test('the headings are in the report language(s), with report number and page x of y on every page', () => {
    const lines = pages.flatMap((p) => p.split('\n')).map((l) => l.trim());
    for (const [i, zh] of HEADINGS.zh.entries()) {
      const en = HEADINGS.en[i] ?? '';
      const heading = language === 'en' ? en : language === 'zh-CN' ? zh : `${zh} ${en}`;
      expect(lines).toContain(heading);
      if (language === 'zh-CN') expect(lines).not.toContain(en);
      if (language === 'en') expect(lines).not.toContain(zh);
    }
    pages.forEach((p, i) => {
      const n = i + 1;
      const en = `Report No. ${content.id} - page ${n} of ${pages.length}`;
      const zh = `报告编号 ${content.id} - 第 ${n} 页 共 ${pages.length} 页`;
      expect(p).toContain(language === 'en' ? en : language === 'zh-CN' ? zh : `${zh} / ${en}`);
    });
  });

  test('the results table prints the content strings of value, U and k, character for character', () => {
    const rows = resultRows(
      pages,
      content.results.map((r) => r.name),
    );
    for (const r of content.results) {
      const cells = rows.get(r.name);
      expect(cells?.slice(1, 5)).toEqual([r.reported, r.uncertainty.reported, String(r.uncertainty.coverageFactor), r.unit]);
    }
  });

  test('the CJK font is embedded as a subset with a Unicode map, and no font is left unembedded', () => {
    const fonts = pdfFonts(pdf);
    expect(fonts.length).toBeGreaterThan(0);
    for (const f of fonts) expect(f).toMatchObject({ embedded: true, subset: true, unicode: true });
    expect(fonts.map((f) => f.name)).toEqual(expect.arrayContaining([expect.stringMatching(/^[A-Z]{6}\+NotoSans(SC|CJKsc)-Regular$/)]));
  });

  test('qpdf --check finds no error; it is PDF 1.7, PDF/A-3a, tagged, with the language and both attachments', () => {
    const check = qpdfCheck(pdf);
    expect(check).toMatchObject({ code: 0 });
    expect(check.output).toContain('No syntax or stream encoding errors found');
    const src = pdfSource(pdf);
    expect(src.startsWith('%PDF-1.7')).toBe(true);
    expect(src).toMatch(/<pdfaid:part>3<\/pdfaid:part>\s*<pdfaid:conformance>A<\/pdfaid:conformance>/);
    expect(src).toMatch(/\/MarkInfo \d+ 0 R/);
    expect(src).toMatch(/\/Marked true/);
    expect(src).toMatch(new RegExp(`/Lang \\(${language === 'en' ? 'en' : 'zh-CN'}\\)`));
    expect(src).toMatch(/\/OutputIntents/);
    for (const s of ['Document', 'H1', 'H2', 'P', 'Table', 'TR', 'TH', 'TD', 'Figure']) expect(src).toContain(`/S /${s}\n`);
    expect(src).toMatch(/\/AFRelationship \/Alternative/);
    expect(src).toMatch(/\/AFRelationship \/Source/);
    const files = pdfAttachments(pdf);
    expect([...files.keys()].sort()).toEqual([`${content.id}.content.json`, `${content.id}.dcc.xml`]);
    expect(Buffer.from(files.get(`${content.id}.dcc.xml`) ?? []).equals(Buffer.from(dcc))).toBe(true);
    expect(Buffer.from(files.get(`${content.id}.content.json`) ?? []).equals(Buffer.from(contentBytes(content)))).toBe(true);
  });

  test('the same content gives the same bytes', async () => {
    expect(Buffer.from((await render(content)).pdf).equals(Buffer.from(pdf))).toBe(true);
  });

  test('the DCC lists the languages used and is valid against the PTB DCC schema', async () => {
    const xml = new TextDecoder().decode(dcc);
    const used = [...xml.matchAll(/<dcc:usedLangCodeISO639_1>(\w+)</g)].map((m) => m[1]);
    const mandatory = [...xml.matchAll(/<dcc:mandatoryLangCodeISO639_1>(\w+)</g)].map((m) => m[1]);
    const expected = language === 'en' ? ['en'] : language === 'zh-CN' ? ['zh'] : ['zh', 'en'];
    expect(mandatory).toEqual(expected);
    // English is always used (the file's own metadata)
    expect(used).toEqual(language === 'zh-CN' ? ['zh', 'en'] : expected);
    // every language mandatory has its own text of each statement the report prints
    for (const l of expected) expect(xml).toMatch(new RegExp(`<dcc:statement refType="labtrace_scope"><dcc:declaration>.*<dcc:content lang="${l}">`));
    if (language !== 'en') expect(xml).toContain('<dcc:content lang="zh">检测结果仅对所检样品');
    expect(xml).toContain(`<dcc:content>${CUSTOMER}</dcc:content>`);
    expect(await dccSchemaErrors(dcc)).toEqual([]);
  });
});

describe('letterhead and accreditation mark', () => {
  const png = (text: string): Promise<Uint8Array> => QRCode.toBuffer(text, { type: 'png', margin: 1 }).then((b) => new Uint8Array(b));
  // (each PNG here has an alpha channel: an image with its soft mask, so one /SMask per image drawn)
  const images = (pdf: Uint8Array): number => (pdfSource(pdf).match(/\/SMask \d+ 0 R/g) ?? []).length;
  const figures = (pdf: Uint8Array): string[] => [...pdfSource(pdf).matchAll(/\/S \/Figure\n\/Alt \(([^)]*)\)/g)].map((m) => m[1] ?? '');

  test('the mark is printed only when every result lies in the scope; the logo always', async () => {
    const logo = await png('logo');
    const mark = await png('mark');
    const inScope = composeContent(composeInput());
    expect(inScope.accreditation).not.toBeNull();
    const withMark = (await render(inScope, { logo, accreditationMark: mark })).pdf;
    expect(images(withMark)).toBe(2);
    expect(figures(withMark)).toEqual(expect.arrayContaining(['laboratory logo', 'DAkkS D-PL-12345-01-00']));
    expect(pdfText(withMark).join('\n')).toContain('DAkkS D-PL-12345-01-00');
    expect(qpdfCheck(withMark).code).toBe(0);

    const outside = result('Rm', 456.7, { unit: 'MPa', accredited: false, scopeNote: 'method outside the scope' });
    const mixed = composeContent(composeInput({ results: runResults([result('Fm', 12.34), outside]) }));
    const noMark = (await render(mixed, { logo, accreditationMark: mark })).pdf;
    expect(images(noMark)).toBe(1);
    expect(figures(noMark)).not.toContain('DAkkS D-PL-12345-01-00');

    // an accreditation no longer current at the issue (suspended, expired): no mark either
    const lapsed = composeContent(composeInput({ accreditationCurrent: false }));
    expect(lapsed.accreditation).toBeNull();
    expect(images((await render(lapsed, { logo, accreditationMark: mark })).pdf)).toBe(1);
  });

  test('logo and mark files are checked: a PNG or JPEG, named with its config key when it is not', async () => {
    const good = path.join(dir, 'logo.png');
    writeFileSync(good, await png('logo'));
    expect(readImage(good, 'laboratory.logo').length).toBeGreaterThan(0);
    const text = path.join(dir, 'logo.txt');
    writeFileSync(text, 'not an image');
    expect(() => readImage(text, 'laboratory.logo')).toThrow(/laboratory\.logo: .*logo\.txt is not a PNG or JPEG image/);
    expect(() => readImage(path.join(dir, 'absent.png'), 'certificates.accreditationMark')).toThrow(
      /certificates\.accreditationMark: cannot read .*absent\.png \(ENOENT\)/,
    );
  });

  test('markup in the laboratory name stays text: the PDF/A metadata remains well-formed', async () => {
    const c = composeContent(composeInput({ laboratory: { name: 'A & <B> Lab', address: '1 Test Street' } }));
    const { pdf } = await render(c);
    expect(qpdfCheck(pdf).code).toBe(0);
    expect(pdfText(pdf)[0]).toContain('A & <B> Lab');
    // (the XMP packet is UTF-8)
    expect(Buffer.from(pdf).includes(Buffer.from('<rdf:li>A ＆ ＜B＞ Lab</rdf:li>'))).toBe(true);
  });
});

describe('the report font', () => {
  test('after npm ci it is Noto Sans SC from the npm dependency', () => {
    const { font } = findReportFont(undefined);
    expect(font).toMatchObject({ source: 'npm', regular: { postscriptName: 'NotoSansSC-Regular' }, bold: { postscriptName: 'NotoSansSC-Bold' } });
  });

  test("a configured TTC needs its face's name; a font without Chinese or a WOFF file is refused", () => {
    const ttc = path.join(DEBIAN_FONT_DIR, 'NotoSansCJK-Regular.ttc');
    expect(loadFace({ file: ttc, face: 'NotoSansCJKsc-Regular' }).postscriptName).toBe('NotoSansCJKsc-Regular');
    expect(() => loadFace({ file: ttc })).toThrow(/is a collection: name the face \(one of .*NotoSansCJKsc-Regular/);
    expect(() => loadFace({ file: ttc, face: 'Nope' })).toThrow(/has no face "Nope"/);
    const woff = path.join(dir, 'font.woff2');
    writeFileSync(woff, Buffer.concat([Buffer.from('wOF2'), Buffer.alloc(64)]));
    expect(() => loadFace({ file: woff })).toThrow(/WOFF\/WOFF2 is not supported/);
    expect(() => findReportFont({ regular: { file: path.join(dir, 'missing.ttf') } })).toThrow(/missing\.ttf: no such file/);
  });
});

describe('reports issued before languages', () => {
  test('their signed JSON (no language field) still verifies byte for byte, and renders in English', async () => {
    const key = certificateKey(path.join(dir, 'certificate.key'), 'labtrace-certificates/lab-t', pino({ level: 'silent' }));
    const { language: _language, ...old } = composeContent(composeInput());
    const digest = sha256Hex(contentBytes(old));
    const statement = {
      purpose: STATEMENT_PURPOSE as typeof STATEMENT_PURPOSE,
      v: 1 as const,
      certificate: old.id,
      issuedAt: old.issuedAt,
      keyId: toHex(key.keyId),
      digestAlgorithm: 'SHA-256' as const,
      digests: { json: digest, pdf: 'd'.repeat(64), dcc: 'e'.repeat(64) },
    };
    const { bytes } = signCertificate(key, old, statement);
    expect(new TextDecoder().decode(bytes)).not.toContain('"language"');
    const check = checkSignedJson(bytes, [{ keyId: toHex(key.keyId), publicKey: key.publicKey }]);
    expect(check).toMatchObject({ ok: true });
    expect(pdfText(await renderPdf(old, digest)).join('\n')).toContain('Test Report');
    // a lone surrogate written into the file (JSON reads it, canonical JSON refuses it): a problem, not a throw
    const text = new TextDecoder().decode(bytes);
    const broken = new TextEncoder().encode(text.replace(`"${old.id}"`, `"${old.id}\\ud800"`));
    expect(checkSignedJson(broken, [{ keyId: toHex(key.keyId), publicKey: key.publicKey }])).toMatchObject({
      ok: false,
      problem: expect.stringMatching(/^not canonical JSON: /) as unknown,
    });
  });
});
