// The device profile: one instrument, how to reach it and how to read its points.
// The gateway polls by it and the simulator serves by it, so both always agree.
import { z } from 'zod';
import { BYTE_ORDERS, REGISTER_TYPES, registerCount, type RegisterFormat } from './modbus/codec.js';

const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'expected 1-64 letters, digits, "_", "." or "-", starting with a letter or digit');

export const identitySchema = z.strictObject({
  maker: z.string().min(1),
  model: z.string().min(1),
  serialNumber: z.string().min(1),
  firmware: z.string().min(1).optional(),
  kind: z.string().min(1).optional(),
});

export const tcpConnectionSchema = z.strictObject({
  transport: z.literal('tcp'),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
});

export const connectionSchema = z.discriminatedUnion('transport', [tcpConnectionSchema]);

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

export const deviceProfileSchema = z
  .strictObject({
    id,
    identity: identitySchema,
    connection: connectionSchema,
    unitId: z.number().int().min(0).max(255).default(1),
    addressBase: z.union([z.literal(0), z.literal(1)]).default(0),
    pollIntervalMs: z.number().int().min(10).max(3_600_000).default(1000),
    timeoutMs: z.number().int().min(10).max(60_000).default(1000),
    points: z.array(pointSchema).min(1),
  })
  .superRefine((profile, ctx) => {
    const seen = new Map<string, number>();
    profile.points.forEach((p, i) => {
      const channel = p.channel ?? p.name;
      const first = seen.get(channel);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['points', i, 'name'], message: `channel "${channel}" is already used by points[${first}]` });
      } else seen.set(channel, i);
      if (p.address < profile.addressBase) {
        ctx.addIssue({
          code: 'custom',
          path: ['points', i, 'address'],
          message: `address ${p.address} is below the address base ${profile.addressBase}`,
        });
      }
    });
  });

export type DeviceProfileInput = z.input<typeof deviceProfileSchema>;
export type DeviceProfile = z.output<typeof deviceProfileSchema>;
export type ProfilePoint = z.output<typeof pointSchema>;
export type Connection = z.output<typeof connectionSchema>;
export type InstrumentIdentity = z.output<typeof identitySchema>;

export const idSchema = id;

export function channelOf(point: ProfilePoint): string {
  return point.channel ?? point.name;
}

/** Zero-based protocol address of a point. */
export function protocolAddress(profile: DeviceProfile, point: ProfilePoint): number {
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
