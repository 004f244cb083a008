// RTU framing with fake time: frames end at 3.5 characters of silence, complete frames with a good CRC
// leave at once, and bad, truncated or overlong runs are dropped whole.
import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { crcValid, encodeRtuFrame, RtuFramer, silenceIntervalMs } from '../src/index.js';
import { readVector, withCrc } from './helpers.js';

interface PduExamples {
  rtuFrames: { request: string; response: string }[];
}
const vector = readVector<PduExamples>('modbus/pdu-examples.json').rtuFrames[0];

beforeEach(() => {
  jest.useFakeTimers();
});
afterEach(() => {
  jest.useRealTimers();
});

function framer(): { f: RtuFramer; frames: string[] } {
  const frames: string[] = [];
  return {
    f: new RtuFramer(silenceIntervalMs({ baudRate: 9600, parity: 'even', dataBits: 8, stopBits: 1 }), (fr) => frames.push(fr.toString('hex'))),
    frames,
  };
}

describe('frames and CRC', () => {
  test('the published example: CRC-16/MODBUS, low byte first', () => {
    const request = Buffer.from(vector?.request ?? '', 'hex');
    expect(encodeRtuFrame(0x11, request.subarray(1, -2)).toString('hex')).toBe(vector?.request);
    expect(crcValid(Buffer.from(vector?.response ?? '', 'hex'))).toBe(true);
    expect(crcValid(Buffer.from((vector?.response ?? '').replace(/7a$/, '7b'), 'hex'))).toBe(false);
  });

  test('t3.5 is 3.5 characters at the line format, and 1.75 ms above 19200 baud', () => {
    expect(silenceIntervalMs({ baudRate: 9600, parity: 'even', dataBits: 8, stopBits: 1 })).toBeCloseTo((3.5 * 11 * 1000) / 9600, 9);
    expect(silenceIntervalMs({ baudRate: 19200, parity: 'none', dataBits: 8, stopBits: 1 })).toBeCloseTo((3.5 * 10 * 1000) / 19200, 9);
    expect(silenceIntervalMs({ baudRate: 115200, parity: 'none', dataBits: 8, stopBits: 1 })).toBe(1.75);
  });
});

describe('the framer', () => {
  test('a frame split by a gap shorter than t3.5 is one frame', () => {
    const { f, frames } = framer();
    const frame = withCrc([3, 3, 0, 0, 0, 2]);
    f.push(frame.subarray(0, 3));
    jest.advanceTimersByTime(3);
    f.push(frame.subarray(3));
    expect(frames).toEqual([frame.toString('hex')]);
    f.clear();
  });

  test('a gap of t3.5 ends the frame: both pieces are dropped', () => {
    const { f, frames } = framer();
    const frame = withCrc([3, 3, 0, 0, 0, 2]);
    f.push(frame.subarray(0, 3));
    jest.advanceTimersByTime(5);
    f.push(frame.subarray(3));
    jest.advanceTimersByTime(5);
    expect(frames).toEqual([]);
    expect(f.dropped).toBe(2);
  });

  test('a function code of unknown length ends at the silence', () => {
    const { f, frames } = framer();
    const frame = withCrc([3, 0x2b, 0x0e, 1, 0]);
    f.push(frame);
    jest.advanceTimersByTime(4);
    expect(frames).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(frames).toEqual([frame.toString('hex')]);
  });

  test('a bad CRC spoils the run up to the next silence; the frame after it is read', () => {
    const { f, frames } = framer();
    const good = withCrc([3, 3, 0, 0, 0, 2]);
    const bad = Buffer.from(good);
    bad[7] = (bad[7] ?? 0) ^ 0x80;
    f.push(Buffer.concat([bad, good])); // no silence between them: one corrupted run
    jest.advanceTimersByTime(5);
    expect(frames).toEqual([]);
    expect(f.dropped).toBe(1);
    f.push(good);
    expect(frames).toEqual([good.toString('hex')]);
    f.clear();
  });

  test('two good frames back to back are both read; multi-register writes by their byte count', () => {
    const { f, frames } = framer();
    const read = withCrc([3, 3, 0, 0, 0, 2]);
    const write = withCrc([3, 16, 0, 0, 0, 2, 4, 1, 2, 3, 4]);
    f.push(Buffer.concat([read, write.subarray(0, 5)]));
    f.push(write.subarray(5));
    expect(frames).toEqual([read.toString('hex'), write.toString('hex')]);
    f.clear();
  });

  test('more than 256 bytes without a silence is dropped whole', () => {
    const { f, frames } = framer();
    f.push(Buffer.alloc(200, 0x55));
    f.push(Buffer.alloc(100, 0x55));
    f.push(withCrc([3, 3, 0, 0, 0, 2])); // still part of the same run
    jest.advanceTimersByTime(5);
    expect(frames).toEqual([]);
    expect(f.dropped).toBe(1);
  });
});
