import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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

test('gateway plan explains a SCPI profile: the identity checked, the queries with their timeouts, the error queue', async () => {
  const lines: string[] = [];
  await printPlan(`${PROFILES}multimeter-scpi.yaml`, (l) => lines.push(l));
  expect(lines[0]).toBe('dmm-1: SCPI instrument on tcp 127.0.0.1:5025');
  expect(lines[1]).toBe(
    'at every connect: sends *IDN?, expects manufacturer "Keysight Technologies", model "34465A", serial number "MY57001234"; another instrument is not read',
  );
  expect(lines.some((l) => /^\s+resistance\s+MEAS:RES\?\s+\[Ohm\] timeout 5000 ms$/.test(l))).toBe(true);
  expect(lines.some((l) => /^\s+voltage\s+MEAS:VOLT:DC\?\s+\[V\] timeout 2000 ms$/.test(l))).toBe(true);
  expect(lines.some((l) => l.startsWith('then SYST:ERR? until 0,"No error"'))).toBe(true);
});

test('gateway plan explains a generic line profile: the request or none, the pattern, the groups as points', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-plan-'));
  const file = path.join(dir, 'ph.yaml');
  writeFileSync(
    file,
    [
      'protocol: line',
      'id: ph-1',
      'identity: { maker: Acme, model: PH-7, serialNumber: P1 }',
      'connection: { transport: serial, path: /dev/ttyUSB1, baudRate: 4800 }',
      "pattern: '^pH (?<ph>\\S+) T (?<temp>\\S+) C$'",
      'points:',
      '  - { name: ph, group: ph, unit: pH, decimalComma: true }',
      '  - { name: temp, group: temp, unit: °C, decimalComma: true }',
    ].join('\n'),
  );
  const lines: string[] = [];
  await printPlan(file, (l) => lines.push(l));
  expect(lines[0]).toBe('ph-1: line instrument (generic dialect) on serial /dev/ttyUSB1');
  expect(lines).toContain('serial line: 4800 baud, 8 data bits, parity none, 1 stop bit(s)');
  expect(lines).toContain('unsolicited: sends nothing, reads every line the instrument prints');
  expect(lines).toContain('pattern: /^pH (?<ph>\\S+) T (?<temp>\\S+) C$/');
  expect(lines.some((l) => /^\s+temp\s+group temp \(decimal comma\) \[°C\]$/.test(l))).toBe(true);
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
