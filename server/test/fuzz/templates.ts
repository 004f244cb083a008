// A valid body for each route that takes one, and the mutations the fuzz applies to it: a few fields
// replaced by generated values, removed, or added. Most of a mutated body stays valid, so the request
// gets past the first check to the code that stores, composes and renders.
import fc from 'fast-check';
import { formatVerifierKey, publicKeyFromSeed } from '@labtrace/protocols';
import { DEMO_METHOD } from '../../src/lab/demo.js';
import { nastyNumber, nastyString, nastyTime, nastyValue, TIME_KEY } from './inputs.js';
import { FUZZ_ORGANIZATION, INSTRUMENT, type LabState } from './lab-state.js';
import { FUZZ_GATEWAY } from './server-process.js';

const SIGNATURE = `${'A'.repeat(86)}==`;
/** replaced by a fresh number in every request (uniqueBodies): a record id taken by an earlier case would answer 409 before the rest is read */
export const UNIQUE = '{{unique}}';
let made = 0;
/** the body as sent: each UNIQUE marker a new number */
export const uniqueBody = (text: string): string => text.replaceAll(UNIQUE, () => String(++made));

export function templates(state: LabState): Record<string, unknown> {
  const { now } = state;
  const reason = { reason: 'fuzz' };
  const definition = DEMO_METHOD.definition;
  const calibration = {
    calibratedAt: now - 86_400_000,
    laboratory: 'Fuzz calibration lab',
    certificate: 'FZ-CAL-2',
    results: [{ point: '10 kN', reference: 10, indication: 10.01, unit: 'kN' }],
    uncertainty: { value: 0.3, unit: '%', k: 2 },
    acceptance: 'class 0.5',
    nextDueAt: now + 200 * 86_400_000,
    reason: 'fuzz',
  };
  const scope = [{ standard: DEMO_METHOD.standard, measurand: 'force', unit: 'kN', min: 0, max: 100, description: 'bars' }];
  return {
    'POST /api/auth/login': { username: 'technician', password: 'not-the-password' },
    'POST /api/auth/logout': {},
    'POST /api/auth/password': { currentPassword: 'not-the-password', newPassword: 'a-new-password-for-fuzz' },
    'POST /api/auth/tokens': { name: 'fuzz', ttlDays: 30 },
    'POST /api/users': { username: `fz-${UNIQUE}`, role: 'auditor', grantUntil: now + 86_400_000, grantOrganizations: [FUZZ_ORGANIZATION] },
    'PATCH /api/users/:username': { role: 'technician', disabled: false, reason: 'fuzz' },
    'POST /api/users/:username/password': { password: 'a-new-password-for-fuzz' },
    'POST /api/organizations': { id: `org-${UNIQUE}`, name: 'New client', contact: 'quality@new.example' },
    'POST /api/enroll': {
      token: `lt-enroll-${'A'.repeat(43)}`,
      gateway: 'gw-new',
      key: formatVerifierKey('gw-new', publicKeyFromSeed(new Uint8Array(32).fill(7))),
      proof: SIGNATURE,
    },
    'POST /api/gateways/:id/keys/rotate': {
      statement: {
        v: 1,
        purpose: 'labtrace-key-rotation',
        gateway: FUZZ_GATEWAY,
        oldKeyId: '0011aabb',
        newKey: formatVerifierKey(FUZZ_GATEWAY, publicKeyFromSeed(new Uint8Array(32).fill(9))),
        at: now,
      },
      oldSignature: SIGNATURE,
      newSignature: SIGNATURE,
    },
    'POST /api/lab-samples': {
      id: `FZ-${UNIQUE}`,
      organization: FUZZ_ORGANIZATION,
      description: 'steel bar',
      condition: 'as received',
      receivedAt: now,
    },
    'POST /api/methods': { id: `fz-method-${UNIQUE}`, standard: DEMO_METHOD.standard, title: 'A method', definition },
    'POST /api/methods/:id/versions': { standard: DEMO_METHOD.standard, title: 'A method', definition, reason: 'fuzz' },
    'POST /api/runs': { sample: 'FZ-1', method: 'fz-tensile', instruments: [INSTRUMENT], technician: 'technician' },
    'POST /api/runs/:id/start': reason,
    'POST /api/runs/:id/stop': reason,
    'POST /api/runs/:id/abort': reason,
    'POST /api/runs/:id/alarms/:alarmId/acknowledge': reason,
    'POST /api/runs/:id/alarms/:alarmId/clear': reason,
    'POST /api/instruments/:id/status': { status: 'in-service', reason: 'fuzz' },
    'POST /api/instruments/:id/calibrations': calibration,
    'POST /api/instruments/:id/checks': { checkedAt: now, result: 'pass', description: 'check weight 10 kN' },
    'POST /api/accreditations': { id: `fz-accreditation-${UNIQUE}`, body: 'FUZZ', number: 'F-2', scope, validFrom: now, validTo: now + 86_400_000 },
    'POST /api/accreditations/:id/events': { kind: 'suspend', reason: 'fuzz' },
    'POST /api/standing/findings/:id/response': { text: 'a reasoned response from the fuzz' },
    'POST /api/accreditations/:id/scope': { scope, reason: 'fuzz' },
    'POST /api/certificates': { run: state.run },
    'POST /api/certificates/:id/issue': {},
    'POST /api/certificates/:id/amend': reason,
    'POST /api/certificates/:id/revoke': reason,
    // notifications: the webhook's URL is a closed loopback port (the fuzz sends nothing anywhere)
    'PUT /api/notifications/subscriptions': {
      email: 'fuzz@lab.example',
      kinds: { alarm: { email: false, webhooks: [] }, 'security-event': { email: false, webhooks: [] } },
    },
    'POST /api/notifications/webhooks': { name: 'fuzz', owner: 'technician', url: 'http://127.0.0.1:9/hook', preset: 'generic', format: 'text' },
    'PATCH /api/notifications/webhooks/:id': { name: 'fuzz', enabled: false, reason: 'fuzz' },
    'DELETE /api/notifications/webhooks/:id': reason,
    'POST /api/notifications/deliveries/:id/retry': {},
    'POST /api/notifications/test': { channel: 'webhook', webhook: 'wh-0123456789ab' },
  };
}

