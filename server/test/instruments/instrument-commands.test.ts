// Zero and tare asked through the API: the request reaches the instrument's gateway as a CMD only when the
// gateway announced that it sends that command to the instrument and is connected; each one sent is in the audit
// trail first; every refusal names why and sends nothing. (What the gateway and the balance then do is tested in
// the gateway's balance-commands test.)
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { startServer, TestGateway, type TestServer } from '../helpers/server.js';

let t: TestServer;
let gw: TestGateway;

const post = (id: string, body: unknown, role: Parameters<TestServer['fetch']>[2] = 'technician'): Promise<Response> =>
  t.fetch(`/api/instruments/${id}/commands`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }, role);

async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const commandEntries = async (): Promise<{ actor: string; recordId: string; newValue: unknown }[]> => {
  const page = (await (await t.fetch('/api/audit-trail?recordType=instrument-command&limit=100')).json()) as {
    items: { actor: string; recordId: string; newValue: unknown }[];
  };
  return page.items;
};

beforeAll(async () => {
  t = await startServer();
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.announce([
    {
      id: 'bal-z',
      identity: { maker: 'Mettler Toledo', model: 'XPR205', serialNumber: 'B-1' },
      channels: [{ name: 'mass', unit: 'g' }],
      commands: ['zero'],
    },
    { id: 'bal-none', identity: { maker: 'Sartorius', model: 'Cubis', serialNumber: 'B-2' }, channels: [{ name: 'mass', unit: 'g' }] },
  ]);
  await until('the BIRTH to be recorded', async () => (await t.server.registry.instrument('bal-none')) !== undefined);
});

afterAll(async () => {
  await gw?.end();
  await t?.stop();
});

test('the instrument list says which commands an instrument takes', async () => {
  const list = (await (await t.fetch('/api/instruments', {}, 'technician')).json()) as { id: string; commands: string[] }[];
  expect(list.find((i) => i.id === 'bal-z')?.commands).toEqual(['zero']);
  expect(list.find((i) => i.id === 'bal-none')?.commands).toEqual([]);
});

test('an allowed command is recorded in the audit trail, then sent to the gateway as a CMD', async () => {
  const res = await post('bal-z', { command: 'zero' });
  expect(res.status).toBe(202);
  const body = (await res.json()) as { instrument: string; gateway: string; command: string; at: number };
  expect(body).toEqual({ instrument: 'bal-z', gateway: 'gw-a', command: 'zero', at: expect.any(Number) });
  await until('the CMD at the gateway', () => gw.cmds.some((c) => c.cmd === 'instrument'));
  expect(gw.cmds.filter((c) => c.cmd === 'instrument')).toEqual([{ v: 1, cmd: 'instrument', instrument: 'bal-z', command: 'zero' }]);
  expect(await commandEntries()).toEqual([
    expect.objectContaining({ actor: 'technician', recordId: 'bal-z', newValue: { command: 'zero', gateway: 'gw-a', at: body.at } }),
  ]);
});

test('refusals name the reason and send nothing', async () => {
  const before = gw.cmds.length;
  const entries = (await commandEntries()).length;
  const cases: [string, unknown, Parameters<TestServer['fetch']>[2], number, RegExp][] = [
    ['bal-z', { command: 'tare' }, 'technician', 409, /does not take "tare".*sends: zero/],
    ['bal-none', { command: 'zero' }, 'technician', 409, /does not take "zero".*sends: none/],
    ['no-such', { command: 'zero' }, 'technician', 404, /no-such/],
    ['bal-z', { command: 'calibrate' }, 'technician', 400, /command/],
    ['bal-z', { command: 'zero', extra: 1 }, 'technician', 400, /extra/],
    ['bal-z', {}, 'technician', 400, /command/],
    // least privilege: the lab's workers only
    ['bal-z', { command: 'zero' }, 'client', 403, /./],
    ['bal-z', { command: 'zero' }, 'auditor', 403, /./],
    ['bal-z', { command: 'zero' }, 'signatory', 403, /./],
    ['bal-z', { command: 'zero' }, null, 401, /./],
  ];
  for (const [id, body, role, status, message] of cases) {
    const res = await post(id, body, role);
    expect({ id, body, role, status: res.status }).toEqual({ id, body, role, status });
    expect(((await res.json()) as { error: string }).error).toMatch(message);
  }
  await new Promise((r) => setTimeout(r, 200));
  expect(gw.cmds.length).toBe(before);
  expect((await commandEntries()).length).toBe(entries);
});

test('a command for an instrument whose gateway is not connected is refused, not queued for a later session', async () => {
  const other = await TestGateway.connect(t, 'gw-b');
  await other.announce([
    {
      id: 'bal-away',
      identity: { maker: 'Mettler Toledo', model: 'XS', serialNumber: 'B-3' },
      channels: [{ name: 'mass', unit: 'g' }],
      commands: ['zero', 'tare'],
    },
  ]);
  await until('the BIRTH to be recorded', async () => (await t.server.registry.instrument('bal-away')) !== undefined);
  await other.end();
  await until('the gateway to be gone', () => !t.server.broker.connectedGateways().includes('gw-b'));
  const res = await post('bal-away', { command: 'tare' });
  expect(res.status).toBe(409);
  const body = (await res.json()) as { error: string; reason: string; params: unknown };
  expect(body.error).toMatch(/gateway "gw-b" .* is not connected/);
  // what the dashboard translates
  expect({ reason: body.reason, params: body.params }).toEqual({
    reason: 'instrument.gateway-offline',
    params: { instrument: 'bal-away', gateway: 'gw-b' },
  });
});
