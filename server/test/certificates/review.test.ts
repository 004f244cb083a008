// The signatory's side of test reports, against a real server with a signing test gateway: the list of reports
// paged newest first, searched and filtered on the server; a draft reviewed as it would be issued (its content,
// its blockers by kind, its PDF preview marked as a draft and neither signed nor logged); an amendment that
// corrects the report's fields, recorded old and new in the audit trail, printed "Amendment to Report No. ...";
// bad input named by field, roles refused, clients kept to their own; every change announced to the live lists.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { io, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, Sample, ServerToClientEvents } from '@labtrace/protocols';
import type { CertificateDetail, CertificateItem, Page } from '@labtrace/protocols/api';
import { addOtherClient, jsonCaller, ORGANIZATION, postJson, send, startServer, TestGateway, type TestServer, waitFor } from '../helpers/server.js';
import { rowCount } from '../helpers/store-reads.js';
import { pdfText } from './pdf-text.js';

let t: TestServer;
let gw: TestGateway;
let otherClientToken: string;
let seq = 0;
const DAY = 86_400_000;
const json = postJson;
const call = jsonCaller(
  () => t,
  () => otherClientToken,
);
const sockets: Socket[] = [];

beforeAll(async () => {
  t = await startServer({ laboratory: { name: 'labtrace test laboratory', address: '1 Test Street, 12345 Testtown', country: 'DE' } });
  otherClientToken = await addOtherClient(t);
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('utm-1', 'utm-2');
  await waitFor('the instruments', async () => (await rowCount(t.server, 'instruments')) === 2);
  const now = Date.now();
  // utm-1 calibrated; utm-2 never was (its reports cannot be issued)
  expect(
    (
      await call(
        '/api/instruments/utm-1/calibrations',
        json({
          calibratedAt: now - 10 * DAY,
          laboratory: 'Reference Lab',
          certificate: 'CAL-utm-1',
          results: [{ point: 'p1', reference: 10, indication: 10.01, unit: 'kN' }],
          uncertainty: { value: 0.1, unit: 'kN', k: 2 },
          nextDueAt: now + 300 * DAY,
        }),
      )
    ).status,
  ).toBe(201);
  for (const [id, organization, description] of [
    ['B-1', ORGANIZATION, 'steel bar B500B, 10 mm'],
    ['B-2', 'org-b', '铝合金板 6061-T6 (100%_pure)'],
  ] as const)
    expect((await call('/api/lab-samples', json({ id, organization, description, condition: 'intact', receivedAt: now - DAY }))).status).toBe(201);
  expect(
    (
      await call(
        '/api/methods',
        json({
          id: 'tensile',
          standard: 'ISO 6892-1:2019',
          title: 'Tensile testing at room temperature',
          definition: {
            measurands: [{ name: 'force', unit: 'kN', channel: 'c' }],
            instrumentTypes: ['x'],
            decisionRule: { kind: 'simple-acceptance' },
            results: [
              {
                name: 'Fm',
                title: 'maximum force',
                measurand: 'force',
                statistic: 'max',
                resolution: 0.01,
                repeatability: 0.05,
                limits: { min: 40 },
              },
            ],
          },
        }),
      )
    ).status,
  ).toBe(201);
}, 60_000);

afterAll(async () => {
  for (const s of sockets) s.close();
  await gw.end();
  await t.stop();
});

async function completedRun(sample = 'B-1', instrument = 'utm-1'): Promise<string> {
  const created = await call<{ id: string }>('/api/runs', json({ sample, method: 'tensile', instruments: [instrument] }));
  expect(created.status).toBe(201);
  const id = created.body.id;
  expect((await call(`/api/runs/${id}/start`, json({}))).status).toBe(200);
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
  expect((await call(`/api/runs/${id}/stop`, json({}))).status).toBe(200);
  return id;
}

async function draft(run: string): Promise<CertificateItem> {
  const res = await call<CertificateItem>('/api/certificates', json({ run }));
  expect(res.status).toBe(201);
  return res.body;
}

async function issued(run: string): Promise<CertificateItem> {
  const d = await draft(run);
  const res = await call<CertificateItem>(`/api/certificates/${d.id}/issue`, json({}), 'signatory');
  expect(res.status).toBe(200);
  return res.body;
}

const page = (query: string, role: Parameters<typeof call>[2] = 'signatory') => call<Page<CertificateItem>>(`/api/certificates${query}`, {}, role);

