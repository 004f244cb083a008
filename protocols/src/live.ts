// What the server pushes to dashboards over socket.io, and what they may ask.
import type { InstrumentHealthMessage, Quality } from './measurement.js';

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
}

export interface ClientToServerEvents {
  hello: (ack: (info: { version: string }) => void) => void;
}

export interface InstrumentView {
  id: string;
  gateway: string;
  identity: { maker: string; model: string; serialNumber: string; firmware?: string | undefined; kind?: string | undefined };
  channels: { name: string; unit: string }[];
  latest: Record<string, { value: LiveSample['value']; ts: number; quality: Quality }>;
  connected: boolean;
  health: InstrumentHealthMessage | null;
}
