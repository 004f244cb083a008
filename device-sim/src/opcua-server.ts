// A simulated OPC UA instrument (node-opcua): a universal testing machine laid out as a LADS device
// (OPC 30500) is: DeviceSet / <device> / FunctionalUnitSet / <functional unit> / FunctionSet /
// <sensor function> / SensorValue, the SensorValue an AnalogItem with its EngineeringUnits and EURange.
// The values are the instrument's channels (its model, pinned values, frozen by a "stuck" fault); a
// value is written with the time it changed as its source timestamp. Faults: a status on a node
// (`setStatus`), a "disconnect" fault (the server goes away and comes back on the same port: a restart,
// with its sessions lost).
import type { EUInformation } from 'node-opcua-data-access';
import type { OPCUAServer } from 'node-opcua-server';
import type { UAObject, UAVariable } from 'node-opcua-address-space-base';
import type { StatusCode } from 'node-opcua-client';
import { channelOf, LabtraceError, type OpcuaProfile } from '@labtrace/protocols';
import type { InstrumentEndpoint } from './endpoint.js';
import type { SimInstrument } from './sim-instrument.js';
import net from 'node:net';
import path from 'node:path';

export interface OpcuaSimUser {
  username: string;
  password: string;
}

export interface OpcuaServerOptions {
  profile: OpcuaProfile;
  instrument: SimInstrument;
  host: string;
  /** 0 or absent: a free port, kept across restarts */
  port?: number;
  /** the server's PKI (own certificate, trusted client certificates); created at first start */
  pkiDir: string;
  /** true: any client certificate is accepted; false: only those in <pkiDir>/trusted/certs */
  trustAllClients?: boolean;
  /**
   * the PKI of X.509 user certificates (a user signing in with a certificate): only those in
   * <userPkiDir>/trusted/certs are accepted; default <pkiDir>/users
   */
  userPkiDir?: string;
  /** None only, or also Sign and SignAndEncrypt (Basic256Sha256) */
  secure?: boolean;
  allowAnonymous?: boolean;
  users?: OpcuaSimUser[];
  /** functional unit of each channel (default: all in "Frame") */
  functionalUnits?: Record<string, string[]>;
  /** how often the instrument's values are copied into the address space */
  tickMs?: number;
  now?: () => number;
  onError?: (err: Error) => void;
}

/** UNECE Rec. 20 codes of the units a testing lab sees; another unit gets a display name only. */
const UNECE: Readonly<Record<string, [code: string, name: string]>> = {
  N: ['NEW', 'newton'],
  kN: ['B47', 'kilonewton'],
  mm: ['MMT', 'millimetre'],
  m: ['MTR', 'metre'],
  g: ['GRM', 'gram'],
  kg: ['KGM', 'kilogram'],
  '°C': ['CEL', 'degree Celsius'],
  MPa: ['MPA', 'megapascal'],
  s: ['SEC', 'second'],
  '%': ['P1', 'percent'],
};

/** node-opcua, loaded by the first OPC UA server only: a simulator without one never pays for it */
async function loadOpcua() {
  const [server, client, access, certificates] = await Promise.all([
    import('node-opcua-server'),
    import('node-opcua-client'),
    import('node-opcua-data-access'),
    import('node-opcua-certificate-manager'),
  ]);
  return {
    OPCUAServer: server.OPCUAServer,
    DataType: client.DataType,
    MessageSecurityMode: client.MessageSecurityMode,
    SecurityPolicy: client.SecurityPolicy,
    StatusCodes: client.StatusCodes,
    makeEUInformation: access.makeEUInformation,
    OPCUACertificateManager: certificates.OPCUACertificateManager,
  };
}
type Opcua = Awaited<ReturnType<typeof loadOpcua>>;

function engineeringUnits({ makeEUInformation }: Opcua, unit: string): EUInformation | undefined {
  if (unit === '') return undefined;
  const known = UNECE[unit];
  return known ? makeEUInformation(known[0], unit, known[1]) : makeEUInformation('', unit, unit);
}

/** The namespace URI of the simulated device's nodes. */
export const SIM_NAMESPACE = 'urn:labtrace:device-sim';

export class OpcuaServer implements InstrumentEndpoint {
  readonly transport = 'opcua' as const;
  private server: OPCUAServer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private listenPort: number;
  private readonly variables = new Map<string, UAVariable>();
  /** what each node holds, kept across restarts: a restarted device still has its last reading, with its time */
  private readonly last = new Map<string, { value: number; status: StatusCode; ts: Date }>();
  /** status names set by setStatus, by channel */
  private readonly statuses = new Map<string, string>();
  private ua: Opcua | undefined;
  private readonly now: () => number;
  private running = false;
  /** the starting or stopping server, awaited by the next lifecycle call */
  private lifecycle: Promise<void> = Promise.resolve();

