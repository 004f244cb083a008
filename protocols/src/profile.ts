// The device profile: one instrument, how to reach it and how to read its points.
// The gateway polls by it and the simulator serves by it, so both always agree.
import { z } from 'zod';
import { jsonPathProblem } from './json-path.js';
import { linePatternGroups } from './line/generic.js';
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
export type BalanceCommand = (typeof BALANCE_COMMANDS)[number];

export const balanceProfileSchema = z
  .strictObject({
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
    /** commands that change the balance (zero, tare): none unless listed; each one sent is a signed record */
    allowCommands: z
      .array(z.enum(BALANCE_COMMANDS))
      .refine((c) => new Set(c).size === c.length, 'a command is listed twice')
      .default([]),
    reporting: reportingSchema,
    /** the one weight a balance gives */
    points: z.array(balancePointSchema).length(1, 'a balance gives one weight: exactly one point'),
  })
  .superRefine((profile, ctx) => {
    if (profile.allowCommands.length === 0) return;
    if (profile.dialect !== 'mt-sics') {
      ctx.addIssue({
        code: 'custom',
        path: ['allowCommands'],
        message: 'zero and tare are sent to MT-SICS balances only: leave allowCommands empty for SBI',
      });
    } else if (profile.mode !== 'poll') {
      ctx.addIssue({ code: 'custom', path: ['allowCommands'], message: 'zero and tare are sent between two polls: they need mode poll' });
    }
  });

// The long tail of line instruments (pH meters, thermometers, balances of other makers, counters): each line
// the instrument sends is read by a pattern with named groups, each group a point. See line/generic.ts.
export const linePointSchema = z.strictObject({
  name: id,
  channel: id.optional(),
  /** the named group of the pattern that holds this point's number */
  group: z.string().regex(/^[A-Za-z_$][A-Za-z0-9_$]{0,63}$/, 'expected the name of a group in the pattern'),
  unit: z.string().max(32).default(''),
  /** the instrument prints a decimal comma (23,4) */
  decimalComma: z.boolean().default(false),
  scale: z.number().finite().default(1),
  offset: z.number().finite().default(0),
});

export const lineProfileSchema = z
  .strictObject({
    protocol: z.literal('line'),
    id,
    identity: identitySchema,
    connection: lineConnectionSchema,
    /** what is sent to ask for a reading (with its line end, for example "READ\r\n"); absent: the instrument prints on its own */
    request: z.string().min(1).max(200).optional(),
    /** a JavaScript regular expression a line must match (whole line, line end cut off), with one named group per point */
    pattern: z.string().min(1).max(1000),
    pollIntervalMs: z.number().int().min(50).max(3_600_000).default(1000),
    /** how long a request waits for its reply */
    timeoutMs: z.number().int().min(10).max(60_000).default(1000),
    reporting: reportingSchema,
    points: z.array(linePointSchema).min(1).max(64),
  })
  .superRefine((profile, ctx) => {
    checkChannels(profile.points, ctx);
    const groups = linePatternGroups(profile.pattern);
    if (typeof groups === 'string') {
      ctx.addIssue({ code: 'custom', path: ['pattern'], message: groups });
      return;
    }
    const mapped = new Set<string>();
    profile.points.forEach((p, i) => {
      mapped.add(p.group);
      if (!groups.includes(p.group)) {
        ctx.addIssue({
          code: 'custom',
          path: ['points', i, 'group'],
          message: `the pattern has no group "${p.group}" (its named groups: ${groups.length === 0 ? 'none' : groups.join(', ')})`,
        });
      }
    });
    const unmapped = groups.filter((g) => !mapped.has(g));
    if (unmapped.length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['pattern'],
        message: `named group(s) ${unmapped.join(', ')} are mapped to no point: give each a point, or write (?:...) for a group that is not a value`,
      });
    }
  });

// An instrument speaking SCPI over a raw TCP socket (port 5025): multimeters, calibrators, power supplies, counters.
/** one SCPI query: printable ASCII ending in "?", one query per point (no ";") */
const scpiQuery = z
  .string()
  .min(2)
  .max(200)
  .regex(/^[\x20-\x7e]+$/, 'expected printable ASCII without line ends')
  .refine((q) => !q.includes(';'), 'one query per point: no ";"')
  .refine((q) => q.trim().endsWith('?'), 'a query ends with "?" (commands that change the instrument are not sent)');

export const scpiConnectionSchema = z.strictObject({
  transport: z.literal('tcp'),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(5025),
});

/** What `*IDN?` must answer (IEEE 488.2: manufacturer, model, serial number, firmware), compared without regard to case. */
export const scpiIdnSchema = z.strictObject({
  manufacturer: z.string().min(1).max(100),
  model: z.string().min(1).max(100),
  /** also check the serial number: a swapped instrument of the same model is refused */
  serialNumber: z.string().min(1).max(100).optional(),
});

