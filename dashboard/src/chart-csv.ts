// A chart's data as CSV (RFC 4180: comma-separated, CRLF line ends, fields quoted when they hold a comma, a quote
// or a line break), saved through a download link: what the user sees, in a form a spreadsheet opens.

/** one CSV field, quoted when it must be */
export function csvField(value: string | number | boolean | null | undefined): string {
  const text = value === null || value === undefined ? '' : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** the rows as CSV text, with a byte order mark so that a spreadsheet reads the Chinese headers as UTF-8 */
export function toCsv(header: readonly string[], rows: readonly (readonly (string | number | boolean | null | undefined)[])[]): string {
  return `\uFEFF${[header, ...rows].map((r) => r.map(csvField).join(',')).join('\r\n')}\r\n`;
}

/** Offers the text as a file download. */
export function downloadText(filename: string, text: string, type = 'text/csv;charset=utf-8'): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  // the download has its own copy once started
  window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
