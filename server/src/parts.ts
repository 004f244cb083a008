// The server's parts in their declared order: each opens what it needs at start and closes it at stop. A node runs
// the parts of its roles (cluster.roles) and the parts every node needs; they start in the order declared and stop
// in the reverse order, so a part never outlives what it depends on (the store closes last; the broker stops taking
// data before the ingest stops, and the ingest before the store). A start that fails stops, in reverse order, the
// parts already started and the one that failed (a part's stop must therefore be safe on a part half started), so
// that a refused start leaves no pool, timer or port behind.
import type { NodeRole } from './cluster/config.js';
import type { Logger } from './log.js';

export interface Part {
  /** what the part is, in logs and errors */
  readonly name: string;
  /** the roles the part belongs to: it runs on a node that has any of them (none given: on every node) */
  readonly roles?: readonly NodeRole[];
  start(): Promise<void> | void;
  stop?(): Promise<void> | void;
}

export class Parts {
  private readonly declared: readonly Part[];
  private started: Part[] = [];

  constructor(
    parts: readonly Part[],
    private readonly roles: ReadonlySet<NodeRole>,
    private readonly logger: Logger,
  ) {
    const names = new Set<string>();
    for (const part of parts) {
      if (names.has(part.name)) throw new Error(`the server part "${part.name}" is declared twice`);
      names.add(part.name);
    }
    this.declared = parts;
  }

  /** the parts this node runs, in their start order */
  get running(): string[] {
    return this.declared.filter((part) => this.runsHere(part)).map((part) => part.name);
  }

  /** whether this node runs the part */
  runsHere(part: Part): boolean {
    return part.roles === undefined || part.roles.some((role) => this.roles.has(role));
  }

  /** Starts this node's parts in order; on a failure, stops what had started and throws the failure. */
  async start(): Promise<void> {
    for (const part of this.declared) {
      if (!this.runsHere(part)) continue;
      try {
        await part.start();
        this.started.push(part);
      } catch (err) {
        // the failing part may have opened something before it threw: it stops first, then what came before it
        this.started.push(part);
        await this.stop();
        throw err;
      }
    }
  }

  /** Stops the started parts in reverse order; a part that fails to stop is logged and the others still stop. */
  async stop(): Promise<void> {
    const started = this.started;
    this.started = [];
    for (const part of started.reverse()) {
      try {
        await part.stop?.();
      } catch (err) {
        this.logger.error({ part: part.name, err: String(err) }, 'a part of the server failed to stop');
      }
    }
  }
}
