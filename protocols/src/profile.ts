// The device profile: one instrument, how to reach it and how to read its points.
// The gateway polls by it and the simulator serves by it, so both always agree.
import { z } from 'zod';
import { jsonPathProblem } from './json-path.js';
import { BYTE_ORDERS, REGISTER_TYPES, registerCount, type RegisterFormat } from './modbus/codec.js';

const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'expected 1-64 letters, digits, "_", "." or "-", starting with a letter or digit');

export const identitySchema = z.strictObject({
  maker: z.string().min(1),
  model: z.string().min(1),
  serialNumber: z.string().min(1),
  firmware: z.string().min(1).optional(),
  kind: z.string().min(1).optional(),
  /** where the instrument stands (ISO/IEC 17025 6.4.13): a room, a bench */
  location: z.string().min(1).max(200).optional(),
});

const hostPort = { host: z.string().min(1), port: z.number().int().min(1).max(65535) };

export const tcpConnectionSchema = z.strictObject({ transport: z.literal('tcp'), ...hostPort });
/** RTU frames (with CRC) carried over a TCP socket, as serial device servers do */
export const rtuOverTcpConnectionSchema = z.strictObject({ transport: z.literal('rtu-over-tcp'), ...hostPort });
export const rtuConnectionSchema = z.strictObject({
  transport: z.literal('rtu'),
  /** serial device, for example /dev/ttyUSB0 */
  path: z.string().min(1),
  baudRate: z.number().int().min(300).max(1_000_000).default(9600),
  parity: z.enum(['none', 'even', 'odd']).default('even'),
  dataBits: z.union([z.literal(7), z.literal(8)]).default(8),
  stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
});

export const connectionSchema = z.discriminatedUnion('transport', [tcpConnectionSchema, rtuConnectionSchema, rtuOverTcpConnectionSchema]);

export const mqttConnectionSchema = z.strictObject({
  transport: z.literal('mqtt'),
  url: z.string().regex(/^(mqtts?|wss?|tcp|tls):\/\/.+/, 'expected a URL such as mqtt://127.0.0.1:1883'),
  username: z.string().min(1).optional(),
  /** file holding the broker password, relative to the profile */
  passwordFile: z.string().min(1).optional(),
  clientId: z.string().min(1).max(64).optional(),
});

export const limitsSchema = z.strictObject({
  /** most registers one read may ask for (the protocol allows 125) */
  maxRegisters: z.number().int().min(1).max(125).default(125),
  /** most coils or discrete inputs one read may ask for (the protocol allows 2000) */
  maxBits: z.number().int().min(1).max(2000).default(2000),
  /** most unused registers (or bits) a read may span to join two ranges */
  maxGap: z.number().int().min(0).max(124).default(16),
  /** pause between two requests on the same connection */
  pacingMs: z.number().int().min(0).max(10_000).default(0),
});

const reportingObject = z.strictObject({
  /** periodic: every poll; change: when the value moves by more than the deadband; both: on change, and at least every periodMs */
  mode: z.enum(['periodic', 'change', 'both']).default('periodic'),
  deadband: z.number().min(0).default(0),
  periodMs: z.number().int().min(10).max(86_400_000).default(60_000),
});

export const reportingSchema = reportingObject.default({ mode: 'periodic', deadband: 0, periodMs: 60_000 });

