// MqttInstrument against a real Mosquitto with password authentication; readings are published by
// mosquitto_pub (an independent client) and by MQTT.js.
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import mqtt, { type MqttClient } from 'mqtt';
import pino from 'pino';
import { mqttProfileSchema, type MqttProfile, type MqttProfileInput } from '@labtrace/protocols';
import { Mosquitto, type MosquittoUser } from '@labtrace/protocols/test/mosquitto';
import type { InstrumentHealth, PolledSample } from '../../src/source.js';
import { MqttInstrument, type Every, type MqttInstrumentOptions } from '../../src/mqtt-source/mqtt-instrument.js';

const USER = 'instrument';
const PASSWORD = 'correct-horse-battery';
const INSTRUMENT: MosquittoUser = { username: USER, password: PASSWORD };

let broker: Mosquitto;
const cleanup: (() => Promise<void>)[] = [];
let baseline: Map<string, number>;
let topicCounter = 0;

/** Sockets and timers alive in this process, by kind (the broker child's pipes are in the baseline). */
function resources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) {
    if (kind === 'TCPSocketWrap' || kind === 'TCPWRAP' || kind === 'Timeout') counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  return counts;
}

async function settle(): Promise<Map<string, number>> {
  // Closed sockets and cleared timers leave the list on a later turn of the event loop.
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 10));
    const now = resources();
    if ([...now].every(([kind, n]) => n <= (baseline.get(kind) ?? 0))) return now;
  }
  return resources();
}

beforeAll(async () => {
  // without persistence: after a restart, the source has to subscribe again
  broker = await Mosquitto.create({ users: [INSTRUMENT], conf: ['allow_anonymous false', 'persistence false', 'listener 1883'].join('\n') });
  await broker.start();
  baseline = await (async () => {
    await new Promise((r) => setTimeout(r, 20));
    return resources();
  })();
});

afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
  // Like MQTT.js's own suite: a test that leaves a client or a timer behind fails.
  const left = await settle();
  for (const [kind, n] of left) expect(`${kind}: ${n}`).toBe(`${kind}: ${Math.min(n, baseline.get(kind) ?? 0)}`);
});

afterAll(async () => {
  await broker.dispose();
});

function newTopic(name: string): string {
  topicCounter++;
  return `lab/t${topicCounter}/${name}`;
}

function profileOf(points: MqttProfileInput['points'], extra: Partial<MqttProfileInput> = {}, url = broker.url): MqttProfile {
  return mqttProfileSchema.parse({
    protocol: 'mqtt',
    id: 'ut-1',
    identity: { maker: 'Test', model: 'UTM', serialNumber: 'U-1' },
    connection: { transport: 'mqtt', url, username: USER, passwordFile: 'instrument.password' },
    points,
    ...extra,
  });
}

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

interface Harness {
  instrument: MqttInstrument;
  samples: PolledSample[];
  logs: LogLine[];
  rawLogs: string[];
  healthEvents: InstrumentHealth[];
  /** resolves with the first batch of samples, emitted from now on, that matches */
  next: (pred: (s: PolledSample[]) => boolean, ms?: number) => Promise<PolledSample[]>;
}

function harness(profile: MqttProfile, options: Partial<MqttInstrumentOptions> = {}): Harness {
  const logs: LogLine[] = [];
  const rawLogs: string[] = [];
  const logger = pino(
    { level: 'debug' },
    {
      write(line: string) {
        rawLogs.push(line);
        logs.push(JSON.parse(line) as LogLine);
      },
    },
  );
  const instrument = new MqttInstrument(profile, { password: PASSWORD, logger, reconnectPeriodMs: 100, ...options });
  cleanup.push(() => instrument.stop());
  const samples: PolledSample[] = [];
  const healthEvents: InstrumentHealth[] = [];
  instrument.on('samples', (s) => samples.push(...s));
  instrument.on('health', (h) => healthEvents.push(h));
  const next = (pred: (s: PolledSample[]) => boolean, ms = 5000): Promise<PolledSample[]> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        instrument.off('samples', on);
        reject(new Error(`no matching samples within ${ms} ms; got ${JSON.stringify(samples)}`));
      }, ms);
      const on = (s: PolledSample[]): void => {
        if (!pred(s)) return;
        clearTimeout(timer);
        instrument.off('samples', on);
        resolve(s);
      };
      instrument.on('samples', on);
    });
  return { instrument, samples, logs, rawLogs, healthEvents, next };
}

