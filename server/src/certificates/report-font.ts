// The font of the printed reports: one CJK font that also covers Latin, embedded (subset) in every PDF, since
// PDF/A allows no font that is not embedded and Chinese text needs CJK glyphs. Where it comes from, first found:
//   1. the config (`certificates.font`: a TTF/OTF file, or a TTC file with the face's PostScript name);
//   2. the npm package @expo-google-fonts/noto-sans-sc (Noto Sans SC 400 and 700 as TTF, SIL OFL 1.1), a
//      dependency of the server, so that `npm ci` is enough and every machine renders the same bytes;
//   3. Debian's fonts-noto-cjk (/usr/share/fonts/opentype/noto/NotoSansCJK-{Regular,Bold}.ttc, the SC face).
// pdfkit subsets through fontkit; WOFF/WOFF2 are refused here (slow or broken in pdfkit with CJK fonts).
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as fontkit from 'fontkit';
import { LabtraceError } from '@labtrace/protocols';

export interface FontRef {
  /** a TTF, OTF or TTC file */
  file: string;
  /** the PostScript name of the face in a TTC (e.g. NotoSansCJKsc-Regular) */
  face?: string | undefined;
}

export interface ReportFontConfig {
  regular: FontRef;
  bold?: FontRef | undefined;
}

export interface ReportFont {
  /** where the font was found: config, npm or debian */
  source: 'config' | 'npm' | 'debian';
  regular: LoadedFace;
  bold: LoadedFace;
}

export interface LoadedFace {
  file: string;
  face: string | undefined;
  /** the face, parsed once and given to every document (pdfkit takes a fontkit font; parsing 10 MB per report would cost more than the rest of it) */
  font: fontkit.Font;
  postscriptName: string;
}

const NPM_PACKAGE = '@expo-google-fonts/noto-sans-sc';
export const DEBIAN_FONT_DIR = '/usr/share/fonts/opentype/noto';
/** characters a report's headings need; a font without them cannot print a Chinese report */
const PROBE = '检测报告结果Results±≤≥µ²';

/** The candidates, in the order they are tried. */
export function fontCandidates(config: ReportFontConfig | undefined): { source: ReportFont['source']; regular: FontRef; bold: FontRef }[] {
  const out: { source: ReportFont['source']; regular: FontRef; bold: FontRef }[] = [];
  if (config !== undefined) out.push({ source: 'config', regular: config.regular, bold: config.bold ?? config.regular });
  try {
    const dir = path.dirname(createRequire(import.meta.url).resolve(`${NPM_PACKAGE}/package.json`));
    out.push({
      source: 'npm',
      regular: { file: path.join(dir, '400Regular', 'NotoSansSC_400Regular.ttf') },
      bold: { file: path.join(dir, '700Bold', 'NotoSansSC_700Bold.ttf') },
    });
  } catch {
    // not installed (a production install without it): the next candidate
  }
  out.push({
    source: 'debian',
    regular: { file: path.join(DEBIAN_FONT_DIR, 'NotoSansCJK-Regular.ttc'), face: 'NotoSansCJKsc-Regular' },
    bold: { file: path.join(DEBIAN_FONT_DIR, 'NotoSansCJK-Bold.ttc'), face: 'NotoSansCJKsc-Bold' },
  });
  return out;
}

/** Reads and checks one face: a TTF/OTF, or the named face of a TTC, with glyphs for Chinese and Latin. */
export function loadFace(ref: FontRef): LoadedFace {
  if (!existsSync(ref.file)) throw new LabtraceError('E_CONFIG', `report font ${ref.file}: no such file`);
  const bytes = readFileSync(ref.file);
  const magic = bytes.subarray(0, 4).toString('latin1');
  if (magic === 'wOFF' || magic === 'wOF2')
    throw new LabtraceError('E_CONFIG', `report font ${ref.file}: WOFF/WOFF2 is not supported for reports; give a TTF, OTF or TTC file`);
  let parsed: fontkit.Font | fontkit.FontCollection;
  try {
    parsed = fontkit.create(bytes);
  } catch (e) {
    throw new LabtraceError('E_CONFIG', `report font ${ref.file}: not a font (${(e as Error).message})`);
  }
  let font: fontkit.Font | null;
  if ('fonts' in parsed) {
    if (ref.face === undefined)
      throw new LabtraceError(
        'E_CONFIG',
        `report font ${ref.file} is a collection: name the face (one of ${parsed.fonts.map((f) => f.postscriptName).join(', ')})`,
      );
    font = parsed.getFont(ref.face);
    if (font === null)
      throw new LabtraceError(
        'E_CONFIG',
        `report font ${ref.file} has no face "${ref.face}" (it has ${parsed.fonts.map((f) => f.postscriptName).join(', ')})`,
      );
  } else font = parsed;
  const missing = [...PROBE].filter((ch) => !font.hasGlyphForCodePoint(ch.codePointAt(0) ?? 0));
  if (missing.length > 0) throw new LabtraceError('E_CONFIG', `report font ${ref.file}: no glyph for ${missing.join(' ')} (a CJK font is needed)`);
  return { file: ref.file, face: 'fonts' in parsed ? ref.face : undefined, font, postscriptName: font.postscriptName };
}

/**
 * The first usable font; a configured font that fails is an error (the lab asked for it), a missing default
 * is skipped. Undefined when none is found: reports are then refused with the reason.
 */
export function findReportFont(config: ReportFontConfig | undefined): { font: ReportFont | undefined; tried: string[] } {
  const tried: string[] = [];
  for (const c of fontCandidates(config)) {
    if (c.source !== 'config' && !existsSync(c.regular.file)) {
      tried.push(`${c.source}: ${c.regular.file} (absent)`);
      continue;
    }
    const regular = loadFace(c.regular);
    const bold = existsSync(c.bold.file) || c.source === 'config' ? loadFace(c.bold) : regular;
    return { font: { source: c.source, regular, bold }, tried };
  }
  return { font: undefined, tried };
}