async function pdfOf(path: string, role: Parameters<typeof call>[2] = 'signatory'): Promise<{ status: number; type: string | null; text: string }> {
  const res = await t.fetch(path, {}, role === 'client-b' ? 'client' : role);
  if (res.status !== 200) return { status: res.status, type: res.headers.get('content-type'), text: '' };
  return { status: 200, type: res.headers.get('content-disposition'), text: pdfText(new Uint8Array(await res.arrayBuffer())).join('\n') };
}

describe('the list of reports', () => {
  let ids: string[];
  let theirs: CertificateItem;

  beforeAll(async () => {
    const a = await issued(await completedRun());
    const b = await draft(await completedRun());
    theirs = await issued(await completedRun('B-2'));
    const c = await draft(await completedRun());
    ids = [a.id, b.id, theirs.id, c.id];
  }, 60_000);

  test('pages newest first by request; every report once; the cursor continues where the last page ended', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { status: number; body: Page<CertificateItem> } = await page(`?limit=2${cursor === null ? '' : `&cursor=${cursor}`}`);
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.items.map((c) => c.id));
      cursor = res.body.next;
      pages++;
    } while (cursor !== null && pages < 50);
    expect(new Set(seen).size).toBe(seen.length);
    // newest first: report numbers are reserved in request order
    expect(seen).toEqual([...seen].sort().reverse());
    expect(seen).toEqual(expect.arrayContaining(ids));
    const first = await page('?limit=1');
    expect(first.body.items[0]?.id).toBe(ids[3]);
    expect(first.body.next).not.toBeNull();
  });

  test('searched by report number, customer, run, sample description (Chinese, with LIKE characters taken literally)', async () => {
    const ofQuery = async (q: string) => (await page(`?q=${encodeURIComponent(q)}`)).body.items.map((c) => c.id);
    expect(await ofQuery(ids[1] ?? '')).toEqual([ids[1]]);
    expect(await ofQuery('Client B')).toEqual([theirs.id]);
    expect(await ofQuery(theirs.run)).toEqual([theirs.id]);
    expect(await ofQuery('铝合金')).toEqual([theirs.id]);
    expect(await ofQuery('100%_pure')).toEqual([theirs.id]);
    // % and _ are no wildcards: "0%_p" matches the description literally, "0_%p" nothing
    expect(await ofQuery('0_%p')).toEqual([]);
    const item = (await page(`?q=${encodeURIComponent('铝合金')}`)).body.items[0];
    expect(item).toMatchObject({ customer: 'Client B', sample: { id: 'B-2', description: '铝合金板 6061-T6 (100%_pure)' } });
  });

  test('filtered by status and issue time; a client sees its own issued ones only', async () => {
    const ofStatus = async (status: string, role: Parameters<typeof call>[2] = 'signatory') =>
      (await page(`?status=${status}&limit=500`, role)).body.items.map((c) => c.id);
    expect(await ofStatus('draft')).toEqual(expect.arrayContaining([ids[1], ids[3]]));
    expect(await ofStatus('draft')).not.toContain(ids[0]);
    expect(await ofStatus('valid')).toEqual(expect.arrayContaining([ids[0], ids[2]]));
    expect(await ofStatus('draft', 'client')).toEqual([]);
    const mine = (await page('?limit=500', 'client')).body.items;
    expect(mine.every((c) => c.organization === ORGANIZATION && c.status !== 'draft')).toBe(true);
    expect(mine.map((c) => c.id)).not.toContain(theirs.id);
    expect((await page('?limit=500', 'client-b')).body.items.map((c) => c.id)).toEqual([theirs.id]);
    const issuedAt = (await call<CertificateItem>(`/api/certificates/${theirs.id}`, {}, 'signatory')).body.issuedAt ?? 0;
    const inRange = (await page(`?from=${issuedAt}&to=${issuedAt + 1}`)).body.items.map((c) => c.id);
    expect(inRange).toContain(theirs.id);
    expect(inRange).not.toContain(ids[1]);
    expect((await page(`?from=${issuedAt + 1}&to=${issuedAt + 2}`)).body.items.map((c) => c.id)).not.toContain(theirs.id);
  });

  test('bad queries answer 400 naming the field', async () => {
    for (const [query, field] of [
      ['?limit=0', 'limit'],
      ['?limit=501', 'limit'],
      ['?cursor=abc', 'cursor'],
      ['?from=yesterday', 'from'],
      ['?from=2000&to=1000', 'to'],
      ['?status=issued', 'status'],
      ['?colour=red', 'colour'],
    ] as const) {
      const res = await call<{ error: string; issues?: { path: string }[] }>(`/api/certificates${query}`, {}, 'signatory');
      expect(res.status).toBe(400);
      expect(res.body.error).toMatch(new RegExp(`query: ${field}|${field}`));
      expect(JSON.stringify(res.body)).toContain(field);
    }
  });
});

