import { createHash } from 'node:crypto';
import type { Page } from '@labtrace/protocols/api';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { POLICY, type AuditEntry } from '../../src/index.js';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import { send, startServer, TestGateway, USER_PASSWORD, type TestServer } from '../helpers/server.js';
import { serverMigrations } from '../../src/migrations.js';

let t: TestServer;
const ALARM = 'lim/ut-1/c#1';
const setup = { username: 'test-setup', role: 'system' };
/** dana's session, from the login mutation, ended by the logout mutation (which runs after it) */
let danaSession: string | undefined;
/** the API token and the enrollment token the mutations create, then revoke */
let apiTokenId: number | undefined;
let enrollmentTokenId: number | undefined;
let webhookId = '';
const method = {
  standard: 'ISO 6892-1:2019',
  title: 'Tensile testing',
  definition: { measurands: [{ name: 'force', unit: 'kN', channel: 'c' }], decisionRule: { kind: 'simple-acceptance' as const } },
};
beforeAll(async () => {
  t = await startServer({ log: { minCheckpointIntervalMs: 100 } });
  // lab records for the run mutations: an instrument, a sample, a method and a planned run (run-1) to abort
  await t.server.registry.recordBirth('lab-t', {
    v: 1,
    gateway: 'gw-a',
    session: 1,
    version: 't',
    instruments: [
      { id: 'ut-1', identity: { maker: 'm', model: 'x', serialNumber: '1' }, channels: [{ name: 'c', unit: 'kN' }] },
      { id: 'ut-c', identity: { maker: 'm', model: 'x', serialNumber: '2' }, channels: [{ name: 'c', unit: 'kN' }] },
    ],
  });
  await t.server.users.createOrganization(setup, 'org-audit', 'Client for the audit tests');
  await t.server.users.create(setup, { username: 'dana', role: 'technician', password: USER_PASSWORD });
  await t.server.labRecords.createSample(setup, {
    id: 'S-0',
    organization: 'org-audit',
    description: 'bar',
    condition: 'intact',
    receivedAt: Date.now(),
  });
  await t.server.labRecords.createMethod(setup, {
    id: 'm-0',
    ...method,
    definition: { ...method.definition, instrumentTypes: [], limits: [], results: [] },
  });
  await t.server.runs.create({ username: 'technician', role: 'technician' }, { sample: 'S-0', method: 'm-0', instruments: ['ut-1'] });
  // a completed, measured run (run-2) with a calibrated instrument, for the certificate mutations
  const now = Date.now();
  await t.server.calibration.record(setup, 'ut-c', {
    calibratedAt: now - 86_400_000,
    laboratory: 'Calibration Lab A',
    certificate: 'CAL-C',
    results: [{ point: '50 kN', reference: 50, indication: 50.02, unit: 'kN' }],
    uncertainty: { value: 0.03, unit: 'kN', k: 2 },
    nextDueAt: now + 365 * 86_400_000,
  });
  await t.server.users.createOrganization(setup, 'org-cert', 'Client C', 'quality@client-c.example');
  await t.server.labRecords.createSample(setup, {
    id: 'S-C',
    organization: 'org-cert',
    description: 'bar',
    condition: 'intact',
    receivedAt: Date.now(),
  });
  await t.server.labRecords.createMethod(setup, {
    id: 'm-cert',
    ...method,
    definition: {
      ...method.definition,
      instrumentTypes: [],
      limits: [],
      results: [{ name: 'Fm', title: 'maximum force', measurand: 'force', statistic: 'max', resolution: 0.01 }],
    },
  });
  const tech = { username: 'technician', role: 'technician' };
  await t.server.runs.create(tech, { sample: 'S-C', method: 'm-cert', instruments: ['ut-c'] });
  await t.server.runs.start(tech, 'run-2');
  const gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('ut-1', 'ut-c');
  const samples = [41.5, 42.1].map((value, seq) => ({
    seq,
    instrument: 'ut-c',
    channel: 'c',
    ts: now + seq,
    value,
    unit: 'kN',
    quality: 'good' as const,
  }));
  expect(await send(t, gw, gw.sign(samples))).toBe('acked');
  await gw.end();
  await t.server.runs.stop(tech, 'run-2');
  // an inspection alarm of run-1 as stored before a restart (the engine's own path is tested in lab/run-alarms)
  const alarm = {
    id: ALARM,
    ruleId: 'lim',
    kind: 'limits',
    severity: 'alarm',
    instrument: 'ut-1',
    channel: 'c',
    message: 'ut-1 c 150 is above 100',
    raisedAt: 1,
    value: 150,
    active: false,
    occurrences: 1,
    returnedAt: 2,
    acknowledged: null,
    cleared: null,
  };
  t.server.database.sqlite
    .prepare(
      "INSERT INTO run_alarms (run, alarm, event, at, rule_id, severity, instrument, channel, detail) VALUES ('run-1', ?, 'raised', 1, 'lim', 'alarm', 'ut-1', 'c', ?)",
    )
    .run(ALARM, JSON.stringify(alarm));
});
afterAll(async () => {
  await t.stop();
});

