// The InfluxDB sink against a real influxd (1.6): every batch arrives exactly once (replays overwrite), an outage holds the
// batches in the outbox and they arrive in order afterwards, a batch InfluxDB refuses is recorded and skipped for InfluxDB
// only. The v2 API (no InfluxDB 2 installs here) and credentials are checked against a stand-in HTTP server.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import pino from 'pino';
import type { DataMessage, Sample } from '@labtrace/protocols';
import type { Logger } from '../../src/log.js';
import { INFLUX_SINK, InfluxSink, toLineProtocol, type InfluxSinkOptions } from '../../src/outbox/influx-sink.js';
import { Outbox } from '../../src/outbox/outbox.js';
import { Influxd, rowsOf, type QueryResponse } from '@labtrace/protocols/test/influxd';

const run = promisify(execFile);
const T0 = 1_800_000_000_000;
const DAY = 86_400_000;
const silent = pino({ level: 'silent' });
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'labtrace-influx-sink-'));

const sample = (seq: number, extra: Partial<Sample> = {}): Sample => ({
  seq,
  instrument: 'ut-1',
  channel: 'force',
  ts: T0 + seq * 10,
  value: seq * 1.5,
  unit: 'kN',
  quality: 'good',
  ...extra,
});
const samples = (from: number, count: number, extra: Partial<Sample> = {}): Sample[] =>
  Array.from({ length: count }, (_, i) => sample(from + i, extra));

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

function capturingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines };
}

/** What a sink did, in the order it did it. */
function record(sink: InfluxSink): { written: number[]; rejected: number[]; failing: string[]; recovered: number } {
  const seen = { written: [] as number[], rejected: [] as number[], failing: [] as string[], recovered: 0 };
  sink.on('written', (batch) => seen.written.push(batch));
  sink.on('rejected', (batch) => seen.rejected.push(batch));
  sink.on('failing', (error) => seen.failing.push(error));
  sink.on('recovered', () => seen.recovered++);
  return seen;
}

/** Sinks and outboxes a test opened, closed after it whether it passed or not (so that a failure leaks no timer). */
const opened: { stop?: () => Promise<void>; close?: () => void }[] = [];
afterEach(async () => {
  for (const o of opened.splice(0).reverse()) {
    await o.stop?.();
    o.close?.();
  }
});
function outboxIn(dir: string, sinks: string[]): Outbox {
  const outbox = new Outbox(dir, sinks);
  opened.push(outbox);
  return outbox;
}
function track(sink: InfluxSink): InfluxSink {
  opened.push(sink);
  return sink;
}

/** An outbox whose confirmations are lost, as when the gateway dies between the write and the commit of the ack. */
class LosingAcks extends Outbox {
  override ack(): boolean {
    return false;
  }
}

describe('toLineProtocol', () => {
  test('escapes names and strings, keeps seq out of the tags and types every field the same way always', () => {
    const message: DataMessage = {
      v: 1,
      gateway: 'gw-1',
      batch: 0,
      samples: [
        sample(1, { value: 3 }),
        sample(2, { value: 'say "hi", a=b \\ c', unit: 'm s' }),
        sample(3, { value: true, quality: 'uncertain' }),
        sample(4, { value: null, quality: 'bad', reason: 'no "answer"' }),
      ],
    };
    expect(toLineProtocol(message, 'lab data,v=1')).toEqual([
      'lab\\ data\\,v=1,channel=force,gateway=gw-1,instrument=ut-1,quality=good value=3,seq=1i,unit="kN" 1800000000010',
      'lab\\ data\\,v=1,channel=force,gateway=gw-1,instrument=ut-1,quality=good value_text="say \\"hi\\", a=b \\\\ c",seq=2i,unit="m s" 1800000000020',
      'lab\\ data\\,v=1,channel=force,gateway=gw-1,instrument=ut-1,quality=uncertain value_bool=true,seq=3i,unit="kN" 1800000000030',
      'lab\\ data\\,v=1,channel=force,gateway=gw-1,instrument=ut-1,quality=bad seq=4i,unit="kN",reason="no \\"answer\\"" 1800000000040',
    ]);
  });

  test('a measurement name that versions of InfluxDB would read differently is refused', () => {
    const outbox = outboxIn(tmp(), [INFLUX_SINK]);
    const options = { outbox, url: 'http://127.0.0.1:1', target: { api: 'v1', database: 'x' } } as const;
    expect(() => new InfluxSink({ ...options, measurement: 'a\\b' }, silent)).toThrow(/no backslash/);
    expect(() => new InfluxSink({ ...options, measurement: 'a\nb' }, silent)).toThrow(/control character/);
    outbox.close();
  });
});

