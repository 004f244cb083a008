// Tests are TypeScript compiled by `tsc -b` (which also type-checks them); jest runs the output as native ESM.
export default {
  testEnvironment: 'node',
  testMatch: ['<rootDir>/*/dist/test/**/*.test.js', '<rootDir>/dashboard/test/**/*.test.js'],
  testPathIgnorePatterns: ['/node_modules/'],
  transform: {},
  testTimeout: 30_000,
  maxWorkers: 2,
  reporters: ['default', ['<rootDir>/.ci/summary-reporter.js', {}]],
};
