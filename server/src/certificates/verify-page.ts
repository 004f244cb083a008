// The public verification page of a certificate, in Chinese and English: server-rendered HTML with no external
// resource, every value escaped, and a small inline script (allowed by its hash in the page's own
// Content-Security-Policy) that posts a chosen file's bytes to POST /verify/:id and shows whether it is byte for
// byte the one issued. The language is the ?lang= asked for, else the browser's (Accept-Language), else
// English; each page links to the other language.
// Anyone sees the status, the issue date and the digests. Who the report is for, the item, the results and the
// verdict are shown only to who holds the report: its QR code and printed link carry the report's verification
// code (certificates.ts), so that report numbers, which follow each other, cannot be walked to read the
// laboratory's customers and results.
import { createHash } from 'node:crypto';
import type { PublicStatus, PublicSummary } from './certificates.js';

export const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

export type PageLanguage = 'zh-CN' | 'en';

/** The page's language: ?lang= first, then the best of Accept-Language among zh and en, then English. */
export function pageLanguage(lang: string | undefined, acceptLanguage: string | undefined): PageLanguage {
  if (lang === 'zh-CN' || lang === 'en') return lang;
  let best: { lang: PageLanguage; q: number } | undefined;
  for (const part of (acceptLanguage ?? '').split(',')) {
    const [tag = '', ...params] = part.trim().split(';');
    const q = Number(/^\s*q=([0-9.]+)\s*$/.exec(params.find((p) => /^\s*q=/.test(p)) ?? 'q=1')?.[1] ?? '1');
    const primary = tag.trim().toLowerCase().split('-')[0];
    const candidate: PageLanguage | undefined = primary === 'zh' ? 'zh-CN' : primary === 'en' ? 'en' : undefined;
    if (candidate !== undefined && Number.isFinite(q) && q > 0 && (best === undefined || q > best.q)) best = { lang: candidate, q };
  }
  return best?.lang ?? 'en';
}

