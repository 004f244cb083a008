// The rules over hand-made evidence, for the cases the two labs of supervisor.test.ts do not seed: an instrument out
// of service or with a failed check during the run, a revocation without a last valid batch, a report in the log
// the lab does not list, an amendment without a reason; and what each rule must not find.
import { describe, expect, test } from '@jest/globals';
import { DEFAULT_RULE_SETTINGS, type LabEvidence, type LogEntryEvidence, type RunEvidence } from '../../src/supervisor/evidence.js';
import { calibrationAtRun } from '../../src/supervisor/rules/calibration-at-run.js';
import { certificatesLogged } from '../../src/supervisor/rules/certificates-logged.js';
import { lateAmendment } from '../../src/supervisor/rules/late-amendment.js';
import { revokedKey } from '../../src/supervisor/rules/revoked-key.js';
import { sequenceGaps } from '../../src/supervisor/rules/sequence-gaps.js';

const T = Date.UTC(2026, 5, 1);
const DAY = 86_400_000;

function evidence(overrides: Partial<LabEvidence> = {}): LabEvidence {
  return {
    lab: 'l',
    now: T + 10 * DAY,
    settings: DEFAULT_RULE_SETTINGS,
    witnesses: { names: [], required: 0 },
    checkpoints: [],
    entries: [],
    runs: [run('run-1')],
    alarms: new Map(),
    certificates: [cert('TR-1', 'run-1', 0)],
    instruments: new Map([
      ['ut-1', { id: 'ut-1', calibrations: [{ calibratedAt: T - 30 * DAY, nextDueAt: T + 300 * DAY, certificate: 'C-1' }], checks: [], status: [] }],
    ]),
    conflicts: [],
    ...overrides,
  };
}

function run(id: string, ranges: RunEvidence['ranges'] = []): RunEvidence {
  return {
    id,
    technician: 'tech',
    createdBy: 'tech',
    state: 'completed',
    instruments: [{ id: 'ut-1', gateway: 'gw' }],
    startedAt: T,
    endedAt: T + 3_600_000,
    ranges,
    openAlarms: 0,
  };
}

function cert(
  id: string,
  runId: string,
  logIndex: number | null,
  extra: Partial<LabEvidence['certificates'][number]> = {},
): LabEvidence['certificates'][number] {
  return { id, run: runId, status: 'valid', issuedBy: 'sig', issuedAt: T + DAY, amends: null, amendReason: null, logIndex, digests: null, ...extra };
}

const batch = (index: number, b: number, firstSeq: number, count: number, at = T): LogEntryEvidence => ({
  index,
  kind: 'batch-header',
  at,
  value: { header: { gateway: 'gw', keyId: 'k1', batch: b, firstSeq, count }, signature: 's' },
});
const issue = (index: number, certificate: string): LogEntryEvidence => ({
  index,
  kind: 'certificate-event',
  at: T + DAY,
  value: { kind: 'issue', certificate },
});

describe('calibration-at-run', () => {
  test('nothing for a run inside a valid calibration, in service', () => {
    expect(calibrationAtRun.check(evidence())).toEqual([]);
  });

  test.each([
    [
      'taken out of service during the run',
      { status: [{ status: 'out-of-service' as const, at: T + 60_000, reason: 'overload' }] },
      /taken out of service \(overload\)/,
    ],
    [
      'out of service since before the run',
      { status: [{ status: 'out-of-service' as const, at: T - DAY, reason: 'broken' }] },
      /it was out of service/,
    ],
    [
      'back in service before the run',
      {
        status: [
          { status: 'out-of-service' as const, at: T - 2 * DAY, reason: 'x' },
          { status: 'in-service' as const, at: T - DAY, reason: 'repaired' },
        ],
      },
      null,
    ],
    ['a failed intermediate check before the run', { checks: [{ checkedAt: T - DAY, result: 'fail' as const }] }, /failed an intermediate check/],
    [
      'calibrated only after the run',
      { calibrations: [{ calibratedAt: T + DAY, nextDueAt: T + 300 * DAY, certificate: 'C-2' }] },
      /not yet calibrated/,
    ],
  ])('%s', (_what, instrument, expected) => {
    const ev = evidence();
    const base = ev.instruments.get('ut-1');
    if (base === undefined) throw new Error('no instrument');
    ev.instruments.set('ut-1', { ...base, ...instrument });
    const found = calibrationAtRun.check(ev);
    if (expected === null) expect(found).toEqual([]);
    else expect(found.map((f) => f.summary)).toEqual([expect.stringMatching(expected)]);
  });
});

