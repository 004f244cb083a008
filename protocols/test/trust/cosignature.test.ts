import { describe, expect, test } from '@jest/globals';
import {
  addCosignatures,
  cosignCheckpoint,
  cosignatureSigner,
  cosignatureVerifier,
  cosignedMessage,
  cosignerKeyId,
  ed25519KeyId,
  ed25519NoteSigner,
  ed25519NoteVerifier,
  formatCosignerSignerKey,
  formatCosignerVerifierKey,
  formatSignerKey,
  formatVerifierKey,
  fromBase64,
  openCheckpoint,
  openCosignatures,
  parseCosignature,
  parseCosignerVerifierKey,
  parseNote,
  publicKeyFromSeed,
  sha256,
  signCheckpoint,
  toBase64,
  utf8,
  verifyEd25519,
  type Checkpoint,
} from '../../src/index.js';
import { hex, readVector, unhex } from '../vectors.js';

interface Example {
  body: string;
  logLine: string;
  cosignatureLine: string;
  cosignatureKeyIdHex: string;
  timestamp: number;
  signedMessage: string;
}

const example = readVector<Example>('c2sp/cosignature-example.json');

const WITNESS_SEED = unhex('11'.repeat(32));
const LOG_SEED = unhex('22'.repeat(32));
const WITNESS = 'witness.example/w1';
const ORIGIN = 'lab.example/log';
const witnessKey = formatCosignerSignerKey(WITNESS, WITNESS_SEED);
const witnessVkey = formatCosignerVerifierKey(WITNESS, publicKeyFromSeed(WITNESS_SEED));
const logSigner = ed25519NoteSigner(formatSignerKey(ORIGIN, LOG_SEED));
const logVerifier = ed25519NoteVerifier(formatVerifierKey(ORIGIN, publicKeyFromSeed(LOG_SEED)));

const checkpoint: Checkpoint = { origin: ORIGIN, size: 12, rootHash: sha256(utf8('root')), extensions: [] };

describe('cosignature/v1 (published example: C2SP tlog-cosignature)', () => {
  test('the example cosignature line holds a key id and the timestamp of the example message', () => {
    const note = parseNote(`${example.body}\n${example.logLine}${example.cosignatureLine}`);
    const witnessLine = note.signatures[1];
    if (witnessLine === undefined) throw new Error('the example has two signature lines');
    const cosig = parseCosignature(witnessLine);
    expect(cosig.name).toBe('witness.example.com/w1');
    expect(hex(cosig.keyId)).toBe(example.cosignatureKeyIdHex);
    expect(cosig.timestamp).toBe(example.timestamp);
    expect(cosig.signature).toHaveLength(64);
  });

  test('the signed message is the two header lines and the whole checkpoint body', () => {
    expect(new TextDecoder().decode(cosignedMessage(example.body, example.timestamp))).toBe(example.signedMessage);
  });

  test('the log signature of the example is not a cosignature (it has no room for a timestamp)', () => {
    const note = parseNote(`${example.body}\n${example.logLine}`);
    const logLine = note.signatures[0];
    if (logLine === undefined) throw new Error('the example has a log signature');
    expect(() => parseCosignature(logLine)).toThrow(/not a cosignature\/v1/);
  });
});

describe('cosigner keys', () => {
  test('the key id is SHA-256(name || 0x0A || 0x04 || public key)[:4], not the note key id', () => {
    const pub = publicKeyFromSeed(WITNESS_SEED);
    const want = sha256(new Uint8Array([...utf8(WITNESS), 0x0a, 0x04, ...pub])).slice(0, 4);
    expect(hex(cosignerKeyId(WITNESS, pub))).toBe(hex(want));
    expect(hex(cosignerKeyId(WITNESS, pub))).not.toBe(hex(ed25519KeyId(WITNESS, pub)));
  });

  test('the vkey is name+keyid+base64(0x04 || public key) and parses back; a note key (0x01) is refused', () => {
    const pub = publicKeyFromSeed(WITNESS_SEED);
    const [name, id] = witnessVkey.split('+', 3);
    expect(name).toBe(WITNESS);
    expect(id).toBe(hex(cosignerKeyId(WITNESS, pub)));
    expect(witnessVkey.endsWith(toBase64(new Uint8Array([0x04, ...pub])))).toBe(true);
    expect(hex(parseCosignerVerifierKey(witnessVkey).publicKey)).toBe(hex(pub));
    expect(() => parseCosignerVerifierKey(formatVerifierKey(WITNESS, pub))).toThrow(/type byte 0x04/);
  });
});

