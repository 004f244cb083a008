// The inspection alarms of test runs (inspection/run-inspection.ts).
import type { Kysely, Migration } from 'kysely';
import { ddl } from '../store/portable-ddl.js';

export const inspectionMigrations: Record<string, Migration> = {
  '0012_run_alarms': {
    async up(db: Kysely<unknown>) {
      // The inspection alarms of test runs as an append-only history of events (raised, escalated, recurred,
      // returned, acknowledged, cleared), each with the alarm as it stood after it: an alarm's state is its
      // newest event, so a restart keeps what was raised and who acknowledged or cleared it, with the reason.
      await ddl(
        db,
        `CREATE TABLE run_alarms (
      id INTEGER PRIMARY KEY AUTOINCREMENT, run TEXT NOT NULL REFERENCES runs(id), alarm TEXT NOT NULL, event TEXT NOT NULL,
      at INTEGER NOT NULL, rule_id TEXT NOT NULL, severity TEXT NOT NULL, instrument TEXT NOT NULL, channel TEXT,
      detail TEXT NOT NULL, person TEXT, reason TEXT)`,
      );
      await ddl(db, `CREATE INDEX run_alarms_by_run ON run_alarms (run, alarm, id)`);
      await ddl(
        db,
        `CREATE TRIGGER run_alarms_no_delete BEFORE DELETE ON run_alarms BEGIN SELECT RAISE(ABORT, 'lab records are never deleted'); END`,
      );
      await ddl(
        db,
        `CREATE TRIGGER run_alarms_no_update BEFORE UPDATE ON run_alarms BEGIN SELECT RAISE(ABORT, 'run_alarms rows are written once'); END`,
      );
    },
  },
};
