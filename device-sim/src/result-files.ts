// An instrument PC writing result files (CSV, one per test) into a folder, as universal testing machine software
// does: at a configurable rate and number of rows; on demand a half-written file (written slowly, in pieces) or a
// malformed one. The values are a function of the file's number and the row (exact in binary and in decimal),
// so a test can tell what the gateway must have read.
import { createHash } from 'node:crypto';
import { mkdir, open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { LabtraceError } from '@labtrace/protocols';

export const RESULT_FILE_KINDS = ['good', 'half-written', 'malformed'] as const;
export type ResultFileKind = (typeof RESULT_FILE_KINDS)[number];

export interface ResultRow {
  /** ms since the epoch */
  ts: number;
  /** kN */
  force: number;
  /** mm */
  elongation: number;
}

/** The rows of result file number `index` written at `base` (ms, whole seconds): 100 ms apart. */
export function resultRows(index: number, rows: number, base: number): ResultRow[] {
  return Array.from({ length: rows }, (_, r) => ({ ts: base + r * 100, force: 10 + index + r / 8, elongation: (index * rows + r) / 4 }));
}

/** Wall-clock fields of a moment in a zone: yyyy, MM, dd, HH, mm, ss. */
function wallFields(at: number, zone: string): string[] {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone: zone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(new Date(at));
  return ['year', 'month', 'day', 'hour', 'minute', 'second'].map((t) => parts.find((p) => p.type === t)?.value ?? '00');
}

export interface CsvStyle {
  /** ";" and decimal commas, as a German locale writes */
  decimalComma: boolean;
  /** the zone the times are written in (wall clock, format dd.MM.yyyy HH:mm:ss.SSS) */
  zone: string;
}

/** A result file's text: a title line, a header, one line per row. */
export function resultCsv(rows: readonly ResultRow[], style: CsvStyle): string {
  const sep = style.decimalComma ? ';' : ',';
  const num = (n: number): string => (style.decimalComma ? String(n).replace('.', ',') : String(n));
  const lines = ['Tensile test report', ['Time', 'Force [kN]', 'Elongation [mm]'].join(sep)];
  for (const row of rows) {
    const [y, mo, d, h, mi, s] = wallFields(row.ts, style.zone);
    const time = `${d}.${mo}.${y} ${h}:${mi}:${s}.${String(row.ts % 1000).padStart(3, '0')}`;
    lines.push([time, num(row.force), num(row.elongation)].join(sep));
  }
  return `${lines.join('\r\n')}\r\n`;
}

export interface DropperOptions {
  folder: string;
  /** files to write (then the dropper is done) */
  count: number;
  rows: number;
  /** files per second */
  rate: number;
  kind: ResultFileKind;
  /** half-written: how long the writing takes, in 4 pieces */
  writeMs: number;
  style: CsvStyle;
  /** the first file's number (names and values) */
  first: number;
  /** told of each file once it is complete */
  onFile?: (file: WrittenFile) => void;
}

export interface WrittenFile {
  name: string;
  index: number;
  kind: ResultFileKind;
  rows: number;
  base: number;
  sha256: string;
}

export class FileDropper {
  private stopped = false;
  private wake: (() => void) | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(private readonly options: DropperOptions) {
    if (!(options.rate > 0)) throw new LabtraceError('E_CONFIG', '--rate: expected files per second above 0');
    if (!Number.isInteger(options.rows) || options.rows < 1)
      throw new LabtraceError('E_CONFIG', '--rows: expected a whole number of rows, 1 or more');
  }

  /** Starts writing; `done` resolves when the last file is complete (or the dropper was stopped). */
  async start(): Promise<void> {
    await mkdir(this.options.folder, { recursive: true });
    this.running = this.run();
  }

  get done(): Promise<void> {
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    const o = this.options;
    const every = 1000 / o.rate;
    const started = Date.now();
    for (let i = 0; i < o.count && !this.stopped; i++) {
      const index = o.first + i;
      const base = Math.floor(Date.now() / 1000) * 1000;
      const name = `${o.kind === 'good' ? 'test' : o.kind}-${String(index).padStart(5, '0')}.csv`;
      let text = resultCsv(resultRows(index, o.rows, base), o.style);
      if (o.kind === 'malformed') text = text.replace(/\r\n([^\r\n]*)\r\n$/, '\r\n$1\r\nnot a number here\r\n');
      const bytes = Buffer.from(text, 'utf8');
      const target = path.join(o.folder, name);
      if (o.kind === 'half-written') await this.writeSlowly(target, bytes);
      else await writeFile(target, bytes);
      o.onFile?.({ name, index, kind: o.kind, rows: o.rows, base, sha256: createHash('sha256').update(bytes).digest('hex') });
      const next = started + (i + 1) * every - Date.now();
      if (next > 0 && i + 1 < o.count) await this.sleep(next);
    }
  }

  /** Writes a file in 4 pieces over writeMs, each on disk before the pause: a reader sees it grow. */
  private async writeSlowly(target: string, bytes: Buffer): Promise<void> {
    const handle = await open(target, 'w');
    try {
      const piece = Math.ceil(bytes.length / 4);
      for (let at = 0; at < bytes.length; at += piece) {
        await handle.write(bytes, at, Math.min(piece, bytes.length - at), at);
        await handle.sync();
        if (at + piece < bytes.length) await this.sleep(this.options.writeMs / 3);
      }
    } finally {
      await handle.close();
    }
  }
}
