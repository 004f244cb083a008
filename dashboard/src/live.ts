// One socket.io connection for the whole dashboard, with the latest instruments and a rolling window of samples.
import { reactive, ref } from 'vue';
import type { Socket } from 'socket.io-client';
import { ApiError, api, call } from './api/client';
import { session } from './composables/useSession';
import type { InstrumentView, ListName, LiveSample } from '@labtrace/protocols/api';
// the socket's events (types only)
import type { ClientToServerEvents, ListChange, RunAlarmEvent, RunSampleColumns, RunWatchAnswer, ServerToClientEvents } from '@labtrace/protocols';
// the one module, not the package's index: that would bring its schemas and crypto into the page
import { unpackRunSamples } from '@labtrace/protocols/run-samples';

export const WINDOW_MS = 60_000;

export type Connection = 'connected' | 'reconnecting' | 'offline';

export const state = reactive({
  connected: false,
  /** what the connection indicator shows: offline when the browser has no network or socket.io gave up */
  connection: 'offline',
  instruments: [] as InstrumentView[],
  /** the last failure to load the instruments, as the server words it (logs) */
  error: '',
  /** the same failure for a view to translate (useErrorText) */
  failure: undefined as ApiError | undefined,
});

/** Samples per "instrument/channel", oldest first, trimmed to the window. */
export const series = new Map<string, LiveSample[]>();
export const tick = ref(0);

type ChangeListener = (change: ListChange) => void;
const changeListeners = new Set<ChangeListener>();
/** Calls `listener` when the server announces a change to one of `lists` (socket.io `changed`); returns the unsubscribe. */
export function onListChanged(lists: readonly ListName[], listener: ChangeListener): () => void {
  const wrapped: ChangeListener = (change) => {
    if (lists.includes(change.list)) listener(change);
  };
  changeListeners.add(wrapped);
  return () => changeListeners.delete(wrapped);
}

