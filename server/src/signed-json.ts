// A signed JSON file, as a certificate (certificates/signing.ts) and a supervisor's compliance report
// (supervisor/compliance-report.ts) are written: the canonical JSON (RFC 8785) of the content and
// `signed: {statement, signature}`, where the statement names the content's digest and the key, and the signature is
// Ed25519 over the statement's own canonical JSON. Read on its own, such a file must be UTF-8, JSON, of its schema and
// in canonical form, so that no byte of it can change unnoticed; then its statement's signature is checked.
import { bytesEqual, canonicalBytes, fromBase64, signEd25519, toBase64, verifyEd25519, type SignerKey } from '@labtrace/protocols';
import type { z } from 'zod';

export type SignedJsonRead<T> = { ok: true; parsed: unknown; file: T } | { ok: false; problem: string; file?: T | undefined };

/**
 * The file read and held to its schema and to its canonical form. `what` names the kind in a problem ("a labtrace
 * certificate"); `maxIssues`: how many of the schema's issues a problem lists.
 */
export function readSignedJson<S extends z.ZodType>(bytes: Uint8Array, schema: S, what: string, maxIssues = Infinity): SignedJsonRead<z.output<S>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    return { ok: false, problem: `not JSON: ${(err as Error).message}` };
  }
  const result = schema.safeParse(parsed);
  if (!result.success)
    return {
      ok: false,
      problem: `not ${what}: ${result.error.issues
        .slice(0, maxIssues)
        .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
        .join('; ')}`,
    };
  const file = result.data;
  let canonical: Uint8Array;
  try {
    canonical = canonicalBytes(parsed);
  } catch (err) {
    // text JSON.parse reads but canonical JSON refuses (a lone surrogate): nothing could have signed it
    return { ok: false, problem: `not canonical JSON: ${(err as Error).message}`, file };
  }
  if (!bytesEqual(canonical, bytes)) return { ok: false, problem: 'the file is not in its canonical form: it was edited', file };
  return { ok: true, parsed, file };
}

/** The statement's signature: Ed25519 over its canonical JSON, base64. */
export function signStatement(key: SignerKey, statement: object): string {
  return toBase64(signEd25519(canonicalBytes(statement), key.seed));
}

/** Whether `signature` (base64) is the key's over the statement's canonical JSON: undefined when it is, else the problem. */
export function statementSignatureProblem(statement: object, signature: string, publicKey: Uint8Array, whose: string): string | undefined {
  let sig: Uint8Array;
  try {
    sig = fromBase64(signature);
  } catch {
    return 'the signature is not base64';
  }
  return verifyEd25519(sig, canonicalBytes(statement), publicKey) ? undefined : `the signature does not verify with ${whose}`;
}
