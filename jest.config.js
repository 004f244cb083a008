// Tests are TypeScript compiled by `tsc -b` (which also type-checks them); jest runs the output as native ESM.
// The dashboard's tests (dashboard/test) compile to dashboard/test-dist: vite's build empties dashboard/dist.
export default {
  testEnvironment: 'node',
  testMatch: ['<rootDir>/*/dist/test/**/*.test.js', '<rootDir>/dashboard/test-dist/**/*.test.js'],
  testPathIgnorePatterns: ['/node_modules/'],
  transform: {},
  testTimeout: 30_000,
  maxWorkers: 2,
  reporters: ['default', ['<rootDir>/.ci/summary-reporter.js', {}]],
};
