// A free loopback port for a test's server, chosen below the kernel's ephemeral range. A port the kernel hands out
// (listen on port 0) is one that outgoing connections are also given: in a busy test run another test's client
// socket can take it between the choosing and the binding (E_PORT_IN_USE). Ports below that range are never given
// to outgoing connections, so only another test choosing the very same port could collide; each is picked at random
// and checked by binding it.
import { readFileSync } from 'node:fs';
import net from 'node:net';

/** the first port of the ephemeral range (Linux: /proc/sys/net/ipv4/ip_local_port_range; 32768 elsewhere) */
function ephemeralStart(): number {
  try {
    const first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(first) && first > 11_000 ? first : 32_768;
  } catch {
    return 32_768;
  }
}

const LOW = 10_000;
const HIGH = ephemeralStart();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (await bindable(port)) return port;
  }
  // every try taken (unlikely): one the kernel chooses
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
