// What the server accepts from gateways: batches signed by the gateway's registered, valid key, whose
// records hash to the signed root, of its own instruments, continuing its chain. Anything refused is
// not acknowledged and is recorded as a security event; a duplicate is acknowledged again, stored once.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { signBatch, type Sample } from '@labtrace/protocols';
import { records, send, signerOf, startServer, TestGateway, waitFor, type TestServer } from '../helpers/server.js';

let t: TestServer;
const gateways: TestGateway[] = [];

beforeAll(async () => {
  t = await startServer();
});
afterAll(async () => {
  await Promise.all(gateways.map((g) => g.end()));
  await t.stop();
});

async function gateway(id: string): Promise<TestGateway> {
  const gw = await TestGateway.connect(t, id);
  gateways.push(gw);
  return gw;
}

const stored = (gateway: string): number =>
  (t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM measurements WHERE gateway = ?').get(gateway) as { n: number }).n;
const events = (gateway: string, kind?: string) => t.server.events.list({ gateway, ...(kind === undefined ? {} : { kind: kind as never }) });

describe('refused batches are not stored, not acknowledged, and recorded', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await gateway('gw-s');
    await gw.birth('sig-1');
  });

  test('a signed batch is stored and acknowledged; its header is kept', async () => {
    expect(await send(t, gw, gw.sign(records('sig-1', 0, 3)))).toBe('acked');
    expect(stored('gw-s')).toBe(3);
    const headers = t.server.database.sqlite.prepare('SELECT count, signature, hash FROM batch_headers WHERE gateway = ?').all('gw-s');
    expect(headers).toEqual([{ count: 3, signature: expect.any(String), hash: expect.any(String) }]);
  });

  test('unsigned', async () => {
    expect(await send(t, gw, { v: 1, gateway: 'gw-s', batch: 1, samples: records('sig-1', 3, 2) })).toMatch(/batch 1 of gw-s: not signed/);
    expect(events('gw-s', 'unsigned')).toHaveLength(1);
  });

  test('one value changed after signing (altered)', async () => {
    const message = gw.sign(records('sig-1', 3, 2), 1);
    const changed = { ...message, samples: message.samples.map((s, i) => (i === 1 ? { ...s, value: 2 } : s)) };
    expect(await send(t, gw, changed)).toMatch(/do not hash to the signed Merkle root/);
    expect(events('gw-s', 'altered')[0]).toMatchObject({ severity: 'alarm', batch: 1 });
    // a record dropped
    expect(await send(t, gw, { ...message, samples: message.samples.slice(0, 1) })).toMatch(/header counts 2 records, the batch holds 1/);
    // the genuine batch still goes through
    expect(await send(t, gw, message)).toBe('acked');
    expect(stored('gw-s')).toBe(5);
  });

  test('forged: a header signed by another key under the registered key id', async () => {
    const samples = records('sig-1', 5, 2);
    const genuine = signBatch(signerOf('gw-s'), 'gw-s', 2, samples, null);
    const forged = signBatch(signerOf('gw-s', new Uint8Array(32).fill(3)), 'gw-s', 2, samples, null);
    const message = { v: 1, gateway: 'gw-s', batch: 2, samples, signed: { header: genuine.header, signature: forged.signature } };
    expect(await send(t, gw, message)).toMatch(/bad signature/);
    expect(events('gw-s', 'forged')).toHaveLength(1);
    // and an unknown key altogether
    expect(await send(t, gw, { v: 1, gateway: 'gw-s', batch: 2, samples, signed: forged })).toMatch(/key [0-9a-f]{8} is not registered/);
    expect(events('gw-s', 'unknown-key')).toHaveLength(1);
    expect(stored('gw-s')).toBe(5);
  });

  test("another gateway's batch replayed under this gateway's topic", async () => {
    const other = signBatch(signerOf('gw-b'), 'gw-b', 2, records('sig-1', 5, 1), null);
    expect(await send(t, gw, { v: 1, gateway: 'gw-b', batch: 2, samples: records('sig-1', 5, 1), signed: other })).toMatch(/names gateway "gw-b"/);
    expect(events('gw-s', 'foreign-gateway')).toHaveLength(1);
  });

  test('a replayed old batch: acknowledged again, stored once, recorded', async () => {
    const old = gw.sign(records('sig-1', 5, 2), 2);
    expect(await send(t, gw, old)).toBe('acked');
    const before = stored('gw-s');
    expect(await send(t, gw, old)).toBe('acked');
    expect(stored('gw-s')).toBe(before);
    expect(gw.acks.filter((b) => b === 2)).toHaveLength(2);
    expect(events('gw-s', 'duplicate')[0]).toMatchObject({ batch: 2, severity: 'info' });
  });

  test('a different batch under a stored batch number is refused (conflict)', async () => {
    const fork = signBatch(signerOf('gw-s'), 'gw-s', 2, records('sig-1', 5, 2, 42), null);
    expect(await send(t, gw, { v: 1, gateway: 'gw-s', batch: 2, samples: records('sig-1', 5, 2, 42), signed: fork })).toMatch(
      /a different batch 2 .* is already stored/,
    );
    expect(events('gw-s', 'conflict')).toHaveLength(1);
  });

  test('the binary wire form (what gateways send): one flipped bit is refused, the genuine batch stored, broken framing named', async () => {
    const wire = gw.seal(records('sig-1', 7, 2));
    const flipped = wire.slice();
    flipped[flipped.length - 6] = flipped[flipped.length - 6]! ^ 0x01;
    expect(await send(t, gw, flipped)).toMatch(/do not hash to the signed Merkle root/);
    expect(events('gw-s', 'altered')[0]).toMatchObject({ batch: 3, detail: expect.stringMatching(/Merkle root/) });
    expect(await send(t, gw, wire.subarray(0, 20))).toMatch(/DATA: batch: header length \d+ does not fit the message/);
    const before = stored('gw-s');
    expect(await send(t, gw, wire)).toBe('acked');
    expect(stored('gw-s')).toBe(before + 2);
    expect(t.server.ingest.chain.state('gw-s')).toMatchObject({ nextBatch: 4, nextSeq: 9 });
    expect(events('gw-s', 'chain-break')).toHaveLength(0);
  });
});

