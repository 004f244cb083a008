// One simulated Modbus slave: answers request PDUs from its register image, with its active faults
// applied. Every transport (TCP, RTU on a serial bus, RTU over TCP) hands its PDUs here.
import {
  decodeRequest,
  encodeException,
  encodeReadBitsResponse,
  encodeReadRegistersResponse,
  encodeWriteResponse,
  ModbusException,
  ModbusPduError,
  type ModbusRequest,
} from '@labtrace/protocols';
import type { FaultSet } from './faults.js';
import type { RegisterImage } from './register-image.js';

export interface UnitReply {
  pdu: Uint8Array;
  /** how long the reply waits before it leaves (a "slow" fault) */
  delayMs: number;
}

const REGISTER_SET = { 1: 'coil', 2: 'discrete', 3: 'holding', 4: 'input', 5: 'coil', 6: 'holding', 15: 'coil', 16: 'holding' } as const;

export class ModbusUnit {
  /** requests addressed to this unit, answered or not */
  requests = 0;

  constructor(
    readonly unitId: number,
    private readonly image: RegisterImage,
    private readonly faults: FaultSet,
    private readonly now: () => number = Date.now,
  ) {}

  /** Answers one request PDU, or returns undefined when the instrument stays silent. */
  handle(pdu: Uint8Array): UnitReply | undefined {
    this.requests++;
    if (this.faults.size === 0) return { pdu: this.answer(pdu), delayMs: 0 };
    const now = this.now();
    const fate = this.faults.requestFate(now);
    if (fate.kind === 'silent') return undefined;
    const out = fate.kind === 'exception' ? Uint8Array.of(((pdu[0] ?? 0) | 0x80) & 0xff, fate.code) : this.answer(pdu);
    return { pdu: out, delayMs: this.faults.replyDelayMs(now) };
  }

  /** A broadcast (unit 0 on RTU): writes take effect, nothing is answered. */
  handleBroadcast(pdu: Uint8Array): void {
    this.requests++;
    if (this.faults.requestFate(this.now()).kind === 'answer') this.answer(pdu);
  }

  private answer(pdu: Uint8Array): Uint8Array {
    try {
      return this.execute(decodeRequest(pdu));
    } catch (err) {
      const code = err instanceof ModbusPduError ? err.exception : ModbusException.ServerDeviceFailure;
      return encodeException(pdu[0] ?? 0, code);
    }
  }

  private execute(req: ModbusRequest): Uint8Array {
    const image = this.image;
    const quantity = 'quantity' in req ? req.quantity : 'values' in req ? req.values.length : 1;
    if (!image.isMapped(REGISTER_SET[req.fc], req.address, quantity)) {
      throw new ModbusPduError(ModbusException.IllegalDataAddress, `address ${req.address}+${quantity} not mapped`);
    }
    switch (req.fc) {
      case 1:
        return encodeReadBitsResponse(1, image.coil.subarray(req.address, req.address + req.quantity));
      case 2:
        return encodeReadBitsResponse(2, image.discrete.subarray(req.address, req.address + req.quantity));
      case 3:
        return encodeReadRegistersResponse(3, image.holding.subarray(req.address, req.address + req.quantity));
      case 4:
        return encodeReadRegistersResponse(4, image.input.subarray(req.address, req.address + req.quantity));
      case 5:
        image.coil[req.address] = req.value ? 1 : 0;
        return encodeWriteResponse(req);
      case 6:
        image.holding[req.address] = req.value;
        return encodeWriteResponse(req);
      case 15:
        req.values.forEach((v, i) => (image.coil[req.address + i] = v ? 1 : 0));
        return encodeWriteResponse(req);
      case 16:
        image.holding.set(req.values, req.address);
        return encodeWriteResponse(req);
    }
  }
}
