// `labtrace verify-certificate <file> [--keys <keys.json>] [--json <certificate.json>]`: checks a certificate
// offline. A JSON certificate is checked on its own (canonical form, content digest, the lab's signature); a
// PDF or DCC XML is checked against the signed JSON certificate of the same report (its digest is signed
// there). Exit status 0: valid; 1: it does not verify; 2: unusable input or bad arguments.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fromBase64 } from '@labtrace/protocols';
import { useNodeCrypto } from '@labtrace/protocols/node/offline';
import { formatOf } from './certificates.js';
import { checkSignedJson, publishedKeysSchema, sha256Hex } from './signing.js';

export const usage = `usage: labtrace verify-certificate <file> [--keys <keys.json>] [--json <certificate.json>]
  Checks a certificate (test report) of the lab offline.
  <file>                 the signed JSON certificate, or its PDF or DCC XML
  --keys <keys.json>     the lab's public keys: the JSON of GET /api/public/keys, saved beforehand
  --json <file>          for a PDF or DCC XML: the signed JSON certificate of the same report
  Without --keys the signature cannot be checked and the result is "not verified" (exit 1).
  Exit status: 0 valid, 1 does not verify, 2 unusable input or bad arguments.`;

const done = (code: number): { stop(): Promise<void>; done: Promise<number> } => ({ stop: () => Promise.resolve(), done: Promise.resolve(code) });

function fail(message: string): { stop(): Promise<void>; done: Promise<number> } {
  process.stderr.write(`labtrace verify-certificate: ${message}\n`);
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

export function main(argv: string[]): Promise<{ stop(): Promise<void>; done: Promise<number> }> {
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: { keys: { type: 'string' }, json: { type: 'string' } },
      allowPositionals: true,
      strict: true,
    }));
  } catch (err) {
    return Promise.resolve(fail(`${(err as Error).message}\n${usage}`));
  }
  const target = positionals[0];
  if (target === undefined || positionals.length > 1) return Promise.resolve(fail(`expected one certificate file\n${usage}`));
  let file: Uint8Array;
  let signedJson: Uint8Array;
  let format: 'pdf' | 'json' | 'dcc';
  let keys: { keyId: string; publicKey: Uint8Array }[] | undefined;
  try {
    file = read(target, 'certificate');
    const kind = formatOf(file);
    if (kind === 'unknown') throw new Error(`${target}: not a PDF, JSON or DCC XML certificate`);
    format = kind;
    if (format === 'json') {
      if (values.json !== undefined) return Promise.resolve(fail('--json: only for a PDF or DCC XML; the JSON certificate is the file itself'));
      signedJson = file;
    } else {
      if (values.json === undefined)
        return Promise.resolve(fail(`--json: required to check a ${format.toUpperCase()}: the signed JSON certificate of the same report`));
      signedJson = read(values.json, '--json');
    }
    if (values.keys !== undefined) {
      const text = new TextDecoder().decode(read(values.keys, '--keys'));
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        throw new Error(`--keys ${values.keys}: not JSON (${(err as Error).message})`, { cause: err });
      }
      const result = publishedKeysSchema.safeParse(parsed);
      if (!result.success)
        throw new Error(
          `--keys ${values.keys}: not the lab's keys (GET /api/public/keys): ${result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
        );
      keys = result.data.certificates.map((k) => ({ keyId: k.keyId, publicKey: fromBase64(k.publicKey) }));
    }
  } catch (err) {
    return Promise.resolve(fail((err as Error).message));
  }
  useNodeCrypto();
  const out = (line: string): boolean => process.stdout.write(`${line}\n`);
  const check = checkSignedJson(signedJson, keys ?? []);
  const name = format === 'json' ? 'JSON certificate' : 'signed JSON certificate';
  if (!check.ok) {
    // without keys, a missing key is the only expected failure: say so rather than call the file forged
    if (keys === undefined && check.file !== undefined && /not among the lab's keys/.test(check.problem)) {
      out(`NOT VERIFIED: ${check.file.certificate.id}: the ${name} is consistent, but its signature was not checked (give --keys)`);
      return Promise.resolve(done(1));
    }
    out(`INVALID: ${name}: ${check.problem}`);
    return Promise.resolve(done(1));
  }
  const { certificate, signed } = check.file;
  if (format !== 'json') {
    const expected = format === 'pdf' ? signed.statement.digests.pdf : signed.statement.digests.dcc;
    const actual = sha256Hex(file);
    if (actual !== expected) {
      out(`INVALID: ${target} is not the ${format.toUpperCase()} of report ${certificate.id}: SHA-256 ${actual}, the lab signed ${expected}`);
      return Promise.resolve(done(1));
    }
  }
  out(
    `VALID: report ${certificate.id} issued ${new Date(certificate.issuedAt).toISOString()} by ${certificate.laboratory.name}, signed with key ${signed.statement.keyId}${format === 'json' ? '' : `; the ${format.toUpperCase()} is byte for byte the one signed`}`,
  );
  out(`  Its current status (valid, amended or revoked) is online: ${certificate.verifyUrl}`);
  return Promise.resolve(done(0));
}