describe('sequence-gaps', () => {
  test('batches that cover the range, in any order and overlapping, make no finding; a hole does', () => {
    const ranges = [{ gateway: 'gw', firstSeq: 10, lastSeq: 29 }];
    const covered = evidence({ runs: [run('run-1', ranges)], entries: [batch(0, 1, 20, 10), batch(1, 0, 5, 10), batch(2, 2, 15, 6)] });
    expect(sequenceGaps.check(covered)).toEqual([]);
    const holed = evidence({ runs: [run('run-1', ranges)], entries: [batch(0, 0, 10, 5), batch(1, 1, 18, 12)] });
    const [f] = sequenceGaps.check(holed);
    expect(f?.detail).toEqual({ gaps: [{ from: 15, to: 17 }] });
    expect(f?.entries.map((e) => e.index)).toEqual([0, 1]);
  });
});

describe('revoked-key-records', () => {
  test('without a last valid batch, batches that arrived from the revocation on are found', () => {
    const revoked: LogEntryEvidence = {
      index: 2,
      kind: 'key-event',
      at: T + 10,
      value: { event: 'revoked', gateway: 'gw', keyId: 'k1', from: T + 5, lastValidBatch: null },
    };
    const found = revokedKey.check(evidence({ entries: [batch(0, 0, 0, 5, T), batch(1, 1, 5, 5, T + 6), revoked] }));
    expect(found).toHaveLength(1);
    expect(found[0]?.detail).toEqual({ batches: [1] });
  });
});

describe('certificates-logged', () => {
  test('a report in the log that the lab does not list is found; one listed and logged is not', () => {
    const found = certificatesLogged.check(evidence({ entries: [issue(0, 'TR-1'), issue(1, 'TR-hidden')] }));
    expect(found.map((f) => f.key)).toEqual(['logged/TR-hidden']);
  });

  test('a report whose log entry carries other digests is found', () => {
    const digests = { json: 'a', pdf: 'b', dcc: 'c' };
    const entry: LogEntryEvidence = {
      index: 0,
      kind: 'certificate-event',
      at: T,
      value: { kind: 'issue', certificate: 'TR-1', digests: { dcc: 'c', json: 'a', pdf: 'b' } },
    };
    expect(certificatesLogged.check(evidence({ entries: [entry], certificates: [cert('TR-1', 'run-1', 0, { digests })] }))).toEqual([]);
    const changed = { ...digests, pdf: 'x' };
    expect(
      certificatesLogged.check(evidence({ entries: [entry], certificates: [cert('TR-1', 'run-1', 0, { digests: changed })] }))[0]?.summary,
    ).toMatch(/differs from its log entry 0/);
  });
});

describe('late-amendment', () => {
  test('an amendment without a reason is found even when it comes early; one with a reason in time is not', () => {
    const amended = (reason: string | null) =>
      evidence({
        certificates: [cert('TR-1', 'run-1', null), cert('TR-2', 'run-1', null, { amends: 'TR-1', amendReason: reason, issuedAt: T + 2 * DAY })],
      });
    expect(lateAmendment.check(amended('typo in the customer address'))).toEqual([]);
    expect(lateAmendment.check(amended(null))[0]?.summary).toMatch(/TR-2 amends TR-1 without a reason/);
  });
});
