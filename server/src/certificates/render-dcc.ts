// The certificate as a machine-readable XML in the shape of the PTB Digital Calibration Certificate (DCC 3.x,
// https://ptb.de/dcc): administrativeData (software, core data, items, laboratory, responsible person,
// customer, statements) and measurementResults, each value a D-SI si:real (https://ptb.de/si) with its
// expanded uncertainty. It is generated, not validated against the XSD here; units without a D-SI spelling
// are kept as the method writes them.
import type { CertificateContent } from './content.js';

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
const text = (tag: string, s: string, indent: string): string => `${indent}<dcc:${tag}><dcc:content lang="en">${esc(s)}</dcc:content></dcc:${tag}>`;

export function renderDcc(content: CertificateContent, contentDigest: string, softwareVersion: string): Uint8Array {
  const c = content;
  const lines: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<dcc:digitalCalibrationCertificate xmlns:dcc="https://ptb.de/dcc" xmlns:si="https://ptb.de/si" schemaVersion="3.3.0">',
    '  <dcc:administrativeData>',
    '    <dcc:dccSoftware><dcc:software>',
    '      <dcc:name><dcc:content>labtrace</dcc:content></dcc:name>',
    `      <dcc:release>${esc(softwareVersion)}</dcc:release>`,
    '    </dcc:software></dcc:dccSoftware>',
    '    <dcc:refTypeDefinitions/>',
    '    <dcc:coreData>',
    '      <dcc:usedLangCodeISO639_1>en</dcc:usedLangCodeISO639_1>',
    '      <dcc:mandatoryLangCodeISO639_1>en</dcc:mandatoryLangCodeISO639_1>',
    `      <dcc:uniqueIdentifier>${esc(c.id)}</dcc:uniqueIdentifier>`,
    `      <dcc:receiptDate>${day(c.receivedAt)}</dcc:receiptDate>`,
    `      <dcc:beginPerformanceDate>${day(c.test.startedAt)}</dcc:beginPerformanceDate>`,
    `      <dcc:endPerformanceDate>${day(c.test.endedAt)}</dcc:endPerformanceDate>`,
    '      <dcc:performanceLocation>laboratory</dcc:performanceLocation>',
    `      <dcc:issueDate>${day(c.issuedAt)}</dcc:issueDate>`,
    ...(c.amendment === null
      ? []
      : [
          '      <dcc:previousReport>',
          `        <dcc:issuer>calibrationLaboratory</dcc:issuer><dcc:value>${esc(c.amendment.amends)}</dcc:value>`,
          text('description', `Amendment to Report No. ${c.amendment.amends}: ${c.amendment.reason}`, '        '),
          '      </dcc:previousReport>',
        ]),
    '    </dcc:coreData>',
    '    <dcc:items>',
    '      <dcc:item>',
    text('name', c.item.description, '        '),
    text('description', `Condition on receipt: ${c.item.condition}`, '        '),
    '        <dcc:identifications><dcc:identification>',
    `          <dcc:issuer>customer</dcc:issuer><dcc:value>${esc(c.item.id)}</dcc:value>`,
    '        </dcc:identification></dcc:identifications>',
    '      </dcc:item>',
    '    </dcc:items>',
    '    <dcc:calibrationLaboratory><dcc:contact>',
    text('name', c.laboratory.name, '      '),
    `      <dcc:location><dcc:further><dcc:content lang="en">${esc(c.laboratory.address)}</dcc:content></dcc:further></dcc:location>`,
    '    </dcc:contact></dcc:calibrationLaboratory>',
    '    <dcc:respPersons><dcc:respPerson>',
    `      <dcc:person>${text('name', c.authorization.name, '')}</dcc:person>`,
    `      <dcc:role>${esc(c.authorization.meaning)}</dcc:role>`,
    '      <dcc:mainSigner>true</dcc:mainSigner>',
    `      <dcc:cryptElectronicTimeStamp>${new Date(c.authorization.at).toISOString()}</dcc:cryptElectronicTimeStamp>`,
    '    </dcc:respPerson></dcc:respPersons>',
    '    <dcc:customer>',
    text('name', c.customer.name, '      '),
    `      <dcc:location><dcc:further><dcc:content lang="en">${esc(c.customer.contact)}</dcc:content></dcc:further></dcc:location>`,
    '    </dcc:customer>',
    '    <dcc:statements>',
    `      <dcc:statement refType="basic_conformity">${text('declaration', c.statement, '')}</dcc:statement>`,
    ...c.traceability.map((i) => `      <dcc:statement refType="basic_traceability">${text('declaration', i.statement, '')}</dcc:statement>`),
    c.accreditation === null
      ? `      <dcc:statement refType="basic_accreditation">${text('declaration', c.notAccredited.length > 0 ? `Outside the scope of accreditation: ${c.notAccredited.join(', ')}` : 'No accreditation mark', '')}</dcc:statement>`
      : `      <dcc:statement refType="basic_accreditation">${text('declaration', `Accredited by ${c.accreditation.body}, No. ${c.accreditation.number}`, '')}</dcc:statement>`,
    `      <dcc:statement refType="labtrace_evidence">${text('declaration', `records ${c.records.count} ${c.records.digestAlgorithm} ${c.records.digest}; log ${c.checkpoint.origin} size ${c.checkpoint.size} root ${c.checkpoint.rootHash}; content SHA-256 ${contentDigest}; verify at ${c.verifyUrl}`, '')}</dcc:statement>`,
    '    </dcc:statements>',
    '  </dcc:administrativeData>',
    '  <dcc:measurementResults>',
    '    <dcc:measurementResult>',
    text('name', c.method.title, '      '),
    '      <dcc:usedMethods><dcc:usedMethod>',
    text('name', `${c.method.id} version ${c.method.version}`, '        '),
    `        <dcc:norm>${esc(c.method.standard)}</dcc:norm>`,
    '      </dcc:usedMethod></dcc:usedMethods>',
    '      <dcc:measuringEquipments>',
    ...c.traceability.map((i) =>
      [
        '        <dcc:measuringEquipment>',
        text('name', `${i.maker} ${i.model}`, '          '),
        `          <dcc:manufacturer>${text('name', i.maker, '')}</dcc:manufacturer>`,
        `          <dcc:model>${esc(i.model)}</dcc:model>`,
        '          <dcc:identifications>',
        `            <dcc:identification><dcc:issuer>manufacturer</dcc:issuer><dcc:value>${esc(i.serialNumber)}</dcc:value>${text('name', 'serial number', '')}</dcc:identification>`,
        `            <dcc:identification><dcc:issuer>calibrationLaboratory</dcc:issuer><dcc:value>${esc(i.id)}</dcc:value>${text('name', 'instrument id', '')}</dcc:identification>`,
        ...(i.calibration === null
          ? []
          : [
              `            <dcc:identification><dcc:issuer>other</dcc:issuer><dcc:value>${esc(i.calibration.certificate)}</dcc:value>${text('name', `calibration certificate of ${i.calibration.laboratory}, due ${day(i.calibration.dueAt)}`, '')}</dcc:identification>`,
            ]),
        '          </dcc:identifications>',
        '        </dcc:measuringEquipment>',
      ].join('\n'),
    ),
    '      </dcc:measuringEquipments>',
    '      <dcc:results>',
    ...c.results.map((r) =>
      [
        `        <dcc:result refType="labtrace_${esc(r.name)}">`,
        text('name', `${r.name}: ${r.title}`, '          '),
        ...(r.conformity === null ? [] : [text('description', r.conformity.statement, '          ')]),
        ...(r.accredited ? [] : [text('description', `Not accredited: ${r.scopeNote ?? 'outside the accreditation scope'}`, '          ')]),
        '          <dcc:data><dcc:quantity>',
        '            <si:real>',
        `              <si:value>${r.value}</si:value>`,
        `              <si:unit>${esc(dsiUnit(r.unit))}</si:unit>`,
        '              <si:expandedUnc>',
        `                <si:uncertainty>${r.uncertainty.reported}</si:uncertainty>`,
        `                <si:coverageFactor>${r.uncertainty.coverageFactor}</si:coverageFactor>`,
        `                <si:coverageProbability>${r.uncertainty.coverageProbability}</si:coverageProbability>`,
        '                <si:distribution>normal</si:distribution>',
        '              </si:expandedUnc>',
        '            </si:real>',
        ...(r.conformity === null ? [] : [`            <dcc:conformity>${r.conformity.verdict === 'pass' ? 'pass' : 'fail'}</dcc:conformity>`]),
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
