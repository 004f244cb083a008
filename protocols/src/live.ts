// What the server pushes to dashboards over socket.io, and what they may ask.
import type { InstrumentHealthMessage, Quality } from './measurement.js';
import type { RunSampleColumns } from './run-samples.js';
import type { ListName } from './api/common.js';

export interface LiveSample {
  gateway: string;
  seq: number;
  instrument: string;
  channel: string;
  ts: number;
  value: number | string | boolean | null;
  unit: string;
  quality: Quality;
}

/** A stored or received sample of a gateway as the server hands it on (to the live rooms, the runs, the inspection). */
export function liveSampleOf(
  gateway: string,
  s: Pick<LiveSample, 'seq' | 'instrument' | 'channel' | 'ts' | 'value' | 'unit' | 'quality'>,
): LiveSample {
  return { gateway, seq: s.seq, instrument: s.instrument, channel: s.channel, ts: s.ts, value: s.value, unit: s.unit, quality: s.quality };
}

export interface GatewayStatus {
  id: string;
  connected: boolean;
  lastSeen: number | null;
}

export interface ServerToClientEvents {
  samples: (samples: LiveSample[]) => void;
  gateway: (status: GatewayStatus) => void;
  instruments: () => void;
  health: (health: InstrumentHealthMessage[]) => void;
  /** stored samples of a running test run's instruments, to the sockets watching that run, packed (unpackRunSamples) */
  'run:samples': (run: string, samples: RunSampleColumns[]) => void;
  /** a watched run changed state (started, completed, aborted) */
  'run:state': (run: { id: string; state: string; startedAt: number | null; endedAt: number | null }) => void;
  /** an inspection alarm of a watched run was raised, changed, acknowledged or cleared */
  'run:alarm': (event: RunAlarmEvent) => void;
  /**
   * A record of a list changed (created, changed state, issued...): views showing that list read it again through
   * the REST API, which applies the reader's visibility. It names the list and the record's id, nothing more.
   */
  changed: (change: ListChange) => void;
}

/** what `changed` carries */
export interface ListChange {
  list: ListName;
  id: string;
}

export type AlarmEventKind = 'raised' | 'escalated' | 'recurred' | 'returned' | 'acknowledged' | 'cleared';

/** an inspection alarm as it stands after an event (the server's rule engine's alarm, frozen) */
export interface RunAlarm {
  /** `<rule id>/<instrument>/<channel or *>#<n>`, unique within its run */
  id: string;
  ruleId: string;
  kind: string;
  /** the worst severity reached while open: info, warning, alarm or critical */
  severity: string;
  instrument: string;
  channel: string | null;
  message: string;
  raisedAt: number;
  value: LiveSample['value'];
  active: boolean;
  occurrences: number;
  returnedAt: number | null;
  acknowledged: { by: string; reason: string; at: number } | null;
  cleared: { by: string; reason: string; at: number; auto: boolean } | null;
}

/** one stored event of a run's alarm: what happened, when, and the alarm as it stood after it */
export interface RunAlarmEvent {
  run: string;
  /** the event's place in the run's alarm history (increasing) */
  seq: number;
  event: AlarmEventKind;
  at: number;
  alarm: RunAlarm;
}

/** the answer to `run:watch`: a run the caller may not see is answered like an unknown one */
export type RunWatchAnswer = { ok: true; state: string } | { ok: false; error: string };

export interface ClientToServerEvents {
  hello: (ack: (info: { version: string }) => void) => void;
  /** joins the live room of a test run the caller may see */
  'run:watch': (run: string, ack: (answer: RunWatchAnswer) => void) => void;
  'run:unwatch': (run: string) => void;
}

export interface InstrumentView {
  id: string;
  gateway: string;
  identity: { maker: string; model: string; serialNumber: string; firmware?: string | undefined; kind?: string | undefined };
  channels: { name: string; unit: string }[];
  latest: Record<string, { value: LiveSample['value']; ts: number; quality: Quality }>;
  connected: boolean;
  health: InstrumentHealthMessage | null;
  /** calibration status (ISO/IEC 17025 6.4.8): when the newest calibration falls due, null without one */
  calibration?: { status: 'valid' | 'due-soon' | 'expired' | 'out-of-service' | 'never-calibrated'; dueAt: number | null } | undefined;
}
