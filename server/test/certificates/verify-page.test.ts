// The public verification page's link to the client's disclosure bundle: shown with the report's summary (to whoever
// holds the report's verification code), in both languages, never without it (the run's id is the holder's to see).
import { describe, expect, test } from '@jest/globals';
import { verifyPage, type PageLanguage } from '../../src/certificates/verify-page.js';
import type { PublicStatus, PublicSummary } from '../../src/certificates/certificates.js';

const status: PublicStatus = {
  id: 'R-2027-0001',
  status: 'valid',
  issuedAt: Date.UTC(2027, 0, 15),
  amends: null,
  amendReason: null,
  amendedBy: null,
  revokedAt: null,
  revocationReason: null,
  digests: { json: 'a'.repeat(64), pdf: 'b'.repeat(64), dcc: 'c'.repeat(64) },
  jsonFileDigest: 'd'.repeat(64),
  keyId: '01020304',
  logIndex: 7,
};
const summary: PublicSummary = {
  customer: 'Client A',
  item: { id: 'S-1', description: 'bar' },
  method: 'ISO 6892-1:2019: Tensile testing',
  language: 'en',
  results: [],
  verdict: 'no-decision',
  run: 'run-7/a',
};

describe('the verification page', () => {
  test.each<PageLanguage>(['en', 'zh-CN'])('links the holder of the report (%s) to the run’s disclosure bundle', (language) => {
    const html = verifyPage(status, 'Lab', { language, summary, code: '0123456789abcdef' });
    expect(html).toContain('<a href="/api/runs/run-7%2Fa/disclosure" download>');
  });

  test('shows no link, and no run, without the summary', () => {
    const html = verifyPage(status, 'Lab', { language: 'en' });
    expect(html).not.toContain('/disclosure');
    expect(html).not.toContain('run-7');
  });
});