describe("the signatory's review of a draft", () => {
  test('the draft carries its content as it would be issued: customer, item, method, results with U and k, verdicts, instruments', async () => {
    const d = await draft(await completedRun());
    const res = await call<CertificateDetail>(`/api/certificates/${d.id}`, {}, 'signatory');
    expect(res.status).toBe(200);
    expect(res.body.blockers).toEqual([]);
    expect(res.body.blockerDetails).toEqual([]);
    const content = res.body.draft;
    expect(content).toMatchObject({
      id: d.id,
      customer: { name: 'Client A', contact: 'quality@client-a.example' },
      item: { id: 'B-1', description: 'steel bar B500B, 10 mm', condition: 'intact' },
      method: { standard: 'ISO 6892-1:2019', version: 1 },
      authorization: { name: 'signatory', role: 'signatory' },
      amendment: null,
    });
    const fm = content?.results.find((r) => r.name === 'Fm');
    expect(fm).toMatchObject({
      reported: '42.03',
      unit: 'kN',
      uncertainty: { coverageFactor: 2 },
      conformity: { verdict: 'pass', rule: 'simple-acceptance' },
    });
    expect(content?.traceability[0]).toMatchObject({ id: 'utm-1', calibration: { certificate: 'CAL-utm-1' }, statusAtRun: 'valid' });
    // the draft is what the issue then signs (but the time and who signs)
    const issue = await call<CertificateItem>(`/api/certificates/${d.id}/issue`, json({}), 'signatory');
    expect(issue.status).toBe(200);
    const signed = (await call<CertificateDetail>(`/api/certificates/${d.id}`, {}, 'signatory')).body.content;
    expect(signed?.results).toEqual(content?.results);
    expect(signed?.customer).toEqual(content?.customer);
    expect(signed?.item).toEqual(content?.item);
  });

  test('a blocked draft says why by kind, with the instrument and the run; a client never sees drafts', async () => {
    const run = await completedRun('B-1', 'utm-2');
    const d = await draft(run);
    const res = await call<CertificateDetail>(`/api/certificates/${d.id}`, {}, 'signatory');
    expect(res.body.blockerDetails).toEqual(
      expect.arrayContaining([expect.objectContaining({ kind: 'instrument-never-calibrated', params: { instrument: 'utm-2', run } })]),
    );
    expect(res.body.blockers).toEqual(res.body.blockerDetails?.map((b) => b.text));
    expect(res.body.blockerDetails?.some((b) => b.kind === 'missing-field' && b.params['key'] === 'traceability')).toBe(true);
    expect((await call(`/api/certificates/${d.id}`, {}, 'client')).status).toBe(404);
  });

  test('the PDF preview: shown inline, marked as a draft, with the results; neither signed, logged nor recorded; issued reports and clients refused', async () => {
    const d = await draft(await completedRun());
    const audit = await rowCount(t.server, 'audit_trail', { record_id: d.id });
    for (const language of ['en', 'zh-CN']) {
      const pdf = await pdfOf(`/api/certificates/${d.id}/preview.pdf?language=${language}`);
      expect(pdf.status).toBe(200);
      expect(pdf.type).toMatch(/^inline/);
      expect(pdf.text).toContain(language === 'en' ? 'DRAFT — not issued' : '草稿 — 未签发');
      expect(pdf.text).toContain('42.03');
      expect(pdf.text).toContain('Client A');
    }
    // nothing of it entered the log, the certificates or the audit trail
    expect(await rowCount(t.server, 'certificate_events', { certificate: d.id })).toBe(0);
    expect(await rowCount(t.server, 'certificates', { id: d.id })).toBe(0);
    expect(await rowCount(t.server, 'audit_trail', { record_id: d.id })).toBe(audit);
    expect((await call<CertificateItem>(`/api/certificates/${d.id}`, {}, 'signatory')).body.status).toBe('draft');
    expect((await call(`/api/certificates/${d.id}/preview.pdf?language=fr`, {}, 'signatory')).body).toMatchObject({
      error: expect.stringMatching(/language/) as unknown,
    });
    expect((await t.fetch(`/api/certificates/${d.id}/preview.pdf`, {}, 'client')).status).toBe(403);
    await call(`/api/certificates/${d.id}/issue`, json({}), 'signatory');
    const after = await call<{ reason: string }>(`/api/certificates/${d.id}/preview.pdf`, {}, 'signatory');
    expect(after).toMatchObject({ status: 409, body: { reason: 'certificate.issued' } });
  }, 30_000);
});