  constructor(private readonly options: OpcuaServerOptions) {
    this.listenPort = options.port ?? 0;
    this.now = options.now ?? Date.now;
  }

  get port(): number {
    return this.listenPort;
  }

  get address(): string {
    return this.endpointUrl;
  }

  get endpointUrl(): string {
    return `opc.tcp://${this.options.host}:${this.listenPort}`;
  }

  /** The node id of a channel's SensorValue. */
  nodeIdOf(channel: string): string {
    const v = this.variables.get(channel);
    if (v === undefined) throw new LabtraceError('E_NOT_FOUND', `no channel ${channel} on ${this.options.profile.id}`);
    return v.nodeId.toString();
  }

  /** The value a channel's node holds now (undefined before the server has written it). */
  valueOf(channel: string): number | undefined {
    return this.last.get(channel)?.value;
  }

  /**
   * A status code for a channel's node from now on (a name from the OPC UA status codes, such as
   * BadSensorFailure or UncertainLastUsableValue), or undefined for Good again.
   */
  setStatus(channel: string, status: string | undefined): void {
    if (!this.options.profile.points.some((p) => channelOf(p) === channel)) {
      throw new LabtraceError('E_BAD_REQUEST', `no channel ${channel} on ${this.options.profile.id}`);
    }
    if (status === undefined) this.statuses.delete(channel);
    else {
      if (!/^(Good|Uncertain|Bad)[A-Za-z0-9]*$/.test(status)) throw new LabtraceError('E_BAD_REQUEST', `unknown OPC UA status code ${status}`);
      if (this.ua !== undefined && this.statusCode(this.ua, status) === undefined) {
        throw new LabtraceError('E_BAD_REQUEST', `unknown OPC UA status code ${status}`);
      }
      this.statuses.set(channel, status);
    }
    this.update();
  }

  private statusCode(ua: Opcua, name: string): StatusCode | undefined {
    return (ua.StatusCodes as unknown as Record<string, StatusCode | undefined>)[name];
  }

