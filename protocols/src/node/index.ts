// What the package gives Node processes: Node's crypto behind the trust code (crypto.ts), the signatures of a
// disclosure bundle checked on worker threads, process logging, progress lines and the metrics endpoint.
// `@labtrace/protocols/node/offline` is the part of it the offline verifiers load (no logging, no metrics).
export { hashingInfo, loadNativeHash, nodeEd25519Verify, useNodeCrypto, verifyDisclosureInParallel, type HashingInfo } from './crypto.js';
export { withParallelEd25519, PARALLEL_THRESHOLD, type ParallelOptions } from './parallel-ed25519.js';
export { createProcessLogger, logSettings, LOG_FORMATS, type LogFormat, type ProcessLoggerOptions } from './logging.js';
export { formatDuration, Progress, stopOnInterrupt, type ProgressOptions } from './progress.js';
export {
  MetricsEndpoint,
  METRICS_PATH,
  notFound,
  pathOf,
  setOrAbsent,
  type MetricsEndpointOptions,
  type MetricsSource,
  type ResettableGauge,
} from './metrics-endpoint.js';
export { querySntp, type SntpSample, type SntpQueryOptions } from './sntp-client.js';
export { NtpClock, type NtpChange, type NtpClockEvents, type NtpClockOptions, type NtpStatus } from './ntp-clock.js';
