// Payloads of an MQTT instrument built from its profile: paths with keys and indices, points sharing a
// topic, raw units, and the layouts a profile cannot have.
import { describe, expect, test } from '@jest/globals';
import { deviceProfileSchema, type MqttProfile } from '@labtrace/protocols';
import { compilePath, PayloadBuilder, setAtPath } from '../src/index.js';

function mqttProfile(points: unknown[]): MqttProfile {
  const p = deviceProfileSchema.parse({
    id: 'mq-t',
    identity: { maker: 'T', model: 'M', serialNumber: '1' },
    connection: { transport: 'mqtt', url: 'mqtt://127.0.0.1:1883' },
    points,
  });
  if (p.protocol !== 'mqtt') throw new Error('not mqtt');
  return p;
}

describe('paths', () => {
  test('keys and indices, creating what is missing', () => {
    const root = {};
    expect(setAtPath(root, compilePath('readings[1].v', 'p'), 3)).toBe(true);
    expect(setAtPath(root, compilePath('meta.unit', 'p'), 'kN')).toBe(true);
    expect(root).toEqual({ readings: [null, { v: 3 }], meta: { unit: 'kN' } });
  });

  test('a value in the way is a conflict, not an overwrite', () => {
    const root = { a: 1 };
    expect(setAtPath(root, compilePath('a.b', 'p'), 2)).toBe(false);
    expect(root).toEqual({ a: 1 });
  });

  test('malformed paths and prototype keys are refused', () => {
    expect(() => compilePath('a..b', 'points[0].jsonPath')).toThrow(/points\[0\]\.jsonPath/);
    expect(() => compilePath('__proto__.x', 'p')).toThrow(/cannot be a key/);
  });
});

describe('PayloadBuilder', () => {
  test('one JSON document per topic, with the time; plain numbers in raw units', () => {
    const b = new PayloadBuilder(
      mqttProfile([
        { name: 'force', topic: 'lab/utm', jsonPath: 'data.force', timestampPath: 'data.ts' },
        { name: 'ext', topic: 'lab/utm', jsonPath: 'data.ext', scale: 0.001 },
        { name: 'temp', topic: 'lab/temp', scale: 0.1, offset: -40 },
      ]),
    );
    expect(b.payloads({ force: 1.25, ext: 2.5, temp: 21.5 }, 1234)).toEqual([
      { topic: 'lab/utm', payload: JSON.stringify({ data: { force: 1.25, ts: 1234, ext: 2500 } }) },
      { topic: 'lab/temp', payload: '615' },
    ]);
  });

  test('a topic none of whose points has a value is left out', () => {
    const b = new PayloadBuilder(
      mqttProfile([
        { name: 'a', topic: 't/a' },
        { name: 'b', topic: 't/b', jsonPath: 'v' },
      ]),
    );
    expect(b.payloads({}, 1)).toEqual([]);
  });

  test('layouts that cannot be one payload are refused with the point named', () => {
    expect(
      () =>
        new PayloadBuilder(
          mqttProfile([
            { name: 'a', topic: 't' },
            { name: 'b', topic: 't', jsonPath: 'v' },
          ]),
        ),
    ).toThrow(/points\[1\]\.topic/);
    expect(() => new PayloadBuilder(mqttProfile([{ name: 'a', topic: 't', timestampPath: 'ts' }]))).toThrow(/timestampPath: needs jsonPath/);
    expect(
      () =>
        new PayloadBuilder(
          mqttProfile([
            { name: 'a', topic: 't', jsonPath: 'x' },
            { name: 'b', topic: 't', jsonPath: 'x.y' },
          ]),
        ),
    ).toThrow(/overlap/);
  });
});
