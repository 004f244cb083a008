// The sequence continuity check of the bundle verifier (checks/sequence.ts) on its own: the cases a real bundle rarely
// shows (a declared jump, an overlap, a broken header chain) next to a gap, a duplicate and a reordering, each named
// with its exact numbers and place.
import { describe, expect, test } from '@jest/globals';
import { canonicalBytes, sha256, toBase64, type Problem, type Sample, type VerifyReport } from '../../src/index.js';
import type { BatchEntry, VerifyContext } from '../../src/verify/checks/context.js';
import { checkSequences } from '../../src/verify/checks/sequence.js';

const GATEWAY = 'gw-s';

function batch(line: number, n: number, firstSeq: number, count: number, prev: string | null, first?: Partial<Sample>): BatchEntry {
  const header = { v: 1, gateway: GATEWAY, keyId: '0a0b0c0d', batch: n, firstSeq, count, tsMin: 0, tsMax: 10, root: 'r', prev };
  const sample: Sample = { seq: firstSeq, instrument: 'i', channel: 'c', ts: 0, value: 1, unit: '', quality: 'good', ...first };
  const headerBytes = canonicalBytes(header);
  return { line, header, signature: 's', first: sample, records: count, intact: true, logIndex: line, headerBytes, leaf: new Uint8Array(32) };
}

const hashOf = (e: BatchEntry): string => toBase64(sha256(e.headerBytes));

function check(entries: BatchEntry[]): { problems: Problem[]; gateways: VerifyReport['gateways'] } {
  const problems: Problem[] = [];
  const report = { gateways: [] as VerifyReport['gateways'] };
  checkSequences({ entries, report, problem: (p: Problem) => problems.push(p) } as unknown as VerifyContext);
  return { problems, gateways: report.gateways };
}

describe('sequence continuity', () => {
  test('consecutive batches chained by their header hashes: one range, no problem', () => {
    const a = batch(1, 0, 0, 5, null);
    const b = batch(2, 1, 5, 5, hashOf(a));
    expect(check([a, b])).toEqual({
      problems: [],
      gateways: [{ gateway: GATEWAY, batches: 2, records: 10, ranges: [{ first: 0, last: 9 }], declaredJumps: [] }],
    });
  });

  test('a gap is named with the missing numbers; a first record declaring the jump makes it no gap', () => {
    const a = batch(1, 0, 0, 5, null);
    const gap = check([a, batch(2, 1, 10, 5, null)]);
    expect(gap.problems).toEqual([
      {
        kind: 'gap',
        where: `batches.jsonl line 2 (batch 1 of ${GATEWAY}, seq 10..14)`,
        message: 'sequence numbers 5..9 are missing between batch 0 (line 1) and batch 1',
        computed: 10,
        claimed: 5,
      },
    ]);
    expect(gap.gateways[0]?.ranges).toEqual([
      { first: 0, last: 4 },
      { first: 10, last: 14 },
    ]);
    const declared = check([a, batch(2, 1, 10, 5, null, { instrument: GATEWAY, channel: 'sequence-jump', value: 5 })]);
    expect(declared.problems).toEqual([]);
    expect(declared.gateways[0]?.declaredJumps).toEqual([{ from: 5, to: 9, batch: 1 }]);
    // a jump declared from another number is still a gap
    expect(check([a, batch(2, 1, 10, 5, null, { instrument: GATEWAY, channel: 'sequence-jump', value: 6 })]).problems.map((p) => p.kind)).toEqual([
      'gap',
    ]);
  });

  test('an overlap is named with the numbers held twice, and the range reaches the furthest', () => {
    const { problems, gateways } = check([batch(1, 0, 0, 5, null), batch(2, 1, 3, 5, null)]);
    expect(problems).toEqual([
      {
        kind: 'overlap',
        where: `batches.jsonl line 2 (batch 1 of ${GATEWAY}, seq 3..7)`,
        message: 'sequence numbers 3..4 are also in batch 0 (line 1)',
        computed: 3,
        claimed: 5,
      },
    ]);
    expect(gateways[0]?.ranges).toEqual([{ first: 0, last: 7 }]);
  });

  test("a header naming another hash than the previous batch's breaks the chain; none named is not checked", () => {
    const a = batch(1, 0, 0, 5, null);
    const wrong = toBase64(sha256(new Uint8Array([1])));
    expect(check([a, batch(2, 1, 5, 5, wrong)]).problems).toEqual([
      {
        kind: 'chain-break',
        where: `batches.jsonl line 2 (batch 1 of ${GATEWAY}, seq 5..9)`,
        message: "the header does not name batch 0's hash as previous",
        computed: hashOf(a),
        claimed: wrong,
      },
    ]);
    expect(check([a, batch(2, 1, 5, 5, null)]).problems).toEqual([]);
  });

  test('a duplicate is left out of the sequence, a reordering named where it is', () => {
    const a = batch(1, 0, 0, 5, null);
    const b = batch(2, 1, 5, 5, hashOf(a));
    const { problems, gateways } = check([b, a, { ...a, line: 3 }]);
    expect(problems.map((p) => [p.kind, p.where])).toEqual([
      ['reordered', `batches.jsonl line 1 (batch 0 of ${GATEWAY}, seq 0..4)`],
      ['duplicate', `batches.jsonl line 3 (batch 0 of ${GATEWAY}, seq 0..4)`],
    ]);
    expect(gateways[0]).toMatchObject({ batches: 3, records: 10, ranges: [{ first: 0, last: 9 }] });
  });
});
