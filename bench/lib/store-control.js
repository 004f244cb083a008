// The parent's side of bench/lib/store-server.js: starts it (under Children, so that its death fails the run) and
// sends it commands over IPC.
import path from 'node:path';
import { BENCH_DIR } from './result.js';

const SCRIPT = path.join(BENCH_DIR, 'lib', 'store-server.js');

/** Starts the store server; resolves with { proc, base, token, dataDir, ask(cmd, body, timeoutMs) } once it listens. */
export async function startStoreServer(children, name = 'server') {
  const proc = children.launch(name, SCRIPT, [], { nodeArgs: ['--expose-gc'], ipc: true });
  const started = await children.guard(
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the store server did not start within 60 s')), 60_000);
      proc.child.on('message', (msg) => {
        if (msg?.type !== 'started') return;
        clearTimeout(timer);
        resolve(msg);
      });
    }),
  );
  let next = 0;
  const ask = (cmd, body = {}, timeoutMs = 30_000) => {
    const id = ++next;
    return children.guard(
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          proc.child.off('message', onMessage);
          reject(new Error(`the store server did not answer "${cmd}" within ${timeoutMs / 1000} s`));
        }, timeoutMs);
        const onMessage = (msg) => {
          if (msg?.type !== 'reply' || msg.id !== id) return;
          clearTimeout(timer);
          proc.child.off('message', onMessage);
          const answer = { ...msg };
          delete answer.type;
          delete answer.id;
          delete answer.error;
          if (msg.error) reject(new Error(`store server, "${cmd}": ${msg.error}`));
          else resolve(answer);
        };
        proc.child.on('message', onMessage);
        proc.child.send({ cmd, id, ...body });
      }),
    );
  };
  return { proc, base: started.base, token: started.token, dataDir: started.dataDir, ask };
}

/** Asks the store server to stop (it removes its data directory), then waits for its exit. */
export async function stopStoreServer(children, server, name = 'server') {
  server.proc.expectExit = true;
  const exited = new Promise((resolve) => (server.proc.exit !== null ? resolve() : server.proc.child.once('exit', resolve)));
  try {
    await server.ask('stop', {}, 30_000);
  } catch {
    // it exits before or while answering
  }
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 20_000))]);
  return children.stop(name);
}
