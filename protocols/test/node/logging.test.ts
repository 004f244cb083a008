// The processes' logger: LOG_LEVEL and LOG_FORMAT checked with a message naming the variable; JSON lines by
// default, lines for a person with LOG_FORMAT=pretty, written by a real child process on its stdout or stderr.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';
import { logSettings } from '../../src/node/logging.js';

const MODULE = fileURLToPath(new URL('../../src/node/logging.js', import.meta.url));

function run(script: string, env: Record<string, string> = {}): { stdout: string; stderr: string } {
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    encoding: 'utf8',
  });
  if (child.status !== 0) throw new Error(`the child failed: ${child.stderr}`);
  return { stdout: child.stdout, stderr: child.stderr };
}

/** What a child process logging one line (with a field) on fd 1 writes. */
function childLines(env: Record<string, string>): { stdout: string; stderr: string } {
  return run(
    `const { createProcessLogger } = await import(${JSON.stringify(MODULE)});
     const log = createProcessLogger('probe', { fd: 1 });
     log.info({ batch: 7 }, 'stored');
     log.debug('hidden at info');`,
    env,
  );
}

describe('LOG_LEVEL and LOG_FORMAT', () => {
  test('defaults: info, JSON', () => {
    expect(logSettings({})).toEqual({ level: 'info', format: 'json' });
    expect(logSettings({ LOG_LEVEL: '', LOG_FORMAT: '' }, 'warn')).toEqual({ level: 'warn', format: 'json' });
    expect(logSettings({ LOG_LEVEL: 'debug', LOG_FORMAT: 'pretty' })).toEqual({ level: 'debug', format: 'pretty' });
  });

  test('a wrong value names the variable and what it may be', () => {
    expect(() => logSettings({ LOG_LEVEL: 'loud' })).toThrow(
      /^LOG_LEVEL: "loud" is not a level \(expected one of fatal, error, warn, info, debug, trace, silent\)$/,
    );
    expect(() => logSettings({ LOG_FORMAT: 'xml' })).toThrow(/^LOG_FORMAT: "xml" is not a log format \(expected json or pretty\)$/);
  });
});

describe('a process logging', () => {
  test('JSON lines by default, at info: one object per line with the name, the message and the fields', () => {
    const { stdout, stderr } = childLines({});
    expect(stderr).toBe('');
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({ level: 30, name: 'probe', msg: 'stored', batch: 7 });
  });

  test('LOG_FORMAT=pretty: a line for a person (time, level, name, message), the fields below it, no JSON', () => {
    const { stdout } = childLines({ LOG_FORMAT: 'pretty', LOG_LEVEL: 'debug' });
    expect(stdout).toMatch(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d{4}\] INFO \(probe\): stored\n {4}batch: 7\n/);
    expect(stdout).toMatch(/DEBUG \(probe\): hidden at info/);
    expect(() => JSON.parse(stdout.split('\n')[0] ?? '') as unknown).toThrow();
  });

  test('on stderr when told (stdout stays for what a command prints)', () => {
    const { stdout, stderr } = run(
      `const { createProcessLogger } = await import(${JSON.stringify(MODULE)});
       createProcessLogger('probe', { fd: 2 }).info('to stderr');
       process.stdout.write('output');`,
    );
    expect(stdout).toBe('output');
    expect(JSON.parse(stderr)).toMatchObject({ name: 'probe', msg: 'to stderr' });
  });
});