const json = (method: string, body: unknown): RequestInit => ({
  method,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

/** every entry the query selects, read page by page (newest first), returned oldest first */
async function trail(query = ''): Promise<AuditEntry[]> {
  const entries: AuditEntry[] = [];
  for (let cursor: string | null | undefined; cursor !== null;) {
    const sep = query === '' ? '?' : '&';
    const res = await t.fetch(`/api/audit-trail${query}${sep}limit=500${cursor === undefined ? '' : `&cursor=${cursor}`}`, {}, 'auditor');
    expect(res.status).toBe(200);
    const page = (await res.json()) as Page<AuditEntry>;
    entries.push(...page.items);
    cursor = page.next;
  }
  return entries.reverse();
}

/** one request per mutating route that writes the audit trail, and the entry it must leave */
const MUTATIONS: Record<string, () => Promise<{ res: Response; expect: Partial<AuditEntry> }>> = {
  'POST /api/auth/login': async () => {
    const res = await t.fetch('/api/auth/login', json('POST', { username: 'dana', password: USER_PASSWORD }), null);
    danaSession = ((await res.clone().json()) as { token: string }).token;
    return { res, expect: { actor: 'dana', actorRole: 'technician', action: 'login', recordType: 'session', recordId: 'dana' } };
  },
  'POST /api/auth/logout': async () => {
    if (danaSession === undefined) throw new Error('the login mutation runs first');
    const res = await fetch(`${t.base}/api/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${danaSession}` } });
    return { res, expect: { actor: 'dana', action: 'logout', recordType: 'session', recordId: 'dana' } };
  },
  'POST /api/organizations': async () => ({
    res: await t.fetch('/api/organizations', json('POST', { id: 'org-b', name: 'Client B' })),
    expect: { actor: 'admin', action: 'create', recordType: 'organization', recordId: 'org-b' },
  }),
  'POST /api/users': async () => ({
    res: await t.fetch('/api/users', json('POST', { username: 'carol', role: 'client', organization: 'org-b' })),
    expect: { actor: 'admin', action: 'create', recordType: 'user', recordId: 'carol' },
  }),
  'PATCH /api/users/:username': async () => ({
    res: await t.fetch('/api/users/carol', json('PATCH', { disabled: true, reason: 'contract ended' })),
    expect: { actor: 'admin', action: 'update', recordType: 'user', recordId: 'carol', reason: 'contract ended' },
  }),
  'POST /api/users/:username/password': async () => ({
    res: await t.fetch('/api/users/carol/password', json('POST', {})),
    expect: { actor: 'admin', action: 'password-set', recordType: 'user', recordId: 'carol' },
  }),
  'POST /api/auth/tokens': async () => {
    const res = await t.fetch('/api/auth/tokens', json('POST', { name: 'nightly export', ttlDays: 7 }), 'technician');
    apiTokenId = ((await res.clone().json()) as { id: number }).id;
    return { res, expect: { actor: 'technician', action: 'token-created', recordType: 'user', recordId: 'technician' } };
  },
  'POST /api/auth/tokens/:id/revoke': async () => ({
    res: await t.fetch(`/api/auth/tokens/${apiTokenId}/revoke`, json('POST', { reason: 'export moved' }), 'technician'),
    expect: { actor: 'technician', action: 'state-change', recordType: 'api-token', recordId: `technician/${apiTokenId}`, reason: 'export moved' },
  }),
  'POST /api/gateways/enrollment-tokens': async () => {
    const res = await t.fetch('/api/gateways/enrollment-tokens', json('POST', { gateway: 'gw-new', ttlHours: 1 }));
    enrollmentTokenId = ((await res.clone().json()) as { id: number }).id;
    return { res, expect: { actor: 'admin', action: 'create', recordType: 'enrollment-token', recordId: `gw-new/${enrollmentTokenId}` } };
  },
  'POST /api/gateways/enrollment-tokens/:id/revoke': async () => ({
    res: await t.fetch(`/api/gateways/enrollment-tokens/${enrollmentTokenId}/revoke`, json('POST', { reason: 'wrong site' })),
    expect: { actor: 'admin', action: 'state-change', recordType: 'enrollment-token', recordId: `gw-new/${enrollmentTokenId}`, reason: 'wrong site' },
  }),
  'POST /api/gateways/:id/keys/:keyId/revoke': async () => {
    const keys = (await (await t.fetch('/api/gateways/gw-p/keys')).json()) as { keyId: string; status: string }[];
    const keyId = keys.find((k) => k.status === 'active')?.keyId ?? '';
    return {
      res: await t.fetch(`/api/gateways/gw-p/keys/${keyId}/revoke`, json('POST', { reason: 'gateway retired' })),
      expect: { actor: 'admin', action: 'state-change', recordType: 'gateway-key', recordId: `gw-p/${keyId}`, reason: 'gateway retired' },
    };
  },
  'POST /api/lab-samples': async () => ({
    res: await t.fetch(
      '/api/lab-samples',
      json('POST', { id: 'S-1', organization: 'org-audit', description: 'steel bar', condition: 'as received', receivedAt: Date.now() }),
      'technician',
    ),
    expect: { actor: 'technician', action: 'create', recordType: 'lab-sample', recordId: 'S-1' },
  }),
  'POST /api/methods': async () => ({
    res: await t.fetch('/api/methods', json('POST', { id: 'tensile', ...method }), 'technician'),
    expect: { actor: 'technician', action: 'create', recordType: 'method', recordId: 'tensile', newValue: expect.objectContaining({ version: 1 }) },
  }),
  'POST /api/methods/:id/versions': async () => ({
    res: await t.fetch(
      '/api/methods/tensile/versions',
      json('POST', { ...method, title: 'Tensile testing, method A', reason: 'method A named' }),
      'admin',
    ),
    expect: { actor: 'admin', action: 'update', recordType: 'method', recordId: 'tensile', reason: 'method A named' },
  }),
  'POST /api/instruments/:id/status': async () => ({
    res: await t.fetch('/api/instruments/ut-1/status', json('POST', { status: 'in-service', reason: 'checked after the move' }), 'technician'),
    expect: { actor: 'technician', action: 'update', recordType: 'instrument-status', recordId: 'ut-1', reason: 'checked after the move' },
  }),
  // zero asked of a balance whose gateway sends it (announced in its BIRTH) and is connected
  'POST /api/instruments/:id/commands': async () => {
    const gw = await TestGateway.connect(t, 'gw-b');
    await gw.announce([
      { id: 'bal-1', identity: { maker: 'm', model: 'b', serialNumber: '3' }, channels: [{ name: 'mass', unit: 'g' }], commands: ['zero'] },
    ]);
    for (let i = 0; i < 200 && (await t.server.registry.instrument('bal-1')) === undefined; i++) await new Promise((r) => setTimeout(r, 20));
    const res = await t.fetch('/api/instruments/bal-1/commands', json('POST', { command: 'zero' }), 'technician');
    await gw.end();
    return { res, expect: { actor: 'technician', action: 'create', recordType: 'instrument-command', recordId: 'bal-1' } };
  },
  'POST /api/instruments/:id/calibrations': async () => ({
    res: await t.fetch(
      '/api/instruments/ut-1/calibrations',
      json('POST', {
        calibratedAt: Date.now() - 1000,
        laboratory: 'Calibration Lab A',
        certificate: 'CAL-1',
        results: [{ point: '50 kN', reference: 50, indication: 50.02, unit: 'kN' }],
        uncertainty: { value: 0.03, unit: 'kN' },
        nextDueAt: Date.now() + 365 * 86_400_000,
      }),
      'technician',
    ),
    // (record ids count every instrument's calibrations: ut-c's came first)
    expect: { actor: 'technician', action: 'create', recordType: 'calibration', recordId: 'ut-1/2' },
  }),
  'POST /api/instruments/:id/checks': async () => ({
    res: await t.fetch(
      '/api/instruments/ut-1/checks',
      json('POST', { checkedAt: Date.now(), result: 'pass', description: 'check weight 20 kN: +0.1 %' }),
      'technician',
    ),
    expect: { actor: 'technician', action: 'create', recordType: 'instrument-check', recordId: 'ut-1/1', reason: 'check weight 20 kN: +0.1 %' },
  }),
  // the calibrating lab's certificate (a PDF) attached to the calibration recorded above, with its digest
  'PUT /api/instruments/:id/calibrations/:record/certificate': async () => {
    const pdf = Buffer.from('%PDF-1.4\ntrailer << >>\n%%EOF\n', 'latin1');
    return {
      res: await t.fetch(
        '/api/instruments/ut-1/calibrations/2/certificate?filename=CAL-1.pdf',
        { method: 'PUT', headers: { 'content-type': 'application/pdf' }, body: pdf },
        'technician',
      ),
      expect: {
        actor: 'technician',
        action: 'create',
        recordType: 'calibration-certificate',
        recordId: 'ut-1/2',
        newValue: { filename: 'CAL-1.pdf', size: pdf.length, sha256: createHash('sha256').update(pdf).digest('hex') },
      },
    };
  },
  'POST /api/accreditations': async () => ({
    res: await t.fetch(
      '/api/accreditations',
      json('POST', {
        id: 'acc-audit',
        body: 'CNAS',
        number: 'L0001',
        validFrom: Date.now() - 86_400_000,
        validTo: Date.now() + 365 * 86_400_000,
        scope: [{ standard: 'ISO 6892-1:2019', measurand: 'force', unit: 'kN', min: 0, max: 100 }],
      }),
    ),
    expect: { actor: 'admin', action: 'create', recordType: 'accreditation', recordId: 'acc-audit' },
  }),
  'POST /api/accreditations/:id/scope': async () => ({
    res: await t.fetch(
      '/api/accreditations/acc-audit/scope',
      json('POST', {
        scope: [{ standard: 'ISO 6892-1:2019', measurand: 'force', unit: 'kN', min: 0, max: 250 }],
        reason: 'range extended to 250 kN',
      }),
    ),
    expect: {
      actor: 'admin',
      action: 'update',
      recordType: 'accreditation',
      recordId: 'acc-audit',
      oldValue: expect.objectContaining({ scopeVersion: 1 }),
      newValue: expect.objectContaining({ scopeVersion: 2 }),
      reason: 'range extended to 250 kN',
    },
  }),
  'POST /api/accreditations/:id/events': async () => ({
    res: await t.fetch('/api/accreditations/acc-audit/events', json('POST', { kind: 'suspend', reason: 'surveillance visit overdue' })),
    expect: {
      actor: 'admin',
      action: 'state-change',
      recordType: 'accreditation',
      recordId: 'acc-audit',
      oldValue: { status: 'active' },
      newValue: { status: 'suspended', event: 'suspend' },
      reason: 'surveillance visit overdue',
    },
  }),
  'POST /api/runs': async () => ({
    res: await t.fetch('/api/runs', json('POST', { sample: 'S-1', method: 'tensile', instruments: ['ut-1'] }), 'technician'),
    expect: { actor: 'technician', action: 'create', recordType: 'run', recordId: 'run-3' },
  }),
  'POST /api/runs/:id/start': async () => ({
    res: await t.fetch('/api/runs/run-3/start', json('POST', {}), 'technician'),
    expect: {
      action: 'state-change',
      recordType: 'run',
      recordId: 'run-3',
      oldValue: { state: 'planned' },
      newValue: expect.objectContaining({ state: 'running' }),
    },
  }),
  'POST /api/runs/:id/stop': async () => ({
    res: await t.fetch('/api/runs/run-3/stop', json('POST', {}), 'technician'),
    expect: {
      action: 'state-change',
      recordType: 'run',
      recordId: 'run-3',
      oldValue: { state: 'running' },
      newValue: expect.objectContaining({ state: 'completed' }),
    },
  }),
  'POST /api/runs/:id/abort': async () => ({
    res: await t.fetch('/api/runs/run-1/abort', json('POST', { reason: 'sample withdrawn by the client' }), 'technician'),
    expect: { action: 'state-change', recordType: 'run', recordId: 'run-1', reason: 'sample withdrawn by the client' },
  }),
  'POST /api/runs/:id/shares': async () => ({
    res: await t.fetch('/api/runs/run-3/shares', json('POST', { hours: 24, note: 'purchasing' }), 'technician'),
    expect: { actor: 'technician', action: 'create', recordType: 'run-share', recordId: 'run-3/1', newValue: expect.objectContaining({ hours: 24 }) },
  }),
  'POST /api/runs/:id/shares/:shareId/revoke': async () => ({
    res: await t.fetch('/api/runs/run-3/shares/1/revoke', json('POST', { reason: 'sent to the wrong person' }), 'technician'),
    expect: {
      actor: 'technician',
      action: 'update',
      recordType: 'run-share',
      recordId: 'run-3/1',
      oldValue: { state: 'active' },
      newValue: { state: 'revoked' },
      reason: 'sent to the wrong person',
    },
  }),
  'POST /api/runs/:id/alarms/:alarmId/acknowledge': async () => ({
    res: await t.fetch(`/api/runs/run-1/alarms/${encodeURIComponent(ALARM)}/acknowledge`, json('POST', { reason: 'grips slipped' }), 'technician'),
    expect: {
      actor: 'technician',
      action: 'update',
      recordType: 'run-alarm',
      recordId: `run-1/${ALARM}`,
      oldValue: { state: 'open' },
      newValue: { state: 'acknowledged' },
      reason: 'grips slipped',
    },
  }),
  'POST /api/certificates': async () => ({
    res: await t.fetch('/api/certificates', json('POST', { run: 'run-2' }), 'technician'),
    expect: {
      actor: 'technician',
      action: 'create',
      recordType: 'certificate',
      recordId: 'TR-lab-t-000001',
      newValue: { run: 'run-2', status: 'draft' },
    },
  }),
  'POST /api/certificates/:id/issue': async () => ({
    res: await t.fetch('/api/certificates/TR-lab-t-000001/issue', json('POST', {}), 'signatory'),
    expect: {
      actor: 'signatory',
      action: 'state-change',
      recordType: 'certificate',
      recordId: 'TR-lab-t-000001',
      oldValue: { status: 'draft' },
      newValue: expect.objectContaining({ status: 'valid' }),
    },
  }),
  'POST /api/certificates/:id/amend': async () => ({
    res: await t.fetch('/api/certificates/TR-lab-t-000001/amend', json('POST', { reason: 'sample description corrected' }), 'signatory'),
    expect: {
      actor: 'signatory',
      action: 'create',
      recordType: 'certificate',
      recordId: 'TR-lab-t-000002',
      newValue: expect.objectContaining({ amends: 'TR-lab-t-000001' }),
      reason: 'sample description corrected',
    },
  }),
  'POST /api/certificates/:id/revoke': async () => ({
    res: await t.fetch('/api/certificates/TR-lab-t-000002/revoke', json('POST', { reason: 'wrong specimen' }), 'signatory'),
    expect: {
      actor: 'signatory',
      action: 'state-change',
      recordType: 'certificate',
      recordId: 'TR-lab-t-000002',
      newValue: expect.objectContaining({ status: 'revoked' }),
      reason: 'wrong specimen',
    },
  }),
  'POST /api/runs/:id/alarms/:alarmId/clear': async () => ({
    res: await t.fetch(`/api/runs/run-1/alarms/${encodeURIComponent(ALARM)}/clear`, json('POST', { reason: 'specimen re-tested' }), 'admin'),
    expect: {
      actor: 'admin',
      action: 'update',
      recordType: 'run-alarm',
      recordId: `run-1/${ALARM}`,
      oldValue: { state: 'acknowledged' },
      newValue: { state: 'cleared' },
      reason: 'specimen re-tested',
    },
  }),
  'POST /api/auth/password': async () => ({
    res: await t.fetch('/api/auth/password', json('POST', { currentPassword: USER_PASSWORD, newPassword: 'signatory-new-secret' }), 'signatory'),
    expect: { actor: 'signatory', action: 'password-set', recordType: 'user', recordId: 'signatory' },
  }),
  'PATCH /api/auth/preferences': async () => ({
    res: await t.fetch('/api/auth/preferences', json('PATCH', { locale: 'zh-CN', timeZone: 'Asia/Shanghai' }), 'technician'),
    expect: {
      actor: 'technician',
      action: 'update',
      recordType: 'user-preferences',
      recordId: 'technician',
      newValue: { locale: 'zh-CN', timeZone: 'Asia/Shanghai' },
    },
  }),
  'POST /api/notifications/webhooks': async () => {
    // a receiver that is not there (the discard port): its deliveries fail, which the retry below needs
    const res = await t.fetch('/api/notifications/webhooks', json('POST', { name: 'lab group', owner: 'admin', url: 'http://127.0.0.1:9/hook' }));
    webhookId = ((await res.clone().json()) as { id: string }).id;
    return { res, expect: { actor: 'admin', action: 'create', recordType: 'notification-webhook', recordId: webhookId } };
  },
  'PATCH /api/notifications/webhooks/:id': async () => ({
    res: await t.fetch(`/api/notifications/webhooks/${webhookId}`, json('PATCH', { name: 'lab robot', reason: 'renamed by the lab' })),
    expect: { actor: 'admin', action: 'update', recordType: 'notification-webhook', recordId: webhookId, reason: 'renamed by the lab' },
  }),
  'POST /api/notifications/deliveries/:id/retry': async () => {
    const sent = await t.fetch('/api/notifications/test', json('POST', { channel: 'webhook', webhook: webhookId }));
    const { id } = (await sent.json()) as { id: number };
    // as if every attempt had failed (the back-off would take minutes): only a failed delivery is retried
    t.server.database.sqlite.prepare("UPDATE notification_outbox SET status = 'failed' WHERE id = ?").run(id);
    return {
      res: await t.fetch(`/api/notifications/deliveries/${id}/retry`, json('POST', {})),
      expect: { actor: 'admin', action: 'state-change', recordType: 'notification-delivery', recordId: String(id), newValue: { status: 'pending' } },
    };
  },
  'DELETE /api/notifications/webhooks/:id': async () => ({
    res: await t.fetch(`/api/notifications/webhooks/${webhookId}`, json('DELETE', { reason: 'robot retired' })),
    expect: { actor: 'admin', action: 'delete', recordType: 'notification-webhook', recordId: webhookId, reason: 'robot retired' },
  }),
};

