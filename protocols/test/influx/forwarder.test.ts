// The shared InfluxDB forwarder (gateway historian and server store) against a real influxd (1.6, loopback, temporary
// folder), with a source that keeps its cursor as a store does. Every write is watched on its way (which batches it
// carried, and the cursor when it was sent), so that "nothing written twice beyond what the cursor allows" is checked
// on the requests themselves, not only on InfluxDB's points (which a second write would overwrite unseen).
import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import { Influxd } from '../helpers/influxd.js';
import {
  InfluxForwarder,
  InfluxWriter,
  linesToBody,
  toLineProtocol,
  type BodyWriter,
  type ForwardItem,
  type ForwardSource,
  type InfluxFailure,
  type InfluxOutcome,
} from '../../src/influx/index.js';
import type { Sample } from '../../src/index.js';

const T0 = 1_800_000_000_000;
const DAY = 86_400_000;
const PER_BATCH = 4;
const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

function samples(batch: number, ts?: number): Sample[] {
  return Array.from({ length: PER_BATCH }, (_, i) => {
    const seq = batch * PER_BATCH + i;
    return { seq, instrument: 'ut-1', channel: `ch${i}`, ts: ts ?? T0 + seq * 10, value: seq * 1.5, unit: 'kN', quality: 'good' };
  });
}

/** A store's batches in memory, its durable cursor moved only by advance() and refuse(), as the real sources do. */
class Store implements ForwardSource<ForwardItem> {
  readonly items: ForwardItem[] = [];
  cursor = -1;
  readonly advances: number[][] = [];
  readonly refusals: { position: number; status: number | undefined; error: string }[] = [];

  add(batch: number, ts?: number): void {
    this.items.push({ position: batch, ...linesToBody(toLineProtocol('gw-1', samples(batch, ts)), 1000) });
  }

  read(after: number, limit: number): ForwardItem[] {
    return this.items.filter((i) => i.position > after).slice(0, limit);
  }

  advance(items: ForwardItem[]): void {
    // contiguous from the cursor, in order
    expect(items[0]?.position).toBe(this.cursor + 1);
    items.forEach((item, k) => expect(item.position).toBe(this.cursor + 1 + k));
    this.advances.push(items.map((i) => i.position));
    this.cursor = items[items.length - 1]?.position ?? this.cursor;
  }

  refuse(item: ForwardItem, failure: InfluxFailure, error: string): void {
    expect(item.position).toBe(this.cursor + 1);
    this.refusals.push({ position: item.position, status: failure.status, error });
    this.cursor = item.position;
  }
}

/** The writer, watched: the batches of every request and the store's cursor when it went out. */
class Watched implements BodyWriter {
  readonly sent: { batches: number[]; cursor: number; outcome?: InfluxOutcome }[] = [];
  inFlight = 0;
  maxInFlight = 0;

  constructor(
    private readonly writer: InfluxWriter,
    private readonly store: Store,
  ) {}

  async writeBody(body: Uint8Array): Promise<InfluxOutcome> {
    const seqs = [...new TextDecoder().decode(body).matchAll(/seq=(\d+)i/g)].map((m) => Number(m[1]));
    const entry: (typeof this.sent)[number] = { batches: [...new Set(seqs.map((s) => Math.floor(s / PER_BATCH)))], cursor: this.store.cursor };
    this.sent.push(entry);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      entry.outcome = await this.writer.writeBody(body);
      return entry.outcome;
    } finally {
      this.inFlight--;
    }
  }

  /** no request ever carried a batch the cursor had already passed */
  expectNothingBehindTheCursor(): void {
    for (const { batches, cursor } of this.sent) for (const b of batches) expect(b).toBeGreaterThan(cursor);
  }
}

interface Seen {
  written: number[];
  rejected: number[];
  failing: string[];
  recovered: number;
}

