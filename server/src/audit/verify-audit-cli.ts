// `labtrace verify-audit <file> [--json]`: checks an audit-trail export (GET /api/audit-trail/export) offline.
// Exit status 0: every entry's hash and the chain verify; 1: something does not (the first problem is named);
// 2: the input is unusable (no such file, not an audit-trail export, bad arguments).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { UnusableExport, verifyExport, type VerifyReport } from './audit-export.js';

export const usage = `usage: labtrace verify-audit <file> [--json]
  Checks an export of the audit trail (GET /api/audit-trail/export, JSON Lines or CSV) offline: recomputes
  each entry's hash from its fields and the previous hash, follows the chain from entry to entry, and in a
  JSON Lines file checks the trailer (entry count and last hash), so that a cut file shows. A filtered export
  has gaps between its entries: each entry is still checked by its own hash, and the gaps are listed.
  Compare the last hash with the trail's anchor in the transparency log (the entry's logIndex) to know the
  file is the lab's trail and not a consistent rewrite.
  --json   prints the report as JSON
  Exit status: 0 verified, 1 does not verify, 2 the input is unusable.`;

type Service = { stop(): Promise<void>; done: Promise<number> };
const done = (code: number): Service => ({ stop: () => Promise.resolve(), done: Promise.resolve(code) });

function format(report: VerifyReport): string {
  const range = report.firstId === null ? 'no entries' : `${report.entries} entries, ${report.firstId}..${report.lastId}`;
  const gaps = report.gaps.length === 0 ? '' : `\n  not in this file (filtered): ${report.gaps.join(', ')}`;
  return report.ok
    ? `VERIFIED: ${range}; last hash ${report.lastHash ?? '-'}${gaps}\n`
    : `DOES NOT VERIFY: ${report.failure ?? 'unknown problem'}\n  checked before it: ${range}\n`;
}

export function main(argv: string[]): Promise<Service> {
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: { json: { type: 'boolean' } }, allowPositionals: true, strict: true }));
  } catch (err) {
    process.stderr.write(`labtrace verify-audit: ${(err as Error).message}\n${usage}\n`);
    return Promise.resolve(done(2));
  }
  const file = positionals[0];
  if (file === undefined || positionals.length > 1) {
    process.stderr.write(`labtrace verify-audit: expected one file\n${usage}\n`);
    return Promise.resolve(done(2));
  }
  const unusable = (message: string): Promise<Service> => {
    if (values.json) process.stdout.write(`${JSON.stringify({ ok: false, status: 'unusable', error: message })}\n`);
    else process.stderr.write(`labtrace verify-audit: UNUSABLE INPUT: ${message}\n`);
    return Promise.resolve(done(2));
  };
  let content: string;
  try {
    content = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return unusable(`${file}: ${code === 'ENOENT' ? 'file not found' : (err as Error).message}`);
  }
  let report: VerifyReport;
  try {
    report = verifyExport(content);
  } catch (err) {
    // a file that is not an audit export at all (verifyExport reports a changed or cut one itself)
    if (err instanceof UnusableExport) return unusable(`${file}: ${err.message}`);
    throw err;
  }
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : format(report));
  return Promise.resolve(done(report.ok ? 0 : 1));
}