test('every mutating route that writes the audit trail is exercised here', () => {
  // a response to a supervisor's finding needs a running supervisor: server/test/standing/standing.test.ts checks its
  // entry (by the admin, record type supervision-response) against a real one
  const elsewhere = new Set(['POST /api/standing/findings/:id/response']);
  const audited = POLICY.filter((r) => r.audit === true)
    .map((r) => `${r.method} ${r.path}`)
    .filter((r) => !elsewhere.has(r));
  expect(Object.keys(MUTATIONS).sort()).toEqual(audited.sort());
});

describe.each(Object.keys(MUTATIONS))('%s', (name) => {
  test('leaves an audit entry: who, when, what, old and new values', async () => {
    const before = Date.now();
    const last = (await trail()).at(-1)?.id ?? 0;
    const run = MUTATIONS[name];
    if (!run) throw new Error(name);
    const { res, expect: expected } = await run();
    expect(res.status).toBeLessThan(300);
    // the entries the request made; completing a run also records its results, as the system
    // an amendment is issued at once: the new certificate's issue and the old one's change of status follow its creation
    const added = (await trail()).filter(
      (e) =>
        e.id > last &&
        !(name === 'POST /api/runs/:id/stop' && e.recordType === 'run-results') &&
        !(name === 'POST /api/certificates/:id/amend' && e.action === 'state-change'),
    );
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject(expected);
    expect(added[0]?.at).toBeGreaterThanOrEqual(before);
  });
});

