// The outbox's retry schedule and the notifications' configuration, as pure functions.
import { describe, expect, test } from '@jest/globals';
import { parseWith } from '@labtrace/protocols';
import { serverConfigSchema } from '../../src/index.js';
import { backoffDelay } from '../../src/notify/outbox.js';

describe('back-off', () => {
  test('doubles from the base to the cap; the jitter keeps it between half and all of that', () => {
    const low = (n: number) => backoffDelay(n, 1000, 60_000, () => 0);
    const high = (n: number) => backoffDelay(n, 1000, 60_000, () => 1);
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(high)).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000]);
    expect([1, 2, 3, 7, 30].map(low)).toEqual([500, 1000, 2000, 30_000, 30_000]);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(3, 1000, 60_000);
      expect(d).toBeGreaterThanOrEqual(2000);
      expect(d).toBeLessThanOrEqual(4000);
    }
  });

  test('a very late attempt stays at the cap (no overflow)', () => {
    expect(backoffDelay(5000, 1000, 3_600_000, () => 1)).toBe(3_600_000);
  });
});

describe('configuration', () => {
  const parse = (notifications: unknown) => () => parseWith(serverConfigSchema, { notifications }, 'server.yaml');

  test('is checked at start-up, each mistake named by its path', () => {
    expect(parse({ smtp: { host: 'smtp.example', from: 'lab <l@x.example>', passwordFile: './pw' } })).toThrow(
      /notifications\.smtp\.username: required when passwordFile is given/,
    );
    expect(parse({ smtp: { host: '', from: 'x@y.example' } })).toThrow(/notifications\.smtp\.host: required/);
    expect(parse({ smtp: { host: 'h', from: 'x@y.example', secure: true, requireTls: true } })).toThrow(/notifications\.smtp\.requireTls/);
    expect(parse({ baseDelayMs: 5000, maxDelayMs: 1000 })).toThrow(/notifications\.maxDelayMs: must not be below baseDelayMs/);
    expect(parse({ maxAttempts: 0 })).toThrow(/notifications\.maxAttempts/);
    expect(parse({ smtp: { host: 'h', from: 'x@y.example', password: 'inline' } })).toThrow(/notifications\.smtp.*password/);
  });

  test('has defaults without a notifications section', () => {
    const config = parseWith(serverConfigSchema, {}, 'server.yaml');
    expect(config.notifications).toMatchObject({ maxAttempts: 10, baseDelayMs: 10_000, maxDelayMs: 3_600_000, securityMinSeverity: 'alarm' });
    expect(config.notifications.smtp).toBeUndefined();
  });
});