export const pointSchema = z
  .strictObject({
    name: id,
    channel: id.optional(),
    register: z.enum(['coil', 'discrete', 'holding', 'input']),
    address: z.number().int().min(0).max(65535),
    type: z.enum(['bool', ...REGISTER_TYPES]).default('uint16'),
    order: z.enum(BYTE_ORDERS).optional(),
    bit: z.number().int().min(0).max(15).optional(),
    length: z.number().int().min(1).max(125).optional(),
    scale: z.number().finite().default(1),
    offset: z.number().finite().default(0),
    unit: z.string().max(32).default(''),
    decimals: z.number().int().min(0).max(12).optional(),
    /** overrides the profile's reporting for this point (zod applies inner defaults, so no outer default here) */
    reporting: reportingObject.optional(),
  })
  .superRefine((p, ctx) => {
    const bitRegister = p.register === 'coil' || p.register === 'discrete';
    if (bitRegister && p.type !== 'bool') {
      ctx.addIssue({ code: 'custom', path: ['type'], message: `a ${p.register} holds one bit: type must be "bool"` });
    }
    if (!bitRegister && p.type === 'bool') {
      ctx.addIssue({ code: 'custom', path: ['type'], message: 'type "bool" needs register "coil" or "discrete"; use "bit" for a bit of a register' });
    }
    if (p.type === 'bit' && p.bit === undefined) ctx.addIssue({ code: 'custom', path: ['bit'], message: 'type "bit" needs "bit" (0-15)' });
    if (p.type === 'string' && p.length === undefined) {
      ctx.addIssue({ code: 'custom', path: ['length'], message: 'type "string" needs "length" in registers' });
    }
    if (p.order !== undefined && p.type !== 'bool') {
      const bytes = p.type === 'string' || p.type.includes('8') || p.type === 'bit' ? 2 : registerCount({ type: p.type }) * 2;
      const ok = p.order.length === bytes || (bytes === 8 && p.order.length === 4) || (bytes === 2 && p.type === 'string');
      if (!ok) ctx.addIssue({ code: 'custom', path: ['order'], message: `order ${p.order} does not fit a ${bytes * 8}-bit ${p.type}` });
    }
  });

function checkChannels(points: { name: string; channel?: string | undefined }[], ctx: z.RefinementCtx): void {
  const seen = new Map<string, number>();
  points.forEach((p, i) => {
    const channel = p.channel ?? p.name;
    const first = seen.get(channel);
    if (first !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['points', i, 'name'], message: `channel "${channel}" is already used by points[${first}]` });
    } else seen.set(channel, i);
  });
}

export const modbusProfileSchema = z
  .strictObject({
    protocol: z.literal('modbus'),
    id,
    identity: identitySchema,
    connection: connectionSchema,
    unitId: z.number().int().min(0).max(255).default(1),
    addressBase: z.union([z.literal(0), z.literal(1)]).default(0),
    pollIntervalMs: z.number().int().min(10).max(3_600_000).default(1000),
    timeoutMs: z.number().int().min(10).max(60_000).default(1000),
    /** retries of a request that timed out or got exception 6 (busy), with jittered back-off */
    retries: z.number().int().min(0).max(10).default(1),
    limits: limitsSchema.default({ maxRegisters: 125, maxBits: 2000, maxGap: 16, pacingMs: 0 }),
    reporting: reportingSchema,
    points: z.array(pointSchema).min(1),
  })
  .superRefine((profile, ctx) => {
    checkChannels(profile.points, ctx);
    profile.points.forEach((p, i) => {
      if (p.address < profile.addressBase) {
        ctx.addIssue({
          code: 'custom',
          path: ['points', i, 'address'],
          message: `address ${p.address} is below the address base ${profile.addressBase}`,
        });
      }
      if (p.address - profile.addressBase + pointWidth(p) > 0x10000) {
        ctx.addIssue({ code: 'custom', path: ['points', i, 'address'], message: `point runs past register 65535` });
      }
    });
  });

function checkPath(path: string, ctx: z.RefinementCtx): void {
  const problem = jsonPathProblem(path);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
}

export const mqttPointSchema = z.strictObject({
  name: id,
  channel: id.optional(),
  /** topic the instrument publishes on (no wildcards) */
  topic: z
    .string()
    .min(1)
    .max(256)
    .refine((t) => !t.includes('+') && !t.includes('#'), 'a point topic cannot hold wildcards'),
  /** where the value is in a JSON payload, as a dotted path ("data.force" or "readings[0].v"); absent: the payload is a plain number */
  jsonPath: z
    .string()
    .min(1)
    .max(200)
    .superRefine((p, ctx) => checkPath(p, ctx))
    .optional(),
  /** where the instrument's own timestamp is (ms since epoch, or an ISO 8601 string); absent: arrival time */
  timestampPath: z
    .string()
    .min(1)
    .max(200)
    .superRefine((p, ctx) => checkPath(p, ctx))
    .optional(),
  scale: z.number().finite().default(1),
  offset: z.number().finite().default(0),
  unit: z.string().max(32).default(''),
});

