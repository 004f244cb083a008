// The security and integrity events of the lab: refused batches (forged, altered, replayed, unknown
// or revoked key), gaps and breaks in a gateway's chain, duplicates, enrollments and key changes.
// Kept durably; an alarm is also logged and pushed to whoever listens.
import { EventEmitter } from 'node:events';
import type { Statement } from 'better-sqlite3';
import type { LabDatabase } from '../store/database.js';
import type { Logger } from '../log.js';

export const EVENT_KINDS = [
  'unsigned',
  'unknown-key',
  'revoked-key',
  'retired-key',
  'forged',
  'altered',
  'conflict',
  'foreign-gateway',
  'duplicate',
  'replay',
  'batch-gap',
  'gap-filled',
  'sequence-gap',
  'sequence-jump',
  'samples-refused',
  'chain-break',
  'enrolled',
  'enrollment-refused',
  'key-rotated',
  'key-revoked',
  /** the server's store: free space below the reserve, a write failed, or it can write again (gateway "") */
  'store-capacity',
] as const;
export type SecurityEventKind = (typeof EVENT_KINDS)[number];
export type Severity = 'info' | 'notice' | 'alarm';

export interface SecurityEvent {
  id: number;
  at: number;
  gateway: string;
  kind: SecurityEventKind;
  severity: Severity;
  batch: number | null;
  detail: string;
}

interface Events {
  event: [event: SecurityEvent];
}

export class SecurityEvents extends EventEmitter<Events> {
  private insert: Statement | undefined;

  constructor(
    private readonly database: LabDatabase,
    private readonly logger: Logger,
  ) {
    super();
  }

  /** Records an event (inside the caller's transaction, if any) and logs it; alarms at error level. */
  record(gateway: string, kind: SecurityEventKind, severity: Severity, detail: string, batch: number | null = null, at = Date.now()): SecurityEvent {
    this.insert ??= this.database.sqlite.prepare(
      'INSERT INTO security_events (at, gateway, kind, severity, batch, detail) VALUES (?, ?, ?, ?, ?, ?)',
    );
    const info = this.insert.run(at, gateway, kind, severity, batch, detail);
    const event: SecurityEvent = { id: Number(info.lastInsertRowid), at, gateway, kind, severity, batch, detail };
    const fields = { gateway, kind, batch, detail };
    if (severity === 'alarm') this.logger.error(fields, `ALARM: ${kind}`);
    else if (severity === 'notice') this.logger.warn(fields, kind);
    else this.logger.info(fields, kind);
    this.emit('event', event);
    return event;
  }

  list(filter: { gateway?: string; kind?: SecurityEventKind; since?: number; limit?: number } = {}): SecurityEvent[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.gateway !== undefined) {
      where.push('gateway = ?');
      args.push(filter.gateway);
    }
    if (filter.kind !== undefined) {
      where.push('kind = ?');
      args.push(filter.kind);
    }
    if (filter.since !== undefined) {
      where.push('at >= ?');
      args.push(filter.since);
    }
    const sqlText = `SELECT * FROM security_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    return this.database.sqlite.prepare(sqlText).all(...args, filter.limit ?? 100) as SecurityEvent[];
  }
}