describe('continuity', () => {
  test('a batch ahead of the chain is stored, a resend is asked, and the chain closes when the missing one arrives', async () => {
    const gw = await gateway('gw-b');
    await gw.birth('cont-1');
    const b0 = gw.sign(records('cont-1', 0, 2));
    const b1 = gw.sign(records('cont-1', 2, 2));
    const b2 = gw.sign(records('cont-1', 4, 2));
    expect(await send(t, gw, b0)).toBe('acked');
    expect(await send(t, gw, b2)).toBe('acked');
    await waitFor('a resend command', () => gw.cmds.length > 0);
    expect(gw.cmds[0]).toEqual({ v: 1, cmd: 'resend', fromBatch: 1 });
    expect(events('gw-b', 'batch-gap')[0]).toMatchObject({ batch: 2, severity: 'alarm' });
    expect(t.server.ingest.chain.state('gw-b')).toMatchObject({ nextBatch: 1, nextSeq: 2 });
    expect(await send(t, gw, b1)).toBe('acked');
    expect(t.server.ingest.chain.state('gw-b')).toMatchObject({ nextBatch: 3, nextSeq: 6 });
    expect(events('gw-b', 'gap-filled')).toHaveLength(1);
    expect(events('gw-b', 'sequence-gap')).toHaveLength(0);
    expect(events('gw-b', 'chain-break')).toHaveLength(0);
  });

  test('a declared jump of the sequence numbers is recorded as such; an undeclared one raises an alarm', async () => {
    const gw = await gateway('gw-b');
    const jump: Sample = {
      seq: 100_000,
      instrument: 'gw-b',
      channel: 'sequence-jump',
      ts: 1_800_000_001_000,
      value: 6,
      unit: '',
      quality: 'good',
      reason: 'restart',
    };
    expect(await send(t, gw, gw.sign([jump, ...records('cont-1', 100_001, 2)], 3))).toBe('acked');
    expect(events('gw-b', 'sequence-jump')[0]!.detail).toMatch(/numbers 6\.\.99999 were never used \(restart\)/);
    expect(await send(t, gw, gw.sign(records('cont-1', 100_010, 1), 4))).toBe('acked');
    expect(events('gw-b', 'sequence-gap')[0]!.detail).toMatch(/sequence numbers 100003\.\.100009 are missing before batch 4/);
  });

  test("instruments: a gateway cannot write another gateway's instrument, nor one it never announced (and is asked for a rebirth)", async () => {
    const a = await gateway('gw-a');
    await a.birth('owned-1');
    const b = await gateway('gw-b');
    await b.birth('owned-1'); // refused: owned by gw-a
    expect(await send(t, b, b.sign(records('owned-1', 200_000, 1), 5))).toMatch(/instrument "owned-1" belongs to gateway gw-a/);
    expect(await send(t, b, b.sign(records('ghost-9', 200_000, 1), 5))).toMatch(/"ghost-9" was not announced/);
    await waitFor('a rebirth command', () => b.cmds.some((c) => c.cmd === 'rebirth'));
    expect(await send(t, a, a.sign(records('owned-1', 0, 1)))).toBe('acked');
  });

  test('a batch reusing stored sequence numbers is refused, not acknowledged and lost', async () => {
    const a = await gateway('gw-a');
    await a.birth('seq-1');
    expect(await send(t, a, a.sign(records('seq-1', 1, 2), 1))).toBe('acked');
    const reused = records('seq-1', 2, 1).map((s) => ({ ...s, ts: s.ts + 5000 }));
    expect(await send(t, a, a.sign(reused, 2))).toMatch(/sequence numbers 2..2 of gw-a are already stored in batch 1/);
  });
});

test('an old batch replayed long after: acknowledged again, stored once, recorded as a replay', async () => {
  const gw = await gateway('gw-p');
  await gw.birth('rep-1');
  const first = gw.sign(records('rep-1', 0, 2));
  expect(await send(t, gw, first)).toBe('acked');
  let last = first;
  for (let b = 1; b <= 70; b++) {
    last = gw.sign(records('rep-1', 2 * b, 2));
    expect(await send(t, gw, last)).toBe('acked');
  }
  const before = stored('gw-p');
  expect(await send(t, gw, first)).toBe('acked');
  expect(stored('gw-p')).toBe(before);
  expect(events('gw-p', 'replay')[0]).toMatchObject({ batch: 0, severity: 'notice', detail: expect.stringMatching(/71 batches old/) });
  // the latest one again is an ordinary resend (its ACK was lost)
  expect(events('gw-p', 'duplicate')).toHaveLength(0);
  expect(await send(t, gw, last)).toBe('acked');
  expect(events('gw-p', 'duplicate')[0]).toMatchObject({ batch: 70, severity: 'info' });
  expect(events('gw-p', 'replay')).toHaveLength(1);
}, 30_000);

test('a reader cannot take the client id of a gateway', async () => {
  await expect(TestGateway.connect(t, 'gw-a', { username: 'viewer', password: t.readerPassword })).rejects.toThrow(/Not authorized/i);
});
