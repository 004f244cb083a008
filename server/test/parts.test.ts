// The server's parts: started in their declared order for the node's roles, stopped in reverse, and a failed start
// stops what it had started (the failing part too). Then the roles a node on the embedded SQLite store may have.
import { expect, test } from '@jest/globals';
import pino from 'pino';
import { LabtraceError } from '@labtrace/protocols';
import type { NodeRole } from '../src/cluster/config.js';
import { Parts, type Part } from '../src/parts.js';
import { startServer } from './helpers/server.js';

const silent = pino({ level: 'silent' });

/** parts that write what they do into `events` */
function parts(events: string[], spec: { name: string; roles?: NodeRole[]; failStart?: boolean; failStop?: boolean }[]): Part[] {
  return spec.map((p) => ({
    name: p.name,
    ...(p.roles === undefined ? {} : { roles: p.roles }),
    start: async () => {
      await Promise.resolve();
      events.push(`start ${p.name}`);
      if (p.failStart === true) throw new Error(`${p.name} refused`);
    },
    stop: () => {
      events.push(`stop ${p.name}`);
      if (p.failStop === true) throw new Error(`${p.name} would not stop`);
    },
  }));
}

test('parts start in order and stop in reverse; a node runs the parts of its roles and those of every node', async () => {
  const events: string[] = [];
  const declared = parts(events, [
    { name: 'store' },
    { name: 'ingest', roles: ['ingest'] },
    { name: 'http', roles: ['api'] },
    { name: 'jobs', roles: ['jobs'] },
    { name: 'either', roles: ['api', 'jobs'] },
  ]);
  const node = new Parts(declared, new Set<NodeRole>(['ingest', 'jobs']), silent);
  expect(node.running).toEqual(['store', 'ingest', 'jobs', 'either']);
  await node.start();
  await node.stop();
  expect(events).toEqual(['start store', 'start ingest', 'start jobs', 'start either', 'stop either', 'stop jobs', 'stop ingest', 'stop store']);
  // stopped once: a second stop does nothing
  await node.stop();
  expect(events).toHaveLength(8);
});

test('a failed start stops the failing part and those before it, in reverse, then throws its failure', async () => {
  const events: string[] = [];
  const node = new Parts(
    parts(events, [{ name: 'store' }, { name: 'log' }, { name: 'broker', failStart: true }, { name: 'http' }]),
    new Set<NodeRole>(['api', 'ingest', 'jobs']),
    silent,
  );
  await expect(node.start()).rejects.toThrow('broker refused');
  expect(events).toEqual(['start store', 'start log', 'start broker', 'stop broker', 'stop log', 'stop store']);
});

test('a part that fails to stop does not keep the others running', async () => {
  const events: string[] = [];
  const node = new Parts(parts(events, [{ name: 'store' }, { name: 'live', failStop: true }, { name: 'http' }]), new Set<NodeRole>(['api']), silent);
  await node.start();
  await node.stop();
  expect(events.slice(3)).toEqual(['stop http', 'stop live', 'stop store']);
});

test('a part declared twice is a mistake found when the server is made', () => {
  expect(() => new Parts(parts([], [{ name: 'store' }, { name: 'store' }]), new Set<NodeRole>(['api']), silent)).toThrow(/declared twice/);
});

test('on the embedded SQLite store the one node has every role: a subset is refused, naming cluster.roles', async () => {
  for (const roles of [['api'], ['ingest', 'jobs']]) {
    let error: unknown;
    try {
      const t = await startServer({ database: { url: 'sqlite:lab.db' }, cluster: { roles } });
      await t.stop();
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(LabtraceError);
    expect((error as LabtraceError).code).toBe('E_CONFIG');
    expect((error as Error).message).toMatch(/^cluster\.roles: a server on the embedded SQLite store is the lab's only node/);
  }
});
