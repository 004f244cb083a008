import { fileURLToPath } from 'node:url';
import { expect, test } from '@jest/globals';
import { printPlan } from '../src/cli.js';

const PROFILES = fileURLToPath(new URL('../../../device-sim/profiles/', import.meta.url));

test('gateway plan prints one request per merged range', async () => {
  const lines: string[] = [];
  await printPlan(`${PROFILES}climate-chamber.yaml`, (l) => lines.push(l));
  expect(lines[0]).toMatch(/^climate-1: unit 1 on tcp 127\.0\.0\.1:5020, every 500 ms, 2 request\(s\) per poll$/);
  expect(lines).toContain('#1 FC2 discrete 0..0 (1, 0 filler)');
  expect(lines).toContain('#2 FC3 holding 0..4 (5, 0 filler)');
  expect(lines.some((l) => /\+2\s+humidity\s+float32 CDAB \[%RH\]/.test(l))).toBe(true);
});

test('an MQTT profile has no plan', async () => {
  await expect(printPlan(`${PROFILES}does-not-exist.yaml`)).rejects.toThrow(/file not found/);
});

test('gateway plan explains a balance profile: what is asked, how often, how replies are qualified', async () => {
  const lines: string[] = [];
  await printPlan(`${PROFILES}balance-sics.yaml`, (l) => lines.push(l));
  expect(lines[0]).toBe('bal-sics-1: MT-SICS balance on tcp 127.0.0.1:4001');
  expect(lines).toContain('every 500 ms: sends SI (send the weight now), waits up to 1000 ms for the reply');
  expect(lines.some((l) => /^\s+mass\s+weight \[g\]: stable good, moving uncertain \(unstable\), another unit bad$/.test(l))).toBe(true);
  expect(lines).toContain('commands that change the balance (zero, tare): none sent');
});

test('gateway plan explains a result-file profile: the folder, when a file is taken, the columns, time and what happens to it', async () => {
  const lines: string[] = [];
  await printPlan(`${PROFILES}result-files.yaml`, (l) => lines.push(l));
  expect(lines[0]).toBe('utm-results-1: result files (CSV) in ./results/utm-1');
  expect(lines).toContain('takes: *.csv, except ~*');
  expect(lines).toContain('a file is taken once its size and modification time have not changed for 2000 ms');
  expect(lines).toContain('CSV: delimiter ";", utf8, 1 row(s) skipped, then a header row, decimal comma');
  expect(lines).toContain('    force                column "Force [kN]", number [kN]');
  expect(lines).toContain('time: column "Time", format dd.MM.yyyy HH:mm:ss.SSS, zone Europe/Berlin');
  expect(lines.join('\n')).toMatch(/signed record carries the file's SHA-256/);
  expect(lines.join('\n')).toMatch(/moved to quarantine\/ with a \.reason\.txt/);
});
