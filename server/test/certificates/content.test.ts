// A certificate's content against ISO/IEC 17025 7.8.2.1 a-p item by item, the accreditation mark rule, and its
// renderings: the PDF (deterministic bytes; its text, as pdftotext extracts it, says what the results say, on
// pages that each carry the report number and "page x of y") and the DCC XML.
import { describe, expect, test } from '@jest/globals';
import { composeContent } from '../../src/certificates/compose.js';
import { certificateContentSchema, MANDATORY_ITEMS, missingFields, RELATES_ONLY } from '../../src/certificates/content.js';
import { renderDcc } from '../../src/certificates/render-dcc.js';
import { renderPdf } from '../../src/certificates/render-pdf.js';
import { composeInput, result, runResults, T0 } from './fixtures.js';
import { pdfText, resultRows } from './pdf-text.js';

describe('content', () => {
  const input = composeInput();
  const c = composeContent(input);

  test('is complete and valid', () => {
    expect(missingFields(c)).toEqual([]);
    expect(certificateContentSchema.safeParse(c).success).toBe(true);
  });

  test('holds every mandatory item, each from the record it comes from', () => {
    expect(c.title).toBe('Test Report'); // a
    expect(c.laboratory).toEqual({ name: 'Materials Testing Lab Ltd', address: '1 Test Street, 12345 Testtown' }); // b
    expect(c.placeOfWork).toMatch(/1 Test Street/); // c
    expect(c.id).toBe('TR-lab-t-000001'); // d
    expect(c.customer).toEqual({ id: 'org-a', name: 'Client A', contact: 'qa@client-a.example' }); // e
    expect(c.method).toEqual({ id: 'tensile', version: 2, standard: 'ISO 6892-1:2019', title: 'Tensile testing at room temperature' }); // f
    expect(c.item).toEqual({ id: 'S-1', description: 'steel bar B500B, 12 mm', condition: 'as received, no damage' }); // g
    expect(c.receivedAt).toBe(input.sample.receivedAt); // h
    expect(c.test).toEqual({ run: 'run-1', startedAt: T0, endedAt: T0 + 3_600_000, technician: 'technician' }); // i
    expect(c.issuedAt).toBe(input.issuedAt); // j
    expect(c.statement).toBe(RELATES_ONLY); // l
    // m: results with units, U, k, coverage probability, and the conformity statement with its rule
    expect(c.results.map((r) => [r.name, r.value, r.unit, r.uncertainty])).toEqual([
      ['Fm', 12.34, 'kN', { expanded: 0.1, reported: '0.10', coverageFactor: 2, coverageProbability: 0.95 }],
      ['Rm', 456.7, 'MPa', { expanded: 0.1, reported: '0.10', coverageFactor: 2, coverageProbability: 0.95 }],
    ]);
    expect(c.results[0]?.conformity?.statement).toMatch(/^Conforms to the specification \(0 kN to 100 kN\); decision rule: simple acceptance/);
    // traceability: identity and calibration of each instrument, with its status during the run
    expect(c.traceability).toEqual([
      expect.objectContaining({
        id: 'ut-1',
        maker: 'Zwick',
        model: 'Z100',
        serialNumber: 'SN-778',
        firmware: '4.2',
        location: 'Hall 2, bay 1',
        calibration: expect.objectContaining({ certificate: 'C-17', laboratory: 'Calibration Lab GmbH' }),
        statusAtRun: 'valid',
      }),
    ]);
    expect(c.traceability[0]?.statement).toMatch(/traceable to the SI through calibration certificate C-17 of Calibration Lab GmbH/);
    // o: who authorized it, when, and what the signature means
    expect(c.authorization).toEqual({ name: 'signatory', role: 'signatory', at: input.issuedAt, meaning: 'approval' });
    expect(c.accreditation).toEqual({ body: 'DAkkS', number: 'D-PL-12345-01-00' });
    expect(c.notAccredited).toEqual([]);
    expect(c.records).toEqual({ count: 1234, digest: 'a'.repeat(64), digestAlgorithm: expect.any(String) });
    expect(c.checkpoint).toEqual({ origin: 'labtrace/lab-t', size: 17, rootHash: 'b'.repeat(64) });
    expect(c.amendment).toBeNull();
  });

  test('missingFields names each absent item by its clause', () => {
    const noLab = composeContent(composeInput({ laboratory: undefined }));
    expect(missingFields(noLab)).toEqual(['7.8.2.1 b laboratory name', '7.8.2.1 b laboratory address', '7.8.2.1 c place of work']);
    const noContact = composeContent(composeInput({ customer: { id: 'org-a', name: 'Client A', contact: null } }));
    expect(missingFields(noContact)).toEqual(['7.8.2.1 e customer contact']);
    const uncalibrated = composeInput();
    const never = { instrument: 'ut-1', status: 'never-calibrated' as const, dueAt: null, calibration: null, lastCheck: null, lastGoodAt: null };
    const noCal = composeContent({ ...uncalibrated, instruments: [{ ...uncalibrated.instruments[0]!, atStart: never, atEnd: never }] });
    expect(missingFields(noCal)).toEqual(['6.5 / 7.8.4.1 traceability statement per instrument']);
    // every item of the list is detected when its field is emptied
    for (const item of MANDATORY_ITEMS) expect(item.present(c)).toBe(true);
    expect(missingFields({}).length).toBeGreaterThanOrEqual(20);
  });

  test('the accreditation mark is absent when a result lies outside the scope, and that result is flagged', () => {
    const outside = result('Rm', 456.7, { unit: 'MPa', accredited: false, scopeNote: 'Rm above the accredited range (max 400 MPa)' });
    delete (outside as { accreditation?: unknown }).accreditation;
    const mixed = composeContent(composeInput({ results: runResults([result('Fm', 12.34), outside]) }));
    expect(mixed.accreditation).toBeNull();
    expect(mixed.notAccredited).toEqual(['Rm']);
    expect(mixed.results[1]).toEqual(expect.objectContaining({ accredited: false, scopeNote: 'Rm above the accredited range (max 400 MPa)' }));
    expect(missingFields(mixed)).toEqual([]);
    // a mark on a report with a result outside the scope is a defect the checker names
    expect(missingFields({ ...mixed, accreditation: { body: 'DAkkS', number: 'D-PL-12345-01-00' } })).toEqual([
      '7.8.2.2 results outside the accreditation scope flagged, mark only when all are inside',
    ]);
  });

  test('an amendment says which report it replaces and why', () => {
    const a = composeContent(composeInput({ id: 'TR-lab-t-000002', amendment: { amends: 'TR-lab-t-000001', reason: 'customer name misspelt' } }));
    expect(a.title).toBe('Test Report - Amendment to Report No. TR-lab-t-000001');
    expect(a.amendment).toEqual({ amends: 'TR-lab-t-000001', reason: 'customer name misspelt' });
    expect(missingFields(a)).toEqual([]);
  });
});

