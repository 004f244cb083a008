import { readFileSync } from 'node:fs';
import { describe, expect, test } from '@jest/globals';
import {
  formatAddCheckpoint,
  formatCheckpoint,
  formatTlogSize,
  parseAddCheckpoint,
  parseTlogSize,
  toBase64,
  WitnessRequestError,
} from '../../src/index.js';
import { VECTORS_DIR, unhex } from '../vectors.js';

const example = readFileSync(`${VECTORS_DIR}c2sp/add-checkpoint-request.txt`, 'utf8');
const hash = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);
const note = `${formatCheckpoint({ origin: 'lab.example/log', size: 9, rootHash: hash(7), extensions: [] })}\n\u2014 lab.example/log ${toBase64(unhex('01020304' + 'aa'.repeat(64)))}\n`;

function problemOf(body: string): string {
  try {
    parseAddCheckpoint(body);
  } catch (err) {
    if (err instanceof WitnessRequestError) return `${err.code} ${err.problem}`;
    throw err;
  }
  return 'parsed';
}

describe('add-checkpoint request bodies', () => {
  test('the published example parses: old size, four proof hashes, the checkpoint with both signature lines', () => {
    const req = parseAddCheckpoint(example);
    expect(req.oldSize).toBe(20852014);
    expect(req.proof.map(toBase64)).toEqual(example.split('\n').slice(1, 5));
    expect(req.checkpoint.origin).toBe('example.com/behind-the-sofa');
    expect(req.checkpoint.size).toBe(20852163);
    expect(req.parsedNote.signatures).toHaveLength(2);
    expect(req.note).toBe(example.slice(example.indexOf('\n\n') + 2));
  });

  test('format gives back the published example byte for byte', () => {
    const { oldSize, proof, note: n } = parseAddCheckpoint(example);
    expect(formatAddCheckpoint({ oldSize, proof, note: n })).toBe(example);
  });

  test('old 0 with no proof lines', () => {
    const req = parseAddCheckpoint(`old 0\n\n${note}`);
    expect(req.oldSize).toBe(0);
    expect(req.proof).toEqual([]);
  });

  test.each([
    ['no empty line', `old 3\n${toBase64(hash(1))}\n${note}`.replace(/\n\n/g, '\n'), 'no-blank-line'],
    ['a first line other than old', `new 3\n\n${note}`, 'old-line'],
    ['leading zeros', `old 03\n${toBase64(hash(1))}\n\n${note}`, 'old-size'],
    ['a negative size', `old -3\n\n${note}`, 'old-size'],
    ['a size above 2^53-1', `old 9007199254740993\n${toBase64(hash(1))}\n\n${note}`, 'old-size'],
    ['a proof line that is not base64', `old 3\nnot base64!\n\n${note}`, 'proof-hash'],
    ['a proof hash of 31 bytes', `old 3\n${toBase64(new Uint8Array(31))}\n\n${note}`, 'proof-hash'],
    ['64 proof lines', `old 3\n${Array.from({ length: 64 }, () => toBase64(hash(2))).join('\n')}\n\n${note}`, 'too-many-proof-lines'],
    ['a proof after old 0', `old 0\n${toBase64(hash(1))}\n\n${note}`, 'proof-from-zero'],
    ['a checkpoint without signatures', `old 0\n\nlab.example/log\n9\n${toBase64(hash(7))}\n`, 'checkpoint'],
    ['a checkpoint with a bad size line', `old 0\n\n${note.replace('\n9\n', '\nnine\n')}`, 'checkpoint'],
  ])('refuses %s with E_BAD_REQUEST naming the problem', (_what, body, problem) => {
    expect(problemOf(body)).toBe(`E_BAD_REQUEST ${problem}`);
  });

  test('refuses bytes that are not UTF-8', () => {
    expect(() => parseAddCheckpoint(new Uint8Array([0x6f, 0x6c, 0x64, 0x20, 0xff]))).toThrow(expect.objectContaining({ problem: 'not-text' }));
  });

  test('format refuses what parse would refuse', () => {
    expect(() => formatAddCheckpoint({ oldSize: 0, proof: [hash(1)], note })).toThrow(expect.objectContaining({ problem: 'proof-from-zero' }));
    expect(() => formatAddCheckpoint({ oldSize: -1, proof: [], note })).toThrow(expect.objectContaining({ problem: 'old-size' }));
    expect(() => formatAddCheckpoint({ oldSize: 2, proof: [new Uint8Array(3)], note })).toThrow(expect.objectContaining({ problem: 'proof-hash' }));
  });
});

describe('the 409 size answer', () => {
  test('is the decimal size and a newline', () => {
    expect(formatTlogSize(20852014)).toBe('20852014\n');
    expect(parseTlogSize('20852014\n')).toBe(20852014);
    expect(parseTlogSize('0\n')).toBe(0);
  });

  test.each(['12', '012\n', '-1\n', '1 2\n', ''])('refuses %j', (body) => {
    expect(() => parseTlogSize(body)).toThrow(WitnessRequestError);
  });
});
