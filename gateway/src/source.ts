// What every instrument source (Modbus poller, MQTT subscriber) gives the gateway.
import type { EventEmitter } from 'node:events';
import type { Quality } from '@labtrace/protocols';

export interface PolledSample {
  instrument: string;
  channel: string;
  /** ms since the epoch: when the instrument was read (or, for MQTT, its own timestamp or arrival) */
  ts: number;
  value: number | boolean | string | null;
  unit: string;
  quality: Quality;
  reason?: string;
}

export interface InstrumentHealth {
  instrument: string;
  connected: boolean;
  /** ms since the epoch of the last good sample, or null */
  lastGood: number | null;
  /** counters by kind: timeout, connect, io, exception_<code>, crc, stale_reply, invalid_payload, ... */
  errors: Record<string, number>;
  polls: number;
  /** request (or message) latency in ms over the recent window */
  latencyMs: { p50: number | null; p99: number | null };
  /** how late polls start against their schedule (Modbus) */
  pollJitterMs?: { p50: number | null; p99: number | null };
  /** the circuit breaker: closed (normal), open (dead device, polled slowly) or half-open (trying) */
  breaker?: 'closed' | 'open' | 'half-open';
  /** what keeps the instrument from being read now, or what it last reported, in words */
  problem?: string;
}

export interface SourceEvents {
  samples: [samples: PolledSample[]];
  health: [health: InstrumentHealth];
  /** one latency as the health reports it (ms): request to reply of a poll, a message's delay (MQTT, OPC UA), a file's handling */
  latency: [ms: number];
}

export interface InstrumentSource extends EventEmitter<SourceEvents> {
  readonly id: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  getHealth(): InstrumentHealth;
}
