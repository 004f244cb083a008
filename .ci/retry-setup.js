// Every suite runs real servers (brokers, databases, pseudo-terminals, a browser) on a two-core machine that is
// running another suite beside it. A test that loses a race to that load gets one more attempt; its first failure
// is printed before the retry, and the summary names every test that passed only on its second attempt, so a
// test that fails for a reason of its own still fails, and one that only sometimes passes is seen.
import { jest } from '@jest/globals';

jest.retryTimes(1, { logErrorsBeforeRetry: true });
