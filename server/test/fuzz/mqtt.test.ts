// Fuzzing of the MQTT side of a running server (`labtrace server` as a child process): a gateway with its
// credentials publishes generated payloads (bytes, wrong JSON, mutated valid BIRTH/HEALTH/DEATH/DATA
// messages, damaged signed batches) on its own topics and on topics it may not use; unauthenticated
// clients send generated CONNECT packets and bytes. The server never crashes, never leaves a publish
// unanswered while the connection stays open, closes a connection that declares a packet too big to be
// meant, and answers GET /api/health with 200 after each property.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import mqtt, { type MqttClient } from 'mqtt';
import { topicFor } from '@labtrace/protocols';
import { LAB, TestGateway } from '../helpers/server.js';
import { Findings, show } from './findings.js';
import { malformedJson, nastyString, nastyValue } from './inputs.js';
import { FUZZ_GATEWAY, GATEWAY_PASSWORD, OTHER_GATEWAY, ServerProcess } from './server-process.js';
import { FUZZ_SEED, runs } from '@labtrace/protocols/test/fuzz';
import { mutated } from './templates.js';

/** a publish unanswered (no PUBACK, connection still open) after this long hangs */
const HANG_MS = 15_000;

const server = new ServerProcess();
/** signs valid batches of the gateway's chain, for the mutations to start from */
let signer: TestGateway;

beforeAll(async () => {
  await server.start();
  signer = await TestGateway.connect({ mqttUrl: server.mqttUrl, password: GATEWAY_PASSWORD }, FUZZ_GATEWAY);
  await signer.birth('fz-1');
  await signer.end();
}, 120_000);

afterAll(async () => {
  await server.stop();
}, 30_000);

let lastCase = 'the set-up';

async function noteDeath(findings: Findings, where: string): Promise<boolean> {
  if (server.alive()) return false;
  const output = (await server.revive()) ?? '';
  findings.add({ kind: 'crash', key: ServerProcess.causeOfDeath(output), where, example: lastCase, detail: output.slice(-3000) });
  return true;
}

async function healthAfter(findings: Findings, property: string): Promise<void> {
  await new Promise((r) => setTimeout(r, 500));
  await noteDeath(findings, `the last case of ${property}`);
  const status = await server.health();
  if (status !== 200) findings.add({ kind: 'unhealthy', key: `after ${property}`, example: lastCase, detail: `GET /api/health answered ${status}` });
}

const assertNothingFound = (findings: Findings, title: string): void => {
  if (findings.size > 0) throw new Error(findings.report(title));
  expect(findings.size).toBe(0);
};

const samples = (n: number, first: number): Record<string, unknown>[] =>
  Array.from({ length: n }, (_, i) => ({
    seq: first + i,
    instrument: 'fz-1',
    channel: 'c',
    ts: Date.now() + i,
    value: i,
    unit: '',
    quality: 'good',
  }));

