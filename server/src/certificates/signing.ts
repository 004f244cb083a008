// The lab's certificate key and what it signs: a statement binding a certificate's id and issue time to the
// SHA-256 digests of its three renderings (canonical JSON content, PDF, DCC XML). The signed JSON file carries
// the content, the statement and the signature, so that it can be checked offline with the lab's public key.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import {
  canonicalBytes,
  formatSignerKey,
  formatVerifierKey,
  LabtraceError,
  parseSignerKey,
  sha256,
  toBase64,
  toHex,
  type SignerKey,
} from '@labtrace/protocols';
import { certificateSignatureSchema, certificateStatementSchema, type CertificateStatement } from '@labtrace/protocols/api';
import type { Logger } from '../log.js';
import { readSignedJson, signStatement, statementSignatureProblem } from '../signed-json.js';
import { certificateContentSchema, type CertificateContent } from './content.js';

// the statement's schema is the API contract's (GET /api/certificates/:id and the public status answer it)
export { STATEMENT_PURPOSE } from '@labtrace/protocols/api';
export type SignedStatement = CertificateStatement;

/** The JSON certificate file: the content, and the statement the lab signed over its digests. */
export const signedCertificateSchema = z.strictObject({
  certificate: certificateContentSchema,
  signed: z.strictObject({ statement: certificateStatementSchema, signature: certificateSignatureSchema }),
});
export type SignedCertificate = z.output<typeof signedCertificateSchema>;

/** The public half, as published at GET /api/public/keys */
export interface PublishedKey {
  keyId: string;
  name: string;
  algorithm: 'Ed25519';
  /** base64 of the 32-byte public key */
  publicKey: string;
  /** C2SP verifier-key form */
  verifierKey: string;
}

export const publishedKeysSchema = z.object({
  certificates: z.array(
    z.object({
      keyId: z.string().regex(/^[0-9a-f]{8}$/, 'expected 8 hex digits'),
      algorithm: z.literal('Ed25519'),
      publicKey: z.string().min(1),
    }),
  ),
});

export const sha256Hex = (bytes: Uint8Array): string => toHex(sha256(bytes));

/** The canonical JSON bytes of a content: what the statement's json digest is over. */
export const contentBytes = (content: CertificateContent): Uint8Array => canonicalBytes(content);

/**
 * The lab's certificate key: read from its file, or created there at the first start (mode 0600), as the
 * transparency log key is.
 */
export function certificateKey(file: string, name: string, logger: Logger): SignerKey {
  if (!existsSync(file)) {
    const seed = new Uint8Array(randomBytes(32));
    writeFileSync(file, `${formatSignerKey(name, seed)}\n`, { mode: 0o600, flag: 'wx' });
    seed.fill(0);
    logger.info({ file }, 'created the certificate signing key');
  }
  if ((statSync(file).mode & 0o077) !== 0)
    throw new LabtraceError('E_CONFIG', `certificates.keyFile: ${file} lets others read the private key; chmod 600 it`);
  try {
    return parseSignerKey(readFileSync(file, 'utf8').trim());
  } catch (err) {
    throw new LabtraceError('E_CONFIG', `certificates.keyFile: ${file}: not a signer key (${(err as Error).message})`, { cause: err });
  }
}

export function publishedKey(key: SignerKey): PublishedKey {
  return {
    keyId: toHex(key.keyId),
    name: key.name,
    algorithm: 'Ed25519',
    publicKey: toBase64(key.publicKey),
    verifierKey: formatVerifierKey(key.name, key.publicKey),
  };
}

/** Signs the statement (its canonical JSON) and returns the signed JSON file's bytes. */
export function signCertificate(key: SignerKey, content: CertificateContent, statement: SignedStatement): { bytes: Uint8Array; signature: string } {
  const signature = signStatement(key, statement);
  return { bytes: canonicalBytes({ certificate: content, signed: { statement, signature } }), signature };
}

export type JsonCheck = { ok: true; file: SignedCertificate } | { ok: false; problem: string; file?: SignedCertificate | undefined };

/**
 * Checks a JSON certificate file on its own: well-formed, in canonical form (so that no byte can change
 * unnoticed), its content matching the signed digest, and the signature valid under one of the keys.
 */
export function checkSignedJson(bytes: Uint8Array, keys: readonly { keyId: string; publicKey: Uint8Array }[]): JsonCheck {
  const read = readSignedJson(bytes, signedCertificateSchema, 'a labtrace certificate');
  if (!read.ok) return read;
  const file = read.file;
  const { statement, signature } = file.signed;
  if (statement.certificate !== file.certificate.id)
    return { ok: false, problem: `the statement is for ${statement.certificate}, the content is ${file.certificate.id}`, file };
  if (sha256Hex(contentBytes(file.certificate)) !== statement.digests.json)
    return { ok: false, problem: 'the content does not match the signed digest: it was changed', file };
  const key = keys.find((k) => k.keyId === statement.keyId);
  if (key === undefined) return { ok: false, problem: `signed by key ${statement.keyId}, which is not among the lab's keys`, file };
  const problem = statementSignatureProblem(statement, signature, key.publicKey, 'the lab key');
  return problem === undefined ? { ok: true, file } : { ok: false, problem, file };
}