test('a change records the old and the new values, never a password hash', async () => {
  const [entry] = await trail('?recordType=user&recordId=carol&action=update');
  expect(entry?.oldValue).toMatchObject({ disabled: false });
  expect(entry?.newValue).toMatchObject({ disabled: true });
  expect(JSON.stringify(await trail())).not.toMatch(/scrypt\$/);
});

test('a change without a reason is refused and leaves nothing', async () => {
  const count = (await trail()).length;
  const res = await t.fetch('/api/users/carol', json('PATCH', { disabled: false }));
  expect(res.status).toBe(400);
  expect(((await res.json()) as { error: string }).error).toContain('body: reason:');
  expect(await trail()).toHaveLength(count);
});

test('the trail is append-only in the database itself', () => {
  const db = t.server.database.sqlite;
  expect(() => db.prepare("UPDATE audit_trail SET reason = 'edited' WHERE id = 1").run()).toThrow(/append-only/);
  expect(() => db.prepare('DELETE FROM audit_trail WHERE id = 1').run()).toThrow(/append-only/);
});

test('each entry is hashed over the previous one, and the chain verifies', async () => {
  const entries = await trail();
  expect(entries.length).toBeGreaterThan(5);
  for (let i = 1; i < entries.length; i++) expect(entries[i]?.prevHash).toBe(entries[i - 1]?.hash);
  expect(await t.server.audit.verify()).toBeUndefined();
});

