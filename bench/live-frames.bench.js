// Frames of a live run view with 8 charts: a run of a method with 8 measurands (channels c1..c8 of one
// instrument) open at #/runs/<id> in headless Chromium (1440 x 900) while a signing test gateway sends a batch
// every BENCH_BATCH_MS with BENCH_RATE_HZ samples per second on each channel. The page records the time between
// animation frames (requestAnimationFrame) for BENCH_SECONDS; counted: frames over 50 ms (a visible stall: below
// 20 fps), the frame rate, percentiles of the frame time. Goal (issue 15): the live views keep 60 fps, so no frame
// over 50 ms. Headless Chromium paces frames at 60 Hz; a busy machine (machineBusyPercent, loadPerCoreAtEnd) shows as long frames too.
//
// Needs npm run build. Environment: BENCH_SECONDS (10), BENCH_RATE_HZ (50), BENCH_BATCH_MS (100), BENCH_CHARTS (8).
// Writes bench/results/live-frames.json.
import os from 'node:os';
import { clearInterval, setInterval } from 'node:timers';
/* global document, performance, requestAnimationFrame -- in functions run in the page */
import { envReader } from './lib/env.js';
import { clientState, launch, loadPerCore, median, runFixture } from './lib/dashboard.js';
import { percentile, round1, writeResult } from './lib/result.js';

const NAME = 'live-frames';
const { envInt } = envReader(NAME);
const SECONDS = envInt('BENCH_SECONDS', 10, 1, 600);
const RATE_HZ = envInt('BENCH_RATE_HZ', 50, 1, 10_000);
const BATCH_MS = envInt('BENCH_BATCH_MS', 100, 10, 10_000);
const CHARTS = envInt('BENCH_CHARTS', 8, 1, 64);
const LONG_MS = 50;
const WAIT = { timeout: 30_000 };

const f = await runFixture(CHARTS);
const browser = await launch();
let timer;
try {
  // some history first, so that the charts have drawn before the measured window
  await f.sendAcked(RATE_HZ * 5, 5000);
  const storageState = await clientState(browser, f.t);
  const context = await browser.newContext({ storageState, viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${f.t.base}/#/runs/${encodeURIComponent(f.run)}`);
  await page.waitForSelector('[data-test="run-view"][data-watching="watching"]', WAIT);
  await page.waitForFunction(
    (n) => [...document.querySelectorAll('[data-test="run-chart"]')].filter((c) => Number(c.getAttribute('data-points')) > 0).length >= n,
    CHARTS,
    WAIT,
  );
  const charts = await page.locator('[data-test="run-chart"]').count();

  // the live feed: one batch every BATCH_MS, each with BATCH_MS worth of samples on every channel
  const perBatch = Math.max(1, Math.round((RATE_HZ * BATCH_MS) / 1000));
  let batches = 0;
  let failed = 0;
  timer = setInterval(() => {
    batches++;
    f.publish(perBatch, BATCH_MS).catch(() => failed++);
  }, BATCH_MS);
  await new Promise((r) => setTimeout(r, 1000)); // the feed running before the count starts
  const receivedBefore = Number(await page.locator('[data-test="charts"]').getAttribute('data-received'));
  const cpuBefore = os.cpus().map((c) => c.times);
  const deltas = await page.evaluate(
    (ms) =>
      new Promise((resolve) => {
        const out = [];
        let last = performance.now();
        const end = last + ms;
        const frame = (now) => {
          out.push(now - last);
          last = now;
          if (now < end) requestAnimationFrame(frame);
          else resolve(out);
        };
        requestAnimationFrame(frame);
      }),
    SECONDS * 1000,
  );
  const cpuAfter = os.cpus().map((c) => c.times);
  clearInterval(timer);
  timer = undefined;
  const receivedAfter = Number(await page.locator('[data-test="charts"]').getAttribute('data-received'));
  await context.close();

  const busy = cpuAfter.reduce((acc, t, i) => {
    const b = cpuBefore[i];
    const idle = t.idle - b.idle;
    const all = t.user - b.user + (t.nice - b.nice) + (t.sys - b.sys) + (t.irq - b.irq) + idle;
    return acc + (all === 0 ? 0 : 1 - idle / all);
  }, 0);
  const sorted = [...deltas].sort((a, b) => a - b);
  const total = deltas.reduce((a, b) => a + b, 0);
  const results = {
    charts,
    framesOver50ms: deltas.filter((d) => d > LONG_MS).length,
    frames: deltas.length,
    fps: round1((deltas.length / total) * 1000),
    frameMs: { p50: round1(median(deltas)), p95: round1(percentile(sorted, 95)), p99: round1(percentile(sorted, 99)), max: round1(sorted.at(-1)) },
    samplesShownPerSecond: round1(((receivedAfter - receivedBefore) / (SECONDS + 1)) * 1),
    batchesSent: batches,
    batchesFailed: failed,
    machineBusyPercent: round1((busy / cpuAfter.length) * 100),
    loadPerCoreAtEnd: loadPerCore(),
  };
  const file = writeResult(NAME, {
    params: { seconds: SECONDS, charts: CHARTS, rateHzPerChannel: RATE_HZ, batchMs: BATCH_MS, viewport: '1440x900', longFrameMs: LONG_MS },
    results,
    detail: { longFramesMs: deltas.filter((d) => d > LONG_MS).map(round1) },
  });
  console.log(JSON.stringify(results, null, 2));
  console.log(`${NAME}: wrote ${file}`);
} finally {
  if (timer !== undefined) clearInterval(timer);
  await browser.close();
  await f.stop();
}
