// One SNTP exchange over UDP (clock/sntp.ts has the packet and its checks): a request, the reply from the server's
// address and port, or a coded error when there is none in time or it fails a check.
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { LabtraceError } from '../errors.js';
import { parseSntpReply, sntpReading, sntpRequest, type SntpReading } from '../clock/sntp.js';

export interface SntpSample extends SntpReading {
  /** the server asked, as configured (`host:port`) */
  server: string;
  /** when the reply arrived (our clock, Unix ms) */
  at: number;
}

export interface SntpQueryOptions {
  timeoutMs: number;
  /** the clock measured (Unix ms): Date.now unless a test sets its own */
  now?: () => number;
}

/**
 * Asks `host`:`port` once. E_NTP_UNAVAILABLE when the name does not resolve, the socket fails or nothing answers in
 * `timeoutMs`; E_NTP_REPLY when the server's answer fails a check. Datagrams from anywhere else are ignored.
 */
export async function querySntp(host: string, port: number, options: SntpQueryOptions): Promise<SntpSample> {
  const now = options.now ?? Date.now;
  const server = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
  let address: { address: string; family: number };
  try {
    address = net.isIP(host) !== 0 ? { address: host, family: net.isIP(host) } : await lookup(host);
  } catch (cause) {
    throw new LabtraceError('E_NTP_UNAVAILABLE', `NTP server ${server}: ${(cause as Error).message}`, { cause });
  }
  const socket = dgram.createSocket(address.family === 6 ? 'udp6' : 'udp4');
  try {
    return await new Promise<SntpSample>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new LabtraceError('E_NTP_UNAVAILABLE', `NTP server ${server} did not answer in ${options.timeoutMs} ms`)),
        options.timeoutMs,
      );
      const settle = (f: () => void): void => {
        clearTimeout(timer);
        f();
      };
      socket.on('error', (cause) =>
        settle(() => reject(new LabtraceError('E_NTP_UNAVAILABLE', `NTP server ${server}: ${cause.message}`, { cause }))),
      );
      const sentMs = now();
      const request = sntpRequest(sentMs);
      socket.on('message', (message, from) => {
        if (from.address !== address.address || from.port !== port) return;
        const receivedMs = now();
        settle(() => {
          try {
            resolve({ ...sntpReading(parseSntpReply(message, request), sentMs, receivedMs), server, at: receivedMs });
          } catch (err) {
            reject(
              err instanceof LabtraceError
                ? new LabtraceError(err.code, `NTP server ${server}: ${err.message}`, { cause: err })
                : err instanceof Error
                  ? err
                  : new Error(String(err)),
            );
          }
        });
      });
      socket.send(request, port, address.address, (err) => {
        if (err) settle(() => reject(new LabtraceError('E_NTP_UNAVAILABLE', `NTP server ${server}: ${err.message}`, { cause: err })));
      });
    });
  } finally {
    socket.removeAllListeners('message');
    // a socket that failed may be closed already
    await new Promise<void>((resolve) => {
      try {
        socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}
