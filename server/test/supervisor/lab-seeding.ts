// A lab for the supervisor's tests: a real test server with a gateway, instruments, a sample and methods, and the
// steps of a lab's work (calibrate, run, measure, issue, amend) through its API, with an accreditation to configure
// (its reports then carry the mark); and tampering with its
// store for the violations the server itself refuses to commit (a tampered database, as an auditor would meet it).
import { expect } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Sample } from '@labtrace/protocols';
import { jsonCaller, ORGANIZATION, postJson, send, startServer, TestGateway, type TestServer } from '../helpers/server.js';
import { dialectOf } from '../../src/store/portable-ddl.js';
import { rowCount } from '../helpers/store-reads.js';
import { waitFor } from '../helpers/server.js';

const DAY = 86_400_000;
const json = postJson;

/**
 * The lab's `accreditation:` configuration for `start`: CNAS L1234 over the force of ISO 6892-1:2019 (the standard of
 * both methods) from 0 to 100 kN, so that a run's reports carry the mark unless a value goes above 100 kN.
 */
export const ACCREDITED = {
  accreditations: [
    {
      id: 'acc-1',
      body: 'CNAS',
      number: 'L1234',
      validFrom: '2020-01-01',
      validTo: Date.now() + 365 * DAY,
      scope: [{ standard: 'ISO 6892-1:2019', measurand: 'force', unit: 'kN', min: 0, max: 100 }],
    },
  ],
};

export class SeededLab {
  private seq = 0;
  readonly call: ReturnType<typeof jsonCaller>;

  private constructor(
    readonly t: TestServer,
    readonly gw: TestGateway,
  ) {
    this.call = jsonCaller(
      () => t,
      () => '',
    );
  }

  /** `overrides`: more of the lab server's configuration (its `supervision:`); `logger`: where the server logs */
  static async start(overrides: Record<string, unknown> = {}, logger?: Logger): Promise<SeededLab> {
    const t = await startServer(
      {
        laboratory: { name: 'labtrace test laboratory', address: '1 Test Street, 12345 Testtown', country: 'DE' },
        ...overrides,
      },
      ...(logger === undefined ? [] : [logger]),
    );
    const gw = await TestGateway.connect(t, 'gw-a');
    const lab = new SeededLab(t, gw);
    await gw.birth('utm-1', 'utm-2');
    await waitFor('the instruments', async () => (await rowCount(t.server, 'instruments')) === 2);
    const now = Date.now();
    for (const instrument of ['utm-1', 'utm-2']) await lab.calibrate(instrument, now - 10 * DAY, now + 300 * DAY);
    const sample = { id: 'B-1', organization: ORGANIZATION, description: 'steel bar B500B, 10 mm', condition: 'intact', receivedAt: now - DAY };
    expect((await lab.call('/api/lab-samples', json(sample))).status).toBe(201);
    await lab.method('tensile', []);
    await lab.method('tensile-inspected', [{ id: 'force-limits', kind: 'limits', severity: 'alarm', channel: 'c', high: 100 }]);
    return lab;
  }

  async stop(): Promise<void> {
    await this.gw.end();
    await this.t.stop();
  }

  async calibrate(instrument: string, calibratedAt: number, nextDueAt: number): Promise<void> {
    const res = await this.call(
      `/api/instruments/${instrument}/calibrations`,
      json({
        calibratedAt,
        laboratory: 'Reference Lab',
        certificate: `CAL-${instrument}-${calibratedAt}`,
        results: [{ point: 'p1', reference: 10, indication: 10.01, unit: 'kN' }],
        uncertainty: { value: 0.1, unit: 'kN', k: 2 },
        nextDueAt,
      }),
    );
    expect(res.status).toBe(201);
  }

  private async method(id: string, rules: unknown[]): Promise<void> {
    const res = await this.call(
      '/api/methods',
      json({
        id,
        standard: 'ISO 6892-1:2019',
        title: 'Tensile testing at room temperature',
        definition: {
          measurands: [{ name: 'force', unit: 'kN', channel: 'c' }],
          instrumentTypes: ['x'],
          decisionRule: { kind: 'simple-acceptance' },
          results: [{ name: 'Fm', title: 'maximum force', measurand: 'force', statistic: 'max', resolution: 0.01, repeatability: 0.05 }],
          ...(rules.length === 0 ? {} : { rules }),
        },
      }),
    );
    expect(res.status).toBe(201);
  }

