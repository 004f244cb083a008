// The labtrace server: broker, ingest, store, REST API and live updates on one HTTP port.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { formatSignerKey, LabtraceError, parseSignerKey, type SignerKey } from '@labtrace/protocols';
import { formatDuration } from '@labtrace/protocols/node';
import { certificateRoutes } from './certificates/certificate-routes.js';
import { Certificates } from './certificates/certificates.js';
import { labSources, logStoreLog, transparencyLogLog } from './certificates/sources.js';
import { logReaderOf, type LogReader } from './log/log-reader.js';
import { LogStore } from './log/log-store.js';
import { logRoutes } from './log/log-routes.js';
import { exportRoutes } from './export/export-routes.js';
import { runSelections } from './export/run-selection.js';
import { measurementProof } from './log/measurement-proof.js';
import { TransparencyLog } from './log/transparency-log.js';
import { CosignatureStore } from './log/cosignatures.js';
import { WitnessCosigning } from './witness/cosigning.js';
import { createApp, healthOnly } from './api/app.js';
import { RawFiles } from './files/raw-files.js';
import { rawFileRoutes } from './files/raw-file-routes.js';
import { Housekeeping } from './housekeeping.js';
import { AuditTrail } from './audit/audit-trail.js';
import { announceAuditChanges, type AuditAnnouncer } from './audit/audit-live.js';
import { routesOf } from './auth/policy.js';
import { Users } from './auth/users.js';
import { Broker } from './broker/broker.js';
import type { MessageBus } from './broker/bus.js';
import { ExternalBroker } from './broker/external-broker.js';
import type { ServerConfig } from './config.js';
import { Ingest } from './ingest/ingest.js';
import { LiveHub } from './live/live-hub.js';
import { ServerMetrics } from './metrics/server-metrics.js';
import { Accreditations } from './lab/accreditation.js';
import { accreditationRoutes } from './lab/accreditation-routes.js';
import { Calibration } from './lab/calibration.js';
import { calibrationRoutes } from './lab/calibration-routes.js';
import { EquipmentStatus } from './lab/equipment.js';
import { EquipmentHealth } from './lab/equipment-health.js';
import { LabRecords } from './lab/lab-records.js';
import { labRoutes } from './lab/lab-routes.js';
import { LabOverview, overviewRoutes } from './lab/overview.js';
import { DemoLab, type DemoParts } from './lab/demo.js';
import { demoJob } from './lab/demo-job.js';
import { calibrationRemindersJob, REMINDER_INTERVAL_MS, remindCalibrations } from './lab/calibration-reminders.js';
import { RunResultsService } from './lab/results.js';
import { Runs } from './lab/runs.js';
import { RunShares } from './lab/run-shares.js';
import { shareRoutes } from './lab/share-routes.js';
import { InstrumentCommands, instrumentCommandRoutes } from './instruments/instrument-commands.js';
import { RunInspection } from './inspection/run-inspection.js';
import { SampleFeed } from './inspection/sample-feed.js';
import { JobRunner, untilAborted, type JobContext } from './cluster/jobs.js';
import { nodeName, PostgresLeases } from './cluster/leases.js';
import { NODE_ROLES, type NodeRole } from './cluster/config.js';
import { Parts, type Part } from './parts.js';
import { readPosition, writePosition } from './cluster/positions.js';
import type { Logger } from './log.js';
import { sql, type Kysely } from 'kysely';
import { openStore, storeTargetOf, type OpenedStore } from './store/dialect.js';
import { LabDatabase, migrateStore, type MigrationStep, type Tables } from './store/database.js';
import { serverMigrations } from './migrations.js';
import { StoreCapacity } from './store/capacity.js';
import { ServerClock } from './clock/server-clock.js';
import { MeasurementStore } from './store/measurement-store.js';
import { PgMeasurementStore } from './store/pg-measurement-store.js';
import { Registry } from './store/registry.js';
import { seriesStoreFrom } from './store/series/open-series.js';
import type { SeriesStore } from './store/series/series-store.js';
import { Enrollment } from './trust/enrollment.js';
import { KeyRegistry } from './trust/key-registry.js';
import { notificationRoutes } from './notify/notification-routes.js';
import { standingRoutes } from './standing/standing-routes.js';
import { Notifier, smtpPasswordFrom } from './notify/notifier.js';
import { SecurityEvents } from './trust/security-events.js';
import { redisPasswordFrom } from './redis.js';
import { Retention } from './retention/retention.js';

