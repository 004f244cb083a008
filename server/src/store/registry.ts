// Gateways and the instruments they announced in their BIRTH messages.
import type { BirthMessage, InstrumentCommand } from '@labtrace/protocols';
import { sql, type Kysely } from 'kysely';
import type { LabDatabase, Tables } from './database.js';
import { dialectOf } from './portable-ddl.js';

/**
 * the advisory lock (two-key form) under which a PostgreSQL transaction records a BIRTH, so that two nodes recording
 * births at once never give two new instruments one place in the register ('ltrg')
 */
const INSTRUMENTS_LOCK = [0x6c74_7267, 1] as const;

export interface GatewayRecord {
  id: string;
  lab: string;
  version: string | null;
  firstSeen: number;
  lastSeen: number;
}

export interface InstrumentRecord {
  id: string;
  gateway: string;
  identity: BirthMessage['instruments'][number]['identity'];
  /** how the gateway reads it (modbus, mqtt, balance, ...), null when its gateway did not say */
  protocol: string | null;
  channels: { name: string; unit: string }[];
  /** what its gateway sends to it when asked (zero, tare); empty: nothing */
  commands: InstrumentCommand[];
}

export class Registry {
  // only its Kysely store: the same on SQLite and PostgreSQL
  constructor(private readonly database: Pick<LabDatabase, 'db'>) {}

  async recordBirth(lab: string, birth: BirthMessage, now = Date.now()): Promise<void> {
    const postgres = dialectOf(this.database.db as unknown as Kysely<unknown>) === 'postgres';
    await this.database.db.transaction().execute(async (trx) => {
      // taken first, before any row is written: SQLite has one writer; on PostgreSQL the births are numbered one at a time
      if (postgres && birth.instruments.length > 0)
        await sql`SELECT pg_advisory_xact_lock(${INSTRUMENTS_LOCK[0]}, ${INSTRUMENTS_LOCK[1]})`.execute(trx);
      await trx
        .insertInto('gateways')
        .values({ id: birth.gateway, lab, version: birth.version, session: birth.session, first_seen: now, last_seen: now })
        .onConflict((oc) => oc.column('id').doUpdateSet({ version: birth.version, session: birth.session, last_seen: now }))
        .execute();
      for (const instrument of birth.instruments) {
        const row = {
          gateway: birth.gateway,
          identity: JSON.stringify(instrument.identity),
          protocol: instrument.protocol ?? null,
          channels: JSON.stringify(instrument.channels),
          commands: instrument.commands === undefined || instrument.commands.length === 0 ? null : JSON.stringify(instrument.commands),
          updated_at: now,
        };
        // a new instrument is placed after the newest in the register (store migration 0063); a known one keeps its place
        await trx
          .insertInto('instruments')
          .values({ id: instrument.id, ...row, position: sql<number>`(SELECT COALESCE(MAX(position), 0) + 1 FROM instruments)` })
          .onConflict((oc) => oc.column('id').doUpdateSet(row))
          .execute();
      }
    });
  }

  async touchGateway(id: string, now = Date.now()): Promise<void> {
    await this.database.db.updateTable('gateways').set({ last_seen: now }).where('id', '=', id).execute();
  }

  async gateways(): Promise<GatewayRecord[]> {
    const rows = await this.database.db.selectFrom('gateways').selectAll().orderBy('id').execute();
    return rows.map((r) => ({ id: r.id, lab: r.lab, version: r.version, firstSeen: r.first_seen, lastSeen: r.last_seen }));
  }

  async instruments(): Promise<InstrumentRecord[]> {
    const rows = await this.database.db.selectFrom('instruments').selectAll().orderBy('id').execute();
    return rows.map((r) => ({
      id: r.id,
      gateway: r.gateway,
      identity: JSON.parse(r.identity) as InstrumentRecord['identity'],
      protocol: r.protocol,
      channels: JSON.parse(r.channels) as InstrumentRecord['channels'],
      commands: r.commands === null ? [] : (JSON.parse(r.commands) as InstrumentCommand[]),
    }));
  }

  /** Whether an instrument is known; `db`: a transaction of the caller's to read in. */
  async known(id: string, db: Kysely<Tables> = this.database.db): Promise<boolean> {
    return (await db.selectFrom('instruments').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
  }

  /** The ids of the instruments known, in order; `db`: a transaction of the caller's to read in. */
  async instrumentIds(db: Kysely<Tables> = this.database.db): Promise<string[]> {
    return (await db.selectFrom('instruments').select('id').orderBy('id').execute()).map((r) => r.id);
  }

  async instrument(id: string): Promise<InstrumentRecord | undefined> {
    return (await this.instruments()).find((i) => i.id === id);
  }
}
