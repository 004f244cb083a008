// GENERATED from a freshly migrated store by store/tables-schema.ts: do not edit. After adding a migration, run
// `npm run tables -w @labtrace/server`; server/test/store/tables.test.ts regenerates this file from a new SQLite store
// and from a new PostgreSQL 15 store and fails if either differs from it.
//
// The same types on both engines:
// - SQLite INTEGER and PostgreSQL BIGINT (64 bits; times in ms, sequence numbers, indexes): number. better-sqlite3
//   reads them as numbers; on PostgreSQL openStore (store/dialect.ts) reads int8 as a number and refuses a value
//   beyond 2^53 rather than round it. SQLite REAL and PostgreSQL DOUBLE PRECISION: number. TEXT: string.
// - BLOB and BYTEA: `Bytes`, read as a Node Buffer (both drivers), written from any Uint8Array.
// - Nullable as the column is declared; a key column is never null (PostgreSQL refuses one; SQLite would take one, labtrace never writes one).
// - Generated<>: an insert may leave the column out (a DEFAULT; SQLite's INTEGER PRIMARY KEY row id, which is a
//   BIGINT identity column on PostgreSQL). GeneratedAlways<>: computed by the engine, never written.
// - Views (measurements, the readable form of the per-sample index) are not tables and are not here.

import type { ColumnType, Generated, GeneratedAlways } from 'kysely';

/** Bytes: read as a Buffer, written from any Uint8Array. */
export type Bytes = ColumnType<Buffer, Uint8Array, Uint8Array>;