  /** A run measured and completed; `skip` leaves that many sequence numbers out between its two batches. */
  async completedRun(
    options: { instrument?: string; method?: string; skip?: number; values?: number[]; beforeStop?: (run: string) => Promise<void> } = {},
  ): Promise<string> {
    const instrument = options.instrument ?? 'utm-1';
    const created = await this.call<{ id: string }>(
      '/api/runs',
      json({ sample: 'B-1', method: options.method ?? 'tensile', instruments: [instrument] }),
    );
    expect(created.status).toBe(201);
    const id = created.body.id;
    expect((await this.call(`/api/runs/${id}/start`, json({}))).status).toBe(200);
    const values = options.values ?? [10.2, 35.7, 42.031, 41.9, 0.4];
    await this.measure(instrument, values);
    if (options.skip !== undefined) {
      this.seq += options.skip;
      await this.measure(instrument, values);
    }
    await options.beforeStop?.(id);
    expect((await this.call(`/api/runs/${id}/stop`, json({}))).status).toBe(200);
    return id;
  }

  async measure(instrument: string, values: number[]): Promise<void> {
    const ts = Date.now();
    const samples: Sample[] = values.map((value, i) => ({
      seq: this.seq++,
      instrument,
      channel: 'c',
      ts: ts + i,
      value,
      unit: 'kN',
      quality: 'good',
    }));
    expect(await send(this.t, this.gw, this.gw.sign(samples))).toBe('acked');
  }

  /** Requested by the technician, issued by the signatory: its id. */
  async issued(run: string): Promise<string> {
    const draft = await this.call<{ id: string }>('/api/certificates', json({ run }));
    expect(draft.status).toBe(201);
    const res = await this.call<{ status: string }>(`/api/certificates/${draft.body.id}/issue`, json({}), 'signatory');
    expect(res).toMatchObject({ status: 200, body: { status: 'valid' } });
    return draft.body.id;
  }

  async amended(certificate: string, reason: string): Promise<string> {
    const res = await this.call<{ id: string; status: string }>(`/api/certificates/${certificate}/amend`, json({ reason }), 'signatory');
    expect(res).toMatchObject({ status: 201, body: { status: 'valid' } });
    return res.body.id;
  }

  /**
   * Records, behind the lab's back, that its accreditation (ACCREDITED) was suspended over the issue of a report: a
   * suspension a millisecond before it and a reinstatement a millisecond after (the server itself withholds the mark
   * from a report issued while the accreditation is suspended).
   */
  async suspendedOver(certificate: string): Promise<void> {
    await this.tamper(
      'accreditation_events',
      `INSERT INTO accreditation_events (accreditation, kind, at, reason, recorded_by)
       SELECT 'acc-1', 'suspend', issued_at - 1, 'CNAS letter 2026-117', 'admin' FROM certificates WHERE id = '${certificate}'
       UNION ALL SELECT 'acc-1', 'reinstate', issued_at + 1, 'CNAS letter 2026-118', 'admin' FROM certificates WHERE id = '${certificate}'`,
    );
  }

  /** Changes rows the store protects, by dropping the table's triggers first (on SQLite or PostgreSQL). */
  async tamper(table: string, statement: string): Promise<void> {
    const db = this.t.server.db;
    if (dialectOf(db as unknown as Kysely<unknown>) === 'postgres') {
      const { rows } = await sql<{
        name: string;
      }>`SELECT tgname AS name FROM pg_trigger WHERE tgrelid = ${table}::regclass AND NOT tgisinternal`.execute(db);
      for (const { name } of rows) await sql.raw(`DROP TRIGGER ${name} ON ${table}`).execute(db);
    } else {
      const { rows } = await sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ${table}`.execute(db);
      for (const { name } of rows) await sql.raw(`DROP TRIGGER ${name}`).execute(db);
    }
    await sql.raw(statement).execute(db);
  }
}