export const scpiPointSchema = z.strictObject({
  name: id,
  channel: id.optional(),
  /** the query that returns this point's value, for example MEAS:VOLT:DC? */
  query: scpiQuery,
  unit: z.string().max(32).default(''),
  /** how long this query may take (a slow measurement); default: the profile's timeoutMs */
  timeoutMs: z.number().int().min(10).max(600_000).optional(),
});

export const scpiProfileSchema = z
  .strictObject({
    protocol: z.literal('scpi'),
    id,
    identity: identitySchema,
    connection: scpiConnectionSchema,
    /** checked against `*IDN?` at every connect: a mismatch is not read */
    idn: scpiIdnSchema,
    pollIntervalMs: z.number().int().min(50).max(3_600_000).default(1000),
    /** how long a query waits for its reply */
    timeoutMs: z.number().int().min(10).max(600_000).default(1000),
    /** read the error queue (SYST:ERR?) after each cycle */
    errorQueue: z.boolean().default(true),
    reporting: reportingSchema,
    points: z.array(scpiPointSchema).min(1).max(200),
  })
  .superRefine((profile, ctx) => checkChannels(profile.points, ctx));

// An instrument whose own software writes a result file per test (CSV, XLSX, JSON, text) into a folder.
const jsonPathField = z
  .string()
  .min(1)
  .max(200)
  .superRefine((p, ctx) => checkPath(p, ctx));

/** A dotted path relative to each row (JSON), a column header or 1-based column number (CSV, XLSX), or a named group (text). */
const fileFieldSchema = z.union([z.string().min(1).max(200), z.number().int().min(1).max(16_384)]);

export const filePointSchema = z.strictObject({
  name: id,
  channel: id.optional(),
  /** where the value is: a column header or 1-based column number (csv, xlsx), a dotted path in each row (json), a named group (text) */
  from: fileFieldSchema,
  /** number: the cell must read as a number (an empty cell is bad, anything else quarantines the file); text: taken as it is */
  type: z.enum(['number', 'text']).default('number'),
  unit: z.string().max(32).default(''),
});

export const fileTimestampSchema = z.strictObject({
  /** where each row's time is (as for a point) */
  from: fileFieldSchema,
  /** iso (ISO 8601), epoch-ms, epoch-s, or a pattern of yyyy MM dd HH mm ss SSS (for example "dd.MM.yyyy HH:mm:ss") */
  format: z.string().min(1).max(64).default('iso'),
  /** the zone of a time written without an offset: UTC, an offset such as +01:00, or an IANA zone such as Europe/Berlin */
  zone: z
    .string()
    .min(1)
    .max(64)
    .refine((zone) => validZone(zone), 'expected UTC, an offset such as +01:00, or an IANA zone such as Europe/Berlin')
    .default('UTC'),
});

/** Whether a time zone is UTC, a fixed offset or a zone the runtime knows. */
export function validZone(zone: string): boolean {
  if (zone === 'UTC') return true;
  // offsets in this one spelling only: newer runtimes' Intl also takes +0800 or -05, older ones do not
  if (/^[+\-\u2212]/.test(zone)) return /^[+-]\d{2}:\d{2}$/.test(zone);
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

const tableOptions = {
  /** rows before the header row (a title, the instrument's preamble) */
  skipRows: z.number().int().min(0).max(10_000).default(0),
  /** whether the first row after skipRows names the columns */
  header: z.boolean().default(true),
  /** numbers written 1.234,5 (a decimal comma; "." or a space groups thousands) */
  decimalComma: z.boolean().default(false),
};

export const fileParserSchema = z.discriminatedUnion('format', [
  z.strictObject({
    format: z.literal('csv'),
    ...tableOptions,
    delimiter: z.string().length(1).default(','),
    encoding: z.enum(['utf8', 'latin1']).default('utf8'),
  }),
  z.strictObject({
    format: z.literal('xlsx'),
    ...tableOptions,
    /** the worksheet: its name or 1-based position (default the first) */
    sheet: z.union([z.string().min(1), z.number().int().min(1)]).default(1),
  }),
  z.strictObject({
    format: z.literal('json'),
    /** where the rows (an array of objects) are; absent: the document is one row */
    rows: jsonPathField.optional(),
  }),
  z.strictObject({
    format: z.literal('text'),
    /** a regular expression with named groups, tried on every line: each matching line is a row */
    pattern: z
      .string()
      .min(1)
      .max(1000)
      .superRefine((p, ctx) => {
        try {
          new RegExp(p, 'u');
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: `not a regular expression: ${(err as Error).message}` });
        }
      }),
    decimalComma: z.boolean().default(false),
    encoding: z.enum(['utf8', 'latin1']).default('utf8'),
  }),
]);

