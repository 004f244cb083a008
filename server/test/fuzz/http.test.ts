// Fuzzing of the HTTP side of a running server (`labtrace server` as a child process): every route of the
// authorization policy with generated paths, queries, bodies, headers and cookies, without a login and as
// each role (bearer token, or cookie session with or without its CSRF value); raw request heads, upgrades
// included; socket.io handshakes and events. Whatever comes in: no 5xx (503 only with a documented code),
// no crash, no request left unanswered, the server healthy after each property, and no time a Date cannot
// hold nor a date the calendar lacks accepted. Each test lists every distinct failure it met.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { io } from 'socket.io-client';
import { POLICY, type RouteRule } from '../../src/auth/policy.js';
import { ROLES, type Role } from '../../src/index.js';
import { Findings, show } from './findings.js';
import {
  CONTENT_TYPES,
  IMPOSSIBLE_DATES,
  MAX_DATE_MS,
  headerValue,
  malformedJson,
  mutatedQuery,
  nastyString,
  nastyValue,
  query,
  segment,
  TIME_KEY,
} from './inputs.js';
import { setUpLab, type LabState } from './lab-state.js';
import { FUZZ_GATEWAY, OTHER_GATEWAY, ServerProcess } from './server-process.js';
import { FUZZ_SEED, runs } from '@labtrace/protocols/test/fuzz';
import { mutated, queryTemplates, templates, uniqueBody } from './templates.js';

/** a request unanswered after this long hangs (generous: the machine may be busy) */
const HANG_MS = 20_000;
/** 503 is an answer only with these codes: InfluxDB as the measurement store is down; the store cannot write (docs/architecture.md, "A full disk") */
const DOCUMENTED_503 = ['E_INFLUX_UNAVAILABLE', 'E_STORE_UNAVAILABLE'];
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);
const KNOWN_GATEWAYS = [FUZZ_GATEWAY, OTHER_GATEWAY];

const server = new ServerProcess();
let state: LabState;
let bodies: Record<string, unknown>;
let queries: Record<string, Record<string, string>>;

beforeAll(async () => {
  await server.start();
  state = await setUpLab(server);
  bodies = templates(state);
  queries = queryTemplates(state);
}, 180_000);

afterAll(async () => {
  await server.stop();
}, 30_000);

type Auth = { kind: 'none' } | { kind: 'bearer'; role: Role } | { kind: 'cookie'; role: Role; csrf: 'right' | 'missing' | 'wrong' };

/** mostly a role the route allows (so that the handler runs), sometimes any role or none */
function authFor(rule: RouteRule): fc.Arbitrary<Auth> {
  // a signed-in logout would end the suite's own sessions
  if (rule.path === '/api/auth/logout') return fc.constant({ kind: 'none' as const });
  const allowed = rule.allow === 'public' ? ROLES : rule.allow;
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant({ kind: 'none' as const }) },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('bearer' as const), role: fc.constantFrom(...allowed) }) },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('cookie' as const),
        role: fc.constantFrom(...allowed),
        csrf: fc.constantFrom('right' as const, 'right' as const, 'missing' as const, 'wrong' as const),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('bearer' as const), role: fc.constantFrom(...ROLES) }) },
  );
}

function authHeaders(auth: Auth): Record<string, string> {
  if (auth.kind === 'none') return {};
  const session = state.sessions[auth.role];
  if (auth.kind === 'bearer') return { authorization: `Bearer ${session.token}` };
  const headers: Record<string, string> = { cookie: `labtrace_session=${session.token}; labtrace_csrf=${session.csrf}` };
  if (auth.csrf === 'right') headers['x-csrf-token'] = session.csrf;
  if (auth.csrf === 'wrong') headers['x-csrf-token'] = `${session.csrf.slice(1)}x`;
  return headers;
}

