// The SNTP packet: NTP timestamps both ways (era 0 and 1), the request, the checks of a reply, and the reading.
import { describe, expect, test } from '@jest/globals';
import { parseSntpReply, readNtpTime, sntpReading, sntpRequest, writeNtpTime, type LabtraceError } from '../../src/index.js';
import { replyTo } from '../helpers/ntp-replies.js';

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    return `${(err as LabtraceError).code}: ${(err as Error).message}`;
  }
  return 'accepted';
}

describe('NTP timestamps', () => {
  test('a Unix time round-trips to the millisecond, before and after the 2036 era change', () => {
    const out = new Uint8Array(8);
    for (const ms of [0, 1_796_672_623_611.5, Date.UTC(2036, 1, 7, 6, 28, 15), Date.UTC(2036, 1, 7, 6, 28, 17), Date.UTC(2100, 0, 1)]) {
      writeNtpTime(ms, out, 0);
      expect(Math.abs(readNtpTime(out, 0) - ms)).toBeLessThan(0.001);
    }
  });

  test('the NTP epoch: 1970-01-01 is 2208988800 s after 1900-01-01 (RFC 5905 figure 4)', () => {
    const out = new Uint8Array(8);
    writeNtpTime(0, out, 0);
    expect(Buffer.from(out).toString('hex')).toBe('83aa7e8000000000');
  });

  test('a request is version 4, mode 3, carrying its transmit time', () => {
    const request = sntpRequest(1_700_000_000_250);
    expect(request).toHaveLength(48);
    expect(request[0]).toBe(0x23);
    expect(readNtpTime(request, 40)).toBeCloseTo(1_700_000_000_250, 3);
  });
});

describe('the checks of a reply', () => {
  const request = sntpRequest(1_700_000_000_000);

  test('a valid reply is read', () => {
    const reply = parseSntpReply(replyTo(request, { stratum: 1, refId: [0x47, 0x50, 0x53, 0], receiveMs: 1_700_000_000_010 }), request);
    expect(reply).toMatchObject({ stratum: 1, referenceId: 'GPS', version: 4, leap: 0 });
    expect(reply.receiveMs).toBeCloseTo(1_700_000_000_010, 3);
    expect(parseSntpReply(replyTo(request, { version: 3 }), request).version).toBe(3);
  });

  test.each([
    ['short', (): Uint8Array => replyTo(request).subarray(0, 47), /47 bytes/],
    ['a client packet (mode 3)', (): Uint8Array => replyTo(request, { mode: 3 }), /mode 3, expected 4/],
    ['a broadcast (mode 5)', (): Uint8Array => replyTo(request, { mode: 5 }), /mode 5/],
    ['version 2', (): Uint8Array => replyTo(request, { version: 2 }), /version 2/],
    ['an answer to another request', (): Uint8Array => replyTo(sntpRequest(1_700_000_000_001)), /originate timestamp/],
    ["a kiss-o'-death", (): Uint8Array => replyTo(request, { stratum: 0, refId: [0x52, 0x41, 0x54, 0x45] }), /kiss-o'-death "RATE"/],
    ['stratum 16 (unsynchronised)', (): Uint8Array => replyTo(request, { stratum: 16 }), /stratum 16/],
    ['leap indicator 3', (): Uint8Array => replyTo(request, { leap: 3 }), /leap indicator 3/],
    ['no transmit time', (): Uint8Array => replyTo(request, { transmitMs: 0 }), /zero transmit/],
    ['no receive time', (): Uint8Array => replyTo(request, { receiveMs: 0 }), /zero receive/],
  ])('refused: %s', (_what, reply, reason) => {
    const answer = refusal(() => parseSntpReply(reply(), request));
    expect(answer).toMatch(/^E_NTP_REPLY: NTP reply refused: /);
    expect(answer).toMatch(reason);
  });
});

describe('the reading', () => {
  test('offset and delay from the four times (our clock 10 s ahead, 20 ms each way, 5 ms in the server)', () => {
    const request = sntpRequest(0);
    // T1 = 10_000 (ours), T2 = 20 (server), T3 = 25 (server), T4 = 10_045 (ours)
    const reply = parseSntpReply(replyTo(request, { receiveMs: 20, transmitMs: 25 }), request);
    const reading = sntpReading(reply, 10_000, 10_045);
    expect(reading.offsetMs).toBeCloseTo(10_000, 3);
    expect(reading.delayMs).toBeCloseTo(40, 3);
  });

  test('an asymmetric path moves the offset by at most half the delay', () => {
    const request = sntpRequest(0);
    // 0 ms out, 40 ms back: the clocks agree, the reading says 20 ms
    const reading = sntpReading(parseSntpReply(replyTo(request, { receiveMs: 1000, transmitMs: 1000 }), request), 1000, 1040);
    expect(reading.offsetMs).toBeCloseTo(20, 3);
    expect(reading.delayMs).toBeCloseTo(40, 3);
  });
});