function watch(f: InfluxForwarder<ForwardItem>): Seen {
  const seen: Seen = { written: [], rejected: [], failing: [], recovered: 0 };
  f.on('written', (items) => seen.written.push(...items.map((i) => i.position)));
  f.on('rejected', (item) => seen.rejected.push(item.position));
  f.on('failing', (e) => seen.failing.push(e));
  f.on('recovered', () => seen.recovered++);
  return seen;
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

let influxd: Influxd;

beforeAll(async () => {
  influxd = await Influxd.create();
  await influxd.start();
}, 60_000);

afterAll(async () => {
  await influxd.dispose();
});

describe('InfluxForwarder against influxd', () => {
  beforeEach(async () => {
    if (!influxd.running) await influxd.start();
  }, 60_000);

  function forwarder(store: Store, database: string, extra: { pollMs?: number; batchLines?: number } = {}) {
    const writer = new Watched(new InfluxWriter({ url: influxd.url, target: { api: 'v1', database }, timeoutMs: 5000 }), store);
    const f = new InfluxForwarder<ForwardItem>({
      writer,
      logger: silent,
      logFields: {},
      holder: 'the test store',
      batchLines: 2 * PER_BATCH,
      maxInFlight: 3,
      retryInitialMs: 50,
      retryMaxMs: 200,
      pollMs: 20,
      ...extra,
    });
    return { f, writer, seen: watch(f) };
  }
  const seqs = async (db: string): Promise<number[]> =>
    (await influxd.query(db, `SELECT seq FROM "measurement" WHERE instrument = 'ut-1' ORDER BY time`)).map((r) => Number(r['seq']));

  test('influxd killed, then back: every batch written, in order, the cursor moved only past acknowledged writes', async () => {
    await influxd.createDatabase('outage');
    const store = new Store();
    for (let b = 0; b < 30; b++) store.add(b);
    const { f, writer, seen } = forwarder(store, 'outage');
    const running = f.run(store, -1);
    let next = 30;
    try {
      await waitFor('some batches written', () => store.cursor >= 10);
      await influxd.kill();
      // more batches after the kill: the outage is met even when the first 30 were all written before it
      for (; next < 60; next++) store.add(next);
      f.notify();
      await waitFor('the outage', () => seen.failing.length === 1);
      const held = store.cursor;
      // a few failed attempts: the cursor stays where the last acknowledged write left it
      await waitFor('retries', () => writer.sent.filter((s) => s.outcome?.ok === false).length >= 6);
      expect(store.cursor).toBe(held);
      expect(f.isFailing).toBe(true);
      await influxd.start();
      await waitFor('everything written', () => store.cursor === next - 1, 60_000);
    } finally {
      f.stop();
      await running;
    }
    expect(seen.written).toEqual(Array.from({ length: next }, (_, i) => i));
    expect(store.advances.flat()).toEqual(seen.written);
    expect(seen.failing).toHaveLength(1);
    expect(seen.recovered).toBe(1);
    expect(writer.maxInFlight).toBeGreaterThan(1);
    writer.expectNothingBehindTheCursor();
    expect(await seqs('outage')).toEqual(Array.from({ length: next * PER_BATCH }, (_, i) => i));
  }, 120_000);

  test('a batch InfluxDB refuses (400) is handed to the source once, classified, and the batches after it go on', async () => {
    await influxd.createDatabase('conflict');
    // `value` is a string in the shard of batch 5's time
    const late = T0 + 60 * DAY;
    const seed = await fetch(`${influxd.url}/write?db=conflict&precision=ms`, {
      method: 'POST',
      body: `measurement,channel=ch0,gateway=gw-0,instrument=ut-9,quality=good value="text" ${late}`,
    });
    expect(seed.status).toBe(204);
    const store = new Store();
    for (let b = 0; b < 12; b++) store.add(b, b === 5 ? late + 1 : undefined);
    const { f, writer, seen } = forwarder(store, 'conflict');
    const running = f.run(store, -1);
    try {
      await waitFor('everything taken', () => store.cursor === 11);
    } finally {
      f.stop();
      await running;
    }
    expect(store.refusals).toHaveLength(1);
    expect(store.refusals[0]).toMatchObject({ position: 5, status: 400 });
    expect(store.refusals[0]?.error).toMatch(/^HTTP 400: partial write: field type conflict/);
    expect(f.lastError).toBe(store.refusals[0]?.error);
    expect(seen.rejected).toEqual([5]);
    expect(seen.written).toEqual([0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]);
    expect(seen.failing).toEqual([]);
    expect(f.isFailing).toBe(false);
    // the refused batch alone was sent when it was refused
    const refusedAlone = writer.sent.filter((s) => s.outcome?.ok === false && s.batches.length === 1);
    expect(refusedAlone.map((s) => s.batches[0])).toEqual([5]);
    writer.expectNothingBehindTheCursor();
    const expected = Array.from({ length: 12 * PER_BATCH }, (_, i) => i).filter((s) => Math.floor(s / PER_BATCH) !== 5);
    expect((await seqs('conflict')).sort((a, b) => a - b)).toEqual(expected);
  }, 120_000);

  test('idle until notified; stopped with writes in flight, it takes their answers; run again, it goes on from the cursor', async () => {
    await influxd.createDatabase('pause');
    const store = new Store();
    // a poll so long that only notify() can end the idle wait within the test
    const { f, writer, seen } = forwarder(store, 'pause', { pollMs: 3_600_000 });
    let running = f.run(store, -1);
    await waitFor('the first (empty) read', () => f.isRunning);
    await new Promise((r) => setTimeout(r, 50));
    expect(writer.sent).toEqual([]);
    for (let b = 0; b < 20; b++) store.add(b);
    f.notify();
    await waitFor('some writes in flight', () => writer.inFlight > 0);
    f.stop();
    await running;
    // every write answered before stop() returned was taken in order: the cursor is the last acknowledged one
    const acknowledged = writer.sent.filter((s) => s.outcome?.ok === true).flatMap((s) => s.batches);
    expect(writer.sent.every((s) => s.outcome !== undefined)).toBe(true);
    expect(store.cursor).toBe(Math.max(...acknowledged));
    expect(seen.written).toEqual(Array.from({ length: store.cursor + 1 }, (_, i) => i));
    const stoppedAt = store.cursor;
    const sentBefore = writer.sent.length;

    running = f.run(store, store.cursor);
    await waitFor('the rest', () => store.cursor === 19);
    f.stop();
    await running;
    expect(seen.written).toEqual(Array.from({ length: 20 }, (_, i) => i));
    // the second run sent nothing the first had taken
    for (const s of writer.sent.slice(sentBefore)) for (const b of s.batches) expect(b).toBeGreaterThan(stoppedAt);
    writer.expectNothingBehindTheCursor();
    expect(await seqs('pause')).toEqual(Array.from({ length: 20 * PER_BATCH }, (_, i) => i));
  }, 120_000);

  test('InfluxDB refusing every write (missing database) is an outage: retried, nothing refused, the cursor stays', async () => {
    const store = new Store();
    for (let b = 0; b < 5; b++) store.add(b);
    const { f, writer, seen } = forwarder(store, 'later');
    const running = f.run(store, -1);
    try {
      await waitFor('a few attempts', () => writer.sent.length >= 4);
      expect(seen.failing[0]).toMatch(/database not found/);
      expect(store.cursor).toBe(-1);
      expect(store.refusals).toEqual([]);
      await influxd.createDatabase('later');
      await waitFor('everything written', () => store.cursor === 4);
    } finally {
      f.stop();
      await running;
    }
    expect(seen.recovered).toBe(1);
    expect(writer.sent.filter((s) => s.outcome?.ok === false).every((s) => s.outcome?.ok === false && s.outcome.kind === 'refused-all')).toBe(true);
    writer.expectNothingBehindTheCursor();
  }, 120_000);
});
