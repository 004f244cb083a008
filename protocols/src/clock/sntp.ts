// SNTP (RFC 4330; RFC 5905's client mode) on the wire: the 48-byte request a client sends, and the checks a server's
// reply must pass before its times say anything about our clock. Pure: the UDP exchange is node/sntp-client.ts.
import { LabtraceError } from '../errors.js';

export const NTP_PACKET_BYTES = 48;
/** seconds from the NTP era's start (1900-01-01) to the Unix epoch */
export const NTP_UNIX_OFFSET_S = 2_208_988_800;
const TWO_32 = 0x1_0000_0000;

/** what a valid reply says */
export interface SntpReply {
  /** leap indicator: 0 none, 1 last minute has 61 s, 2 has 59 s (3, unsynchronised, is refused) */
  leap: number;
  version: number;
  /** 1 (a primary reference) to 15 */
  stratum: number;
  /** the server's reference, as four ASCII letters at stratum 1, else as the dotted address it follows */
  referenceId: string;
  rootDelayMs: number;
  rootDispersionMs: number;
  /** T2: when our request reached the server (its clock, Unix ms) */
  receiveMs: number;
  /** T3: when its reply left (its clock, Unix ms) */
  transmitMs: number;
}

/** One exchange's reading: how far our clock is from the server's, and the round trip it is measured over. */
export interface SntpReading {
  /** our clock minus the server's, in ms (positive: ours is ahead); RFC 5905's offset with the opposite sign */
  offsetMs: number;
  /** the round trip less the server's own time, in ms (never below 0) */
  delayMs: number;
  stratum: number;
  referenceId: string;
}

/** Writes a Unix time (ms) as an NTP timestamp (seconds since 1900, 32-bit fraction), era 0 or 1 (past 2036). */
export function writeNtpTime(ms: number, out: Uint8Array, at: number): void {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const seconds = Math.floor(ms / 1000);
  const fraction = Math.floor(((ms - seconds * 1000) / 1000) * TWO_32);
  view.setUint32(at, (seconds + NTP_UNIX_OFFSET_S) % TWO_32);
  view.setUint32(at + 4, Math.min(fraction, TWO_32 - 1));
}

/**
 * Reads an NTP timestamp as a Unix time (ms). RFC 4330 section 3: with the top bit of the seconds clear, the time is
 * in era 1 (from 2036-02-07), so the reading stays right until 2104.
 */
export function readNtpTime(bytes: Uint8Array, at: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const seconds = view.getUint32(at);
  const fraction = view.getUint32(at + 4);
  const era = seconds < 0x8000_0000 ? TWO_32 : 0;
  return (seconds + era - NTP_UNIX_OFFSET_S) * 1000 + (fraction / TWO_32) * 1000;
}

/** A client request (version 4, mode 3) whose transmit timestamp is `transmitMs`: the reply must echo it. */
export function sntpRequest(transmitMs: number): Uint8Array {
  const packet = new Uint8Array(NTP_PACKET_BYTES);
  packet[0] = (0 << 6) | (4 << 3) | 3;
  writeNtpTime(transmitMs, packet, 40);
  return packet;
}

function refused(what: string): LabtraceError {
  return new LabtraceError('E_NTP_REPLY', `NTP reply refused: ${what}`);
}

function isZero(bytes: Uint8Array, at: number, length: number): boolean {
  for (let i = at; i < at + length; i++) if (bytes[i] !== 0) return false;
  return true;
}

function referenceIdOf(bytes: Uint8Array, stratum: number): string {
  const id = bytes.subarray(12, 16);
  if (stratum <= 1) return String.fromCharCode(...id.filter((c) => c >= 0x20 && c < 0x7f));
  return [...id].join('.');
}

/**
 * Checks a reply to `request` (the bytes sent) and reads it; throws E_NTP_REPLY naming the first check it fails.
 * RFC 4330 section 5: a server's reply (mode 4) of version 3 or 4, that echoes our transmit timestamp as its
 * originate timestamp (so it answers this request, not an earlier or forged one), from a synchronised server
 * (leap indicator not 3, stratum 1 to 15; stratum 0 is a kiss-o'-death), with non-zero receive and transmit times.
 */
export function parseSntpReply(reply: Uint8Array, request: Uint8Array): SntpReply {
  if (reply.length < NTP_PACKET_BYTES) throw refused(`${reply.length} bytes, expected at least ${NTP_PACKET_BYTES}`);
  if (request.length < NTP_PACKET_BYTES) throw refused(`the request has ${request.length} bytes, expected ${NTP_PACKET_BYTES}`);
  const first = reply[0] ?? 0;
  const leap = first >> 6;
  const version = (first >> 3) & 7;
  const mode = first & 7;
  const stratum = reply[1] ?? 0;
  if (mode !== 4) throw refused(`mode ${mode}, expected 4 (server)`);
  if (version !== 3 && version !== 4) throw refused(`version ${version}, expected 3 or 4`);
  for (let i = 0; i < 8; i++)
    if (reply[24 + i] !== request[40 + i]) throw refused('its originate timestamp is not our transmit timestamp (not an answer to this request)');
  if (stratum === 0) throw refused(`kiss-o'-death ${JSON.stringify(referenceIdOf(reply, 1))} (stratum 0)`);
  if (stratum > 15) throw refused(`stratum ${stratum}, expected 1 to 15 (unsynchronised)`);
  if (leap === 3) throw refused('leap indicator 3 (the server is not synchronised)');
  if (isZero(reply, 40, 8)) throw refused('a zero transmit timestamp');
  if (isZero(reply, 32, 8)) throw refused('a zero receive timestamp');
  const view = new DataView(reply.buffer, reply.byteOffset, reply.byteLength);
  return {
    leap,
    version,
    stratum,
    referenceId: referenceIdOf(reply, stratum),
    rootDelayMs: (view.getInt32(4) / 65536) * 1000,
    rootDispersionMs: (view.getUint32(8) / 65536) * 1000,
    receiveMs: readNtpTime(reply, 32),
    transmitMs: readNtpTime(reply, 40),
  };
}

/**
 * The reading of an exchange: T1 `sentMs` and T4 `receivedMs` on our clock, T2 and T3 from the reply.
 * offset = ((T2 - T1) + (T3 - T4)) / 2 (the server's clock minus ours; reported with the opposite sign),
 * delay = (T4 - T1) - (T3 - T2).
 */
export function sntpReading(reply: SntpReply, sentMs: number, receivedMs: number): SntpReading {
  const serverAhead = (reply.receiveMs - sentMs + (reply.transmitMs - receivedMs)) / 2;
  const delayMs = receivedMs - sentMs - (reply.transmitMs - reply.receiveMs);
  return { offsetMs: 0 - serverAhead, delayMs: Math.max(0, delayMs), stratum: reply.stratum, referenceId: reply.referenceId };
}
