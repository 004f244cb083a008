// Set up for every test file of the jest project "postgres": its test servers run on a real PostgreSQL 15
// (test-store.ts), stopped after the file's last test.
import { afterAll } from '@jest/globals';
import { stopTestStore } from './test-store.js';

process.env['LABTRACE_TEST_STORE'] = 'postgres';
afterAll(() => stopTestStore(), 60_000);