export const mqttProfileSchema = z
  .strictObject({
    protocol: z.literal('mqtt'),
    id,
    identity: identitySchema,
    connection: mqttConnectionSchema,
    /** a point that has not published for this long is reported uncertain ("stale") */
    staleAfterMs: z.number().int().min(100).max(86_400_000).default(30_000),
    reporting: reportingSchema,
    points: z.array(mqttPointSchema).min(1),
  })
  .superRefine((profile, ctx) => checkChannels(profile.points, ctx));

// A balance speaking a line protocol (MT-SICS or Sartorius SBI) over a serial line or a serial device server.
export const serialLineConnectionSchema = z.strictObject({
  transport: z.literal('serial'),
  /** serial device, for example /dev/ttyUSB0 */
  path: z.string().min(1),
  baudRate: z.number().int().min(300).max(1_000_000).default(9600),
  dataBits: z.union([z.literal(7), z.literal(8)]).default(8),
  parity: z.enum(['none', 'even', 'odd']).default('none'),
  stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
});
/** raw TCP to a serial device server (the line's bytes, nothing added) */
export const lineTcpConnectionSchema = z.strictObject({ transport: z.literal('tcp'), ...hostPort });
export const lineConnectionSchema = z.discriminatedUnion('transport', [serialLineConnectionSchema, lineTcpConnectionSchema]);

export const balancePointSchema = z.strictObject({
  name: id,
  channel: id.optional(),
  /** the unit the balance must print (g, kg, mg, ct...): a weight in another unit is stored bad, never converted */
  unit: z.string().min(1).max(8),
});

export const BALANCE_COMMANDS = ['zero', 'tare'] as const;

export const balanceProfileSchema = z.strictObject({
  protocol: z.literal('balance'),
  id,
  identity: identitySchema,
  dialect: z.enum(['mt-sics', 'sbi']),
  connection: lineConnectionSchema,
  /** poll: ask for the weight (MT-SICS `SI`, SBI `ESC P`) every interval; unsolicited: read what the balance prints */
  mode: z.enum(['poll', 'unsolicited']).default('poll'),
  pollIntervalMs: z.number().int().min(50).max(3_600_000).default(1000),
  /** how long a poll waits for its reply */
  timeoutMs: z.number().int().min(10).max(60_000).default(1000),
  /** commands that change the balance (zero, tare): none unless listed */
  allowCommands: z
    .array(z.enum(BALANCE_COMMANDS))
    .max(0, 'sending zero or tare to a balance is not available yet: leave allowCommands empty')
    .default([]),
  reporting: reportingSchema,
  /** the one weight a balance gives */
  points: z.array(balancePointSchema).length(1, 'a balance gives one weight: exactly one point'),
});

// An OPC UA server (a testing machine, a LADS device): one session, one subscription, a monitored item per point.
export const OPCUA_SECURITY_MODES = ['None', 'Sign', 'SignAndEncrypt'] as const;
/** the OPC UA security policies node-opcua speaks, by their URI's last part */
export const OPCUA_SECURITY_POLICIES = [
  'None',
  'Basic256Sha256',
  'Aes128_Sha256_RsaOaep',
  'Aes256_Sha256_RsaPss',
  'Basic256',
  'Basic128Rsa15',
] as const;

export const opcuaAuthSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('anonymous') }),
  /** the password is read from a file (relative to the profile), never written in the profile nor logged */
  z.strictObject({ kind: z.literal('username'), username: z.string().min(1).max(256), passwordFile: z.string().min(1) }),
  /** an X.509 user certificate and its private key (PEM files, relative to the profile) */
  z.strictObject({ kind: z.literal('certificate'), certificateFile: z.string().min(1), privateKeyFile: z.string().min(1) }),
]);

