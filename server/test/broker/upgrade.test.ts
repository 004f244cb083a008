// The HTTP server's upgrade requests come from anyone: one whose target is no URL is answered 400, and the
// server (the broker's WebSocket listener shares it) keeps running.
import net from 'node:net';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { startServer, type TestServer } from '../helpers/server.js';

let t: TestServer;
beforeAll(async () => {
  t = await startServer();
});
afterAll(async () => {
  await t.stop();
});

/** Sends a raw request and resolves with everything the server answers until it closes the connection. */
function raw(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
  });
}

test('an upgrade request for "//[" is answered 400 and the connection closed; the server keeps serving', async () => {
  const answer = await raw(
    t.server.httpPort,
    'GET //[ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  );
  expect(answer).toMatch(/^HTTP\/1\.1 400 /);
  const health = await t.fetch('/api/health', {}, null);
  expect(health.status).toBe(200);
  // and MQTT over WebSocket still upgrades at /mqtt
  const ok = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(t.server.httpPort, '127.0.0.1', () =>
      socket.write(
        'GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n',
      ),
    );
    socket.once('data', (d: Buffer) => {
      resolve(d.toString('latin1'));
      socket.destroy();
    });
    socket.on('error', reject);
  });
  expect(ok).toMatch(/^HTTP\/1\.1 101 /);
});
