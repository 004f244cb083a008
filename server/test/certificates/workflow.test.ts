// Certificates of real runs, end to end: a run measured by a test gateway, stopped, its results computed; a
// certificate requested, approved and issued by a signatory (never by who performed or created the run), its
// PDF's text compared with the run's results, its files verified online (byte for byte) and offline (the CLI),
// amended twice and revoked, each step in the transparency log; calibration problems and clients kept apart.
// Every DCC issued here is valid against the official PTB DCC 3.3.0 schema, and one that would not be is not issued.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql } from 'kysely';
import { chromium } from 'playwright-core';
import { roundResult, type Sample } from '@labtrace/protocols';
import type { CertificateView, PublicStatus } from '../../src/certificates/certificates.js';
import type { CertificateContent } from '../../src/certificates/content.js';
import { dccSchemaErrors } from '../../src/certificates/validate-dcc.js';
import type { RunResults } from '../../src/lab/contracts.js';
import { collect, exitOf, runLabtrace } from '../helpers/lab-process.js';
import { rejectionOf } from '../helpers/rejection.js';
import { addOtherClient, jsonCaller, ORGANIZATION, postJson, send, startServer, TestGateway, type TestServer, waitFor } from '../helpers/server.js';
import { logSize, rowCount } from '../helpers/store-reads.js';
import { pdfFonts, pdfText, qpdfCheck, resultRows } from './pdf-text.js';

let t: TestServer;
let gw: TestGateway;
let otherClientToken: string;
let seq = 0;
const IN_SCOPE = 'ISO 6892-1:2019';
const OUT_OF_SCOPE = 'ASTM E8/E8M-22';
const DAY = 86_400_000;
const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-certs-'));
const json = postJson;
const call = jsonCaller(
  () => t,
  () => otherClientToken,
);

