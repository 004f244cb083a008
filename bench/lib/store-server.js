// A server for the export and WAL benchmarks, run as a child process with an IPC channel: the in-process test
// server (server/dist/test/helpers/server.js: free loopback ports, a temporary data directory, a token per role)
// and a test gateway that fills its store with signed, chained batches, published without waiting for each
// acknowledgement (the broker keeps the order).
//
//   node --expose-gc bench/lib/store-server.js    (started by bench/export.bench.js and bench/wal.bench.js)
//
// To the parent, once started: { type: 'started', base, token, dataDir }. Messages from the parent, each answered
// with { type: 'reply', id, ... }:
//   { cmd: 'fill', id, batches, perBatch, instrument }   publishes the batches, answers once all are acknowledged
//                                                         and a signed checkpoint covers them ({ seconds, samples })
//   { cmd: 'loop', id, on, resolutionMs }   starts (on: true) or stops an event-loop delay histogram (perf_hooks,
//                                sampled every resolutionMs, 1 unless told; its values include that period); the
//                                stop answers its figures in ms: { maxMs, p99Ms, p50Ms, meanMs, count }
//   { cmd: 'mem', id, gc }       process.memoryUsage(), after a full garbage collection when gc is true
//   { cmd: 'stop', id }          stops the gateway and the server, removes the data directory, exits
import { rmSync } from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { records, startServer, TestGateway, waitFor } from '../../server/dist/test/helpers/server.js';

const GATEWAY = 'gw-a';

if (typeof process.send !== 'function') {
  console.error('store-server: start me with an IPC channel (from a benchmark)');
  process.exit(2);
}

// the transparency log's checkpoint is signed at most every 100 ms, so that one covers the batches soon after
const t = await startServer({ log: { minCheckpointIntervalMs: 100 } });
const gw = await TestGateway.connect(t, GATEWAY);
let histogram = null;

const reply = (id, body) => process.send({ ...body, type: 'reply', id });

async function fill({ batches, perBatch, instrument }) {
  const started = performance.now();
  await gw.birth(instrument);
  const first = gw.acks.length;
  for (let b = 0; b < batches; b++) await gw.publish(gw.seal(records(instrument, b * perBatch, perBatch, b + 0.25)));
  await waitFor('every batch acknowledged', () => gw.acks.length - first >= batches, 600_000);
  const seconds = (performance.now() - started) / 1000;
  const size = t.server.log?.size ?? 0;
  await waitFor('a checkpoint covering every batch', () => Number(t.server.log?.latestCheckpoint().note.split('\n')[1]) >= size, 60_000);
  return { seconds, samples: batches * perBatch };
}

const ms = (ns) => Math.round((ns / 1e6) * 100) / 100;

process.on('message', (msg) => {
  const run = async () => {
    switch (msg?.cmd) {
      case 'fill':
        return fill(msg);
      case 'loop':
        if (msg.on) {
          histogram?.disable();
          histogram = monitorEventLoopDelay({ resolution: msg.resolutionMs ?? 1 });
          histogram.enable();
          return {};
        } else {
          histogram.disable();
          const h = histogram;
          histogram = null;
          return { maxMs: ms(h.max), p99Ms: ms(h.percentile(99)), p50Ms: ms(h.percentile(50)), meanMs: ms(h.mean), count: h.count };
        }
      case 'mem':
        if (msg.gc && typeof globalThis.gc === 'function') {
          globalThis.gc();
          globalThis.gc();
        }
        return { memory: process.memoryUsage(), gc: typeof globalThis.gc === 'function' };
      case 'stop':
        await gw.end();
        await t.stop();
        rmSync(t.config.dataDir, { recursive: true, force: true });
        reply(msg.id, {});
        return process.exit(0);
      default:
        throw new Error(`unknown command ${JSON.stringify(msg?.cmd)}`);
    }
  };
  run().then(
    (body) => reply(msg.id, body),
    (err) => reply(msg.id, { error: err instanceof Error ? err.stack : String(err) }),
  );
});

process.send({ type: 'started', base: t.base, token: t.tokens.admin, dataDir: t.config.dataDir });
