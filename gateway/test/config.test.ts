import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { loadGatewayConfig } from '../src/index.js';

const profile = `id: ut-1
identity: { maker: Acme, model: T1, serialNumber: '42' }
connection: { transport: tcp, host: 127.0.0.1, port: 5020 }
points:
  - { name: force, register: input, address: 0, type: float32, unit: kN }
`;

function setup(gateway: string, profileText = profile): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-gw-'));
  writeFileSync(path.join(dir, 'ut.yaml'), profileText);
  writeFileSync(path.join(dir, 'pw'), 'a-long-enough-secret\n');
  writeFileSync(path.join(dir, 'gateway.yaml'), gateway);
  return path.join(dir, 'gateway.yaml');
}

const gateway = `gateway: { id: gw-1, lab: lab }
mqtt: { url: 'mqtt://127.0.0.1:1883', username: gw-1, passwordFile: pw }
instruments:
  - { profile: ut.yaml, port: 6000 }
`;

async function rejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a rejection');
}

describe('gateway config', () => {
  test('a valid config resolves profiles, overrides and the password file', async () => {
    const file = setup(gateway);
    const resolved = await loadGatewayConfig(file, {});
    expect(resolved.password).toBe('a-long-enough-secret');
    expect(resolved.profiles[0] && 'connection' in resolved.profiles[0] && resolved.profiles[0].connection).toEqual({
      transport: 'tcp',
      host: '127.0.0.1',
      port: 6000,
    });
    expect(resolved.dataDir).toBe(path.join(path.dirname(file), 'gateway-data'));
  });

  test('a malformed profile names the profile file and the field', async () => {
    const file = setup(gateway, profile.replace('type: float32', 'type: real'));
    const message = await rejection(loadGatewayConfig(file, {}));
    expect(message).toContain(`${path.join(path.dirname(file), 'ut.yaml')}: points[0].type:`);
  });

  test('an unknown field in the gateway config is named', async () => {
    const message = await rejection(loadGatewayConfig(setup(gateway.replace('lab: lab', 'lab: lab, color: red')), {}));
    expect(message).toMatch(/gateway\.yaml: gateway: .*color/);
  });

  test('a missing profile file is named', async () => {
    const message = await rejection(loadGatewayConfig(setup(gateway.replace('ut.yaml', 'nope.yaml')), {}));
    expect(message).toMatch(/nope\.yaml: device profile: file not found/);
  });

  test('no password at all is refused with the reason', async () => {
    const message = await rejection(loadGatewayConfig(setup(gateway.replace(', passwordFile: pw', '')), {}));
    expect(message).toContain('mqtt.passwordFile: required unless LABTRACE_GATEWAY_PASSWORD is set');
  });

  test('metrics: a listener with its token from a file or a variable; each mistake names its field, never the token', async () => {
    const token = '0123456789abcdef0123456789abcdef';
    const withMetrics = (metrics: string) => setup(`${gateway}metrics: ${metrics}\n`);
    const onLoopback = await loadGatewayConfig(withMetrics("{ listen: '127.0.0.1:9464' }"), {});
    expect(onLoopback.metrics).toEqual({ host: '127.0.0.1', port: 9464 });
    const file = withMetrics("{ listen: '0.0.0.0:9464', tokenFile: metrics.token }");
    writeFileSync(path.join(path.dirname(file), 'metrics.token'), `${token}\n`);
    expect((await loadGatewayConfig(file, {})).metrics).toEqual({ host: '0.0.0.0', port: 9464, token });
    expect((await loadGatewayConfig(withMetrics("{ listen: '[::]:9464', tokenEnv: GW_METRICS }"), { GW_METRICS: token })).metrics).toEqual({
      host: '::',
      port: 9464,
      token,
    });
    // off loopback without a token
    expect(await rejection(loadGatewayConfig(withMetrics("{ listen: '0.0.0.0:9464' }"), {}))).toMatch(
      /gateway\.yaml: metrics\.listen: 0\.0\.0\.0 is not a loopback address: metrics served there need a token/,
    );
    expect(await rejection(loadGatewayConfig(withMetrics("{ listen: '9464' }"), {}))).toMatch(/gateway\.yaml: metrics\.listen: expected host:port/);
    expect(await rejection(loadGatewayConfig(withMetrics("{ listen: '127.0.0.1:9464', tokenEnv: GW_METRICS }"), {}))).toMatch(
      /gateway\.yaml: metrics\.tokenEnv \(GW_METRICS\): the variable is not set/,
    );
    const short = await rejection(
      loadGatewayConfig(withMetrics("{ listen: '127.0.0.1:9464', tokenEnv: GW_METRICS }"), { GW_METRICS: 'short-secret' }),
    );
    expect(short).toMatch(/metrics\.tokenEnv \(GW_METRICS\): the metrics token has 12 characters; at least 32/);
    expect(short).not.toContain('short-secret');
    expect(await rejection(loadGatewayConfig(withMetrics("{ listen: '127.0.0.1:9464', tokenFile: none.token }"), {}))).toMatch(
      /none\.token: metrics\.tokenFile: file not found/,
    );
    expect(await rejection(loadGatewayConfig(withMetrics("{ listen: '127.0.0.1:9464', token: abc }"), {}))).toMatch(
      /gateway\.yaml: metrics: .*token/,
    );
  });

  test('the same instrument twice is refused', async () => {
    const message = await rejection(loadGatewayConfig(setup(`${gateway}  - { profile: ut.yaml }\n`), {}));
    expect(message).toContain('instruments[1].profile: instrument id "ut-1" is already used by instruments[0]');
  });

  describe('influx', () => {
    const withInflux = (section: string) => `${gateway}influx: ${section}\n`;

    test('no influx section: no historian and no secret', async () => {
      const resolved = await loadGatewayConfig(setup(gateway), {});
      expect(resolved.config.influx).toBeUndefined();
      expect(resolved.influxSecret).toBeUndefined();
    });

    test('v1 takes defaults and reads the password file relative to the config; the environment overrides it', async () => {
      const file = setup(withInflux(`{ url: 'http://127.0.0.1:8086', database: lab, username: gw-1, passwordFile: pw }`));
      const resolved = await loadGatewayConfig(file, {});
      expect(resolved.config.influx).toEqual({
        url: 'http://127.0.0.1:8086',
        api: 'v1',
        database: 'lab',
        username: 'gw-1',
        passwordFile: 'pw',
        measurement: 'measurement',
        batchLines: 5000,
      });
      expect(resolved.influxSecret).toBe('a-long-enough-secret');
      expect((await loadGatewayConfig(file, { LABTRACE_INFLUX_PASSWORD: 'from-env' })).influxSecret).toBe('from-env');
      // without a username the server has authentication off: no secret needed
      const open = await loadGatewayConfig(setup(withInflux(`{ url: 'http://127.0.0.1:8086', database: lab }`)), {});
      expect(open.influxSecret).toBeUndefined();
    });

    test('v2 reads the token file; LABTRACE_INFLUX_TOKEN overrides it', async () => {
      const file = setup(
        withInflux(
          `{ url: 'https://influx.example:8086', api: v2, org: lab, bucket: data, tokenFile: pw, measurement: 'lab data', batchLines: 8000 }`,
        ),
      );
      const resolved = await loadGatewayConfig(file, {});
      expect(resolved.config.influx).toMatchObject({ api: 'v2', org: 'lab', bucket: 'data', measurement: 'lab data', batchLines: 8000 });
      expect(resolved.influxSecret).toBe('a-long-enough-secret');
      expect((await loadGatewayConfig(file, { LABTRACE_INFLUX_TOKEN: 'tok' })).influxSecret).toBe('tok');
    });

    test.each([
      [`{ url: 'http://127.0.0.1:8086' }`, 'influx.database: required when api is v1'],
      [`{ url: 'http://127.0.0.1:8086', api: v2, org: lab, tokenFile: pw }`, 'influx.bucket: required when api is v2'],
      [`{ url: 'http://127.0.0.1:8086', api: v2, bucket: b, tokenFile: pw }`, 'influx.org: required when api is v2'],
      [`{ url: 'http://127.0.0.1:8086', api: v2, org: lab, bucket: b, database: lab, tokenFile: pw }`, 'influx.database: applies only to api v1'],
      [`{ url: 'http://127.0.0.1:8086', database: lab, tokenFile: pw }`, 'influx.tokenFile: applies only to api v2'],
      [`{ url: 'http://127.0.0.1:8086', database: lab, passwordFile: pw }`, 'influx.username: required when passwordFile is given'],
      [`{ url: '127.0.0.1:8086', database: lab }`, 'influx.url: expected a URL such as http://127.0.0.1:8086'],
      [`{ url: 'http://127.0.0.1:8086', api: v3, database: lab }`, 'influx.api:'],
      [`{ url: 'http://127.0.0.1:8086', database: lab, batchLines: 0 }`, 'influx.batchLines:'],
      [`{ url: 'http://127.0.0.1:8086', database: lab, measurement: 'a\\\\b' }`, 'influx.measurement: expected 1-200 characters, no backslash'],
      [`{ url: 'http://127.0.0.1:8086', database: lab, token: x }`, 'influx: Unrecognized key: "token"'],
    ])('a bad influx section %s is refused naming the field', async (section, expected) => {
      const message = await rejection(loadGatewayConfig(setup(withInflux(section)), {}));
      expect(message).toContain(`gateway.yaml: ${expected}`);
    });

    test('a missing secret is refused naming the field and the variable', async () => {
      const v2 = await rejection(loadGatewayConfig(setup(withInflux(`{ url: 'http://127.0.0.1:8086', api: v2, org: lab, bucket: b }`)), {}));
      expect(v2).toContain('gateway.yaml: influx.tokenFile: required unless LABTRACE_INFLUX_TOKEN is set');
      const v1 = await rejection(loadGatewayConfig(setup(withInflux(`{ url: 'http://127.0.0.1:8086', database: lab, username: gw }`)), {}));
      expect(v1).toContain('gateway.yaml: influx.passwordFile: required unless LABTRACE_INFLUX_PASSWORD is set');
      const missing = await rejection(
        loadGatewayConfig(setup(withInflux(`{ url: 'http://127.0.0.1:8086', api: v2, org: lab, bucket: b, tokenFile: nope }`)), {}),
      );
      expect(missing).toMatch(/nope: influx\.tokenFile: file not found/);
    });
  });
});