describe('renderings', () => {
  test('the PDF is the same bytes for the same content, and differs when the content does', async () => {
    const c = composeContent(composeInput());
    const [a, b] = await Promise.all([renderPdf(c, 'c'.repeat(64)), renderPdf(c, 'c'.repeat(64))]);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(Buffer.from(a).subarray(0, 5).toString()).toBe('%PDF-');
    const other = await renderPdf({ ...c, issuedAt: c.issuedAt + 1000 }, 'c'.repeat(64));
    expect(Buffer.from(a).equals(Buffer.from(other))).toBe(false);
  });

  test("the PDF's text says what the results say, with the report number and page x of y on every page", async () => {
    const many = Array.from({ length: 30 }, (_, i) => result(`R${i}`, 10 + i / 4, { reported: (10 + i / 4).toFixed(2) }));
    const c = composeContent(composeInput({ results: runResults(many) }));
    const pages = pdfText(await renderPdf(c, 'c'.repeat(64)));
    expect(pages.length).toBeGreaterThan(1);
    pages.forEach((page, i) => {
      expect(page).toContain(`Report No. ${c.id} - page ${i + 1} of ${pages.length}`);
    });
    const text = pages.join('\n').replace(/\s+/g, ' ');
    // the results table: one row per result with the value, U and k as the content gives them
    const rows = resultRows(
      pages,
      c.results.map((r) => r.name),
    );
    for (const r of c.results) {
      expect(rows.get(r.name)).toEqual([
        `${r.name} ${r.title}`,
        r.reported,
        r.uncertainty.reported,
        String(r.uncertainty.coverageFactor),
        r.unit,
        '0 – 100',
        'pass',
      ]);
      expect(text).toContain(`${r.name} (${r.title}): max of 42 samples of force from ut-1; coverage probability 95 %.`);
    }
    // the table's header row is repeated on each page it continues on
    expect(pages.filter((p) => /Quantity\s+Value\s+U\s+k\s+Unit\s+Limits\s+Verdict/.test(p)).length).toBeGreaterThan(1);
    expect(text).toContain('Conforms to the specification (0 kN to 100 kN); decision rule: simple acceptance');
    expect(text).toContain('Customer');
    expect(text).toContain('qa@client-a.example');
    expect(text).toContain('ISO 6892-1:2019');
    expect(text).toContain('calibration certificate C-17 of Calibration Lab GmbH');
    expect(text).toContain('location Hall 2, bay 1');
    expect(text).toContain('Accredited by DAkkS, accreditation No. D-PL-12345-01-00');
    expect(text).toContain('Approved by signatory (signatory)');
    expect(text).toContain('Meaning of the signature: approval');
    expect(text).toContain(c.verifyUrl);
    expect(text).toContain(RELATES_ONLY.slice(0, 60));
    expect(pages.at(-1)).toContain('End of report');
    expect(pages.slice(0, -1).some((p) => p.includes('End of report'))).toBe(false);
  });

  test('the PDF of a report with a result outside the scope flags it and has no mark', async () => {
    const outside = result('Rm', 456.7, { unit: 'MPa', reported: '456.7', accredited: false, scopeNote: 'method outside the scope' });
    const c = composeContent(composeInput({ results: runResults([result('Fm', 12.34), outside]) }));
    const text = pdfText(await renderPdf(c, 'c'.repeat(64)))
      .join('\n')
      .replace(/\s+/g, ' ');
    expect(text).toContain('* Not accredited: method outside the scope');
    expect(text).not.toContain('Accredited by');
    expect(text).toMatch(/\(Rm\) lie outside the scope of accreditation/);
  });

  test('the DCC carries administrative data and every result as si:real with its expanded uncertainty', () => {
    const c = composeContent(composeInput());
    const xml = new TextDecoder().decode(renderDcc(c, 'c'.repeat(64), { softwareVersion: '0.1.0', country: 'DE' }));
    expect(xml).toMatch(/xmlns:dcc="https:\/\/ptb.de\/dcc"/);
    expect(xml).toMatch(/xmlns:si="https:\/\/ptb.de\/si"/);
    expect(xml).toContain('<dcc:uniqueIdentifier>TR-lab-t-000001</dcc:uniqueIdentifier>');
    expect(xml).toContain('<dcc:countryCodeISO3166_1>DE</dcc:countryCodeISO3166_1>');
    const reals = [...xml.matchAll(/<si:real>[\s\S]*?<\/si:real>/g)].map((m) => m[0]);
    expect(reals).toHaveLength(2);
    expect(reals[0]).toMatch(/<si:value>12.34<\/si:value>\s*<si:unit>\\kilo\\newton<\/si:unit>/);
    // D-SI 2.x: measurementUncertaintyUnivariate/expandedMU, not the deprecated expandedUnc
    expect(reals[0]).toMatch(
      /<si:measurementUncertaintyUnivariate><si:expandedMU>\s*<si:valueExpandedMU>0.10<\/si:valueExpandedMU>\s*<si:coverageFactor>2<\/si:coverageFactor>\s*<si:coverageProbability>0.95</,
    );
    expect(xml).not.toContain('expandedUnc');
    expect(reals[1]).toMatch(/<si:unit>\\mega\\pascal<\/si:unit>/);
    // the conformity of a result is its measurement metadata, not part of the quantity's value
    expect(xml).toMatch(
      /<\/si:real>\s*<dcc:measurementMetaData><dcc:metaData refType="labtrace_conformity">[\s\S]*?<dcc:conformity>pass<\/dcc:conformity>/,
    );
    // the signing time is said in words; cryptElectronicTimeStamp is a yes/no the DCC does not claim
    expect(xml).not.toContain('cryptElectronicTimeStamp');
    expect(xml).toContain(`Authorized the report on ${new Date(c.authorization.at).toISOString()}; meaning of the signature: approval`);
    // text is escaped; a lab whose config names no country is in "ZZ", ISO 3166's unknown country
    const odd = new TextDecoder().decode(
      renderDcc(composeContent(composeInput({ customer: { id: 'org-a', name: 'A & <B>', contact: 'x' } })), 'c'.repeat(64), {
        softwareVersion: '0.1.0',
      }),
    );
    expect(odd).toContain('A &amp; &lt;B&gt;');
    expect(odd).toContain('<dcc:countryCodeISO3166_1>ZZ</dcc:countryCodeISO3166_1>');
  });
});