describe('MQTT with generated payloads', () => {
  test(
    'a gateway publishes generated payloads on its topics and on topics it may not use',
    async () => {
      const findings = new Findings();
      let client: MqttClient | undefined;
      let batch = 0;
      const templates = {
        BIRTH: {
          v: 1,
          gateway: FUZZ_GATEWAY,
          session: 1,
          version: 'fuzz',
          instruments: [{ id: 'fz-1', identity: { maker: 'm', model: 'x', serialNumber: '1' }, channels: [{ name: 'c', unit: '' }] }],
        },
        HEALTH: {
          v: 1,
          gateway: FUZZ_GATEWAY,
          ts: Date.now(),
          instruments: [
            { instrument: 'fz-1', connected: true, lastGood: Date.now(), errors: {}, polls: 1, latencyMs: { p50: 1, p99: 2 }, breaker: 'closed' },
          ],
        },
        DEATH: { v: 1, gateway: FUZZ_GATEWAY, session: 1 },
      } as const;
      type Kind = 'BIRTH' | 'HEALTH' | 'DEATH' | 'DATA';
      const payload = (kind: Kind): fc.Arbitrary<{ how: string; bytes: (() => Buffer) | Buffer }> => {
        const json = (v: fc.Arbitrary<unknown>, how: string): fc.Arbitrary<{ how: string; bytes: Buffer }> =>
          v.map((x) => ({ how, bytes: Buffer.from(JSON.stringify(x) ?? 'null') }));
        const own =
          kind === 'DATA'
            ? fc.oneof(
                // a batch of the chain, signed, then damaged: a flipped byte, cut short, or its JSON form mutated
                fc
                  .tuple(fc.integer({ min: 1, max: 50 }), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.option(fc.nat(), { nil: undefined }))
                  .map(([n, at, flip, cut]) => ({
                    how: `sealed batch of ${n}, byte ${at} ^ ${flip}${cut === undefined ? '' : `, cut at ${cut}`}`,
                    bytes: () => {
                      const wire = Buffer.from(signer.seal(samples(n, batch * 1000) as never, batch++));
                      const i = at % wire.length;
                      wire[i] = (wire[i] ?? 0) ^ flip;
                      return cut === undefined ? wire : wire.subarray(0, cut % wire.length);
                    },
                  })),
                fc
                  .tuple(fc.integer({ min: 1, max: 20 }), fc.array(fc.tuple(fc.nat(), nastyValue), { minLength: 1, maxLength: 3 }))
                  .map(([n, changes]) => ({
                    how: `signed JSON batch of ${n} with ${show(changes)}`,
                    bytes: () => {
                      const message = signer.sign(samples(n, batch * 1000) as never, batch++) as unknown as Record<string, unknown>;
                      const keys = ['v', 'gateway', 'batch', 'samples', 'signed'];
                      for (const [k, v] of changes) message[keys[k % keys.length]!] = v;
                      return Buffer.from(JSON.stringify(message));
                    },
                  })),
                fc
                  .uint8Array({ maxLength: 400 })
                  .map((b) => ({ how: 'LTB1 and bytes', bytes: Buffer.concat([Buffer.from('LTB1'), Buffer.from(b)]) })),
              )
            : json(mutated(templates[kind]), `mutated ${kind}`);
        return fc.oneof(
          { weight: 4, arbitrary: own },
          { weight: 1, arbitrary: json(nastyValue, 'generated JSON') },
          { weight: 1, arbitrary: malformedJson.map((t) => ({ how: 'malformed JSON', bytes: Buffer.from(t) })) },
          { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2000 }).map((b) => ({ how: 'bytes', bytes: Buffer.from(b) })) },
          {
            weight: 1,
            arbitrary: fc
              .integer({ min: 100_000, max: 600_000 })
              .map((n) => ({ how: `${n} bytes of JSON`, bytes: Buffer.from(JSON.stringify({ v: 1, pad: 'x'.repeat(n) })) })),
          },
        );
      };
      const data: Kind = 'DATA';
      const topic = fc.oneof(
        {
          weight: 8,
          arbitrary: fc.constantFrom<Kind>('BIRTH', 'HEALTH', 'DEATH', 'DATA').map((k) => ({ kind: k, topic: topicFor(LAB, FUZZ_GATEWAY, k) })),
        },
        {
          weight: 2,
          arbitrary: fc
            .constantFrom(
              topicFor(LAB, OTHER_GATEWAY, 'DATA'),
              topicFor(LAB, FUZZ_GATEWAY, 'ACK'),
              topicFor(LAB, FUZZ_GATEWAY, 'CMD'),
              topicFor('other-lab', FUZZ_GATEWAY, 'DATA'),
              `${topicFor(LAB, FUZZ_GATEWAY, 'DATA')}/more`,
              `labtrace/v1/${LAB}/${FUZZ_GATEWAY}/data`,
              '$SYS/broker',
              'labtrace',
            )
            .map((t) => ({ kind: data, topic: t })),
        },
        {
          weight: 1,
          arbitrary: nastyString.filter((s) => s.length > 0 && !s.includes('\u0000') && !/[#+]/.test(s)).map((t) => ({ kind: data, topic: t })),
        },
      );
      const arb = topic.chain((t) => fc.record({ topic: fc.constant(t.topic), payload: payload(t.kind), qos: fc.constantFrom<0 | 1>(0, 1, 1) }));
      await fc.assert(
        fc.asyncProperty(arb, async ({ topic: t, payload: p, qos }) => {
          await noteDeath(findings, 'the publish before');
          if (findings.stopped) return;
          if (client === undefined || !client.connected) {
            await client?.endAsync(true);
            client = await mqtt.connectAsync(server.mqttUrl, {
              clientId: FUZZ_GATEWAY,
              username: FUZZ_GATEWAY,
              password: GATEWAY_PASSWORD,
              reconnectPeriod: 0,
            });
            client.on('error', () => undefined);
          }
          const bytes = typeof p.bytes === 'function' ? p.bytes() : p.bytes;
          lastCase = `PUBLISH ${JSON.stringify(t)} qos ${qos}: ${p.how} ${show(bytes.subarray(0, 300).toString('utf8'))}`;
          const c = client;
          let timer: NodeJS.Timeout | undefined;
          const outcome = await Promise.race([
            c.publishAsync(t, bytes, { qos }).then(
              () => 'answered',
              () => 'refused',
            ),
            new Promise<string>((resolve) => c.once('close', () => resolve('closed'))),
            new Promise<string>((resolve) => (timer = setTimeout(() => resolve('timeout'), HANG_MS))),
          ]);
          clearTimeout(timer);
          // what the server does with it happens after the PUBACK: give the ingest a moment before looking
          await new Promise((r) => setTimeout(r, 5));
          if (await noteDeath(findings, `PUBLISH ${t}`)) return;
          if (outcome === 'timeout' && c.connected)
            findings.add({ kind: 'hang', key: 'PUBLISH without an answer', where: t, example: lastCase, detail: `no PUBACK in ${HANG_MS} ms` });
        }),
        { seed: FUZZ_SEED, numRuns: runs(300) },
      );
      await client?.endAsync(true);
      await healthAfter(findings, 'gateway publishes');
      assertNothingFound(findings, 'gateway publishes');
    },
    120_000 + runs(300) * 500,
  );
});

