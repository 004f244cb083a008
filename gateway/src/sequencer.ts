// Per-gateway sequence numbers that are never reused, even across restarts: a block of numbers is
// reserved on disk before any of them is handed out, so a crash can skip numbers but never repeat one.
import { mkdirSync, openSync, readFileSync, renameSync, writeSync, fsyncSync, closeSync } from 'node:fs';
import path from 'node:path';
import { LabtraceError } from '@labtrace/protocols';

const BLOCK = 100_000;

export class Sequencer {
  private next = 0;
  private reservedUpTo = 0;
  private readonly file: string;

  constructor(dataDir: string) {
    this.file = path.join(dataDir, 'sequence.json');
    mkdirSync(dataDir, { recursive: true });
    try {
      const state = JSON.parse(readFileSync(this.file, 'utf8')) as { reservedUpTo?: unknown };
      if (typeof state.reservedUpTo !== 'number' || !Number.isSafeInteger(state.reservedUpTo) || state.reservedUpTo < 0) {
        throw new LabtraceError('E_CONFIG', `${this.file}: reservedUpTo: expected a non-negative integer`);
      }
      this.next = state.reservedUpTo;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.reserve();
  }

  /** The number the next take() returns. */
  peek(): number {
    return this.next;
  }

  take(): number {
    if (this.next >= this.reservedUpTo) this.reserve();
    return this.next++;
  }

  private reserve(): void {
    this.reservedUpTo = this.next + BLOCK;
    const tmp = `${this.file}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify({ reservedUpTo: this.reservedUpTo }));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
    // the rename itself must reach the disk, or a power cut could bring back an older reservation
    const dir = openSync(path.dirname(this.file), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }
}
