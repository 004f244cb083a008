// The device simulator: serves every configured instrument and advances their signals on a tick.
// Modbus TCP instruments get a server each; RTU instruments on one serial device share one bus (and
// RTU-over-TCP instruments on one fixed port share one server); MQTT instruments publish to a broker.
import { LabtraceError } from '@labtrace/protocols';
import { BalanceServer } from './balance-server.js';
import { ScpiServer } from './scpi-server.js';
import { ControlApi } from './control-api.js';
import type { ResolvedSimInstrument, SimConfig } from './config.js';
import type { InstrumentEndpoint } from './endpoint.js';
import type { Logger } from './log.js';
import { ModbusRtuSerialServer } from './modbus-rtu-serial-server.js';
import { ModbusRtuTcpServer } from './modbus-rtu-tcp-server.js';
import { ModbusTcpServer } from './modbus-tcp-server.js';
import { MqttPublisher } from './mqtt-publisher.js';
import { OpcuaServer } from './opcua-server.js';
import os from 'node:os';
import path from 'node:path';
import { SimInstrument } from './sim-instrument.js';

export interface SimulatorOptions {
  config: Pick<SimConfig, 'host' | 'tickMs' | 'control'>;
  instruments: ResolvedSimInstrument[];
  logger?: Logger;
  now?: () => number;
}

/** MQTT instruments publish every this many ticks unless their entry says otherwise. */
export const DEFAULT_PUBLISH_TICKS = 10;

