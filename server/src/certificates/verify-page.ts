// The public verification page of a certificate: server-rendered HTML with no external resource, every value
// escaped, and a small inline script (allowed by its hash in the page's own Content-Security-Policy) that
// posts a chosen file's bytes to POST /verify/:id and shows whether it is byte for byte the one issued.
import { createHash } from 'node:crypto';
import type { PublicStatus } from './certificates.js';

export const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

const time = (ms: number): string => `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;

const STYLE = `body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
h1{font-size:1.4rem}.status{padding:.8rem 1rem;border-radius:.4rem;font-weight:600;margin:1rem 0}
.valid{background:#e3f6e6;border:1px solid #3a8a46}.amended{background:#fff6dc;border:1px solid #b08a1a}
.revoked,.unknown{background:#fde7e7;border:1px solid #b33a3a}dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}
dt{font-weight:600}dd{margin:0;word-break:break-all;font-family:ui-monospace,monospace;font-size:.85rem}
#result{margin-top:.8rem;font-weight:600}`;

const SCRIPT = `document.getElementById('upload').addEventListener('submit', async (e) => {
  e.preventDefault();
  const out = document.getElementById('result');
  const file = document.getElementById('file').files[0];
  if (!file) { out.textContent = 'Choose a file first.'; return; }
  out.textContent = 'Checking...';
  try {
    const res = await fetch(location.pathname, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: await file.arrayBuffer() });
    const body = await res.json();
    if (!res.ok) { out.textContent = body.error || ('Error ' + res.status); return; }
    out.textContent = body.match
      ? 'Match: this ' + body.format.toUpperCase() + ' file is byte for byte the one issued (certificate status: ' + body.status + ').'
      : 'NO MATCH: this file is not the ' + (body.format === 'unknown' ? 'certificate' : body.format.toUpperCase()) + ' the laboratory issued under this number.';
  } catch (err) { out.textContent = 'The check failed: ' + err; }
});`;

const sha = (s: string): string => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;

/** The page's own policy: nothing from elsewhere, the inline style and script by their hashes, posts to itself. */
export const VERIFY_PAGE_CSP = `default-src 'none'; style-src ${sha(STYLE)}; script-src ${sha(SCRIPT)}; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`;

export function verifyPage(status: PublicStatus, lab: string): string {
  const id = escapeHtml(status.id);
  let banner: string;
  let details = '';
  if (status.status === 'unknown') {
    banner = `<div class="status unknown">Unknown: the laboratory has issued no report with the number ${id}.</div>`;
  } else {
    banner =
      status.status === 'valid'
        ? `<div class="status valid">Valid: report ${id} was issued by the laboratory and is in force.</div>`
        : status.status === 'amended'
          ? `<div class="status amended">Amended: report ${id} was replaced by report <a href="${encodeURIComponent(status.amendedBy ?? '')}">${escapeHtml(status.amendedBy ?? '')}</a>; use that one.</div>`
          : `<div class="status revoked">Revoked on ${escapeHtml(time(status.revokedAt ?? 0))}: ${escapeHtml(status.revocationReason ?? '')}</div>`;
    const rows: [string, string][] = [
      ['Report No.', status.id],
      ['Issued', time(status.issuedAt)],
      ...(status.amends === null ? [] : ([['Amends', `${status.amends} (${status.amendReason ?? ''})`]] as [string, string][])),
      ['SHA-256 of the PDF', status.digests.pdf],
      ['SHA-256 of the JSON file', status.jsonFileDigest],
      ['SHA-256 of the content (signed)', status.digests.json],
      ['SHA-256 of the DCC XML', status.digests.dcc],
      ['Signed with lab key', status.keyId],
      ['Transparency log entry', String(status.logIndex)],
    ];
    details = `<dl>${rows.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl>`;
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Report ${id}: verification</title><style>${STYLE}</style></head>
<body><h1>${escapeHtml(lab)}: verification of report ${id}</h1>
${banner}
${details}
<h2>Check a file you received</h2>
<p>Choose the PDF, the JSON or the DCC XML of this report: it is compared, byte for byte, with the one issued.</p>
<form id="upload"><input type="file" id="file" accept=".pdf,.json,.xml"> <button type="submit">Check</button></form>
<div id="result" role="status"></div>
<script>${SCRIPT}</script>
</body></html>
`;
}