/** the route's path with each parameter generated */
function pathFor(rule: RouteRule): fc.Arbitrary<string> {
  const names = [...rule.path.matchAll(/:(\w+)/g)].map((m) => m[1]!);
  // the resource the parameter names: "runs" for /api/runs/:id, "measurement" for /api/log/measurement/:gateway/:seq
  const resource = rule.path.split('/').find((p, i, all) => all[i + 1]?.startsWith(':') === true && !p.startsWith(':')) ?? '';
  return fc.tuple(...names.map((n) => segment(state.ids[`${resource}:${n}`] ?? []))).map((values) => {
    let i = 0;
    return rule.path.replace(/:(\w+)/g, () => values[i++]!);
  });
}

interface HttpCase {
  rule: RouteRule;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  abortAfterBytes?: number;
}

const describeCase = (c: HttpCase): string =>
  `${c.method} ${c.path} headers=${show(c.headers)}${c.body === undefined ? '' : ` body=${show(typeof c.body === 'string' ? c.body : c.body)}`}${
    c.abortAfterBytes === undefined ? '' : ` (client leaves after ${c.abortAfterBytes} bytes)`
  }`;

const codeOf = (body: string): string => /"code":"(\w+)"/.exec(body)?.[1] ?? 'no code';

/** the error the server logged for a 500, without the values in it: what makes two cases one defect */
function causeOf(log: string): string | undefined {
  const err = /"err":"((?:[^"\\]|\\.)*)"/.exec(log)?.[1];
  return err
    ?.replace(/^\$[^:]*: /, '')
    .replace(/\\"[^"]*\\"/g, '"…"')
    .replace(/\d+/g, 'N')
    .slice(0, 120);
}

/** routes that read a time from their query (elsewhere an unknown parameter is refused or not read) */
const QUERY_TIME_ROUTES = new Set([
  '/api/export',
  '/api/audit-trail',
  '/api/audit-trail/export',
  '/api/instruments/:id/series',
  '/api/instruments/:id/history',
  '/api/accreditations',
  '/api/accreditations/:id',
  '/api/public/accreditation',
]);

/** time values in a body or query: fields named like times, holding a number past a Date or an impossible date */
function impossibleTime(c: HttpCase, route: string): string | undefined {
  const timeKey = TIME_KEY;
  const bad = (v: unknown): boolean =>
    (typeof v === 'number' && Math.abs(v) > MAX_DATE_MS) ||
    (typeof v === 'string' &&
      (IMPOSSIBLE_DATES.some((d) => v.includes(d)) || (/^-?\d+(\.\d+)?(e\d+)?$/.test(v) && Math.abs(Number(v)) > MAX_DATE_MS)));
  const params = new URLSearchParams(c.path.split('?')[1] ?? '');
  if (c.method === 'GET' && QUERY_TIME_ROUTES.has(route)) for (const [k, v] of params) if (timeKey.test(k) && bad(v)) return `query ${k}=${v}`;
  if (typeof c.body !== 'string') return undefined;
  let found: string | undefined;
  try {
    JSON.parse(c.body, (k, v: unknown) => {
      if (found === undefined && timeKey.test(k) && bad(v)) found = `body ${k}: ${show(v)}`;
      return v;
    });
  } catch {
    return undefined;
  }
  return found;
}

let lastCase = 'the set-up';
/** the cases sent last: a process may die of one after answering it (a download cut short), while the next is on its way */
const recent: string[] = [];
/** answers per route and status: what the generated input reached (printed with FUZZ_COVERAGE=1) */
const coverage = new Map<string, number>();
afterAll(() => {
  if (process.env['FUZZ_COVERAGE'] === '1')
    console.log(
      [...coverage]
        .sort()
        .map(([k, n]) => `${k}: ${n}`)
        .join('\n'),
    );
});

/** A process that died since the last case: a crash of that case (it may die just after answering). */
async function noteDeath(findings: Findings, where: string): Promise<boolean> {
  if (server.alive()) return false;
  const output = (await server.revive()) ?? '';
  const suspects = recent.length > 0 ? recent.map((r, i) => `(${recent.length - i}) ${r}`).join('\n          ') : lastCase;
  findings.add({
    kind: 'crash',
    key: ServerProcess.causeOfDeath(output),
    where,
    example: `one of the last cases:\n          ${suspects}`,
    detail: output.slice(-3000),
  });
  return true;
}

