// The instrument page's routes: the instrument register (paged by row id, searched, filtered by calibration status
// and connection), one instrument, its connection health over time (from the gateway's HEALTH messages), and the
// calibration certificate attached to its record (PDF only, size-limited, once, downloaded with its SHA-256).
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { birthMessageSchema, topicFor } from '@labtrace/protocols';
import { ATTACHMENT_MAX_BYTES, type InstrumentRegisterItem, type Page } from '@labtrace/protocols/api';
import type { Role } from '../../src/index.js';
import { LAB, startServer, TestGateway, type TestServer } from '../helpers/server.js';

const DAY = 86_400_000;
const YEAR = 365 * DAY;

/** a small valid PDF: the header, one empty page, the trailer (what a calibrating lab's file starts and ends with) */
const PDF = Buffer.from(
  '%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n' +
    '3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n',
  'latin1',
);

describe('instrument register, health and calibration certificates', () => {
  let t: TestServer;
  let gw: TestGateway;

  async function call<T = Record<string, unknown>>(
    p: string,
    init: RequestInit = {},
    role: Role = 'technician',
  ): Promise<{ status: number; body: T }> {
    const res = await t.fetch(p, init, role);
    const text = await res.text();
    return { status: res.status, body: (text === '' ? undefined : JSON.parse(text)) as T };
  }
  const post = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const put = (body: Uint8Array | string, type = 'application/pdf'): RequestInit => ({
    method: 'PUT',
    headers: { 'content-type': type },
    body: typeof body === 'string' ? body : Buffer.from(body),
  });
  const calibrate = async (id: string, calibratedAt: number, nextDueAt: number, certificate = `CAL-${id}`) => {
    const res = await call<{ id: number }>(
      `/api/instruments/${id}/calibrations`,
      post({
        calibratedAt,
        laboratory: 'Calibration Lab A',
        certificate,
        results: [{ point: '50 kN', reference: 50, indication: 50.02, unit: 'kN' }],
        uncertainty: { value: 0.03, unit: 'kN', k: 2 },
        nextDueAt,
      }),
    );
    expect(res.status).toBe(201);
    return res.body.id;
  };
  const register = (query: string, role: Role = 'auditor') => call<Page<InstrumentRegisterItem>>(`/api/instrument-register${query}`, {}, role);

  beforeAll(async () => {
    t = await startServer({ calibration: { requireForRuns: true, dueSoonDays: 30 } });
    // gw-b's instruments are known but it is not connected; gw-a is
    await t.server.registry.recordBirth(LAB, {
      v: 1,
      gateway: 'gw-b',
      session: 1,
      version: 't',
      instruments: [
        {
          id: 'bal-1',
          identity: { maker: 'Mettler Toledo', model: 'XPR205', serialNumber: 'B-100', location: 'Room 2' },
          protocol: 'balance',
          channels: [{ name: 'mass', unit: 'g' }],
        },
        {
          id: 'dmm-7',
          identity: { maker: 'Keysight', model: '34465A', serialNumber: 'MY_59%', location: 'Bench 4' },
          protocol: 'scpi',
          channels: [{ name: 'v', unit: 'V' }],
        },
        { id: 'ut-9', identity: { maker: 'Zwick', model: 'Z050', serialNumber: 'Z-9' }, channels: [{ name: 'force', unit: 'kN' }] },
      ],
    });
    gw = await TestGateway.connect(t, 'gw-a');
    await gw.announce([
      {
        id: 'ut-live',
        identity: { maker: 'Zwick', model: 'Z100', serialNumber: 'Z-LIVE', location: 'Hall 1' },
        channels: [{ name: 'force', unit: 'kN' }],
      },
    ]);
    for (let i = 0; i < 100 && (await t.server.registry.instrument('ut-live')) === undefined; i++) await new Promise((r) => setTimeout(r, 20));
    const now = Date.now();
    await calibrate('bal-1', now - DAY, now + YEAR);
    await calibrate('dmm-7', now - YEAR, now + 10 * DAY);
    await calibrate('ut-live', now - 2 * YEAR, now - YEAR);
  });
  afterAll(async () => {
    await gw.end();
    await t.stop();
  });

  test('the instruments say how their gateway reads them, from its BIRTH (null when the gateway did not say)', async () => {
    const res = await t.fetch('/api/instruments', {}, 'auditor');
    expect(res.status).toBe(200);
    const protocols = Object.fromEntries(((await res.json()) as { id: string; protocol: string | null }[]).map((i) => [i.id, i.protocol]));
    expect(protocols).toMatchObject({ 'bal-1': 'balance', 'dmm-7': 'scpi', 'ut-9': null, 'ut-live': null });
    // a name that is not a protocol name is refused where the BIRTH is read, naming the field
    expect(
      birthMessageSchema.safeParse({
        v: 1,
        gateway: 'gw-b',
        session: 3,
        version: 't',
        instruments: [{ id: 'x', identity: { maker: 'm', model: 'x', serialNumber: '1' }, protocol: 'OPC UA!', channels: [] }],
      }).error?.issues[0]?.path,
    ).toEqual(['instruments', 0, 'protocol']);
  });

  test('the register pages newest registered first, every instrument exactly once', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: Page<InstrumentRegisterItem> } = await register(`?limit=2${cursor === null ? '' : `&cursor=${cursor}`}`);
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((i) => i.id));
      cursor = page.body.next;
    } while (cursor !== null);
    expect(seen).toEqual(['ut-live', 'ut-9', 'dmm-7', 'bal-1']);
  });

  test('the register searches id, maker, model, serial and location, with % and _ taken literally', async () => {
    const ids = async (q: string) => (await register(`?q=${encodeURIComponent(q)}`)).body.items.map((i) => i.id).sort();
    expect(await ids('mettler')).toEqual(['bal-1']);
    expect(await ids('34465')).toEqual(['dmm-7']);
    expect(await ids('z-9')).toEqual(['ut-9']);
    expect(await ids('hall')).toEqual(['ut-live']);
    expect(await ids('ut-')).toEqual(['ut-9', 'ut-live']);
    expect(await ids('_59%')).toEqual(['dmm-7']);
    expect(await ids('%')).toEqual(['dmm-7']);
    expect(await ids('B_1')).toEqual([]);
  });

  test('the register filters by calibration status (computed as the status route does) and by connection', async () => {
    const ids = async (query: string) => (await register(query)).body.items.map((i) => i.id).sort();
    expect(await ids('?calibration=valid')).toEqual(['bal-1']);
    expect(await ids('?calibration=due-soon')).toEqual(['dmm-7']);
    expect(await ids('?calibration=expired')).toEqual(['ut-live']);
    expect(await ids('?calibration=never-calibrated')).toEqual(['ut-9']);
    expect(await ids('?connected=true')).toEqual(['ut-live']);
    expect(await ids('?connected=false')).toEqual(['bal-1', 'dmm-7', 'ut-9']);
    for (const item of (await register('')).body.items) {
      const status = await call<{ status: string; dueAt: number | null }>(`/api/instruments/${item.id}/calibration-status`);
      expect(item.calibration).toEqual({ status: status.body.status, dueAt: status.body.dueAt });
    }
    // out of service wins over a valid calibration, and back
    expect((await call('/api/instruments/bal-1/status', post({ status: 'out-of-service', reason: 'dropped' }))).status).toBe(201);
    expect(await ids('?calibration=out-of-service')).toEqual(['bal-1']);
    expect(await ids('?calibration=valid')).toEqual([]);
    expect((await call('/api/instruments/bal-1/status', post({ status: 'in-service', reason: 'repaired and checked' }))).status).toBe(201);
    expect(await ids('?calibration=valid&q=room')).toEqual(['bal-1']);
    const history = await call<{ history: { status: string; reason: string; actor: string }[] }>('/api/instruments/bal-1/status');
    expect(history.body.history.map((h) => [h.status, h.reason, h.actor])).toEqual([
      ['out-of-service', 'dropped', 'technician'],
      ['in-service', 'repaired and checked', 'technician'],
    ]);
  });

  test('bad register queries are refused naming the field', async () => {
    for (const [query, field] of [
      ['?calibration=shiny', 'calibration'],
      ['?connected=yes', 'connected'],
      ['?limit=0', 'limit'],
      ['?cursor=abc', 'cursor'],
      ['?colour=red', ''],
    ] as const) {
      const res = await register(query);
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body)).toContain(field);
    }
  });

  test('one instrument: identity, channels, connection and calibration; 404 for an unknown one', async () => {
    const one = await call<{ id: string; identity: { location: string }; connected: boolean; calibration: { status: string } }>(
      '/api/instruments/ut-live',
      {},
      'signatory',
    );
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ id: 'ut-live', identity: { location: 'Hall 1' }, connected: true, calibration: { status: 'expired' } });
    expect((await call('/api/instruments/nope')).status).toBe(404);
  });

  test('health reports are kept over time: one point a minute, and every change of connection', async () => {
    const report = async (connected: boolean, timeouts: number) => {
      await gw.client.publishAsync(
        topicFor(LAB, 'gw-a', 'HEALTH'),
        JSON.stringify({
          v: 1,
          gateway: 'gw-a',
          ts: Date.now(),
          instruments: [
            { instrument: 'ut-live', connected, lastGood: null, errors: { timeout: timeouts }, polls: 10, latencyMs: { p50: 4, p99: 9 } },
          ],
        }),
        { qos: 1 },
      );
    };
    const points = async () =>
      (await call<{ points: { connected: boolean; errors: Record<string, number> }[] }>('/api/instruments/ut-live/health', {}, 'auditor')).body
        .points;
    await report(true, 1);
    for (let i = 0; i < 100 && (await points()).length < 1; i++) await new Promise((r) => setTimeout(r, 20));
    // within the minute and unchanged: not kept
    await report(true, 2);
    // a change of connection is kept at once
    await report(false, 3);
    for (let i = 0; i < 100 && (await points()).length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    const stored = t.server.database.sqlite.prepare("SELECT connected, errors FROM instrument_health WHERE instrument = 'ut-live' ORDER BY id").all();
    expect(stored).toEqual([
      { connected: 1, errors: '{"timeout":1}' },
      { connected: 0, errors: '{"timeout":3}' },
    ]);
    // asked for one point, the interval's last report answers, disconnected since one report in it was
    const one = await call<{ points: { connected: boolean; errors: Record<string, number> }[] }>('/api/instruments/ut-live/health?points=1');
    expect(one.body.points).toEqual([expect.objectContaining({ connected: false, errors: { timeout: 3 } })]);
    expect((await call('/api/instruments/nope/health')).status).toBe(404);
    expect((await call('/api/instruments/ut-live/health?from=2000000000000&to=1900000000000')).status).toBe(400);
    expect((await call('/api/instruments/ut-live/health?points=0')).status).toBe(400);
  });

  test('a calibration certificate is attached once as a PDF and downloaded with its SHA-256', async () => {
    const now = Date.now();
    const record = await calibrate('ut-9', now - DAY, now + YEAR, 'DKD-2026-0042');
    const attached = await call<{ sha256: string; size: number; filename: string; uploadedBy: string }>(
      `/api/instruments/ut-9/calibrations/${record}/certificate?filename=${encodeURIComponent('DKD 2026-0042.pdf')}`,
      put(PDF),
    );
    expect(attached.status).toBe(201);
    const sha256 = createHash('sha256').update(PDF).digest('hex');
    expect(attached.body).toMatchObject({ sha256, size: PDF.length, filename: 'DKD 2026-0042.pdf', uploadedBy: 'technician' });
    const download = await t.fetch(`/api/instruments/ut-9/calibrations/${record}/certificate`, {}, 'auditor');
    expect(download.status).toBe(200);
    expect(download.headers.get('content-type')).toBe('application/pdf');
    expect(download.headers.get('content-disposition')).toContain('DKD 2026-0042.pdf');
    const bytes = Buffer.from(await download.arrayBuffer());
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(sha256);
    expect(download.headers.get('digest')).toBe(`sha-256=${createHash('sha256').update(PDF).digest('base64')}`);
    const listed = await call<{ calibrations: { id: number; attachment: { sha256: string } | null }[] }>(
      '/api/instruments/ut-9/calibrations',
      {},
      'signatory',
    );
    expect(listed.body.calibrations.find((c) => c.id === record)?.attachment?.sha256).toBe(sha256);
    // written once
    const again = await call<{ reason: string }>(`/api/instruments/ut-9/calibrations/${record}/certificate`, put(PDF));
    expect(again.status).toBe(409);
    expect(again.body.reason).toBe('calibration.certificate-exists');
    // recorded in the audit trail with its digest
    const audit = t.server.database.sqlite
      .prepare("SELECT new_value FROM audit_trail WHERE record_type = 'calibration-certificate' AND record_id = ?")
      .get(`ut-9/${record}`) as { new_value: string } | undefined;
    expect(audit?.new_value).toContain(sha256);
  });

  test('a certificate that is not a PDF, too large, empty or for a missing record is refused', async () => {
    const now = Date.now();
    const record = await calibrate('dmm-7', now - DAY, now + YEAR, 'CAL-DMM-2');
    const at = `/api/instruments/dmm-7/calibrations/${record}/certificate`;
    const wrongType = await call<{ reason: string; error: string }>(at, put(PDF, 'image/png'));
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.reason).toBe('calibration.certificate-not-pdf');
    expect(wrongType.body.error).toMatch(/^body: /);
    const json = await call<{ reason: string }>(at, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"pdf":true}' });
    expect(json.status).toBe(400);
    const notPdf = await call<{ reason: string }>(at, put(Buffer.from('GIF89a not a pdf')));
    expect(notPdf.status).toBe(400);
    expect(notPdf.body.reason).toBe('calibration.certificate-not-pdf');
    expect((await call(at, put(Buffer.alloc(0)))).status).toBe(400);
    const big = Buffer.concat([PDF, Buffer.alloc(ATTACHMENT_MAX_BYTES)]);
    const tooLarge = await call<{ reason: string }>(at, put(big));
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body.reason).toBe('request.too-large');
    // nothing was kept by the refusals
    expect((await call(at, {}, 'auditor')).status).toBe(404);
    const missing = await call<{ reason: string }>('/api/instruments/dmm-7/calibrations/999999/certificate', put(PDF));
    expect(missing.status).toBe(404);
    expect(missing.body.reason).toBe('record.not-found');
    // a record of another instrument is not this one's
    expect((await call(`/api/instruments/bal-1/calibrations/${record}/certificate`, put(PDF))).status).toBe(404);
    expect((await call('/api/instruments/dmm-7/calibrations/abc/certificate', put(PDF))).status).toBe(400);
    expect((await call(`${at}?filename=${encodeURIComponent('a\nb.pdf')}`, put(PDF))).status).toBe(400);
  });

  test('who may: clients see none of it, signatories and auditors read, only the lab workers attach', async () => {
    const now = Date.now();
    const record = await calibrate('bal-1', now - DAY, now + YEAR, 'CAL-BAL-2');
    for (const p of [
      '/api/instrument-register',
      '/api/instruments/bal-1',
      '/api/instruments/bal-1/health',
      `/api/instruments/bal-1/calibrations/${record}/certificate`,
    ])
      expect((await call(p, {}, 'client')).status).toBe(403);
    for (const role of ['signatory', 'auditor', 'client'] as const)
      expect((await call(`/api/instruments/bal-1/calibrations/${record}/certificate`, put(PDF), role)).status).toBe(403);
    expect((await t.fetch('/api/instrument-register', {}, null)).status).toBe(401);
    expect((await call(`/api/instruments/bal-1/calibrations/${record}/certificate`, put(PDF), 'admin')).status).toBe(201);
  });
});