describe('Outbox pages for a sink cursor', () => {
  test('unackedPage pages past a cursor and skips what the sink confirmed; failures are kept per sink', () => {
    const outbox = outboxIn(tmp(), ['mqtt', INFLUX_SINK]);
    for (let i = 0; i < 5; i++) outbox.append('gw', [sample(i)]);
    outbox.ack(INFLUX_SINK, 1);
    outbox.ack('mqtt', 2);
    expect(outbox.unackedPage(INFLUX_SINK, -1, 3).map((b) => b.batch)).toEqual([0, 2, 3]);
    expect(outbox.unackedPage(INFLUX_SINK, 2, 10).map((b) => b.batch)).toEqual([3, 4]);
    expect(outbox.unackedPage(INFLUX_SINK, 2, 10)[0]?.message.samples).toEqual([sample(3)]);
    expect(outbox.unackedPage('mqtt', 0, 10).map((b) => b.batch)).toEqual([1, 3, 4]);
    outbox.recordSinkFailure(INFLUX_SINK, 3, 'first', 10);
    outbox.recordSinkFailure(INFLUX_SINK, 3, 'again', 20);
    expect(outbox.sinkFailures(INFLUX_SINK)).toEqual([{ batch: 3, error: 'again', at: 20 }]);
    expect(outbox.sinkFailures('mqtt')).toEqual([]);
    outbox.close();
  });
});

