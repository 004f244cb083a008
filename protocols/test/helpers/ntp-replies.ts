// Crafted SNTP server replies for the tests of the reply checks.
import { NTP_PACKET_BYTES, writeNtpTime } from '../../src/index.js';

/** a valid server reply to `request`, with the fields a case changes */
export function replyTo(
  request: Uint8Array,
  fields: { leap?: number; version?: number; mode?: number; stratum?: number; receiveMs?: number; transmitMs?: number; refId?: number[] } = {},
): Uint8Array {
  const r = new Uint8Array(NTP_PACKET_BYTES);
  r[0] = ((fields.leap ?? 0) << 6) | ((fields.version ?? 4) << 3) | (fields.mode ?? 4);
  r[1] = fields.stratum ?? 2;
  r.set(fields.refId ?? [127, 0, 0, 1], 12);
  r.set(request.subarray(40, 48), 24);
  if (fields.receiveMs !== 0) writeNtpTime(fields.receiveMs ?? Date.now(), r, 32);
  if (fields.transmitMs !== 0) writeNtpTime(fields.transmitMs ?? Date.now(), r, 40);
  return r;
}
