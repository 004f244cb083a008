// Each gateway key's validity as the transparency log's key events state it, so that the verifier does not have to
// believe keys.json. The events are structured records (protocols/src/trust/key-event.ts), applied in log order; the
// rule is the server's (docs/trust.md, "Key validity"), stated in what the log proves, never in the times a batch
// carries:
//   - a batch under a key may not be in the log after the event that ended the key (its revocation, its retirement
//     at a new enrollment, or the end of a rotation's grace): the server refuses such a batch, so one there means
//     the log holds what the server should have refused;
//   - a revoked key's batches are valid only up to the revocation's lastValidBatch (stored batches that arrived
//     after the time the key is revoked from are not).
// Entries of the text form earlier servers wrote (no `type`) are not read: a lab's first start with structured key
// events writes every key's state as such events (source "migration"), after them in the log.
import { isKeyEventRecord, parseKeyEvent, type KeyEvent } from '../trust/key-event.js';

export type LoggedKeyStatus = 'active' | 'retired' | 'revoked';

export interface LoggedKeyValidity {
  gateway: string;
  keyId: string;
  status: LoggedKeyStatus;
  /** when the log says it was registered (null: no logged registration) */
  validFrom: number | null;
  /** server arrival time from which no new batch under the key is accepted (null: no limit) */
  validUntil: number | null;
  /** the log index of the event that ended the key: no batch under it may have a later one (null: open) */
  closedAt: number | null;
  /** a revoked key: the highest valid batch number (null: none valid, or not revoked) */
  lastValidBatch: number | null;
  /** the key that replaced it, when the log says */
  replacedBy: string | null;
  /** the log indexes of the events that concern it */
  events: number[];
}

/** A structured key event and its log index. */
export interface LoggedKeyEvent {
  index: number;
  record: KeyEvent;
}

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

const minOf = (a: number | null, b: number): number => (a === null ? b : Math.min(a, b));

/**
 * Reads a key-event log entry's JSON: a structured record, a `legacy` text event of an earlier server (not applied),
 * or `unreadable` with the reason (a structured record that does not read: the caller reports it).
 */
export function readKeyEventEntry(value: unknown): { kind: 'event'; record: KeyEvent } | { kind: 'legacy' } | { kind: 'unreadable'; reason: string } {
  if (!isKeyEventRecord(value)) {
    const v = value as Record<string, unknown> | null;
    const legacy = typeof v === 'object' && v !== null && typeof v.kind === 'string' && typeof v.detail === 'string' && !('type' in v);
    return legacy ? { kind: 'legacy' } : { kind: 'unreadable', reason: 'neither a structured key event nor a text event of an earlier version' };
  }
  try {
    return { kind: 'event', record: parseKeyEvent(value) };
  } catch (err) {
    return { kind: 'unreadable', reason: (err as Error).message };
  }
}

/** Applies the events, in log order, and returns every key they name, by `${gateway} ${keyId}`. */
export function deriveKeyValidity(events: readonly LoggedKeyEvent[]): Map<string, LoggedKeyValidity> {
  const keys = new Map<string, LoggedKeyValidity>();
  const key = (gateway: string, keyId: string): LoggedKeyValidity => {
    const id = `${gateway} ${keyId}`;
    let k = keys.get(id);
    if (k === undefined) {
      k = { gateway, keyId, status: 'active', validFrom: null, validUntil: null, closedAt: null, lastValidBatch: null, replacedBy: null, events: [] };
      keys.set(id, k);
    }
    return k;
  };
  for (const { index, record: e } of [...events].sort((a, b) => a.index - b.index)) {
    const k = key(e.gateway, e.keyId);
    k.events.push(index);
    switch (e.event) {
      case 'registered':
        // registered (again): active, with no limit, as the registry does; a revoked key cannot be
        if (k.status !== 'revoked') {
          k.status = 'active';
          k.validUntil = null;
          k.closedAt = null;
          k.replacedBy = null;
        }
        k.validFrom ??= e.at;
        break;
      case 'rotated': {
        k.status = stricterStatus(k.status, 'retired');
        k.validUntil = minOf(k.validUntil, e.graceUntil);
        k.replacedBy = e.newKeyId;
        const next = key(e.gateway, e.newKeyId);
        next.validFrom ??= e.at;
        next.events.push(index);
        break;
      }
      case 'retired':
        k.status = stricterStatus(k.status, 'retired');
        k.validUntil = minOf(k.validUntil, e.at);
        k.closedAt ??= index;
        if (e.replacedBy !== null) k.replacedBy = e.replacedBy;
        break;
      case 'revoked': {
        const before = k.status === 'revoked' ? k.lastValidBatch : undefined;
        k.status = 'revoked';
        k.validUntil = minOf(k.validUntil, e.from);
        k.closedAt ??= index;
        k.lastValidBatch =
          before === undefined ? e.lastValidBatch : before === null || e.lastValidBatch === null ? null : Math.min(before, e.lastValidBatch);
        break;
      }
    }
  }
  return keys;
}

/**
 * Why a batch under a key is not valid by the logged key events (or keys.json held to them), or undefined: `logIndex`
 * is the batch header's log index (null: not in the log).
 */
export function batchKeyProblem(
  key: { keyId: string; status: string; closedAt: number | null; lastValidBatch: number | null },
  batch: number,
  logIndex: number | null,
): string | undefined {
  if (key.closedAt !== null && logIndex !== null && logIndex > key.closedAt)
    return `the batch entered the log at index ${logIndex}, after the key event at index ${key.closedAt} that ended key ${key.keyId}: the server should have refused it`;
  if (key.status === 'revoked' && (key.lastValidBatch === null || batch > key.lastValidBatch))
    return `key ${key.keyId} is revoked, valid for ${key.lastValidBatch === null ? 'no batch' : `batches up to ${key.lastValidBatch}`}, this is batch ${batch}`;
  return undefined;
}