const time = (ms: number): string => `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;

const WORDS = {
  'zh-CN': {
    title: (id: string) => `报告 ${id}：真伪验证`,
    heading: (lab: string, id: string) => `${lab}：报告 ${id} 的验证`,
    unknown: (id: string) => `未知：本实验室未签发编号为 ${id} 的报告。`,
    valid: (id: string) => `有效：报告 ${id} 由本实验室签发，现行有效。`,
    amended: (id: string, by: string) => `已更正：报告 ${id} 已被报告 ${by} 替代，请使用该报告。`,
    revoked: (at: string, why: string) => `已撤销（${at}）：${why}`,
    rows: {
      id: '报告编号',
      issued: '签发时间',
      amends: '所更正的报告',
      pdf: 'PDF 的 SHA-256',
      json: 'JSON 文件的 SHA-256',
      content: '报告内容（已签名）的 SHA-256',
      dcc: 'DCC XML 的 SHA-256',
      key: '实验室签名密钥',
      log: '透明日志条目',
    },
    report: '报告内容',
    customer: '委托方',
    item: '检测样品',
    method: '检测方法',
    results: '检测结果',
    verdict: '总体结论',
    table: ['检测项目', '结果', 'U', 'k', '单位', '判定'],
    verdicts: { pass: '合格', fail: '不合格', 'no-decision': '不作判定' },
    proofs: '测量记录及其证明',
    proofsText:
      '本报告所依据的测试运行的测量记录，每条附有其签名批次和透明日志的证明（仅含该运行的记录）。委托方登录后下载，并用 labtrace verify 离线验证：',
    proofsLink: '下载选择性披露包',
    noCode: '报告的委托方、样品和结果仅向持有报告者显示：请扫描报告上的二维码或使用报告上打印的链接。',
    badCode: '验证码与本报告不符：请扫描报告上的二维码或使用报告上打印的链接。',
    check: '核对您收到的文件',
    checkText: '选择本报告的 PDF、JSON 或 DCC XML 文件，它将与签发的文件逐字节比对。',
    button: '核对',
    file: '报告文件',
    other: 'English',
    messages: {
      choose: '请先选择文件。',
      checking: '正在核对……',
      match: '一致：此 {format} 文件与签发的文件逐字节相同（报告状态：{status}）。',
      noMatch: '不一致：此文件不是本实验室以该编号签发的 {format}。',
      failed: '核对失败：',
      certificate: '报告',
    },
  },
  en: {
    title: (id: string) => `Report ${id}: verification`,
    heading: (lab: string, id: string) => `${lab}: verification of report ${id}`,
    unknown: (id: string) => `Unknown: the laboratory has issued no report with the number ${id}.`,
    valid: (id: string) => `Valid: report ${id} was issued by the laboratory and is in force.`,
    amended: (id: string, by: string) => `Amended: report ${id} was replaced by report ${by}; use that one.`,
    revoked: (at: string, why: string) => `Revoked on ${at}: ${why}`,
    rows: {
      id: 'Report No.',
      issued: 'Issued',
      amends: 'Amends',
      pdf: 'SHA-256 of the PDF',
      json: 'SHA-256 of the JSON file',
      content: 'SHA-256 of the content (signed)',
      dcc: 'SHA-256 of the DCC XML',
      key: 'Signed with lab key',
      log: 'Transparency log entry',
    },
    report: 'The report',
    customer: 'Customer',
    item: 'Item tested',
    method: 'Method',
    results: 'Results',
    verdict: 'Overall verdict',
    table: ['Quantity', 'Value', 'U', 'k', 'Unit', 'Verdict'],
    verdicts: { pass: 'pass', fail: 'fail', 'no-decision': 'no decision' },
    proofs: 'Measurement records with their proofs',
    proofsText:
      "The records of the test run this report was issued from, each with the proofs of its signed batch and of the laboratory's transparency log (that run's records only). The report's client signs in to download them and checks them offline with labtrace verify:",
    proofsLink: 'download the disclosure bundle',
    noCode: 'Who the report is for, the item and the results are shown to who holds the report: scan its QR code or open the link printed on it.',
    badCode: 'The verification code does not match this report: scan the QR code on the report or open the link printed on it.',
    check: 'Check a file you received',
    checkText: 'Choose the PDF, the JSON or the DCC XML of this report: it is compared, byte for byte, with the one issued.',
    button: 'Check',
    file: 'Report file',
    other: '中文',
    messages: {
      choose: 'Choose a file first.',
      checking: 'Checking...',
      match: 'Match: this {format} file is byte for byte the one issued (certificate status: {status}).',
      noMatch: 'NO MATCH: this file is not the {format} the laboratory issued under this number.',
      failed: 'The check failed: ',
      certificate: 'certificate',
    },
  },
} as const;

const STYLE = `body{font-family:system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
h1{font-size:1.4rem}.status{padding:.8rem 1rem;border-radius:.4rem;font-weight:600;margin:1rem 0}
.valid{background:#e3f6e6;border:1px solid #3a8a46}.amended{background:#fff6dc;border:1px solid #b08a1a}
.revoked,.unknown{background:#fde7e7;border:1px solid #b33a3a}dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}
dt{font-weight:600}dd{margin:0;word-break:break-all}dl.digests dd{font-family:ui-monospace,monospace;font-size:.85rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{border:1px solid #999;padding:.25rem .4rem;text-align:left}
.lang{float:right}.note{color:#444}#result{margin-top:.8rem;font-weight:600}.wrap{overflow-x:auto}`;

// the messages come from the page (data-* of #result), so that one script, with one hash, serves both languages
const SCRIPT = `document.getElementById('upload').addEventListener('submit', async (e) => {
  e.preventDefault();
  const out = document.getElementById('result');
  const m = out.dataset;
  const file = document.getElementById('file').files[0];
  if (!file) { out.textContent = m.choose; return; }
  out.textContent = m.checking;
  try {
    const res = await fetch(location.pathname, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: await file.arrayBuffer() });
    const body = await res.json();
    if (!res.ok) { out.textContent = body.error || ('Error ' + res.status); return; }
    out.textContent = body.match
      ? m.match.replace('{format}', body.format.toUpperCase()).replace('{status}', body.status)
      : m.noMatch.replace('{format}', body.format === 'unknown' ? m.certificate : body.format.toUpperCase());
  } catch (err) { out.textContent = m.failed + err; }
});`;

const sha = (s: string): string => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;

/** The page's own policy: nothing from elsewhere, the inline style and script by their hashes, posts to itself. */
export const VERIFY_PAGE_CSP = `default-src 'none'; style-src ${sha(STYLE)}; script-src ${sha(SCRIPT)}; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`;

export interface VerifyPageOptions {
  language: PageLanguage;
  /** the report's content as the holder may see it; undefined without (or with a wrong) verification code */
  summary?: PublicSummary | undefined;
  /** the verification code given, if any (kept in the language switch) */
  code?: string | undefined;
}

export function verifyPage(status: PublicStatus, lab: string, options: VerifyPageOptions = { language: 'en' }): string {
  const lang = options.language;
  const w = WORDS[lang];
  const query = (l: PageLanguage): string => `?lang=${l}${options.code === undefined ? '' : `&amp;code=${encodeURIComponent(options.code)}`}`;
  let banner: string;
  let details = '';
  if (status.status === 'unknown') {
    banner = `<div class="status unknown" role="status">${escapeHtml(w.unknown(status.id))}</div>`;
  } else {
    banner =
      status.status === 'valid'
        ? `<div class="status valid" role="status">${escapeHtml(w.valid(status.id))}</div>`
        : status.status === 'amended'
          ? `<div class="status amended" role="status">${escapeHtml(w.amended(status.id, '\u0000')).replace(
              '\u0000',
              `<a href="${encodeURIComponent(status.amendedBy ?? '')}?lang=${lang}">${escapeHtml(status.amendedBy ?? '')}</a>`,
            )}</div>`
          : `<div class="status revoked" role="status">${escapeHtml(w.revoked(time(status.revokedAt ?? 0), status.revocationReason ?? ''))}</div>`;
    const summary = options.summary;
    if (summary !== undefined) {
      const s = summary;
      const resultRows = s.results
        .map(
          (r) =>
            `<tr><td>${escapeHtml(`${r.name} ${r.title}`)}</td><td>${escapeHtml(r.reported)}</td><td>${escapeHtml(r.uncertainty)}</td><td>${escapeHtml(String(r.coverageFactor))}</td><td>${escapeHtml(r.unit)}</td><td>${r.verdict === null ? '—' : escapeHtml(w.verdicts[r.verdict])}</td></tr>`,
        )
        .join('');
      details += `<h2>${escapeHtml(w.report)}</h2><dl>${[
        [w.customer, s.customer],
        [w.item, `${s.item.id}: ${s.item.description}`],
        [w.method, s.method],
        [w.verdict, w.verdicts[s.verdict]],
      ]
        .map(([k, v]) => `<dt>${escapeHtml(k ?? '')}</dt><dd>${escapeHtml(v ?? '')}</dd>`)
        .join('')}</dl>
<h3>${escapeHtml(w.results)}</h3><div class="wrap"><table><thead><tr>${w.table.map((h) => `<th scope="col">${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${resultRows}</tbody></table></div>${
        s.run === undefined
          ? ''
          : `<h3>${escapeHtml(w.proofs)}</h3><p>${escapeHtml(w.proofsText)} <a href="/api/runs/${encodeURIComponent(s.run)}/disclosure" download>${escapeHtml(w.proofsLink)}</a></p>`
      }`;
    } else details += `<p class="note">${escapeHtml(options.code === undefined ? w.noCode : w.badCode)}</p>`;
    const rows: [string, string][] = [
      [w.rows.id, status.id],
      [w.rows.issued, time(status.issuedAt)],
      ...(status.amends === null ? [] : ([[w.rows.amends, `${status.amends} (${status.amendReason ?? ''})`]] as [string, string][])),
      [w.rows.pdf, status.digests.pdf],
      [w.rows.json, status.jsonFileDigest],
      [w.rows.content, status.digests.json],
      [w.rows.dcc, status.digests.dcc],
      [w.rows.key, status.keyId],
      [w.rows.log, String(status.logIndex)],
    ];
    details += `<dl class="digests">${rows.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl>`;
  }
  const other: PageLanguage = lang === 'en' ? 'zh-CN' : 'en';
  const m = w.messages;
  return `<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(w.title(status.id))}</title><style>${STYLE}</style></head>
<body><a class="lang" href="${query(other)}" hreflang="${other}" lang="${other}">${w.other}</a>
<h1>${escapeHtml(w.heading(lab, status.id))}</h1>
${banner}
${details}
<h2>${escapeHtml(w.check)}</h2>
<p>${escapeHtml(w.checkText)}</p>
<form id="upload"><label for="file">${escapeHtml(w.file)}</label> <input type="file" id="file" accept=".pdf,.json,.xml"> <button type="submit">${escapeHtml(w.button)}</button></form>
<div id="result" role="status" data-choose="${escapeHtml(m.choose)}" data-checking="${escapeHtml(m.checking)}" data-match="${escapeHtml(m.match)}" data-no-match="${escapeHtml(m.noMatch)}" data-failed="${escapeHtml(m.failed)}" data-certificate="${escapeHtml(m.certificate)}"></div>
<script>${SCRIPT}</script>
</body></html>
`;
}