describe('OPC UA instruments', () => {
  const opcua = (auth: string) => `protocol: opcua
id: utm-opc
identity: { maker: Acme, model: UTM, serialNumber: '7' }
connection: { transport: opcua, endpointUrl: 'opc.tcp://127.0.0.1:4840', securityMode: SignAndEncrypt, auth: ${auth} }
points:
  - { name: force, nodeId: 'ns=2;s=Force', unit: N }
`;
  const plain = gateway.replace('{ profile: ut.yaml, port: 6000 }', '{ profile: ut.yaml }');

  test('the user password is read from its file (relative to the profile), certificate files resolve against it', async () => {
    const withUser = await loadGatewayConfig(setup(plain, opcua('{ kind: username, username: op, passwordFile: pw }')), {});
    expect(withUser.instrumentPasswords.get('utm-opc')).toBe('a-long-enough-secret');
    const file = setup(plain, opcua('{ kind: certificate, certificateFile: user.pem, privateKeyFile: user.key }'));
    const withCert = await loadGatewayConfig(file, {});
    const [profile] = withCert.profiles;
    expect(profile?.protocol === 'opcua' && profile.connection.auth).toEqual({
      kind: 'certificate',
      certificateFile: path.join(path.dirname(file), 'user.pem'),
      privateKeyFile: path.join(path.dirname(file), 'user.key'),
    });
    // the security policy defaults to Basic256Sha256 with a security mode other than None
    expect(profile?.protocol === 'opcua' && profile.connection.securityPolicy).toBe('Basic256Sha256');
  });

  test('a profile mistake names the field: both nodeId and browsePath, a policy with mode None, host and port overrides', async () => {
    const both = opcua('{ kind: anonymous }').replace("nodeId: 'ns=2;s=Force'", "nodeId: 'ns=2;s=Force', browsePath: /2:Force");
    expect(await rejection(loadGatewayConfig(setup(plain, both), {}))).toContain('points[0].nodeId: give exactly one of nodeId and browsePath');
    const policy = opcua('{ kind: anonymous }').replace('securityMode: SignAndEncrypt', 'securityMode: None, securityPolicy: Basic256Sha256');
    expect(await rejection(loadGatewayConfig(setup(plain, policy), {}))).toContain(
      'connection.securityPolicy: security mode None takes no security policy',
    );
    expect(await rejection(loadGatewayConfig(setup(gateway, opcua('{ kind: anonymous }')), {}))).toContain(
      'host and port apply only to tcp and rtu-over-tcp instruments; utm-opc uses opcua',
    );
  });
});