/** an MQTT string: two length bytes and the UTF-8 */
const str = (s: string | Buffer): Buffer => {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  return Buffer.concat([Buffer.from([(b.length >> 8) & 0xff, b.length & 0xff]), b.subarray(0, 0xffff)]);
};

/** the remaining length as MQTT writes it (up to 268,435,455) */
function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0 && out.length < 4);
  return Buffer.from(out);
}

describe('MQTT CONNECT and bytes from clients without credentials', () => {
  /** Sends bytes; resolves with what became of the connection within `ms`. */
  function raw(bytes: Buffer, ms: number): Promise<'answered' | 'closed' | 'open'> {
    return new Promise((resolve) => {
      const socket = net.connect(server.mqttPort, '127.0.0.1');
      const done = (v: 'answered' | 'closed' | 'open'): void => {
        clearTimeout(timer);
        socket.destroy();
        resolve(v);
      };
      const timer = setTimeout(() => done('open'), ms);
      socket.on('error', () => done('closed'));
      socket.on('close', () => done('closed'));
      socket.on('data', () => done('answered'));
      socket.write(bytes);
    });
  }

  test(
    'generated CONNECT packets and bytes: refused or answered, never a crash; a packet declared huge is not waited for',
    async () => {
      const findings = new Findings();
      const connect = fc
        .record({
          protocol: fc.constantFrom('MQTT', 'MQIsdp', 'mqtt', ''),
          level: fc.constantFrom(3, 4, 5, 0, 255),
          flags: fc.integer({ min: 0, max: 255 }),
          keepalive: fc.integer({ min: 0, max: 65535 }),
          clientId: fc.oneof(fc.constantFrom(FUZZ_GATEWAY, OTHER_GATEWAY, ''), nastyString),
          username: fc.option(fc.oneof(fc.constantFrom(FUZZ_GATEWAY, 'viewer', ''), nastyString), { nil: undefined }),
          password: fc.option(fc.oneof(fc.constantFrom('wrong', ''), nastyString), { nil: undefined }),
          tail: fc.uint8Array({ maxLength: 40 }),
        })
        .map((c) => {
          const flags = (c.flags & 0x3e) | (c.username === undefined ? 0 : 0x80) | (c.password === undefined ? 0 : 0x40);
          const body = Buffer.concat([
            str(c.protocol),
            Buffer.from([c.level, flags, c.keepalive >> 8, c.keepalive & 0xff]),
            ...(c.level === 5 ? [Buffer.from([0])] : []),
            str(c.clientId),
            ...(c.username === undefined ? [] : [str(c.username)]),
            ...(c.password === undefined ? [] : [str(c.password)]),
            Buffer.from(c.tail),
          ]);
          return { what: `CONNECT ${show(c)}`, bytes: Buffer.concat([Buffer.from([0x10]), varint(body.length), body]) };
        });
      const huge = fc.integer({ min: 64 * 1024 * 1024, max: 268_435_455 }).map((declared) => ({
        what: `CONNECT declaring ${declared} bytes`,
        bytes: Buffer.concat([Buffer.from([0x10]), varint(declared), str('MQTT'), Buffer.from([4, 0xc2, 0, 60]), str('x'), Buffer.alloc(1000, 0x61)]),
      }));
      const junk = fc
        .uint8Array({ minLength: 1, maxLength: 600 })
        .map((b) => ({ what: `bytes ${Buffer.from(b).toString('hex').slice(0, 200)}`, bytes: Buffer.from(b) }));
      const cases = fc.sample(fc.oneof({ weight: 5, arbitrary: connect }, { weight: 3, arbitrary: junk }), { seed: FUZZ_SEED, numRuns: runs(300) });
      // 50 connections at a time: a client that says nothing more holds a socket, not the server
      for (let i = 0; i < cases.length; i += 50) {
        const batch = cases.slice(i, i + 50);
        lastCase = batch.map((c) => c.what).join('\n  ');
        await Promise.all(batch.map((c) => raw(c.bytes, 1_500)));
        await new Promise((r) => setTimeout(r, 100));
        await noteDeath(findings, 'MQTT clients without credentials');
      }
      // a few packets declared huge, together: each connection must be closed, not kept waiting for the rest
      const big = fc.sample(huge, { seed: FUZZ_SEED, numRuns: 4 });
      lastCase = big.map((c) => c.what).join('\n  ');
      const outcomes = await Promise.all(big.map((c) => raw(c.bytes, 10_000)));
      await noteDeath(findings, 'MQTT CONNECT declared huge');
      outcomes.forEach((o, j) => {
        if (o === 'open')
          findings.add({
            kind: 'accepted',
            key: 'an unauthenticated CONNECT declaring a packet of tens of MB is kept open (the broker waits for it, holding its buffer)',
            example: big[j]!.what,
            detail: 'the connection was still open after 10 s',
          });
      });
      await healthAfter(findings, 'unauthenticated clients');
      assertNothingFound(findings, 'unauthenticated clients');
    },
    120_000 + runs(300) * 100,
  );
});
