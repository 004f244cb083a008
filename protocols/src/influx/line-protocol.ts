// InfluxDB line protocol for labtrace samples: stable tags and explicit timestamps, so writing a sample again
// overwrites the same point (a point is measurement + tag set + timestamp) and a replay is idempotent.
import type { Sample } from '../measurement.js';

/** a measurement name that means the same to every InfluxDB version (1.x keeps a backslash escape that 2.x removes) */
export const INFLUX_MEASUREMENT_NAME = /^[^\\\p{Cc}]{1,200}$/u;

// Backslashes are not escaped in names: InfluxDB 1.x keeps an escaped backslash as two backslashes where 2.x reads
// one, so a name with a backslash could not mean the same on both. The measurement name therefore refuses them
// (INFLUX_MEASUREMENT_NAME) and tag values are ids, which cannot hold one; string field values escape them, which
// every version reads alike.
export const escapeMeasurement = (s: string): string => s.replace(/[, ]/g, (c) => `\\${c}`);
export const escapeKey = (s: string): string => s.replace(/[,= ]/g, (c) => `\\${c}`);
export const quoteString = (s: string): string => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/**
 * One line per sample. Tags: gateway, instrument, channel, quality (stable; never seq). Fields: numbers in `value` (always
 * a float), strings in `value_text`, booleans in `value_bool`, so no field ever changes type; a null value writes no value
 * field. Always `seq` (integer), `unit` and, when present, `reason`. Timestamps in milliseconds.
 */
export function toLineProtocol(gateway: string, samples: readonly Sample[], measurement = 'measurement'): string[] {
  const prefix = `${escapeMeasurement(measurement)},channel=`;
  const gatewayTag = `,gateway=${escapeKey(gateway)}`;
  return samples.map((s) => lineOf(prefix, gatewayTag, s));
}

function lineOf(prefix: string, gatewayTag: string, s: Sample): string {
  // tags sorted by key, as InfluxDB recommends: channel, gateway, instrument, quality
  let line = `${prefix}${escapeKey(s.channel)}${gatewayTag},instrument=${escapeKey(s.instrument)},quality=${escapeKey(s.quality)} `;
  const v = s.value;
  if (typeof v === 'number') {
    // a float always (an integer-looking number too); InfluxDB has no NaN or infinity, the wire format none either
    if (Number.isFinite(v)) line += `value=${String(v)},`;
  } else if (typeof v === 'string') {
    line += `value_text=${quoteString(v)},`;
  } else if (typeof v === 'boolean') {
    line += `value_bool=${v ? 'true' : 'false'},`;
  }
  line += `seq=${s.seq}i,unit=${quoteString(s.unit)}`;
  if (s.reason !== undefined) line += `,reason=${quoteString(s.reason)}`;
  return `${line} ${s.ts}`;
}
