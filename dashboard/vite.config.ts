import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { defineConfig, type Plugin } from 'vite';
import vue from '@vitejs/plugin-vue';
import VueI18nPlugin from '@intlify/unplugin-vue-i18n/vite';
import { api } from '@labtrace/protocols/api';

/** the emitted files worth compressing: text */
const TEXT = /\.(?:html|js|mjs|css|svg|json|txt|map)$/;

/**
 * Writes `<file>.br` (quality 11) and `<file>.gz` (level 9) beside every text file of the build, when smaller than
 * the file: the server sends them as they are to a client that accepts them (server/src/api/static-files.ts),
 * so nothing is compressed per request.
 */
function precompress(): Plugin {
  let outDir = '';
  return {
    name: 'labtrace-precompress',
    apply: 'build',
    configResolved(config) {
      outDir = path.resolve(config.root, config.build.outDir);
    },
    writeBundle(_options, bundle) {
      for (const name of Object.keys(bundle).concat('index.html', 'supervisor.html')) {
        if (!TEXT.test(name)) continue;
        const file = path.join(outDir, name);
        let bytes: Buffer;
        try {
          bytes = readFileSync(file);
        } catch {
          continue; // the page is in the bundle already, or there is none
        }
        const br = brotliCompressSync(bytes, {
          params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
        });
        const gz = gzipSync(bytes, { level: 9 });
        if (br.length < bytes.length) writeFileSync(`${file}.br`, br);
        if (gz.length < bytes.length) writeFileSync(`${file}.gz`, gz);
      }
    },
  };
}

const ROUTES_ID = 'virtual:labtrace-routes';

/**
 * The REST contract's method and path of every route, as a module without its schemas: the page calls routes by
 * their contract (`call(api.getRun, ...)`) while zod stays out of the bundle. Read from the contract at build time,
 * so the paths cannot drift from the server's.
 */
function contractRoutes(): Plugin {
  return {
    name: 'labtrace-contract-routes',
    resolveId: (id) => (id === ROUTES_ID ? `\0${ROUTES_ID}` : undefined),
    load(id) {
      if (id !== `\0${ROUTES_ID}`) return undefined;
      const routes = Object.fromEntries(Object.entries(api).map(([name, route]) => [name, { method: route.method, path: route.path }]));
      return `export const routes = ${JSON.stringify(routes)};\n`;
    },
  };
}

const HERE = path.dirname(fileURLToPath(import.meta.url));

// The server serves dist/ at /; in development, Vite proxies the API and socket.io to it.
export default defineConfig({
  plugins: [
    vue(),
    // the catalogues are compiled when the dashboard is built: the page gets vue-i18n's runtime without its message
    // compiler (a smaller script, and no message is compiled while the first view renders). A message with HTML
    // in it fails the build (strictMessage).
    VueI18nPlugin({
      // (and the supervisor's console's, one file per language)
      include: [path.join(HERE, 'src/locales/*/*.json'), path.join(HERE, 'src/supervisor/locales/*.json')],
      runtimeOnly: true,
      compositionOnly: true,
      fullInstall: false,
      dropMessageCompiler: true,
      strictMessage: true,
    }),
    contractRoutes(),
    precompress(),
  ],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 1000,
    // one style sheet, loaded with the page: a view's code then comes without style requests of its own (a browser
    // opens at most six connections to a server, and a view's wave of requests waited for free ones)
    cssCodeSplit: false,
    rolldownOptions: {
      // two pages: the lab's dashboard, and the supervisor's console (served by `labtrace supervisor`)
      input: { main: path.join(HERE, 'index.html'), supervisor: path.join(HERE, 'supervisor.html') },
      output: {
        // the small composables many views share travel in one chunk, not one request each
        // and what the run view draws with (its chart and chart.js, results, alarms, calibration badges) in one: the
        // run view, the page a client opens from a shared link, then comes in three requests with its catalogue
        codeSplitting: {
          groups: [
            // (with Vue's helper for components with scoped styles, which every view's chunk imports)
            { name: 'composables', test: /[\\/]src[\\/]composables[\\/]|plugin-vue:export-helper/ },
            {
              name: 'run-view',
              test: /[\\/]src[\\/](?:components[\\/](?:RunChart|RunResults|ChartTable|ChartStats|AlarmList|CalibrationBadge)\.vue|series-window\.ts|chart-data\.ts|limit-lines\.ts|run-charts\.ts)/,
            },
          ],
        },
      },
    },
  },
  server: {
    proxy: {
      '/api': 'http://127.0.0.1:8080',
      '/socket.io': { target: 'ws://127.0.0.1:8080', ws: true },
    },
  },
});
