// What the backup tests share on either engine: a gateway that keeps sending while the backup is taken, and the
// archive read with tar as an operator would read it.
import { execFileSync } from 'node:child_process';
import type { BackupManifest } from '../../src/store/backup.js';
import { records, waitFor, type TestGateway, type TestServer } from './server.js';

/** The server's published checkpoint (GET /api/log/checkpoint), as an operator saves it. */
export const checkpointOf = async (t: TestServer): Promise<string> => await (await t.fetch('/api/log/checkpoint', {}, null)).text();

/** The tar's member names, as tar lists them. */
export const tarMembers = (file: string): string[] => execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).trim().split('\n');

/** The archive's manifest.json, as tar extracts it. */
export const manifestOf = (file: string): BackupManifest =>
  JSON.parse(execFileSync('tar', ['-xOf', file, 'manifest.json'], { encoding: 'utf8' })) as BackupManifest;

/**
 * A gateway sending all along (a batch of 20 records every 20 ms) until stop(), once the server has acknowledged 20
 * of its batches.
 */
export async function keepSending(gw: TestGateway, instrument: string): Promise<{ stop(): Promise<void> }> {
  let sending = true;
  const sender = (async () => {
    let seq = 0;
    while (sending) {
      await gw.publish(gw.sign(records(instrument, seq, 20)));
      seq += 20;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  await waitFor('batches acknowledged', () => gw.acks.length >= 20, 30_000);
  return {
    stop: async () => {
      sending = false;
      await sender;
    },
  };
}
