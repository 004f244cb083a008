// Hands out one ModbusLink per physical connection, so that instruments on one bus or behind one
// TCP gateway share a queue, and closes a link when its last instrument lets go of it.
import type { Connection } from '@labtrace/protocols';
import { linkKey, ModbusLink, type LinkOptions } from './link.js';

export class LinkPool {
  private readonly links = new Map<string, { link: ModbusLink; users: number }>();

  constructor(private readonly options: LinkOptions) {}

  acquire(connection: Connection, pacingMs: number): ModbusLink {
    const key = linkKey(connection);
    let entry = this.links.get(key);
    if (!entry) {
      entry = { link: new ModbusLink(connection, { ...this.options, pacingMs }), users: 0 };
      this.links.set(key, entry);
    }
    entry.users++;
    return entry.link;
  }

  async release(link: ModbusLink): Promise<void> {
    const key = linkKey(link.connection);
    const entry = this.links.get(key);
    if (!entry || entry.link !== link) return;
    entry.users--;
    if (entry.users > 0) return;
    this.links.delete(key);
    await link.close();
  }

  all(): ModbusLink[] {
    return [...this.links.values()].map((e) => e.link);
  }
}
