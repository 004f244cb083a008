// A certificate's inputs as the lab's records give them: a completed run of a tensile method with two results
// (one inside the accreditation scope, one outside unless told), an instrument calibrated before the run.
import type { ComposeInput } from '../../src/certificates/compose.js';
import type { RunResult, RunResults } from '../../src/lab/contracts.js';

export const T0 = Date.UTC(2026, 10, 20, 9, 0, 0);
const HOUR = 3_600_000;

export function result(name: string, value: number, options: Partial<RunResult> = {}): RunResult {
  return {
    name,
    title: name === 'Fm' ? 'maximum force' : `result ${name}`,
    measurand: 'force',
    unit: 'kN',
    statistic: 'max',
    value,
    reported: value.toFixed(2),
    reportedUncertainty: '0.10',
    uncertainty: {
      combined: 0.05,
      expanded: 0.1,
      coverageFactor: 2,
      coverageProbability: 0.95,
      budget: [{ source: 'calibration', description: 'calibration certificate C-17', distribution: 'normal', standardUncertainty: 0.05 }],
    },
    conformity: {
      verdict: 'pass',
      rule: 'simple-acceptance',
      ruleText: 'simple acceptance (ILAC-G8 4.2.1): the measured value against the limit',
      limits: { min: 0, max: 100 },
      acceptance: { min: 0, max: 100 },
    },
    instruments: ['ut-1'],
    sampleCount: 42,
    accredited: true,
    accreditation: { body: 'DAkkS', number: 'D-PL-12345-01-00' },
    ...options,
  };
}

export function runResults(results: RunResult[]): RunResults {
  const accredited = results.every((r) => r.accredited);
  return {
    run: 'run-1',
    method: { id: 'tensile', version: 2, standard: 'ISO 6892-1:2019' },
    computedAt: T0 + 2 * HOUR,
    records: { count: 1234, digest: 'a'.repeat(64), digestAlgorithm: 'SHA-256 over the records canonical bytes' },
    results,
    verdict: 'pass',
    accredited,
    ...(accredited ? { accreditation: { body: 'DAkkS', number: 'D-PL-12345-01-00' } } : {}),
  };
}

const calibration = {
  instrument: 'ut-1',
  status: 'valid' as const,
  dueAt: T0 + 200 * 24 * HOUR,
  calibration: {
    id: 1,
    calibratedAt: T0 - 100 * 24 * HOUR,
    laboratory: 'Calibration Lab GmbH',
    certificate: 'C-17',
    nextDueAt: T0 + 200 * 24 * HOUR,
  },
  lastCheck: null,
  lastGoodAt: T0 - 100 * 24 * HOUR,
};

export function composeInput(overrides: Partial<ComposeInput> = {}): ComposeInput {
  return {
    id: 'TR-lab-t-000001',
    laboratory: { name: 'Materials Testing Lab Ltd', address: '1 Test Street, 12345 Testtown' },
    run: {
      id: 'run-1',
      sample: 'S-1',
      organization: 'org-a',
      method: { id: 'tensile', version: 2, standard: 'ISO 6892-1:2019' },
      instruments: [{ id: 'ut-1', gateway: 'gw-a' }],
      technician: 'technician',
      state: 'completed',
      accredited: true,
      flags: [],
      createdBy: 'technician',
      createdAt: T0 - HOUR,
      startedAt: T0,
      endedAt: T0 + HOUR,
      endReason: null,
      ranges: [{ gateway: 'gw-a', firstSeq: 0, lastSeq: 99 }],
    },
    sample: { id: 'S-1', description: 'steel bar B500B, 12 mm', condition: 'as received, no damage', receivedAt: T0 - 24 * HOUR },
    customer: { id: 'org-a', name: 'Client A', contact: 'qa@client-a.example' },
    methodTitle: 'Tensile testing at room temperature',
    results: runResults([result('Fm', 12.34), result('Rm', 456.7, { unit: 'MPa', reported: '456.7' })]),
    instruments: [
      {
        id: 'ut-1',
        identity: { maker: 'Zwick', model: 'Z100', serialNumber: 'SN-778', firmware: '4.2', location: 'Hall 2, bay 1' },
        atStart: calibration,
        atEnd: calibration,
      },
    ],
    signatory: { name: 'signatory', role: 'signatory' },
    issuedAt: T0 + 3 * HOUR,
    checkpoint: { origin: 'labtrace/lab-t', size: 17, rootHash: 'b'.repeat(64) },
    amendment: null,
    verifyUrl: 'http://127.0.0.1:8080/verify/TR-lab-t-000001',
    ...overrides,
  };
}
