// A lab with something in it, made through the API and MQTT as its people and its gateway make it: one
// user per role signed in (a bearer token and a cookie session with its CSRF value each), an organization,
// instruments announced by a gateway, signed data, a method, a sample, a completed run with its
// certificate issued, a calibration and an accreditation. Generated requests then reach real records
// (and the code behind "found"), not only the 404 of an unknown id.
import { ROLES, type Role } from '../../src/index.js';
import { DEMO_METHOD } from '../../src/lab/demo.js';
import { LAB, TestGateway } from '../helpers/server.js';
import { ADMIN_PASSWORD, FUZZ_GATEWAY, GATEWAY_PASSWORD, type ServerProcess } from './server-process.js';

export const FUZZ_ORGANIZATION = 'org-fz';
export const PASSWORD = 'fuzz-user-secret-for-tests';
/** a user the admin's generated requests may change or disable (the signed-in ones are left alone) */
export const VICTIM = 'fz-victim';
export const INSTRUMENT = 'fz-utm';
/** signed batches of 1000 records: an export of them (some MB) outlasts a socket's buffers, so that a download can be cut mid-way */
const BATCHES = 24;

export interface Session {
  token: string;
  csrf: string;
}

export interface LabState {
  sessions: Record<Role, Session>;
  /** known values of each path parameter, by the route's first segments and the parameter's name ("runs:id") */
  ids: Record<string, string[]>;
  /** the completed run, whose certificate was issued */
  run: string;
  /** the time the records were made around */
  now: number;
}

async function call(server: ServerProcess, token: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${server.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`setting up the lab: ${method} ${path}: ${res.status} ${text}`);
  return text === '' ? undefined : JSON.parse(text);
}