type Listener = (samples: LiveSample[]) => void;
const listeners = new Set<Listener>();
export function onSamples(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export async function loadInstruments(): Promise<void> {
  // clients of the lab do not read the lab's instrument list (they see their runs' instruments in the run)
  if (session.user?.role === 'client') return;
  try {
    state.instruments = await call(api.listInstruments);
    state.error = '';
    state.failure = undefined;
  } catch (err) {
    state.error = err instanceof Error ? err.message : String(err);
    state.failure = err instanceof ApiError ? err : undefined;
  }
}

export async function loadHistory(instrument: string, channel: string): Promise<void> {
  const past = await call(api.instrumentHistory, {
    params: { id: instrument },
    query: { channel, from: String(Date.now() - WINDOW_MS) },
  }).catch(() => undefined);
  if (!past) return;
  const key = `${instrument}/${channel}`;
  const known = series.get(key) ?? [];
  const seen = new Set(known.map((s) => `${s.gateway}:${s.seq}`));
  series.set(
    key,
    [...past.filter((s) => !seen.has(`${s.gateway}:${s.seq}`)), ...known].sort((a, b) => a.ts - b.ts),
  );
  tick.value++;
}

type LiveSocket = Socket<ServerToClientEvents, ClientToServerEvents>;
let socket: LiveSocket | undefined;
/** the socket on its way: socket.io's client loads after the first view (it is not needed to draw it) */
let opening: Promise<LiveSocket | undefined> | undefined;
/** counts disconnects: a socket that arrives after one is not opened */
let generation = 0;

export function disconnect(): void {
  generation++;
  opening = undefined;
  socket?.disconnect();
  socket = undefined;
  state.connected = false;
  state.connection = 'offline';
}

export interface RunWatcher {
  samples(samples: LiveSample[]): void;
  state(run: { id: string; state: string; startedAt: number | null; endedAt: number | null }): void;
  alarm(event: RunAlarmEvent): void;
  /** the answer to each `run:watch`, sent again after every reconnection (a new socket is in no room) */
  joined(answer: RunWatchAnswer): void;
}

/** Watches a run's room: its samples, state changes and alarms; returns the function that stops watching. */
export function watchRun(run: string, watcher: RunWatcher): () => void {
  let stop: (() => void) | undefined;
  let stopped = false;
  void open().then((s) => {
    if (s && !stopped) stop = attachRun(s, run, watcher);
  });
  return () => {
    stopped = true;
    stop?.();
  };
}

function attachRun(s: LiveSocket, run: string, watcher: RunWatcher): () => void {
  const join = (): void => {
    s.emit('run:watch', run, (answer) => watcher.joined(answer));
  };
  const onSamples = (id: string, samples: RunSampleColumns[]): void => {
    if (id === run) watcher.samples(unpackRunSamples(samples));
  };
  const onState = (r: Parameters<RunWatcher['state']>[0]): void => {
    if (r.id === run) watcher.state(r);
  };
  const onAlarm = (e: RunAlarmEvent): void => {
    if (e.run === run) watcher.alarm(e);
  };
  s.on('run:samples', onSamples);
  s.on('run:state', onState);
  s.on('run:alarm', onAlarm);
  s.on('connect', join);
  if (s.connected) join();
  return () => {
    s.off('run:samples', onSamples);
    s.off('run:state', onState);
    s.off('run:alarm', onAlarm);
    s.off('connect', join);
    if (s.connected) s.emit('run:unwatch', run);
  };
}

function onlineChanged(): void {
  if (!socket) return;
  state.connection = !navigator.onLine ? 'offline' : socket.connected ? 'connected' : 'reconnecting';
}
window.addEventListener('online', onlineChanged);
window.addEventListener('offline', onlineChanged);

/** The live connection, opened once (socket.io's client is loaded on the first call); undefined after a sign-out. */
function open(): Promise<LiveSocket | undefined> {
  if (socket) return Promise.resolve(socket);
  if (!opening) {
    const mine = generation;
    state.connection = 'reconnecting';
    opening = import('socket.io-client').then(
      ({ io }) => {
        if (mine !== generation) return undefined;
        socket = io({ transports: ['websocket', 'polling'] });
        wire(socket);
        return socket;
      },
      () => {
        // the script did not load (the network): the next call tries again
        opening = undefined;
        if (mine === generation) state.connection = 'offline';
        return undefined;
      },
    );
  }
  return opening;
}

export function connect(): void {
  void open();
}

function wire(socket: LiveSocket): void {
  socket.on('connect', () => {
    state.connected = true;
    state.connection = 'connected';
    void loadInstruments();
  });
  socket.on('disconnect', () => {
    state.connected = false;
    state.connection = navigator.onLine ? 'reconnecting' : 'offline';
  });
  socket.io.on('reconnect_failed', () => (state.connection = 'offline'));
  // the session ended (logout elsewhere, expiry): back to the sign-in form
  socket.on('connect_error', (err) => {
    if (err.message.startsWith('E_AUTH')) {
      disconnect();
      session.user = undefined;
    }
  });
  socket.on('instruments', () => void loadInstruments());
  socket.on('changed', (change) => {
    for (const l of changeListeners) l(change);
  });
  socket.on('gateway', (status) => {
    for (const i of state.instruments) if (i.gateway === status.id) i.connected = status.connected;
  });
  socket.on('health', (list) => {
    for (const h of list) {
      const instrument = state.instruments.find((i) => i.id === h.instrument);
      if (instrument) instrument.health = h;
    }
  });
  socket.on('samples', (samples) => {
    const cutoff = Date.now() - WINDOW_MS;
    for (const s of samples) {
      const key = `${s.instrument}/${s.channel}`;
      let list = series.get(key);
      if (!list) series.set(key, (list = []));
      list.push(s);
      while (list.length > 0 && (list[0]?.ts ?? 0) < cutoff) list.shift();
      const instrument = state.instruments.find((i) => i.id === s.instrument);
      if (instrument) instrument.latest[s.channel] = { value: s.value, ts: s.ts, quality: s.quality };
    }
    for (const l of listeners) l(samples);
    tick.value++;
  });
}
