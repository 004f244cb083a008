// Modbus RTU framing: a frame is the unit id, the PDU and a CRC-16 (low byte first), and frames are
// delimited by 3.5 character times of silence on the line (Modbus over Serial Line V1.02, 2.5.1.1).
import { checkRtuCrc, encodeRtu } from '@labtrace/protocols';

export interface SerialFormat {
  baudRate: number;
  parity: 'none' | 'even' | 'odd';
  dataBits: 7 | 8;
  stopBits: 1 | 2;
}

/** The longest RTU frame the protocol allows. */
export const MAX_RTU_FRAME = 256;

/** t3.5 in ms: 3.5 characters at this line format, fixed at 1.75 ms above 19200 baud as the standard says. */
export function silenceIntervalMs(format: SerialFormat): number {
  if (format.baudRate > 19_200) return 1.75;
  const bitsPerChar = 1 + format.dataBits + (format.parity === 'none' ? 0 : 1) + format.stopBits;
  return (3.5 * bitsPerChar * 1000) / format.baudRate;
}

/** An RTU frame (unit, PDU, CRC) as a Buffer for the serial port or socket. */
export function encodeRtuFrame(unitId: number, pdu: Uint8Array): Buffer {
  const frame = encodeRtu(unitId, pdu);
  return Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
}

/** The frame's CRC-16 is right (protocols' check, under the name the simulator's callers use). */
export const crcValid = checkRtuCrc;

/**
 * Length of the request frame at the start of `buf`, from its function code: undefined while the
 * bytes that tell it have not arrived, or for a function code whose length is not known here (such a
 * frame ends at the silence).
 */
export function requestFrameLength(buf: Uint8Array): number | undefined {
  switch (buf[1]) {
    case 7:
    case 11:
    case 12:
    case 17:
      return 4;
    case 1:
    case 2:
    case 3:
    case 4:
    case 5:
    case 6:
    case 8:
      return 8;
    case 22:
      return 10;
    case 15:
    case 16:
      return buf.length > 6 ? 9 + (buf[6] ?? 0) : undefined;
    case 23:
      return buf.length > 10 ? 13 + (buf[10] ?? 0) : undefined;
    default:
      return undefined;
  }
}

/**
 * Cuts a byte stream into RTU frames. A frame ends at `silenceMs` without a byte; a frame that is
 * complete by its function code and whose CRC checks leaves at once, as many slaves do (it saves the
 * silence on every request and reads frames that arrive back to back). A frame with a bad CRC, or an
 * overlong one, is dropped with whatever follows it up to the next silence: a slave cannot know where
 * the next frame starts in a corrupted run.
 */
export class RtuFramer {
  /** frames dropped for a bad CRC, a truncation or an overflow */
  dropped = 0;
  private pending: Buffer = Buffer.alloc(0);
  private overflow = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly silenceMs: number;

  constructor(
    silenceMs: number,
    private readonly onFrame: (frame: Buffer) => void,
  ) {
    // Node timers count whole milliseconds; rounding up never cuts a frame short.
    this.silenceMs = Math.max(1, Math.ceil(silenceMs));
  }

  push(chunk: Buffer): void {
    if (!this.overflow) {
      this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
      if (this.pending.length > MAX_RTU_FRAME) {
        this.overflow = true;
        this.pending = Buffer.alloc(0);
      }
    }
    while (!this.overflow && this.pending.length >= 4) {
      const need = requestFrameLength(this.pending);
      if (need === undefined || this.pending.length < need) break;
      const frame = this.pending.subarray(0, need);
      if (!crcValid(frame)) break;
      this.pending = this.pending.subarray(need);
      this.onFrame(frame);
    }
    if (this.pending.length === 0 && !this.overflow) {
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = undefined;
    } else if (this.timer === undefined) {
      this.timer = setTimeout(() => this.silence(), this.silenceMs);
    } else {
      this.timer.refresh();
    }
  }

  /** Forgets buffered bytes and stops the silence timer. */
  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = Buffer.alloc(0);
    this.overflow = false;
  }

  private silence(): void {
    this.timer = undefined;
    const frame = this.pending;
    const overflow = this.overflow;
    this.pending = Buffer.alloc(0);
    this.overflow = false;
    if (!overflow && crcValid(frame)) this.onFrame(frame);
    else this.dropped++;
  }
}
