// Share links of a run: created and revoked by the lab's workers (with the audit trail's entries), the token shown
// once and stored only as its SHA-256, the public read answering the run to anyone holding the token, 410 with the
// reason once revoked or expired, 404 for an unknown token, 400 naming the field for bad input, 403 for roles that
// may not share.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createHash } from 'node:crypto';
import type { CreatedShare, PublicShare, RunShare } from '@labtrace/protocols/api';
import {
  addOtherClient,
  jsonCaller,
  ORGANIZATION,
  postJson,
  records,
  send,
  startServer,
  TestGateway,
  type TestServer,
  waitFor,
} from '../helpers/server.js';
import { rowCount } from '../helpers/store-reads.js';

let t: TestServer;
let gw: TestGateway;
let otherClientToken: string;
let run: string;
/** the server's clock runs this far ahead of the wall clock (a link's expiry without waiting) */
let ahead = 0;
const HOUR = 3_600_000;

const call = jsonCaller(
  () => t,
  () => otherClientToken,
);
const anonymous = async <T>(path: string) => {
  const res = await fetch(`${t.base}${path}`);
  return { status: res.status, body: (await res.json()) as T };
};
const auditOf = () =>
  t.server.db
    .selectFrom('audit_trail')
    .select(['actor', 'action', 'record_id', 'reason', 'new_value'])
    .where('record_type', '=', 'run-share')
    .orderBy('id')
    .execute();

beforeAll(async () => {
  t = await startServer({}, undefined, { clock: () => Date.now() + ahead });
  otherClientToken = await addOtherClient(t);
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('ut-1');
  await waitFor('the instrument', async () => (await rowCount(t.server, 'instruments')) === 1);
  const method = {
    id: 'tensile',
    standard: 'ISO 6892-1:2019',
    title: 'Tensile testing',
    definition: { measurands: [{ name: 'force', unit: '', channel: 'c' }], decisionRule: { kind: 'simple-acceptance' } },
  };
  expect((await call('/api/methods', postJson(method))).status).toBe(201);
  const sample = { id: 'S-1', organization: ORGANIZATION, description: 'steel bar', condition: 'intact', receivedAt: Date.now() - 60_000 };
  expect((await call('/api/lab-samples', postJson(sample))).status).toBe(201);
  run = (await call<{ id: string }>('/api/runs', postJson({ sample: 'S-1', method: 'tensile', instruments: ['ut-1'] }))).body.id;
  expect((await call(`/api/runs/${run}/start`, postJson({}))).status).toBe(200);
  expect(await send(t, gw, gw.sign(records('ut-1', 0, 4, 12.5)))).toBe('acked');
});
afterAll(async () => {
  await gw.end();
  await t.stop();
});