export const opcuaConnectionSchema = z
  .strictObject({
    transport: z.literal('opcua'),
    endpointUrl: z.string().regex(/^opc\.tcp:\/\/[^\s/]+/, 'expected an endpoint URL such as opc.tcp://192.168.1.20:4840'),
    securityMode: z.enum(OPCUA_SECURITY_MODES).default('None'),
    /** default: None with security mode None, Basic256Sha256 otherwise */
    securityPolicy: z.enum(OPCUA_SECURITY_POLICIES).optional(),
    auth: opcuaAuthSchema.default({ kind: 'anonymous' }),
    /** how long one connection attempt (and one service call) may take */
    timeoutMs: z.number().int().min(100).max(120_000).default(10_000),
  })
  .superRefine((c, ctx) => {
    const policy = c.securityPolicy;
    if (c.securityMode === 'None' && policy !== undefined && policy !== 'None') {
      ctx.addIssue({ code: 'custom', path: ['securityPolicy'], message: `security mode None takes no security policy (got ${policy})` });
    }
    if (c.securityMode !== 'None' && policy === 'None') {
      ctx.addIssue({ code: 'custom', path: ['securityPolicy'], message: `security mode ${c.securityMode} needs a security policy other than None` });
    }
  })
  .transform((c) => ({ ...c, securityPolicy: c.securityPolicy ?? (c.securityMode === 'None' ? ('None' as const) : ('Basic256Sha256' as const)) }));

export const opcuaDeadbandSchema = z.strictObject({
  /** absolute: in the value's unit; percent: of the item's EURange (the server must know it) */
  type: z.enum(['absolute', 'percent']),
  value: z.number().min(0),
});

export const opcuaPointSchema = z
  .strictObject({
    name: id,
    channel: id.optional(),
    /** the node, as ns=2;s=UTM.Force or ns=2;i=1001 */
    nodeId: z
      .string()
      .regex(/^(ns=\d+;)?[isgb]=.+$/, 'expected a NodeId such as ns=2;s=Machine.Force or ns=2;i=1001')
      .optional(),
    /** or a browse path from the Objects folder, as /2:DeviceSet/2:UTM/2:FunctionalUnitSet/2:Frame/2:FunctionSet/2:Force/2:SensorValue */
    browsePath: z
      .string()
      .regex(/^(\/(\d+:)?[^/]+)+$/, 'expected a browse path such as /2:DeviceSet/2:Machine/2:Force')
      .optional(),
    unit: z.string().max(32).default(''),
    /** how often the server samples the node; default: the subscription's */
    samplingIntervalMs: z.number().min(0).max(3_600_000).optional(),
    /** how many changes the server keeps between two publishes; default: the subscription's */
    queueSize: z.number().int().min(1).max(10_000).optional(),
    deadband: opcuaDeadbandSchema.optional(),
  })
  .superRefine((p, ctx) => {
    if ((p.nodeId === undefined) === (p.browsePath === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['nodeId'], message: 'give exactly one of nodeId and browsePath' });
    }
    if (p.deadband?.type === 'percent' && p.deadband.value > 100) {
      ctx.addIssue({ code: 'custom', path: ['deadband', 'value'], message: 'a percent deadband is 0-100' });
    }
  });

export const opcuaSubscriptionSchema = z.strictObject({
  publishingIntervalMs: z.number().int().min(10).max(3_600_000).default(1000),
  samplingIntervalMs: z.number().min(0).max(3_600_000).default(1000),
  queueSize: z.number().int().min(1).max(10_000).default(10),
});