async function check(findings: Findings, generated: HttpCase): Promise<void> {
  await noteDeath(findings, 'the case before');
  if (findings.stopped) return;
  const c = typeof generated.body === 'string' ? { ...generated, body: uniqueBody(generated.body) } : generated;
  lastCase = describeCase(c);
  recent.push(lastCase);
  if (recent.length > 3) recent.shift();
  const before = server.output().length;
  const outcome = await server.request(c, HANG_MS);
  const route = `${c.rule.method} ${c.rule.path}`;
  if (outcome.kind === 'timeout') {
    findings.add({ kind: 'hang', key: route, example: lastCase, detail: `no answer in ${HANG_MS} ms` });
    if (!(await noteDeath(findings, route)) && (await server.health()) !== 200)
      findings.add({ kind: 'unhealthy', key: `after ${route}`, example: lastCase, detail: 'GET /api/health does not answer 200' });
    return;
  }
  if (outcome.kind === 'error') {
    // a process that is dying closes connections before it exits
    await new Promise((r) => setTimeout(r, 200));
    if (await noteDeath(findings, route)) return;
    if (!outcome.message.startsWith('not sent') && (await server.health()) !== 200)
      findings.add({
        kind: 'unhealthy',
        key: `after ${route}`,
        example: lastCase,
        detail: `${outcome.message}; GET /api/health does not answer 200`,
      });
    return;
  }
  const { status, body } = outcome;
  coverage.set(`${route} ${status}`, (coverage.get(`${route} ${status}`) ?? 0) + 1);
  if (status >= 500 && !(status === 503 && DOCUMENTED_503.includes(codeOf(body)))) {
    // the log line of the failure may reach the pipe after the answer
    await new Promise((r) => setTimeout(r, 50));
    const log = server.output().slice(before, before + 2000);
    findings.add({
      kind: '5xx',
      key: `${status} ${codeOf(body)} ${causeOf(log) ?? route}`,
      where: route,
      example: lastCase,
      detail: `${body}\n${log}`,
    });
  }
  if (status < 300) {
    const time = impossibleTime(c, c.rule.path);
    if (time !== undefined)
      findings.add({ kind: 'accepted', key: `${route}: ${time.split(/[=:]/)[0]}`, example: lastCase, detail: `${status}: ${time}` });
  }
}

/** After a property: the process is up and says it is healthy (a late crash counts too). */
async function healthAfter(findings: Findings, property: string): Promise<void> {
  await new Promise((r) => setTimeout(r, 300));
  await noteDeath(findings, `the last case of ${property}`);
  const status = await server.health();
  if (status !== 200) findings.add({ kind: 'unhealthy', key: `after ${property}`, example: lastCase, detail: `GET /api/health answered ${status}` });
}

/**
 * The lab's alarms name only gateways it knows: a request nobody authenticated (an enrollment with a
 * made-up token) must not file an alarm under whatever gateway id its sender wrote.
 */
async function alarmsNameKnownGateways(findings: Findings, property: string): Promise<void> {
  if (!server.alive()) return;
  const res = await fetch(`${server.base}/api/security-events?limit=500`, { headers: { authorization: `Bearer ${state.sessions.admin.token}` } });
  if (res.status !== 200) return;
  const events = ((await res.json()) as { items: { gateway: string; kind: string; severity: string; detail: string }[] }).items;
  for (const e of events)
    if (e.severity === 'alarm' && !KNOWN_GATEWAYS.includes(e.gateway))
      findings.add({
        kind: 'accepted',
        key: `an alarm "${e.kind}" filed under a gateway the lab does not know`,
        where: property,
        example: `gateway ${JSON.stringify(e.gateway)}`,
        detail: e.detail,
      });
}

