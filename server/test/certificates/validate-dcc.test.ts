// The DCC against the official PTB schema (server/schemas/dcc): the schema files are the published DCC 3.3.0,
// D-SI 2.2.1 and XML Signature ones; every shape of report the renderer writes is valid against them; each defect
// the DCC once had is refused, naming the schema error; a check that cannot run refuses too.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { isLabtraceError } from '@labtrace/protocols';
import { composeContent } from '../../src/certificates/compose.js';
import type { CertificateContent } from '../../src/certificates/content.js';
import { LABTRACE_REF_TYPES, renderDcc } from '../../src/certificates/render-dcc.js';
import { assertValidDcc, DCC_SCHEMA_DIR, dccSchemaErrors } from '../../src/certificates/validate-dcc.js';
import { composeInput, result, runResults } from './fixtures.js';

const schemaFile = (name: string): string => readFileSync(path.join(DCC_SCHEMA_DIR, name), 'utf8');
const dcc = (c: CertificateContent, country?: string): string =>
  new TextDecoder().decode(renderDcc(c, 'c'.repeat(64), { softwareVersion: '0.1.0', country }));
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

async function refusal(xml: string): Promise<string> {
  try {
    await assertValidDcc(utf8(xml), 'TR-lab-t-000001');
  } catch (err) {
    if (isLabtraceError(err) && err.code === 'E_CONFLICT') return err.message;
    throw err;
  }
  throw new Error('the DCC was not refused');
}

