// Stores samples idempotently (a resent batch changes nothing) and answers the dashboard's reads.
import type { Statement } from 'better-sqlite3';
import { LabtraceError, type LiveSample, type Quality, type Sample, type SignedBatch } from '@labtrace/protocols';
import type { LabDatabase } from './database.js';

interface Row {
  gateway: string;
  seq: number;
  instrument: string;
  channel: string;
  ts: number;
  value_num: number | null;
  value_text: string | null;
  value_kind: 'number' | 'string' | 'boolean' | 'null';
  unit: string;
  quality: Quality;
}

function valueOf(row: Row): LiveSample['value'] {
  switch (row.value_kind) {
    case 'number':
      return row.value_num;
    case 'boolean':
      return row.value_num === 1;
    case 'string':
      return row.value_text;
    case 'null':
      return null;
  }
}

export function toLive(row: Row): LiveSample {
  return {
    gateway: row.gateway,
    seq: row.seq,
    instrument: row.instrument,
    channel: row.channel,
    ts: row.ts,
    value: valueOf(row),
    unit: row.unit,
    quality: row.quality,
  };
}

interface Statements {
  insertMany: (gateway: string, samples: Sample[], now: number) => Sample[];
  latest: Statement;
  history: Statement;
  count: Statement;
  insertHeader: Statement;
}

export class MeasurementStore {
  private prepared: Statements | undefined;

  constructor(private readonly database: LabDatabase) {}

  /** Prepares the statements; call after the schema is migrated. */
  open(): void {
    const db = this.database.sqlite;
    const insert = db.prepare(
      `INSERT OR IGNORE INTO measurements (gateway, seq, instrument, channel, ts, value_num, value_text, value_kind, unit, quality, reason, received_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const getOne = db.prepare('SELECT instrument, channel, ts FROM measurements WHERE gateway = ? AND seq = ?');
    const insertMany = db.transaction((gateway: string, samples: Sample[], now: number) => {
      const fresh: Sample[] = [];
      for (const s of samples) {
        const kind = s.value === null ? 'null' : typeof s.value === 'number' ? 'number' : typeof s.value === 'boolean' ? 'boolean' : 'string';
        const num = typeof s.value === 'number' ? s.value : typeof s.value === 'boolean' ? Number(s.value) : null;
        const text = typeof s.value === 'string' ? s.value : null;
        const info = insert.run(gateway, s.seq, s.instrument, s.channel, s.ts, num, text, kind, s.unit, s.quality, s.reason ?? null, now);
        if (info.changes > 0) fresh.push(s);
        else {
          // A resent record is identical; a different record under a stored number means the gateway
          // reused sequence numbers (a wiped or restored data directory). Acknowledging would lose it.
          const stored = getOne.get(gateway, s.seq) as { instrument: string; channel: string; ts: number } | undefined;
          if (stored && (stored.instrument !== s.instrument || stored.channel !== s.channel || stored.ts !== s.ts)) {
            throw new LabtraceError(
              'E_STORE',
              `sequence number ${s.seq} of ${gateway} is already stored for another record (${stored.instrument}/${stored.channel} at ${stored.ts})`,
            );
          }
        }
      }
      return fresh;
    });
    this.prepared = {
      insertMany,
      latest: db.prepare(
        `SELECT m.* FROM measurements m
         JOIN (SELECT instrument, channel, MAX(ts) AS ts FROM measurements WHERE instrument = ? GROUP BY instrument, channel) l
           ON m.instrument = l.instrument AND m.channel = l.channel AND m.ts = l.ts`,
      ),
      history: db.prepare(
        `SELECT * FROM (SELECT * FROM measurements WHERE instrument = ? AND channel = ? AND ts >= ? AND ts <= ? ORDER BY ts DESC, seq DESC LIMIT ?) ORDER BY ts, seq`,
      ),
      count: db.prepare('SELECT COUNT(*) AS n FROM measurements'),
      insertHeader: db.prepare(
        'INSERT OR IGNORE INTO batch_headers (gateway, batch, first_seq, count, header, signature, received_at, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
    };
  }

  private get stmts(): Statements {
    if (!this.prepared) throw new LabtraceError('E_STORE', 'measurement store used before open()');
    return this.prepared;
  }

  /**
   * Stores a gateway's verified batch: its signed header and its records, in one transaction (the
   * caller's, when it runs inside one). Returns the records not stored before.
   */
  store(gateway: string, samples: Sample[], signed: SignedBatch, headerHash: string, now = Date.now()): Sample[] {
    return this.database.sqlite.transaction(() => {
      this.stmts.insertHeader.run(
        gateway,
        signed.header.batch,
        signed.header.firstSeq,
        signed.header.count,
        JSON.stringify(signed.header),
        signed.signature,
        now,
        headerHash,
      );
      return this.stmts.insertMany(gateway, samples, now);
    })();
  }

  latest(instrument: string): LiveSample[] {
    return (this.stmts.latest.all(instrument) as Row[]).map(toLive);
  }

  history(instrument: string, channel: string, from: number, to: number, limit: number): LiveSample[] {
    return (this.stmts.history.all(instrument, channel, from, to, limit) as Row[]).map(toLive);
  }

  count(): number {
    return (this.stmts.count.get() as { n: number }).n;
  }
}
