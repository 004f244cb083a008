// The labtrace server: broker, ingest, store, REST API and live updates on one HTTP port.
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { LabtraceError } from '@labtrace/protocols';
import { createApp } from './api/app.js';
import { Broker } from './broker/broker.js';
import type { ServerConfig } from './config.js';
import { Ingest } from './ingest/ingest.js';
import { LiveHub } from './live/live-hub.js';
import type { Logger } from './log.js';
import { LabDatabase } from './store/database.js';
import { MeasurementStore } from './store/measurement-store.js';
import { Registry } from './store/registry.js';

export const SERVER_VERSION = '0.1.0';
export const DEFAULT_DASHBOARD_DIR = fileURLToPath(new URL('../../../dashboard/dist', import.meta.url));

export class LabtraceServer {
  readonly database: LabDatabase;
  readonly store: MeasurementStore;
  readonly registry: Registry;
  readonly broker: Broker;
  readonly ingest: Ingest;
  readonly live: LiveHub;
  private readonly http: http.Server;
  private started = false;

  constructor(
    readonly config: ServerConfig,
    private readonly logger: Logger,
  ) {
    this.database = new LabDatabase(config.dataDir);
    this.store = new MeasurementStore(this.database);
    this.registry = new Registry(this.database);
    this.broker = new Broker({
      lab: config.lab,
      host: config.mqtt.host,
      port: config.mqtt.port,
      users: config.broker.users,
      logger: logger.child({ part: 'broker' }),
    });
    this.ingest = new Ingest(config.lab, this.broker, this.store, this.registry, logger.child({ part: 'ingest' }), config.gateways);
    const app = createApp({
      store: this.store,
      registry: this.registry,
      healthOf: (id) => this.ingest.healthOf(id),
      logger,
      dashboardDir: config.dashboardDir ?? DEFAULT_DASHBOARD_DIR,
      health: {
        version: SERVER_VERSION,
        brokerRunning: () => this.broker.running,
        storeOk: () => this.database.ping(),
        connectedGateways: () => this.broker.connectedGateways(),
      },
    });
    this.http = http.createServer(app);
    this.live = new LiveHub(this.http, SERVER_VERSION);
    this.ingest.on('samples', (samples) => this.live.samples(samples));
    this.ingest.on('birth', () => this.live.instrumentsChanged());
    this.ingest.on('health', (health) => this.live.health(health));
    this.broker.on('gatewayConnected', (id) => this.live.gateway({ id, connected: true, lastSeen: Date.now() }));
    this.broker.on('gatewayDisconnected', (id) => {
      this.logger.info({ gateway: id }, 'gateway disconnected');
      this.ingest.gatewayGone(id);
      this.live.gateway({ id, connected: false, lastSeen: Date.now() });
    });
  }

  get httpPort(): number {
    const addr = this.http.address();
    return typeof addr === 'object' && addr !== null ? addr.port : this.config.http.port;
  }

  get mqttPort(): number {
    return this.broker.port;
  }

  async start(): Promise<void> {
    await this.database.migrate();
    this.store.open();
    try {
      await this.broker.start();
      await this.ingest.start();
      await this.live.start();
      this.broker.attachWebSocket(this.http);
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
    } catch (err) {
      await this.shutdown();
      throw err;
    }
    this.started = true;
    this.logger.info({ http: this.httpPort, mqtt: this.mqttPort, dataDir: this.config.dataDir }, 'server started');
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    await this.shutdown();
    this.logger.info('server stopped');
  }

  private async shutdown(): Promise<void> {
    // Stop taking data first (broker), so everything received is committed before the store closes.
    await this.ingest.stop();
    await this.broker.stop();
    await this.live.stop();
    this.http.closeAllConnections();
    if (this.http.listening) await new Promise<void>((resolve) => this.http.close(() => resolve()));
    await this.database.close();
  }
}
