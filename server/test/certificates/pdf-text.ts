// What poppler and qpdf say of a PDF, each run as a child process on a temporary copy: the text per page
// (pdftotext -layout keeps each printed line on one line), the rows of the results table, the fonts
// (pdffonts), the attachments (pdfdetach) and the structural check (qpdf --check).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

function withFile<T>(pdf: Uint8Array, use: (file: string, dir: string) => T): T {
  const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-pdf-'));
  try {
    const file = path.join(dir, 'report.pdf');
    writeFileSync(file, pdf);
    return use(file, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function pdfText(pdf: Uint8Array): string[] {
  return withFile(pdf, (file) =>
    execFileSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8' })
      .split('\f')
      .filter((p) => p.trim() !== ''),
  );
}

/**
 * The cells of the results table's row of each result, by its name: the printed line that starts with the
 * name, split where the layout leaves two or more spaces (quantity, value, U, k, unit, limits, verdict).
 */
export function resultRows(pages: string[], names: string[]): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  const lines = pages.flatMap((p) => p.split('\n')).map((l) => l.trim());
  for (const name of names) {
    const line = lines.find((l) => l.startsWith(`${name} `) && l.split(/\s{2,}/).length >= 7);
    if (line !== undefined) rows.set(name, line.split(/\s{2,}/));
  }
  return rows;
}

export interface PdfFont {
  name: string;
  type: string;
  embedded: boolean;
  subset: boolean;
  unicode: boolean;
}

/** The fonts of a PDF as pdffonts lists them. */
export function pdfFonts(pdf: Uint8Array): PdfFont[] {
  return withFile(pdf, (file) =>
    execFileSync('pdffonts', [file], { encoding: 'utf8' })
      .split('\n')
      .slice(2)
      .filter((l) => l.trim() !== '')
      .map((l) => {
        const m = /^(\S+)\s+(.+?)\s+(\S+)\s+(yes|no)\s+(yes|no)\s+(yes|no)\s+\d+\s+\d+\s*$/.exec(l);
        if (!m) throw new Error(`pdffonts line not understood: ${l}`);
        return { name: m[1] ?? '', type: m[2] ?? '', embedded: m[4] === 'yes', subset: m[5] === 'yes', unicode: m[6] === 'yes' };
      }),
  );
}

/** The embedded files of a PDF, by name, with their bytes (pdfdetach -saveall). */
export function pdfAttachments(pdf: Uint8Array): Map<string, Uint8Array> {
  return withFile(pdf, (file, dir) => {
    const list = execFileSync('pdfdetach', ['-list', file], { encoding: 'utf8' })
      .split('\n')
      .slice(1)
      .map((l) => /^\d+: (.+)$/.exec(l.trim())?.[1])
      .filter((n): n is string => n !== undefined);
    const out = new Map<string, Uint8Array>();
    list.forEach((name, i) => {
      const target = path.join(dir, `attachment-${i + 1}`);
      execFileSync('pdfdetach', ['-save', String(i + 1), '-o', target, file]);
      out.set(name, new Uint8Array(readFileSync(target)));
    });
    return out;
  });
}

/** qpdf --check: its exit code (0 when the structure is sound, 3 with warnings, 2 with errors) and output. */
export function qpdfCheck(pdf: Uint8Array): { code: number | null; output: string } {
  return withFile(pdf, (file) => {
    const r = spawnSync('qpdf', ['--check', file], { encoding: 'utf8' });
    return { code: r.status, output: `${r.stdout}${r.stderr}` };
  });
}

/** The raw PDF text, for looking at its objects (the catalog, the XMP metadata); streams stay compressed. */
export const pdfSource = (pdf: Uint8Array): string => Buffer.from(pdf).toString('latin1');