export interface Tables {
  accreditation_events: {
    id: Generated<number>;
    accreditation: string;
    kind: string;
    at: number;
    reason: string;
    recorded_by: string;
  };
  accreditation_scopes: {
    accreditation: string;
    version: number;
    effective_from: number;
    entries: string;
    reason: string | null;
    recorded_by: string;
    recorded_at: number;
  };
  accreditations: {
    id: string;
    body: string;
    number: string;
    standard: string;
    valid_from: number;
    valid_to: number;
    recorded_by: string;
    recorded_at: number;
  };
  audit_trail: {
    id: Generated<number>;
    at: number;
    actor: string;
    actor_role: string;
    action: string;
    record_type: string;
    record_id: string;
    old_value: string | null;
    new_value: string | null;
    reason: string | null;
    prev_hash: string;
    hash: string;
    log_index: number | null;
  };
  batch_headers: {
    gateway: string;
    batch: number;
    first_seq: number;
    count: number;
    header: string;
    signature: string;
    received_at: number;
    hash: string | null;
    records: Bytes | null;
    indexed: Generated<number>;
    log_index: number | null;
    leaves: Bytes | null;
    records_removed_at: number | null;
    index_removed_at: number | null;
  };
  calibration_attachments: {
    calibration: Generated<number>;
    instrument: string;
    filename: string;
    content_type: string;
    size: number;
    sha256: string;
    data: Bytes;
    uploaded_by: string;
    uploaded_at: number;
  };
  calibrations: {
    id: Generated<number>;
    instrument: string;
    calibrated_at: number;
    laboratory: string;
    certificate: string;
    results: string;
    uncertainty: string;
    adjustments: string | null;
    acceptance: string | null;
    next_due_at: number;
    reason: string | null;
    recorded_by: string;
    recorded_at: number;
  };
  certificate_events: {
    id: Generated<number>;
    certificate: string;
    kind: string;
    at: number;
    actor: string;
    reason: string | null;
    log_index: number;
  };
  certificate_requests: {
    id: string;
    run: string;
    organization: string;
    amends: string | null;
    reason: string | null;
    requested_by: string;
    requested_at: number;
    language: string | null;
    seq: number | null;
  };
  certificates: {
    id: string;
    run: string;
    organization: string;
    amends: string | null;
    issued_by: string;
    issued_at: number;
    content: Bytes;
    json: Bytes;
    pdf: Bytes;
    dcc: Bytes;
    statement: string;
    signature: string;
    key_id: string;
    json_file_digest: string;
    log_index: number;
  };
  clock_skew_batches: {
    gateway: string;
    batch: number;
    first_seq: number;
    last_seq: number;
    earliest: number;
    latest: number;
  };
  cluster_leases: {
    name: string;
    holder: string;
    epoch: number;
    acquired_at: number;
  };
  enrollment_tokens: {
    token_hash: string;
    gateway: string;
    created_at: number;
    expires_at: number;
    used_at: number | null;
    id: number | null;
  };
  gateway_chain: {
    gateway: string;
    next_batch: number;
    next_seq: number;
    last_header_hash: string;
  };
  gateway_credentials: {
    gateway: string;
    username: string;
    password_hash: string;
    created_at: number;
  };
  gateway_ids: {
    id: Generated<number>;
    name: string;
  };
  gateway_keys: {
    gateway: string;
    key_id: string;
    verifier_key: string;
    status: string;
    registered_at: number;
    valid_until: number | null;
    reason: string | null;
    replaced_by: string | null;
    grace_from_batch: number | null;
    last_valid_batch: number | null;
  };
  gateways: {
    id: string;
    lab: string;
    version: string | null;
    session: number | null;
    first_seen: number;
    last_seen: number;
  };
  influx_cursor: {
    target: string;
    last_rowid: number;
    updated_at: number;
  };
  influx_failures: {
    id: Generated<number>;
    target: string;
    batch_rowid: number;
    gateway: string;
    batch: number;
    samples: number;
    status: number | null;
    error: string;
    at: number;
  };
  influx_log_cursor: {
    target: string;
    last_log_index: number;
    updated_at: number;
  };
  instrument_checks: {
    id: Generated<number>;
    instrument: string;
    checked_at: number;
    result: string;
    description: string;
    recorded_by: string;
    recorded_at: number;
  };
  instrument_health: {
    id: Generated<number>;
    instrument: string;
    at: number;
    connected: number;
    polls: number;
    errors: string;
    latency_p50: number | null;
    latency_p99: number | null;
  };
  instrument_status: {
    id: Generated<number>;
    instrument: string;
    status: string;
    reason: string;
    actor: string;
    at: number;
  };
  instruments: {
    id: string;
    gateway: string;
    identity: string;
    channels: string;
    updated_at: number;
    protocol: string | null;
    commands: string | null;
    position: number | null;
  };
  job_positions: {
    name: string;
    position: number;
    epoch: number;
  };
  key_events: {
    id: Generated<number>;
    at: number;
    gateway: string;
    record: string;
    log_index: number | null;
  };
  lab_samples: {
    id: string;
    organization: string;
    description: string;
    condition: string;
    received_at: number;
    created_by: string;
    created_at: number;
    position: number | null;
  };
  log_checkpoints: {
    size: Generated<number>;
    note: string;
    at: number;
  };
  log_cosignatures: {
    size: number;
    witness: string;
    key_id: string;
    line: string;
    witness_time: number;
    received_at: number;
  };
  log_entries: {
    idx: Generated<number>;
    kind: string;
    data: Bytes;
    leaf: Bytes;
    at: number;
  };
  log_hashes: {
    level: number;
    idx: number;
    hash: Bytes;
  };
  methods: {
    id: string;
    version: number;
    standard: string;
    title: string;
    definition: string;
    created_by: string;
    created_at: number;
    position: number | null;
  };
  notification_outbox: {
    id: Generated<number>;
    event_key: string;
    kind: string;
    recipient: string;
    channel: string;
    target: string;
    message: string;
    status: string;
    attempts: number;
    next_at: number;
    created_at: number;
    sent_at: number | null;
    last_error: string | null;
  };
  notification_settings: {
    username: string;
    email: string | null;
    updated_at: number;
  };
  notification_subscriptions: {
    username: string;
    kind: string;
    email: number;
    webhooks: string;
  };
  notification_webhooks: {
    id: string;
    name: string;
    owner: string;
    url: string;
    preset: string;
    format: string;
    secret: string | null;
    enabled: number;
    created_by: string;
    created_at: number;
  };
  organizations: {
    id: string;
    name: string;
    created_at: number;
    contact: string | null;
  };
  raw_files: {
    sha256: string;
    gateway: string;
    instrument: string;
    name: string;
    size: number;
    taken_at: number;
    received_at: number;
    data: Bytes;
  };
  run_alarms: {
    id: Generated<number>;
    run: string;
    alarm: string;
    event: string;
    at: number;
    rule_id: string;
    severity: string;
    instrument: string;
    channel: string | null;
    detail: string;
    person: string | null;
    reason: string | null;
  };
  run_ranges: {
    run: string;
    gateway: string;
    first_seq: number;
    last_seq: number | null;
  };
  run_results: {
    run: string;
    computed_at: number;
    results: string;
    verdict: GeneratedAlways<string | null>;
  };
  run_shares: {
    id: Generated<number>;
    run: string;
    token_hash: string;
    note: string | null;
    created_by: string;
    created_at: number;
    expires_at: number;
    revoked_by: string | null;
    revoked_at: number | null;
    revoke_reason: string | null;
    first_used_at: number | null;
    uses: Generated<number>;
  };
  runs: {
    id: string;
    sample: string;
    organization: string;
    method_id: string;
    method_version: number;
    instruments: string;
    technician: string;
    state: string;
    accredited: number;
    created_by: string;
    created_at: number;
    started_at: number | null;
    ended_at: number | null;
    end_reason: string | null;
  };
  samples: {
    gateway: number;
    seq: number;
    stream: number;
    ts: number;
    num: number | null;
    text: string | null;
    kind: number;
    quality: number;
    reason: string | null;
  };
  security_events: {
    id: Generated<number>;
    at: number;
    gateway: string;
    kind: string;
    severity: string;
    batch: number | null;
    detail: string;
    log_index: number | null;
    count: Generated<number>;
    last_at: number | null;
    address: string | null;
    client: string | null;
  };
  sessions: {
    id: Generated<number>;
    token_hash: string;
    user_id: number;
    kind: string;
    name: string | null;
    created_at: number;
    expires_at: number;
  };
  store_probe: {
    id: Generated<number>;
    at: number;
  };
  streams: {
    id: Generated<number>;
    gateway: string;
    instrument: string;
    channel: string;
    unit: string;
  };
  users: {
    id: Generated<number>;
    username: string;
    role: string;
    organization: string | null;
    password_hash: string;
    must_change: Generated<number>;
    disabled: Generated<number>;
    grant_until: number | null;
    failed_logins: Generated<number>;
    locked_until: number | null;
    created_at: number;
    password_changed_at: number;
    grant_organizations: string | null;
    locale: string | null;
    time_zone: string | null;
  };
}
