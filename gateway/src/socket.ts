// A TCP connection to an instrument (a Modbus TCP server, a serial device server): no Nagle delay, keep-alive
// probes, and a connect that gives up after `timeoutMs`; and closing a socket or a serial port alike.
import net from 'node:net';
import type { Duplex } from 'node:stream';

export function openSocket(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.setKeepAlive(true, 10_000);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
  });
}

/**
 * Closes a port or socket. A serial port must be closed: its stream's destroy() leaves the device open and
 * polled (a gateway then never exits, and a reopened port shares the device with the old one). A socket
 * is destroyed.
 */
export function closeStream(stream: Duplex): void {
  const port = stream as Duplex & { isOpen?: boolean; closing?: boolean; close?: (callback?: (err: Error | null) => void) => void };
  if (typeof port.close === 'function' && port.isOpen === true) {
    if (port.closing !== true) port.close(() => stream.destroy());
    return;
  }
  stream.destroy();
}
