// Jest reporter: writes the pass/fail counts to .tmp/test-summary.json (or the file LABTRACE_TEST_SUMMARY names) for
// .ci/run's last line, with the tests that passed only when tried again (.ci/retry-setup.js), which it also prints so
// that they are seen and mended.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export default class SummaryReporter {
  constructor(globalConfig) {
    this.rootDir = globalConfig.rootDir;
    this.retried = [];
  }

  onTestResult(_test, result) {
    for (const t of result.testResults) {
      if (t.status === 'passed' && (t.invocations ?? 1) > 1) {
        this.retried.push({ file: path.relative(this.rootDir, result.testFilePath), test: t.fullName, attempts: t.invocations });
      }
    }
  }

  onRunComplete(_contexts, results) {
    const file = process.env.LABTRACE_TEST_SUMMARY || '.tmp/test-summary.json';
    mkdirSync(path.dirname(file), { recursive: true });
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    if (this.retried.length > 0) {
      process.stderr.write(`\nPassed only when tried again (${this.retried.length}):\n`);
      for (const r of this.retried) process.stderr.write(`  ${r.file}: ${r.test}\n`);
    }
    writeFileSync(file, JSON.stringify({ passed: results.numPassedTests, failed, retried: this.retried }));
  }
}