describe('the schema files', () => {
  // each file as published (schemaLocation put back to the published URL): its SHA-256, as README.md lists it
  const published: [file: string, local: string, url: string, sha256: string][] = [
    [
      'dcc.xsd',
      'schemaLocation="SI_Format.xsd"',
      'schemaLocation="https://ptb.de/si/v2.2.1/SI_Format.xsd"',
      'b8872150500d2d8bdd66817d27e7ee16b4df7037e803cf316483b98174a7f73f',
    ],
    [
      'SI_Format.xsd',
      'schemaLocation="quantitykind.xsd"',
      'schemaLocation="https://www.ptb.de/si/v2.2.1/qudt/quantitykind.xsd"',
      '10c3415fa1194357e3b181d5bd2413bf894594c01e3fa9e76c3b482db6c3d617',
    ],
    ['xmldsig-core-schema.xsd', '', '', 'd49862cddd128d5d82b5e5e983f92596763cca55d03bad84bc73c0ab556c2e13'],
  ];

  test.each(published)('%s is the published file but for its imports, which name the local copies', (file, local, url, sha256) => {
    let text = schemaFile(file);
    if (file === 'dcc.xsd')
      text = text.replace('schemaLocation="xmldsig-core-schema.xsd"', 'schemaLocation="https://www.ptb.de/dcc/d-sig/xmldsig-core-schema.xsd"');
    if (local !== '') text = text.replace(local, url);
    expect(createHash('sha256').update(text, 'utf8').digest('hex')).toBe(sha256);
    expect(text).not.toMatch(/schemaLocation="(?!https:)/);
  });

  test('are DCC 3.3.0 and D-SI 2.2.1 in their namespaces, with no import left to fetch', () => {
    expect(schemaFile('dcc.xsd')).toMatch(/<xs:schema version="3\.3\.0"[^>]*\s+targetNamespace="https:\/\/ptb\.de\/dcc"/);
    expect(schemaFile('SI_Format.xsd')).toMatch(/<xs:schema version="2\.2\.1"[^>]*\s+targetNamespace="https:\/\/ptb\.de\/si"/);
    for (const file of ['dcc.xsd', 'SI_Format.xsd', 'xmldsig-core-schema.xsd', 'quantitykind.xsd'])
      for (const m of schemaFile(file).matchAll(/schemaLocation="([^"]+)"/g)) expect(schemaFile(m[1] ?? '')).toContain('<');
  });
});

describe('every shape of report the renderer writes', () => {
  const outside = result('Rm', 456.7, { unit: 'MPa', accredited: false, scopeNote: 'Rm above the accredited range (max 400 MPa)' });
  const failing = {
    verdict: 'fail' as const,
    rule: 'simple-acceptance' as const,
    ruleText: 'simple acceptance (ILAC-G8 4.2.1): the measured value against the limit',
    limits: { min: 0, max: 100 },
    acceptance: { min: 0, max: 100 },
  };
  const cases: [string, CertificateContent, string | undefined][] = [
    ['a report of two results in the accreditation scope, the lab country unknown', composeContent(composeInput()), undefined],
    ['the same, the lab in Germany', composeContent(composeInput()), 'DE'],
    [
      'an amendment',
      composeContent(composeInput({ id: 'TR-lab-t-000002', amendment: { amends: 'TR-lab-t-000001', reason: 'customer name misspelt' } })),
      'FR',
    ],
    ['a result outside the scope: no mark, flagged', composeContent(composeInput({ results: runResults([result('Fm', 12.34), outside]) })), 'DE'],
    [
      'a failed result, one without limits, a unit without a D-SI spelling, a count, a large and a small value',
      composeContent(
        composeInput({
          results: runResults([
            result('Fm', 112.34, { conformity: { ...failing, verdict: 'fail' } }),
            result('HV', 231, { unit: 'HV10', conformity: null }),
            result('n', 3, { unit: '', conformity: null }),
            result('E', 2.1e21, { unit: 'Pa', conformity: null }),
            result('e', 5e-7, { unit: '', conformity: null }),
          ]),
        }),
      ),
      'DE',
    ],
    [
      'texts with white space around them and characters XML escapes',
      composeContent(
        composeInput({
          sample: { ...composeInput().sample, id: ' S-1 ', description: '  <steel> & "bar"  ' },
          customer: { id: 'org-a', name: "A & <B> 'C'", contact: ' qa@client-a.example ' },
        }),
      ),
      'DE',
    ],
  ];

  test.each(cases)('is valid against the PTB DCC 3.3.0 schema: %s', async (_what, content, country) => {
    expect(await dccSchemaErrors(utf8(dcc(content, country)))).toEqual([]);
  });

  test('defines every refType it uses, in its own refTypeDefinitions', () => {
    const xml = dcc(cases[2]?.[1] ?? composeContent(composeInput()));
    const used = new Set([...xml.matchAll(/refType="([^"]+)"/g)].flatMap((m) => (m[1] ?? '').split(/\s+/)));
    expect(used.size).toBeGreaterThan(0);
    const definition = /<dcc:refTypeDefinition>([\s\S]*?)<\/dcc:refTypeDefinition>/.exec(xml)?.[1] ?? '';
    expect(definition).toContain('<dcc:namespace>labtrace</dcc:namespace>');
    for (const refType of used) {
      expect(refType.startsWith('labtrace_')).toBe(true);
      expect(Object.keys(LABTRACE_REF_TYPES)).toContain(refType);
      expect(definition).toContain(`${refType}: ${LABTRACE_REF_TYPES[refType as keyof typeof LABTRACE_REF_TYPES]}`);
    }
  });
});

describe('a DCC that is not valid', () => {
  const valid = dcc(composeContent(composeInput()), 'DE');
  // the defects the DCC had before it was checked against the schema, put back one at a time
  const defects: [string, (xml: string) => string, RegExp][] = [
    [
      'an empty refTypeDefinitions',
      (x) => x.replace(/<dcc:refTypeDefinitions>[\s\S]*?<\/dcc:refTypeDefinitions>/, '<dcc:refTypeDefinitions/>'),
      /Element '\{https:\/\/ptb\.de\/dcc\}refTypeDefinitions': Missing child element\(s\)\. Expected is \( \{https:\/\/ptb\.de\/dcc\}refTypeDefinition \)/,
    ],
    [
      'core data without countryCodeISO3166_1',
      (x) => x.replace(/ *<dcc:countryCodeISO3166_1>DE<\/dcc:countryCodeISO3166_1>\n/, ''),
      /Expected is \( \{https:\/\/ptb\.de\/dcc\}countryCodeISO3166_1 \)/,
    ],
    [
      'a time in respPerson/cryptElectronicTimeStamp',
      (x) =>
        x.replace(
          '<dcc:mainSigner>true</dcc:mainSigner>',
          '<dcc:mainSigner>true</dcc:mainSigner><dcc:cryptElectronicTimeStamp>2026-11-20T12:00:00.000Z</dcc:cryptElectronicTimeStamp>',
        ),
      /cryptElectronicTimeStamp': '2026-11-20T12:00:00\.000Z' is not a valid value of the atomic type 'xs:boolean'/,
    ],
    [
      'conformity inside the quantity',
      (x) =>
        x.replace(
          /<dcc:measurementMetaData><dcc:metaData refType="labtrace_conformity">[\s\S]*?<\/dcc:measurementMetaData>/,
          '<dcc:conformity>pass</dcc:conformity>',
        ),
      /Element '\{https:\/\/ptb\.de\/dcc\}conformity': This element is not expected/,
    ],
    [
      'a country code that is not two capitals',
      (x) => x.replace('<dcc:countryCodeISO3166_1>DE<', '<dcc:countryCodeISO3166_1>Germany<'),
      /countryCodeISO3166_1/,
    ],
    ['a coverage factor below 1', (x) => x.replace('<si:coverageFactor>2<', '<si:coverageFactor>0.5<'), /coverageFactor/],
  ];

  test.each(defects)('is refused, the refusal naming the schema error: %s', async (_what, inject, error) => {
    const broken = inject(valid);
    expect(broken).not.toBe(valid);
    const message = await refusal(broken);
    expect(message).toMatch(/^certificate TR-lab-t-000001 cannot be issued: its DCC XML is not valid against the PTB DCC 3\.3\.0 schema: line \d+: /);
    expect(message).toMatch(error);
  });

  test('that is not even well-formed XML is refused, with the parser error', async () => {
    expect(await refusal(valid.replace('steel bar', 'steel\u0001bar'))).toMatch(/schema: line \d+: PCDATA invalid Char value 1$/);
    expect(await refusal(valid.slice(0, 200))).toMatch(/not valid against the PTB DCC 3\.3\.0 schema: line \d+: /);
  });

  test('a valid one passes', async () => {
    await expect(assertValidDcc(utf8(valid), 'TR-lab-t-000001')).resolves.toBeUndefined();
  });
});

describe('when the check cannot run', () => {
  const empty = mkdtempSync(path.join(tmpdir(), 'labtrace-no-schema-'));
  afterAll(() => rmSync(empty, { recursive: true, force: true }));

  test('nothing is issued: the refusal says the DCC could not be checked, and why', async () => {
    const valid = utf8(dcc(composeContent(composeInput()), 'DE'));
    await expect(assertValidDcc(valid, 'TR-lab-t-000001', empty)).rejects.toThrow(
      'certificate TR-lab-t-000001 cannot be issued: its DCC XML could not be checked against the PTB DCC 3.3.0 schema (the schema file dcc.xsd cannot be read (ENOENT))',
    );
  });
});
