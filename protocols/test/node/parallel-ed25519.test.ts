// `labtrace verify`'s check of a client's bundle with its signatures on worker threads (node/parallel-ed25519.ts):
// the report verifyDisclosure gives on one thread, for a bundle above the threshold (checked by the workers) and
// below it (on this thread), with slices sent during the run or the workers looking ahead in the text: honest, one
// batch's signature replaced by another batch's, a record changed. What the workers found ahead counts only for the
// very same bytes; and a verification that throws leaves the package's Ed25519 check as it was.
import { describe, expect, test } from '@jest/globals';
import { ed25519VerifierInUse, verifyDisclosure } from '../../src/index.js';
import { nodeEd25519Verify, PARALLEL_THRESHOLD, useNodeCrypto, verifyDisclosureInParallel, withParallelEd25519 } from '../../src/node/index.js';
import { defaultSample, disclosureFixture, type SampleOf } from '../helpers/disclosure-fixture.js';

// Node's crypto, as `labtrace verify` installs it (also to build the large bundle quickly)
useNodeCrypto();

/** the bundle with batch `i`'s signature replaced by batch `j`'s */
function swapSignature(text: string, i: number, j: number): string {
  const doc = JSON.parse(text) as { batches: { signature: string }[] };
  const other = doc.batches[j]?.signature ?? '';
  (doc.batches[i] as { signature: string }).signature = other;
  return `${JSON.stringify(doc)}\n`;
}

/** the bundle with a byte of batch `i`'s first record changed (its value's last byte) */
function changeRecord(text: string, i: number): string {
  const doc = JSON.parse(text) as { batches: { records: string }[] };
  const batch = doc.batches[i] as { records: string };
  const bytes = Buffer.from(batch.records, 'base64');
  // a batch whose record is disclosed whole (a redacted one has no record bytes)
  if (bytes.length <= 40) throw new Error(`batch ${i} discloses no record whole`);
  bytes[40] = (bytes[40] ?? 0) ^ 1;
  batch.records = bytes.toString('base64');
  return `${JSON.stringify(doc)}\n`;
}

/**
 * ut-1 (the run's instrument) only in the even batches: the bundle holds every other batch, so no header is the
 * previous one of another (verify/header-chain.ts) and each has its own signature checked
 */
const everyOtherBatch =
  (perBatch: number): SampleOf =>
  (seq, i) => {
    const s = defaultSample(seq, i);
    return Math.floor(seq / perBatch) % 2 === 0 ? s : { ...s, instrument: 'ut-2' };
  };

describe('a disclosure bundle verified with its signatures on worker threads', () => {
  const large = disclosureFixture(2 * (PARALLEL_THRESHOLD + 100), 2, everyOtherBatch(2));
  const small = disclosureFixture(8, 4, everyOtherBatch(4));

  test('the bundles hold every other batch: every signature is checked (by the workers above the threshold)', () => {
    expect(verifyDisclosure(large.text, { logKey: large.logKey }).counts).toMatchObject({
      batches: PARALLEL_THRESHOLD + 100,
      signaturesVerified: PARALLEL_THRESHOLD + 100,
      headersChained: 0,
    });
    expect(verifyDisclosure(small.text, { logKey: small.logKey }).counts).toMatchObject({ batches: 4, signaturesVerified: 4, headersChained: 0 });
  });

  test.each([
    ['honest, above the threshold', large.text, large.logKey],
    ['a signature swapped, above the threshold', swapSignature(large.text, 300, 301), large.logKey],
    ['a record changed, above the threshold', changeRecord(large.text, 451), large.logKey],
    ['honest, below it', small.text, small.logKey],
    ['a signature swapped, below it', swapSignature(small.text, 1, 2), small.logKey],
  ])(
    '%s: the report of one thread, with slices sent during the run, with the workers looking ahead, and as labtrace verify runs it',
    async (name, text, logKey) => {
      const one = verifyDisclosure(text, { logKey });
      const run = () => verifyDisclosure(text, { logKey });
      const sliced = await withParallelEd25519(run, nodeEd25519Verify, { threads: 2 });
      const ahead = await withParallelEd25519(run, nodeEd25519Verify, { threads: 2, ahead: text });
      const cli = await verifyDisclosureInParallel(text, { logKey });
      expect(sliced).toEqual(one);
      expect(ahead).toEqual(one);
      expect(cli).toEqual(one);
      expect(one.ok).toBe(name.startsWith('honest'));
      if (name.includes('signature')) expect(one.problems.map((p) => p.kind)).toContain('signature-invalid');
    },
    60_000,
  );

  test('headers the workers find ahead in another text than the one verified are not taken for its own', async () => {
    // the look ahead in the honest text, the verification of one with a swapped signature: the swapped batch's
    // header with that signature was never checked ahead, and must be checked
    const swapped = swapSignature(large.text, 10, 11);
    const report = await withParallelEd25519(() => verifyDisclosure(swapped, { logKey: large.logKey }), nodeEd25519Verify, {
      threads: 2,
      ahead: large.text,
    });
    expect(report).toEqual(verifyDisclosure(swapped, { logKey: large.logKey }));
    expect(report.problems.map((p) => p.kind)).toContain('signature-invalid');
  });

  test('a run that throws: the Ed25519 check in use before is in use after, and the error is the run’s', async () => {
    const before = ed25519VerifierInUse();
    const failing = withParallelEd25519(
      () => {
        verifyDisclosure(large.text, { logKey: large.logKey });
        throw new Error('after the signatures');
      },
      nodeEd25519Verify,
      { threads: 2 },
    );
    await expect(failing).rejects.toThrow('after the signatures');
    expect(ed25519VerifierInUse()).toBe(before);
  });
});
