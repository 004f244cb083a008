// Tests are TypeScript compiled by `tsc -b` (which also type-checks them); jest runs the output as native ESM.
export default {
  testEnvironment: 'node',
  roots: [
    '<rootDir>/protocols/dist/test',
    '<rootDir>/device-sim/dist/test',
    '<rootDir>/gateway/dist/test',
    '<rootDir>/server/dist/test',
    '<rootDir>/dashboard/test',
  ],
  testMatch: ['**/*.test.js'],
  transform: {},
  testTimeout: 30_000,
  maxWorkers: 2,
  reporters: ['default', ['<rootDir>/.ci/summary-reporter.js', {}]],
};