describe('InfluxSink against a real influxd', () => {
  let influxd: Influxd;
  beforeAll(async () => {
    influxd = await Influxd.create();
    await influxd.start();
  }, 60_000);
  afterAll(async () => {
    await influxd.dispose();
  }, 30_000);
  // a test that failed while influxd was down must not fail the next ones
  beforeEach(async () => {
    if (!influxd.running) await influxd.start();
  }, 60_000);

  function sink(outbox: Outbox, database: string, extra: Partial<InfluxSinkOptions> = {}, logger: Logger = silent): InfluxSink {
    return track(
      new InfluxSink(
        { outbox, url: influxd.url, target: { api: 'v1', database }, retryInitialMs: 50, retryMaxMs: 400, pollMs: 50, ...extra },
        logger,
      ),
    );
  }
  const count = async (db: string, measurement = 'measurement'): Promise<number> => {
    const rows = await influxd.query(db, `SELECT count(seq) FROM "${measurement}"`);
    return (rows[0]?.['count'] as number | undefined) ?? 0;
  };

  test('every sample arrives once, with its tags, typed fields and timestamp; the outbox empties', async () => {
    await influxd.createDatabase('basic');
    const measurement = 'lab data,v=1';
    const outbox = outboxIn(tmp(), [INFLUX_SINK]);
    const text = 'say "hi", a=b \\ c\nnext line';
    const sent = [
      // larger than batchLines: written in two requests
      outbox.append('gw-1', samples(0, 5)).message,
      outbox.append('gw-1', [sample(5, { value: 3 }), sample(6, { value: text, channel: 'state', unit: '' })]).message,
      outbox.append('gw-1', [sample(7, { value: true, channel: 'door', unit: '', quality: 'uncertain' })]).message,
      outbox.append('gw-1', [sample(8, { value: null, quality: 'bad', reason: 'timeout after 1000 ms' }), sample(9, { instrument: 'ut-2' })]).message,
    ];
    const s = sink(outbox, 'basic', { measurement, batchLines: 3 });
    const seen = record(s);
    await s.start();
    await waitFor('the outbox to empty', () => outbox.batches === 0);
    await s.stop();
    expect(seen.written).toEqual([0, 1, 2, 3]);
    expect(seen.failing).toEqual([]);

    const rows = await influxd.query('basic', `SELECT * FROM "lab data,v=1" ORDER BY time`);
    const expected = sent.flatMap((m) => m.samples);
    expect(rows).toHaveLength(expected.length);
    for (const [i, s] of expected.entries()) {
      const row = rows[i];
      expect(row).toEqual({
        name: measurement,
        time: s.ts,
        gateway: 'gw-1',
        instrument: s.instrument,
        channel: s.channel,
        quality: s.quality,
        seq: s.seq,
        unit: s.unit,
        value: typeof s.value === 'number' ? s.value : null,
        value_text: typeof s.value === 'string' ? s.value : null,
        value_bool: typeof s.value === 'boolean' ? s.value : null,
        reason: s.reason ?? null,
      });
    }
    // no field ever changes type, and seq is never a tag (a tag per sequence number would be a series per sample)
    const fields = await influxd.query('basic', `SHOW FIELD KEYS FROM "lab data,v=1"`);
    expect(Object.fromEntries(fields.map((f) => [f['fieldKey'], f['fieldType']]))).toEqual({
      reason: 'string',
      seq: 'integer',
      unit: 'string',
      value: 'float',
      value_bool: 'boolean',
      value_text: 'string',
    });
    const tags = await influxd.query('basic', `SHOW TAG KEYS FROM "lab data,v=1"`);
    expect(tags.map((t) => t['tagKey'])).toEqual(['channel', 'gateway', 'instrument', 'quality']);

    // the same, read by InfluxDB's own client
    const { stdout } = await run('influx', [
      ...['-host', '127.0.0.1', '-port', String(influxd.port), '-database', 'basic', '-precision', 'ms', '-format', 'json'],
      ...['-execute', `SELECT * FROM "lab data,v=1" ORDER BY time`],
    ]);
    expect(rowsOf(JSON.parse(stdout) as QueryResponse)).toEqual(rows);
    outbox.close();
  }, 90_000);

  test('a batch written again after its confirmation was lost overwrites the same points', async () => {
    await influxd.createDatabase('replay');
    const dir = tmp();
    const losing = new LosingAcks(dir, [INFLUX_SINK]);
    opened.push(losing);
    for (let b = 0; b < 3; b++) losing.append('gw-1', samples(b * 10, 10));
    const first = sink(losing, 'replay');
    const once = record(first);
    await first.start();
    await waitFor('the first writes', () => once.written.length === 3);
    await first.stop();
    losing.close();
    expect(await count('replay')).toBe(30);
    const before = await influxd.query('replay', 'SELECT * FROM "measurement" ORDER BY time');

    const outbox = outboxIn(dir, [INFLUX_SINK]);
    expect(outbox.unacked(INFLUX_SINK).map((b) => b.batch)).toEqual([0, 1, 2]);
    const second = sink(outbox, 'replay');
    const twice = record(second);
    await second.start();
    await waitFor('the outbox to empty', () => outbox.batches === 0);
    await second.stop();
    expect(twice.written).toEqual([0, 1, 2]);
    expect(await count('replay')).toBe(30);
    expect(await influxd.query('replay', 'SELECT * FROM "measurement" ORDER BY time')).toEqual(before);
    outbox.close();
  }, 90_000);

  test('influxd killed mid-stream: batches wait in the outbox, then arrive exactly once and in order', async () => {
    await influxd.createDatabase('outage');
    const outbox = outboxIn(tmp(), [INFLUX_SINK]);
    const { logger, lines } = capturingLogger();
    const s = sink(outbox, 'outage', {}, logger);
    const seen = record(s);
    let seq = 0;
    let appending = true;
    const appender = (async () => {
      while (appending) {
        outbox.append('gw-1', samples(seq, 5));
        seq += 5;
        s.notify();
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await s.start();
    try {
      await waitFor('some batches written', () => seen.written.length >= 5);
      await influxd.kill();
      await waitFor('the sink to notice the outage', () => seen.failing.length === 1);
      const failedAt = outbox.batches;
      await waitFor('batches to pile up during the outage', () => outbox.batches >= failedAt + 10);
      // durable and in the outbox, not in a client's memory; nothing past the failure point was confirmed
      const held = outbox.unacked(INFLUX_SINK).map((b) => b.batch);
      expect(held.length).toBe(outbox.batches);
      expect(held[0]).toBe((seen.written.at(-1) ?? -1) + 1);
      expect(s.isFailing).toBe(true);

      await influxd.start();
      await waitFor('the sink to recover', () => seen.recovered === 1, 60_000);
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      appending = false;
      await appender;
    }
    await waitFor('the outbox to empty', () => outbox.batches === 0, 60_000);
    await s.stop();

    const batches = seq / 5;
    expect(seen.written).toEqual(Array.from({ length: batches }, (_, i) => i));
    expect(seen.failing).toHaveLength(1);
    const rows = await influxd.query('outage', 'SELECT seq, value FROM "measurement" ORDER BY time');
    expect(rows.map((r) => r['seq'])).toEqual(Array.from({ length: seq }, (_, i) => i));
    expect(rows[seq - 1]?.['value']).toBe((seq - 1) * 1.5);
    expect(lines.some((l) => l.level === 40 && l.msg.includes('batches are held in the outbox'))).toBe(true);
    expect(lines.some((l) => l.level === 30 && l.msg.includes('succeed again'))).toBe(true);
    outbox.close();
  }, 180_000);

  test('a batch InfluxDB refuses (field type conflict) is recorded and skipped for InfluxDB only; later batches go on', async () => {
    await influxd.createDatabase('conflict');
    // `value` is a string in the shard of the second batch's time (a different shard from the others')
    const late = T0 + 60 * DAY;
    const seed = await fetch(`${influxd.url}/write?db=conflict&precision=ms`, {
      method: 'POST',
      body: `measurement,channel=other,gateway=gw-1,instrument=ut-9,quality=good value="text" ${late}`,
    });
    expect(seed.status).toBe(204);

    const outbox = outboxIn(tmp(), ['mqtt', INFLUX_SINK]);
    outbox.append('gw-1', samples(0, 4));
    outbox.append('gw-1', samples(4, 3, { ts: late + 1 }));
    outbox.append('gw-1', samples(7, 2));
    const { logger, lines } = capturingLogger();
    const s = sink(outbox, 'conflict', {}, logger);
    const seen = record(s);
    await s.start();
    await waitFor('the refusal', () => seen.rejected.length === 1);
    outbox.append('gw-1', samples(9, 2));
    s.notify();
    await waitFor('the later batch', () => seen.written.includes(3));
    await s.stop();

    expect(seen.written).toEqual([0, 2, 3]);
    expect(seen.rejected).toEqual([1]);
    const failures = outbox.sinkFailures(INFLUX_SINK);
    expect(failures.map((f) => f.batch)).toEqual([1]);
    expect(failures[0]?.error).toMatch(/^HTTP 400: partial write: field type conflict/);
    const alarm = lines.find((l) => l.level === 50 && l.msg.startsWith('ALARM'));
    expect(alarm).toMatchObject({ batch: 1, firstSeq: 4, lastSeq: 6, samples: 3, status: 400 });
    expect(seen.failing).toEqual([]);

    // the MQTT sink's cursor is its own: every batch stays until the server has it, the refused one included
    expect(outbox.unacked(INFLUX_SINK)).toEqual([]);
    expect(outbox.unacked('mqtt').map((b) => b.batch)).toEqual([0, 1, 2, 3]);
    expect(outbox.batches).toBe(4);
    expect(outbox.heldSamples).toBe(11);
    for (const b of [0, 1, 2, 3]) expect(outbox.ack('mqtt', b)).toBe(true);
    expect(outbox.batches).toBe(0);

    const rows = await influxd.query('conflict', 'SELECT seq FROM "measurement" WHERE instrument = \'ut-1\' ORDER BY time');
    expect(rows.map((r) => r['seq'])).toEqual([0, 1, 2, 3, 7, 8, 9, 10]);
    outbox.close();
  }, 90_000);

  test('a missing database is an operator matter: retried with an ALARM until it exists, nothing recorded as refused', async () => {
    const outbox = outboxIn(tmp(), [INFLUX_SINK]);
    outbox.append('gw-1', samples(0, 3));
    outbox.append('gw-1', samples(3, 3));
    const { logger, lines } = capturingLogger();
    const s = sink(outbox, 'later', {}, logger);
    const seen = record(s);
    await s.start();
    await waitFor('the sink to fail', () => seen.failing.length === 1);
    expect(seen.failing[0]).toMatch(/database not found/);
    expect(lines.find((l) => l.level === 50)?.msg).toMatch(/^ALARM: InfluxDB refuses every write/);
    await waitFor('a few retries', () => lines.filter((l) => l.msg === 'InfluxDB write failed again').length >= 2);
    expect(outbox.batches).toBe(2);

    await influxd.createDatabase('later');
    await waitFor('the outbox to empty', () => outbox.batches === 0);
    await s.stop();
    expect(seen.written).toEqual([0, 1]);
    expect(seen.recovered).toBe(1);
    expect(outbox.sinkFailures(INFLUX_SINK)).toEqual([]);
    expect(await count('later')).toBe(6);
    outbox.close();
  }, 90_000);
});

describe('InfluxSink requests, against a stand-in HTTP server', () => {
  interface Seen {
    method: string;
    url: string;
    authorization: string | undefined;
    body: string;
  }
  let server: Server;
  let url: string;
  const requests: Seen[] = [];
  /** the answers to give, in order; then 204 */
  let script: { status: number; body?: string; delayMs?: number }[] = [];

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        requests.push({
          method: req.method ?? '',
          url: req.url ?? '',
          authorization: req.headers.authorization,
          body: Buffer.concat(chunks).toString(),
        });
        const answer = script.shift() ?? { status: 204 };
        setTimeout(() => {
          res.writeHead(answer.status, { 'content-type': 'application/json' });
          res.end(answer.body ?? '');
        }, answer.delayMs ?? 0);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('v2: token, org, bucket and ms precision; 503 is retried, 400 is recorded', async () => {
    requests.length = 0;
    script = [
      { status: 503, body: '{"code":"unavailable","message":"busy"}' },
      { status: 204 },
      { status: 400, body: '{"code":"invalid","message":"unable to parse"}' },
    ];
    const outbox = outboxIn(tmp(), [INFLUX_SINK]);
    const first = outbox.append('gw-1', samples(0, 2)).message;
    const s = track(
      new InfluxSink(
        {
          outbox,
          url: `${url}/prefix`,
          target: { api: 'v2', org: 'my lab', bucket: 'data/autogen', token: 'tok-1' },
          retryInitialMs: 20,
          pollMs: 20,
        },
        silent,
      ),
    );
    const seen = record(s);
    await s.start();
    await waitFor('the first batch', () => seen.written.length === 1);
    outbox.append('gw-1', samples(2, 1));
    await waitFor('the refusal', () => seen.rejected.length === 1);
    await s.stop();

    expect(requests).toHaveLength(3);
    expect(requests[0]).toEqual({
      method: 'POST',
      url: '/prefix/api/v2/write?org=my%20lab&bucket=data%2Fautogen&precision=ms',
      authorization: 'Token tok-1',
      body: toLineProtocol(first).join('\n'),
    });
    expect(requests[1]).toEqual(requests[0]);
    expect(seen.failing).toEqual(['busy']);
    expect(seen.recovered).toBe(1);
    expect(outbox.sinkFailures(INFLUX_SINK)).toMatchObject([{ batch: 1, error: 'HTTP 400: unable to parse' }]);
    expect(outbox.batches).toBe(0);
    outbox.close();
  }, 90_000);

  test('v1: basic authentication, database and retention policy; 429 is retried; stop() waits for the write in flight', async () => {
    requests.length = 0;
    script = [
      { status: 429, body: '{"error":"too many requests"}' },
      { status: 204, delayMs: 300 },
    ];
    const outbox = outboxIn(tmp(), [INFLUX_SINK]);
    const message = outbox.append('gw-1', samples(0, 3)).message;
    const s = track(
      new InfluxSink(
        {
          outbox,
          url,
          target: { api: 'v1', database: 'lab', retentionPolicy: 'one year', username: 'gw', password: 'p:w' },
          measurement: 'm',
          retryInitialMs: 20,
          pollMs: 20,
        },
        silent,
      ),
    );
    const seen = record(s);
    await s.start();
    await waitFor('the retried write to be in flight', () => requests.length === 2);
    await s.stop();
    // answered after stop() was called, and confirmed before it returned
    expect(seen.written).toEqual([0]);
    expect(outbox.batches).toBe(0);
    expect(seen.failing).toEqual(['too many requests']);
    expect(requests[1]).toEqual({
      method: 'POST',
      url: '/write?db=lab&rp=one+year&precision=ms',
      authorization: `Basic ${Buffer.from('gw:p:w').toString('base64')}`,
      body: toLineProtocol(message, 'm').join('\n'),
    });
    outbox.close();
  }, 90_000);
});
