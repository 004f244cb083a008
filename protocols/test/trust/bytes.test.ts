import { describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { fromBase64, fromHex, toBase64, toHex } from '../../src/index.js';

describe('base64 (RFC 4648 section 10 test vectors)', () => {
  const cases: [string, string][] = [
    ['', ''],
    ['f', 'Zg=='],
    ['fo', 'Zm8='],
    ['foo', 'Zm9v'],
    ['foob', 'Zm9vYg=='],
    ['fooba', 'Zm9vYmE='],
    ['foobar', 'Zm9vYmFy'],
  ];
  for (const [plain, encoded] of cases) {
    test(`"${plain}"`, () => {
      expect(toBase64(new TextEncoder().encode(plain))).toBe(encoded);
      expect(new TextDecoder().decode(fromBase64(encoded))).toBe(plain);
    });
  }
  test('all byte values agree with Buffer', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    for (let n = 0; n <= 256; n += 17) {
      expect(toBase64(all.subarray(0, n))).toBe(Buffer.from(all.subarray(0, n)).toString('base64'));
      expect(toHex(fromBase64(Buffer.from(all.subarray(0, n)).toString('base64')))).toBe(Buffer.from(all.subarray(0, n)).toString('hex'));
    }
  });
  test('refuses unpadded, URL-safe, whitespace and non-canonical forms', () => {
    for (const bad of ['Zg', 'Zm8', 'Zg=', '-_==', 'Zm9 v', 'Zm9v\n', 'Zh==', 'Zm9=', '====', 'Z===']) {
      expect(() => fromBase64(bad)).toThrow(expect.objectContaining({ code: 'E_CODEC', reason: 'bad-base64' }));
    }
  });
});

describe('hex', () => {
  test('round trip and strictness', () => {
    expect(toHex(fromHex('00ff10ab'))).toBe('00ff10ab');
    for (const bad of ['0', 'zz', '00FF', '0x00']) expect(() => fromHex(bad)).toThrow(expect.objectContaining({ reason: 'bad-hex' }));
  });
});

// fromBase64 decodes with Node's Buffer where there is one and with a lookup table in a browser: both must accept
// and refuse exactly what the strict definition does, with the same messages (the reference below is that definition
// written plainly: the alphabet and padding by a pattern, then the text must be the encoding of its bytes).
describe('base64: the fast decoders against the strict definition', () => {
  const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const reference = (text: string): string => {
    if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return `not padded standard base64: "${text.slice(0, 80)}"`;
    const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
    const out: number[] = [];
    for (let i = 0; i < text.length; i += 4) {
      let n = 0;
      for (let j = 0; j < 4; j++) n = (n << 6) | Math.max(0, ALPHABET.indexOf(text.charAt(i + j)));
      out.push((n >> 16) & 255, (n >> 8) & 255, n & 255);
    }
    const bytes = Uint8Array.from(out.slice(0, out.length - padding));
    return toBase64(bytes) === text ? toHex(bytes) : `not the canonical base64 of its bytes: "${text.slice(0, 80)}"`;
  };
  const inputs = ((): string[] => {
    const out = [
      '',
      '=',
      '==',
      '====',
      'Z===',
      'AB=C',
      'A=B=',
      'Zm9v',
      'Zm9vYg==',
      'Zm9vYmE=',
      'Zm9vYmE',
      'Zm9v YmE=',
      'Zm9v\nYmE=',
      ' Zm9v',
      'Zm9v\t',
    ];
    out.push('Zm9-', 'Zm9_', '-_-_', 'Zm9vYh==', 'Zm9vYmF=', 'Zm9\u00e9', 'Zm9\ud800', 'Zm9\u{1f600}', 'Zm9vYg=\u0000', 'Zm9vYg==Zm9v', 'Zm9vYg==\n');
    let seed = 7;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    // canonical encodings of every length up to 40 bytes, and each with one character changed, dropped or added
    const pool = `${ALPHABET}=-_ \n.`;
    for (let n = 0; n <= 40; n++) {
      const good = toBase64(Uint8Array.from({ length: n }, () => next(256)));
      out.push(good);
      for (let k = 0; k < 12; k++) {
        const at = next(good.length + 1);
        const c = pool.charAt(next(pool.length));
        out.push(good.slice(0, at) + c + good.slice(at + 1), good.slice(0, at) + good.slice(at + 1), good.slice(0, at) + c + good.slice(at));
      }
    }
    // short random texts over the alphabet and padding
    for (let k = 0; k < 3000; k++) out.push(Array.from({ length: next(13) }, () => `${ALPHABET}==`.charAt(next(ALPHABET.length + 2))).join(''));
    return out;
  })();
  const outcome = (decode: (text: string) => Uint8Array, text: string): string => {
    try {
      return toHex(decode(text));
    } catch (err) {
      return (err as Error).message;
    }
  };

  test("with Node's Buffer: the same bytes, or the same refusal, for every input; the bytes own their buffer", () => {
    expect(globalThis.Buffer).toBeDefined();
    for (const text of inputs) expect([text, outcome(fromBase64, text)]).toEqual([text, reference(text)]);
    const bytes = fromBase64('Zm9vYmE=');
    expect(Object.getPrototypeOf(bytes)).toBe(Uint8Array.prototype);
    expect([bytes.byteOffset, bytes.buffer.byteLength]).toEqual([0, 5]);
  });

  test('without Buffer (as in a browser): the lookup table gives the same for every input', () => {
    const bytesModule = new URL('../../src/trust/bytes.js', import.meta.url).href;
    const script = `delete globalThis.Buffer;
      const { fromBase64, toHex } = await import(${JSON.stringify(bytesModule)});
      if (typeof globalThis.Buffer !== 'undefined') throw new Error('Buffer is still there');
      const inputs = JSON.parse(await new Promise((resolve) => { let s = ''; process.stdin.on('data', (d) => (s += d)); process.stdin.on('end', () => resolve(s)); }));
      process.stdout.write(JSON.stringify(inputs.map((t) => { try { return toHex(fromBase64(t)); } catch (err) { return err.message; } })));`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { input: JSON.stringify(inputs), encoding: 'utf8' });
    expect(child.stderr).toBe('');
    const results = JSON.parse(child.stdout) as string[];
    expect(results.length).toBe(inputs.length);
    inputs.forEach((text, i) => expect([text, results[i]]).toEqual([text, reference(text)]));
  });
});
