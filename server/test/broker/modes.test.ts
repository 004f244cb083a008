// The server's two other ways of meeting gateways, end to end with signed batches: MQTT over TLS on
// the embedded broker, and external broker mode against a real Mosquitto running the shipped ACL.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, test } from '@jest/globals';
import mqtt from 'mqtt';
import { Mosquitto } from '@labtrace/protocols/test/mosquitto';
import { records, send, startServer, TestGateway, waitFor, type TestServer } from '../helpers/server.js';

const run = promisify(execFile);
const DEPLOY = fileURLToPath(new URL('../../../../deploy/mosquitto/', import.meta.url));
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A self-signed certificate for 127.0.0.1 / localhost, made with openssl. */
async function certificate(): Promise<{ certFile: string; keyFile: string; cert: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-tls-'));
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ]);
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8') };
}

describe('MQTT over TLS on the embedded broker', () => {
  test('a gateway connects with the lab CA and delivers; a client without the CA or without credentials is refused', async () => {
    const { certFile, keyFile, cert } = await certificate();
    const t = await startServer({ mqtt: { host: '127.0.0.1', port: 0, tls: { port: 0, certFile, keyFile } } });
    cleanups.push(() => t.stop());
    const port = t.server.embeddedBroker?.tlsPort;
    expect(port).toBeGreaterThan(0);
    const url = `mqtts://127.0.0.1:${port}`;
    const gw = await TestGateway.connect(t, 'gw-a', { url, mqtt: { ca: cert, rejectUnauthorized: true } });
    cleanups.push(() => gw.end());
    await gw.birth('tls-1');
    expect(await send(t, gw, gw.sign(records('tls-1', 0, 3)))).toBe('acked');
    await expect(
      mqtt.connectAsync(url, { clientId: 'x', username: 'gw-b', password: t.password, reconnectPeriod: 0, rejectUnauthorized: true }),
    ).rejects.toThrow(/self.signed|unable to verify|certificate/i);
    await expect(mqtt.connectAsync(url, { clientId: 'anon', ca: cert, reconnectPeriod: 0 })).rejects.toThrow(
      /Bad username or password|Not authorized/i,
    );
  });

  test('a certificate that cannot be read is a configuration error naming the field', async () => {
    await expect(
      startServer({ mqtt: { host: '127.0.0.1', port: 0, tls: { port: 0, certFile: '/nonexistent/cert.pem', keyFile: '/nonexistent/key.pem' } } }),
    ).rejects.toThrow(/mqtt\.tls: cannot read the certificate or key/);
  });
});

describe('external broker mode', () => {
  test('the server ingests from Mosquitto: signed batches stored and acknowledged, also after a broker restart', async () => {
    const server = { username: 'labtrace-server', password: 'server-secret-for-tests' };
    const gateway = { username: 'gw-a', password: 'gw-a-secret-for-tests' };
    const broker = await Mosquitto.create({
      users: [server, gateway],
      acl: readFileSync(`${DEPLOY}labtrace.acl`, 'utf8'),
      conf: readFileSync(`${DEPLOY}mosquitto.conf`, 'utf8'),
    });
    await broker.start();
    cleanups.push(() => broker.dispose());
    const passwordFile = path.join(mkdtempSync(path.join(tmpdir(), 'labtrace-ext-')), 'password');
    writeFileSync(passwordFile, `${server.password}\n`, { mode: 0o600 });
    const t: TestServer = await startServer({
      mqtt: { host: '127.0.0.1', port: 0, external: { url: broker.url, username: server.username, passwordFile } },
    });
    cleanups.push(() => t.stop());
    expect(t.server.embeddedBroker).toBeUndefined();
    const gw = await TestGateway.connect({ mqttUrl: broker.url, password: gateway.password }, 'gw-a', { mqtt: { clean: false } });
    cleanups.push(() => gw.end());
    await gw.birth('ext-1');
    expect(await send(t, gw, gw.sign(records('ext-1', 0, 4)))).toBe('acked');
    await broker.restart();
    // the test gateway does not reconnect by itself: a new connection, as a real gateway's would be
    const again = await TestGateway.connect({ mqttUrl: broker.url, password: gateway.password }, 'gw-a');
    cleanups.push(() => again.end());
    await waitFor('the server to reconnect', () => t.server.broker.running, 20_000);
    const second = gw.sign(records('ext-1', 4, 2));
    expect(await send(t, again, second)).toBe('acked');
    const rows = t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM measurements WHERE gateway = ?').get('gw-a') as { n: number };
    expect(rows.n).toBe(6);
    expect(t.server.ingest.chain.state('gw-a')).toMatchObject({ nextBatch: 2, nextSeq: 6 });
  });
});
