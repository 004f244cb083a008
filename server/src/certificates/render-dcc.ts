// The certificate as a machine-readable XML: a PTB Digital Calibration Certificate, DCC 3.3.0 (https://ptb.de/dcc)
// with D-SI 2.2.1 quantities (https://ptb.de/si). administrativeData holds the software, the refTypes this file
// uses, the core data (country, languages, id, dates, amendment), the item, the laboratory, the responsible person,
// the customer and the statements; measurementResults the method, the measuring equipment and every result as an
// si:real with its expanded uncertainty (si:measurementUncertaintyUnivariate/si:expandedMU) and, where the
// method sets limits, its conformity in measurementMetaData. Units without a D-SI spelling are kept as the
// method writes them. Each rendering is checked against the official schema before issue (validate-dcc.ts).
import type { CertificateContent } from './content.js';
import { accreditationText, languageCodes, RELATES_ONLY_ZH, traceabilityText, type Both } from './report-text.js';

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] ?? c);

/** D-SI spellings of the units methods commonly use */
const DSI: Record<string, string> = {
  N: '\\newton',
  kN: '\\kilo\\newton',
  MN: '\\mega\\newton',
  Pa: '\\pascal',
  kPa: '\\kilo\\pascal',
  MPa: '\\mega\\pascal',
  GPa: '\\giga\\pascal',
  'N/mm2': '\\mega\\pascal',
  'N/mm²': '\\mega\\pascal',
  m: '\\metre',
  mm: '\\milli\\metre',
  um: '\\micro\\metre',
  µm: '\\micro\\metre',
  s: '\\second',
  ms: '\\milli\\second',
  min: '\\minute',
  h: '\\hour',
  kg: '\\kilogram',
  g: '\\gram',
  '°C': '\\degreeCelsius',
  degC: '\\degreeCelsius',
  K: '\\kelvin',
  '%': '\\percent',
  '%RH': '\\percent',
  V: '\\volt',
  A: '\\ampere',
  Hz: '\\hertz',
  J: '\\joule',
  W: '\\watt',
  bar: '\\bar',
  '': '\\one',
};

export const dsiUnit = (unit: string): string => DSI[unit] ?? unit;

const day = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
/** element content of a schema "notEmptyStringType" (no leading or trailing white space) */
const token = (s: string): string => esc(s.trim());
const english = (s: string): string => `<dcc:content lang="en">${esc(s)}</dcc:content>`;
/** a text labtrace writes, in English (metadata, evidence, names of things) */
const text = (tag: string, s: string, indent: string): string => `${indent}<dcc:${tag}>${english(s)}</dcc:${tag}>`;
/** a value as recorded (a name, a description): in no particular language, so without a lang attribute */
const value = (tag: string, s: string, indent: string): string => `${indent}<dcc:${tag}><dcc:content>${esc(s)}</dcc:content></dcc:${tag}>`;

/** ISO 3166-1 "ZZ" (user-assigned, "unknown country"): the country when the lab's config names none */
export const UNKNOWN_COUNTRY = 'ZZ';

/**
 * The refTypes this DCC marks its statements and metadata with, all in labtrace's own namespace and defined in
 * the file itself (administrativeData/refTypeDefinitions): what each marks.
 */
export const LABTRACE_REF_TYPES = {
  labtrace_scope: 'the statement that the results relate only to the items tested, as received (ISO/IEC 17025 7.8.2.1 l)',
  labtrace_traceability: 'the metrological traceability of an instrument: its calibration certificate and status during the test (6.5)',
  labtrace_accreditation: 'the accreditation mark and number, or which results lie outside the scope of accreditation (7.8.2.2)',
  labtrace_amendment: 'the report this one amends and the reason (7.8.8)',
  labtrace_evidence:
    'the evidence the report is bound to: the signed records (count and digest), the transparency-log checkpoint at issue, the SHA-256 of the signed content and where to verify the report',
  labtrace_conformity: 'the statement of conformity of one result with its decision rule (7.8.6)',
  labtrace_statement: "a further statement of the laboratory's (deviations, conditions of the test, opinions and interpretations)",
  labtrace_remarks: "the signatory's remarks on the report",
} as const;
export const LABTRACE_REF_TYPE_RELEASE = '1';
/** names the labtrace refType vocabulary and its release; the definitions are in the file itself */
export const LABTRACE_REF_TYPE_LINK = `urn:labtrace:dcc-reftypes:${LABTRACE_REF_TYPE_RELEASE}`;

