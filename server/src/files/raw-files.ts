// Result files from gateways (MQTT topic FILE): each checked against the SHA-256 its message names, kept under
// that hash, and confirmed to the gateway, which holds the file until then. The samples read from a file name
// the same hash in their signed records, so a file served here can be checked against the signed record.
import { decodeRawFile, parseTopic, topicFor, type FileAckMessage } from '@labtrace/protocols';
import type { Kysely } from 'kysely';
import type { MessageBus } from '../broker/bus.js';
import type { Logger } from '../log.js';
import type { Tables } from '../store/tables.js';
import type { Refusal } from '../trust/security-events.js';

export interface StoredRawFile {
  sha256: string;
  gateway: string;
  instrument: string;
  name: string;
  size: number;
  takenAt: number;
  receivedAt: number;
  data: Buffer;
}

export class RawFiles {
  private readonly onMessage = (topic: string, payload: Buffer): void => {
    this.handle(topic, payload).catch((err: unknown) =>
      this.logger.error({ err: (err as Error).message }, 'ALARM: a result file could not be stored; the gateway sends it again'),
    );
  };

  constructor(
    private readonly lab: string,
    private readonly bus: MessageBus,
    private readonly db: Kysely<Tables>,
    private readonly logger: Logger,
    /** the gateway an instrument was announced by (its BIRTH), if any */
    private readonly ownerOf: (instrument: string) => Promise<string | undefined> = () => Promise.resolve(undefined),
    /** a refused file, for the security events (counted per source and window: refusals can come in floods) */
    private readonly refused: (refusal: Refusal) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  start(): Promise<void> {
    this.bus.on('message', this.onMessage);
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.bus.off('message', this.onMessage);
    return Promise.resolve();
  }

  /** One kept file, or undefined. */
  async get(sha256: string): Promise<StoredRawFile | undefined> {
    const row = await this.db.selectFrom('raw_files').selectAll().where('sha256', '=', sha256).executeTakeFirst();
    if (row === undefined) return undefined;
    return {
      sha256: row.sha256,
      gateway: row.gateway,
      instrument: row.instrument,
      name: row.name,
      size: row.size,
      takenAt: row.taken_at,
      receivedAt: row.received_at,
      data: row.data,
    };
  }

  private async handle(topicText: string, payload: Buffer): Promise<void> {
    const topic = parseTopic(topicText);
    if (topic?.kind !== 'FILE' || topic.lab !== this.lab) return;
    let file;
    try {
      file = decodeRawFile(payload);
    } catch (err) {
      // not confirmed: a gateway whose copy is damaged keeps it and sends it again
      this.logger.warn({ gateway: topic.gateway, err: (err as Error).message }, 'result file refused');
      this.refused({ kind: 'malformed', severity: 'alarm', gateway: topic.gateway, detail: `FILE: ${(err as Error).message}` });
      return;
    }
    const { header, bytes } = file;
    if (header.gateway !== topic.gateway) {
      this.logger.warn({ gateway: topic.gateway, named: header.gateway }, 'result file refused: it names another gateway');
      this.refused({
        kind: 'foreign-gateway',
        severity: 'alarm',
        gateway: topic.gateway,
        detail: `FILE ${header.sha256}: names gateway "${header.gateway}"; not kept`,
      });
      return;
    }
    const owner = await this.ownerOf(header.instrument);
    if (owner !== undefined && owner !== header.gateway) {
      this.logger.warn(
        { gateway: topic.gateway, instrument: header.instrument, owner },
        'result file refused: the instrument belongs to another gateway',
      );
      this.refused({
        kind: 'foreign-instrument',
        severity: 'alarm',
        gateway: topic.gateway,
        detail: `FILE ${header.sha256}: instrument "${header.instrument}" belongs to gateway ${owner}; not kept`,
      });
      return;
    }
    await this.db
      .insertInto('raw_files')
      .values({
        sha256: header.sha256,
        gateway: header.gateway,
        instrument: header.instrument,
        name: header.name,
        size: header.size,
        taken_at: header.takenAt,
        received_at: this.now(),
        data: bytes,
      })
      .onConflict((oc) => oc.column('sha256').doNothing())
      .execute();
    this.logger.info(
      { gateway: header.gateway, instrument: header.instrument, file: header.name, sha256: header.sha256, size: header.size },
      'result file stored',
    );
    const ack: FileAckMessage = { v: 1, file: header.sha256 };
    await this.bus.publish(topicFor(this.lab, topic.gateway, 'ACK'), JSON.stringify(ack), 1);
  }
}
