// `labtrace lab` (what `npm start` runs) starts again a part that dies: kill -9 of the server or the gateway
// leaves the lab running, the part comes back and the lab answers again, with its data flowing.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { signIn, startLab, waitFor, type LabProcess } from '../helpers/lab-process.js';

let lab: LabProcess;
const base = (): string => `http://127.0.0.1:${lab.httpPort}`;

beforeAll(async () => {
  lab = await startLab();
}, 90_000);

afterAll(async () => {
  if (lab && lab.proc.exitCode === null) await lab.stop('SIGKILL');
});

/** The pid of the lab's running child for a part (`node .../labtrace.js server --config ...`), if there is one. */
function pidOf(part: string): number | undefined {
  const out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(lab.proc.pid)], { encoding: 'utf8' });
  const line = out.split('\n').find((l) => new RegExp(`labtrace\\.js ${part} --config`).test(l) && !l.includes('<defunct>'));
  return line === undefined ? undefined : Number(line.trim().split(/\s+/)[0]);
}

async function gatewayConnected(): Promise<true | undefined> {
  try {
    const body = (await (await fetch(`${base()}/api/health`)).json()) as { status: string; gateways: { id: string; connected: boolean }[] };
    return body.status === 'ok' && body.gateways.some((g) => g.id === 'gw-1' && g.connected) ? true : undefined;
  } catch {
    return undefined; // the server is not listening (yet)
  }
}

test('the server killed with SIGKILL is started again; health answers, the gateway reconnects, sign-in works', async () => {
  await waitFor('the gateway connected', gatewayConnected, 60_000);
  const first = pidOf('server');
  if (first === undefined) throw new Error(`the lab runs no server:\n${lab.output()}`);
  process.kill(first, 'SIGKILL');
  const second = await waitFor(
    'the server started again',
    () => {
      const pid = pidOf('server');
      return pid !== first ? pid : undefined;
    },
    30_000,
  );
  expect(second).not.toBe(first);
  expect(lab.output()).toMatch(/lab: server exited unexpectedly \(SIGKILL\); restarting it/);
  await waitFor('health answering with the gateway connected again', gatewayConnected, 60_000);
  expect(lab.proc.exitCode).toBeNull();
  expect(await signIn(base())).toMatch(/./);
}, 150_000);

test('the gateway killed with SIGKILL is started again and reconnects', async () => {
  const first = pidOf('gateway');
  if (first === undefined) throw new Error(`the lab runs no gateway:\n${lab.output()}`);
  process.kill(first, 'SIGKILL');
  await waitFor(
    'the gateway started again',
    () => {
      const pid = pidOf('gateway');
      return pid !== first ? pid : undefined;
    },
    30_000,
  );
  await waitFor('the gateway connected again', gatewayConnected, 60_000);
  expect(lab.proc.exitCode).toBeNull();
}, 150_000);
