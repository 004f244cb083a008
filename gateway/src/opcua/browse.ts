// `labtrace gateway browse opc.tcp://…`: walks a LADS-style device (OPC 30500: DeviceSet / device /
// FunctionalUnitSet / functional unit / FunctionSet / function / variables) and suggests a profile: a
// point per variable that has EngineeringUnits (an AnalogItem), named after its functional unit and
// function, with its NodeId and unit. The suggestion is a start: an operator checks ids and names.
import {
  AttributeIds,
  BrowseDirection,
  MessageSecurityMode,
  NodeClass,
  OPCUAClient,
  SecurityPolicy,
  UserTokenType,
  type ClientSession,
  type NodeIdLike,
  type ReferenceDescription,
} from 'node-opcua-client';
import { stringify } from 'yaml';
import { LabtraceError, opcuaProfileSchema, type OPCUA_SECURITY_MODES, type OpcuaProfileInput } from '@labtrace/protocols';
import { APPLICATION_NAME, gatewayPki } from './pki.js';

export interface BrowseOptions {
  /** the gateway's data directory (its OPC UA certificate and trust list) */
  dataDir: string;
  securityMode?: (typeof OPCUA_SECURITY_MODES)[number];
  username?: string;
  password?: string;
  timeoutMs?: number;
}

export interface BrowsedPoint {
  functionalUnit: string;
  function: string;
  variable: string;
  nodeId: string;
  browsePath: string;
  unit: string;
}

export interface BrowsedDevice {
  name: string;
  identity: { maker: string; model: string; serialNumber: string };
  points: BrowsedPoint[];
}

const ID_CHARS = /[^A-Za-z0-9_.-]+/g;

function idOf(text: string): string {
  const id = text.replace(ID_CHARS, '_').replace(/^[^A-Za-z0-9]+/, '');
  return (id === '' ? 'x' : id).slice(0, 64);
}

async function children(session: ClientSession, nodeId: NodeIdLike, nodeClassMask = 0): Promise<ReferenceDescription[]> {
  const result = await session.browse({
    nodeId,
    browseDirection: BrowseDirection.Forward,
    referenceTypeId: 'HierarchicalReferences',
    includeSubtypes: true,
    nodeClassMask,
    resultMask: 63,
  });
  return result.references ?? [];
}

function qualified(ref: ReferenceDescription): string {
  return `${ref.browseName.namespaceIndex}:${ref.browseName.name ?? ''}`;
}

async function readText(session: ClientSession, nodeId: NodeIdLike): Promise<string | undefined> {
  const dv = await session.read({ nodeId, attributeId: AttributeIds.Value });
  const v: unknown = dv.value.value;
  if (typeof v === 'string') return v;
  if (v !== null && typeof v === 'object' && 'text' in v && typeof v.text === 'string') return v.text;
  return undefined;
}

/** The devices a server holds under DeviceSet (or, without one, any object with a FunctionalUnitSet). */
export async function browseDevices(session: ClientSession): Promise<BrowsedDevice[]> {
  const objects = await children(session, 'ObjectsFolder', NodeClass.Object);
  const deviceSet = objects.find((r) => r.browseName.name === 'DeviceSet');
  const candidates = deviceSet
    ? (await children(session, deviceSet.nodeId, NodeClass.Object)).map((r) => ({ ref: r, path: `/${qualified(deviceSet)}/${qualified(r)}` }))
    : objects.map((r) => ({ ref: r, path: `/${qualified(r)}` }));
  const devices: BrowsedDevice[] = [];
  for (const { ref: device, path: devicePath } of candidates) {
    const parts = await children(session, device.nodeId);
    const unitSet = parts.find((r) => r.browseName.name === 'FunctionalUnitSet');
    if (unitSet === undefined) continue;
    const prop = async (name: string): Promise<string | undefined> => {
      const p = parts.find((r) => r.browseName.name === name);
      return p === undefined ? undefined : readText(session, p.nodeId);
    };
    const name = device.browseName.name ?? 'device';
    const found: BrowsedDevice = {
      name,
      identity: {
        maker: (await prop('Manufacturer')) ?? 'unknown',
        model: (await prop('Model')) ?? name,
        serialNumber: (await prop('SerialNumber')) ?? 'unknown',
      },
      points: [],
    };
    for (const fu of await children(session, unitSet.nodeId, NodeClass.Object)) {
      const functionSet = (await children(session, fu.nodeId, NodeClass.Object)).find((r) => r.browseName.name === 'FunctionSet');
      if (functionSet === undefined) continue;
      for (const fn of await children(session, functionSet.nodeId, NodeClass.Object)) {
        for (const variable of await children(session, fn.nodeId, NodeClass.Variable)) {
          const props = await children(session, variable.nodeId, NodeClass.Variable);
          const eu = props.find((r) => r.browseName.name === 'EngineeringUnits');
          if (eu === undefined) continue;
          const dv = await session.read({ nodeId: eu.nodeId, attributeId: AttributeIds.Value });
          const info = dv.value.value as { displayName?: { text?: string | null } } | null;
          found.points.push({
            functionalUnit: fu.browseName.name ?? '',
            function: fn.browseName.name ?? '',
            variable: variable.browseName.name ?? '',
            nodeId: variable.nodeId.toString(),
            browsePath: [devicePath, qualified(unitSet), qualified(fu), qualified(functionSet), qualified(fn), qualified(variable)].join('/'),
            unit: info?.displayName?.text ?? '',
          });
        }
      }
    }
    devices.push(found);
  }
  return devices;
}