function jsonBody(rule: RouteRule): string | undefined {
  const template = bodies[`${rule.method} ${rule.path}`];
  return template === undefined ? undefined : JSON.stringify(template);
}

const assertNothingFound = (findings: Findings, title: string): void => {
  // the whole list, so that one defect does not hide the others
  if (findings.size > 0) throw new Error(findings.report(title));
  expect(findings.size).toBe(0);
};

const TIMEOUT = (cases: number): number => 120_000 + cases * 200;

describe('HTTP routes of the policy table with generated input', () => {
  const routes = POLICY;
  const mutating = POLICY.filter((r) => !SAFE.has(r.method));

  test(
    'generated path parameters and queries, as every role and none',
    async () => {
      const findings = new Findings();
      // routes that read a query come up more often: a valid one, mutated, gets past the schema (exports, times)
      const withQuery = routes.filter((r) => r.method === 'GET' && queries[r.path] !== undefined);
      const arb = fc
        .oneof({ weight: 2, arbitrary: fc.constantFrom(...routes) }, { weight: 1, arbitrary: fc.constantFrom(...withQuery) })
        .chain((rule) =>
          fc.record({
            rule: fc.constant(rule),
            path: pathFor(rule),
            query:
              queries[rule.path] === undefined
                ? query
                : fc.oneof({ weight: 3, arbitrary: mutatedQuery(queries[rule.path]!) }, { weight: 2, arbitrary: query }),
            auth: authFor(rule),
            abort: fc.option(fc.integer({ min: 1, max: 8192 }), { freq: 6, nil: undefined }),
          }),
        );
      await fc.assert(
        fc.asyncProperty(arb, async ({ rule, path, query: q, auth, abort }) => {
          const body = jsonBody(rule);
          const headers = { ...authHeaders(auth), ...(body === undefined ? {} : { 'content-type': 'application/json' }) };
          await check(findings, {
            rule,
            method: rule.method,
            path: path + q,
            headers,
            ...(body === undefined ? {} : { body }),
            ...(abort === undefined ? {} : { abortAfterBytes: abort }),
          });
        }),
        { seed: FUZZ_SEED, numRuns: runs(900) },
      );
      await healthAfter(findings, 'paths and queries');
      assertNothingFound(findings, 'paths and queries');
    },
    TIMEOUT(runs(900)),
  );

  test(
    'generated bodies: mutated valid ones, wrong types, malformed, deep and huge JSON, other content types',
    async () => {
      const findings = new Findings();
      const body = (rule: RouteRule): fc.Arbitrary<{ text: string | Buffer; type: string | undefined }> => {
        const template = bodies[`${rule.method} ${rule.path}`] ?? {};
        const json = (v: fc.Arbitrary<unknown>): fc.Arbitrary<{ text: string; type: string }> =>
          v.map((x) => ({ text: JSON.stringify(x) ?? 'null', type: 'application/json' }));
        return fc.oneof(
          { weight: 8, arbitrary: json(mutated(template)) },
          { weight: 2, arbitrary: json(nastyValue) },
          { weight: 2, arbitrary: malformedJson.map((text) => ({ text, type: 'application/json' })) },
          {
            weight: 1,
            arbitrary: fc.record({
              text: fc.oneof(
                mutated(template).map((x) => JSON.stringify(x) ?? ''),
                nastyString,
              ),
              type: fc.option(fc.constantFrom(...CONTENT_TYPES), { nil: undefined }),
            }),
          },
          {
            weight: 1,
            arbitrary: fc
              .integer({ min: 90_000, max: 300_000 })
              .map((n) => ({ text: JSON.stringify({ ...template, pad: 'x'.repeat(n) }), type: 'application/json' })),
          },
          { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2000 }).map((b) => ({ text: Buffer.from(b), type: 'application/octet-stream' })) },
        );
      };
      const arb = fc
        .constantFrom(...mutating)
        .chain((rule) => fc.record({ rule: fc.constant(rule), path: pathFor(rule), auth: authFor(rule), body: body(rule) }));
      await fc.assert(
        fc.asyncProperty(arb, async ({ rule, path, auth, body: b }) => {
          const headers = { ...authHeaders(auth), ...(b.type === undefined ? {} : { 'content-type': b.type }) };
          await check(findings, { rule, method: rule.method, path, headers, body: b.text });
        }),
        { seed: FUZZ_SEED, numRuns: runs(2000) },
      );
      await healthAfter(findings, 'bodies');
      await alarmsNameKnownGateways(findings, 'bodies');
      assertNothingFound(findings, 'bodies');
    },
    TIMEOUT(runs(2000)),
  );

  test(
    'generated headers and cookies: malformed sessions and CSRF values, odd authorizations and content types',
    async () => {
      const findings = new Findings();
      const token = fc.constantFrom(...ROLES).map((r) => state.sessions[r].token);
      const cookiePart = fc.oneof(
        token.map((t) => `labtrace_session=${t}`),
        nastyString.map((s) => `labtrace_session=${s}`),
        fc.constantFrom(
          'labtrace_session=%E0%A4%A',
          'labtrace_session=%',
          'labtrace_session=',
          'labtrace_session',
          '=',
          'labtrace_csrf=%ZZ',
          ';',
          'a=b=c',
        ),
        headerValue,
      );
      const headers = fc.record(
        {
          cookie: fc
            .array(cookiePart, { minLength: 1, maxLength: 4 })
            .map((parts) => parts.join('; ').replace(/[^\t\u0020-\u007e\u0080-\u00ff]/g, '')),
          authorization: fc.oneof(
            token.map((t) => `Bearer ${t}`),
            headerValue.map((v) => `Bearer ${v}`),
            fc.constantFrom('Bearer', 'Bearer ', 'Basic YWRtaW46YWRtaW4=', 'bearer x', 'Bearer lts_'),
            headerValue,
          ),
          'x-csrf-token': headerValue,
          'content-type': fc.oneof(fc.constantFrom(...CONTENT_TYPES), headerValue),
          accept: fc.oneof(fc.constantFrom('*/*', 'text/html', 'application/json;q=0', 'image/*'), headerValue),
          origin: fc.oneof(fc.constantFrom('null', 'http://evil.example', 'http://[', 'file://'), headerValue),
          'x-forwarded-for': headerValue,
          'x-forwarded-proto': headerValue,
          range: fc.oneof(fc.constantFrom('bytes=0-1', 'bytes=-1', 'bytes=9-1', 'bytes=0-0,0-0,0-0'), headerValue),
          'if-none-match': headerValue,
          'accept-encoding': headerValue,
        },
        { requiredKeys: [] },
      );
      const arb = fc.constantFrom(...routes).chain((rule) => fc.record({ rule: fc.constant(rule), path: pathFor(rule), headers }));
      await fc.assert(
        fc.asyncProperty(arb, async ({ rule, path, headers: h }) => {
          const body = jsonBody(rule);
          await check(findings, { rule, method: rule.method, path, headers: h, ...(body === undefined || SAFE.has(rule.method) ? {} : { body }) });
        }),
        { seed: FUZZ_SEED, numRuns: runs(500) },
      );
      await healthAfter(findings, 'headers and cookies');
      assertNothingFound(findings, 'headers and cookies');
    },
    TIMEOUT(runs(500)),
  );
});

