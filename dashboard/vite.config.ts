import { defineConfig } from 'vite';
import vue from '@vitejs/plugin-vue';

// The server serves dist/ at /; in development, Vite proxies the API and socket.io to it.
export default defineConfig({
  plugins: [vue()],
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1000 },
  server: {
    proxy: {
      '/api': 'http://127.0.0.1:8080',
      '/socket.io': { target: 'ws://127.0.0.1:8080', ws: true },
    },
  },
});
