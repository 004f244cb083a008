// A lab enrolled with a required witness: its checkpoints without that witness's cosignature are a finding, with
// it (a cosignature/v1 line on the note, as a C2SP witness returns it) they are not; a cosignature by another key
// under the witness's name does not count.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import pino from 'pino';
import { cosignatureSigner, formatCosignerSignerKey, formatCosignerVerifierKey, publicKeyFromSeed } from '@labtrace/protocols';
import { DEFAULT_RULE_SETTINGS } from '../../src/supervisor/evidence.js';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import { DOUBLE_ORIGIN, LabDouble } from './log-double.js';

const TOKEN = 'supervisor-api-token-for-tests-0123456789';
const NAME = 'regulator.example/w1';
const WITNESS_SEED = new Uint8Array(32).fill(7);
let dir: string;
let lab: LabDouble;
let supervisor: Supervisor;

beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'labtrace-supervisor-'));
  lab = new LabDouble();
  lab.entries = ['a', 'b', 'c'];
  await lab.start();
  supervisor = new Supervisor(
    {
      host: '127.0.0.1',
      port: 0,
      database: path.join(dir, 'supervisor.db'),
      apiToken: TOKEN,
      followEveryMs: 3_600_000,
      settings: DEFAULT_RULE_SETTINGS,
      labs: [
        {
          id: 'double',
          name: 'double',
          url: lab.url,
          origin: DOUBLE_ORIGIN,
          logKey: lab.logKey,
          token: 't',
          witnesses: [formatCosignerVerifierKey(NAME, publicKeyFromSeed(WITNESS_SEED))],
          witnessesRequired: 1,
        },
      ],
    },
    pino({ level: 'silent' }),
  );
  await supervisor.start();
});

afterEach(async () => {
  await supervisor.stop();
  await lab.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** the lab's witnesses as GET /api/labs/:lab gives them */
async function witnessState(): Promise<unknown> {
  const res = await fetch(`${supervisor.url}/api/labs/double`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return ((await res.json()) as { witnesses: unknown }).witnesses;
}

async function rulesFound(): Promise<string[]> {
  await fetch(`${supervisor.url}/api/labs/double/check`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  const res = await fetch(`${supervisor.url}/api/labs/double/findings`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return ((await res.json()) as { findings: { rule: string }[] }).findings.map((f) => f.rule);
}

describe('checkpoint-not-cosigned', () => {
  test('a checkpoint cosigned by the required witness is no finding', async () => {
    lab.cosigners = [cosignatureSigner(formatCosignerSignerKey(NAME, WITNESS_SEED))];
    expect(await rulesFound()).toEqual([]);
    expect(await witnessState()).toEqual({ names: [NAME], required: 1, cosignedBy: [NAME] });
  });

  test('one without it is, and so is one cosigned under the name with another key', async () => {
    lab.cosigners = [cosignatureSigner(formatCosignerSignerKey(NAME, new Uint8Array(32).fill(8)))];
    expect(await rulesFound()).toEqual(['checkpoint-not-cosigned']);
    expect(await witnessState()).toEqual({ names: [NAME], required: 1, cosignedBy: [] });
  });
});