function waitForHealth(instrument: MqttInstrument, pred: (h: InstrumentHealth) => boolean, ms = 10_000): Promise<InstrumentHealth> {
  if (pred(instrument.getHealth())) return Promise.resolve(instrument.getHealth());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      instrument.off('health', on);
      reject(new Error(`health not reached within ${ms} ms: ${JSON.stringify(instrument.getHealth())}`));
    }, ms);
    const on = (h: InstrumentHealth): void => {
      if (!pred(h)) return;
      clearTimeout(timer);
      instrument.off('health', on);
      resolve(h);
    };
    instrument.on('health', on);
  });
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Starts the instrument and waits until it is subscribed, so nothing published afterwards is missed. */
async function started(h: Harness): Promise<Harness> {
  await h.instrument.start();
  await waitForHealth(h.instrument, (x) => x.connected);
  return h;
}

async function publisher(): Promise<MqttClient> {
  const client = await mqtt.connectAsync(broker.url, { username: USER, password: PASSWORD, reconnectPeriod: 0 });
  cleanup.push(() => client.endAsync());
  return client;
}

/** A manual clock and staleness timer: tests move time and run the check themselves. */
function manualTime(start: number): { now: () => number; every: Every; advance: (ms: number) => void; tick: () => void; running: () => boolean } {
  let clock = start;
  let check: (() => void) | undefined;
  return {
    now: () => clock,
    every: (_ms, fn) => {
      check = fn;
      return () => (check = undefined);
    },
    advance: (ms) => (clock += ms),
    tick: () => check?.(),
    running: () => check !== undefined,
  };
}

const byChannel = (s: PolledSample[]): Record<string, PolledSample> => Object.fromEntries(s.map((x) => [x.channel, x]));