  async start(): Promise<void> {
    this.running = true;
    await this.lifecycle;
    this.lifecycle = this.open();
    await this.lifecycle;
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.restartTimer);
    await this.lifecycle;
    this.lifecycle = this.close();
    await this.lifecycle;
  }

  /** A restart: the server shuts down now (its sessions and subscriptions are gone) and comes back after `ms`. */
  interrupt(ms: number): void {
    clearTimeout(this.restartTimer);
    const down = this.lifecycle.then(() => this.close());
    this.lifecycle = down;
    this.restartTimer = setTimeout(() => {
      if (!this.running) return;
      this.lifecycle = this.lifecycle.then(() => this.open()).catch((err: unknown) => this.options.onError?.(err as Error));
    }, ms);
  }

  private async open(): Promise<void> {
    if (this.listenPort === 0) this.listenPort = await freePort(this.options.host);
    this.ua ??= await loadOpcua();
    const ua = this.ua;
    const { OPCUACertificateManager, OPCUAServer, MessageSecurityMode, SecurityPolicy, DataType } = ua;
    const { profile } = this.options;
    const certificateManager = new OPCUACertificateManager({
      rootFolder: this.options.pkiDir,
      automaticallyAcceptUnknownCertificate: this.options.trustAllClients ?? false,
      disableFileWatchers: false,
    });
    await certificateManager.initialize();
    // users' certificates are their own trust list, never accepted unknown
    const userCertificateManager = new OPCUACertificateManager({
      rootFolder: this.options.userPkiDir ?? path.join(this.options.pkiDir, 'users'),
      automaticallyAcceptUnknownCertificate: false,
      disableFileWatchers: false,
    });
    await userCertificateManager.initialize();
    const users = this.options.users ?? [];
    const secure = this.options.secure ?? false;
    const server = new OPCUAServer({
      port: this.listenPort,
      hostname: this.options.host,
      host: this.options.host,
      serverCertificateManager: certificateManager,
      userCertificateManager,
      securityModes: secure ? [MessageSecurityMode.None, MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt] : [MessageSecurityMode.None],
      securityPolicies: secure ? [SecurityPolicy.None, SecurityPolicy.Basic256Sha256] : [SecurityPolicy.None],
      allowAnonymous: this.options.allowAnonymous ?? users.length === 0,
      userManager: { isValidUser: (username: string, password: string) => users.some((u) => u.username === username && u.password === password) },
      buildInfo: { productName: `${profile.identity.maker} ${profile.identity.model} (simulated)`, manufacturerName: profile.identity.maker },
      serverInfo: { applicationUri: `urn:labtrace:device-sim:${profile.id}`, productUri: 'urn:labtrace:device-sim' },
      disableDiscovery: true,
    });
    await server.initialize();
    this.build(ua, server);
    await server.start();
    this.server = server;
    for (const [channel, variable] of this.variables) {
      const last = this.last.get(channel);
      if (last !== undefined) variable.setValueFromSource({ dataType: DataType.Double, value: last.value }, last.status, last.ts);
    }
    this.update();
    this.timer = setInterval(() => this.update(), this.options.tickMs ?? 50);
  }

  private async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    const server = this.server;
    this.server = undefined;
    this.variables.clear();
    if (server) await server.shutdown(0);
  }

  private build(ua: Opcua, server: OPCUAServer): void {
    const { DataType } = ua;
    const addressSpace = server.engine.addressSpace;
    if (addressSpace === null) throw new LabtraceError('E_CONFIG', 'OPC UA server has no address space');
    const ns = addressSpace.registerNamespace(SIM_NAMESPACE);
    const { profile } = this.options;
    const deviceSet = ns.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: 'DeviceSet', nodeId: 's=DeviceSet' });
    const device = ns.addObject({ organizedBy: deviceSet, browseName: profile.id, nodeId: `s=${profile.id}` });
    const identity = profile.identity;
    for (const [name, value] of [
      ['Manufacturer', identity.maker],
      ['Model', identity.model],
      ['SerialNumber', identity.serialNumber],
    ] as const) {
      ns.addVariable({ propertyOf: device, browseName: name, dataType: 'String', value: { dataType: DataType.String, value } });
    }
    const unitSet = ns.addObject({ componentOf: device, browseName: 'FunctionalUnitSet', nodeId: `s=${profile.id}.FunctionalUnitSet` });
    const unitOf = new Map<string, string>();
    for (const [unit, channels] of Object.entries(this.options.functionalUnits ?? {})) for (const c of channels) unitOf.set(c, unit);
    const functionSets = new Map<string, UAObject>();
    for (const point of profile.points) {
      const channel = channelOf(point);
      const unitName = unitOf.get(channel) ?? 'Frame';
      let functionSet = functionSets.get(unitName);
      if (functionSet === undefined) {
        const fu = ns.addObject({ organizedBy: unitSet, browseName: unitName, nodeId: `s=${profile.id}.${unitName}` });
        functionSet = ns.addObject({ componentOf: fu, browseName: 'FunctionSet', nodeId: `s=${profile.id}.${unitName}.FunctionSet` });
        functionSets.set(unitName, functionSet);
      }
      const sensor = ns.addObject({ organizedBy: functionSet, browseName: point.name, nodeId: `s=${profile.id}.${unitName}.${point.name}` });
      // a profile that names its node by a string id in this namespace gets exactly that node
      const own = /^ns=\d+;s=(.+)$/.exec(point.nodeId ?? '')?.[1];
      const eu = engineeringUnits(ua, point.unit);
      const variable = ns.addAnalogDataItem({
        componentOf: sensor,
        browseName: 'SensorValue',
        nodeId: `s=${own ?? `${profile.id}.${unitName}.${point.name}.SensorValue`}`,
        dataType: 'Double',
        engineeringUnitsRange: { low: -1e6, high: 1e6 },
        ...(eu === undefined ? {} : { engineeringUnits: eu }),
        // 0: a client may ask for every change (exception-based), not only for periodic samples
        minimumSamplingInterval: 0,
      });
      this.variables.set(channel, variable);
    }
  }

  /** Copies changed values (or statuses) into the address space, stamped with the time of the change. */
  private update(): void {
    const ua = this.ua;
    if (this.server === undefined || ua === undefined) return;
    const { DataType, StatusCodes } = ua;
    const values = this.options.instrument.values();
    const ts = new Date(this.now());
    for (const [channel, variable] of this.variables) {
      const raw = values[channel];
      const value = typeof raw === 'number' ? raw : typeof raw === 'boolean' ? Number(raw) : Number.NaN;
      const name = this.statuses.get(channel);
      const status = (name === undefined ? undefined : this.statusCode(ua, name)) ?? StatusCodes.Good;
      const last = this.last.get(channel);
      if (last !== undefined && Object.is(last.value, value) && last.status === status) continue;
      this.last.set(channel, { value, status, ts });
      variable.setValueFromSource({ dataType: DataType.Double, value }, status, ts);
    }
  }
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}
