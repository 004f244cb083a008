// The durable outbox: batches survive a restart of the gateway and leave only when every sink confirmed.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import mqtt from 'mqtt';
import pino from 'pino';
import {
  ackMessageSchema,
  dataMessageSchema,
  formatSignerKey,
  isSealedBatch,
  openBatch,
  parseSignerKey,
  topicFor,
  type Sample,
} from '@labtrace/protocols';
import { Mosquitto } from '@labtrace/protocols/test/mosquitto';
import { Outbox } from '../../src/outbox/outbox.js';
import { MAX_IN_FLIGHT, MQTT_SINK, MqttUplink } from '../../src/uplink/mqtt-uplink.js';

const USER = 'instrument';
const PASSWORD = 'correct-horse-battery';

const sample = (seq: number): Sample => ({
  seq,
  instrument: 'i-1',
  channel: 'c',
  ts: 1_800_000_000_000 + seq,
  value: seq * 1.5,
  unit: 'kN',
  quality: 'good',
});
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'labtrace-outbox-'));

describe('Outbox', () => {
  test('a batch stays until every sink confirmed it, and everything survives a reopen', () => {
    const dir = tmp();
    const a = new Outbox(dir, ['mqtt', 'influx']);
    const b0 = a.append('gw', [sample(0), sample(1)]);
    const b1 = a.append('gw', [sample(2)]);
    expect([b0.batch, b1.batch]).toEqual([0, 1]);
    expect(a.heldSamples).toBe(3);
    expect(a.ack('mqtt', 0)).toBe(false); // influx has not confirmed yet
    expect(a.ack('mqtt', 0)).toBe(false);
    // each sink's backlog is counted apart: the server's bound ignores the historian's backlog
    expect([a.heldFor('mqtt'), a.heldFor('influx')]).toEqual([1, 3]);
    expect(a.unacked('mqtt').map((b) => b.batch)).toEqual([1]);
    expect(a.unacked('influx').map((b) => b.batch)).toEqual([0, 1]);
    a.close();

    const b = new Outbox(dir, ['mqtt', 'influx']);
    expect(b.heldSamples).toBe(3);
    expect([b.heldFor('mqtt'), b.heldFor('influx')]).toEqual([1, 3]);
    expect(b.unacked('mqtt').map((x) => x.batch)).toEqual([1]);
    expect(b.unacked('influx')[0]?.message.samples).toEqual([sample(0), sample(1)]);
    expect(b.ack('influx', 0)).toBe(true);
    expect(b.heldSamples).toBe(1);
    expect(b.ack('mqtt', 1)).toBe(false);
    expect(b.ack('influx', 1)).toBe(true);
    expect(b.heldSamples).toBe(0);
    expect([b.heldFor('mqtt'), b.heldFor('influx')]).toEqual([0, 0]);
    expect(b.batches).toBe(0);
    b.close();

    // batch numbers never repeat, even after the outbox was emptied
    const c = new Outbox(dir, ['mqtt', 'influx']);
    expect(c.append('gw', [sample(3)]).batch).toBe(2);
    c.close();
  });

  test('an acknowledgement of an unknown batch changes nothing', () => {
    const o = new Outbox(tmp(), ['mqtt']);
    o.append('gw', [sample(0)]);
    expect(o.ack('mqtt', 42)).toBe(false);
    expect(o.heldSamples).toBe(1);
    o.close();
  });
});