describe('making and checking cosignatures', () => {
  const body = signCheckpoint(checkpoint, [logSigner]);
  const text = parseNote(body).text;

  test('a cosignature carries the clock time and an Ed25519 signature over the cosigned message', () => {
    const line = cosignCheckpoint(
      text,
      cosignatureSigner(witnessKey, () => 1_700_000_000),
    );
    expect(line.startsWith(`\u2014 ${WITNESS} `)).toBe(true);
    const raw = fromBase64(line.slice(`\u2014 ${WITNESS} `.length, -1));
    expect(raw).toHaveLength(4 + 8 + 64);
    expect(hex(raw.slice(4, 12))).toBe((1_700_000_000).toString(16).padStart(16, '0'));
    expect(verifyEd25519(raw.slice(12), cosignedMessage(text, 1_700_000_000), publicKeyFromSeed(WITNESS_SEED))).toBe(true);
  });

  test('a log note with the cosignature added still verifies with the log key, and the cosignature with the witness key', () => {
    const line = cosignCheckpoint(
      text,
      cosignatureSigner(witnessKey, () => 1_700_000_001),
    );
    const both = addCosignatures(body, line);
    const opened = openCheckpoint(both, [logVerifier], { origin: ORIGIN });
    expect(opened.checkpoint.size).toBe(12);
    expect(opened.unverified.map((s) => s.name)).toEqual([WITNESS]);
    const cosigned = openCosignatures(both, [cosignatureVerifier(witnessVkey)]);
    expect(cosigned.cosignatures.map((c) => [c.name, c.timestamp])).toEqual([[WITNESS, 1_700_000_001]]);
  });

  test('extension lines are part of what is cosigned', () => {
    const withExt = signCheckpoint({ ...checkpoint, extensions: ['ext'] }, [logSigner]);
    const extText = parseNote(withExt).text;
    const line = cosignCheckpoint(
      extText,
      cosignatureSigner(witnessKey, () => 5),
    );
    const changed = addCosignatures(withExt, line).replace('\next\n', '\nexu\n');
    expect(() => openCosignatures(changed, [cosignatureVerifier(witnessVkey)])).toThrow(/does not verify/);
  });

  test('a changed size, root or timestamp fails with E_AUTH', () => {
    const line = cosignCheckpoint(
      text,
      cosignatureSigner(witnessKey, () => 42),
    );
    const note = addCosignatures(body, line);
    const verifiers = [cosignatureVerifier(witnessVkey)];
    const otherSize = note.replace('\n12\n', '\n13\n');
    expect(() => openCosignatures(otherSize, verifiers)).toThrow(expect.objectContaining({ code: 'E_AUTH' }));
    const raw = fromBase64(line.slice(`\u2014 ${WITNESS} `.length, -1));
    raw[11] = (raw[11] ?? 0) ^ 1; // the last byte of the timestamp
    const otherTime = addCosignatures(body, `\u2014 ${WITNESS} ${toBase64(raw)}\n`);
    expect(() => openCosignatures(otherTime, verifiers)).toThrow(expect.objectContaining({ code: 'E_AUTH' }));
  });

  test('a cosignature is not a log signature: the same key as a note key does not match it', () => {
    const line = cosignCheckpoint(
      text,
      cosignatureSigner(witnessKey, () => 42),
    );
    const onlyCosigned = `${text}\n${line}`;
    const sameKeyAsNoteKey = ed25519NoteVerifier(formatVerifierKey(WITNESS, publicKeyFromSeed(WITNESS_SEED)));
    expect(() => openCheckpoint(onlyCosigned, [sameKeyAsNoteKey])).toThrow(/not signed by any known key/);
  });

  test('signature lines of unknown witnesses are ignored; none by the named witnesses gives an empty list', () => {
    const other = formatCosignerSignerKey('witness.example/w2', unhex('33'.repeat(32)));
    const note = addCosignatures(
      body,
      cosignCheckpoint(
        text,
        cosignatureSigner(other, () => 1),
      ),
    );
    expect(openCosignatures(note, [cosignatureVerifier(witnessVkey)]).cosignatures).toEqual([]);
  });

  test('the signer cosigns only checkpoint bodies', () => {
    expect(() =>
      cosignCheckpoint(
        'hello\n',
        cosignatureSigner(witnessKey, () => 1),
      ),
    ).toThrow(/malformed checkpoint/);
  });

  test('a timestamp that is not a whole non-negative number is refused', () => {
    expect(() => cosignedMessage(text, -1)).toThrow(/timestamp/);
    expect(() => cosignedMessage(text, 1.5)).toThrow(/timestamp/);
  });
});