function readSecret(file: string, field: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new LabtraceError(
      'E_CONFIG_READ',
      `${field}: ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

/**
 * The lab's log key: read from its file, or created there at the first start (mode 0600). Its name is
 * the log's origin, as C2SP checkpoints expect.
 */
function logKey(file: string, origin: string, logger: Logger): SignerKey {
  if (!existsSync(file)) {
    const seed = new Uint8Array(randomBytes(32));
    writeFileSync(file, `${formatSignerKey(origin, seed)}\n`, { mode: 0o600, flag: 'wx' });
    seed.fill(0);
    logger.info({ file }, 'created the transparency log key');
  }
  if ((statSync(file).mode & 0o077) !== 0) throw new LabtraceError('E_CONFIG', `log.keyFile: ${file} lets others read the private key; chmod 600 it`);
  try {
    return parseSignerKey(readFileSync(file, 'utf8').trim());
  } catch (err) {
    throw new LabtraceError('E_CONFIG', `log.keyFile: ${file}: not a signer key (${(err as Error).message})`, { cause: err });
  }
}

/** the server reading records as the lab does (every organization's) */
const LAB_VIEWER = { role: 'admin', organization: null } as const;

export const SERVER_VERSION = '0.1.0';
export const DEFAULT_DASHBOARD_DIR = fileURLToPath(new URL('../../../dashboard/dist', import.meta.url));

export interface ServerOptions {
  /** the password of the user `admin` created at the first start (LABTRACE_ADMIN_PASSWORD); without it, a one-time password is announced */
  adminPassword?: string | undefined;
  /** shows the one-time admin password once, on the terminal (never the log) */
  announce?: (text: string) => void;
  /** the clock of the runs' inspection (ticks, acknowledgements), of the accreditations' status and of retention; tests inject fake time */
  clock?: () => number;
  /** how often the runs' time-based inspection rules are evaluated (default 1000 ms) */
  inspectionTickMs?: number;
  /** the clock the NTP servers measure (clock.ntp): Date.now; tests make it wrong */
  ntpClock?: () => number;
}

export class LabtraceServer {
  /** the engine of the store: the embedded SQLite file (the default) or PostgreSQL shared by several nodes */
  readonly engine: 'sqlite' | 'postgres';
  /** the store's queries, on either engine */
  readonly db: Kysely<Tables>;
  /** the batches and the per-sample index, on either engine */
  readonly measurements: MeasurementStore | PgMeasurementStore;
  private readonly embedded: { database: LabDatabase; store: MeasurementStore } | undefined;
  private readonly postgres: OpenedStore | undefined;
  /** free space against the reserve, and whether the store can write */
  readonly capacity: StoreCapacity;
  /** the server's own clock against NTP (clock.ntp) and as its gateways see it */
  readonly clock: ServerClock;
  /** the dashboard's measurement reads: the embedded index, or InfluxDB fed from the stored batches */
  readonly series: SeriesStore;
  readonly registry: Registry;
  readonly broker: MessageBus;
  /** the embedded broker, unless the server ingests from an external one */
  readonly embeddedBroker: Broker | undefined;
  readonly events: SecurityEvents;
  readonly keys: KeyRegistry;
  readonly enrollment: Enrollment;
  readonly ingest: Ingest;
  /** result files from gateways, kept under their SHA-256 */
  readonly rawFiles: RawFiles;
  readonly audit: AuditTrail;
  readonly users: Users;
  readonly labRecords: LabRecords;
  readonly equipment: EquipmentStatus;
  readonly runs: Runs;
  /** read-only links that share one run with a client (lab/run-shares.ts) */
  readonly shares: RunShares;
  /** the inspection rule engines of the running runs and their stored alarms */
  readonly inspection: RunInspection;
  readonly calibration: Calibration;
  /** instruments' connection health over time, from the gateways' HEALTH messages */
  readonly equipmentHealth: EquipmentHealth;
  /** the results of completed runs, computed when a run completes */
  readonly results: RunResultsService;
  /** the demo lab's runs (config demo.enabled, as `npm start` sets it); on PostgreSQL the job `demo` of one node instead */
  readonly demo: DemoLab | undefined;
  /** the lab's accreditations: their computed status, and the scope check of runs, results and certificates */
  readonly accreditations: Accreditations;
  /** certificates (test reports) of completed runs, signed and logged; their public verification */
  readonly certificates: Certificates;
  /** outbound notifications by e-mail and webhook, through a durable outbox (notify/) */
  readonly notifications: Notifier;
  /** removes the records past the configured retention (config retention; by default nothing is ever removed) */
  readonly retention: Retention;
  readonly app: ReturnType<typeof createApp>;
  /** the transparency log of verified batch headers and key events, in process over SQLite (opened in start()) */
  log: TransparencyLog | undefined;
  /** the transparency log in the shared store, on PostgreSQL: one log for every node (opened in start()) */
  logStore: LogStore | undefined;
  /** the witnesses that cosign the log's checkpoints (log.witnesses), submitted to in the background */
  readonly witnesses: WitnessCosigning;
  private housekeeping: Housekeeping | undefined;
  /** on PostgreSQL: the jobs that run on one node of the lab's several at a time (the run inspection), through leases */
  private readonly jobs: JobRunner<Tables> | undefined;
  private reminderTimer: NodeJS.Timeout | undefined;
  private logRouter: ReturnType<typeof logRoutes> | undefined;
  readonly live: LiveHub;
  /** Prometheus metrics (config metrics): GET /metrics on the HTTP port with a token, or on a listener of their own */
  readonly metrics: ServerMetrics;
  private readonly auditLive: AuditAnnouncer;
  private readonly http: http.Server;
  /** what this node does among the lab's nodes (cluster.roles) */
  readonly roles: ReadonlySet<NodeRole>;
  private readonly parts: Parts;
  private started = false;

  constructor(
    readonly config: ServerConfig,
    private readonly logger: Logger,
    private readonly options: ServerOptions = {},
  ) {
    const target = storeTargetOf(config.database, config.dataDir);
    this.engine = target.dialect;
    this.roles = new Set(config.cluster.roles);
    if (target.dialect === 'sqlite' && this.roles.size < NODE_ROLES.length)
      throw new LabtraceError(
        'E_CONFIG',
        `cluster.roles: a server on the embedded SQLite store is the lab's only node and has every role (${NODE_ROLES.join(', ')}); nodes with some of them need the PostgreSQL store (database.url)`,
      );
    if (!this.roles.has('ingest') && config.mqtt.external === undefined)
      throw new LabtraceError(
        'E_CONFIG',
        'cluster.roles: a node without `ingest` needs the external broker (mqtt.external): gateways connect to every node of the embedded broker, so each of its nodes ingests',
      );
    // the node's own files (its keys unless configured elsewhere, raw result files, the export spool) live here on either engine
    mkdirSync(config.dataDir, { recursive: true });
    if (target.dialect === 'sqlite') {
      const database = new LabDatabase(config.dataDir, serverMigrations, target.file);
      this.embedded = {
        database,
        store: new MeasurementStore(database, { indexWorker: config.store.indexWorker ? { logger: logger.child({ part: 'index' }) } : undefined }),
      };
      this.postgres = undefined;
      this.db = database.db;
      this.measurements = this.embedded.store;
    } else {
      this.embedded = undefined;
      this.postgres = openStore(target, { passwordFile: config.database.passwordFile });
      this.db = this.postgres.db;
      this.measurements = new PgMeasurementStore(this.db as Kysely<unknown>);
    }
    // the modules that keep synchronous SQLite paths take the LabDatabase; on PostgreSQL, the store's Kysely
    const store = this.embedded?.database ?? this.db;
    this.series = seriesStoreFrom(
      config.measurements,
      this.embedded === undefined
        ? { store: this.measurements as PgMeasurementStore, db: this.db, logger: logger.child({ part: 'series' }) }
        : { database: this.embedded.database, store: this.embedded.store, logger: logger.child({ part: 'series' }) },
    );
    this.registry = new Registry({ db: this.db });
    this.events = new SecurityEvents(store, logger.child({ part: 'security' }), {
      windowMs: config.securityEvents.windowMs,
      maxKeysPerWindow: config.securityEvents.maxSourcesPerWindow,
    });
    this.keys = new KeyRegistry(store, this.events, { logger: logger.child({ part: 'keys' }) });
    this.enrollment = new Enrollment(store, this.keys, this.events);
    this.audit = new AuditTrail(store);
    this.retention = new Retention({
      db: this.db,
      log: () => this.logStore ?? this.openedLog(),
      audit: this.audit,
      config: config.retention,
      logger: logger.child({ part: 'retention' }),
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    });
    this.users = new Users(store, this.audit);
    this.accreditations = new Accreditations(
      this.db,
      this.audit,
      logger.child({ part: 'accreditation' }),
      { warnDays: config.accreditation.warnDays, accreditations: config.accreditation.accreditations },
      options.clock,
    );
    const methodScope = this.accreditations;
    this.labRecords = new LabRecords(this.db, this.audit, methodScope, this.users);
    this.equipment = new EquipmentStatus(this.db, this.audit, Date.now, this.registry);
    this.runs = new Runs(this.db, this.audit, this.labRecords, this.equipment, methodScope, {
      instruments: this.registry,
      technicians: this.users,
      // on PostgreSQL a run's start and end take the gateways' batch locks: its boundary lies before or after each batch
      ...(this.measurements instanceof PgMeasurementStore ? { batches: this.measurements } : {}),
    });
    this.shares = new RunShares(this.db, this.audit, options.clock);
    this.calibration = new Calibration(this.db, this.audit, this.equipment, config.calibration);
    this.equipmentHealth = new EquipmentHealth(this.db);
    this.results = new RunResultsService(this.db, this.audit, this.runs, this.labRecords, this.calibration, this.accreditations, Date.now);
    this.inspection = new RunInspection(this.db, this.audit, this.runs, this.labRecords, this.equipment, logger.child({ part: 'inspection' }), {
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      ...(options.inspectionTickMs === undefined ? {} : { tickMs: options.inspectionTickMs }),
      // the calibration status now (never calibrated reads as unknown to the rules)
      instrumentStatus: async (id) => {
        const { status } = await this.calibration.status(id);
        return status === 'never-calibrated' ? 'unknown' : status;
      },
    });
    this.certificates = new Certificates({
      db: this.db,
      audit: this.audit,
      sources: labSources({
        db: this.db,
        runs: this.runs,
        records: this.labRecords,
        calibration: this.calibration,
        results: () => this.results,
        registry: this.registry,
        organizations: () => this.users.organizations(),
        accreditations: this.accreditations,
      }),
      log: () => (this.logStore !== undefined ? logStoreLog(this.logStore) : this.log === undefined ? undefined : transparencyLogLog(this.log)),
      laboratory: config.laboratory,
      lab: config.lab,
      publicBaseUrl: () => config.publicBaseUrl ?? this.listenUrl(),
      keyFile: config.certificates.keyFile ?? path.join(config.dataDir, 'certificate.key'),
      softwareVersion: SERVER_VERSION,
      logger: logger.child({ part: 'certificates' }),
      report: { font: config.certificates.font, logo: config.laboratory?.logo, accreditationMark: config.certificates.accreditationMark },
      onChanged: (id, organization) => this.live.changed({ list: 'certificates', id }, organization),
      onDraft: (view) =>
        this.notifications.draftRequested({
          id: view.id,
          run: view.run,
          organization: view.organization,
          requestedBy: view.requestedBy,
          requestedAt: view.requestedAt,
        }),
    });
    const demoParts: DemoParts = {
      records: this.labRecords,
      runs: this.runs,
      calibration: this.calibration,
      instrumentExists: async (id) => (await this.registry.instrument(id)) !== undefined,
      certificates: this.certificates,
      results: this.results,
    };
    // on PostgreSQL the demo is the job of one node (`demo`, registered with the jobs below), fed every node's stored samples
    this.demo = config.demo.enabled && target.dialect === 'sqlite' ? new DemoLab(demoParts, logger.child({ part: 'demo' }), config.demo) : undefined;
    const external = config.mqtt.external;
    if (external === undefined) {
      this.embeddedBroker = new Broker({
        lab: config.lab,
        host: config.mqtt.host,
        port: config.mqtt.port,
        users: config.broker.users,
        lookupUser: (username) => this.enrollment.user(username),
        ...(config.mqtt.tls === undefined ? {} : { tls: { host: config.mqtt.host, ...config.mqtt.tls } }),
        maxPacketBytes: config.mqtt.maxPacketBytes,
        maxConnectionsPerAddress: config.mqtt.maxConnectionsPerAddress,
        refused: (refusal) => this.events.refuse(refusal),
        ...(config.mqtt.cluster === undefined
          ? {}
          : {
              cluster: {
                url: config.mqtt.cluster.redis.url,
                username: config.mqtt.cluster.redis.username,
                password: redisPasswordFrom(config.mqtt.cluster.redis.passwordFile, 'mqtt.cluster.redis', readSecret),
              },
            }),
        logger: logger.child({ part: 'broker' }),
      });
      this.broker = this.embeddedBroker;
    } else {
      this.embeddedBroker = undefined;
      if (config.mqtt.cluster !== undefined)
        throw new LabtraceError('E_CONFIG', 'mqtt.cluster: for the embedded broker only (with mqtt.external, the external broker joins the nodes)');
      const password =
        process.env['LABTRACE_MQTT_PASSWORD'] ??
        (external.passwordFile === undefined ? undefined : readSecret(external.passwordFile, 'mqtt.external.passwordFile'));
      if (password === undefined || password === '')
        throw new LabtraceError(
          'E_CONFIG',
          'mqtt.external.passwordFile: required unless LABTRACE_MQTT_PASSWORD is set (the broker must not take anonymous clients)',
        );
      this.broker = new ExternalBroker({
        lab: config.lab,
        url: external.url,
        username: external.username,
        password,
        ...(external.clientId === undefined ? {} : { clientId: external.clientId }),
        ...(external.sharedGroup === undefined ? {} : { sharedGroup: external.sharedGroup }),
        ingest: this.roles.has('ingest'),
        ...(external.caFile === undefined ? {} : { ca: readSecret(external.caFile, 'mqtt.external.caFile') }),
        logger: logger.child({ part: 'broker' }),
      });
    }
    this.ingest = new Ingest(
      config.lab,
      this.broker,
      this.embedded?.database ?? this.db,
      this.measurements,
      this.registry,
      this.keys,
      this.events,
      logger.child({ part: 'ingest' }),
      config.ingest,
    );
    this.rawFiles = new RawFiles(
      config.lab,
      this.broker,
      this.db,
      logger.child({ part: 'files' }),
      async (id) => (await this.registry.instrument(id))?.gateway,
      (refusal) => this.events.refuse(refusal),
    );
    this.capacity = new StoreCapacity(
      this.embedded?.database ?? { db: this.db, dataDir: config.dataDir },
      config.store,
      this.events,
      logger.child({ part: 'store' }),
    );
    this.notifications = new Notifier({
      store: this.db,
      // the SQLite ingest's synchronous record() of a security event: its deliveries are queued in that transaction
      ...(this.embedded === undefined ? {} : { database: this.embedded.database }),
      users: this.users,
      audit: this.audit,
      runs: this.runs,
      inspection: this.inspection,
      events: this.events,
      broker: this.broker,
      calibration: this.calibration,
      certificateFor: (db, viewer, id) => this.certificates.visibleIn(db, viewer, id),
      config: config.notifications,
      smtpPassword: smtpPasswordFrom(config.notifications, process.env),
      baseUrl: () => config.publicBaseUrl ?? this.listenUrl(),
      logger: logger.child({ part: 'notify' }),
      ...(options.clock === undefined ? {} : { now: options.clock }),
    });
    this.ingest.useCapacity(this.capacity);
    this.clock = new ServerClock({
      config: config.clock.ntp,
      events: this.events,
      database: this.embedded?.database,
      db: this.db,
      gatewayOffsets: () => this.ingest.recentClockOffsets(),
      gatewayBoundMs: this.ingest.clockOffsetBoundMs,
      logger: logger.child({ part: 'clock' }),
      ...(options.ntpClock === undefined ? {} : { now: options.ntpClock }),
    });
    if (this.postgres === undefined) this.jobs = undefined;
    else {
      const leases = new PostgresLeases({
        db: this.db,
        connection: this.postgres.connection ?? {},
        node: nodeName(config.cluster),
        pollMs: config.cluster.leases.pollMs,
        sessionTimeoutMs: config.cluster.leases.sessionTimeoutMs,
      });
      this.jobs = new JobRunner(leases);
      leases.on('connectionError', (err) =>
        logger.error({ err: err.message }, 'ALARM: the lease connection failed: no job of one node runs here until it is back'),
      );
      leases.on('lost', (lease, reason) =>
        logger.warn({ job: lease.name, reason }, 'a lease was lost: its job stops here and moves to another node'),
      );
      this.jobs.on('ended', (name, _lease, end) => logger.info({ job: name, end }, 'job ended on this node'));
      this.jobs.runOnce('run-inspection', (context) => this.runInspectionJob(context));
      // with InfluxDB: the copy of every node's stored batches, by the one node holding this job's lease
      if (this.series.forwarderJob !== undefined) this.jobs.runOnce('influx-forwarder', this.series.forwarderJob);
      this.jobs.runOnce('calibration-reminders', calibrationRemindersJob(this.calibration, logger));
      if (config.demo.enabled)
        this.jobs.runOnce('demo', demoJob({ db: this.db, lab: demoParts, logger: logger.child({ part: 'demo' }), options: config.demo }));
      this.jobs.on('started', (name, lease) => logger.info({ job: name, epoch: lease.epoch }, 'job started on this node'));
      this.jobs.on('failed', (name, _lease, err) => logger.error({ job: name, err: String(err) }, 'ALARM: a job failed; it runs again'));
    }
    const app = createApp({
      trustProxy: config.http.trustProxy,
      rateLimit: config.http.rateLimit === false ? undefined : config.http.rateLimit,
      enrollRateLimit: config.http.enrollRateLimit,
      users: this.users,
      audit: this.audit,
      labRoutes: labRoutes({
        records: this.labRecords,
        runs: this.runs,
        equipment: this.equipment,
        inspection: this.inspection,
        review: (id) => this.calibration.review(id),
        equipmentOf: async (id) => {
          const { status, dueAt } = await this.calibration.status(id);
          return { id, identity: (await this.registry.instrument(id))?.identity ?? null, calibration: { status, dueAt } };
        },
        results: this.results,
      })
        .use(
          calibrationRoutes(this.calibration, {
            connectedGateways: () => this.broker.connectedGateways(),
            health: this.equipmentHealth,
            instrumentExists: async (id) => (await this.registry.instrument(id)) !== undefined,
          }),
        )
        .use(accreditationRoutes(this.accreditations, config.lab))
        .use(
          exportRoutes({
            store: this.db,
            spoolDir: path.join(this.config.dataDir, 'export-spool'),
            log: () => this.logStore ?? this.log,
            runSelections: (run, field) => runSelections(this.db, run, field),
            logger: this.logger,
            runOf: (viewer, id) => this.runs.get(viewer, id),
            redact: config.export.clientBundle.redact,
          }),
        )
        .use(notificationRoutes(this.notifications))
        .use(
          shareRoutes({
            shares: this.shares,
            runs: this.runs,
            records: this.labRecords,
            results: this.results,
            reportOf: async (run) => {
              // the run's current report: the newest valid one (the list is newest first)
              const issued = (await this.certificates.list(LAB_VIEWER, { run, status: 'valid', limit: 1 })).items[0];
              const files = issued === undefined ? undefined : await this.certificates.files(issued.id);
              return issued === undefined || files === undefined || issued.issuedAt === null
                ? undefined
                : { id: issued.id, issuedAt: issued.issuedAt, pdf: () => files.pdf };
            },
          }),
        )
        .use(overviewRoutes(new LabOverview(this.db, this.calibration, () => this.broker.connectedGateways(), options.clock)))
        .use(rawFileRoutes(this.rawFiles))
        .use(
          instrumentCommandRoutes(
            new InstrumentCommands({
              db: this.db,
              audit: this.audit,
              instrument: (id) => this.registry.instrument(id),
              connectedGateways: () => this.broker.connectedGateways(),
              publish: (topic, payload) => this.broker.publish(topic, payload),
              lab: config.lab,
              ...(options.clock === undefined ? {} : { clock: options.clock }),
            }),
          ),
        )
        .use(
          standingRoutes({
            config: config.supervision,
            env: process.env,
            db: this.db,
            audit: this.audit,
            logger: logger.child({ part: 'standing' }),
          }),
        ),
      calibrationOf: async (id) => {
        const { status, dueAt } = await this.calibration.status(id);
        return { status, dueAt };
      },
      calibrationsOf: () => this.calibration.states(),
      certificateRoutes: certificateRoutes(this.certificates, () => config.laboratory?.name ?? config.lab),
      trust: { enrollment: this.enrollment, keys: this.keys, events: this.events },
      logRoutes: () => this.logRouter,
      changed: (change) => this.live.changed(change),
      series: this.series,
      registry: this.registry,
      healthOf: (id) => this.ingest.healthOf(id),
      logger,
      dashboardDir: config.dashboardDir ?? DEFAULT_DASHBOARD_DIR,
      health: {
        version: SERVER_VERSION,
        brokerRunning: () => this.broker.running,
        storeOk: () => this.storeOk(),
        storeKind: this.engine,
        connectedGateways: () => this.broker.connectedGateways(),
        clockOffsetOf: (gateway) => this.ingest.clockOffsetOf(gateway),
        capacity: () => this.capacity.status(),
        writeFailed: (err) => this.capacity.writeFailed(err),
        refusals: () => this.ingest.refusals(),
        notifications: () => this.notifications.status(),
        node: () => ({ roles: [...this.roles], leases: this.jobsRunning() }),
        clock: () => this.clock.health(),
      },
    });
    this.app = app;
    this.metrics = new ServerMetrics(
      config.metrics,
      {
        ingest: this.ingest,
        capacity: () => this.capacity.status(),
        log: () => this.logStore ?? this.log,
        liveClients: () => this.live.clients,
        series: () => this.series.status(),
        retention: () => this.retention.status(),
        clock: () => this.clock.health(),
      },
      logger.child({ part: 'metrics' }),
    );
    // a node without the API answers its health only (load balancers and probes ask every node); every node its metrics
    this.http = http.createServer(this.metrics.listenerFor(this.roles.has('api') ? app : healthOnly(app)));
    const redis = config.live.redis;
    const redisPassword = redis === undefined ? undefined : redisPasswordFrom(redis.passwordFile, 'live.redis', readSecret);
    this.live = new LiveHub(
      this.roles.has('api') ? this.http : undefined,
      SERVER_VERSION,
      this.users,
      (principal, id) => this.runs.get(principal, id),
      this.logger,
      redis === undefined ? undefined : { url: redis.url, username: redis.username, password: redisPassword, stream: redis.stream },
    );
    this.runs.on('samples', (run, samples) => this.live.runSamples(run, samples));
    // the run lists re-read on a change (no polling): a run planned, started, stopped or aborted; an alarm's event
    this.runs.on('created', (run) => this.live.changed({ list: 'runs', id: run.id }, run.organization));
    this.inspection.on('alarm', (event) => {
      this.runs.get(LAB_VIEWER, event.run).then(
        (run) => this.live.changed({ list: 'alarms', id: event.run }, run?.organization),
        (err: unknown) => this.logger.error({ run: event.run, err }, 'the alarm list change could not be announced'),
      );
    });
    this.runs.on('state', (run) => {
      this.live.changed({ list: 'runs', id: run.id }, run.organization);
      this.live.runState(run);
      if (run.state !== 'completed') return;
      this.results.onCompleted(run).catch((err: unknown) => {
        // kept for a later read of the results, which computes them again
        this.logger.error({ run: run.id, err }, 'ALARM: the results of a completed run could not be computed');
      });
    });
    this.inspection.on('alarm', (event) => this.live.runAlarm(event));
    this.labRecords.on('changed', (change, organization) => this.live.changed(change, organization));
    // the lab room only: an organization's people do not read the trail as a whole
    this.auditLive = announceAuditChanges(this.audit, (change) => this.live.changed(change));
    this.users.on('sessionsEnded', (username) => this.live.disconnectUser(username));
    // the security events' list re-reads on a new event (the lab's staff and auditors hear it)
    this.events.on('event', (event) => this.live.changed({ list: 'security-events', id: String(event.id) }));
    this.ingest.on('samples', (samples) => {
      this.series.notify();
      this.live.samples(samples);
      // on PostgreSQL each node stores part of the batches: the node that inspects the runs reads them all from the store
      if (this.jobs === undefined) this.runs.onSamples(samples);
      this.demo?.onSamples(samples);
    });
    this.ingest.on('birth', () => this.live.instrumentsChanged());
    this.ingest.on('health', (health) => {
      this.live.health(health);
      this.equipmentHealth.record(health).catch((err: unknown) => {
        this.logger.error({ err: String(err) }, 'instrument health could not be stored');
      });
    });
    // the instrument register and instrument pages read again when a record of an instrument changes
    this.equipment.onChange((id) => this.live.changed({ list: 'instruments', id }));
    this.calibration.onChange((id) => {
      this.live.changed({ list: 'calibrations', id });
      this.live.changed({ list: 'instruments', id });
    });
    this.broker.on('gatewayConnected', (id) => {
      this.live.gateway({ id, connected: true, lastSeen: Date.now() });
      this.live.changed({ list: 'gateways', id });
    });
    this.broker.on('gatewayDisconnected', (id) => {
      this.logger.info({ gateway: id }, 'gateway disconnected');
      this.ingest.gatewayGone(id);
      this.live.gateway({ id, connected: false, lastSeen: Date.now() });
      this.live.changed({ list: 'gateways', id });
    });
    this.witnesses = new WitnessCosigning({
      witnesses: config.log.witnesses,
      maxBackoffMs: config.log.witnessMaxBackoffMs,
      log: () => this.logReader,
      store: new CosignatureStore(this.db),
      logger: logger.child({ part: 'witnesses' }),
    });
    this.parts = new Parts(this.declareParts(), this.roles, logger);
  }

  /** the embedded SQLite database (its synchronous paths, its file); refused on PostgreSQL, where `db` is the store */
  get database(): LabDatabase {
    if (this.embedded === undefined) throw new LabtraceError('E_CONFIG', 'the server runs on PostgreSQL: it has no embedded SQLite database');
    return this.embedded.database;
  }

  /** the embedded measurement store (SQLite); on PostgreSQL, `measurements` */
  get store(): MeasurementStore {
    if (this.embedded === undefined) throw new LabtraceError('E_CONFIG', 'the server runs on PostgreSQL: its measurements are in `measurements`');
    return this.embedded.store;
  }

  /** the jobs of one node at a time that run on this node now (PostgreSQL; on SQLite the one node runs them all) */
  jobsRunning(): string[] {
    return this.jobs?.runningJobs().map((lease) => lease.name) ?? [];
  }

  /** the log's readers' view of whichever log the server keeps (once started) */
  get logReader(): LogReader | undefined {
    return this.logStore ?? (this.log === undefined ? undefined : logReaderOf(this.log));
  }

  private async storeOk(): Promise<boolean> {
    if (this.embedded !== undefined) return this.embedded.database.ping();
    try {
      await sql`select 1`.execute(this.db);
      return true;
    } catch {
      return false;
    }
  }

  /** every REST route the server serves (the log's once it is open), for the authorization policy's tests */
  routes(): { method: string; path: string }[] {
    return [...routesOf(this.app), ...(this.logRouter ? routesOf(this.logRouter) : [])];
  }

  /** the listen address as a URL (a wildcard host reads as loopback): the default public base URL */
  listenUrl(): string {
    const host = this.config.http.host;
    const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
    return `http://${shown}:${this.httpPort}`;
  }

  get httpPort(): number {
    const addr = this.http.address();
    return typeof addr === 'object' && addr !== null ? addr.port : this.config.http.port;
  }

  /** the embedded broker's MQTT port (0 in external broker mode) */
  get mqttPort(): number {
    return this.embeddedBroker?.port ?? 0;
  }

  /** the parts this node runs (its roles), in their start order */
  get partsRunning(): string[] {
    return this.parts.running;
  }

  async start(): Promise<void> {
    // a refused start stops whatever had started (a pool, a timer, a port): it leaves nothing running
    await this.parts.start();
    this.started = true;
    this.logger.info({ http: this.httpPort, mqtt: this.mqttPort, dataDir: this.config.dataDir, roles: [...this.roles] }, 'server started');
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    await this.parts.stop();
    this.logger.info('server stopped');
  }

  /**
   * The server's parts in start order (stopped in reverse, parts.ts). Those without roles run on every node; a
   * node runs the others only for its roles (cluster.roles: api, ingest, jobs).
   */
  private declareParts(): Part[] {
    const embedded = this.embedded;
    const parts: Part[] = [
      {
        name: 'store',
        // on PostgreSQL every node migrates at start too: the migrator's advisory lock applies each migration once
        start: async () => {
          const onStep = (step: MigrationStep): void =>
            this.logger.info(
              { migration: step.name, ms: step.ms },
              `store migration ${step.index}/${step.total} applied: ${step.name} (${formatDuration(step.ms)})`,
            );
          if (embedded !== undefined) {
            await embedded.database.migrate(undefined, onStep);
            embedded.store.open();
          } else await migrateStore(this.db, serverMigrations, undefined, { onStep });
        },
        stop: async () => {
          if (embedded !== undefined) {
            await embedded.store.close();
            await embedded.database.close();
          } else await this.postgres?.close();
        },
      },
      // the security events' timers stop after everything that records one
      { name: 'security-events', start: () => undefined, stop: () => this.events.stop() },
      { name: 'runs', start: () => this.runs.open() },
      { name: 'accreditations', start: () => this.accreditations.start(), stop: () => this.accreditations.stop() },
      // on PostgreSQL the inspection is a job of one node (its lease, see runInspectionJob), started with the jobs
      ...(this.jobs === undefined
        ? [{ name: 'inspection', roles: ['jobs'], start: () => this.inspection.start(), stop: () => this.inspection.stop() } satisfies Part]
        : []),
      { name: 'admin', roles: ['api'], start: () => this.bootstrapAdmin() },
      { name: 'log', start: () => this.openLog() },
      { name: 'certificates', start: () => this.certificates.start(), stop: () => this.certificates.stop() },
      { name: 'notifications', start: () => this.notifications.start(), stop: () => this.notifications.stop() },
      { name: 'keys', start: () => this.keys.open(this.config.gateways).then(() => this.keys.start()), stop: () => this.keys.stop() },
      { name: 'enrollment', start: () => this.enrollment.open() },
      {
        // key events (from any node or the admin command line) enter the log within a second; each chore fails on its
        // own, logged as what it is; the log's entries come before its checkpoint
        name: 'housekeeping',
        roles: ['jobs'],
        start: async () => {
          const anchor = () => this.audit.anchor(this.logStore ?? this.openedLog());
          await this.logKeyEvents();
          await anchor();
          this.housekeeping = new Housekeeping(
            [
              { name: 'key-events', failure: 'ALARM: key events could not be entered in the transparency log', run: () => this.logKeyEvents() },
              { name: 'audit-anchor', failure: 'ALARM: the audit trail could not be anchored in the transparency log', run: anchor },
              { name: 'session-prune', failure: 'expired sessions could not be pruned', run: () => this.users.prune() },
              { name: 'checkpoint', failure: 'ALARM: the transparency log checkpoint could not be signed', run: () => this.checkpoint() },
            ],
            this.config.log.minCheckpointIntervalMs,
            this.logger,
          );
          await this.housekeeping.start();
        },
        stop: async () => {
          await this.housekeeping?.stop();
          this.housekeeping = undefined;
        },
      },
      // expired records leave on a schedule, each removal with its log and audit entries (after the log is open)
      { name: 'retention', roles: ['jobs'], start: () => this.retention.start(), stop: () => this.retention.stop() },
      // the witnesses get each new checkpoint in the background; on PostgreSQL one node submits (a job, its lease)
      {
        name: 'witnesses',
        roles: ['jobs'],
        start: () => (this.jobs === undefined ? this.witnesses.start() : this.witnesses.runAsJob(this.jobs)),
        stop: () => this.witnesses.stop(),
      },
      { name: 'capacity', start: () => this.capacity.start(), stop: () => this.capacity.stop() },
      { name: 'clock', start: () => this.clock.start(), stop: () => this.clock.stop() },
      { name: 'series', start: () => this.series.start(), stop: () => this.series.stop() },
      // ingest listens before the broker takes messages (an external broker delivers queued ones at once); the broker
      // stops taking data before ingest stops, so everything received is committed before the store closes
      { name: 'ingest', roles: ['ingest'], start: () => this.ingest.start(), stop: () => this.ingest.stop() },
      { name: 'raw-files', roles: ['ingest'], start: () => this.rawFiles.start(), stop: () => this.rawFiles.stop() },
      { name: 'broker', start: () => this.broker.start(), stop: () => this.broker.stop() },
      // the HTTP port closes after the live hub has ended its sockets (an upgraded connection would hold it open)
      { name: 'http', start: () => this.listen(), stop: () => this.closeHttp() },
      { name: 'metrics', start: () => this.metrics.start(), stop: () => this.metrics.stop() },
      {
        name: 'live',
        start: () => this.live.start(),
        stop: async () => {
          this.auditLive.stop();
          await this.live.stop();
        },
      },
      // on PostgreSQL the demo and the calibration reminders are jobs of one node (registered with the jobs above)
      { name: 'jobs', roles: ['jobs'], start: async () => this.jobs?.start(), stop: async () => this.jobs?.stop() },
      { name: 'demo', roles: ['jobs'], start: async () => this.demo?.start(), stop: async () => this.demo?.stop() },
      ...(this.jobs !== undefined
        ? []
        : [
            {
              name: 'calibration-reminders',
              roles: ['jobs'],
              start: () => {
                void remindCalibrations(this.calibration, this.logger);
                this.reminderTimer = setInterval(() => void remindCalibrations(this.calibration, this.logger), REMINDER_INTERVAL_MS).unref();
              },
              stop: () => {
                if (this.reminderTimer) clearInterval(this.reminderTimer);
                this.reminderTimer = undefined;
              },
            } satisfies Part,
          ]),
    ];
    return parts;
  }

  /** the user `admin` at the lab's first start, with the given password or a one-time one shown on the terminal */
  private async bootstrapAdmin(): Promise<void> {
    const admin = await this.users.bootstrapAdmin(this.options.adminPassword);
    if (admin === undefined) return;
    this.logger.info(
      { user: admin.username },
      admin.password === undefined ? 'created the admin user with the given password' : 'created the admin user',
    );
    if (admin.password !== undefined)
      (this.options.announce ?? ((text: string) => process.stdout.write(text)))(
        `\nFirst start: the user "admin" has the one-time password ${admin.password}\nIt is shown only this once; sign in and change it.\n\n`,
      );
  }

  /** Opens the transparency log: in process over SQLite, or the one log of every node in the shared store. */
  private async openLog(): Promise<void> {
    const origin = this.config.log.origin ?? `labtrace/${this.config.lab}`;
    const signer = logKey(this.config.log.keyFile ?? path.join(this.config.dataDir, 'log.key'), origin, this.logger);
    const logOptions = { origin, signer, minCheckpointIntervalMs: this.config.log.minCheckpointIntervalMs };
    let reader: LogReader;
    if (this.embedded !== undefined) {
      const log = new TransparencyLog(this.embedded.database, logOptions);
      log.open();
      this.log = log;
      this.ingest.useLog(log);
      reader = logReaderOf(log);
    } else {
      // one log in the shared store: each node appends under its lock and signs with the lab's one log key
      const log = new LogStore(this.db, logOptions);
      try {
        await log.open();
      } catch (err) {
        throw new LabtraceError(
          'E_CONFIG',
          `log.keyFile: the shared store's transparency log was not signed with this node's key: every node of a lab signs with the lab's one log key (${(err as Error).message})`,
          { cause: err },
        );
      }
      this.logStore = log;
      this.ingest.useLog(log);
      reader = log;
    }
    const cosignatures = new CosignatureStore(this.db);
    this.logRouter = logRoutes(reader, {
      measurement: (gateway, seq) => measurementProof(this.measurements, reader, gateway, seq),
      cosigned: (size, note) => cosignatures.cosigned(size, note),
      witnesses: () => this.witnesses.state(),
      gatewayKeys: () =>
        this.keys.list().map((k) => ({
          gateway: k.gateway,
          keyId: k.keyId,
          verifierKey: k.verifierKey,
          status: k.status,
          registeredAt: k.registeredAt,
          validUntil: k.validUntil,
          lastValidBatch: k.lastValidBatch,
          reason: k.reason,
        })),
    });
  }

  /** the in-process log over SQLite, once open */
  private openedLog(): TransparencyLog {
    if (this.log === undefined) throw new Error('the transparency log is not open yet');
    return this.log;
  }

  /** Signs a checkpoint of the log when one is due (on PostgreSQL by whichever node holds the log's lock). */
  private async checkpoint(): Promise<void> {
    if (this.logStore !== undefined) await this.logStore.maybeCheckpoint();
    else this.openedLog().maybeCheckpoint();
  }

  private async listen(): Promise<void> {
    this.embeddedBroker?.attachWebSocket(this.http);
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          err.code === 'EADDRINUSE'
            ? new LabtraceError(
                'E_PORT_IN_USE',
                `HTTP port ${this.config.http.host}:${this.config.http.port} is already in use (set PORT or http.port)`,
                { cause: err },
              )
            : err,
        ),
      );
      this.http.listen(this.config.http.port, this.config.http.host, () => resolve());
    });
  }

  private async closeHttp(): Promise<void> {
    this.http.closeAllConnections();
    if (this.http.listening) await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  /** Appends the key events whose time has come to the transparency log (enrollments, rotations, revocations), in order. */
  async logKeyEvents(): Promise<void> {
    if (this.log) this.keys.logPending(this.log);
    else if (this.logStore) await this.keys.logPendingTo(this.logStore);
  }

  /**
   * The run inspection on the one node of several that holds its lease (PostgreSQL): the engines of the running runs,
   * fed every node's stored samples in commit order (SampleFeed), following runs and alarm acts made through other
   * nodes each second; stopped when the lease is lost or the node stops, and taken over by another node then.
   */
  private async runInspectionJob({ lease, signal, fenced }: JobContext<Tables>): Promise<void> {
    const feed = new SampleFeed(this.db, (samples) => this.runs.onSamples(samples), this.logger.child({ part: 'inspection' }), {
      // the runs started and ended through any node before these batches, and their engines
      beforeDelivery: async () => {
        await this.runs.reloadRunning();
        await this.inspection.follow();
      },
      // the alarm events of the samples handed on are stored with the feed's position, through the lease's fence
      delivered: (position) => this.inspection.delivered(position),
    });
    let follow: NodeJS.Timeout | undefined;
    // a fenced write refused (the lease moved) or failed: the job ends with it (run-inspection.ts, InspectionFence)
    let refuse: (err: unknown) => void = () => undefined;
    const refused = new Promise<void>((_resolve, reject) => (refuse = reject));
    refused.catch(() => undefined);
    try {
      await this.inspection.start({
        follow: true,
        fence: { fenced, savePosition: (trx, position) => writePosition(trx, lease, position), onLost: (err) => refuse(err) },
      });
      // resumes after the last batch whose alarm events are stored (none yet: after the newest), which it stores
      this.inspection.delivered(await feed.start(await readPosition(this.db, lease.name)));
      follow = setInterval(() => {
        this.inspection.follow().catch((err: unknown) => this.logger.error({ err: String(err) }, 'ALARM: run inspection failed'));
      }, 1000);
      await Promise.race([refused, untilAborted(signal)]);
    } finally {
      // also after a failed start: nothing of this job stays running on a node that no longer holds its lease
      if (follow !== undefined) clearInterval(follow);
      await feed.stop();
      await this.inspection.stop();
    }
  }
}