beforeAll(async () => {
  t = await startServer({
    accreditation: {
      accreditations: [
        {
          id: 'acc-1',
          body: 'CNAS',
          number: 'L1234',
          validFrom: '2020-01-01',
          validTo: Date.now() + 365 * DAY,
          scope: [{ standard: IN_SCOPE, measurand: 'force', unit: 'kN', min: 0, max: 100 }],
        },
      ],
    },
    publicBaseUrl: 'https://reports.lab.example',
    laboratory: { name: 'labtrace test laboratory', address: '1 Test Street, 12345 Testtown', country: 'DE' },
  });
  otherClientToken = await addOtherClient(t);
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('utm-1', 'utm-2', 'utm-3', 'utm-4');
  await waitFor('the instruments', async () => (await rowCount(t.server, 'instruments')) === 4);
  const now = Date.now();
  for (const instrument of ['utm-1', 'utm-3']) await calibrate(instrument, now - 10 * DAY, now + 300 * DAY);
  for (const [id, organization] of [
    ['B-1', ORGANIZATION],
    ['B-2', 'org-b'],
  ] as const)
    expect(
      (await call('/api/lab-samples', json({ id, organization, description: 'steel bar B500B, 10 mm', condition: 'intact', receivedAt: now - DAY })))
        .status,
    ).toBe(201);
  await method('tensile', IN_SCOPE);
  await method('tensile-astm', OUT_OF_SCOPE);
});
afterAll(async () => {
  await gw.end();
  await t.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function calibrate(instrument: string, calibratedAt: number, nextDueAt: number): Promise<void> {
  const res = await call(
    `/api/instruments/${instrument}/calibrations`,
    json({
      calibratedAt,
      laboratory: 'Reference Lab',
      certificate: `CAL-${instrument}-${calibratedAt}`,
      results: [{ point: 'p1', reference: 10, indication: 10.01, unit: 'kN' }],
      uncertainty: { value: 0.1, unit: 'kN', k: 2 },
      nextDueAt,
    }),
  );
  expect(res.status).toBe(201);
}

async function method(id: string, standard: string): Promise<void> {
  const res = await call(
    '/api/methods',
    json({
      id,
      standard,
      title: 'Tensile testing at room temperature',
      definition: {
        measurands: [{ name: 'force', unit: 'kN', channel: 'c' }],
        instrumentTypes: ['x'],
        decisionRule: { kind: 'simple-acceptance' },
        results: [
          { name: 'Fm', title: 'maximum force', measurand: 'force', statistic: 'max', resolution: 0.01, repeatability: 0.05, limits: { min: 40 } },
          { name: 'Fmean', title: 'mean force', measurand: 'force', statistic: 'mean', resolution: 0.01 },
        ],
      },
    }),
  );
  expect(res.status).toBe(201);
}

/** A run measured and completed: created and performed by `technician` unless told. */
async function completedRun(options: { sample?: string; method?: string; instrument?: string; technician?: string } = {}): Promise<string> {
  const instrument = options.instrument ?? 'utm-1';
  const created = await call<{ id: string }>(
    '/api/runs',
    json({ sample: options.sample ?? 'B-1', method: options.method ?? 'tensile', instruments: [instrument] }),
    'technician',
  );
  expect(created.status).toBe(201);
  const id = created.body.id;
  expect((await call(`/api/runs/${id}/start`, json({}))).status).toBe(200);
  await measure(instrument);
  expect((await call(`/api/runs/${id}/stop`, json({}))).status).toBe(200);
  return id;
}

/** Forces of a tensile test on the instrument, sent signed by the gateway and acknowledged. */
async function measure(instrument: string): Promise<void> {
  const ts = Date.now();
  const samples: Sample[] = [10.2, 35.7, 42.031, 41.9, 0.4].map((value, i) => ({
    seq: seq++,
    instrument,
    channel: 'c',
    ts: ts + i,
    value,
    unit: 'kN',
    quality: 'good',
  }));
  expect(await send(t, gw, gw.sign(samples))).toBe('acked');
}

async function draft(run: string, role: 'technician' | 'signatory' = 'technician'): Promise<CertificateView> {
  const res = await call<CertificateView>('/api/certificates', json({ run }), role);
  expect(res.status).toBe(201);
  expect(res.body.status).toBe('draft');
  return res.body;
}

async function issued(run: string): Promise<CertificateView> {
  const d = await draft(run);
  const res = await call<CertificateView>(`/api/certificates/${d.id}/issue`, json({}), 'signatory');
  expect(res).toMatchObject({ status: 200, body: { status: 'valid' } });
  return res.body;
}

async function bytes(p: string, role: 'signatory' | 'client' | null = 'signatory'): Promise<Uint8Array> {
  const res = await t.fetch(p, {}, role);
  expect(res.status).toBe(200);
  return new Uint8Array(await res.arrayBuffer());
}

const check = async (id: string, body: Uint8Array): Promise<{ match: boolean; format: string; status: string }> => {
  const res = await fetch(`${t.base}/verify/${id}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body });
  expect(res.status).toBe(200);
  return (await res.json()) as { match: boolean; format: string; status: string };
};

const flip = (b: Uint8Array, at: number): Uint8Array => {
  const c = new Uint8Array(b);
  c[at] = (c[at] ?? 0) ^ 0x01;
  return c;
};

async function cli(args: string[]): Promise<{ code: number | null; output: string }> {
  const proc = runLabtrace(['verify-certificate', ...args]);
  const output = collect(proc);
  return { code: await exitOf(proc), output: output() };
}

describe('issue', () => {
  let run: string;
  let cert: CertificateView;

  beforeAll(async () => {
    run = await completedRun();
  });

  test('a draft is refused for a run that is not completed, and the caller must be technician or signatory', async () => {
    const planned = await call<{ id: string }>('/api/runs', json({ sample: 'B-1', method: 'tensile', instruments: ['utm-1'] }));
    expect((await call('/api/certificates', json({ run: planned.body.id }))).body.error).toMatch(
      /is planned: only a completed run gets a certificate/,
    );
    expect((await call('/api/certificates', json({ run }), 'client')).status).toBe(403);
    expect((await call('/api/certificates', json({ run: 'no run!' }))).body.error).toMatch(/body: run: expected a run id/);
  });

  test('a signatory approves and issues it; the certificate is in the log and the audit trail', async () => {
    const d = await draft(run);
    const view = await call<{ blockers: string[] }>(`/api/certificates/${d.id}`, {}, 'signatory');
    expect(view.body.blockers).toEqual([]);
    expect((await call(`/api/certificates/${d.id}/issue`, json({}), 'technician')).status).toBe(403);
    const res = await call<CertificateView>(`/api/certificates/${d.id}/issue`, json({}), 'signatory');
    expect(res.status).toBe(200);
    cert = res.body;
    expect(cert).toMatchObject({ id: d.id, run, organization: ORGANIZATION, status: 'valid', issuedBy: 'signatory', amends: null, amendedBy: null });
    // the link the report prints carries its verification code
    expect(cert.verifyUrl).toMatch(new RegExp(`^https://reports\\.lab\\.example/verify/${d.id}\\?code=[0-9a-f]{16}$`));
    expect((await call(`/api/certificates/${d.id}/issue`, json({}), 'signatory')).status).toBe(409);
    // the log entry names the certificate and its signed digests
    const log = t.server.logReader;
    if (!log || cert.logIndex === null) throw new Error('no log entry');
    const [entry] = await log.entries(cert.logIndex, cert.logIndex + 1);
    expect(entry?.kind).toBe('certificate-event');
    expect(JSON.parse(new TextDecoder().decode(entry?.data))).toMatchObject({ kind: 'issue', certificate: d.id, digests: cert.digests });
    expect((await t.server.audit.list({ recordType: 'certificate', recordId: d.id, limit: 10 })).map((e) => [e.actor, e.action, e.newValue])).toEqual(
      [
        ['technician', 'create', expect.objectContaining({ status: 'draft' })],
        ['signatory', 'state-change', expect.objectContaining({ status: 'valid' })],
      ],
    );
    // the rows are written once
    expect(await rejectionOf(sql`UPDATE certificates SET issued_by = ${'x'} WHERE id = ${d.id}`.execute(t.server.db))).toMatch(/written once/);
    expect(await rejectionOf(sql`DELETE FROM certificate_events`.execute(t.server.db))).toMatch(/never deleted/);
  });

  test('its content holds every mandatory item, and the PDF says what the run results say', async () => {
    const results = (await call<RunResults>(`/api/runs/${run}/results`)).body;
    const full = (await call<{ content: CertificateContent }>(`/api/certificates/${cert.id}`, {}, 'client')).body.content;
    expect(full).toMatchObject({
      id: cert.id,
      laboratory: { name: 'labtrace test laboratory', address: '1 Test Street, 12345 Testtown' },
      customer: { id: ORGANIZATION, name: 'Client A', contact: 'quality@client-a.example' },
      method: { id: 'tensile', version: 1, standard: IN_SCOPE },
      item: { id: 'B-1', description: 'steel bar B500B, 10 mm', condition: 'intact' },
      test: { run, technician: 'technician' },
      authorization: { name: 'signatory', meaning: 'approval' },
      records: results.records,
      amendment: null,
      // every result inside the scope: the mark with its number
      accreditation: { body: 'CNAS', number: 'L1234' },
      notAccredited: [],
    });
    expect(full.traceability).toEqual([
      expect.objectContaining({
        id: 'utm-1',
        maker: 'm',
        model: 'x',
        serialNumber: '1',
        statusAtRun: 'valid',
        calibration: expect.objectContaining({ laboratory: 'Reference Lab' }),
      }),
    ]);
    const pages = pdfText(await bytes(`/api/certificates/${cert.id}/pdf`, 'client'));
    pages.forEach((p, i) => expect(p).toContain(`Report No. ${cert.id} - page ${i + 1} of ${pages.length}`));
    const text = pages.join(' ').replace(/\s+/g, ' ');
    const rows = resultRows(
      pages,
      results.results.map((r) => r.name),
    );
    for (const r of results.results) {
      expect(rows.get(r.name)?.slice(0, 5)).toEqual([
        `${r.name} ${r.title}`,
        r.reported,
        r.reportedUncertainty,
        String(r.uncertainty.coverageFactor),
        r.unit,
      ]);
      expect(text).toContain(
        `${r.name} (${r.title}): ${r.statistic} of ${r.sampleCount} samples of ${r.measurand} from utm-1; coverage probability 95 %`,
      );
      if (r.conformity) expect(text).toContain(`${r.conformity.verdict === 'pass' ? 'Conforms' : 'Does not conform'} to the specification`);
    }
    expect(text).toContain('End of report');
    expect(text).toContain('Accredited by CNAS, accreditation No. L1234');
    expect(text).toContain(`https://reports.lab.example/verify/${cert.id}`);
  });

  test('the run results and the issued report give each value and U as the same strings, rounded once (GUM 7.2.6)', async () => {
    const results = (await call<RunResults>(`/api/runs/${run}/results`)).body;
    const content = (await call<{ content: CertificateContent }>(`/api/certificates/${cert.id}`, {}, 'client')).body.content;
    const rows = resultRows(
      pdfText(await bytes(`/api/certificates/${cert.id}/pdf`, 'client')),
      results.results.map((r) => r.name),
    );
    const dcc = new TextDecoder().decode(await bytes(`/api/certificates/${cert.id}/dcc.xml`, 'client'));
    expect(results.results.length).toBeGreaterThan(0);
    for (const r of results.results) {
      // the API's strings are the one rounding of the unrounded numbers it also gives
      expect({ value: r.reported, uncertainty: r.reportedUncertainty }).toEqual(roundResult(r.value, r.uncertainty.expanded));
      const inReport = content.results.find((c) => c.name === r.name);
      expect(inReport).toMatchObject({ reported: r.reported, uncertainty: { reported: r.reportedUncertainty } });
      // the table's value, U and k cells, character for character
      expect(rows.get(r.name)?.slice(1, 4)).toEqual([r.reported, r.reportedUncertainty, String(r.uncertainty.coverageFactor)]);
      expect(dcc).toContain(`<si:value>${r.reported}</si:value>`);
      expect(dcc).toContain(`<si:valueExpandedMU>${r.reportedUncertainty}</si:valueExpandedMU>`);
    }
  });

  test('the verification page says valid, with the digests; an upload matches byte for byte, and one changed byte does not', async () => {
    const page = await fetch(`${t.base}/verify/${cert.id}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    const html = await page.text();
    expect(html).toContain(`Valid: report ${cert.id}`);
    expect(html).toContain(cert.digests?.pdf);
    expect(html).not.toMatch(/<script src|<link|https?:\/\/(?!reports\.lab\.example)/);
    // the inline script and style run under the page's own policy, allowed by their hashes and nothing else
    const csp = page.headers.get('content-security-policy') ?? '';
    const hash = (text: string | undefined) =>
      `'sha256-${createHash('sha256')
        .update(text ?? '')
        .digest('base64')}'`;
    expect(csp).toContain(`script-src ${hash(/<script>([\s\S]*?)<\/script>/.exec(html)?.[1])}`);
    expect(csp).toContain(`style-src ${hash(/<style>([\s\S]*?)<\/style>/.exec(html)?.[1])}`);
    expect(csp).not.toMatch(/unsafe-inline/);
    for (const [kind, p] of [
      ['pdf', 'pdf'],
      ['json', 'json'],
      ['dcc', 'dcc.xml'],
    ] as const) {
      const file = await bytes(`/api/certificates/${cert.id}/${p}`);
      expect(await check(cert.id, file)).toEqual({ match: true, format: kind, status: 'valid' });
      expect(await check(cert.id, flip(file, Math.floor(file.length / 2)))).toEqual({ match: false, format: kind, status: 'valid' });
    }
    expect(await check('TR-nothing-1', await bytes(`/api/certificates/${cert.id}/pdf`))).toEqual({ match: false, format: 'pdf', status: 'unknown' });
    const wrongType = await fetch(`${t.base}/verify/${cert.id}`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
    expect(wrongType.status).toBe(400);
    const unknown = await fetch(`${t.base}/verify/TR-nothing-1`);
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toContain('Unknown');
  });

  test('in a browser, the page checks a chosen file under its own policy: the PDF as issued matches, one changed byte does not', async () => {
    const good = path.join(dir, 'browser-good.pdf');
    const bad = path.join(dir, 'browser-bad.pdf');
    const pdf = await bytes(`/api/certificates/${cert.id}/pdf`);
    writeFileSync(good, pdf);
    writeFileSync(bad, flip(pdf, 1000));
    const browser = await chromium.launch({
      executablePath: process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium',
      headless: true,
      // off the network: only the local server is reached
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update'],
    });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('console', (m) => problems.push(m.text()));
      await page.goto(`${t.base}/verify/${cert.id}`);
      expect(await page.textContent('.status')).toContain(`Valid: report ${cert.id}`);
      const outcome = async (file: string): Promise<string> => {
        // (page code as text: the server's tests compile without the DOM's types)
        await page.evaluate("document.getElementById('result').textContent = ''");
        await page.setInputFiles('#file', file);
        await page.click('button[type=submit]');
        // polled from here: a predicate evaluated in the page would need 'unsafe-eval', which the page's policy refuses
        const deadline = Date.now() + 20_000;
        for (;;) {
          const text = (await page.textContent('#result')) ?? '';
          if (/^(Match|NO MATCH|The check failed)/.test(text)) return text;
          if (Date.now() > deadline) throw new Error(`no outcome on the page; it reads "${text}"`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      expect(await outcome(good)).toBe('Match: this PDF file is byte for byte the one issued (certificate status: valid).');
      expect(await outcome(bad)).toBe('NO MATCH: this file is not the PDF the laboratory issued under this number.');
      // a policy violation (a blocked script or style) would show here
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  test('offline: the CLI checks the JSON with the lab key and a PDF against the JSON; one changed byte fails; bad arguments exit 2', async () => {
    const keys = path.join(dir, 'keys.json');
    writeFileSync(keys, await bytes('/api/public/keys', null));
    const jsonFile = path.join(dir, 'cert.json');
    const pdfFile = path.join(dir, 'cert.pdf');
    const jsonBytes = await bytes(`/api/certificates/${cert.id}/json`);
    const pdfBytes = await bytes(`/api/certificates/${cert.id}/pdf`);
    writeFileSync(jsonFile, jsonBytes);
    writeFileSync(pdfFile, pdfBytes);
    const ok = await cli([jsonFile, '--keys', keys]);
    expect(ok).toMatchObject({ code: 0 });
    expect(ok.output).toContain(`VALID: report ${cert.id}`);
    expect(await cli([pdfFile, '--json', jsonFile, '--keys', keys])).toMatchObject({ code: 0 });
    // one byte of the content changed (a digit of the value reported), and one of the PDF
    const text = new TextDecoder().decode(jsonBytes);
    const at = text.indexOf('"reported":"') + '"reported":"'.length;
    const digit = text[at] === '9' ? '8' : '9';
    const forged = path.join(dir, 'forged.json');
    writeFileSync(forged, text.slice(0, at) + digit + text.slice(at + 1));
    const bad = await cli([forged, '--keys', keys]);
    expect(bad.code).toBe(1);
    expect(bad.output).toMatch(/INVALID: .*does not match the signed digest/);
    const forgedPdf = path.join(dir, 'forged.pdf');
    writeFileSync(forgedPdf, flip(pdfBytes, 2000));
    const badPdf = await cli([forgedPdf, '--json', jsonFile, '--keys', keys]);
    expect(badPdf.code).toBe(1);
    expect(badPdf.output).toContain(`is not the PDF of report ${cert.id}`);
    // a key that is not the lab's
    const otherKeys = path.join(dir, 'other-keys.json');
    writeFileSync(otherKeys, JSON.stringify({ certificates: [{ keyId: '00000000', algorithm: 'Ed25519', publicKey: 'AAAA' }] }));
    expect((await cli([jsonFile, '--keys', otherKeys])).code).toBe(1);
    expect((await cli([jsonFile])).output).toMatch(/NOT VERIFIED/);
    for (const args of [[], [pdfFile, '--keys', keys], [path.join(dir, 'missing.json')], [jsonFile, '--keys', jsonFile], [jsonFile, '--bogus']]) {
      const r = await cli(args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.output).not.toMatch(/\n\s+at /);
    }
  }, 120_000); // a dozen command-line processes: generous on a busy machine

  test('the public JSON status and keys need no login', async () => {
    const res = await fetch(`${t.base}/api/public/certificates/${cert.id}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: cert.id, status: 'valid', digests: cert.digests, keyId: cert.keyId });
    expect((await fetch(`${t.base}/api/public/certificates/TR-none`)).status).toBe(404);
    const keys = (await (await fetch(`${t.base}/api/public/keys`)).json()) as { certificates: { keyId: string }[] };
    expect(keys.certificates.map((k) => k.keyId)).toEqual([cert.keyId]);
  });
});

describe('amendment and revocation', () => {
  test('A amended by B amended by C; each page says which replaced it; a revoked one says so with the reason', async () => {
    const run = await completedRun();
    const a = await issued(run);
    expect((await call(`/api/certificates/${a.id}/amend`, json({}), 'signatory')).body.error).toMatch(/body: reason: /);
    const b = await call<CertificateView>(`/api/certificates/${a.id}/amend`, json({ reason: 'customer contact corrected' }), 'signatory');
    expect(b).toMatchObject({ status: 201, body: { status: 'valid', amends: a.id, amendReason: 'customer contact corrected' } });
    expect((await call(`/api/certificates/${a.id}/amend`, json({ reason: 'again' }), 'signatory')).body.error).toMatch(
      new RegExp(`already amended by ${b.body.id}`),
    );
    const c = await call<CertificateView>(`/api/certificates/${b.body.id}/amend`, json({ reason: 'method version named' }), 'signatory');
    expect(c.status).toBe(201);
    const status = async (id: string) =>
      (await (await fetch(`${t.base}/api/public/certificates/${id}`)).json()) as PublicStatus & { amendedBy?: string };
    expect(await status(a.id)).toMatchObject({ status: 'amended', amendedBy: b.body.id });
    expect(await status(b.body.id)).toMatchObject({ status: 'amended', amendedBy: c.body.id, amends: a.id });
    expect(await status(c.body.id)).toMatchObject({ status: 'valid', amends: b.body.id });
    expect(await (await fetch(`${t.base}/verify/${a.id}`)).text()).toContain(`replaced by report <a href="${b.body.id}?lang=en">${b.body.id}</a>`);
    const text = pdfText(await bytes(`/api/certificates/${c.body.id}/pdf`))
      .join(' ')
      .replace(/\s+/g, ' ');
    expect(text).toContain(`Amendment to Report No. ${b.body.id}`);
    expect(text).toContain('Reason for the amendment method version named');

    const revoked = await call<CertificateView>(`/api/certificates/${c.body.id}/revoke`, json({ reason: 'specimen mix-up at the lab' }), 'signatory');
    expect(revoked).toMatchObject({ status: 200, body: { status: 'revoked', revocationReason: 'specimen mix-up at the lab' } });
    expect(await status(c.body.id)).toMatchObject({ status: 'revoked', revocationReason: 'specimen mix-up at the lab' });
    const page = await (await fetch(`${t.base}/verify/${c.body.id}`)).text();
    expect(page).toMatch(/Revoked on .*: specimen mix-up at the lab/);
    expect(await check(c.body.id, await bytes(`/api/certificates/${c.body.id}/pdf`))).toEqual({ match: true, format: 'pdf', status: 'revoked' });
    expect((await call(`/api/certificates/${c.body.id}/revoke`, json({ reason: 'twice' }), 'signatory')).status).toBe(409);
    expect((await call(`/api/certificates/${c.body.id}/amend`, json({ reason: 'x' }), 'signatory')).body.error).toMatch(/is revoked/);
    // each step entered the log
    const log = t.server.logReader;
    if (log === undefined) throw new Error('no transparency log');
    const kinds = (await log.entries(0, await logSize(t.server)))
      .filter((e) => e.kind === 'certificate-event')
      .map((e) => JSON.parse(new TextDecoder().decode(e.data)) as { kind: string; certificate: string })
      .filter((e) => [a.id, b.body.id, c.body.id].includes(e.certificate))
      .map((e) => `${e.kind} ${e.certificate}`);
    expect(kinds).toEqual([`issue ${a.id}`, `amend ${b.body.id}`, `amend ${c.body.id}`, `revoke ${c.body.id}`]);
    // an amended report can still be withdrawn; the trail says what it was before
    expect((await call(`/api/certificates/${a.id}/revoke`, json({ reason: 'superseded and withdrawn' }), 'signatory')).status).toBe(200);
    expect((await t.server.audit.list({ recordType: 'certificate', recordId: a.id, limit: 10 })).at(-1)).toMatchObject({
      oldValue: { status: 'amended' },
      newValue: expect.objectContaining({ status: 'revoked' }),
      reason: 'superseded and withdrawn',
    });
    // a revocation names text safely on the page
    const d = await issued(run);
    await call(`/api/certificates/${d.id}/revoke`, json({ reason: '<script>alert(1)</script>' }), 'signatory');
    const escaped = await (await fetch(`${t.base}/verify/${d.id}`)).text();
    expect(escaped).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(escaped).not.toContain('<script>alert(1)');
  }, 120_000); // several reports issued, each a PDF/A with its CJK font subset and a schema-checked DCC: generous on a busy machine
});

describe('refusals', () => {
  test('the one who performed or created the run cannot approve it', async () => {
    const system = { username: 'test-setup', role: 'system' };
    await t.server.users.create(system, { username: 'tech-sig', role: 'technician', password: 'tech-sig-password-1' });
    const token = (await t.server.users.createApiToken(system, 'tech-sig', 'tests', DAY)).token;
    const as = (p: string, init: RequestInit = {}) =>
      fetch(`${t.base}${p}`, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` } });
    const created = (await (await as('/api/runs', json({ sample: 'B-1', method: 'tensile', instruments: ['utm-1'] }))).json()) as { id: string };
    expect((await as(`/api/runs/${created.id}/start`, json({}))).status).toBe(200);
    expect((await as(`/api/runs/${created.id}/stop`, json({}))).status).toBe(200);
    const d = await draft(created.id);
    // a run tech-sig created for another technician, who performed it
    const other = (await (
      await as('/api/runs', json({ sample: 'B-1', method: 'tensile', instruments: ['utm-1'], technician: 'technician' }))
    ).json()) as { id: string };
    expect((await call(`/api/runs/${other.id}/start`, json({}))).status).toBe(200);
    await measure('utm-1');
    expect((await call(`/api/runs/${other.id}/stop`, json({}))).status).toBe(200);
    const d2 = await draft(other.id);
    // the technician becomes a signatory later: still not the one to approve the run
    await t.server.users.update(system, 'tech-sig', { role: 'signatory' }, 'promoted');
    const token2 = (await t.server.users.createApiToken(system, 'tech-sig', 'tests', DAY)).token;
    const res = await fetch(`${t.base}/api/certificates/${d.id}/issue`, { method: 'POST', headers: { authorization: `Bearer ${token2}` } });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: string }).error).toBe(
      `tech-sig performed run ${created.id}: the certificate must be approved by another signatory`,
    );
    const res2 = await fetch(`${t.base}/api/certificates/${d2.id}/issue`, { method: 'POST', headers: { authorization: `Bearer ${token2}` } });
    expect(res2.status).toBe(403);
    expect(((await res2.json()) as { error: string }).error).toBe(
      `tech-sig created run ${other.id}: the certificate must be approved by another signatory`,
    );
    // another signatory may
    expect((await call(`/api/certificates/${d2.id}/issue`, json({}), 'signatory')).status).toBe(200);
  }, 120_000); // several reports issued, each a PDF/A with its CJK font subset and a schema-checked DCC: generous on a busy machine

  test('an instrument out of calibration at the run time blocks the issue, named with its reason', async () => {
    // never calibrated when it ran (runs may start so in this lab), then a calibration recorded that had expired before
    const run = await completedRun({ instrument: 'utm-2' });
    const d = await draft(run);
    expect((await call<{ blockers: string[] }>(`/api/certificates/${d.id}`, {}, 'signatory')).body.blockers).toEqual([
      `instrument "utm-2" had no calibration record during run ${run}: no traceability statement can be made`,
      'missing: 6.5 / 7.8.4.1 traceability statement per instrument',
    ]);
    await calibrate('utm-2', Date.now() - 400 * DAY, Date.now() - 35 * DAY);
    const res = await call(`/api/certificates/${d.id}/issue`, json({}), 'signatory');
    expect(res.status).toBe(409);
    expect(res.body.error).toMatch(new RegExp(`instrument "utm-2" was out of calibration during run ${run}: certificate CAL-utm-2-\\d+ expired on`));
    expect((await fetch(`${t.base}/api/public/certificates/${d.id}`)).status).toBe(404);
  });

  test('an instrument now out of service with the run under review blocks the issue', async () => {
    const run = await completedRun({ instrument: 'utm-3' });
    const d = await draft(run);
    const failed = await call(
      `/api/instruments/utm-3/checks`,
      json({ checkedAt: Date.now(), result: 'fail', description: 'force check off by 2 %' }),
    );
    expect(failed.status).toBe(201);
    const res = await call(`/api/certificates/${d.id}/issue`, json({}), 'signatory');
    expect(res.status).toBe(409);
    expect(res.body.error).toMatch(new RegExp(`instrument "utm-3" is now out of service and run ${run} is under review`));
  });

  test('a report whose DCC would not be valid against the PTB DCC schema is not issued, and the refusal names the schema error', async () => {
    // XML 1.0 has no way to carry a control character: the DCC of this sample's report cannot be valid. The API
    // refuses one now; a sample stored by an earlier version may still hold one
    const sample = {
      id: 'B-ctl',
      organization: ORGANIZATION,
      description: 'steel bar\u0007B500B',
      condition: 'intact',
      receivedAt: Date.now() - DAY,
    };
    const refused = await call<{ error: string }>('/api/lab-samples', json(sample));
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatch(/description/);
    await t.server.db
      .insertInto('lab_samples')
      .values({
        id: sample.id,
        organization: sample.organization,
        description: sample.description,
        condition: sample.condition,
        received_at: sample.receivedAt,
        created_by: 'admin',
        created_at: Date.now(),
      })
      .execute();
    const d = await draft(await completedRun({ sample: 'B-ctl' }));
    const res = await call(`/api/certificates/${d.id}/issue`, json({}), 'signatory');
    expect(res.status).toBe(409);
    expect(res.body.error).toMatch(
      new RegExp(
        `^certificate ${d.id} cannot be issued: its DCC XML is not valid against the PTB DCC 3\\.3\\.0 schema: line \\d+: PCDATA invalid Char value 7`,
      ),
    );
    // nothing was issued: still a draft, nothing public, no DCC to download
    expect((await call<CertificateView>(`/api/certificates/${d.id}`, {}, 'signatory')).body.status).toBe('draft');
    expect((await fetch(`${t.base}/api/public/certificates/${d.id}`)).status).toBe(404);
    expect((await call(`/api/certificates/${d.id}/dcc.xml`, {}, 'signatory')).status).toBe(409);
  });

  test('results outside the accreditation scope: no mark, and they are flagged', async () => {
    const cert = await issued(await completedRun({ method: 'tensile-astm' }));
    const full = (await call<{ content: CertificateContent }>(`/api/certificates/${cert.id}`)).body.content;
    expect(full.accreditation).toBeNull();
    expect(full.notAccredited).toEqual(['Fm', 'Fmean']);
    const text = pdfText(await bytes(`/api/certificates/${cert.id}/pdf`))
      .join(' ')
      .replace(/\s+/g, ' ');
    expect(text).toContain('* Not accredited');
    expect(text).not.toContain('Accredited by');
  });
});

describe('visibility', () => {
  test("a client sees its own organization's issued certificates only; another's answer 404", async () => {
    const mine = await issued(await completedRun());
    const theirs = await issued(await completedRun({ sample: 'B-2' }));
    const pending = await draft(await completedRun());
    const list = async (role: 'client' | 'client-b' | 'auditor') => {
      const res = await call<{ items: CertificateView[] }>('/api/certificates', {}, role);
      return { ...res, body: res.body.items };
    };
    const ids = (await list('client')).body.map((c) => c.id);
    expect(ids).toContain(mine.id);
    expect(ids).not.toContain(theirs.id);
    expect(ids).not.toContain(pending.id);
    expect((await list('client')).body.every((c) => c.organization === ORGANIZATION && c.status !== 'draft')).toBe(true);
    expect((await list('client-b')).body.map((c) => c.id)).toEqual([theirs.id]);
    expect((await list('auditor')).body.map((c) => c.id)).toEqual(expect.arrayContaining([mine.id, theirs.id, pending.id]));
    // filtered by run and status
    expect((await call<{ items: CertificateView[] }>(`/api/certificates?run=${mine.run}`, {}, 'client')).body.items.map((c) => c.id)).toEqual([
      mine.id,
    ]);
    expect((await call<{ items: CertificateView[] }>('/api/certificates?status=draft', {}, 'signatory')).body.items.map((c) => c.id)).toContain(
      pending.id,
    );
    expect((await call<{ items: CertificateView[] }>('/api/certificates?status=draft', {}, 'client')).body.items).toEqual([]);
    expect((await call('/api/certificates?status=lost', {}, 'client')).body.error).toMatch(/query: status/);
    for (const p of ['', '/pdf', '/json', '/dcc.xml']) {
      expect((await call(`/api/certificates/${theirs.id}${p}`, {}, 'client')).status).toBe(404);
      expect((await t.fetch(`/api/certificates/${mine.id}${p}`, {}, 'client')).status).toBe(200);
    }
    expect((await call(`/api/certificates/${pending.id}`, {}, 'client')).status).toBe(404);
    expect((await call(`/api/certificates/${pending.id}/pdf`, {}, 'signatory')).status).toBe(409);

    // an auditor whose grant covers the other organization only sees that one's certificates, and their audit entries
    const setup = { username: 'test-setup', role: 'system' };
    await t.server.users.create(setup, {
      username: 'auditor-b',
      role: 'auditor',
      password: 'a-long-password-for-auditor-b',
      grantUntil: Date.now() + 86_400_000,
      grantOrganizations: [(await list('client-b')).body[0]?.organization ?? ''],
    });
    const token = (await t.server.users.createApiToken(setup, 'auditor-b', 'tests', 86_400_000)).token;
    const asScoped = (p: string) => fetch(`${t.base}${p}`, { headers: { authorization: `Bearer ${token}` } });
    expect(((await (await asScoped('/api/certificates')).json()) as { items: CertificateView[] }).items.map((c) => c.id)).toEqual([theirs.id]);
    expect((await asScoped(`/api/certificates/${mine.id}`)).status).toBe(404);
    expect((await asScoped(`/api/certificates/${theirs.id}/pdf`)).status).toBe(200);
    const trail = ((await (await asScoped('/api/audit-trail?recordType=certificate&limit=500')).json()) as { items: { recordId: string }[] }).items;
    expect(new Set(trail.map((e) => e.recordId))).toEqual(new Set([theirs.id]));
  });
});

describe('reports in Chinese and English, and the public page in both', () => {
  const CUSTOMER = '上海某某检测技术有限公司';
  const DESCRIPTION = '热轧带肋钢筋 HRB400，直径 12 mm';
  const CONDITION = '外观完好，无锈蚀';
  const REASON = '委托方名称更正';
  let runId: string;
  let bilingual: CertificateView;

  beforeAll(async () => {
    const system = { username: 'test-setup', role: 'system' };
    await t.server.users.createOrganization(system, 'org-zh', CUSTOMER, '021-12345678');
    await t.server.users.createOrganization(system, 'org-xss', '<script>alert("x")</script> & Co', 'x@example.com');
    for (const [id, organization] of [
      ['C-1', 'org-zh'],
      ['X-1', 'org-xss'],
    ] as const)
      expect(
        (await call('/api/lab-samples', json({ id, organization, description: DESCRIPTION, condition: CONDITION, receivedAt: Date.now() - DAY })))
          .status,
      ).toBe(201);
    runId = await completedRun({ sample: 'C-1' });
  });

  /** The printed lines of a PDF, trimmed. */
  const lines = async (id: string): Promise<string[]> =>
    pdfText(await bytes(`/api/certificates/${id}/pdf`))
      .flatMap((p) => p.split('\n'))
      .map((l) => l.trim());
  const valueOf = (all: string[], label: string): string | undefined => all.find((l) => l.startsWith(`${label}  `))?.split(/\s{2,}/)[1];

  test('a language is validated where the report is requested or issued', async () => {
    expect((await call('/api/certificates', json({ run: runId, language: 'fr' }))).body.error).toMatch(
      /body: language: expected zh-CN, en or bilingual/,
    );
    const d = await draft(runId);
    expect((await call(`/api/certificates/${d.id}/issue`, json({ language: 'zh' }), 'signatory')).body.error).toMatch(
      /body: language: expected zh-CN, en or bilingual/,
    );
  });

  test('requested bilingual: both headings, the Chinese as recorded, the table with the results API strings', async () => {
    const res = await call<CertificateView>('/api/certificates', json({ run: runId, language: 'bilingual' }));
    expect(res.status).toBe(201);
    const issuedRes = await call<CertificateView>(`/api/certificates/${res.body.id}/issue`, json({}), 'signatory');
    expect(issuedRes).toMatchObject({ status: 200, body: { status: 'valid' } });
    bilingual = issuedRes.body;
    const all = await lines(bilingual.id);
    for (const heading of ['委托方 Customer', '检测样品 Item tested', '检测结果 Results', '批准 Authorization', '报告结束 End of report'])
      expect(all).toContain(heading);
    expect(valueOf(all, '名称 Name')).toBe(CUSTOMER);
    expect(valueOf(all, '样品描述 Description')).toBe(DESCRIPTION);
    expect(valueOf(all, '接收时状态 Condition on receipt')).toBe(CONDITION);
    const results = (await call<RunResults>(`/api/runs/${runId}/results`)).body;
    const rows = resultRows(
      [all.join('\n')],
      results.results.map((r) => r.name),
    );
    for (const r of results.results)
      expect(rows.get(r.name)?.slice(1, 4)).toEqual([r.reported, r.reportedUncertainty, String(r.uncertainty.coverageFactor)]);
    const pdf = await bytes(`/api/certificates/${bilingual.id}/pdf`);
    expect(qpdfCheck(pdf).code).toBe(0);
    expect(pdfFonts(pdf).every((f) => f.embedded && f.subset)).toBe(true);
    const content = (await call<{ content: CertificateContent }>(`/api/certificates/${bilingual.id}`, {}, 'signatory')).body.content;
    expect(content.language).toBe('bilingual');
    const dcc = new TextDecoder().decode(await bytes(`/api/certificates/${bilingual.id}/dcc.xml`));
    expect([...dcc.matchAll(/<dcc:mandatoryLangCodeISO639_1>(\w+)</g)].map((m) => m[1])).toEqual(['zh', 'en']);
  }, 120_000); // several reports issued, each a PDF/A with its CJK font subset and a schema-checked DCC: generous on a busy machine

  test('amended in zh-CN with a Chinese reason: Chinese headings only, the reason as recorded', async () => {
    const res = await call<CertificateView>(`/api/certificates/${bilingual.id}/amend`, json({ reason: REASON, language: 'zh-CN' }), 'signatory');
    expect(res).toMatchObject({ status: 201, body: { amends: bilingual.id, amendReason: REASON } });
    const all = await lines(res.body.id);
    expect(valueOf(all, '更正原因')).toBe(REASON);
    expect(valueOf(all, '所更正的报告编号')).toBe(bilingual.id);
    expect(valueOf(all, '名称')).toBe(CUSTOMER);
    for (const heading of ['委托方', '检测结果', '报告结束']) expect(all).toContain(heading);
    for (const heading of ['Customer', 'Results', 'End of report']) expect(all).not.toContain(heading);
    // an amendment keeps the language of the report it replaces unless told
    const again = await call<CertificateView>(`/api/certificates/${res.body.id}/amend`, json({ reason: '再次更正' }), 'signatory');
    expect((await call<{ content: CertificateContent }>(`/api/certificates/${again.body.id}`, {}, 'signatory')).body.content.language).toBe('zh-CN');
  }, 120_000); // several reports issued, each a PDF/A with its CJK font subset and a schema-checked DCC: generous on a busy machine

  test('the page follows Accept-Language and ?lang=; with the code it shows customer, item, results and verdict, as the public JSON does', async () => {
    const code = new URL(bilingual.verifyUrl).searchParams.get('code') ?? '';
    const page = async (query: string, accept?: string): Promise<{ status: number; html: string; language: string | null }> => {
      const res = await fetch(`${t.base}/verify/${bilingual.id}${query}`, accept === undefined ? {} : { headers: { 'accept-language': accept } });
      return { status: res.status, html: await res.text(), language: res.headers.get('content-language') };
    };
    const zh = await page(`?code=${code}`, 'zh-CN,zh;q=0.9,en;q=0.8');
    expect(zh).toMatchObject({ status: 200, language: 'zh-CN' });
    expect(zh.html).toContain('<html lang="zh-CN">');
    // (amended in the test above)
    expect(zh.html).toContain(`已更正：报告 ${bilingual.id} 已被报告 <a href=`);
    expect(zh.html).toContain(`<dd>${CUSTOMER}</dd>`);
    expect(zh.html).toContain(`<dd>C-1: ${DESCRIPTION}</dd>`);
    const results = (await call<RunResults>(`/api/runs/${runId}/results`)).body;
    for (const r of results.results) expect(zh.html).toContain(`<td>${r.reported}</td><td>${r.reportedUncertainty}</td>`);
    // both versions reachable: the switch links to the other language, keeping the code
    expect(zh.html).toContain(`href="?lang=en&amp;code=${code}" hreflang="en"`);
    const en = await page(`?lang=en&code=${code}`, 'zh-CN');
    expect(en.html).toContain('<html lang="en">');
    expect(en.html).toContain(`Amended: report ${bilingual.id} was replaced by report <a href=`);
    expect(en.html).toContain(`<dd>${CUSTOMER}</dd>`);
    expect((await page('', 'fr-FR, en;q=0.5')).html).toContain('<html lang="en">');
    expect((await page('?lang=zh-CN')).html).toContain('<html lang="zh-CN">');
    // without the code (or with another report's) the number alone shows status and digests, never the customer
    for (const q of ['', '?code=0123456789abcdef']) {
      const p = await page(q);
      expect(p.html).toContain(bilingual.digests?.pdf);
      expect(p.html).not.toContain(CUSTOMER);
      expect(p.html).not.toContain(DESCRIPTION);
    }
    expect((await page('?lang=fr')).status).toBe(400);
    expect((await page('?code=nope')).status).toBe(400);
    // the public JSON says the same
    const publicJson = async (q: string) =>
      (await (await fetch(`${t.base}/api/public/certificates/${bilingual.id}${q}`)).json()) as Record<string, unknown>;
    expect(await publicJson('')).not.toHaveProperty('summary');
    expect(await publicJson(`?code=${code}`)).toMatchObject({
      status: 'amended',
      summary: {
        customer: CUSTOMER,
        item: { id: 'C-1', description: DESCRIPTION },
        language: 'bilingual',
        results: results.results.map((r) => expect.objectContaining({ name: r.name, reported: r.reported, uncertainty: r.reportedUncertainty })),
      },
    });
  });

  test('a hostile customer name is text on the page, never markup', async () => {
    const cert = await issued(await completedRun({ sample: 'X-1' }));
    const code = new URL(cert.verifyUrl).searchParams.get('code') ?? '';
    for (const lang of ['en', 'zh-CN']) {
      const html = await (await fetch(`${t.base}/verify/${cert.id}?lang=${lang}&code=${code}`)).text();
      expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co');
      expect(html).not.toContain('<script>alert');
      expect(html.match(/<script>/g)).toHaveLength(1);
    }
  }, 120_000); // several reports issued, each a PDF/A with its CJK font subset and a schema-checked DCC: generous on a busy machine
});

describe('the accreditation mark at the issue', () => {
  test('only while the accreditation is current: a report of accredited results issued during a suspension carries none', async () => {
    const run = await completedRun();
    expect((await call('/api/accreditations/acc-1/events', json({ kind: 'suspend', reason: 'surveillance finding' }), 'admin')).status).toBe(201);
    try {
      const cert = await issued(run);
      const content = (await call<{ content: CertificateContent }>(`/api/certificates/${cert.id}`, {}, 'signatory')).body.content;
      // the results lie in the scope (as computed when the run completed): the mark is withheld for the suspension alone
      expect(content.results.every((r) => r.accredited)).toBe(true);
      expect(content.accreditation).toBeNull();
      const text = pdfText(await bytes(`/api/certificates/${cert.id}/pdf`))
        .join(' ')
        .replace(/\s+/g, ' ');
      expect(text).toContain('This report carries no accreditation mark.');
      expect(text).not.toContain('Accredited by');
    } finally {
      expect((await call('/api/accreditations/acc-1/events', json({ kind: 'reinstate', reason: 'finding closed' }), 'admin')).status).toBe(201);
    }
    // reinstated: the mark again
    const again = await issued(await completedRun());
    expect((await call<{ content: CertificateContent }>(`/api/certificates/${again.id}`, {}, 'signatory')).body.content.accreditation).toEqual({
      body: 'CNAS',
      number: 'L1234',
    });
  }, 120_000);
});

describe('the DCC of every certificate issued above', () => {
  test("is valid against the official PTB DCC 3.3.0 schema (with D-SI 2.2.1), and names the lab's country", async () => {
    const issuedOnes = (await call<{ items: CertificateView[] }>('/api/certificates?limit=500', {}, 'signatory')).body.items.filter(
      (c) => c.status !== 'draft',
    );
    // the first issue, A amended by B amended by C (one revoked), the refusals', the visibility test's
    expect(issuedOnes.length).toBeGreaterThanOrEqual(7);
    expect(issuedOnes.some((c) => c.status === 'amended')).toBe(true);
    expect(issuedOnes.some((c) => c.status === 'revoked')).toBe(true);
    for (const c of issuedOnes) {
      const xml = await bytes(`/api/certificates/${c.id}/dcc.xml`);
      expect({ id: c.id, errors: await dccSchemaErrors(xml) }).toEqual({ id: c.id, errors: [] });
      expect(new TextDecoder().decode(xml)).toContain('<dcc:countryCodeISO3166_1>DE</dcc:countryCodeISO3166_1>');
    }
  }, 120_000);
});
