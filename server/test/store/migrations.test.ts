// The store's migrations keep what is stored: samples written in the first layout read back the same
// after the move to the compact one, through the store and through the readable view.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect, test } from '@jest/globals';
import { LabDatabase } from '../../src/store/database.js';
import { MeasurementStore } from '../../src/store/measurement-store.js';
import { serverMigrations } from '../../src/migrations.js';

test('samples of the first layout survive the compact layout, values and kinds unchanged', async () => {
  const database = new LabDatabase(mkdtempSync(path.join(tmpdir(), 'labtrace-mig-')), serverMigrations);
  await database.migrate('0003_trust');
  const insert = database.sqlite.prepare(
    `INSERT INTO measurements (gateway, seq, instrument, channel, ts, value_num, value_text, value_kind, unit, quality, reason, received_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`,
  );
  insert.run('gw-1', 0, 'utm-1', 'force', 1000, 12.5, null, 'number', 'kN', 'good', null);
  insert.run('gw-1', 1, 'utm-1', 'door', 1001, 1, null, 'boolean', '', 'uncertain', null);
  insert.run('gw-1', 2, 'utm-1', 'state', 1002, null, 'Überlast', 'string', '', 'bad', 'E_RANGE');
  insert.run('gw-2', 0, 'bal-1', 'mass', 1003, null, null, 'null', 'g', 'bad', 'timeout');
  await database.migrate();
  const store = new MeasurementStore(database);
  store.open();
  expect(store.count()).toBe(4);
  expect(store.history('utm-1', 'force', 0, 5000, 10)).toEqual([
    { gateway: 'gw-1', seq: 0, instrument: 'utm-1', channel: 'force', ts: 1000, value: 12.5, unit: 'kN', quality: 'good' },
  ]);
  expect(
    store
      .latest('utm-1')
      .map((s) => [s.channel, s.value, s.quality])
      .sort(),
  ).toEqual([
    ['door', true, 'uncertain'],
    ['force', 12.5, 'good'],
    ['state', 'Überlast', 'bad'],
  ]);
  const view = database.sqlite
    .prepare('SELECT gateway, seq, value_num, value_text, value_kind, unit, quality, reason FROM measurements ORDER BY gateway, seq')
    .all();
  expect(view).toEqual([
    { gateway: 'gw-1', seq: 0, value_num: 12.5, value_text: null, value_kind: 'number', unit: 'kN', quality: 'good', reason: null },
    { gateway: 'gw-1', seq: 1, value_num: 1, value_text: null, value_kind: 'boolean', unit: '', quality: 'uncertain', reason: null },
    { gateway: 'gw-1', seq: 2, value_num: null, value_text: 'Überlast', value_kind: 'string', unit: '', quality: 'bad', reason: 'E_RANGE' },
    { gateway: 'gw-2', seq: 0, value_num: null, value_text: null, value_kind: 'null', unit: 'g', quality: 'bad', reason: 'timeout' },
  ]);
  await database.close();
});

test('a start on an older store tells each migration as it is applied: its place among those left, in order, once', async () => {
  const database = new LabDatabase(mkdtempSync(path.join(tmpdir(), 'labtrace-mig-')), serverMigrations);
  await database.migrate('0003_trust');
  const steps: { name: string; index: number; total: number; ms: number }[] = [];
  await database.migrate(undefined, (step) => steps.push(step));
  const left = Object.keys(serverMigrations)
    .sort()
    .filter((name) => name > '0003_trust');
  expect(steps.map((s) => s.name)).toEqual(left);
  expect(steps.map((s) => s.index)).toEqual(left.map((_, i) => i + 1));
  expect(new Set(steps.map((s) => s.total))).toEqual(new Set([left.length]));
  for (const s of steps) expect(s.ms).toBeGreaterThanOrEqual(0);
  // and nothing when nothing is left
  const again: unknown[] = [];
  await database.migrate(undefined, (step) => again.push(step));
  expect(again).toEqual([]);
  await database.close();
});
