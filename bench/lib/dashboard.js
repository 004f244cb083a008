// What the dashboard's browser benchmarks share: a test server with a run of a method of N measurands (channels
// c1..cN of one instrument, fed by a signing test gateway), headless Chromium, and a signed-in browser state.
// Needs the built server, dashboard and dashboard tests (npm run build).
import os from 'node:os';
import { ORGANIZATION, send, startServer, TestGateway, USER_PASSWORD, waitFor } from '../../server/dist/test/helpers/server.js';
import { launch, signIn } from '../../dashboard/test-dist/helpers/browser.js';
import { processTable } from './proc.js';

export { launch };

const INSTRUMENT = 'ut-1';

/** a test server, its gateway, and a started run of a method with `channels` measurands */
export async function runFixture(channels) {
  const t = await startServer();
  const gw = await TestGateway.connect(t, 'gw-a');
  const names = Array.from({ length: channels }, (_, i) => `c${i + 1}`);
  await gw.announce([
    { id: INSTRUMENT, identity: { maker: 'm', model: 'x', serialNumber: '1' }, channels: names.map((name) => ({ name, unit: 'kN' })) },
  ]);
  await waitFor('the instrument', () => t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM instruments').get().n === 1);
  const call = async (p, body) => {
    const res = await t.fetch(p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }, 'technician');
    const json = await res.json();
    if (!res.ok) throw new Error(`${p}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  await call('/api/methods', {
    id: 'bench',
    standard: 'ISO 6892-1:2019',
    title: 'bench',
    definition: {
      measurands: names.map((name) => ({ name: `m-${name}`, unit: 'kN', channel: name })),
      limits: [{ measurand: 'm-c1', min: 0, max: 100 }],
      decisionRule: { kind: 'simple-acceptance' },
    },
  });
  await call('/api/lab-samples', { id: 'S-1', organization: ORGANIZATION, description: 'bench', condition: 'intact', receivedAt: Date.now() });
  const run = (await call('/api/runs', { sample: 'S-1', method: 'bench', instruments: [INSTRUMENT] })).id;
  await call(`/api/runs/${run}/start`, {});
  let seq = 0;
  /** `perChannel` samples on every channel, spread over the `spanMs` before now, sent without waiting for the ACK */
  const batch = (perChannel, spanMs = 100) => {
    const now = Date.now();
    const samples = [];
    for (let i = 0; i < perChannel; i++)
      for (const [c, channel] of names.entries())
        samples.push({
          seq: seq++,
          instrument: INSTRUMENT,
          channel,
          ts: now - spanMs + Math.round((i * spanMs) / perChannel),
          value: 50 + 10 * c + 5 * Math.sin(seq / 50),
          unit: 'kN',
          quality: 'good',
        });
    return gw.sign(samples);
  };
  return {
    t,
    run,
    channels: names,
    /** a batch, sent and acknowledged */
    sendAcked: async (perChannel, spanMs) => {
      const answer = await send(t, gw, batch(perChannel, spanMs));
      if (answer !== 'acked') throw new Error(`batch: ${answer}`);
    },
    /** a batch, published without waiting */
    publish: (perChannel, spanMs) => gw.publish(batch(perChannel, spanMs)),
    stop: async () => {
      await gw.end();
      await t.stop();
    },
  };
}

/** the browser state (session cookie) of a signed-in client, for new contexts that start with a cold cache */
export async function clientState(browser, t) {
  const s = await signIn(browser, t, 'client', USER_PASSWORD);
  const state = await s.context.storageState();
  await s.close();
  return state;
}

/** the median of numbers */
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? null : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** the machine's 1-minute load average per core: above 1, other work competes with the browser and the figures suffer */
export const loadPerCore = () => Math.round((os.loadavg()[0] / os.cpus().length) * 100) / 100;

/** CPU time (ms) used so far by the machine's Chromium processes (the browser, its renderers, its GPU process) */
function chromiumCpuMs() {
  const ticks = processTable()
    .filter((p) => /^(chromium|chrome|headless_shell)/.test(p.comm))
    .reduce((sum, p) => sum + p.ticks, 0);
  return (ticks * 1000) / 100;
}

/**
 * Waits until the browser has settled: a new window of headless Chromium draws its own toolbar UI in a renderer of
 * its own, which takes most of a core for about two seconds on a 2-core machine. A user's browser is open before
 * they follow a link, so a page is measured once the browser used under 5 % of a core for half a second (at most
 * 15 s). Returns how long it waited (ms).
 */
export async function browserSettled() {
  const start = Date.now();
  let before = chromiumCpuMs();
  while (Date.now() - start < 15_000) {
    await new Promise((r) => setTimeout(r, 500));
    const now = chromiumCpuMs();
    const used = now - before;
    before = now;
    if (used < 25) break;
  }
  return Date.now() - start;
}
