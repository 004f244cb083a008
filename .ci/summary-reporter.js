// Jest reporter: writes the pass/fail counts to .tmp/test-summary.json for .ci/run's last line.
import { mkdirSync, writeFileSync } from 'node:fs';

export default class SummaryReporter {
  onRunComplete(_contexts, results) {
    mkdirSync('.tmp', { recursive: true });
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    writeFileSync('.tmp/test-summary.json', JSON.stringify({ passed: results.numPassedTests, failed }));
  }
}