describe('raw HTTP request heads, upgrades included', () => {
  /** Sends a request head as bytes; resolves with the status line's code, 'closed' or 'timeout'. */
  function raw(head: string, ms: number): Promise<number | 'closed' | 'timeout'> {
    return new Promise((resolve) => {
      const socket = net.connect(server.httpPort, '127.0.0.1');
      let got = '';
      const done = (v: number | 'closed' | 'timeout'): void => {
        clearTimeout(timer);
        socket.destroy();
        resolve(v);
      };
      const timer = setTimeout(() => done('timeout'), ms);
      socket.on('error', () => done('closed'));
      socket.on('close', () => done('closed'));
      socket.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        const status = /^HTTP\/1\.[01] (\d{3})/.exec(got);
        if (status) done(Number(status[1]));
        else if (got.length > 12) done('closed');
      });
      socket.write(Buffer.from(head, 'latin1'));
    });
  }

  test(
    'generated request lines and upgrade requests: an answer or a closed connection, never a crash or a 5xx',
    async () => {
      const findings = new Findings();
      recent.length = 0; // the raw cases are their own suspects (lastCase)
      const target = fc.oneof(
        fc.constantFrom(
          '//[',
          '/mqtt',
          '//mqtt',
          '/mqtt?x=%',
          '/socket.io/?EIO=4&transport=websocket',
          '/%',
          '/%E0%A4%A',
          '*',
          'http://[',
          'http://x/mqtt',
          '/api/health',
          '/..%2f..%2f',
          '/api/runs/%ED%A0%80',
        ),
        fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 40 }).map((s) => `/${s.replace(/[\s]/g, '')}`),
        segment([]).map((s) => `/api/${s}`),
      );
      const arb = fc.record({
        method: fc.constantFrom('GET', 'POST', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'PATCH', 'TRACE', 'BREW'),
        target,
        upgrade: fc.constantFrom('websocket', 'h2c', 'mqtt', null),
        key: fc.constantFrom('dGhlIHNhbXBsZSBub25jZQ==', '', '%'),
      });
      const cases = fc.sample(arb, { seed: FUZZ_SEED, numRuns: runs(200) });
      // a request head left unanswered ties up a socket, not the server: cases run 20 at a time
      for (let i = 0; i < cases.length && !findings.stopped; i += 20) {
        await noteDeath(findings, 'a raw request');
        const batch = cases.slice(i, i + 20);
        const heads = batch.map(
          (c) =>
            `${c.method} ${c.target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${
              c.upgrade === null ? '' : `Connection: Upgrade\r\nUpgrade: ${c.upgrade}\r\nSec-WebSocket-Key: ${c.key}\r\nSec-WebSocket-Version: 13\r\n`
            }Content-Length: 0\r\n\r\n`,
        );
        const outcomes = await Promise.all(heads.map((h) => raw(h, HANG_MS)));
        lastCase = heads.map((h) => JSON.stringify(h)).join('\n  ');
        await new Promise((r) => setTimeout(r, 100));
        if (!server.alive()) {
          // which one: each of the batch alone, on a fresh server
          const output = (await server.revive()) ?? '';
          for (const head of heads) {
            if (findings.stopped) break;
            await raw(head, 2_000);
            await new Promise((r) => setTimeout(r, 100));
            if (!server.alive()) {
              const last = (await server.revive()) ?? output;
              findings.add({
                kind: 'crash',
                key: ServerProcess.causeOfDeath(last),
                where: `raw request ${head.split(' ')[0]}${/Upgrade:/.test(head) ? ' with Upgrade' : ''}`,
                example: JSON.stringify(head),
                detail: last.slice(-3000),
              });
            }
          }
          continue;
        }
        outcomes.forEach((o, j) => {
          const head = heads[j]!;
          if (typeof o === 'number' && o >= 500)
            findings.add({ kind: '5xx', key: `raw ${batch[j]!.method} -> ${o}`, example: JSON.stringify(head), detail: String(o) });
          if (o === 'timeout')
            findings.add({
              kind: 'hang',
              key: `raw request${batch[j]!.upgrade === null ? '' : ` with Upgrade: ${batch[j]!.upgrade}`}`,
              example: JSON.stringify(head),
              detail: `neither an answer nor a closed connection in ${HANG_MS} ms`,
            });
        });
      }
      await healthAfter(findings, 'raw requests');
      assertNothingFound(findings, 'raw requests');
    },
    120_000 + runs(200) * 1_000,
  );
});