describe('an amendment that corrects the report', () => {
  test('bad corrections answer 400 naming the field; a technician and a client are refused', async () => {
    const old = await issued(await completedRun());
    const amend = (body: unknown, role: Parameters<typeof call>[2] = 'signatory') =>
      call<{ error: string }>(`/api/certificates/${old.id}/amend`, json(body), role);
    for (const [corrections, field] of [
      [{ customer: { name: '' } }, 'corrections.customer.name'],
      [{ customer: { name: 'a\u0007b' } }, 'corrections.customer.name'],
      [{ item: { description: 'x'.repeat(1001) } }, 'corrections.item.description'],
      [{ item: { colour: 'red' } }, 'corrections.item'],
      [{ statements: ['ok', ''] }, 'corrections.statements'],
      [{ remarks: 42 }, 'corrections.remarks'],
    ] as const) {
      const res = await amend({ reason: 'correction', corrections });
      expect(res.status).toBe(400);
      expect(res.body.error).toContain(field);
    }
    expect((await amend({ reason: 'correction', corrections: { item: { description: 'x' } } }, 'technician')).status).toBe(403);
    expect((await amend({ reason: 'correction', corrections: { item: { description: 'x' } } }, 'client')).status).toBe(403);
    // nothing was amended
    expect((await call<CertificateItem>(`/api/certificates/${old.id}`, {}, 'signatory')).body).toMatchObject({ status: 'valid', amendedBy: null });
  });

  test('the new report carries the corrected fields and "Amendment to Report No."; the trail has old and new; a further amendment keeps them', async () => {
    const old = await issued(await completedRun());
    const reason = '委托方名称与样品描述更正';
    const res = await call<CertificateItem>(
      `/api/certificates/${old.id}/amend`,
      json({
        reason,
        language: 'en',
        corrections: {
          customer: { name: 'Client A Precision Ltd.' },
          item: { description: '热轧带肋钢筋 HRB400E，直径 10 mm' },
          remarks: 'Specimen machined by the customer.',
          statements: ['Opinion: suitable for seismic structures.'],
        },
      }),
      'signatory',
    );
    expect(res.body).toMatchObject({ status: 'valid', amends: old.id });
    expect(res.status).toBe(201);
    const amended = (await call<CertificateDetail>(`/api/certificates/${res.body.id}`, {}, 'client')).body;
    expect(amended.content).toMatchObject({
      customer: { name: 'Client A Precision Ltd.', contact: 'quality@client-a.example' },
      item: { id: 'B-1', description: '热轧带肋钢筋 HRB400E，直径 10 mm', condition: 'intact' },
      remarks: 'Specimen machined by the customer.',
      statements: ['Opinion: suitable for seismic structures.'],
      amendment: { amends: old.id, reason },
    });
    expect(amended.content?.title).toBe(`Test Report - Amendment to Report No. ${old.id}`);
    const pdf = await pdfOf(`/api/certificates/${res.body.id}/pdf`, 'client');
    expect(pdf.text).toMatch(new RegExp(`Amendment to Report No\\.\\s+${old.id}`));
    for (const s of [
      'Client A Precision Ltd.',
      '热轧带肋钢筋 HRB400E，直径 10 mm',
      'Specimen machined by the customer.',
      'Opinion: suitable for seismic structures.',
    ])
      expect(pdf.text).toContain(s);
    expect(pdf.text).not.toContain('DRAFT');
    // the DCC says the same
    const dcc = await (await t.fetch(`/api/certificates/${res.body.id}/dcc.xml`, {}, 'client')).text();
    expect(dcc).toContain('Client A Precision Ltd.');
    expect(dcc).toContain('热轧带肋钢筋');
    // the audit trail: each corrected field, old and new, with the reason
    const entry = await t.server.db
      .selectFrom('audit_trail')
      .select(['old_value', 'new_value', 'reason'])
      .where('record_type', '=', 'certificate')
      .where('record_id', '=', res.body.id)
      .where('action', '=', 'update')
      .executeTakeFirstOrThrow();
    expect(JSON.parse(entry.old_value ?? 'null')).toEqual({
      amends: old.id,
      'customer.name': 'Client A',
      'item.description': 'steel bar B500B, 10 mm',
      remarks: '',
      statements: [],
    });
    expect(JSON.parse(entry.new_value ?? 'null')).toEqual({
      amends: old.id,
      'customer.name': 'Client A Precision Ltd.',
      'item.description': '热轧带肋钢筋 HRB400E，直径 10 mm',
      remarks: 'Specimen machined by the customer.',
      statements: ['Opinion: suitable for seismic structures.'],
    });
    expect(entry.reason).toBe(reason);
    // amending the amendment without corrections keeps what was corrected; removing the remarks removes them
    const again = await call<CertificateItem>(
      `/api/certificates/${res.body.id}/amend`,
      json({ reason: 'remarks withdrawn', corrections: { remarks: '' } }),
      'signatory',
    );
    expect(again.status).toBe(201);
    const third = (await call<CertificateDetail>(`/api/certificates/${again.body.id}`, {}, 'signatory')).body.content;
    expect(third?.customer.name).toBe('Client A Precision Ltd.');
    expect(third?.item.description).toBe('热轧带肋钢筋 HRB400E，直径 10 mm');
    expect(third?.statements).toEqual(['Opinion: suitable for seismic structures.']);
    expect(third).not.toHaveProperty('remarks');
  }, 30_000);

  test('a signatory who performed the run may not amend its report', async () => {
    const old = await issued(await completedRun());
    const run = (await call<{ technician: string }>(`/api/runs/${old.run}`)).body;
    expect(run.technician).toBe('technician');
    // the check is by person: the technician, promoted, is refused as the run's performer
    const promoted = await t.fetch(
      '/api/users/technician',
      { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ role: 'signatory', reason: 'promoted' }) },
      'admin',
    );
    expect(promoted.status).toBe(200);
    try {
      const token = (await t.server.users.createApiToken({ username: 'test-setup', role: 'system' }, 'technician', 'tests', DAY)).token;
      const res = await fetch(`${t.base}/api/certificates/${old.id}/amend`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ reason: 'correction', corrections: { item: { condition: 'scratched' } } }),
      });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: string }).error).toMatch(/performed run .*: the certificate must be approved by another signatory/);
    } finally {
      const back = await t.fetch(
        '/api/users/technician',
        { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ role: 'technician', reason: 'back' }) },
        'admin',
      );
      expect(back.status).toBe(200);
      t.tokens.technician = (await t.server.users.createApiToken({ username: 'test-setup', role: 'system' }, 'technician', 'tests', DAY)).token;
    }
  });
});

