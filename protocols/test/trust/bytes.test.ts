import { describe, expect, test } from '@jest/globals';
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