/** a valid query of each route that reads one, as parameter names and values */
export function queryTemplates(state: LabState): Record<string, Record<string, string>> {
  const iso = (t: number): string => new Date(t).toISOString();
  const { now } = state;
  const span = { from: String(now - 3_600_000), to: String(now + 60_000) };
  return {
    '/api/export': { gateway: FUZZ_GATEWAY, from: iso(now - 3_600_000), to: iso(now + 3_600_000) },
    '/api/instruments/:id/series': { channel: 'force', ...span, points: '100' },
    '/api/instruments/:id/history': { channel: 'force', ...span, limit: '100' },
    '/api/instruments/:id/health': { ...span, points: '100' },
    '/api/instrument-register': { q: 'fz', calibration: 'valid', connected: 'true', limit: '10' },
    '/api/audit-trail': { since: String(now - 3_600_000), until: String(now + 60_000), limit: '50', action: 'create' },
    '/api/audit-trail/export': { since: String(now - 3_600_000), format: 'csv' },
    '/api/log/checkpoint': { size: '1' },
    '/api/log/proof/inclusion': { index: '0', size: '2' },
    '/api/log/proof/consistency': { from: '1', to: '2' },
    '/api/log/entries': { start: '0', end: '2' },
    '/api/runs': { state: 'completed', sample: 'FZ-1' },
    '/api/runs/:id/records': { limit: '10' },
    '/api/certificates': { status: 'valid' },
    '/api/accreditations': { at: String(now) },
    '/api/accreditations/:id': { at: String(now) },
    '/api/public/accreditation': { at: String(now) },
    '/api/standing/report': { from: iso(now - 86_400_000).slice(0, 10), to: iso(now).slice(0, 10), lang: 'zh-CN' },
    '/api/standing/report.pdf': { from: iso(now - 86_400_000).slice(0, 10), to: iso(now).slice(0, 10), lang: 'en' },
    '/api/security-events': { gateway: FUZZ_GATEWAY, limit: '10' },
    '/api/notifications/deliveries': { status: 'failed', before: '100', limit: '10' },
  };
}

type Path = (string | number)[];

function pathsOf(value: unknown, at: Path = [], out: Path[] = []): Path[] {
  if (at.length > 0) out.push(at);
  if (Array.isArray(value)) value.forEach((v, i) => pathsOf(v, [...at, i], out));
  else if (typeof value === 'object' && value !== null) for (const [k, v] of Object.entries(value)) pathsOf(v, [...at, k], out);
  return out;
}

const REMOVE = Symbol('remove');

function setAt(target: unknown, path: Path, value: unknown): void {
  let node = target as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (value === REMOVE) {
    if (Array.isArray(node) && typeof last === 'number') node.splice(last, 1);
    else delete node[last];
  } else node[last] = value;
}

/**
 * A template with one to three of its fields (at any depth) changed: mostly to a nasty value of the same
 * type (a text field gets a lone surrogate, a time 9e15), else to any value or removed; rarely joined by an
 * unknown field. Most of the body stays valid, so the change reaches the code behind the schema.
 */
export function mutated(template: unknown): fc.Arbitrary<unknown> {
  // time fields are where out-of-range values hide: chosen more often
  const paths = pathsOf(template).flatMap((p) => {
    const key = p[p.length - 1];
    return typeof key === 'string' && TIME_KEY.test(key) ? [p, p, p, p] : [p];
  });
  const change = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 9 }), nastyString, nastyNumber, nastyTime, nastyValue);
  const extra = fc.oneof(
    { weight: 7, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('extra', '__proto__', 'role'), nastyValue) },
  );
  return fc.tuple(fc.array(change, { minLength: 1, maxLength: 3, size: 'xsmall' }), extra).map(([changes, added]) => {
    const body = structuredClone(template);
    for (const [n, kind, text, number, time, any] of changes) {
      if (paths.length === 0) break;
      const path = paths[n % paths.length]!;
      try {
        const old = valueAt(body, path);
        const key = path[path.length - 1];
        const value =
          kind >= 9
            ? REMOVE
            : kind >= 7
              ? any
              : typeof key === 'string' && TIME_KEY.test(key)
                ? time
                : typeof old === 'string'
                  ? text
                  : typeof old === 'number'
                    ? number
                    : any;
        setAt(body, path, value);
      } catch {
        // the path went away with an earlier change
      }
    }
    // defined, not assigned: "__proto__" must become a key of the JSON, not the object's prototype
    if (added !== null && typeof body === 'object' && body !== null)
      Object.defineProperty(body, added[0], { value: added[1], enumerable: true, writable: true, configurable: true });
    return body;
  });
}

function valueAt(target: unknown, path: Path): unknown {
  let node = target;
  for (const key of path) node = (node as Record<string | number, unknown>)[key];
  return node;
}
