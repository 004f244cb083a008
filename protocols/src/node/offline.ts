// What `labtrace verify`, `verify-certificate` and `verify-audit` need on Node: its crypto behind the trust code and
// the progress lines, without the modules a server process needs (logging, metrics), so that a one-off check does
// not pay for loading them.
export { hashingInfo, nodeEd25519Verify, useNodeCrypto, verifyDisclosureInParallel, type HashingInfo } from './crypto.js';
export { formatDuration, Progress, stopOnInterrupt, type ProgressOptions } from './progress.js';
