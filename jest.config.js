// Tests are TypeScript compiled by `tsc -b` (which also type-checks them); jest runs the output as native ESM.
// The dashboard's tests (dashboard/test) compile to dashboard/test-dist: vite's build empties dashboard/dist.
//
// Two projects: every suite as it is (the server on its embedded SQLite store), and the server's end-to-end suites
// once more on a real PostgreSQL 15 (server/test/helpers/on-postgres.ts: each test server gets a database of its own),
// so that the same behaviour is checked on both engines. `--selectProjects sqlite` (or postgres) runs one.
const common = {
  testEnvironment: 'node',
  testPathIgnorePatterns: ['/node_modules/'],
  transform: {},
  testTimeout: 30_000,
  setupFilesAfterEnv: ['<rootDir>/.ci/retry-setup.js'],
};

/** the server suites that also run with their test servers on PostgreSQL */
const ON_POSTGRES = [
  'lab/runs',
  'lab/results',
  'lab/run-alarms',
  'lab/run-shares',
  'lab/calibration',
  'lab/lab-records',
  'certificates/workflow',
  'certificates/review',
  'auth/policy',
  'auth/users',
  'instruments/instrument-commands',
  'trust/enrollment',
  'metrics/server-metrics',
  'supervisor/supervisor',
  'clock/server-clock',
];

export default {
  testTimeout: 30_000,
  maxWorkers: 2,
  reporters: ['default', ['<rootDir>/.ci/summary-reporter.js', {}]],
  projects: [
    { ...common, displayName: 'sqlite', testMatch: ['<rootDir>/*/dist/test/**/*.test.js', '<rootDir>/dashboard/test-dist/**/*.test.js'] },
    {
      ...common,
      displayName: 'postgres',
      testMatch: ON_POSTGRES.map((suite) => `<rootDir>/server/dist/test/${suite}.test.js`),
      setupFilesAfterEnv: [...common.setupFilesAfterEnv, '<rootDir>/server/dist/test/helpers/on-postgres.js'],
    },
  ],
};
