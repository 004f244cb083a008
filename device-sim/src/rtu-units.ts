// The slaves on one RTU line (a serial bus, or a serial device server reached over TCP): each frame
// goes to the unit it names; a frame for a unit nobody simulates gets no answer, as on a real bus.
import { LabtraceError } from '@labtrace/protocols';
import type { ModbusUnit } from './modbus-unit.js';
import { encodeRtuFrame } from './rtu-framing.js';

export class RtuUnits {
  private readonly units = new Map<number, ModbusUnit>();

  constructor(private readonly where: string) {}

  get size(): number {
    return this.units.size;
  }

  ids(): number[] {
    return [...this.units.keys()].sort((a, b) => a - b);
  }

  add(unit: ModbusUnit): void {
    if (unit.unitId < 1 || unit.unitId > 247) {
      throw new LabtraceError('E_CONFIG', `${this.where}: unit id ${unit.unitId}: an RTU slave address is 1-247 (0 is the broadcast address)`);
    }
    if (this.units.has(unit.unitId)) throw new LabtraceError('E_CONFIG', `${this.where}: two instruments share unit id ${unit.unitId}`);
    this.units.set(unit.unitId, unit);
  }

  /** Answers one frame whose CRC checked; undefined when nobody answers. */
  answer(frame: Buffer): { data: Buffer; delayMs: number } | undefined {
    const unitId = frame[0] ?? 0;
    const pdu = frame.subarray(1, frame.length - 2);
    if (unitId === 0) {
      for (const unit of this.units.values()) unit.handleBroadcast(pdu);
      return undefined;
    }
    const reply = this.units.get(unitId)?.handle(pdu);
    return reply === undefined ? undefined : { data: encodeRtuFrame(unitId, reply.pdu), delayMs: reply.delayMs };
  }
}