describe('live lists', () => {
  test('a request, an issue, an amendment and a revocation each announce a change of the certificates list; a client hears only its own', async () => {
    const connect = (token: string): { socket: Socket<ServerToClientEvents, ClientToServerEvents>; heard: string[] } => {
      const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(t.base, {
        transports: ['websocket'],
        auth: { token },
        reconnection: false,
      });
      sockets.push(socket);
      const heard: string[] = [];
      socket.on('changed', (change) => {
        if (change.list === 'certificates') heard.push(change.id ?? '');
      });
      return { socket, heard };
    };
    const staff = connect(t.tokens.signatory);
    const otherClient = connect(otherClientToken);
    await waitFor('the sockets', () => staff.socket.connected && otherClient.socket.connected);
    const d = await draft(await completedRun());
    await waitFor('the request announced', () => staff.heard.includes(d.id));
    await call(`/api/certificates/${d.id}/issue`, json({}), 'signatory');
    await waitFor('the issue announced', () => staff.heard.filter((id) => id === d.id).length >= 2);
    const amended = await call<CertificateItem>(`/api/certificates/${d.id}/amend`, json({ reason: 'typo' }), 'signatory');
    await waitFor('the amendment announced', () => staff.heard.includes(amended.body.id) && staff.heard.filter((id) => id === d.id).length >= 3);
    await call(`/api/certificates/${amended.body.id}/revoke`, json({ reason: 'withdrawn' }), 'signatory');
    await waitFor('the revocation announced', () => staff.heard.filter((id) => id === amended.body.id).length >= 2);
    // the other organization's client heard none of them
    expect(otherClient.heard).toEqual([]);
  }, 30_000);
});
