// A `host:port` listen address in a config file (the metrics' listeners of the server and the gateway), and whether
// its host is reachable from this machine only.

/** `host:port`; an IPv6 host in brackets (`[::1]:9464`) */
const LISTEN = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/;

export const LISTEN_ADDRESS_HINT = 'expected host:port such as 127.0.0.1:9464 (a port from 0 to 65535)';

/** A `host:port` listen address as host and port, or undefined when it is not one. */
export function parseListen(text: string): { host: string; port: number } | undefined {
  const m = LISTEN.exec(text);
  const port = Number(m?.[3]);
  if (m === null || !(port >= 0 && port <= 65535)) return undefined;
  return { host: m[1] ?? m[2] ?? '', port };
}

/** Whether a host name or address can only be reached from this machine. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
