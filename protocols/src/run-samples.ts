// How a test run's room carries its samples: grouped by stream (gateway, instrument, channel) in columns, with
// sequence numbers and timestamps as differences to the one before. A witness receives every record of the run;
// in this form a sample costs about a fifth of the bytes of a LiveSample object (names and unit once per stream,
// small numbers instead of 13-digit times), for the server's egress and each viewer's parsing alike.
import type { LiveSample } from './live.js';
import type { Quality } from './measurement.js';

export interface RunSampleColumns {
  gateway: string;
  instrument: string;
  channel: string;
  unit: string;
  /** the first sequence number, then each one's difference to the one before */
  seq: number[];
  /** the first timestamp (ms since the epoch), then each one's difference to the one before */
  ts: number[];
  value: LiveSample['value'][];
  /** one quality for every sample of the stream when they share it, else one per sample */
  quality: Quality | Quality[];
}

/** Groups samples by stream into columns; each stream keeps its samples' order. */
export function packRunSamples(samples: readonly LiveSample[]): RunSampleColumns[] {
  const streams = new Map<string, { columns: RunSampleColumns; qualities: Quality[]; lastSeq: number; lastTs: number }>();
  for (const s of samples) {
    const key = `${s.gateway}\u0000${s.instrument}\u0000${s.channel}\u0000${s.unit}`;
    let stream = streams.get(key);
    if (!stream) {
      stream = {
        columns: { gateway: s.gateway, instrument: s.instrument, channel: s.channel, unit: s.unit, seq: [], ts: [], value: [], quality: [] },
        qualities: [],
        lastSeq: 0,
        lastTs: 0,
      };
      streams.set(key, stream);
    }
    stream.columns.seq.push(s.seq - stream.lastSeq);
    stream.columns.ts.push(s.ts - stream.lastTs);
    stream.columns.value.push(s.value);
    stream.qualities.push(s.quality);
    stream.lastSeq = s.seq;
    stream.lastTs = s.ts;
  }
  return [...streams.values()].map(({ columns, qualities }) => {
    const first = qualities[0] ?? 'good';
    columns.quality = qualities.every((q) => q === first) ? first : qualities;
    return columns;
  });
}

/** The samples of packed columns, stream after stream. */
export function unpackRunSamples(streams: readonly RunSampleColumns[]): LiveSample[] {
  const out: LiveSample[] = [];
  for (const c of streams) {
    let seq = 0;
    let ts = 0;
    for (let i = 0; i < c.seq.length; i++) {
      seq += c.seq[i] ?? 0;
      ts += c.ts[i] ?? 0;
      out.push({
        gateway: c.gateway,
        seq,
        instrument: c.instrument,
        channel: c.channel,
        ts,
        value: c.value[i] ?? null,
        unit: c.unit,
        quality: typeof c.quality === 'string' ? c.quality : (c.quality[i] ?? 'bad'),
      });
    }
  }
  return out;
}
