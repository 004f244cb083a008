// A client's disclosure bundle made without a server, for the protocols' tests: a gateway's signed batches of two
// instruments (ut-1 the client's, ut-2 another customer's), a log of the key's registration and the batch headers
// with a signed checkpoint, and the bundle of ut-1's records written by DisclosureWriter with `reason` redacted.
import {
  canonicalBytes,
  DisclosureWriter,
  disclosureText,
  ed25519NoteSigner,
  formatSignerKey,
  formatVerifierKey,
  inclusionProof,
  keyEventBytes,
  leafHash,
  leafHashReader,
  openBatch,
  parseSignerKey,
  rootOf,
  sealBatch,
  signCheckpoint,
  signNote,
  toBase64,
  toHex,
  headerHash,
  type KeyEvent,
  type Sample,
} from '../../src/index.js';

const ORIGIN = 'labtrace.example/disclosure-fixture';
export const T0 = 1_800_000_000_000;

export interface DisclosureFixture {
  text: string;
  logKey: string;
}

/** a batch's samples: by default, ut-1 and ut-2 in turn, every third record with a reason */
export type SampleOf = (seq: number, i: number) => Sample;

export const defaultSample: SampleOf = (seq, i) => {
  const s: Sample = {
    seq,
    instrument: i % 2 === 0 ? 'ut-1' : 'ut-2',
    channel: 'c',
    ts: T0 + seq,
    value: i % 2 === 0 ? seq / 4 : 987_654.321,
    unit: 'kN',
    quality: 'good',
  };
  return seq % 3 === 0 ? { ...s, quality: 'uncertain', reason: `note ${seq}` } : s;
};

/**
 * `badSignature`: a batch logged (and so proven in the log) with a signature that is not its gateway's over its
 * header (another batch's): what only the signature check finds.
 */
export function disclosureFixture(batches = 3, perBatch = 6, sampleOf: SampleOf = defaultSample, badSignature?: number): DisclosureFixture {
  const logSigner = parseSignerKey(formatSignerKey(ORIGIN, new Uint8Array(32).fill(7)));
  const gatewayKey = parseSignerKey(formatSignerKey('gw-a', new Uint8Array(32).fill(9)));
  const registered: KeyEvent = {
    type: 'labtrace-key-event',
    v: 1,
    gateway: 'gw-a',
    keyId: toHex(gatewayKey.keyId),
    at: T0,
    event: 'registered',
    key: formatVerifierKey('gw-a', gatewayKey.publicKey),
    source: 'config',
  };
  const eventData = keyEventBytes(registered);
  const logLeaves: Uint8Array[] = [leafHash(eventData)];
  const stored: { header: ReturnType<typeof openBatch>['signed']['header']; signature: string; records: Uint8Array; logIndex: number }[] = [];
  let prev: Uint8Array | null = null;
  for (let b = 0; b < batches; b++) {
    const samples = Array.from({ length: perBatch }, (_, i): Sample => sampleOf(b * perBatch + i, i));
    const { signed, wire } = sealBatch(gatewayKey, 'gw-a', b, samples, prev);
    if (b === badSignature) signed.signature = sealBatch(gatewayKey, 'gw-a', b + 1, samples, prev).signed.signature;
    prev = headerHash(signed.header);
    stored.push({ header: signed.header, signature: signed.signature, records: openBatch(wire).records, logIndex: logLeaves.length });
    logLeaves.push(leafHash(canonicalBytes({ header: signed.header, signature: signed.signature })));
  }
  const size = logLeaves.length;
  const root = rootOf(logLeaves);
  const signer = ed25519NoteSigner(logSigner);
  const checkpoint = signCheckpoint({ origin: ORIGIN, size, rootHash: root, extensions: [] }, [signer]);
  const proof = (i: number): string[] => inclusionProof(i, size, leafHashReader(logLeaves)).map(toBase64);
  const writer = new DisclosureWriter(['reason'], () => new Uint8Array(32).fill(3));
  const disclosed = stored.flatMap((s) => {
    const d = writer.batch(s, (sample) => sample.instrument === 'ut-1');
    return d === undefined ? [] : [{ ...d, logIndex: s.logIndex, logProof: proof(s.logIndex) }];
  });
  const logKey = formatVerifierKey(ORIGIN, logSigner.publicKey);
  const keys = {
    log: { origin: ORIGIN, verifierKey: logKey },
    gateways: [
      {
        gateway: 'gw-a',
        keyId: toHex(gatewayKey.keyId),
        verifierKey: registered.key,
        status: 'active',
        registeredAt: T0,
        validUntil: null,
        lastValidBatch: null,
        replacedBy: null,
      },
    ],
  };
  const statement = signNote(
    writer.statement({
      origin: ORIGIN,
      run: 'run-1',
      created: new Date(T0).toISOString(),
      checkpoint: { size, root: toBase64(root) },
      keys,
      keyEventData: [eventData],
    }),
    [signer],
  );
  const text = disclosureText({
    statement,
    checkpoint,
    keys,
    keyEvents: [{ index: 0, data: toBase64(eventData), proof: proof(0) }],
    batches: disclosed,
  });
  return { text, logKey };
}
