// A connection of the embedded broker, seen through a check of each MQTT packet's declared size: the
// fixed header (type byte, then the remaining length in 1-4 bytes) is read as the bytes arrive, and a
// packet declaring more than the limit closes the connection there, before its body is buffered
// anywhere. The MQTT parser of Aedes has no such limit: it waits for the whole declared packet.
import { Duplex } from 'node:stream';

/** What the guard saw when it closed the connection. */
export interface Oversize {
  /** the declared remaining length, or how much of it was read before it passed the limit */
  declared: number;
  limit: number;
  /** true when the remaining length had more than 4 bytes (not MQTT) */
  malformed: boolean;
}

export class PacketLimit extends Duplex {
  /** -1: the next byte starts a packet; 0..3: that many bytes of its remaining length were read */
  private lengthBytes = -1;
  private length = 0;
  /** bytes of the current packet's body still to pass */
  private remaining = 0;

  constructor(
    private readonly inner: Duplex,
    /** the largest remaining length accepted; may be raised (after authentication) */
    public limit: number,
    private readonly onOversize: (o: Oversize) => void,
  ) {
    super({ allowHalfOpen: false });
    inner.on('data', (chunk: Buffer) => {
      if (!this.scan(chunk)) return;
      if (!this.push(chunk)) inner.pause();
    });
    inner.on('end', () => this.push(null));
    inner.on('error', (err) => this.destroy(err));
    inner.on('close', () => this.destroy());
  }

  /** Checks the packet boundaries in a chunk; false (and the connection closed) at a packet too large. */
  private scan(chunk: Buffer): boolean {
    let i = 0;
    while (i < chunk.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - i);
        this.remaining -= n;
        i += n;
        continue;
      }
      const byte = chunk[i++] ?? 0;
      if (this.lengthBytes < 0) {
        this.lengthBytes = 0;
        this.length = 0;
        continue;
      }
      this.length += (byte & 0x7f) * 128 ** this.lengthBytes;
      this.lengthBytes++;
      const more = (byte & 0x80) !== 0;
      if (this.length > this.limit || (more && this.lengthBytes === 4)) {
        this.refuse({ declared: this.length, limit: this.limit, malformed: more && this.lengthBytes === 4 });
        return false;
      }
      if (more) continue;
      this.remaining = this.length;
      this.lengthBytes = -1;
    }
    return true;
  }

  private refuse(o: Oversize): void {
    this.inner.pause();
    this.onOversize(o);
    this.inner.destroy();
    this.destroy();
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    // as a socket does: the next write comes at once unless the peer is slow to read
    if (this.inner.write(chunk, encoding)) callback();
    else this.inner.once('drain', () => callback());
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.inner.end(callback);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.inner.destroy();
    callback(err);
  }
}