export const opcuaProfileSchema = z
  .strictObject({
    protocol: z.literal('opcua'),
    id,
    identity: identitySchema,
    connection: opcuaConnectionSchema,
    subscription: opcuaSubscriptionSchema.default({ publishingIntervalMs: 1000, samplingIntervalMs: 1000, queueSize: 10 }),
    points: z.array(opcuaPointSchema).min(1).max(50_000),
  })
  .superRefine((profile, ctx) => checkChannels(profile.points, ctx));

/** A device profile; `protocol` defaults to modbus, or to mqtt when the connection's transport is mqtt. */
export const deviceProfileSchema = z.preprocess(
  (input) => {
    if (typeof input !== 'object' || input === null || Array.isArray(input) || 'protocol' in input) return input;
    const connection = (input as { connection?: unknown }).connection;
    const transport = typeof connection === 'object' && connection !== null ? (connection as { transport?: unknown }).transport : undefined;
    return { protocol: transport === 'mqtt' ? 'mqtt' : 'modbus', ...input };
  },
  z.discriminatedUnion('protocol', [modbusProfileSchema, mqttProfileSchema, balanceProfileSchema, opcuaProfileSchema]),
);

/** What a profile file holds, before defaults (`protocol` may be left out). */
export type ModbusProfileInput = Omit<z.input<typeof modbusProfileSchema>, 'protocol'> & { protocol?: 'modbus' };
export type MqttProfileInput = Omit<z.input<typeof mqttProfileSchema>, 'protocol'> & { protocol?: 'mqtt' };
export type BalanceProfileInput = z.input<typeof balanceProfileSchema>;
export type OpcuaProfileInput = z.input<typeof opcuaProfileSchema>;
export type DeviceProfileInput = ModbusProfileInput | MqttProfileInput | BalanceProfileInput | OpcuaProfileInput;
export type DeviceProfile = z.output<typeof deviceProfileSchema>;
export type ModbusProfile = z.output<typeof modbusProfileSchema>;
export type MqttProfile = z.output<typeof mqttProfileSchema>;
export type BalanceProfile = z.output<typeof balanceProfileSchema>;
export type OpcuaProfile = z.output<typeof opcuaProfileSchema>;
export type OpcuaPoint = z.output<typeof opcuaPointSchema>;
export type LineConnection = z.output<typeof lineConnectionSchema>;
export type ProfilePoint = z.output<typeof pointSchema>;
export type MqttPoint = z.output<typeof mqttPointSchema>;
export type Connection = z.output<typeof connectionSchema>;
export type MqttConnection = z.output<typeof mqttConnectionSchema>;
export type Reporting = z.output<typeof reportingSchema>;
export type ModbusLimits = z.output<typeof limitsSchema>;
export type InstrumentIdentity = z.output<typeof identitySchema>;

export const idSchema = id;

export function channelOf(point: { name: string; channel?: string | undefined }): string {
  return point.channel ?? point.name;
}

/** Zero-based protocol address of a point. */
export function protocolAddress(profile: ModbusProfile, point: ProfilePoint): number {
  return point.address - profile.addressBase;
}

/** The register format of a point read from registers; undefined for a coil or discrete input. */
export function formatOf(point: ProfilePoint): RegisterFormat | undefined {
  if (point.type === 'bool') return undefined;
  return { type: point.type, order: point.order, bit: point.bit, length: point.length };
}

/** How many registers (or bits, for a coil or discrete input) a point occupies. */
export function pointWidth(point: ProfilePoint): number {
  const format = formatOf(point);
  return format === undefined ? 1 : registerCount(format);
}

export function parseBalanceProfile(input: Omit<BalanceProfileInput, 'protocol'>): BalanceProfile {
  return balanceProfileSchema.parse({ ...input, protocol: 'balance' });
}

export function parseOpcuaProfile(input: Omit<OpcuaProfileInput, 'protocol'>): OpcuaProfile {
  return opcuaProfileSchema.parse({ ...input, protocol: 'opcua' });
}

export function parseModbusProfile(input: ModbusProfileInput): ModbusProfile {
  return modbusProfileSchema.parse({ ...input, protocol: 'modbus' });
}
