// Builds the console into the Python package (graph/server/static/console/), served at /console.
// `npm run dev` serves the sources with hot reload; the API (udt dev on port 8000) answers behind it.
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const API = 'http://127.0.0.1:8000';

export default defineConfig({
  base: '/console/',
  plugins: [react()],
  build: {
    outDir: '../../graph/server/static/console',
    emptyOutDir: true,
    sourcemap: false,
    assetsInlineLimit: 0, // every asset a file: no data: URLs under the Content-Security-Policy
    modulePreload: { polyfill: false }, // every browser the console supports has modulepreload
    reportCompressedSize: false,
  },
  server: {
    proxy: {
      '/graphql': { target: API, ws: true },
      '/console/config.json': API,
      '/downloads': API,
    },
  },
});
