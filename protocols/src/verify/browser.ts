// What the auditor's browser needs to verify, without the rest of the package (no Node built-ins, no zod): the bundle
// verifier, an export archive's reader, the audit-trail export's check, and the checkpoint and key parsers that show
// what was trusted. The same code `labtrace verify` and `labtrace verify-audit` run.
export {
  verifyBundle,
  exitCodeOf,
  BUNDLE_FORMAT,
  REPORT_FORMAT,
  type BundleFiles,
  type VerifyReport,
  type Problem,
  type ProblemKind,
} from './verifier.js';
export { formatReport } from './cli-format.js';
export { readTar, bundlesOfTar, TarError, type ArchivedBundle, type TarFile } from './tar.js';
export { verifyAuditExport, UnusableAuditExport, type AuditVerifyReport } from './audit-export.js';
export { parseCheckpoint } from '../trust/checkpoint.js';
export { parseNote } from '../trust/note.js';
export { parseVerifierKey } from '../trust/ed25519.js';
export { parseCosignerVerifierKey } from '../trust/cosignature.js';
export { isDisclosureBundle } from './disclosure.js';
export { toHex } from '../trust/bytes.js';
export { verifyBundleWithWebCrypto, type SubtleEd25519 } from './webcrypto.js';
export { useSha256, useSha256Batch } from '../trust/sha256.js';
export { sha256Js, sha256BatchJs } from './sha256-js.js';
