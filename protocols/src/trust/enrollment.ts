// What a gateway signs to enroll and to rotate its key: canonical JSON (RFC 8785), so the server
// checks exactly the bytes the gateway signed.
import { canonicalBytes } from './jcs.js';

/** Enrollment: signed by the key being enrolled, which proves the gateway holds its private key. */
export function enrollmentProofBytes(request: { gateway: string; key: string; token: string }): Uint8Array {
  return canonicalBytes({ purpose: 'labtrace-enroll', gateway: request.gateway, key: request.key, token: request.token });
}

/** A key rotation: names the new key; signed by the old key (authority) and by the new one (possession). */
export interface RotationStatement {
  v: 1;
  purpose: 'labtrace-key-rotation';
  gateway: string;
  /** hex key id of the key being replaced */
  oldKeyId: string;
  /** the new key, verifier-key form name+keyid+base64 */
  newKey: string;
  /** when the gateway made the statement, ms since the epoch */
  at: number;
}

export function rotationBytes(statement: RotationStatement): Uint8Array {
  return canonicalBytes(statement);
}
