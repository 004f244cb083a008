// A node's lease settings (the future `cluster:` section of server.yaml): defaults, and refusals that name the field.
import { expect, test } from '@jest/globals';
import { parseWith } from '@labtrace/protocols';
import { clusterSettingsSchema, nodeName } from '../../src/cluster/leases.js';

const parse = (input: unknown): unknown => parseWith(clusterSettingsSchema, input, 'server.yaml: cluster');

test('defaults: every role, a poll every second, a session ended after 10 s of silence, the node named after its host and process', () => {
  const config = clusterSettingsSchema.parse(undefined);
  expect(config).toEqual({ roles: ['api', 'ingest', 'jobs'], leases: { pollMs: 1000, sessionTimeoutMs: 10_000 } });
  expect(nodeName(config)).toMatch(new RegExp(`-${process.pid}$`));
  expect(nodeName(clusterSettingsSchema.parse({ node: 'node-2' }))).toBe('node-2');
});

test('bad settings are refused with the field and the problem', () => {
  expect(() => parse({ leases: { pollMs: 10 } })).toThrow(/server\.yaml: cluster: leases\.pollMs: .*50/);
  expect(() => parse({ leases: { pollMs: 1000, sessionTimeoutMs: 2000 } })).toThrow(
    'server.yaml: cluster: leases.sessionTimeoutMs: sessionTimeoutMs must be at least 3 times pollMs',
  );
  expect(() => parse({ node: 'node 2' })).toThrow('server.yaml: cluster: node: expected 1 to 64 letters, digits, _ . : or -');
  expect(() => parse({ leases: { ttl: 5 } })).toThrow(/server\.yaml: cluster: leases: .*ttl/);
  expect(() => parse({ leases: { pollMs: '1000' } })).toThrow(/server\.yaml: cluster: leases\.pollMs: /);
});

test('roles: a subset of api, ingest and jobs, each once; anything else is refused naming cluster.roles', () => {
  expect(clusterSettingsSchema.parse({ roles: ['ingest', 'jobs'] })).toMatchObject({ roles: ['ingest', 'jobs'] });
  expect(() => parse({ roles: ['api', 'reports'] })).toThrow('server.yaml: cluster: roles[1]: Invalid option: expected one of "api"|"ingest"|"jobs"');
  expect(() => parse({ roles: [] })).toThrow('server.yaml: cluster: roles: a node needs at least one role');
  expect(() => parse({ roles: ['api', 'api'] })).toThrow('server.yaml: cluster: roles: a role is listed twice');
  expect(() => parse({ roles: 'api' })).toThrow(/server\.yaml: cluster: roles: /);
});
