// The JavaScript a browser must load before the dashboard can show anything: the entry script of the built
// dashboard/dist/index.html and every chunk it preloads (<link rel="modulepreload">), and what those import
// statically in turn (vite lists them as modulepreload links; any it does not are followed through their static
// `import ... from "./x.js"` as well), and the catalogue of the page's language. Sizes as built, gzipped (level 9, as the build precompresses) and brotli.
// Lazily loaded route chunks are not initial and are listed apart. Floor (issue 15): at most 150 KB gzipped.
//
// Needs the built dashboard (npm run build). Environment: none. Writes bench/results/initial-js.json.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { ROOT, writeResult } from './lib/result.js';

const NAME = 'initial-js';
const FLOOR_GZIP_KB = 150;
const DIST = path.join(ROOT, 'dashboard', 'dist');

const index = readFileSync(path.join(DIST, 'index.html'), 'utf8');
const attr = (tag, name) => new RegExp(`\\b${name}\\s*=\\s*["']([^"']+)["']`).exec(tag)?.[1];
const entries = [];
const preloads = [];
for (const [tag] of index.matchAll(/<(?:script|link)\b[^>]*>/g)) {
  if (tag.startsWith('<script') && /type\s*=\s*["']module["']/.test(tag) && attr(tag, 'src')) entries.push(attr(tag, 'src'));
  if (tag.startsWith('<link') && attr(tag, 'rel') === 'modulepreload' && attr(tag, 'href')) preloads.push(attr(tag, 'href'));
}
if (entries.length === 0) throw new Error('dashboard/dist/index.html has no module script: build the dashboard first');

const local = (url) => path.join(DIST, url.replace(/^\//, '').split('?')[0]);
/** static imports of a chunk (import x from "./y.js", import "./y.js", export ... from "./y.js"): loaded before it runs */
const staticImports = (file, code) =>
  [...code.matchAll(/(?:^|[;\n}])\s*(?:import|export)\s*(?:[\w$*{},\s]+from\s*)?["']([^"']+\.js)["']/g)].map((m) =>
    path.join(path.dirname(file), m[1]),
  );

const initial = new Map();
const queue = [...entries, ...preloads].map(local);
while (queue.length > 0) {
  const file = queue.shift();
  if (initial.has(file)) continue;
  const code = readFileSync(file);
  initial.set(file, code);
  queue.push(...staticImports(file, code.toString('utf8')).filter((f) => existsSync(f)));
}

// the first render also waits for the catalogue of the page's language (src/i18n.ts loads one language, as its
// own chunk): the larger of them is counted as initial
const catalogues = readdirSync(path.join(DIST, 'assets'))
  .filter((f) => /^(?:zh-CN|en)-[\w-]+\.js$/.test(f))
  .map((f) => path.join(DIST, 'assets', f));
if (catalogues.length === 0) throw new Error('dashboard/dist/assets has no language catalogue chunk (zh-CN-*.js, en-*.js)');
const largest = catalogues.reduce((a, b) => (readFileSync(b).length > readFileSync(a).length ? b : a));
queue.push(largest);
while (queue.length > 0) {
  const file = queue.shift();
  if (initial.has(file)) continue;
  const code = readFileSync(file);
  initial.set(file, code);
  queue.push(...staticImports(file, code.toString('utf8')).filter((f) => existsSync(f)));
}

const size = (bytes) => ({
  raw: bytes.length,
  gzip: gzipSync(bytes, { level: 9 }).length,
  br: brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
});
const files = {};
const total = { raw: 0, gzip: 0, br: 0 };
for (const [file, bytes] of initial) {
  const s = size(bytes);
  files[path.relative(DIST, file)] = s;
  for (const k of Object.keys(total)) total[k] += s[k];
}
const allJs = readdirSync(path.join(DIST, 'assets')).filter((f) => f.endsWith('.js'));
const lazy = {};
for (const f of allJs) {
  const file = path.join(DIST, 'assets', f);
  if (!initial.has(file)) lazy[`assets/${f}`] = size(readFileSync(file)).gzip;
}
const kb = (n) => Math.round((n / 1024) * 10) / 10;
const results = {
  initialJsGzipKB: kb(total.gzip),
  initialJsBrotliKB: kb(total.br),
  initialJsRawKB: kb(total.raw),
  initialFiles: initial.size,
  lazyChunks: Object.keys(lazy).length,
  lazyJsGzipKB: kb(Object.values(lazy).reduce((a, b) => a + b, 0)),
  floorGzipKB: FLOOR_GZIP_KB,
  withinFloor: total.gzip <= FLOOR_GZIP_KB * 1024,
};
const file = writeResult(NAME, {
  params: { dist: 'dashboard/dist', entries, modulepreload: preloads },
  results,
  detail: { initialFiles: files, lazyGzipBytes: lazy },
});
console.log(JSON.stringify({ ...results, files }, null, 2));
console.log(`${NAME}: ${results.withinFloor ? 'within' : 'OVER'} the floor of ${FLOOR_GZIP_KB} KB gzipped; wrote ${file}`);
