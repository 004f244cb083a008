// The rules over hand-made evidence, for the cases the two labs of supervisor.test.ts do not seed: an instrument out
// of service or with a failed check during the run, a revocation without a last valid batch, a report in the log
// the lab does not list, an amendment without a reason, the accreditation mark on a report outside the scope or under
// an accreditation not in force; and what each rule must not find.
import { describe, expect, test } from '@jest/globals';
import { formatCheckpoint, toHex } from '@labtrace/protocols';
import type { CertificateContent, Method } from '@labtrace/protocols/api';
import {
  DEFAULT_RULE_SETTINGS,
  type AccreditationEvidence,
  type LabEvidence,
  type LogEntryEvidence,
  type Rule,
  type ReportMarkEvidence,
  type RunEvidence,
} from '../../src/supervisor/evidence.js';
import { whyIn } from '../../src/supervisor/evidence-why.js';
import { markOf } from '../../src/supervisor/lab-follower.js';
import { calibrationAtRun } from '../../src/supervisor/rules/calibration-at-run.js';
import { certificatesLogged } from '../../src/supervisor/rules/certificates-logged.js';
import { RULES } from '../../src/supervisor/rules/index.js';
import { lateAmendment } from '../../src/supervisor/rules/late-amendment.js';
import { logConsistent } from '../../src/supervisor/rules/log-consistent.js';
import { logStalled } from '../../src/supervisor/rules/log-stalled.js';
import { markOutsideScope } from '../../src/supervisor/rules/mark-outside-scope.js';
import { notCosigned } from '../../src/supervisor/rules/not-cosigned.js';
import { performerApproved } from '../../src/supervisor/rules/performer-approved.js';
import { revokedKey } from '../../src/supervisor/rules/revoked-key.js';
import { sequenceGaps } from '../../src/supervisor/rules/sequence-gaps.js';
import { unacknowledgedAlarms } from '../../src/supervisor/rules/unacknowledged-alarms.js';

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
    accreditations: [],
    marks: new Map(),
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

const ISO_TIME = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g;

/** the English words left in a Chinese sentence once its identifiers (`tokens`) and ISO times are taken out */
function englishLeftIn(zh: string, tokens: readonly string[]): string[] {
  let rest = zh.replace(ISO_TIME, ' ');
  for (const t of [...tokens].sort((a, b) => b.length - a.length)) rest = rest.split(t).join(' ');
  return rest.match(/[A-Za-z]{2,}/g) ?? [];
}

/** the numbers and ISO times of a sentence, which its other language must carry as they are */
const numbersOf = (text: string): string[] => [...text.matchAll(/\d{4}-\d\d-\d\dT[\d:.]+Z|-?\d+(?:\.\d+)?/g)].map((m) => m[0]);

describe('calibration-at-run', () => {
  test('nothing for a run inside a valid calibration, in service', () => {
    expect(calibrationAtRun.check(evidence())).toEqual([]);
  });

  test.each([
    [
      'taken out of service during the run',
      { status: [{ status: 'out-of-service' as const, at: T + 60_000, reason: 'overload' }] },
      /taken out of service \(overload\)/,
      /而该仪器在检测期间被停用（overload）$/,
    ],
    [
      'out of service since before the run',
      { status: [{ status: 'out-of-service' as const, at: T - DAY, reason: 'broken' }] },
      /it was out of service/,
      /而该仪器当时处于停用状态$/,
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
      null,
    ],
    [
      'a failed intermediate check before the run',
      { checks: [{ checkedAt: T - DAY, result: 'fail' as const }] },
      /failed an intermediate check on 2026-05-31T00:00:00.000Z/,
      /而该仪器于 2026-05-31T00:00:00.000Z 期间核查不合格$/,
    ],
    [
      'a calibration due during the run',
      { calibrations: [{ calibratedAt: T - 300 * DAY, nextDueAt: T + 60_000, certificate: 'C-1' }] },
      /its calibration \(C-1\) was due on 2026-06-01T00:01:00.000Z/,
      /而该仪器的校准（C-1）已于 2026-06-01T00:01:00.000Z 到期$/,
    ],
    ['no calibration on record', { calibrations: [] }, /it had no calibration on record/, /而该仪器无校准记录$/],
    [
      'calibrated only after the run',
      { calibrations: [{ calibratedAt: T + DAY, nextDueAt: T + 300 * DAY, certificate: 'C-2' }] },
      /not yet calibrated/,
      /而该仪器在检测开始时尚未校准$/,
    ],
  ])('%s', (_what, instrument, expected, expectedZh) => {
    const ev = evidence();
    const base = ev.instruments.get('ut-1');
    if (base === undefined) throw new Error('no instrument');
    ev.instruments.set('ut-1', { ...base, ...instrument });
    const found = calibrationAtRun.check(ev);
    if (expected === null || expectedZh === null) expect(found).toEqual([]);
    else {
      expect(found.map((f) => f.summary.en)).toEqual([expect.stringMatching(expected)]);
      expect(found.map((f) => f.summary.zh)).toEqual([expect.stringMatching(/^检测报告 TR-1 依据检测 run-1 签发；该次检测使用仪器 ut-1，/)]);
      expect(found.map((f) => f.summary.zh)).toEqual([expect.stringMatching(expectedZh)]);
    }
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
    ).toMatchObject({ en: expect.stringMatching(/differs from its log entry 0/), zh: '检测报告 TR-1 与其日志条目 0 不符（摘要不同）' });
  });
});