async function signIn(server: ServerProcess, username: string, password: string): Promise<Session> {
  const res = await fetch(`${server.base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (!res.ok) throw new Error(`sign-in as ${username}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Session;
}

export async function setUpLab(server: ServerProcess): Promise<LabState> {
  const now = Date.now();
  const admin = await signIn(server, 'admin', ADMIN_PASSWORD);
  const as = (s: Session, method: string, path: string, body?: unknown): Promise<unknown> => call(server, s.token, method, path, body);
  await as(admin, 'POST', '/api/organizations', { id: FUZZ_ORGANIZATION, name: 'Fuzz client', contact: 'quality@fuzz.example' });
  for (const [username, role] of [...ROLES.filter((r) => r !== 'admin').map((r) => [r, r] as const), [VICTIM, 'technician'] as const])
    await as(admin, 'POST', '/api/users', {
      username,
      role,
      password: PASSWORD,
      ...(role === 'client' ? { organization: FUZZ_ORGANIZATION } : {}),
      ...(role === 'auditor' ? { grantUntil: now + 7 * 86_400_000 } : {}),
    });
  const sessions = { admin } as Record<Role, Session>;
  for (const role of ROLES) if (role !== 'admin') sessions[role] = await signIn(server, role, PASSWORD);

  // the gateway announces a testing machine and sends signed data while a run records it
  const gw = await TestGateway.connect({ mqttUrl: server.mqttUrl, password: GATEWAY_PASSWORD }, FUZZ_GATEWAY);
  await gw.announce([
    {
      id: INSTRUMENT,
      identity: { maker: 'Fuzz', model: 'universal-testing-machine', serialNumber: '1', kind: 'universal-testing-machine' },
      channels: [
        { name: 'force', unit: 'kN' },
        { name: 'extension', unit: 'mm' },
      ],
    },
  ]);
  await as(admin, 'POST', '/api/accreditations', {
    id: 'fz-accreditation',
    body: 'FUZZ',
    number: 'F-1',
    scope: [{ standard: DEMO_METHOD.standard, measurand: 'force', unit: 'kN', min: 0, max: 100 }],
    validFrom: now - 86_400_000,
    validTo: now + 365 * 86_400_000,
  });
  await waitForInstrument(server, admin.token);
  await as(admin, 'POST', `/api/instruments/${INSTRUMENT}/calibrations`, {
    calibratedAt: now - 86_400_000,
    laboratory: 'Fuzz calibration lab',
    certificate: 'FZ-CAL-1',
    results: [{ point: '10 kN', reference: 10, indication: 10.004, unit: 'kN' }],
    uncertainty: { value: 0.3, unit: '%', k: 2 },
    nextDueAt: now + 300 * 86_400_000,
  });
  await as(admin, 'POST', '/api/methods', {
    id: 'fz-tensile',
    standard: DEMO_METHOD.standard,
    title: DEMO_METHOD.title,
    definition: DEMO_METHOD.definition,
  });
  await as(admin, 'POST', '/api/lab-samples', {
    id: 'FZ-1',
    organization: FUZZ_ORGANIZATION,
    description: 'steel bar',
    condition: 'as received',
    receivedAt: now - 3_600_000,
  });
  const technician = sessions.technician;
  const run = (await as(technician, 'POST', '/api/runs', { sample: 'FZ-1', method: 'fz-tensile', instruments: [INSTRUMENT] })) as { id: string };
  await as(technician, 'POST', `/api/runs/${run.id}/start`, { reason: 'fuzz run' });
  // enough signed data that an export is larger than a socket's buffers (a cancelled download is cut mid-way)
  let seq = 0;
  for (let batch = 0; batch < BATCHES; batch++) {
    const samples = Array.from({ length: 1000 }, (_, i) => ({
      seq: seq + i,
      instrument: INSTRUMENT,
      channel: i % 2 === 0 ? 'force' : 'extension',
      ts: Date.now() - 1000 + i,
      value: (i % 500) / 10,
      unit: i % 2 === 0 ? 'kN' : 'mm',
      quality: 'good' as const,
    }));
    seq += samples.length;
    await gw.client.publishAsync(`labtrace/v1/${LAB}/${FUZZ_GATEWAY}/DATA`, Buffer.from(gw.seal(samples)), { qos: 1 });
  }
  const deadline = Date.now() + 60_000;
  while (gw.acks.length < BATCHES) {
    if (Date.now() > deadline) throw new Error(`setting up the lab: ${gw.acks.length} of ${BATCHES} batches acknowledged`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await gw.end();
  await as(technician, 'POST', `/api/runs/${run.id}/stop`, { reason: 'fuzz run done' });
  const draft = (await as(technician, 'POST', '/api/certificates', { run: run.id })) as { id: string };
  await as(sessions.signatory, 'POST', `/api/certificates/${draft.id}/issue`, {});
  // a second run left created, not started
  const idle = (await as(technician, 'POST', '/api/runs', { sample: 'FZ-1', method: 'fz-tensile', instruments: [INSTRUMENT] })) as { id: string };
  return {
    sessions,
    now,
    run: run.id,
    ids: {
      'users:username': [VICTIM, 'nobody'],
      'instruments:id': [INSTRUMENT],
      'runs:id': [run.id, idle.id],
      'runs:alarmId': ['1', '0'],
      'certificates:id': [draft.id],
      'public:id': [draft.id],
      'verify:id': [draft.id],
      'methods:id': ['fz-tensile'],
      'lab-samples:id': ['FZ-1'],
      'accreditations:id': ['fz-accreditation'],
      'gateways:id': [FUZZ_GATEWAY],
      'measurement:gateway': [FUZZ_GATEWAY],
      'measurement:seq': ['0', '1', String(BATCHES * 1000 - 1), String(BATCHES * 1000)],
    },
  };
}

async function waitForInstrument(server: ServerProcess, token: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const list = (await call(server, token, 'GET', '/api/instruments')) as { id: string }[];
    if (list.some((i) => i.id === INSTRUMENT)) return;
    if (Date.now() > deadline) throw new Error('setting up the lab: the instrument was not announced');
    await new Promise((r) => setTimeout(r, 50));
  }
}
