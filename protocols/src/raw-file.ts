// A result file's raw bytes on their way from a gateway to the server (MQTT topic FILE), and the server's
// acknowledgement (on the gateway's ACK topic). The samples read from the file carry its SHA-256 in their
// signed records (trust/record.ts, format 2); the server checks the bytes against the hash named here and
// keeps them under it, so anyone can check a stored file against the signed record.
//
// Layout: "LTF1", u32 header length, the header (JSON, UTF-8), then the file's bytes.
import { z } from 'zod';
import { LabtraceError } from './errors.js';
import { idSchema } from './profile.js';
import { toHex } from './trust/bytes.js';
import { sha256 } from './trust/sha256.js';

export const RAW_FILE_MAGIC = new Uint8Array([0x4c, 0x54, 0x46, 0x31]);
/** the largest result file carried (the broker's packet limit must allow it) */
export const MAX_RAW_FILE_BYTES = 64 * 1024 * 1024;

export const rawFileHeaderSchema = z.strictObject({
  v: z.literal(1),
  gateway: idSchema,
  instrument: idSchema,
  /** hex SHA-256 of the bytes that follow */
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected the 64 hex digits of a SHA-256'),
  /** the file's name in the instrument's folder */
  name: z.string().min(1).max(255),
  size: z.number().int().min(0).max(MAX_RAW_FILE_BYTES),
  /** ms since the epoch: when the gateway took the file */
  takenAt: z.number().int().min(0),
});
export type RawFileHeader = z.output<typeof rawFileHeaderSchema>;

/** The server's confirmation that it keeps a file. */
export const fileAckMessageSchema = z.strictObject({ v: z.literal(1), file: z.string().regex(/^[0-9a-f]{64}$/) });
export type FileAckMessage = z.output<typeof fileAckMessageSchema>;

export function isRawFileMessage(payload: Uint8Array): boolean {
  return payload.length >= 4 && RAW_FILE_MAGIC.every((b, i) => payload[i] === b);
}

export function encodeRawFile(header: RawFileHeader, bytes: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + bytes.length);
  out.set(RAW_FILE_MAGIC, 0);
  new DataView(out.buffer).setUint32(4, json.length);
  out.set(json, 8);
  out.set(bytes, 8 + json.length);
  return out;
}

/** Reads a FILE message and checks the bytes against the hash and size in its header; throws E_CODEC naming what is wrong. */
export function decodeRawFile(payload: Uint8Array): { header: RawFileHeader; bytes: Uint8Array } {
  const fail = (what: string): never => {
    throw new LabtraceError('E_CODEC', `raw file: ${what}`);
  };
  if (!isRawFileMessage(payload)) fail('does not start with LTF1');
  if (payload.length < 8) fail('ends inside the header length');
  const length = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(4);
  if (length > 4096 || 8 + length > payload.length) fail(`header length ${length} does not fit the message`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload.subarray(8, 8 + length)));
  } catch {
    fail('the header is not JSON');
  }
  const parsed = rawFileHeaderSchema.safeParse(json);
  if (!parsed.success) return fail(`header: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const bytes = payload.subarray(8 + length);
  if (bytes.length !== parsed.data.size) fail(`holds ${bytes.length} bytes, the header says ${parsed.data.size}`);
  const hash = toHex(sha256(bytes));
  if (hash !== parsed.data.sha256) fail(`the bytes hash to ${hash}, the header says ${parsed.data.sha256}`);
  return { header: parsed.data, bytes };
}