/** A profile suggestion for one browsed device (it validates against the profile schema). */
export function suggestProfile(device: BrowsedDevice, endpointUrl: string, securityMode: BrowseOptions['securityMode'] = 'None'): OpcuaProfileInput {
  const used = new Set<string>();
  const points = device.points.map((p) => {
    let name = idOf(p.variable === 'SensorValue' ? p.function : `${p.function}_${p.variable}`);
    if (used.has(name)) name = idOf(`${p.functionalUnit}_${name}`);
    for (let n = 2; used.has(name); n++) name = idOf(`${p.functionalUnit}_${p.function}_${n}`);
    used.add(name);
    return { name, nodeId: p.nodeId, unit: p.unit.slice(0, 32) };
  });
  const profile: OpcuaProfileInput = {
    protocol: 'opcua',
    id: idOf(device.name),
    identity: device.identity,
    connection: { transport: 'opcua', endpointUrl, securityMode },
    subscription: { publishingIntervalMs: 1000, samplingIntervalMs: 1000, queueSize: 10 },
    points,
  };
  opcuaProfileSchema.parse(profile);
  return profile;
}

/** The suggestion as YAML, each point preceded by a comment with its functional unit, function and browse path. */
export function suggestionText(device: BrowsedDevice, profile: OpcuaProfileInput): string {
  const header = [
    `# ${device.name}: a profile suggested by browsing ${profile.connection.endpointUrl}`,
    '# check the id, the point names and the units; set securityMode and auth before use',
    ...device.points.map(
      (p, i) => `#   ${profile.points[i]?.name ?? ''}: ${p.functionalUnit} / ${p.function} / ${p.variable} [${p.unit}] at ${p.browsePath}`,
    ),
  ];
  return `${header.join('\n')}\n${stringify(profile)}`;
}

/** Connects, browses, and returns the suggested profile of each device found. */
export async function browseEndpoint(
  endpointUrl: string,
  options: BrowseOptions,
): Promise<{ device: BrowsedDevice; profile: OpcuaProfileInput; text: string }[]> {
  const pki = await gatewayPki(options.dataDir);
  const securityMode = options.securityMode ?? 'None';
  const client = OPCUAClient.create({
    applicationName: APPLICATION_NAME,
    applicationUri: pki.applicationUri,
    clientCertificateManager: pki.manager,
    certificateFile: pki.certificateFile,
    privateKeyFile: pki.privateKeyFile,
    securityMode: MessageSecurityMode[securityMode],
    securityPolicy: securityMode === 'None' ? SecurityPolicy.None : SecurityPolicy.Basic256Sha256,
    endpointMustExist: false,
    transportTimeout: options.timeoutMs ?? 10_000,
    connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 1000 },
  });
  try {
    await client.connect(endpointUrl);
  } catch (err) {
    throw new LabtraceError('E_CONFIG', `${endpointUrl}: cannot connect: ${(err as Error).message.split('\n')[0] ?? ''}`, { cause: err });
  }
  try {
    const session = await client.createSession(
      options.username === undefined
        ? { type: UserTokenType.Anonymous }
        : { type: UserTokenType.UserName, userName: options.username, password: options.password ?? '' },
    );
    try {
      const devices = await browseDevices(session);
      if (devices.length === 0) throw new LabtraceError('E_NOT_FOUND', `${endpointUrl}: no device with a FunctionalUnitSet found under Objects`);
      return devices.map((device) => {
        const profile = suggestProfile(device, endpointUrl, securityMode);
        return { device, profile, text: suggestionText(device, profile) };
      });
    } finally {
      await session.close();
    }
  } finally {
    await client.disconnect();
  }
}