test('a rewritten entry breaks the chain at that entry', async () => {
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const { LabDatabase } = await import('../../src/store/database.js');
  const { AuditTrail, SYSTEM_ACTOR } = await import('../../src/audit/audit-trail.js');
  const database = new LabDatabase(mkdtempSync(path.join(tmpdir(), 'labtrace-audit-')), serverMigrations);
  try {
    await database.migrate();
    const audit = new AuditTrail(database);
    for (const id of ['a', 'b', 'c'])
      await database.db
        .transaction()
        .execute((trx) => audit.recordIn(trx, SYSTEM_ACTOR, { action: 'create', recordType: 'organization', recordId: id, newValue: { id } }));
    // someone with write access to the file drops the trigger and edits the middle entry
    database.sqlite.exec('DROP TRIGGER audit_trail_no_update');
    database.sqlite.prepare("UPDATE audit_trail SET record_id = 'z' WHERE id = 2").run();
    expect(await audit.verify()).toBe(2);
  } finally {
    await database.close();
  }
});

test('every entry is anchored in the transparency log by its hash alone', async () => {
  const log = t.server.log;
  if (!log) throw new Error('log not open');
  await t.server.audit.anchor(log);
  const entries = await trail();
  const anchored = log.entries(0, log.size).filter((e) => e.kind === 'audit-event');
  expect(anchored).toHaveLength(entries.length);
  for (const e of entries) {
    const leaf = anchored.find((a) => a.index === e.logIndex);
    expect(JSON.parse(new TextDecoder().decode(leaf?.data))).toEqual({ at: e.at, hash: e.hash, id: e.id });
  }
  // the public log learns no names
  expect(anchored.map((a) => new TextDecoder().decode(a.data)).join()).not.toMatch(/carol|admin/);
});