export interface DccOptions {
  /** the software that wrote the file (dccSoftware/software/release) */
  softwareVersion: string;
  /** the laboratory's country, ISO 3166-1 alpha-2 (config laboratory.country); "ZZ" when unknown */
  country?: string | undefined;
}

export function renderDcc(cert: CertificateContent, contentDigest: string, options: DccOptions): Uint8Array {
  const c = cert;
  const langs = languageCodes(c.language ?? 'en');
  /** a statement the report prints, in each of the report's languages */
  const said = (tag: string, b: Both, indent: string): string =>
    `${indent}<dcc:${tag}>${langs.map((l) => `<dcc:content lang="${l}">${esc(b[l])}</dcc:content>`).join('')}</dcc:${tag}>`;
  // English is always used (labtrace's own metadata and evidence texts); the report's languages are mandatory
  const used = langs.includes('en') ? langs : [...langs, 'en'];
  const country = options.country ?? UNKNOWN_COUNTRY;
  const countryCode = options.country === undefined ? [] : [`<dcc:countryCode>${esc(options.country)}</dcc:countryCode>`];
  const lines: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<dcc:digitalCalibrationCertificate xmlns:dcc="https://ptb.de/dcc" xmlns:si="https://ptb.de/si" schemaVersion="3.3.0">',
    '  <dcc:administrativeData>',
    '    <dcc:dccSoftware><dcc:software>',
    '      <dcc:name><dcc:content>labtrace</dcc:content></dcc:name>',
    `      <dcc:release>${token(options.softwareVersion)}</dcc:release>`,
    '      <dcc:type>application</dcc:type>',
    '    </dcc:software></dcc:dccSoftware>',
    '    <dcc:refTypeDefinitions><dcc:refTypeDefinition>',
    text('name', 'labtrace refTypes', '      '),
    '      <dcc:description>',
    ...Object.entries(LABTRACE_REF_TYPES).map(([refType, meaning]) => `        ${english(`${refType}: ${meaning}`)}`),
    '      </dcc:description>',
    '      <dcc:namespace>labtrace</dcc:namespace>',
    `      <dcc:link>${LABTRACE_REF_TYPE_LINK}</dcc:link>`,
    `      <dcc:release>${LABTRACE_REF_TYPE_RELEASE}</dcc:release>`,
    '    </dcc:refTypeDefinition></dcc:refTypeDefinitions>',
    '    <dcc:coreData>',
    `      <dcc:countryCodeISO3166_1>${esc(country)}</dcc:countryCodeISO3166_1>`,
    ...used.map((l) => `      <dcc:usedLangCodeISO639_1>${l}</dcc:usedLangCodeISO639_1>`),
    ...langs.map((l) => `      <dcc:mandatoryLangCodeISO639_1>${l}</dcc:mandatoryLangCodeISO639_1>`),
    `      <dcc:uniqueIdentifier>${token(c.id)}</dcc:uniqueIdentifier>`,
    `      <dcc:receiptDate>${day(c.receivedAt)}</dcc:receiptDate>`,
    `      <dcc:beginPerformanceDate>${day(c.test.startedAt)}</dcc:beginPerformanceDate>`,
    `      <dcc:endPerformanceDate>${day(c.test.endedAt)}</dcc:endPerformanceDate>`,
    '      <dcc:performanceLocation>laboratory</dcc:performanceLocation>',
    `      <dcc:issueDate>${day(c.issuedAt)}</dcc:issueDate>`,
    ...(c.amendment === null
      ? []
      : [
          '      <dcc:reportAmendedSubstituted>',
          '        <dcc:typeOfChange>amended</dcc:typeOfChange>',
          `        <dcc:replacedUniqueIdentifier>${token(c.amendment.amends)}</dcc:replacedUniqueIdentifier>`,
          '      </dcc:reportAmendedSubstituted>',
        ]),
    '    </dcc:coreData>',
    '    <dcc:items>',
    '      <dcc:item>',
    value('name', c.item.description, '        '),
    said('description', { zh: `接收时状态：${c.item.condition}`, en: `Condition on receipt: ${c.item.condition}` }, '        '),
    '        <dcc:identifications><dcc:identification>',
    `          <dcc:issuer>customer</dcc:issuer><dcc:value>${token(c.item.id)}</dcc:value>`,
    '        </dcc:identification></dcc:identifications>',
    '      </dcc:item>',
    '    </dcc:items>',
    '    <dcc:calibrationLaboratory><dcc:contact>',
    value('name', c.laboratory.name, '      '),
    `      <dcc:location>${countryCode.join('')}<dcc:further><dcc:content>${esc(c.laboratory.address)}</dcc:content></dcc:further></dcc:location>`,
    '    </dcc:contact></dcc:calibrationLaboratory>',
    '    <dcc:respPersons><dcc:respPerson>',
    `      <dcc:person>${value('name', c.authorization.name, '')}</dcc:person>`,
    text(
      'description',
      `Authorized the report on ${new Date(c.authorization.at).toISOString()}; meaning of the signature: ${c.authorization.meaning}`,
      '      ',
    ),
    `      <dcc:role>${token(c.authorization.role)}</dcc:role>`,
    '      <dcc:mainSigner>true</dcc:mainSigner>',
    '    </dcc:respPerson></dcc:respPersons>',
    '    <dcc:customer>',
    value('name', c.customer.name, '      '),
    `      <dcc:location><dcc:further><dcc:content>${esc(c.customer.contact)}</dcc:content></dcc:further></dcc:location>`,
    '    </dcc:customer>',
    '    <dcc:statements>',
    `      <dcc:statement refType="labtrace_scope">${said('declaration', { zh: RELATES_ONLY_ZH, en: c.statement }, '')}</dcc:statement>`,
    ...c.traceability.map(
      (i) =>
        `      <dcc:statement refType="labtrace_traceability">${said('declaration', traceabilityText(i, day)[0] ?? { zh: '', en: i.statement }, '')}</dcc:statement>`,
    ),
    // (the signatory's words, in the language they were written in: the same text under each of the report's languages)
    ...(c.statements ?? []).map(
      (st) => `      <dcc:statement refType="labtrace_statement">${said('declaration', { zh: st, en: st }, '')}</dcc:statement>`,
    ),
    ...(c.remarks === undefined
      ? []
      : [`      <dcc:statement refType="labtrace_remarks">${said('declaration', { zh: c.remarks, en: c.remarks }, '')}</dcc:statement>`]),
    `      <dcc:statement refType="labtrace_accreditation">${said('declaration', accreditationText(c), '')}</dcc:statement>`,
    ...(c.amendment === null
      ? []
      : [
          `      <dcc:statement refType="labtrace_amendment">${said('declaration', { zh: `更正报告编号 ${c.amendment.amends} 的报告，原因：${c.amendment.reason}`, en: `Amendment to Report No. ${c.amendment.amends}: ${c.amendment.reason}` }, '')}</dcc:statement>`,
        ]),
    `      <dcc:statement refType="labtrace_evidence">${text('declaration', `records ${c.records.count} ${c.records.digestAlgorithm} ${c.records.digest}; log ${c.checkpoint.origin} size ${c.checkpoint.size} root ${c.checkpoint.rootHash}; content SHA-256 ${contentDigest}; verify at ${c.verifyUrl}`, '')}</dcc:statement>`,
    '    </dcc:statements>',
    '  </dcc:administrativeData>',
    '  <dcc:measurementResults>',
    '    <dcc:measurementResult>',
    value('name', c.method.title, '      '),
    '      <dcc:usedMethods><dcc:usedMethod>',
    text('name', `${c.method.id} version ${c.method.version}`, '        '),
    `        <dcc:norm>${token(c.method.standard)}</dcc:norm>`,
    '      </dcc:usedMethod></dcc:usedMethods>',
    '      <dcc:measuringEquipments>',
    ...c.traceability.map((i) =>
      [
        '        <dcc:measuringEquipment>',
        text('name', `${i.maker} ${i.model}`, '          '),
        `          <dcc:manufacturer>${text('name', i.maker, '')}</dcc:manufacturer>`,
        `          <dcc:model>${token(i.model)}</dcc:model>`,
        '          <dcc:identifications>',
        `            <dcc:identification><dcc:issuer>manufacturer</dcc:issuer><dcc:value>${token(i.serialNumber)}</dcc:value>${text('name', 'serial number', '')}</dcc:identification>`,
        `            <dcc:identification><dcc:issuer>calibrationLaboratory</dcc:issuer><dcc:value>${token(i.id)}</dcc:value>${text('name', 'instrument id', '')}</dcc:identification>`,
        ...(i.calibration === null
          ? []
          : [
              `            <dcc:identification><dcc:issuer>other</dcc:issuer><dcc:value>${token(i.calibration.certificate)}</dcc:value>${text('name', `calibration certificate of ${i.calibration.laboratory}, due ${day(i.calibration.dueAt)}`, '')}</dcc:identification>`,
            ]),
        '          </dcc:identifications>',
        '        </dcc:measuringEquipment>',
      ].join('\n'),
    ),
    '      </dcc:measuringEquipments>',
    '      <dcc:results>',
    ...c.results.map((r) =>
      [
        '        <dcc:result>',
        text('name', `${r.name}: ${r.title}`, '          '),
        ...(r.accredited ? [] : [text('description', `Not accredited: ${r.scopeNote ?? 'outside the accreditation scope'}`, '          ')]),
        '          <dcc:data><dcc:quantity>',
        '            <si:real>',
        `              <si:value>${esc(r.reported)}</si:value>`,
        `              <si:unit>${esc(dsiUnit(r.unit))}</si:unit>`,
        '              <si:measurementUncertaintyUnivariate><si:expandedMU>',
        `                <si:valueExpandedMU>${esc(r.uncertainty.reported)}</si:valueExpandedMU>`,
        `                <si:coverageFactor>${r.uncertainty.coverageFactor}</si:coverageFactor>`,
        `                <si:coverageProbability>${r.uncertainty.coverageProbability}</si:coverageProbability>`,
        '                <si:distribution>normal</si:distribution>',
        '              </si:expandedMU></si:measurementUncertaintyUnivariate>',
        '            </si:real>',
        ...(r.conformity === null
          ? []
          : [
              '            <dcc:measurementMetaData><dcc:metaData refType="labtrace_conformity">',
              text('declaration', r.conformity.statement, '              '),
              `              <dcc:conformity>${r.conformity.verdict === 'pass' ? 'pass' : 'fail'}</dcc:conformity>`,
              '            </dcc:metaData></dcc:measurementMetaData>',
            ]),
        '          </dcc:quantity></dcc:data>',
        '        </dcc:result>',
      ].join('\n'),
    ),
    '      </dcc:results>',
    '    </dcc:measurementResult>',
    '  </dcc:measurementResults>',
    '</dcc:digitalCalibrationCertificate>',
    '',
  ];
  return new TextEncoder().encode(lines.join('\n'));
}
