// The lab's witness settings: log.witnesses in server.yaml and the witness policy of `labtrace verify`, with errors
// that name the field or the argument, and property tests over generated input (only those errors, never another).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { formatCosignerVerifierKey, formatVerifierKey, publicKeyFromSeed } from '@labtrace/protocols';
import { loadServerConfig } from '../../src/config.js';
import { witnessPolicy } from '../../src/export/verify-cli.js';
import { logConfigSchema } from '../../src/log/config.js';

const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-lab-witness-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const witnessKey = (n: number): string => formatCosignerVerifierKey(`regulator.example/w${n}`, publicKeyFromSeed(new Uint8Array(32).fill(n)));
const logKey = formatVerifierKey('lab.example/log', publicKeyFromSeed(new Uint8Array(32).fill(1)));

async function load(witnesses: string): Promise<unknown> {
  const file = path.join(dir, 'server.yaml');
  writeFileSync(file, `lab: lab-w\nlog:\n  witnesses:\n${witnesses}`);
  return loadServerConfig(file, {});
}

describe('log.witnesses in server.yaml', () => {
  test('reads the witnesses, none by default', async () => {
    const config = (await load(`    - url: http://127.0.0.1:7380/\n      key: "${witnessKey(2)}"\n`)) as { log: { witnesses: unknown[] } };
    expect(config.log.witnesses).toEqual([{ url: 'http://127.0.0.1:7380/', key: witnessKey(2) }]);
    expect(logConfigSchema.parse(undefined)).toMatchObject({ witnesses: [], witnessMaxBackoffMs: 60_000 });
  });

  test.each([
    [
      'a log key in place of a witness key',
      `    - url: http://w.example/\n      key: "${logKey}"\n`,
      /log\.witnesses\[0\]\.key: not a witness cosigner key/,
    ],
    [
      'a URL that is not http',
      `    - url: ftp://w.example/\n      key: "${witnessKey(2)}"\n`,
      /log\.witnesses\[0\]\.url: expected an http or https URL/,
    ],
    [
      'a witness given twice',
      `    - url: http://a.example/\n      key: "${witnessKey(2)}"\n    - url: http://b.example/\n      key: "${witnessKey(2)}"\n`,
      /log\.witnesses\[1\]\.key: this witness key is given twice/,
    ],
    ['a field it does not know', `    - url: http://a.example/\n      key: "${witnessKey(2)}"\n      weight: 2\n`, /log\.witnesses\[0\]/],
  ])('refuses %s, naming the field', async (_what, text, message) => {
    await expect(load(text)).rejects.toThrow(message);
  });

  test('any generated list is read or refused with issues under witnesses, never anything else', () => {
    const entry = fc.record(
      {
        url: fc.oneof(fc.constant('http://w.example/'), fc.string(), fc.webUrl()),
        key: fc.oneof(fc.constant(witnessKey(3)), fc.constant(logKey), fc.string(), fc.constant(`${witnessKey(3)}x`)),
        extra: fc.anything(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(fc.array(entry, { maxLength: 4 }), fc.anything()), (witnesses) => {
        const parsed = logConfigSchema.safeParse({ witnesses });
        if (!parsed.success) for (const issue of parsed.error.issues) expect(issue.path[0]).toBe('witnesses');
      }),
      { numRuns: 300 },
    );
  });
});

describe('labtrace verify --witness/--witnesses-required', () => {
  test('defaults to every distinct witness named; a key named twice counts once', () => {
    expect(witnessPolicy([witnessKey(2), witnessKey(3)], undefined)).toEqual({ keys: [witnessKey(2), witnessKey(3)], required: 2 });
    expect(witnessPolicy([witnessKey(2), witnessKey(2)], undefined)?.required).toBe(1);
    expect(witnessPolicy([witnessKey(2), witnessKey(3), witnessKey(4)], '2')?.required).toBe(2);
    expect(witnessPolicy([], undefined)).toBeUndefined();
  });

  test.each([
    [[logKey], undefined, /^--witness ".*": not a witness cosigner key/],
    [[witnessKey(2)], '0', /^--witnesses-required "0": expected a whole number from 1 to 1/],
    [[witnessKey(2), witnessKey(2)], '2', /^--witnesses-required "2": expected a whole number from 1 to 1/],
    [[witnessKey(2)], '1.5', /^--witnesses-required/],
    [[], '1', /^--witnesses-required: given without any --witness key/],
  ])('refuses %j with --witnesses-required %s, naming the argument', (keys, required, message) => {
    expect(() => witnessPolicy(keys, required)).toThrow(message);
  });

  test('any generated arguments give a policy within bounds or an error naming the argument', () => {
    const key = fc.oneof(fc.constantFrom(witnessKey(2), witnessKey(3), witnessKey(4), logKey), fc.string());
    fc.assert(
      fc.property(
        fc.array(key, { maxLength: 5 }),
        fc.option(fc.oneof(fc.nat({ max: 6 }).map(String), fc.string()), { nil: undefined }),
        (keys, required) => {
          let policy;
          try {
            policy = witnessPolicy(keys, required);
          } catch (err) {
            expect((err as Error).message).toMatch(/^--witness(es-required)?[: ]/);
            return;
          }
          if (policy === undefined) return expect(keys).toEqual([]);
          expect(policy.required).toBeGreaterThanOrEqual(1);
          expect(policy.required).toBeLessThanOrEqual(new Set(keys).size);
        },
      ),
      { numRuns: 500 },
    );
  });
});
