// The key events of the transparency log: typed, versioned JSON records (canonical JSON in the log entry), written
// by the server's key registry and read by the offline verifier. One definition of each field, and of the rotation
// grace period, for both. Key validity is judged by what the server knows (when a batch arrived, where it stands
// in the log and in the gateway's chain), never by the times a key's holder writes into its batches:
//   registered  the key is active from this log position
//   rotated     the key is replaced by `newKeyId` (registered by the same record); batches under the old key are
//               still accepted until `graceUntil` (server arrival time), only below the first batch number the new
//               key delivered; a `retired` record enters the log once the grace is over
//   retired     no batch under the key enters the log after this record (grace over, or the gateway re-enrolled)
//   revoked     no batch under the key enters the log after this record; of those before it, only batches numbered
//               up to `lastValidBatch` are valid (null: none), so that stored batches that arrived after the time
//               the key is revoked from are invalid too
import { LabtraceError } from '../errors.js';
import { canonicalBytes } from './jcs.js';

/** How long (server arrival time) after a rotation batches signed with the old key are still accepted. */
export const ROTATION_GRACE_MS = 5 * 60_000;

export const KEY_EVENT_TYPE = 'labtrace-key-event' as const;
export const KEY_EVENT_VERSION = 1 as const;

interface KeyEventBase {
  type: typeof KEY_EVENT_TYPE;
  v: typeof KEY_EVENT_VERSION;
  gateway: string;
  /** the key's id (hex, 4 bytes of its SHA-256 fingerprint) */
  keyId: string;
  /** server time the event took effect, ms since the epoch */
  at: number;
}

export interface KeyRegisteredEvent extends KeyEventBase {
  event: 'registered';
  /** the key, verifier-key form name+keyid+base64 */
  key: string;
  /** enrollment, the server config, or the conversion of a log that held only text events */
  source: 'enrollment' | 'config' | 'migration';
}

export interface KeyRotatedEvent extends KeyEventBase {
  event: 'rotated';
  newKeyId: string;
  newKey: string;
  /** server arrival time until which batches under the old key are accepted */
  graceUntil: number;
}

export interface KeyRetiredEvent extends KeyEventBase {
  event: 'retired';
  reason: 'rotation-grace-over' | 're-enrolled' | 'migration';
  /** the key that replaced it, when known */
  replacedBy: string | null;
}

export interface KeyRevokedEvent extends KeyEventBase {
  event: 'revoked';
  reason: string;
  /** server time the key is revoked from (at or before `at`): batches that arrived from then on are invalid */
  from: number;
  /** the highest batch number under the key that stays valid (null: none) */
  lastValidBatch: number | null;
}

export type KeyEvent = KeyRegisteredEvent | KeyRotatedEvent | KeyRetiredEvent | KeyRevokedEvent;
export type KeyEventKind = KeyEvent['event'];

/** The bytes of a key event's log entry. */
export function keyEventBytes(event: KeyEvent): Uint8Array {
  return canonicalBytes(event);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isText = (v: unknown, max = 200): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;
const KEY_ID = /^[0-9a-f]{8}$/;

/** Whether a log entry's JSON is meant as a structured key event (as opposed to the text events of earlier versions). */
export function isKeyEventRecord(value: unknown): boolean {
  return isObject(value) && value.type === KEY_EVENT_TYPE;
}

/** Reads a structured key event; throws E_BAD_REQUEST naming the field that does not read. */
export function parseKeyEvent(value: unknown): KeyEvent {
  const bad = (field: string, why: string): never => {
    throw new LabtraceError('E_BAD_REQUEST', `key event: ${field}: ${why}`);
  };
  if (!isObject(value)) return bad('record', 'expected an object');
  if (value.type !== KEY_EVENT_TYPE) return bad('type', `expected "${KEY_EVENT_TYPE}"`);
  if (value.v !== KEY_EVENT_VERSION) return bad('v', `version ${String(value.v)} is not known (expected ${KEY_EVENT_VERSION})`);
  if (!isText(value.gateway, 128)) bad('gateway', 'expected a gateway id');
  if (typeof value.keyId !== 'string' || !KEY_ID.test(value.keyId)) bad('keyId', 'expected 8 hex digits');
  if (!isTime(value.at)) bad('at', 'expected ms since the epoch');
  const base = {
    type: KEY_EVENT_TYPE as typeof KEY_EVENT_TYPE,
    v: KEY_EVENT_VERSION as typeof KEY_EVENT_VERSION,
    gateway: value.gateway as string,
    keyId: value.keyId as string,
    at: value.at as number,
  };
  switch (value.event) {
    case 'registered':
      if (!isText(value.key, 300)) bad('key', 'expected a verifier key');
      if (value.source !== 'enrollment' && value.source !== 'config' && value.source !== 'migration')
        bad('source', 'expected enrollment, config or migration');
      return { ...base, event: 'registered', key: value.key as string, source: value.source as KeyRegisteredEvent['source'] };
    case 'rotated':
      if (typeof value.newKeyId !== 'string' || !KEY_ID.test(value.newKeyId)) bad('newKeyId', 'expected 8 hex digits');
      if (!isText(value.newKey, 300)) bad('newKey', 'expected a verifier key');
      if (!isTime(value.graceUntil)) bad('graceUntil', 'expected ms since the epoch');
      return {
        ...base,
        event: 'rotated',
        newKeyId: value.newKeyId as string,
        newKey: value.newKey as string,
        graceUntil: value.graceUntil as number,
      };
    case 'retired':
      if (value.reason !== 'rotation-grace-over' && value.reason !== 're-enrolled' && value.reason !== 'migration')
        bad('reason', 'expected rotation-grace-over, re-enrolled or migration');
      if (value.replacedBy !== null && (typeof value.replacedBy !== 'string' || !KEY_ID.test(value.replacedBy)))
        bad('replacedBy', 'expected 8 hex digits or null');
      return { ...base, event: 'retired', reason: value.reason as KeyRetiredEvent['reason'], replacedBy: value.replacedBy as string | null };
    case 'revoked':
      if (typeof value.reason !== 'string' || value.reason.length > 1000) bad('reason', 'expected a text');
      if (!isTime(value.from)) bad('from', 'expected ms since the epoch');
      if (value.lastValidBatch !== null && !isTime(value.lastValidBatch)) bad('lastValidBatch', 'expected a batch number or null');
      return {
        ...base,
        event: 'revoked',
        reason: value.reason as string,
        from: value.from as number,
        lastValidBatch: value.lastValidBatch as number | null,
      };
    default:
      return bad('event', 'expected registered, rotated, retired or revoked');
  }
}