export const fileProfileSchema = z
  .strictObject({
    protocol: z.literal('file'),
    id,
    identity: identitySchema,
    /** the folder the instrument writes its result files into (relative: to the profile file) */
    folder: z.string().min(1),
    /** file names to take (globs such as "*.csv"); others are left alone */
    include: z.array(z.string().min(1)).min(1).default(['*']),
    exclude: z.array(z.string().min(1)).default([]),
    /** a file is taken once its size and modification time have not changed for this long */
    stableMs: z.number().int().min(50).max(3_600_000).default(2000),
    /** move: a taken file goes to doneFolder; leave: it stays (its hash keeps it from being taken again) */
    afterTaken: z.enum(['move', 'leave']).default('move'),
    /** relative to the folder */
    doneFolder: z.string().min(1).default('done'),
    /** a file that cannot be parsed goes here with a .reason.txt beside it (relative to the folder) */
    quarantineFolder: z.string().min(1).default('quarantine'),
    parser: fileParserSchema,
    /** each row's time; absent: the file's modification time */
    timestamp: fileTimestampSchema.optional(),
    points: z.array(filePointSchema).min(1),
  })
  .superRefine((profile, ctx) => {
    checkChannels(profile.points, ctx);
    const fields = [
      ...profile.points.map((p, i) => ({ from: p.from, path: ['points', i, 'from'] })),
      ...(profile.timestamp ? [{ from: profile.timestamp.from, path: ['timestamp', 'from'] }] : []),
    ];
    const { parser } = profile;
    let groups: Set<string> | undefined;
    if (parser.format === 'text') {
      try {
        groups = new Set(Object.keys(new RegExp(`${parser.pattern}|`, 'u').exec('')?.groups ?? {}));
      } catch {
        return; // reported on parser.pattern
      }
    }
    for (const f of fields) {
      if (parser.format === 'json') {
        const problem = typeof f.from === 'number' ? 'expected a dotted path in each row' : jsonPathProblem(f.from);
        if (problem !== undefined) ctx.addIssue({ code: 'custom', path: f.path, message: problem });
      } else if (parser.format === 'text') {
        if (typeof f.from === 'number' || !groups?.has(f.from))
          ctx.addIssue({
            code: 'custom',
            path: f.path,
            message: `expected a named group of parser.pattern (${[...(groups ?? [])].join(', ') || 'it has none'})`,
          });
      } else if (typeof f.from === 'string' && !parser.header) {
        ctx.addIssue({ code: 'custom', path: f.path, message: 'parser.header is false: name the column by its number' });
      }
    }
    if (profile.doneFolder === profile.quarantineFolder)
      ctx.addIssue({ code: 'custom', path: ['doneFolder'], message: 'must differ from quarantineFolder' });
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
  z.discriminatedUnion('protocol', [
    modbusProfileSchema,
    mqttProfileSchema,
    balanceProfileSchema,
    scpiProfileSchema,
    lineProfileSchema,
    fileProfileSchema,
    opcuaProfileSchema,
  ]),
);

/** What a profile file holds, before defaults (`protocol` may be left out). */
export type ModbusProfileInput = Omit<z.input<typeof modbusProfileSchema>, 'protocol'> & { protocol?: 'modbus' };
export type MqttProfileInput = Omit<z.input<typeof mqttProfileSchema>, 'protocol'> & { protocol?: 'mqtt' };
export type BalanceProfileInput = z.input<typeof balanceProfileSchema>;
export type ScpiProfileInput = z.input<typeof scpiProfileSchema>;
export type LineProfileInput = z.input<typeof lineProfileSchema>;
export type FileProfileInput = z.input<typeof fileProfileSchema>;
export type OpcuaProfileInput = z.input<typeof opcuaProfileSchema>;
export type DeviceProfileInput =
  ModbusProfileInput | MqttProfileInput | BalanceProfileInput | ScpiProfileInput | LineProfileInput | FileProfileInput | OpcuaProfileInput;
export type DeviceProfile = z.output<typeof deviceProfileSchema>;
export type ModbusProfile = z.output<typeof modbusProfileSchema>;
export type MqttProfile = z.output<typeof mqttProfileSchema>;
export type BalanceProfile = z.output<typeof balanceProfileSchema>;
export type ScpiProfile = z.output<typeof scpiProfileSchema>;
export type ScpiPoint = z.output<typeof scpiPointSchema>;
export type LineProfile = z.output<typeof lineProfileSchema>;
export type LinePoint = z.output<typeof linePointSchema>;
export type FileProfile = z.output<typeof fileProfileSchema>;
export type FilePoint = z.output<typeof filePointSchema>;
export type FileParser = z.output<typeof fileParserSchema>;
export type FileTimestamp = z.output<typeof fileTimestampSchema>;
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

export function parseScpiProfile(input: Omit<ScpiProfileInput, 'protocol'>): ScpiProfile {
  return scpiProfileSchema.parse({ ...input, protocol: 'scpi' });
}

export function parseLineProfile(input: Omit<LineProfileInput, 'protocol'>): LineProfile {
  return lineProfileSchema.parse({ ...input, protocol: 'line' });
}

export function parseOpcuaProfile(input: Omit<OpcuaProfileInput, 'protocol'>): OpcuaProfile {
  return opcuaProfileSchema.parse({ ...input, protocol: 'opcua' });
}

export function parseModbusProfile(input: ModbusProfileInput): ModbusProfile {
  return modbusProfileSchema.parse({ ...input, protocol: 'modbus' });
}
