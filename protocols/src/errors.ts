// Coded errors shared by every labtrace package. The code is stable; the message is for humans.
export type LabtraceErrorCode =
  | 'E_CONFIG'
  | 'E_CONFIG_READ'
  | 'E_PROFILE'
  | 'E_PORT_IN_USE'
  | 'E_CODEC'
  | 'E_PAYLOAD'
  | 'E_MODBUS_TIMEOUT'
  | 'E_MODBUS_EXCEPTION'
  | 'E_MODBUS_CONNECT'
  | 'E_MODBUS_REPLY'
  | 'E_MODBUS_QUEUE_FULL'
  | 'E_NOT_FOUND'
  | 'E_BAD_REQUEST'
  | 'E_AUTH'
  | 'E_FORBIDDEN'
  | 'E_CONFLICT'
  /** a job's write refused because its node no longer holds the job's lease (another node took it over) */
  | 'E_LEASE_LOST'
  | 'E_STORE'
  /** the store cannot write (disk full, I/O error, file size limit) or keeps its free-space reserve: try again later */
  | 'E_STORE_UNAVAILABLE'
  | 'E_RATE_LIMITED'
  | 'E_INFLUX_UNAVAILABLE'
  | 'E_INFLUX_QUERY'
  /** a witness (C2SP tlog-witness) cannot be reached or did not answer in time */
  | 'E_WITNESS_UNAVAILABLE'
  /** the lab's supervisor (supervision:) cannot be reached, or refused the lab's standing token */
  | 'E_SUPERVISOR_UNAVAILABLE'
  /** a record that existed and is no longer available (a share link revoked or expired): 410 */
  | 'E_GONE'
  /** an NTP server's reply refused (not a server's answer to our request, unsynchronised, a kiss-o'-death) */
  | 'E_NTP_REPLY'
  /** an NTP server cannot be reached or did not answer in time */
  | 'E_NTP_UNAVAILABLE';

/** the parameters of a refusal's reason, as a client fills them into its translation */
export type ReasonParams = Record<string, string | number | boolean>;

export class LabtraceError extends Error {
  readonly code: LabtraceErrorCode;
  readonly details: unknown;
  /**
   * a finer, stable reason a user meets (`run.transition-refused`) with its parameters, listed in the API
   * contract's REASONS: the API answers them as `reason` and `params` for a client to translate
   */
  readonly refusal: { reason: string; params?: ReasonParams } | undefined;

  constructor(
    code: LabtraceErrorCode,
    message: string,
    options: { cause?: unknown; details?: unknown; reason?: string; params?: ReasonParams } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LabtraceError';
    this.code = code;
    this.details = options.details;
    this.refusal =
      options.reason === undefined ? undefined : { reason: options.reason, ...(options.params === undefined ? {} : { params: options.params }) };
  }
}

export function isLabtraceError(err: unknown): err is LabtraceError {
  return err instanceof LabtraceError;
}