describe('a technician shares a run', () => {
  let share: CreatedShare;

  test('the link is created for the hours asked; only the token’s SHA-256 is stored; the audit trail has it', async () => {
    const res = await call<CreatedShare>(`/api/runs/${run}/shares`, postJson({ hours: 48, note: 'Mr Li, purchasing' }));
    expect(res.status).toBe(201);
    share = res.body;
    expect(share).toMatchObject({ run, state: 'active', note: 'Mr Li, purchasing', createdBy: 'technician', uses: 0, firstUsedAt: null });
    expect(share.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(share.expiresAt - share.createdAt).toBe(48 * HOUR);
    const stored = await t.server.db.selectFrom('run_shares').select('token_hash').where('id', '=', Number(share.id)).executeTakeFirstOrThrow();
    expect(stored.token_hash).toBe(createHash('sha256').update(share.token).digest('hex'));
    expect(JSON.stringify(await t.server.db.selectFrom('run_shares').selectAll().execute())).not.toContain(share.token);
    expect(await auditOf()).toEqual([expect.objectContaining({ actor: 'technician', action: 'create', record_id: `${run}/${share.id}` })]);
    // the list shows it without its token
    const list = await call<RunShare[]>(`/api/runs/${run}/shares`);
    expect(list.body.map((s) => s.id)).toEqual([share.id]);
    expect(JSON.stringify(list.body)).not.toContain(share.token);
  });

  test('anyone holding the link reads the run and its records; the first opening is audited once, every one counted', async () => {
    const first = await anonymous<PublicShare>(`/api/public/shares/${share.token}`);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ run: { id: run, sample: 'S-1', state: 'running', method: { id: 'tensile', title: 'Tensile testing' } } });
    expect(first.body.samples.map((s) => s.value)).toEqual([12.5, 12.5, 12.5, 12.5]);
    expect(first.body.results).toBeNull();
    expect(first.body.report).toBeNull();
    expect((await anonymous(`/api/public/shares/${share.token}`)).status).toBe(200);
    const opened = (await auditOf()).filter((a) => a.action === 'state-change');
    expect(opened).toEqual([expect.objectContaining({ actor: `share-link:${share.id}`, record_id: `${run}/${share.id}` })]);
    const [listed] = (await call<RunShare[]>(`/api/runs/${run}/shares`)).body;
    expect(listed).toMatchObject({ uses: 2 });
    expect(listed?.firstUsedAt).not.toBeNull();
    // no issued report: the link's download says so
    expect((await anonymous(`/api/public/shares/${share.token}/report.pdf`)).status).toBe(404);
  });

  test('revoked with a reason, the link answers 410 "revoked"; a second revocation is refused', async () => {
    expect((await call(`/api/runs/${run}/shares/${share.id}/revoke`, postJson({}))).status).toBe(400);
    const revoked = await call<RunShare>(`/api/runs/${run}/shares/${share.id}/revoke`, postJson({ reason: 'sent to the wrong person' }));
    expect(revoked).toMatchObject({ status: 200, body: { state: 'revoked', revokedBy: 'technician', revokeReason: 'sent to the wrong person' } });
    const gone = await anonymous<{ code: string; reason: string }>(`/api/public/shares/${share.token}`);
    expect(gone).toMatchObject({ status: 410, body: { code: 'E_GONE', reason: 'share.revoked' } });
    expect((await anonymous(`/api/public/shares/${share.token}/report.pdf`)).status).toBe(410);
    expect((await auditOf()).at(-1)).toMatchObject({ actor: 'technician', action: 'update', reason: 'sent to the wrong person' });
    expect((await call(`/api/runs/${run}/shares/${share.id}/revoke`, postJson({ reason: 'again' }))).status).toBe(409);
  });

  test('a link past its time answers 410 "expired" and is listed as expired', async () => {
    const short = (await call<CreatedShare>(`/api/runs/${run}/shares`, postJson({ hours: 1 }))).body;
    expect((await anonymous(`/api/public/shares/${short.token}`)).status).toBe(200);
    ahead = HOUR + 1000;
    try {
      expect(await anonymous(`/api/public/shares/${short.token}`)).toMatchObject({ status: 410, body: { reason: 'share.expired' } });
      const listed = (await call<RunShare[]>(`/api/runs/${run}/shares`)).body.find((s) => s.id === short.id);
      expect(listed?.state).toBe('expired');
    } finally {
      ahead = 0;
    }
  });
});

describe('refusals', () => {
  test('bad input: 400 naming the field', async () => {
    for (const [body, field] of [
      [{}, 'hours'],
      [{ hours: 0 }, 'hours'],
      [{ hours: 721 }, 'hours'],
      [{ hours: 1.5 }, 'hours'],
      [{ hours: 2, note: 'x'.repeat(201) }, 'note'],
    ] as const) {
      const res = await call<{ issues: { path: string }[] }>(`/api/runs/${run}/shares`, postJson(body));
      expect(res.status).toBe(400);
      expect(res.body.issues.map((i) => i.path)).toContain(field);
    }
    const badToken = await anonymous<{ issues: { path: string }[] }>('/api/public/shares/not-a-token');
    expect(badToken.status).toBe(400);
    expect(badToken.body.issues.map((i) => i.path)).toContain('token');
    expect((await call(`/api/runs/${run}/shares/abc/revoke`, postJson({ reason: 'x' }))).status).toBe(400);
  });

  test('an unknown token answers 404; an unknown run or share too', async () => {
    const unknown = await anonymous<{ reason: string }>(`/api/public/shares/${'A'.repeat(43)}`);
    expect(unknown).toMatchObject({ status: 404, body: { reason: 'share.not-found' } });
    expect((await call('/api/runs/run-999/shares', postJson({ hours: 1 }))).status).toBe(404);
    expect((await call(`/api/runs/${run}/shares/999/revoke`, postJson({ reason: 'x' }))).status).toBe(404);
  });

  test('clients, signatories and auditors may not create, list or revoke links; anonymous callers neither', async () => {
    for (const role of ['client', 'signatory', 'auditor'] as const) {
      expect((await call(`/api/runs/${run}/shares`, postJson({ hours: 1 }), role)).status).toBe(403);
      expect((await call(`/api/runs/${run}/shares`, {}, role)).status).toBe(403);
      expect((await call(`/api/runs/${run}/shares/1/revoke`, postJson({ reason: 'x' }), role)).status).toBe(403);
    }
    expect((await t.fetch(`/api/runs/${run}/shares`, postJson({ hours: 1 }), null)).status).toBe(401);
    // the admin may, as a lab worker
    expect((await call(`/api/runs/${run}/shares`, postJson({ hours: 1 }), 'admin')).status).toBe(201);
  });
});