describe('late-amendment', () => {
  test('an amendment without a reason is found even when it comes early; one with a reason in time is not', () => {
    const amended = (reason: string | null) =>
      evidence({
        certificates: [cert('TR-1', 'run-1', null), cert('TR-2', 'run-1', null, { amends: 'TR-1', amendReason: reason, issuedAt: T + 2 * DAY })],
      });
    expect(lateAmendment.check(amended('typo in the customer address'))).toEqual([]);
    expect(lateAmendment.check(amended(null))[0]?.summary).toEqual({
      en: 'report TR-2 amends TR-1 without a reason',
      zh: '检测报告 TR-2 修改了 TR-1，且未说明修改理由',
    });
  });
});

describe('accredited-mark-outside-scope', () => {
  const STANDARD = 'ISO 6892-1:2019';
  const DIGESTS = { json: 'c0', pdf: 'p0', dcc: 'd0' };
  const cnas = (extra: Partial<AccreditationEvidence> = {}): AccreditationEvidence => ({
    id: 'acc-1',
    body: 'CNAS',
    number: 'L1234',
    validFrom: T - 100 * DAY,
    validTo: T + 300 * DAY,
    scopes: [{ version: 1, effectiveFrom: T - 100 * DAY, entries: [{ standard: STANDARD, measurand: 'force', unit: 'kN', min: 0, max: 100 }] }],
    events: [],
    ...extra,
  });
  const claim = (extra: Partial<ReportMarkEvidence> = {}): ReportMarkEvidence => ({
    id: 'TR-1',
    contentDigest: 'c0',
    issuedAt: T + DAY,
    mark: { body: 'CNAS', number: 'L1234' },
    method: { id: 'tensile', version: 1, standard: STANDARD },
    results: [{ name: 'Fm', measurand: 'force', unit: 'kN', value: 42 }],
    ...extra,
  });
  const judged = (accreditations: AccreditationEvidence[], mark: ReportMarkEvidence = claim()) =>
    markOutsideScope.check(
      evidence({ accreditations, marks: new Map([['TR-1', mark]]), certificates: [cert('TR-1', 'run-1', 0, { digests: DIGESTS })] }),
    );

  test('a mark on a report inside the scope of an active accreditation is no finding; one outside is, with the issue entry', () => {
    expect(judged([cnas()])).toEqual([]);
    const [f, ...more] = judged([cnas()], claim({ results: [{ name: 'Fm', measurand: 'force', unit: 'kN', value: 142 }] }));
    expect(more).toEqual([]);
    expect(f).toMatchObject({ key: 'TR-1', at: T + DAY, subject: { certificate: 'TR-1', run: 'run-1' }, entries: [{ index: 0 }] });
    expect(f?.summary.en).toMatch(/TR-1 carries the accreditation mark of CNAS L1234.*Fm: force = 142 kN lies outside the accredited range 0–100 kN/);
    expect(f?.summary.zh).toBe('检测报告 TR-1 使用了 CNAS L1234 的认可标识，但在其签发时，Fm：force = 142 kN 超出认可范围 0–100 kN');
  });

  test.each([
    [
      'the method outside every scope',
      [cnas()],
      claim({ method: { id: 'astm', version: 1, standard: 'ASTM E8/E8M-22' } }),
      /at its issue the method ASTM E8\/E8M-22 was not in the scope of CNAS L1234$/,
    ],
    [
      'a measurand outside the scope',
      [cnas()],
      claim({ results: [{ name: 'A', measurand: 'elongation', unit: '%', value: 20 }] }),
      /A: elongation of ISO 6892-1:2019 was not in the scope/,
    ],
    [
      'a result in another unit',
      [cnas()],
      claim({ results: [{ name: 'Fm', measurand: 'force', unit: 'N', value: 42_000 }] }),
      /Fm: force is reported in N, the scope of CNAS L1234 has it in kN/,
    ],
    [
      'one result of two outside the range',
      [cnas()],
      claim({
        results: [
          { name: 'Fm', measurand: 'force', unit: 'kN', value: 42 },
          { name: 'Fp', measurand: 'force', unit: 'kN', value: -1 },
        ],
      }),
      /Fp: force = -1 kN lies outside/,
    ],
    ['an accreditation expired before the issue', [cnas({ validTo: T })], claim(), /accreditation CNAS L1234 had expired/],
    ['an accreditation not yet valid at the issue', [cnas({ validFrom: T + 2 * DAY })], claim(), /was not yet valid/],
    [
      'an accreditation suspended before the issue',
      [cnas({ events: [{ kind: 'suspend', at: T, reason: 'letter 12' }] })],
      claim(),
      /was suspended \(since /,
    ],
    [
      'an accreditation withdrawn before the issue (a reinstatement cannot undo it)',
      [
        cnas({
          events: [
            { kind: 'withdraw', at: T, reason: 'letter 13' },
            { kind: 'reinstate', at: T + 1, reason: 'x' },
          ],
        }),
      ],
      claim(),
      /was withdrawn/,
    ],
    [
      'a scope reduced before the issue',
      [
        cnas({
          scopes: [
            ...cnas().scopes,
            { version: 2, effectiveFrom: T, entries: [{ standard: STANDARD, measurand: 'force', unit: 'kN', min: 0, max: 40 }] },
          ],
        }),
      ],
      claim(),
      /Fm: force = 42 kN lies outside the accredited range 0–40 kN/,
    ],
    ['a number the lab holds no accreditation under', [cnas({ number: 'L9999' })], claim(), /the lab has no accreditation CNAS L1234 on record/],
    ['no accreditation at all', [], claim(), /the lab has no accreditation CNAS L1234 on record/],
  ])('found: %s', (_what, accreditations, mark, expected) => {
    const found = judged(accreditations, mark);
    expect(found.map((f) => f.summary.en)).toEqual([expect.stringMatching(expected)]);
    // the Chinese says the same with the same identifiers, numbers and times, and no English sentence
    const [zh = ''] = found.map((f) => f.summary.zh);
    expect(zh).toMatch(/^检测报告 TR-1 使用了 CNAS L1234 的认可标识，但在其签发时，/);
    for (const token of [...(found[0]?.summary.en.matchAll(/\d{4}-\d\d-\d\dT[\d:.]+Z|-?\d+(?:\.\d+)?/g) ?? [])].map((m) => m[0]))
      expect(zh).toContain(token);
    expect(englishLeftIn(zh, [STANDARD, 'ASTM E8/E8M-22', 'CNAS L1234', 'TR-1', 'Fm', 'Fp', 'force', 'elongation', 'kN'])).toEqual([]);
  });

  test.each([
    [
      'no mark on a report outside the scope (flagged)',
      [cnas()],
      claim({ mark: null, results: [{ name: 'Fm', measurand: 'force', unit: 'kN', value: 142 }] }),
    ],
    ['a result on the bound of the range', [cnas()], claim({ results: [{ name: 'Fm', measurand: 'force', unit: 'kN', value: 100 }] })],
    ['a suspension after the issue', [cnas({ events: [{ kind: 'suspend', at: T + 2 * DAY, reason: 'letter 12' }] })], claim()],
    [
      'a suspension lifted before the issue',
      [
        cnas({
          events: [
            { kind: 'suspend', at: T - DAY, reason: 'letter 12' },
            { kind: 'reinstate', at: T, reason: 'letter 14' },
          ],
        }),
      ],
      claim(),
    ],
    [
      'a scope reduced after the issue',
      [
        cnas({
          scopes: [
            ...cnas().scopes,
            { version: 2, effectiveFrom: T + 2 * DAY, entries: [{ standard: STANDARD, measurand: 'force', unit: 'kN', max: 40 }] },
          ],
        }),
      ],
      claim(),
    ],
    ['an expired record renewed under the same number', [cnas({ id: 'old', validTo: T }), cnas({ id: 'new', validFrom: T })], claim()],
    ['a content other than the one the lab signed (not the report its holders have)', [], claim({ contentDigest: 'other' })],
  ])('not found: %s', (_what, accreditations, mark) => {
    expect(judged(accreditations, mark)).toEqual([]);
  });

  test("a scaled result is judged in its measurand's unit, by the method version it was computed with", () => {
    const method = (version: number, factor: number): Method =>
      ({
        id: 'tensile',
        version,
        definition: {
          measurands: [{ name: 'force', unit: 'kN', channel: 'c' }],
          results: [{ name: 'Rm', title: 'tensile strength', measurand: 'force', statistic: 'max', scale: { factor, unit: 'MPa' } }],
        },
      }) as unknown as Method;
    const content = {
      id: 'TR-1',
      issuedAt: T + DAY,
      accreditation: { body: 'CNAS', number: 'L1234' },
      method: { id: 'tensile', version: 2, standard: STANDARD, title: 'Tensile testing' },
      results: [{ name: 'Rm', measurand: 'force', unit: 'MPa', value: 42_000 / 78.54 }],
    } as unknown as CertificateContent;
    const read = markOf(content, [method(1, 1), method(2, 1000 / 78.54)]);
    expect(read.results).toEqual([{ name: 'Rm', measurand: 'force', unit: 'kN', value: expect.closeTo(42, 9) }]);
    expect(judged([cnas()], { ...read, contentDigest: 'c0' })).toEqual([]);
  });
});

describe('every rule says what it found in English and in Chinese', () => {
  const note = (size: number, fill: number): string =>
    `${formatCheckpoint({ origin: 'lab.example/log', size, rootHash: new Uint8Array(32).fill(fill), extensions: [] })}\n\u2014 lab.example/log AAAA\n`;
  const root = (fill: number): string => toHex(new Uint8Array(32).fill(fill));
  const conflict = (kind: LabEvidence['conflicts'][number]['kind'], held: [number, number], served: [number, number], reason: string) => ({
    id: 1,
    kind,
    detectedAt: T,
    heldNote: note(...held),
    servedNote: note(...served),
    proof: [],
    reason,
  });
  const checkpoint = (size: number, cosignedBy: string[] = []) => ({
    size,
    rootHash: root(1),
    note: note(size, 1),
    firstSeenAt: T,
    lastSeenAt: T + 3 * 3_600_000,
    cosignedBy,
  });
  const revocation: LogEntryEvidence = {
    index: 2,
    kind: 'key-event',
    at: T + 10,
    value: { event: 'revoked', gateway: 'gw', keyId: 'k1', from: T + 5, lastValidBatch: null },
  };
  const alarm = (id: string) => ({ id, raisedAt: T + 10, acknowledgedAt: null, clearedAt: null, severity: 'high', message: 'over the limit' });
  const cases: [string, Rule, LabEvidence, string[]][] = [
    [
      'calibration-at-run',
      calibrationAtRun,
      evidence({
        instruments: new Map([
          ['ut-1', { id: 'ut-1', calibrations: [{ calibratedAt: T - DAY, nextDueAt: T + 60_000, certificate: 'C-1' }], checks: [], status: [] }],
        ]),
      }),
      ['TR-1', 'run-1', 'ut-1', 'C-1'],
    ],
    [
      'performer-approved',
      performerApproved,
      evidence({ certificates: [cert('TR-1', 'run-1', 0, { issuedBy: 'tech' })] }),
      ['tech', 'run-1', 'TR-1'],
    ],
    [
      'unacknowledged-alarms',
      unacknowledgedAlarms,
      evidence({ alarms: new Map([['run-1', [alarm('al-1'), alarm('al-2')]]]) }),
      ['run-1', 'al-1', 'al-2'],
    ],
    [
      'sequence-gaps',
      sequenceGaps,
      evidence({ runs: [run('run-1', [{ gateway: 'gw', firstSeq: 10, lastSeq: 29 }])], entries: [batch(0, 0, 10, 5), batch(1, 1, 18, 12)] }),
      ['run-1', 'gw'],
    ],
    ['revoked-key-records', revokedKey, evidence({ entries: [batch(0, 0, 0, 5, T), batch(1, 1, 5, 5, T + 6), revocation] }), ['gw', 'k1']],
    [
      'certificates-logged',
      certificatesLogged,
      evidence({ entries: [issue(0, 'TR-hidden')], certificates: [cert('TR-1', 'run-1', null), cert('TR-2', 'run-1', 0)] }),
      ['TR-1', 'TR-2', 'TR-hidden'],
    ],
    [
      'accredited-mark-outside-scope',
      markOutsideScope,
      evidence({
        accreditations: [],
        marks: new Map([
          [
            'TR-1',
            {
              id: 'TR-1',
              contentDigest: 'c0',
              issuedAt: T + DAY,
              mark: { body: 'CNAS', number: 'L1234' },
              method: { id: 'tensile', version: 1, standard: 'ISO 6892-1:2019' },
              results: [],
            },
          ],
        ]),
        certificates: [cert('TR-1', 'run-1', 0, { digests: { json: 'c0', pdf: 'p0', dcc: 'd0' } })],
      }),
      ['TR-1', 'CNAS L1234'],
    ],
    [
      'late-amendment',
      lateAmendment,
      evidence({
        certificates: [cert('TR-1', 'run-1', null), cert('TR-2', 'run-1', null, { amends: 'TR-1', amendReason: 'typo', issuedAt: T + 40 * DAY })],
      }),
      ['TR-1', 'TR-2'],
    ],
    [
      'log-stalled',
      logStalled,
      evidence({ runs: [], checkpoints: [checkpoint(2)], certificates: [cert('TR-1', 'run-1', null, { issuedAt: T + 2 * 3_600_000 })] }),
      ['TR-1'],
    ],
    [
      'checkpoint-not-cosigned',
      notCosigned,
      evidence({ witnesses: { names: ['w1', 'w2'], required: 2 }, checkpoints: [checkpoint(5, ['w1'])] }),
      ['w1', 'w2'],
    ],
    [
      'log-consistent',
      logConsistent,
      evidence({
        conflicts: [
          conflict('fork', [4, 1], [4, 2], `two trees of size 4: roots ${root(1)} and ${root(2)}`),
          conflict('shrunk', [4, 1], [3, 1], 'the log went back from 4 to 3 entries'),
          conflict('bad-proof', [3, 1], [5, 2], 'the tree of size 5 does not extend the one of size 3: the proof does not verify'),
          conflict('bad-entries', [3, 1], [5, 2], 'the entries the lab served up to 5 do not make the root it signed'),
        ],
      }),
      [root(1), root(2)],
    ],
  ];

  test('the cases cover every rule', () => {
    expect(cases.map(([id, rule]) => [id, rule.id])).toEqual(RULES.map((r) => [r.id, r.id]));
  });

  test.each(cases)('%s', (_id, rule, ev, tokens) => {
    const found = rule.check(ev);
    expect(found.length).toBeGreaterThan(0);
    for (const { summary, entries } of found) {
      // why each log entry is cited, in Chinese too, with its numbers
      for (const { why } of entries) {
        const zh = whyIn(why).zh;
        expect({ why, zh: /[\u4e00-\u9fff]/.test(zh) }).toEqual({ why, zh: true });
        for (const n of numbersOf(why)) expect(zh).toContain(n);
        expect(englishLeftIn(zh, [])).toEqual([]);
      }
      expect(summary.zh).toMatch(/[\u4e00-\u9fff]/);
      expect(summary.zh).not.toBe(summary.en);
      // the identifiers, numbers and ISO times stay as they are in both sentences
      for (const token of tokens.filter((t) => summary.en.includes(t))) expect(summary.zh).toContain(token);
      for (const n of numbersOf(summary.en)) expect(summary.zh).toContain(n);
      // and no English is left in the Chinese
      expect(englishLeftIn(summary.zh, tokens)).toEqual([]);
    }
  });
});