describe('socket.io handshakes and events with generated credentials', () => {
  test(
    'generated cookies, auth payloads, origins and run:watch arguments: a connection or connect_error, never a crash',
    async () => {
      const findings = new Findings();
      recent.length = 0;
      const token = fc.constantFrom(...ROLES).map((r) => state.sessions[r].token);
      const arb = fc.record({
        transport: fc.constantFrom('websocket', 'polling'),
        cookie: fc.option(
          fc.oneof(
            token.map((t) => `labtrace_session=${t}`),
            nastyString.map((s) => `labtrace_session=${s}`),
            fc.constantFrom('labtrace_session=%E0%A4%A', 'labtrace_session=%', 'labtrace_session=;labtrace_session=x'),
          ),
          { nil: undefined },
        ),
        auth: fc.option(
          fc.oneof(
            token.map((t) => ({ token: t })),
            nastyValue.map((v) => ({ token: v })),
            fc.dictionary(nastyString, nastyValue, { maxKeys: 3 }),
          ),
          { nil: undefined },
        ),
        origin: fc.option(fc.constantFrom('http://evil.example', 'null', 'http://[', `http://127.0.0.1`), { nil: undefined }),
        watch: fc.array(nastyValue, { maxLength: 3 }),
      });
      await fc.assert(
        fc.asyncProperty(arb, async (c) => {
          await noteDeath(findings, 'a socket.io case');
          if (findings.stopped) return;
          lastCase = `socket.io ${show(c)}`;
          const extraHeaders: Record<string, string> = {};
          if (c.cookie !== undefined) extraHeaders['cookie'] = c.cookie.replace(/[^\t\u0020-\u007e\u0080-\u00ff]/g, '');
          if (c.origin !== undefined) extraHeaders['origin'] = c.origin;
          const socket = io(server.base, {
            transports: [c.transport],
            extraHeaders,
            ...(c.auth === undefined ? {} : { auth: c.auth as Record<string, unknown> }),
            reconnection: false,
            forceNew: true,
            timeout: HANG_MS,
          });
          let timer: NodeJS.Timeout | undefined;
          const outcome = await new Promise<string>((resolve) => {
            socket.once('connect', () => resolve('connected'));
            socket.once('connect_error', (err) => resolve(`refused: ${err.message}`));
            // the server closing the connection (a handshake over maxHttpBufferSize) is an answer too; the client reports no connect_error for it
            socket.io.once('close', (reason) => resolve(`closed: ${reason}`));
            timer = setTimeout(() => resolve('no answer'), HANG_MS + 1_000);
            void server.exited().then(() => resolve('the server exited'));
          });
          clearTimeout(timer);
          if (outcome === 'connected') {
            for (const run of c.watch) {
              // the answer (or none, for an argument that is not a run id) within a deadline; a dead server never answers
              await Promise.race([
                new Promise((resolve) => (socket as unknown as { emit: (e: string, ...a: unknown[]) => void }).emit('run:watch', run, resolve)),
                new Promise((r) => setTimeout(r, 500)),
              ]);
            }
          }
          socket.disconnect();
          await new Promise((r) => setTimeout(r, 20));
          if (!server.alive()) {
            const output = (await server.revive()) ?? '';
            findings.add({
              kind: 'crash',
              key: ServerProcess.causeOfDeath(output),
              where: `socket.io ${outcome === 'connected' ? 'events' : 'handshake'}`,
              example: lastCase,
              detail: output.slice(-3000),
            });
          } else if (outcome === 'no answer' || outcome.startsWith('refused: timeout'))
            findings.add({ kind: 'hang', key: 'socket.io handshake', example: lastCase, detail: outcome });
        }),
        { seed: FUZZ_SEED, numRuns: runs(150) },
      );
      await healthAfter(findings, 'socket.io');
      assertNothingFound(findings, 'socket.io');
    },
    120_000 + runs(150) * 1_000,
  );
});
