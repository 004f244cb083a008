// A test double of a lab as the supervisor sees it: a log whose history the test can rewrite (signed with a real
// key, so the forged checkpoints verify as the lab's), and runs and certificates lists the test sets.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  addCosignatures,
  cosignCheckpoint,
  consistencyProof,
  ed25519NoteSigner,
  formatSignerKey,
  formatVerifierKey,
  inclusionProof,
  leafHash,
  leafHashReader,
  parseNote,
  publicKeyFromSeed,
  rootOf,
  signCheckpoint,
  toBase64,
  utf8,
  type NoteSigner,
} from '@labtrace/protocols';

export const DOUBLE_ORIGIN = 'double.example/log';
const SEED = new Uint8Array(32).fill(5);

export class LabDouble {
  readonly logKey = formatVerifierKey(DOUBLE_ORIGIN, publicKeyFromSeed(SEED));
  private readonly signer = ed25519NoteSigner(formatSignerKey(DOUBLE_ORIGIN, SEED));
  /** the entries' data, in order */
  entries: string[] = [];
  runs: unknown[] = [];
  certificates: unknown[] = [];
  /** witnesses that cosign each checkpoint served (cosignature/v1 lines appended to the note) */
  cosigners: NoteSigner[] = [];
  private server: http.Server | undefined;

  get url(): string {
    const a = this.server?.address() as AddressInfo;
    return `http://127.0.0.1:${a.port}`;
  }

  /** the signed checkpoint of the first `size` entries */
  checkpoint(size = this.entries.length): string {
    const note = signCheckpoint({ origin: DOUBLE_ORIGIN, size, rootHash: rootOf(this.leaves().slice(0, size)), extensions: [] }, [this.signer]);
    const body = parseNote(note).text;
    return this.cosigners.reduce((n, c) => addCosignatures(n, cosignCheckpoint(body, c)), note);
  }

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const q = (k: string): number => Number(url.searchParams.get(k));
      const send = (body: unknown, type = 'application/json'): void => {
        res.writeHead(200, { 'content-type': type });
        res.end(typeof body === 'string' ? body : JSON.stringify(body));
      };
      const leaves = this.leaves();
      const read = leafHashReader(leaves);
      if (url.pathname === '/api/log/checkpoint') send(this.checkpoint(), 'text/plain');
      else if (url.pathname === '/api/log/entries')
        send({
          entries: this.entries
            .slice(q('start'), q('end'))
            .map((d, i) => ({ index: q('start') + i, kind: 'audit-event', at: 1, data: toBase64(utf8(d)) })),
        });
      else if (url.pathname === '/api/log/proof/consistency')
        send({ from: q('from'), to: q('to'), proof: consistencyProof(q('from'), q('to'), read).map(toBase64) });
      else if (url.pathname === '/api/log/proof/inclusion')
        send({
          index: q('index'),
          size: q('size'),
          leafHash: toBase64(leaves[q('index')] ?? new Uint8Array()),
          proof: inclusionProof(q('index'), q('size'), read).map(toBase64),
        });
      else if (url.pathname === '/api/runs') send({ items: this.runs, next: null });
      else if (url.pathname === '/api/certificates') send({ items: this.certificates, next: null });
      else if (/^\/api\/runs\/[^/]+\/alarms$/.test(url.pathname)) send({ alarms: [] });
      else if (/^\/api\/certificates\/[^/]+$/.test(url.pathname)) send({});
      else if (url.pathname === '/api/accreditations') send([]);
      else {
        res.writeHead(404);
        res.end();
      }
    });
    const server = this.server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private leaves(): Uint8Array[] {
    return this.entries.map((d) => leafHash(utf8(d)));
  }
}
