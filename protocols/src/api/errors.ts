// The stable reasons of the refusals a user meets, each with the parameters its message takes. The server's
// English (`error`) is for logs and API users; a client translates `reason` with `params` (and each issue of a
// 400 by its zod `code` and `params`). Every reason here must have a translation in every language of the dashboard.
export const REASONS = [
  /** no valid session or token */
  'auth.sign-in-required',
  /** login refused: unknown user, wrong password, disabled or locked (the client learns no more) */
  'auth.login-refused',
  /** too many login attempts from one address */
  'auth.login-rate-limited',
  /** {role, method, path}: the user's role may not do this */
  'auth.role-forbidden',
  /** {method, path}: an auditor whose grant covers some organizations only */
  'auth.grant-too-narrow',
  /** signed in with a one-time password: change it first */
  'auth.password-change-required',
  /** a cookie session's change without the x-csrf-token header */
  'auth.csrf-missing',
  /** changing one's password: the current password is wrong */
  'auth.wrong-password',
  /** {retryAfter} (seconds): too many requests from this address */
  'request.rate-limited',
  /** the body is not JSON */
  'request.malformed-json',
  /** the body is larger than the server takes */
  'request.too-large',
  /** the input fails its schema: see `issues` */
  'request.invalid',
  /** {method, path}: no such route */
  'request.no-route',
  /** {type, id}: a record (run, sample, method, instrument, certificate, accreditation, user, alarm) that is not known or not visible */
  'record.not-found',
  /** {type, id}: a record with this id exists */
  'record.exists',
  /** {id, state, command}: a run in this state cannot be started, stopped or aborted */
  'run.transition-refused',
  /** {id, blockers}: a run cannot start: an instrument is out of service or its calibration does not allow it */
  'run.cannot-start',
  /** {id, state}: results are computed when a run completes */
  'run.results-not-ready',
  /** {id}: an alarm already cleared */
  'alarm.already-cleared',
  /** {id, by}: an alarm already acknowledged */
  'alarm.already-acknowledged',
  /** {id}: an alarm is acknowledged before it is cleared */
  'alarm.not-acknowledged',
  'alarm.condition-present',
  /** {gateway, keyId}: a gateway key already revoked */
  'key.already-revoked',
  /** {username}: the last active admin cannot lose the role or be disabled */
  'user.last-admin',
  /** {id}: a certificate that is a draft has no files until it is issued */
  'certificate.draft',
  /** {id}: an issued certificate has no draft preview: its own PDF is the report */
  'certificate.issued',
  /** {id}: a draft whose run has no computed results cannot be printed yet */
  'certificate.no-results',
  /** the store cannot write (disk full, I/O error): try again later */
  'store.unavailable',
  /** a node of several that does not serve the API (cluster.roles) was asked for it */
  'node.api-not-served',
  /** an internal error: the answer carries a request id */
  'server.internal',
  /** {expiresAt}: a share link whose time is over */
  'share.expired',
  /** {revokedAt}: a share link the lab revoked */
  'share.revoked',
  /** a share link that is not known (mistyped or never created) */
  'share.not-found',
  /** {maxBytes}: a calibration certificate is attached as a PDF file (application/pdf, starting %PDF-), at most maxBytes */
  'calibration.certificate-not-pdf',
  /** {id}: the calibration record has its certificate already (records are written once) */
  'calibration.certificate-exists',
  /** {instrument, command, allowed}: the instrument's gateway does not send this command to it (its profile does not allow it) */
  'instrument.command-not-taken',
  /** {instrument, gateway}: a command for an instrument whose gateway is not connected now */
  'instrument.gateway-offline',
] as const;
export type Reason = (typeof REASONS)[number];

/** Whether `key` is a reason of the contract. */
export const isReason = (key: string): key is Reason => (REASONS as readonly string[]).includes(key);
