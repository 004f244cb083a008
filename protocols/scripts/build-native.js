// Builds the batched SHA-256 module (native/hash.c) with node-gyp, when it is missing or older than
// its sources. Run at install and by `npm run build`. Without a C compiler the build fails with a
// warning, not an error: the trust code then hashes through Node's crypto, the same bytes, slower,
// and the gateway and the server say so when they start.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const output = join(root, 'build', 'Release', 'labtrace_hash.node');
const sources = [join(root, 'binding.gyp'), join(root, 'native', 'hash.c')];

const fresh = existsSync(output) && sources.every((s) => statSync(s).mtimeMs <= statSync(output).mtimeMs);
if (fresh && !process.argv.includes('--force')) process.exit(0);

// npm names its own node-gyp in npm_config_node_gyp for scripts; otherwise node-gyp on the PATH
const gyp = process.env.npm_config_node_gyp;
const [command, args] = gyp ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
const result = spawnSync(command, args, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
if (result.status !== 0) {
  const why = result.error?.message ?? (result.stderr || '').trim().split('\n').slice(-5).join('\n');
  console.warn(`labtrace: the native SHA-256 module was not built (hashing falls back to Node's crypto):\n${why}`);
}
