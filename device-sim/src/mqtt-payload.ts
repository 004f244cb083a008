// Builds the payloads an MQTT instrument publishes from its profile: one JSON document per topic with
// each point's value at its jsonPath ("reading.value", "data[2].v") and its timestamp at timestampPath,
// or a plain number for a point without jsonPath. The path syntax is the one the gateway reads.
import { channelOf, compilePath, LabtraceError, type MqttProfile, type PathSegment } from '@labtrace/protocols';

export { compilePath, type PathSegment } from '@labtrace/protocols';

type Json = number | string | boolean | null | Json[] | { [key: string]: Json };

/** Writes `value` at `segments` inside `root`, creating objects and arrays; false when another value is in the way. */
export function setAtPath(root: { [key: string]: Json } | Json[], segments: readonly PathSegment[], value: Json): boolean {
  let current: { [key: string]: Json } | Json[] = root;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    const next = segments[i + 1];
    const last = next === undefined;
    if (typeof segment === 'number') {
      if (!Array.isArray(current)) return false;
      while (current.length < segment) current.push(null);
      if (last) {
        current[segment] = value;
        return true;
      }
      const child: Json | undefined = current[segment];
      const made: { [key: string]: Json } | Json[] | undefined = container(child, next);
      if (made === undefined) return false;
      current[segment] = made;
      current = made;
    } else if (segment !== undefined) {
      if (Array.isArray(current)) return false;
      if (last) {
        if (Object.hasOwn(current, segment) && typeof current[segment] === 'object' && current[segment] !== null) return false;
        current[segment] = value;
        return true;
      }
      const child: Json | undefined = Object.hasOwn(current, segment) ? current[segment] : undefined;
      const made: { [key: string]: Json } | Json[] | undefined = container(child, next);
      if (made === undefined) return false;
      current[segment] = made;
      current = made;
    }
  }
  return false;
}

/** The container to descend into: the existing one if it is of the right kind, a new one if nothing is there. */
function container(child: Json | undefined, next: PathSegment): { [key: string]: Json } | Json[] | undefined {
  const wantArray = typeof next === 'number';
  if (child === undefined || child === null) return wantArray ? [] : {};
  if (wantArray && Array.isArray(child)) return child;
  if (!wantArray && typeof child === 'object' && !Array.isArray(child)) return child;
  return undefined;
}

interface CompiledPoint {
  channel: string;
  path: PathSegment[] | undefined;
  timestampPath: PathSegment[] | undefined;
  scale: number;
  offset: number;
}

export interface TopicPayload {
  topic: string;
  payload: string;
}

/** Turns an instrument's values into one payload per topic, by its profile. */
export class PayloadBuilder {
  private readonly byTopic = new Map<string, CompiledPoint[]>();

  /** Checks the profile: paths well formed, and points sharing a topic all placed in one JSON document. */
  constructor(profile: MqttProfile) {
    profile.points.forEach((point, i) => {
      const where = `${profile.id}: points[${i}]`;
      const compiled: CompiledPoint = {
        channel: channelOf(point),
        path: point.jsonPath === undefined ? undefined : compilePath(point.jsonPath, `${where}.jsonPath`),
        timestampPath: point.timestampPath === undefined ? undefined : compilePath(point.timestampPath, `${where}.timestampPath`),
        scale: point.scale,
        offset: point.offset,
      };
      if (compiled.path === undefined && compiled.timestampPath !== undefined) {
        throw new LabtraceError('E_PROFILE', `${where}.timestampPath: needs jsonPath (a plain-number payload has no timestamp)`);
      }
      const list = this.byTopic.get(point.topic) ?? [];
      if (list.length > 0 && (compiled.path === undefined || list.some((p) => p.path === undefined))) {
        throw new LabtraceError('E_PROFILE', `${where}.topic: "${point.topic}" carries a plain number for one point; it cannot carry another`);
      }
      list.push(compiled);
      this.byTopic.set(point.topic, list);
    });
    // Every layout must fit in one document: try it with placeholder values.
    for (const [topic, points] of this.byTopic) {
      if (this.build(points, () => 0, 0) === undefined) {
        throw new LabtraceError('E_PROFILE', `${profile.id}: the jsonPath and timestampPath of the points on "${topic}" overlap`);
      }
    }
  }

  get topics(): string[] {
    return [...this.byTopic.keys()];
  }

  /** The payloads for these values at time `ts` (ms); a topic none of whose points has a value is left out. */
  payloads(values: Readonly<Record<string, number | boolean | string>>, ts: number): TopicPayload[] {
    const out: TopicPayload[] = [];
    for (const [topic, points] of this.byTopic) {
      const payload = this.build(points, (channel) => values[channel], ts);
      if (payload !== undefined && payload !== '') out.push({ topic, payload });
    }
    return out;
  }

  private build(points: CompiledPoint[], valueOf: (channel: string) => number | boolean | string | undefined, ts: number): string | undefined {
    const first = points[0];
    if (first?.path === undefined) {
      const value = first === undefined ? undefined : valueOf(first.channel);
      return first === undefined || value === undefined ? '' : String(raw(value, first));
    }
    const root: { [key: string]: Json } | Json[] = typeof first.path[0] === 'number' ? [] : {};
    let any = false;
    for (const p of points) {
      const value = valueOf(p.channel);
      if (value === undefined || p.path === undefined) continue;
      any = true;
      if (!setAtPath(root, p.path, raw(value, p))) return undefined;
      if (p.timestampPath !== undefined && !setAtPath(root, p.timestampPath, ts)) return undefined;
    }
    return any ? JSON.stringify(root) : '';
  }
}

/** The number the instrument sends for an engineering value: the inverse of the profile's scale and offset. */
function raw(value: number | boolean | string, point: CompiledPoint): number | boolean | string {
  if (typeof value !== 'number' || (point.scale === 1 && point.offset === 0)) return value;
  return Number(((value - point.offset) / point.scale).toPrecision(12));
}
