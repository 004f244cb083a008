// The SNTP client and the NTP clock against a real NTP server (chronyd on a loopback port), and against a local UDP
// socket that answers with crafted packets.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import dgram from 'node:dgram';
import { NtpClock, querySntp, type NtpChange } from '../../src/node/index.js';
import { ntpConfigSchema, isLabtraceError } from '../../src/index.js';
import { Chrony, freeUdpPort } from '../helpers/chrony.js';
import { replyTo } from '../helpers/ntp-replies.js';

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (isLabtraceError(err)) return `${err.code}: ${err.message}`;
    throw err;
  }
  return 'answered';
}

describe('against chronyd', () => {
  let chrony: Chrony;
  beforeAll(async () => {
    chrony = await Chrony.start();
  });
  afterAll(async () => {
    await chrony.stop();
  });

  test('the same clock reads as no offset: within half the round trip', async () => {
    const sample = await querySntp('127.0.0.1', chrony.port, { timeoutMs: 2000 });
    expect(sample.stratum).toBe(8);
    expect(Math.abs(sample.offsetMs)).toBeLessThanOrEqual(sample.delayMs / 2 + 1);
    expect(sample.server).toBe(chrony.server);
  });

  test('a clock 10 s ahead reads as +10 s', async () => {
    const sample = await querySntp('127.0.0.1', chrony.port, { timeoutMs: 2000, now: () => Date.now() + 10_000 });
    expect(Math.abs(sample.offsetMs - 10_000)).toBeLessThanOrEqual(sample.delayMs / 2 + 1);
  });

  test('the clock: the best of several servers, beyond the bound once, back within half of it once', async () => {
    let skew = 10_000;
    const deadPort = await freeUdpPort();
    const clock = new NtpClock(ntpConfigSchema.parse({ servers: [chrony.server, `127.0.0.1:${deadPort}`], maxOffsetMs: 1000, timeoutMs: 300 }), {
      now: () => Date.now() + skew,
    });
    const changes: NtpChange['kind'][] = [];
    clock.on('change', (c) => changes.push(c.kind));
    let status = await clock.poll();
    expect(status).toMatchObject({ server: chrony.server, beyondBound: true, failedRounds: 0, unreachable: false });
    expect(Math.abs((status.offsetMs ?? 0) - 10_000)).toBeLessThan(500);
    await clock.poll();
    expect(changes).toEqual(['beyond']);
    // back within the bound but not within half of it: still beyond
    skew = 800;
    expect((await clock.poll()).beyondBound).toBe(true);
    skew = 0;
    status = await clock.poll();
    expect(status.beyondBound).toBe(false);
    expect(changes).toEqual(['beyond', 'back']);
    await clock.stop();
  });
});

test('a server that stops answering: unreachable after three rounds without an answer, once', async () => {
  const chrony = await Chrony.start();
  const clock = new NtpClock(ntpConfigSchema.parse({ servers: [chrony.server], timeoutMs: 200 }));
  const changes: NtpChange[] = [];
  clock.on('change', (c) => changes.push(c));
  expect((await clock.poll()).unreachable).toBe(false);
  const port = chrony.port;
  await chrony.stop();
  await clock.poll();
  await clock.poll();
  expect(changes).toEqual([]);
  const status = await clock.poll();
  expect(status).toMatchObject({ unreachable: true, failedRounds: 3 });
  expect(changes).toEqual([{ kind: 'unreachable', failedRounds: 3, lastError: expect.stringMatching(`127.0.0.1:${port}`) }]);
  await clock.stop();
});

describe('crafted replies from a local socket', () => {
  let socket: dgram.Socket;
  let port: number;
  let answer: (request: Uint8Array) => Uint8Array | undefined = () => undefined;
  beforeAll(async () => {
    socket = dgram.createSocket('udp4');
    socket.on('message', (msg, from) => {
      const reply = answer(new Uint8Array(msg));
      if (reply !== undefined) socket.send(reply, from.port, from.address);
    });
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    port = socket.address().port;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  });

  test('a good reply is read (the socket answers as a server would)', async () => {
    answer = (request) => replyTo(request);
    expect(await codeOf(querySntp('127.0.0.1', port, { timeoutMs: 1000 }))).toBe('answered');
  });

  test.each([
    ['a reply to another request', (request: Uint8Array) => replyTo(request.map((b, i) => (i === 47 ? b ^ 1 : b))), /originate/],
    ["a kiss-o'-death", (request: Uint8Array) => replyTo(request, { stratum: 0, refId: [0x44, 0x45, 0x4e, 0x59] }), /"DENY"/],
    ['an unsynchronised server', (request: Uint8Array) => replyTo(request, { leap: 3 }), /leap indicator 3/],
    ['a client packet sent back', (request: Uint8Array) => request, /mode 3/],
    ['a short packet', () => new Uint8Array(12), /12 bytes/],
  ])('refused: %s', async (_what, craft, reason) => {
    answer = craft;
    const code = await codeOf(querySntp('127.0.0.1', port, { timeoutMs: 1000 }));
    expect(code).toMatch(new RegExp(`^E_NTP_REPLY: NTP server 127.0.0.1:${port}: NTP reply refused: `));
    expect(code).toMatch(reason);
  });

  test('no answer: unavailable after the timeout', async () => {
    answer = () => undefined;
    expect(await codeOf(querySntp('127.0.0.1', port, { timeoutMs: 200 }))).toBe(
      `E_NTP_UNAVAILABLE: NTP server 127.0.0.1:${port} did not answer in 200 ms`,
    );
  });

  test('a name that does not resolve is unavailable', async () => {
    const code = await codeOf(querySntp('no-such-host.invalid', 123, { timeoutMs: 200 }));
    expect(code).toMatch(/^E_NTP_UNAVAILABLE: NTP server no-such-host.invalid:123: /);
  });
});