test('auditors and admins search the trail; other roles may not', async () => {
  expect((await trail('?actor=technician')).every((e) => e.actor === 'technician')).toBe(true);
  expect((await t.fetch('/api/audit-trail?action=create', {}, 'admin')).status).toBe(200);
  expect((await t.fetch('/api/audit-trail', {}, 'technician')).status).toBe(403);
  expect((await t.fetch('/api/audit-trail?action=drop', {}, 'auditor')).status).toBe(400);
});

test('paging by id, newest first: 1,000 entries of one millisecond come exactly once each, with since and until as filters', async () => {
  const at = Date.UTC(2026, 10, 27, 10, 0, 0, 123);
  const before = new AuditTrail(t.server.database, () => at - 1);
  const still = new AuditTrail(t.server.database, () => at);
  const after = new AuditTrail(t.server.database, () => at + 1);
  const actor = { username: 'technician', role: 'technician' };
  const db = t.server.database.db;
  await db.transaction().execute((trx) => before.recordIn(trx, actor, { action: 'create', recordType: 'burst', recordId: 'before' }));
  const ids = new Set<number>();
  await db.transaction().execute(async (trx) => {
    for (let i = 0; i < 1000; i++) ids.add((await still.recordIn(trx, actor, { action: 'create', recordType: 'burst', recordId: `b-${i}` })).id);
  });
  await db.transaction().execute((trx) => after.recordIn(trx, actor, { action: 'create', recordType: 'burst', recordId: 'after' }));
  // pages of 7 (not a divisor of 1,000), each page ending inside the shared millisecond
  const seen: number[] = [];
  let pages = 0;
  for (let cursor: string | null | undefined; cursor !== null; pages++) {
    const res = await t.fetch(
      `/api/audit-trail?recordType=burst&since=${at}&until=${at}&limit=7${cursor === undefined ? '' : `&cursor=${cursor}`}`,
      {},
      'auditor',
    );
    expect(res.status).toBe(200);
    const page = (await res.json()) as Page<AuditEntry>;
    expect(page.items.length).toBeLessThanOrEqual(7);
    expect(page.items.every((e) => e.at === at)).toBe(true);
    seen.push(...page.items.map((e) => e.id));
    cursor = page.next;
  }
  expect(pages).toBe(Math.ceil(1000 / 7));
  expect(seen).toHaveLength(1000);
  expect(new Set(seen)).toEqual(ids);
  // newest first: ids strictly falling
  expect(seen.every((id, i) => i === 0 || id < (seen[i - 1] ?? 0))).toBe(true);
  // without the time filter the neighbours come too, in id order
  const all = await trail('?recordType=burst');
  expect(all.map((e) => e.recordId)).toEqual(['before', ...[...Array(1000).keys()].map((i) => `b-${i}`), 'after']);
});

