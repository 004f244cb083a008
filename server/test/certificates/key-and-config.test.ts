// The lab's certificate key is made once, kept private (mode 0600) and refused when others can read it; the
// laboratory's name, address and country and the public base URL are checked at start-up with messages naming
// the field; the public routes share the API's rate limit.
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from '@jest/globals';
import pino from 'pino';
import { parseWith, toHex } from '@labtrace/protocols';
import { loadReportAssets } from '../../src/certificates/certificates.js';
import { certificateKey } from '../../src/certificates/signing.js';
import { serverConfigSchema } from '../../src/index.js';
import { startServer } from '../helpers/server.js';

const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-cert-key-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const logger = pino({ level: 'silent' });

test('the key is created at the first start with mode 0600, the same one read afterwards, and refused when readable by others', () => {
  const file = path.join(dir, 'certificate.key');
  const first = certificateKey(file, 'labtrace-certificates/lab-t', logger);
  expect(statSync(file).mode & 0o777).toBe(0o600);
  const again = certificateKey(file, 'labtrace-certificates/lab-t', logger);
  expect(toHex(again.publicKey)).toBe(toHex(first.publicKey));
  chmodSync(file, 0o644);
  expect(() => certificateKey(file, 'labtrace-certificates/lab-t', logger)).toThrow(
    /certificates.keyFile: .* lets others read the private key; chmod 600 it/,
  );
});

test('the laboratory and the public base URL are validated with the path of each problem', () => {
  const parse = (extra: Record<string, unknown>) => () => parseWith(serverConfigSchema, extra, 'server.yaml');
  expect(parse({ laboratory: { name: ' ', address: '1 Test Street' } })).toThrow(/laboratory.name: required: the name printed on reports/);
  expect(parse({ laboratory: { name: 'Lab' } })).toThrow(/laboratory.address/);
  expect(parse({ publicBaseUrl: 'lab.example.com' })).toThrow(/publicBaseUrl: expected an http\(s\) URL/);
  // the country its DCCs name: ISO 3166-1 alpha-2, as the DCC schema takes it
  for (const country of ['de', 'Germany', 'D', 'DEU'])
    expect(parse({ laboratory: { name: 'Lab', address: '1 Test Street', country } })).toThrow(
      /laboratory.country: expected an ISO 3166-1 alpha-2 country code in capitals, such as DE/,
    );
  expect(parseWith(serverConfigSchema, { laboratory: { name: 'Lab', address: '1 Test Street', country: 'DE' } }, 'x').laboratory?.country).toBe('DE');
  const ok = parseWith(
    serverConfigSchema,
    { laboratory: { name: 'Lab', address: '1 Test Street' }, publicBaseUrl: 'https://lab.example.com/reports' },
    'x',
  );
  expect(ok.laboratory).toEqual({ name: 'Lab', address: '1 Test Street' });
});

test('the public verification routes are rate-limited per address, like the API', async () => {
  const t = await startServer({ http: { host: '127.0.0.1', port: 0, rateLimit: { perSecond: 0.001, burst: 3 } } });
  try {
    const statuses: number[] = [];
    for (const p of ['/verify/TR-x-1', '/api/public/certificates/TR-x-1', '/verify/TR-x-1', '/verify/TR-x-1']) {
      const res = await fetch(`${t.base}${p}`);
      await res.arrayBuffer();
      statuses.push(res.status);
    }
    expect(statuses).toEqual([404, 404, 404, 429]);
  } finally {
    await t.stop();
  }
});

test('a configured logo, mark or font that cannot be used stops the start, naming the config key and the reason', () => {
  const text = path.join(dir, 'logo.txt');
  writeFileSync(text, 'not an image');
  expect(() => loadReportAssets({ logo: text })).toThrow(/laboratory\.logo: .*logo\.txt is not a PNG or JPEG image/);
  expect(() => loadReportAssets({ accreditationMark: path.join(dir, 'mark.png') })).toThrow(
    /certificates\.accreditationMark: cannot read .*mark\.png \(ENOENT\)/,
  );
  expect(() => loadReportAssets({ font: { regular: { file: path.join(dir, 'font.ttf') } } })).toThrow(/report font .*font\.ttf: no such file/);
  // without configuration: the npm font, no images
  expect(loadReportAssets(undefined)).toMatchObject({ font: { source: 'npm' }, fontProblem: '', logo: undefined, accreditationMark: undefined });
  // the config names its keys where a font is configured without its file
  expect(() => parseWith(serverConfigSchema, { certificates: { font: { regular: {} } } }, 'server.yaml')).toThrow(
    /certificates\.font\.regular\.file/,
  );
  expect(parseWith(serverConfigSchema, { laboratory: { name: 'Lab', address: '1 Test Street', logo: text } }, 'x').laboratory?.logo).toBe(text);
});
