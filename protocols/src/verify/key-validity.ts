// Each gateway key's validity as the transparency log's key events state it, in log order, so that the verifier
// does not have to believe keys.json. The events are the server's security events of kinds enrolled, key-rotated and
// key-revoked, logged as canonical JSON {id, at, gateway, kind, severity, batch, detail}; their detail text is
// written by the server's key registry and enrollment and read here:
//   enrolled      "key <id> registered, ..."        the key is active from `at`; the gateway's other active keys
//                                                   are retired at `at`
//   key-rotated   "key <old> replaced by <new>"     the old key is retired, valid for batches before
//                                                   `at` + KEY_ROTATION_GRACE_MS; the new one is active from `at`
//   key-revoked   "key <id> revoked from <ISO>: ..." the key is revoked, valid for batches before that time

/** How long after a rotation batches signed with the old key are still valid (the server's ROTATION_GRACE_MS). */
export const KEY_ROTATION_GRACE_MS = 5 * 60_000;

export type LoggedKeyStatus = 'active' | 'retired' | 'revoked';

export interface LoggedKeyValidity {
  gateway: string;
  keyId: string;
  status: LoggedKeyStatus;
  /** when the log says it was registered (null: registered without a logged enrollment, from the server config) */
  validFrom: number | null;
  /** batches whose latest record is at or after this time are not valid (null: no limit) */
  validUntil: number | null;
  /** the log indexes of the events that concern it */
  events: number[];
}

export interface LoggedKeyEvent {
  index: number;
  at: number;
  gateway: string;
  kind: string;
  detail: string;
}

const KEY_ID = '([0-9a-f]{8})';
const ENROLLED = new RegExp(`^key ${KEY_ID} registered\\b`);
const ROTATED = new RegExp(`^key ${KEY_ID} replaced by ${KEY_ID}$`);
const REVOKED = new RegExp(`^key ${KEY_ID} revoked from (\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(?:\\.\\d+)?Z)(?::|$)`);

const RANK: Record<LoggedKeyStatus, number> = { active: 0, retired: 1, revoked: 2 };

/** The stricter of two statuses (revoked > retired > active). */
export function stricterStatus(a: LoggedKeyStatus, b: LoggedKeyStatus): LoggedKeyStatus {
  return RANK[a] >= RANK[b] ? a : b;
}

/** Whether `status` says less than `logged` (an active key the log retired or revoked). */
export function weakerStatus(status: string, logged: LoggedKeyStatus): boolean {
  const rank = status === 'active' || status === 'retired' || status === 'revoked' ? RANK[status] : -1;
  return rank < RANK[logged];
}

const minUntil = (a: number | null, b: number): number => (a === null ? b : Math.min(a, b));

/**
 * Applies the events, in log order, and returns every key they name, by `${gateway} ${keyId}`. An event whose
 * detail does not read is returned in `unread` (the caller reports it): a key event the verifier cannot apply must
 * not pass silently.
 */
export function deriveKeyValidity(events: readonly LoggedKeyEvent[]): { keys: Map<string, LoggedKeyValidity>; unread: LoggedKeyEvent[] } {
  const keys = new Map<string, LoggedKeyValidity>();
  const unread: LoggedKeyEvent[] = [];
  const key = (gateway: string, keyId: string): LoggedKeyValidity => {
    const id = `${gateway} ${keyId}`;
    let k = keys.get(id);
    if (k === undefined) {
      k = { gateway, keyId, status: 'active', validFrom: null, validUntil: null, events: [] };
      keys.set(id, k);
    }
    return k;
  };
  for (const e of [...events].sort((a, b) => a.index - b.index)) {
    if (e.kind === 'enrolled') {
      const m = ENROLLED.exec(e.detail);
      if (m === null) {
        unread.push(e);
        continue;
      }
      const keyId = m[1] ?? '';
      for (const other of keys.values())
        if (other.gateway === e.gateway && other.keyId !== keyId && other.status === 'active') {
          other.status = 'retired';
          other.validUntil = minUntil(other.validUntil, e.at);
          other.events.push(e.index);
        }
      const k = key(e.gateway, keyId);
      // a key enrolled again is active again, with no limit (as the registry does); a revoked one cannot be
      if (k.status !== 'revoked') {
        k.status = 'active';
        k.validUntil = null;
      }
      k.validFrom ??= e.at;
      k.events.push(e.index);
    } else if (e.kind === 'key-rotated') {
      const m = ROTATED.exec(e.detail);
      if (m === null) {
        unread.push(e);
        continue;
      }
      const old = key(e.gateway, m[1] ?? '');
      old.status = stricterStatus(old.status, 'retired');
      old.validUntil = minUntil(old.validUntil, e.at + KEY_ROTATION_GRACE_MS);
      old.events.push(e.index);
      const next = key(e.gateway, m[2] ?? '');
      next.validFrom ??= e.at;
      next.events.push(e.index);
    } else if (e.kind === 'key-revoked') {
      const m = REVOKED.exec(e.detail);
      const from = m === null ? NaN : Date.parse(m[2] ?? '');
      if (m === null || !Number.isFinite(from)) {
        unread.push(e);
        continue;
      }
      const k = key(e.gateway, m[1] ?? '');
      k.status = 'revoked';
      k.validUntil = minUntil(k.validUntil, from);
      k.events.push(e.index);
    } else unread.push(e);
  }
  return { keys, unread };
}
