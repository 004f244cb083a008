// The secrets the compose lab hands the server as files: the first admin's password (LABTRACE_ADMIN_PASSWORD_FILE)
// and a gateway's enrollment token registered from a file (`labtrace server enroll-token --token-file`).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pino from 'pino';
import { adminPasswordFrom } from '../../src/secret-env.js';
import { LabDatabase } from '../../src/store/database.js';
import { Enrollment } from '../../src/trust/enrollment.js';
import { KeyRegistry } from '../../src/trust/key-registry.js';
import { SecurityEvents } from '../../src/trust/security-events.js';
import { serverMigrations } from '../../src/migrations.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'labtrace-secret-files-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const file = (name: string, content: string): string => {
  const f = path.join(tmp, name);
  writeFileSync(f, content);
  return f;
};

describe('LABTRACE_ADMIN_PASSWORD_FILE', () => {
  test('the file holds the password; its one trailing newline is not part of it', () => {
    expect(adminPasswordFrom({ LABTRACE_ADMIN_PASSWORD_FILE: file('a', 'a password of the lab\n') })).toBe('a password of the lab');
    expect(adminPasswordFrom({ LABTRACE_ADMIN_PASSWORD_FILE: file('b', ' spaces kept \r\n') })).toBe(' spaces kept ');
  });

  test('without it, LABTRACE_ADMIN_PASSWORD as before; neither gives none (a one-time password is made)', () => {
    expect(adminPasswordFrom({ LABTRACE_ADMIN_PASSWORD: 'from the environment' })).toBe('from the environment');
    expect(adminPasswordFrom({})).toBeUndefined();
    expect(adminPasswordFrom({ LABTRACE_ADMIN_PASSWORD: '', LABTRACE_ADMIN_PASSWORD_FILE: '' })).toBeUndefined();
  });

  test('both set, a missing file or an empty one is a configuration error that names the variable, not the password', () => {
    const both = () => adminPasswordFrom({ LABTRACE_ADMIN_PASSWORD: 'x'.repeat(12), LABTRACE_ADMIN_PASSWORD_FILE: file('c', 'y'.repeat(12)) });
    expect(both).toThrow('LABTRACE_ADMIN_PASSWORD and LABTRACE_ADMIN_PASSWORD_FILE are both set');
    expect(() => adminPasswordFrom({ LABTRACE_ADMIN_PASSWORD_FILE: path.join(tmp, 'missing') })).toThrow(
      expect.objectContaining({ code: 'E_CONFIG_READ', message: expect.stringContaining('LABTRACE_ADMIN_PASSWORD_FILE') }),
    );
    expect(() => adminPasswordFrom({ LABTRACE_ADMIN_PASSWORD_FILE: file('d', '\n') })).toThrow('is empty');
  });
});

describe('an enrollment token registered from a file', () => {
  let database: LabDatabase;
  let enrollment: Enrollment;
  const token = `lt-enroll-${'A'.repeat(43)}`;

  beforeAll(async () => {
    database = new LabDatabase(mkdtempSync(path.join(tmp, 'db-')), serverMigrations);
    await database.migrate();
    const events = new SecurityEvents(database, pino({ level: 'silent' }));
    const keys = new KeyRegistry(database, events);
    await keys.open([]);
    enrollment = new Enrollment(database, keys, events);
    await enrollment.open();
  });
  afterAll(() => database.close());

  test('is registered once: again it is left as it is, its expiry unchanged', async () => {
    const first = await enrollment.registerToken(token, 'gw-1', 3_600_000, 1_000_000);
    expect(first).toEqual({ registered: true, expiresAt: 1_000_000 + 3_600_000, used: false });
    expect(await enrollment.registerToken(token, 'gw-1', 3_600_000, 2_000_000)).toEqual({
      registered: false,
      expiresAt: first.expiresAt,
      used: false,
    });
  });

  test('a token registered for another gateway, or not of the token form, is refused', async () => {
    await expect(enrollment.registerToken(token, 'gw-2')).rejects.toThrow('registered for "gw-1", not "gw-2"');
    await expect(enrollment.registerToken('not-a-token', 'gw-1')).rejects.toThrow('token: expected an enrollment token');
  });
});
