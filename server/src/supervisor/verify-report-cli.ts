// `labtrace supervisor verify-report <report.json> --key <supervisor's public key> [--pdf <report.pdf>]`: checks a
// signed compliance report offline (canonical form, the report's digest, the supervisor's signature) and, given its
// PDF, that the PDF names the SHA-256 of this very JSON. Exit status 0: valid; 1: it does not verify; 2: unusable
// input or bad arguments.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseVerifierKey, type VerifierKey } from '@labtrace/protocols';
import { useNodeCrypto } from '@labtrace/protocols/node';
import { checkSignedReport, sha256Hex } from './compliance-report.js';
import { DIGEST_KEYWORD, pdfReportDigest } from './report-pdf.js';

export const usage = `usage: labtrace supervisor verify-report <report.json> --key <public key> [--key <public key> ...] [--pdf <report.pdf>]
  Checks a signed compliance report of a supervisor offline.
  <report.json>      the signed JSON report (GET /api/labs/<lab>/reports)
  --key <key>        the supervisor's public key, name+keyid+base64 (as 'labtrace supervisor keygen' printed it,
                     or GET /api/key), obtained from the supervisor by a channel you trust; repeat for several
  --pdf <file>       also check that this PDF is printed from this JSON report (it names the JSON's SHA-256)
  Exit status: 0 valid, 1 does not verify, 2 unusable input or bad arguments.`;

type Outcome = { stop(): Promise<void>; done: Promise<number> };
const done = (code: number): Outcome => ({ stop: () => Promise.resolve(), done: Promise.resolve(code) });

function fail(message: string): Outcome {
  process.stderr.write(`labtrace supervisor verify-report: ${message}\n`);
  return done(2);
}

function read(file: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(file));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`${what} ${file}: ${code === 'ENOENT' ? 'file not found' : (err as Error).message}`, { cause: err });
  }
}

export function verifyReport(argv: string[]): Outcome {
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: { key: { type: 'string', multiple: true }, pdf: { type: 'string' } },
      allowPositionals: true,
      strict: true,
    }));
  } catch (err) {
    return fail(`${(err as Error).message}\n${usage}`);
  }
  const target = positionals[0];
  if (target === undefined || positionals.length > 1) return fail(`expected one report file\n${usage}`);
  if (values.key === undefined || values.key.length === 0)
    return fail(`--key: required: the supervisor's public key (without it the signature cannot be checked)\n${usage}`);
  let keys: VerifierKey[];
  let json: Uint8Array;
  let pdf: Uint8Array | undefined;
  try {
    keys = values.key.map((text, i) => {
      try {
        return parseVerifierKey(text.trim());
      } catch (err) {
        throw new Error(`--key[${i}]: not a public key name+keyid+base64 (${(err as Error).message})`, { cause: err });
      }
    });
    json = read(target, 'report');
    pdf = values.pdf === undefined ? undefined : read(values.pdf, '--pdf');
  } catch (err) {
    return fail((err as Error).message);
  }
  useNodeCrypto();
  const out = (line: string): boolean => process.stdout.write(`${line}\n`);
  const check = checkSignedReport(json, keys);
  if (!check.ok) {
    out(`INVALID: ${target}: ${check.problem}`);
    return done(1);
  }
  const { report, signed } = check.file;
  if (pdf !== undefined) {
    const named = pdfReportDigest(pdf);
    const actual = sha256Hex(json);
    if (named === undefined) {
      out(`INVALID: ${values.pdf ?? ''} names no signed JSON report (no ${DIGEST_KEYWORD} in its document info)`);
      return done(1);
    }
    if (named !== actual) {
      out(`INVALID: ${values.pdf ?? ''} is printed from another report: it names SHA-256 ${named}, this JSON is ${actual}`);
      return done(1);
    }
  }
  const findings = report.summary.findings;
  out(
    `VALID: compliance report of lab ${report.lab.id} (${report.lab.name}) for ${report.period.from} to ${report.period.to} (${report.language}): ` +
      `${findings === 0 ? 'no findings' : `${findings} finding${findings === 1 ? '' : 's'}`}, ${report.checks.count} checks run, tier ${report.standing.tier} (score ${report.standing.score}) at the end; ` +
      `signed with the supervisor's key ${signed.statement.keyName}+${signed.statement.keyId}${pdf === undefined ? '' : '; the PDF is printed from this report'}`,
  );
  return done(0);
}
