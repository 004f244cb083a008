// Groups a profile's points into as few read requests as the protocol allows.
import { MAX_READ_BITS, MAX_READ_REGISTERS, pointWidth, protocolAddress, type ModbusProfile, type ProfilePoint } from '@labtrace/protocols';

export interface ReadRequest {
  register: ProfilePoint['register'];
  /** zero-based protocol address */
  address: number;
  quantity: number;
  points: { point: ProfilePoint; offset: number }[];
}

export interface PlanOptions {
  /** largest number of unused registers (or bits) a request may read to join two ranges */
  maxGap: number;
  maxRegisters: number;
  maxBits: number;
}

export const DEFAULT_PLAN_OPTIONS: PlanOptions = { maxGap: 16, maxRegisters: MAX_READ_REGISTERS, maxBits: MAX_READ_BITS };

export function planReads(profile: ModbusProfile, options: PlanOptions = DEFAULT_PLAN_OPTIONS): ReadRequest[] {
  const requests: ReadRequest[] = [];
  const sets = ['coil', 'discrete', 'holding', 'input'] as const;
  for (const register of sets) {
    const points = profile.points
      .filter((p) => p.register === register)
      .map((point) => ({ point, start: protocolAddress(profile, point), width: pointWidth(point) }))
      .sort((a, b) => a.start - b.start);
    const limit = register === 'coil' || register === 'discrete' ? options.maxBits : options.maxRegisters;
    let current: ReadRequest | undefined;
    for (const { point, start, width } of points) {
      const end = start + width;
      if (current !== undefined) {
        const currentEnd = current.address + current.quantity;
        const gap = start - currentEnd;
        const newQuantity = Math.max(currentEnd, end) - current.address;
        if (gap <= options.maxGap && newQuantity <= limit) {
          current.quantity = newQuantity;
          current.points.push({ point, offset: start - current.address });
          continue;
        }
      }
      current = { register, address: start, quantity: width, points: [{ point, offset: 0 }] };
      requests.push(current);
    }
  }
  return requests;
}
