// The packed form of a run's samples: nothing is lost or changed on the way, and it is much smaller.
import { describe, expect, test } from '@jest/globals';
import { packRunSamples, unpackRunSamples, type LiveSample } from '../src/index.js';

const T0 = 1_800_000_000_000;
const CHANNELS = ['force', 'extension', 'temperature'];

/** samples as a gateway numbers them: channels interleaved, one sequence per gateway */
function stream(n: number): LiveSample[] {
  return Array.from({ length: n }, (_, i) => ({
    gateway: 'gw-a',
    seq: 1000 + i,
    instrument: 'utm-1',
    channel: CHANNELS[i % CHANNELS.length] ?? 'force',
    ts: T0 + i * 20 + (i % 7),
    value: Math.sin(i / 10) * 50 + 50.123,
    unit: i % CHANNELS.length === 0 ? 'kN' : 'mm',
    quality: 'good',
  }));
}

const byStream = (samples: LiveSample[]) =>
  [...samples].sort((a, b) => a.channel.localeCompare(b.channel) || a.gateway.localeCompare(b.gateway) || a.seq - b.seq);

describe('packRunSamples', () => {
  test('unpacking gives back every sample, each stream in its order', () => {
    const samples = stream(300);
    const unpacked = unpackRunSamples(packRunSamples(samples));
    expect(unpacked).toHaveLength(samples.length);
    expect(byStream(unpacked)).toEqual(byStream(samples));
    // within a stream the order is the order received
    const force = unpacked.filter((s) => s.channel === 'force').map((s) => s.seq);
    expect(force).toEqual([...force].sort((a, b) => a - b));
  });

  test('mixed qualities, values of every type, several gateways and instruments', () => {
    const samples: LiveSample[] = [
      { gateway: 'gw-a', seq: 5, instrument: 'climate-1', channel: 'door', ts: T0, value: true, unit: '', quality: 'good' },
      { gateway: 'gw-b', seq: 9, instrument: 'utm-1', channel: 'force', ts: T0 + 3, value: null, unit: 'kN', quality: 'bad' },
      { gateway: 'gw-a', seq: 6, instrument: 'climate-1', channel: 'door', ts: T0 - 5, value: false, unit: '', quality: 'uncertain' },
      { gateway: 'gw-b', seq: 10, instrument: 'utm-1', channel: 'force', ts: T0 + 4, value: 12.5, unit: 'kN', quality: 'bad' },
      { gateway: 'gw-a', seq: 7, instrument: 'climate-1', channel: 'mode', ts: T0 + 1, value: 'ramp', unit: '', quality: 'good' },
    ];
    const packed = packRunSamples(samples);
    expect(packed).toHaveLength(3);
    // a stream whose samples share a quality names it once
    expect(packed.find((c) => c.channel === 'force')?.quality).toBe('bad');
    expect(packed.find((c) => c.channel === 'door')?.quality).toEqual(['good', 'uncertain']);
    expect(byStream(unpackRunSamples(packed))).toEqual(byStream(samples));
    expect(unpackRunSamples(JSON.parse(JSON.stringify(packed)) as typeof packed)).toEqual(unpackRunSamples(packed));
  });

  test('is a small fraction of the JSON of the samples themselves', () => {
    const samples = stream(400);
    const packed = JSON.stringify(packRunSamples(samples)).length;
    const plain = JSON.stringify(samples).length;
    expect(packed).toBeLessThan(plain / 3);
  });

  test('nothing in, nothing out', () => {
    expect(packRunSamples([])).toEqual([]);
    expect(unpackRunSamples([])).toEqual([]);
  });
});
