// The printed report: size and render time of a bilingual test report (zh-CN and en headings) with Chinese
// customer, item and condition, as a signatory issues it (PDF/A-3a, the CJK font subset embedded, the DCC XML
// and the signed content attached). The first render of a process includes reading the font; the others are
// what each issue costs.
// Environment: BENCH_REPORT_RENDERS (30). Writes bench/results/report-pdf.json.
import { performance } from 'node:perf_hooks';
import { composeContent } from '../server/dist/src/certificates/compose.js';
import { renderDcc } from '../server/dist/src/certificates/render-dcc.js';
import { renderPdf } from '../server/dist/src/certificates/render-pdf.js';
import { contentBytes } from '../server/dist/src/certificates/signing.js';
import { composeInput } from '../server/dist/test/certificates/fixtures.js';
import { envReader } from './lib/env.js';
import { percentile, round1, writeResult } from './lib/result.js';

const NAME = 'report-pdf';
const { envInt } = envReader(NAME);
const params = { renders: envInt('BENCH_REPORT_RENDERS', 30, 2, 10_000), language: 'bilingual' };

const content = composeContent(
  composeInput({
    language: 'bilingual',
    customer: { id: 'org-a', name: '上海某某检测技术有限公司', contact: '021-12345678' },
    sample: { id: 'S-1', description: '热轧带肋钢筋 HRB400，直径 12 mm', condition: '外观完好，无锈蚀', receivedAt: Date.UTC(2026, 10, 19) },
  }),
);
const digest = 'c'.repeat(64);
const dcc = renderDcc(content, digest, { softwareVersion: '0.1.0' });
const times = [];
let bytes = 0;
for (let i = 0; i < params.renders; i++) {
  const t0 = performance.now();
  const pdf = await renderPdf(content, digest, { attachments: { dcc, content: contentBytes(content) } });
  times.push(performance.now() - t0);
  bytes = pdf.length;
}
const warm = times.slice(1).sort((a, b) => a - b);
const results = {
  bytes,
  firstMs: round1(times[0]),
  p50Ms: round1(percentile(warm, 50)),
  p99Ms: round1(percentile(warm, 99)),
  minMs: round1(warm[0]),
  perSecond: round1(1000 / percentile(warm, 50)),
};
console.log(`${NAME}: ${JSON.stringify(results)}`);
writeResult(NAME, { params, results });
