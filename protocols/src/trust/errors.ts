// Errors of the trust primitives. The LabtraceError code says what the caller should do (E_CODEC: the input is
// unusable, E_AUTH: the input is well formed but does not verify); `reason` says precisely what went wrong.
import { LabtraceError } from '../errors.js';

export type TrustReason =
  | 'bad-hex'
  | 'bad-base64'
  | 'bad-length'
  | 'bad-text'
  | 'bad-size'
  | 'not-json'
  | 'bad-key'
  | 'bad-note'
  | 'bad-checkpoint'
  | 'missing-hash'
  | 'proof-length'
  | 'root-mismatch'
  | 'signature-invalid'
  | 'no-known-signature'
  | 'origin-mismatch';

const UNUSABLE: ReadonlySet<TrustReason> = new Set<TrustReason>([
  'bad-hex',
  'bad-base64',
  'bad-length',
  'bad-text',
  'bad-size',
  'not-json',
  'bad-key',
  'bad-note',
  'bad-checkpoint',
  'missing-hash',
]);

export class TrustError extends LabtraceError {
  readonly reason: TrustReason;

  constructor(reason: TrustReason, message: string, details: Record<string, unknown> = {}) {
    super(UNUSABLE.has(reason) ? 'E_CODEC' : 'E_AUTH', message, { details: { reason, ...details } });
    this.name = 'TrustError';
    this.reason = reason;
  }
}

export function isTrustError(err: unknown): err is TrustError {
  return err instanceof TrustError;
}