describe('MqttInstrument with Mosquitto', () => {
  test('reads values at JSON paths with the instrument timestamp, published by mosquitto_pub', async () => {
    const topic = newTopic('ut');
    const h = await started(
      harness(
        profileOf([
          { name: 'force', topic, jsonPath: 'reading.value', timestampPath: 'reading.ts', unit: 'kN' },
          { name: 'extension', topic, jsonPath: 'data[2].v', timestampPath: 'reading.ts', unit: 'mm' },
          { name: 'state', topic, jsonPath: 'state' },
        ]),
      ),
    );
    const measuredAt = Date.now() - 250;
    const iso = new Date(measuredAt).toISOString();
    const first = h.next(() => true);
    await broker.pub(
      INSTRUMENT,
      topic,
      JSON.stringify({ reading: { value: 12.5, ts: iso }, data: [{ v: 1 }, { v: 2 }, { v: 3.75 }], state: 'RUNNING' }),
    );
    const s = byChannel(await first);
    expect(s['force']).toEqual({ instrument: 'ut-1', channel: 'force', ts: measuredAt, value: 12.5, unit: 'kN', quality: 'good' });
    expect(s['extension']).toMatchObject({ ts: measuredAt, value: 3.75, unit: 'mm', quality: 'good' });
    // No timestampPath: arrival time.
    expect(s['state']).toMatchObject({ value: 'RUNNING', quality: 'good' });
    expect(s['state']?.ts).toBeGreaterThanOrEqual(measuredAt + 250);

    // A timestamp in ms since the epoch works the same.
    const second = h.next(() => true);
    await broker.pub(INSTRUMENT, topic, JSON.stringify({ reading: { value: -0.5, ts: measuredAt + 100 }, data: [0, 0, { v: 4 }], state: 'DONE' }));
    expect(byChannel(await second)['force']).toMatchObject({ ts: measuredAt + 100, value: -0.5, quality: 'good' });

    const health = h.instrument.getHealth();
    expect(health).toMatchObject({ instrument: 'ut-1', connected: true, polls: 2, errors: {} });
    expect(health.lastGood).toBeGreaterThanOrEqual(measuredAt);
    // Latency is arrival minus the instrument's timestamp: at least the 250 ms we backdated it by.
    expect(health.latencyMs.p50).toBeGreaterThanOrEqual(150);
    expect(health.latencyMs.p50).toBeLessThan(5000);
    expect(health.latencyMs.p99).toBeGreaterThanOrEqual(health.latencyMs.p50 ?? Infinity);
  });

  test('a plain-number payload is the value, stamped with its arrival time', async () => {
    const topic = newTopic('temperature');
    const h = await started(harness(profileOf([{ name: 'temperature', topic, unit: '°C' }])));
    const pub = await publisher();
    const before = Date.now();
    const got = h.next(() => true);
    await pub.publishAsync(topic, ' 21.5\n', { qos: 1 });
    const [sample] = await got;
    expect(sample).toMatchObject({ channel: 'temperature', value: 21.5, unit: '°C', quality: 'good' });
    expect(sample?.ts).toBeGreaterThanOrEqual(before);
    expect(sample?.ts).toBeLessThanOrEqual(Date.now());
    // The arrival time says nothing about the instrument's delay.
    expect(h.instrument.getHealth().latencyMs).toEqual({ p50: null, p99: null });
  });

  test('scale and offset turn raw readings into engineering values', async () => {
    const raw = newTopic('raw');
    const json = newTopic('json');
    const h = await started(
      harness(
        profileOf([
          { name: 'temperature', topic: raw, scale: 0.01, offset: -40, unit: '°C' },
          { name: 'pressure', topic: json, jsonPath: 'p', scale: 0.1, unit: 'kPa' },
        ]),
      ),
    );
    const pub = await publisher();
    const a = h.next((s) => s[0]?.channel === 'temperature');
    await pub.publishAsync(raw, '6137', { qos: 1 });
    expect((await a)[0]?.value).toBe(21.37);
    const b = h.next((s) => s[0]?.channel === 'pressure');
    await pub.publishAsync(json, '{"p": 1013.7}', { qos: 1 });
    expect((await b)[0]?.value).toBe(101.37);
  });

  test('invalid payloads give bad samples and counts, are logged once per topic, and the next good message is read', async () => {
    const topic = newTopic('chamber');
    const plain = newTopic('plain');
    const h = await started(
      harness(
        profileOf([
          { name: 'temperature', topic, jsonPath: 'reading.value', unit: '°C' },
          { name: 'humidity', topic: plain, unit: '%RH' },
        ]),
      ),
    );
    const pub = await publisher();
    const huge = `{"reading": ${'9'.repeat(100_000)}`;
    const invalid = [huge, 'not json{', '{"other": 1}', '{"reading": {"value": "abc"}}', '{"reading": {"value": null}}'];
    for (const payload of invalid) await pub.publishAsync(topic, payload, { qos: 1 });
    await pub.publishAsync(plain, '45 %', { qos: 1 });
    await until(() => h.samples.length === 6, 'six bad samples');
    const reasons = h.samples.map((s) => [s.channel, s.quality, s.value, s.reason]);
    expect(reasons).toEqual([
      ['temperature', 'bad', null, expect.stringMatching(/ is not JSON$/)],
      ['temperature', 'bad', null, expect.stringMatching(/ is not JSON$/)],
      ['temperature', 'bad', null, 'no value at reading (jsonPath reading.value)'],
      ['temperature', 'bad', null, 'expected a number at reading.value, got a string ("abc")'],
      ['temperature', 'bad', null, 'expected a number at reading.value, got null'],
      ['humidity', 'bad', null, 'payload "45 %" is not a plain number'],
    ]);
    expect(h.instrument.getHealth().errors).toEqual({ invalid_payload: 6 });

    const good = h.next(() => true);
    await pub.publishAsync(topic, '{"reading": {"value": 20.25}}', { qos: 1 });
    expect((await good)[0]).toMatchObject({ channel: 'temperature', value: 20.25, quality: 'good' });
    expect(h.instrument.getHealth()).toMatchObject({ polls: 7, connected: true });

    // One warning per topic within the log interval, with the size and a short start of the payload only.
    const warnings = h.logs.filter((l) => l.msg === 'invalid payload from the instrument');
    expect(warnings.map((w) => w['topic'])).toEqual([topic, plain]);
    expect(warnings[0]).toMatchObject({ bytes: huge.length, reason: expect.stringMatching(/not JSON/) });
    expect(String(warnings[0]?.['start']).length).toBeLessThanOrEqual(64);
    for (const line of h.rawLogs) expect(line.length).toBeLessThan(1000);
  });

  test('timestamps that are not finite, far in the future or in seconds are refused and counted', async () => {
    const topic = newTopic('ts');
    const h = await started(harness(profileOf([{ name: 'force', topic, jsonPath: 'v', timestampPath: 't', unit: 'kN' }])));
    const pub = await publisher();
    const payloads = [
      '{"v": 1, "t": 1e999}',
      `{"v": 1, "t": ${Date.now() + 2 * 86_400_000}}`,
      `{"v": 1, "t": ${Math.floor(Date.now() / 1000)}}`,
      '{"v": 1, "t": "2025-06-01T12:00:00"}',
      '{"v": 1}',
    ];
    for (const payload of payloads) await pub.publishAsync(topic, payload, { qos: 1 });
    await until(() => h.samples.length === 5, 'five bad samples');
    expect(h.samples.map((s) => s.reason)).toEqual([
      'timestamp is not a finite number',
      expect.stringMatching(/is more than 1 day in the future$/),
      expect.stringMatching(/is before 2000-01-01 \(seconds instead of milliseconds\?\)$/),
      expect.stringMatching(/is not ISO 8601 with a zone/),
      'no timestamp at t (timestampPath t)',
    ]);
    expect(h.samples.every((s) => s.quality === 'bad' && s.value === null)).toBe(true);
    expect(h.instrument.getHealth().errors).toEqual({ invalid_timestamp: 5 });
    const good = h.next(() => true);
    const ts = Date.now() - 10;
    await pub.publishAsync(topic, JSON.stringify({ v: 2, t: ts }), { qos: 1 });
    expect((await good)[0]).toMatchObject({ value: 2, ts, quality: 'good' });
  });

  test('a point silent for staleAfterMs is reported uncertain once, and again after its next silence', async () => {
    const time = manualTime(1_750_000_000_000);
    const talking = newTopic('talking');
    const silent = newTopic('silent');
    const h = await started(
      harness(
        profileOf(
          [
            { name: 'temperature', topic: talking, unit: '°C' },
            { name: 'door', topic: silent, jsonPath: 'open' },
          ],
          { staleAfterMs: 1000 },
        ),
        { now: time.now, every: time.every },
      ),
    );
    const pub = await publisher();
    time.advance(400);
    const first = h.next(() => true);
    await pub.publishAsync(talking, '20', { qos: 1 });
    expect((await first)[0]).toMatchObject({ value: 20, quality: 'good', ts: 1_750_000_000_400 });

    time.advance(599); // temperature silent 599 ms, door 999 ms since start
    time.tick();
    expect(h.samples).toHaveLength(1);
    time.advance(1);
    time.tick();
    expect(h.samples.slice(1)).toEqual([
      {
        instrument: 'ut-1',
        channel: 'door',
        ts: 1_750_000_001_000,
        value: null,
        unit: '',
        quality: 'uncertain',
        reason: 'stale: no message for 1000 ms',
      },
    ]);
    time.advance(400);
    time.tick();
    expect(h.samples[2]).toMatchObject({ channel: 'temperature', quality: 'uncertain', reason: 'stale: no message for 1000 ms', value: null });
    time.advance(60_000);
    time.tick();
    time.tick();
    expect(h.samples).toHaveLength(3); // once per silence

    const again = h.next(() => true);
    await pub.publishAsync(talking, '20', { qos: 1 });
    // Same value as before the silence, reported all the same: it is news after "stale".
    expect((await again)[0]).toMatchObject({ value: 20, quality: 'good' });
    time.advance(1000);
    time.tick();
    expect(h.samples.slice(4).map((s) => [s.channel, s.quality])).toEqual([['temperature', 'uncertain']]);

    await h.instrument.stop();
    expect(time.running()).toBe(false);
  });

  test('staleness is detected with the real clock and timer', async () => {
    const topic = newTopic('idle');
    const h = await started(harness(profileOf([{ name: 'load', topic, unit: 'N' }], { staleAfterMs: 100 })));
    const [stale] = await h.next((s) => s[0]?.quality === 'uncertain', 2000);
    expect(stale?.reason).toMatch(/^stale: no message for (\d+) ms$/);
    expect(Number(/(\d+) ms/.exec(stale?.reason ?? '')?.[1])).toBeGreaterThanOrEqual(100);
    await new Promise((r) => setTimeout(r, 300));
    expect(h.samples.filter((s) => s.quality === 'uncertain')).toHaveLength(1);
  });

  test('change reporting suppresses moves within the deadband; both also reports every periodMs', async () => {
    const topic = newTopic('dead');
    const h = await started(harness(profileOf([{ name: 'load', topic, unit: 'N' }], { reporting: { mode: 'change', deadband: 0.5 } })));
    const pub = await publisher();
    for (const v of [10, 10.2, 10.6, 10.7, 11.2, 11.2, 10.5]) await pub.publishAsync(topic, String(v), { qos: 1 });
    await until(() => h.instrument.getHealth().polls === 7, 'seven messages');
    expect(h.samples.map((s) => s.value)).toEqual([10, 10.6, 11.2, 10.5]);
    expect(h.instrument.getHealth().lastGood).not.toBeNull();

    const time = manualTime(1_750_000_000_000);
    const both = newTopic('both');
    const b = await started(
      harness(profileOf([{ name: 'load', topic: both, unit: 'N' }], { reporting: { mode: 'both', deadband: 1, periodMs: 1000 } }), {
        now: time.now,
        every: time.every,
      }),
    );
    for (const [dt, v] of [
      [0, 5],
      [500, 5.5],
      [499, 5],
      [1, 5], // 1000 ms after the first report
      [100, 7], // change
    ] as const) {
      time.advance(dt);
      const polls = b.instrument.getHealth().polls;
      await pub.publishAsync(both, String(v), { qos: 1 });
      await until(() => b.instrument.getHealth().polls === polls + 1, 'the message');
    }
    expect(b.samples.map((s) => [s.ts - 1_750_000_000_000, s.value])).toEqual([
      [0, 5],
      [1000, 5],
      [1100, 7],
    ]);
  });

  test('a retained value without a timestamp is uncertain: its arrival time is not its time', async () => {
    const topic = newTopic('retained');
    await broker.pub(INSTRUMENT, topic, '42', ['-r']);
    cleanup.push(() => broker.pub(INSTRUMENT, topic, '', ['-r'])); // an empty retained message clears it
    const h = harness(profileOf([{ name: 'level', topic, unit: 'mm' }]));
    const got = h.next(() => true);
    await started(h);
    expect((await got)[0]).toMatchObject({ value: 42, quality: 'uncertain', reason: 'retained message: measured at an unknown time' });
    const live = h.next(() => true);
    await broker.pub(INSTRUMENT, topic, '43');
    expect((await live)[0]).toMatchObject({ value: 43, quality: 'good' });
  });

  test('a wrong password is logged clearly, leaves connected=false and does not crash', async () => {
    const topic = newTopic('locked');
    const h = harness(profileOf([{ name: 'force', topic, unit: 'kN' }]), { password: 'wrong-password', refusedRetryMs: 200 });
    await h.instrument.start();
    await until(() => (h.instrument.getHealth().errors['auth'] ?? 0) >= 2, 'two refused attempts');
    const errors = h.logs.filter((l) => l.level === 50);
    expect(errors[0]).toMatchObject({
      username: USER,
      msg: expect.stringMatching(/refused the username or password.*connection\.passwordFile/),
      reason: expect.stringMatching(/Not authorized/i),
    });
    expect(h.instrument.getHealth().connected).toBe(false);
    expect(h.healthEvents.some((e) => e.connected)).toBe(false);
    for (const line of h.rawLogs) expect(line).not.toContain('wrong-password');
    await h.instrument.stop();
  });

  test('after the broker restarts, the source reconnects, subscribes again and resumes', async () => {
    const topic = newTopic('restart');
    const h = await started(harness(profileOf([{ name: 'force', topic, jsonPath: 'f', unit: 'kN' }])));
    const before = h.next(() => true);
    await broker.pub(INSTRUMENT, topic, '{"f": 1}');
    expect((await before)[0]?.value).toBe(1);

    await broker.stop();
    await waitForHealth(h.instrument, (x) => !x.connected);
    expect(h.logs.some((l) => l.msg.startsWith('lost the connection to the MQTT broker'))).toBe(true);
    // Reconnect attempts fail while the broker is down: counted, and logged once rather than every 100 ms.
    await until(() => (h.instrument.getHealth().errors['connect'] ?? 0) >= 3, 'three failed reconnects');
    expect(h.logs.filter((l) => l.msg === 'cannot reach the MQTT broker; retrying')).toHaveLength(1);
    expect(h.instrument.getHealth().connected).toBe(false);
    await broker.start();
    await waitForHealth(h.instrument, (x) => x.connected);

    const after = h.next(() => true);
    await broker.pub(INSTRUMENT, topic, '{"f": 2}');
    expect((await after)[0]).toMatchObject({ value: 2, quality: 'good' });
    expect(h.healthEvents.map((e) => e.connected)).toEqual([true, false, true]);
  });

  test('a profile with a passwordFile but no password, or a malformed path, is refused at construction', () => {
    const logger = pino({ level: 'silent' });
    const topic = newTopic('x');
    expect(() => new MqttInstrument(profileOf([{ name: 'a', topic }]), { logger })).toThrow(/passwordFile is set but no password/);
    // a malformed path does not get past the profile schema
    expect(() => profileOf([{ name: 'a', topic, jsonPath: 'a..b' }])).toThrow(/\\"a\.\.b\\" is not a dotted path/);
    expect(() => new MqttInstrument(profileOf([{ name: 'a', topic, timestampPath: 't' }]), { logger, password: PASSWORD })).toThrow(
      /points\[0\]\.timestampPath: needs jsonPath/,
    );
  });
});