test("a page: the cursor must be a previous page's `next`, the limit within 1..500", async () => {
  for (const [query, field] of [
    ['cursor=abc', 'cursor'],
    ['cursor=-1', 'cursor'],
    ['limit=0', 'limit'],
    ['limit=501', 'limit'],
    ['after=3', 'after'],
  ] as const) {
    const res = await t.fetch(`/api/audit-trail?${query}`, {}, 'auditor');
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toContain(field);
  }
});

test('an entry appended is announced to the lab room (list `audit`), a burst once per interval', async () => {
  const { announceAuditChanges } = await import('../../src/audit/audit-live.js');
  const told: string[] = [];
  const trailOf = new AuditTrail(t.server.database);
  const announcer = announceAuditChanges(trailOf, (change) => told.push(`${change.list}:${change.id}`), 60_000);
  const record = (recordId: string) =>
    t.server.database.db
      .transaction()
      .execute((trx) => trailOf.recordIn(trx, { username: 'technician', role: 'technician' }, { action: 'create', recordType: 'burst', recordId }));
  const first = await record('live-1');
  // the first at once; the next ones wait for the interval's end (an hour away here), so nothing more is told
  await record('live-2');
  expect(told).toEqual([`audit:${first.id}`]);
  announcer.stop();
  await record('live-3');
  expect(told).toEqual([`audit:${first.id}`]);
});

test('every record type the services write is one the dashboard offers (AUDIT_RECORD_TYPES)', async () => {
  const { AUDIT_RECORD_TYPES } = await import('@labtrace/protocols/api');
  const { readdir, readFile } = await import('node:fs/promises');
  const path = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  // the compiled services (dist/src), beside this compiled test (dist/test/audit)
  const src = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');
  const written = new Set<string>();
  for (const entry of await readdir(src, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.js')) continue;
    const text = await readFile(path.join(entry.parentPath, entry.name), 'utf8');
    for (const m of text.matchAll(/recordType: '([a-z-]+)'/g)) written.add(m[1] ?? '');
  }
  expect(written.size).toBeGreaterThan(10);
  expect([...written].filter((type) => !(AUDIT_RECORD_TYPES as readonly string[]).includes(type))).toEqual([]);
});