describe('MqttUplink with the outbox, against a real broker', () => {
  let broker: Mosquitto;
  beforeAll(async () => {
    broker = await Mosquitto.create({
      users: [{ username: USER, password: PASSWORD }],
      conf: ['allow_anonymous false', 'persistence false', 'listener 1883'].join('\n'),
    });
    await broker.start();
  });
  afterAll(async () => {
    await broker.dispose();
  });

  function uplink(outbox: Outbox): MqttUplink {
    return new MqttUplink(
      {
        url: broker.url,
        username: USER,
        password: PASSWORD,
        gateway: 'gw-t',
        lab: 'lab-t',
        keepaliveSeconds: 30,
        maxBatchSamples: 10,
        maxBatchDelayMs: 20,
        maxHeldSamples: 10_000,
        birth: () => ({ v: 1, gateway: 'gw-t', version: 't', instruments: [] }),
        outbox,
      },
      pino({ level: 'silent' }),
    );
  }

  test('what a gateway could not deliver before it stopped is delivered by the next run', async () => {
    const dir = tmp();
    // First run: nobody acknowledges (the server is down), and the gateway stops.
    const first = new Outbox(dir, [MQTT_SINK]);
    const one = uplink(first);
    await one.start();
    for (let i = 0; i < 25; i++) one.push([sample(i)]);
    await new Promise((r) => setTimeout(r, 200));
    await one.stop(100);
    expect(first.heldSamples).toBe(25);
    first.close();

    // The "server": stores what arrives and acknowledges each batch.
    const stored = new Map<number, Sample>();
    const server = await mqtt.connectAsync(broker.url, { username: USER, password: PASSWORD, clientId: 'server-t' });
    server.on('message', (_topic, payload) => {
      const message = dataMessageSchema.parse(JSON.parse(payload.toString()));
      for (const s of message.samples) stored.set(s.seq, s);
      void server.publishAsync(topicFor('lab-t', 'gw-t', 'ACK'), JSON.stringify(ackMessageSchema.parse({ v: 1, batch: message.batch })), { qos: 1 });
    });
    await server.subscribeAsync(topicFor('lab-t', 'gw-t', 'DATA'), { qos: 1 });

    // Second run on the same data directory.
    const second = new Outbox(dir, [MQTT_SINK]);
    const two = uplink(second);
    await two.start();
    two.push([sample(25)]);
    for (let i = 0; i < 100 && (second.heldSamples > 0 || stored.size < 26); i++) await new Promise((r) => setTimeout(r, 50));
    await two.stop(500);
    second.close();
    await server.endAsync();
    expect([...stored.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 26 }, (_, i) => i));
    expect(stored.get(7)).toEqual(sample(7));
    expect(second.heldSamples).toBe(0);
  }, 30_000);

  test('a restart whose stored batches were all acknowledged: new batches go out (numbering continues, nothing to resend)', async () => {
    const dir = tmp();
    const first = new Outbox(dir, [MQTT_SINK]);
    for (let i = 0; i < 5; i++) first.ack(MQTT_SINK, first.append('gw-t', [sample(i)]).batch);
    expect(first.heldSamples).toBe(0);
    first.close();

    const received: number[] = [];
    const server = await mqtt.connectAsync(broker.url, { username: USER, password: PASSWORD, clientId: 'server-r' });
    server.on('message', (_topic, payload) => {
      const message = dataMessageSchema.parse(JSON.parse(payload.toString()));
      received.push(message.batch);
      void server.publishAsync(topicFor('lab-t', 'gw-t', 'ACK'), JSON.stringify({ v: 1, batch: message.batch }), { qos: 1 });
    });
    await server.subscribeAsync(topicFor('lab-t', 'gw-t', 'DATA'), { qos: 1 });

    const second = new Outbox(dir, [MQTT_SINK]);
    const up = uplink(second);
    await up.start();
    for (let i = 0; i < 100 && !up.isConnected; i++) await new Promise((r) => setTimeout(r, 20));
    for (let i = 5; i < 8; i++) {
      up.push([sample(i)]);
      await new Promise((r) => setTimeout(r, 60));
    }
    for (let i = 0; i < 100 && (received.length < 3 || second.heldSamples > 0); i++) await new Promise((r) => setTimeout(r, 20));
    await up.stop(100);
    second.close();
    await server.endAsync();
    expect(received).toEqual([5, 6, 7]);
    expect(second.heldSamples).toBe(0);
  }, 30_000);

  test('a signed backlog goes out in order, at most MAX_IN_FLIGHT batches ahead of the ACKs, in the binary form; CMD resend and rebirth are obeyed', async () => {
    const dir = tmp();
    const key = parseSignerKey(formatSignerKey('gw-t', new Uint8Array(32).fill(4)));
    const outbox = new Outbox(dir, [MQTT_SINK], key);
    for (let i = 0; i < 60; i++) outbox.append('gw-t', [sample(i)]);
    const received: number[] = [];
    let births = 0;
    let acking = false;
    const server = await mqtt.connectAsync(broker.url, { username: USER, password: PASSWORD, clientId: 'server-w' });
    server.on('message', (topic, payload) => {
      if (topic.endsWith('/BIRTH')) {
        births++;
        return;
      }
      expect(isSealedBatch(payload)).toBe(true);
      const { signed } = openBatch(payload);
      received.push(signed.header.batch);
      if (acking) void server.publishAsync(topicFor('lab-t', 'gw-t', 'ACK'), JSON.stringify({ v: 1, batch: signed.header.batch }), { qos: 1 });
    });
    await server.subscribeAsync([topicFor('lab-t', 'gw-t', 'DATA'), topicFor('lab-t', 'gw-t', 'BIRTH')], { qos: 1 });
    const up = uplink(outbox);
    await up.start();
    // nobody acknowledges: only the window goes out
    for (let i = 0; i < 100 && received.length < MAX_IN_FLIGHT; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 300));
    expect(received).toEqual(Array.from({ length: MAX_IN_FLIGHT }, (_, i) => i));
    // the server asks for everything from batch 5 again, and for a rebirth
    const birthsBefore = births;
    await server.publishAsync(topicFor('lab-t', 'gw-t', 'CMD'), JSON.stringify({ v: 1, cmd: 'resend', fromBatch: 5 }), { qos: 1 });
    await server.publishAsync(topicFor('lab-t', 'gw-t', 'CMD'), JSON.stringify({ v: 1, cmd: 'rebirth' }), { qos: 1 });
    for (let i = 0; i < 100 && (received.length < 2 * MAX_IN_FLIGHT - 5 || births === birthsBefore); i++) await new Promise((r) => setTimeout(r, 20));
    expect(received.slice(MAX_IN_FLIGHT)).toEqual(Array.from({ length: MAX_IN_FLIGHT - 5 }, (_, i) => i + 5));
    expect(births).toBe(birthsBefore + 1);
    // acknowledgements open the window: everything arrives, and the outbox empties
    acking = true;
    for (const batch of new Set(received)) await server.publishAsync(topicFor('lab-t', 'gw-t', 'ACK'), JSON.stringify({ v: 1, batch }), { qos: 1 });
    for (let i = 0; i < 200 && outbox.heldSamples > 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(outbox.heldSamples).toBe(0);
    expect(new Set(received).size).toBe(60);
    await up.stop(100);
    outbox.close();
    await server.endAsync();
  }, 30_000);
});
