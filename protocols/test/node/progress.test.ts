// Progress on the command line: a line every few seconds off a terminal, one line redrawn on a terminal; the rate
// and the time left from the count; Ctrl-C aborts the work's signal once (a real child process signalled).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';
import { formatDuration, Progress } from '../../src/node/progress.js';

function sink(isTTY: boolean) {
  const written: string[] = [];
  return { written, stream: { isTTY, columns: 100, write: (s: string) => written.push(s) > 0 } };
}

describe('Progress', () => {
  test('off a terminal: a line when one is due (every 5 s), with the count, the share, the rate and the time left', () => {
    let now = 1_000_000;
    const { written, stream } = sink(false);
    const p = new Progress('export of gw-a', 'batches', { stream, now: () => now });
    now += 1000;
    p.update(1000, 10_000);
    expect(written).toEqual([]);
    now += 4000;
    p.update(5000, 10_000);
    expect(written).toEqual(['export of gw-a: 5,000 of 10,000 batches (50.0 %), 1,000/s, about 5 s left\n']);
    now += 1000;
    p.update(6000);
    expect(written).toHaveLength(1);
    now += 60_000;
    p.update(10_000);
    expect(written[1]).toBe('export of gw-a: 10,000 of 10,000 batches (100.0 %), 152/s\n');
    p.finish('export of gw-a: 10,000 batches');
    expect(written[2]).toBe('export of gw-a: 10,000 batches (1 min 06 s)\n');
  });

  test('without a total: the count and the rate only', () => {
    let now = 0;
    const { written, stream } = sink(false);
    const p = new Progress('verify', 'records', { stream, now: () => now, everyMs: 1000 });
    now = 2000;
    p.update(500);
    expect(written).toEqual(['verify: 500 records, 250/s\n']);
  });

  test('on a terminal: one line redrawn in place (a bar when the total is known), ended by the summary', () => {
    let now = 0;
    const { written, stream } = sink(true);
    const p = new Progress('restore: reading', 'MiB', { stream, now: () => now });
    now = 200;
    p.update(25, 100);
    now = 250;
    p.update(30, 100); // redrawn at most every 100 ms
    now = 400;
    p.update(50, 100);
    expect(written).toHaveLength(2);
    for (const line of written) {
      expect(line.startsWith('\r')).toBe(true);
      expect(line).not.toContain('\n');
      expect(line.length).toBe(100); // the terminal's width less one, padded: the longer line before is wiped
    }
    expect(written[1]).toMatch(/^\r\[#{15}\.{15}\] restore: reading: 50 of 100 MiB \(50\.0 %\), 125\/s, about 0 s left/);
    p.finish('restore: 100 MiB read');
    expect(written.slice(2)).toEqual(['\n', 'restore: 100 MiB read (0 s)\n']);
  });

  test('durations', () => {
    expect([formatDuration(0), formatDuration(59_400), formatDuration(61_000), formatDuration(3_725_000)]).toEqual([
      '0 s',
      '59 s',
      '1 min 01 s',
      '1 h 02 min',
    ]);
  });
});

describe('stopOnInterrupt', () => {
  const MODULE = fileURLToPath(new URL('../../src/node/progress.js', import.meta.url));

  test('Ctrl-C aborts the signal once: the work stops after its step and says what it did', async () => {
    const script = `
      const { stopOnInterrupt } = await import(${JSON.stringify(MODULE)});
      const { signal, release } = stopOnInterrupt();
      let steps = 0;
      process.stdout.write('ready\\n');
      while (!signal.aborted) { steps++; await new Promise((r) => setTimeout(r, 5)); }
      release();
      process.stdout.write('stopped after ' + (steps > 0 ? 'some' : 'no') + ' steps: ' + signal.reason.message + '\\n');
      process.exitCode = 130;`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout === 'ready\n') child.kill('SIGINT');
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(130);
    expect(stdout).toBe('ready\nstopped after some steps: stopped by SIGINT\n');
    expect(stderr).toBe('\nSIGINT: stopping after the current step (again to stop at once)\n');
  });
});