export class Simulator {
  readonly instruments = new Map<string, SimInstrument>();
  /** every endpoint once, in the order the instruments came */
  readonly endpoints: InstrumentEndpoint[] = [];
  readonly control: ControlApi | undefined;
  private readonly publishers: MqttPublisher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly options: SimulatorOptions) {
    this.now = options.now ?? Date.now;
    const start = this.now();
    const serialBuses = new Map<string, ModbusRtuSerialServer>();
    const rtuTcpServers = new Map<number, ModbusRtuTcpServer>();
    for (const entry of options.instruments) {
      if (this.instruments.has(entry.profile.id)) throw new LabtraceError('E_CONFIG', `instrument "${entry.profile.id}" is configured twice`);
      const instrument = new SimInstrument(entry.profile, entry.model, start, entry.seed, this.now);
      if (entry.pin !== undefined) {
        const unknown = instrument.pin(entry.pin, start);
        if (unknown.length > 0) throw new LabtraceError('E_CONFIG', `instrument "${entry.profile.id}": pin: no channel(s) ${unknown.join(', ')}`);
      }
      instrument.attach(this.endpointFor(entry, instrument, serialBuses, rtuTcpServers));
      this.instruments.set(instrument.id, instrument);
    }
    const control = options.config.control;
    this.control = control ? new ControlApi(this.instruments, control.host, control.port, this.now) : undefined;
  }

  async start(): Promise<void> {
    const started: InstrumentEndpoint[] = [];
    try {
      for (const endpoint of this.endpoints) {
        await endpoint.start();
        started.push(endpoint);
      }
      await this.control?.start();
    } catch (err) {
      await Promise.all(started.map((e) => e.stop()));
      throw err;
    }
    for (const instrument of this.instruments.values()) {
      const { transport, address } = instrument.server;
      this.options.logger?.info({ instrument: instrument.id, model: instrument.modelKind, transport, address }, 'instrument serving');
    }
    if (this.control) this.options.logger?.info({ port: this.control.port }, 'control API listening');
    this.timer = setInterval(() => this.tick(), this.options.config.tickMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.control?.stop();
    await Promise.all(this.endpoints.map((e) => e.stop()));
  }

  private tick(): void {
    const now = this.now();
    for (const instrument of this.instruments.values()) instrument.tick(now);
    for (const publisher of this.publishers) publisher.tick(now);
  }

  private endpointFor(
    entry: ResolvedSimInstrument,
    instrument: SimInstrument,
    serialBuses: Map<string, ModbusRtuSerialServer>,
    rtuTcpServers: Map<number, ModbusRtuTcpServer>,
  ): InstrumentEndpoint {
    const { host, tickMs } = this.options.config;
    const logger = this.options.logger;
    const onClientError = (err: Error): void => logger?.debug({ instrument: instrument.id, err: err.message }, 'client connection error');
    const profile = entry.profile;
    if (profile.protocol === 'mqtt') {
      const publisher = new MqttPublisher({
        profile,
        intervalMs: entry.publishIntervalMs ?? DEFAULT_PUBLISH_TICKS * tickMs,
        now: this.now,
        ...(entry.url === undefined ? {} : { url: entry.url }),
        ...(logger === undefined ? {} : { logger }),
      });
      publisher.attach(instrument);
      this.publishers.push(publisher);
      return this.add(publisher);
    }
    if (profile.protocol === 'opcua') {
      const port = entry.port ?? (Number(/:(\d+)/.exec(profile.connection.endpointUrl.replace(/^opc\.tcp:\/\//, ''))?.[1] ?? 4840) || 4840);
      return this.add(
        new OpcuaServer({
          profile,
          instrument,
          host,
          port,
          now: this.now,
          pkiDir: entry.opcua?.pkiDir ?? path.join(os.tmpdir(), `labtrace-sim-opcua-${profile.id}`),
          ...entry.opcua,
          onError: (err) => logger?.warn({ instrument: instrument.id, err: err.message }, 'OPC UA server error'),
        }),
      );
    }
    if (profile.protocol === 'balance') {
      return this.add(
        new BalanceServer({
          profile,
          instrument,
          host,
          now: this.now,
          ...(entry.port === undefined ? {} : { port: entry.port }),
          ...(entry.path === undefined ? {} : { path: entry.path }),
          onError: (err) => logger?.debug({ instrument: instrument.id, err: err.message }, 'balance line error'),
        }),
      );
    }
    if (profile.protocol === 'line') {
      throw new LabtraceError(
        'E_CONFIG',
        `${instrument.id}: the simulator serves no generic line instrument (protocol line); simulate a balance instead`,
      );
    }
    if (profile.protocol === 'scpi') {
      return this.add(
        new ScpiServer({
          profile,
          instrument,
          host,
          now: this.now,
          ...(entry.port === undefined ? {} : { port: entry.port }),
          onError: onClientError,
        }),
      );
    }
    if (profile.protocol === 'file') throw new LabtraceError('E_CONFIG', `instrument ${instrument.id} reads result files: it has no endpoint`);
    const unit = instrument.unit;
    if (unit === undefined) throw new LabtraceError('E_CONFIG', `instrument ${instrument.id} has no Modbus unit`);
    const connection = profile.connection;
    switch (connection.transport) {
      case 'tcp': {
        const server = new ModbusTcpServer({ host, port: entry.port ?? connection.port, onClientError, now: this.now });
        server.addUnit(unit);
        return this.add(server);
      }
      case 'rtu-over-tcp': {
        const port = entry.port ?? connection.port;
        let server = port === 0 ? undefined : rtuTcpServers.get(port);
        if (server === undefined) {
          server = this.add(new ModbusRtuTcpServer({ host, port, onClientError, now: this.now }));
          if (port !== 0) rtuTcpServers.set(port, server);
        }
        server.addUnit(unit);
        return server;
      }
      case 'rtu': {
        const path = entry.path ?? connection.path;
        const { baudRate, parity, dataBits, stopBits } = connection;
        let bus = serialBuses.get(path);
        if (bus === undefined) {
          bus = this.add(
            new ModbusRtuSerialServer({
              path,
              baudRate,
              parity,
              dataBits,
              stopBits,
              now: this.now,
              onError: (err) => logger?.warn({ path, err: err.message }, 'serial line error'),
            }),
          );
          serialBuses.set(path, bus);
        } else {
          const f = bus.format;
          if (f.baudRate !== baudRate || f.parity !== parity || f.dataBits !== dataBits || f.stopBits !== stopBits) {
            throw new LabtraceError(
              'E_CONFIG',
              `${instrument.id}: serial line ${path} runs at ${f.baudRate} ${f.dataBits}${f.parity[0]?.toUpperCase() ?? ''}${f.stopBits} for unit(s) ` +
                `${bus.unitIds().join(', ')}; this profile asks for ${baudRate} ${dataBits}${parity[0]?.toUpperCase() ?? ''}${stopBits}`,
            );
          }
        }
        bus.addUnit(unit);
        return bus;
      }
    }
  }

  private add<E extends InstrumentEndpoint>(endpoint: E): E {
    this.endpoints.push(endpoint);
    return endpoint;
  }
}
