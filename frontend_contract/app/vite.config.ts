// Vite: builds the browser's app into dist/ (its /assets served by the router) and, with --ssr, the
// server renderer into dist/server/main.js (src/server/main.ts, every dependency bundled in: it runs
// with node alone); in `npm run dev` serves the app with hot reload (client-rendered), proxying
// /graphql (HTTP and WebSocket) to the running router.
//
//   SHOPGRAPH_ROUTER=http://127.0.0.1:4000   where `npm run dev` proxies the graph (default)
//   SHOPGRAPH_PERSISTED_QUERIES=1            build a client that sends persisted queries by their
//                                            manifest id (../manifest.json) instead of the text
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';
import type { Plugin } from 'vite';
import { VitePWA } from 'vite-plugin-pwa';

interface Manifest {
  operations: Array<{ id: string; name: string }>;
}

function persistedIds(): Record<string, string> | null {
  if (!['1', 'true'].includes(process.env.SHOPGRAPH_PERSISTED_QUERIES ?? '')) return null;
  const manifest = JSON.parse(readFileSync(new URL('../manifest.json', import.meta.url), 'utf8')) as Manifest;
  return Object.fromEntries(manifest.operations.map((op) => [op.name, op.id]));
}

/** Writes name.gz beside each script and stylesheet of the browser's build: the router sends those
 * to browsers that accept gzip (router/storefront.py), compressed once at build time. */
function gzipAssets(): Plugin {
  return {
    name: 'shopgraph-gzip-assets',
    apply: (_config, env) => !env.isSsrBuild,
    writeBundle(options, bundle) {
      for (const name of Object.keys(bundle)) {
        if (!/\.(js|css)$/.test(name)) continue;
        const file = join(options.dir ?? 'dist', name);
        writeFileSync(`${file}.gz`, gzipSync(readFileSync(file), { level: 9 }));
      }
    },
  };
}

const router = process.env.SHOPGRAPH_ROUTER ?? 'http://127.0.0.1:4000';

export default defineConfig(({ isSsrBuild }) => ({
  plugins: [
    react(),
    gzipAssets(),
    // Installable and offline: the web app manifest, and the service worker of sw/sw.ts with the
    // build's files precached (registered by src/lib/serviceWorker.ts: no inline script, for the CSP).
    VitePWA({
      strategies: 'injectManifest',
      srcDir: 'sw',
      filename: 'sw.ts',
      injectRegister: false,
      manifest: {
        name: 'Shopgraph',
        short_name: 'Shopgraph',
        description: 'Shopgraph demo shop',
        start_url: '/',
        scope: '/',
        display: 'standalone',
        background_color: '#ffffff',
        theme_color: '#1d4ed8',
        icons: [
          { src: '/icon-192.png', sizes: '192x192', type: 'image/png', purpose: 'any' },
          { src: '/icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'any' },
          { src: '/icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
        ],
      },
      // The admin area (its charts) is not for offline shoppers: fetched when opened, as before.
      injectManifest: { globPatterns: ['**/*.{js,css,html,png,webmanifest}'], globIgnores: ['**/AdminPage-*.js'] },
      devOptions: { enabled: false },
      disable: isSsrBuild === true, // the server renderer's build has no service worker
    }),
  ],
  define: { __SHOPGRAPH_PERSISTED__: JSON.stringify(persistedIds()) },
  server: {
    host: '127.0.0.1',
    port: 5173,
    strictPort: false,
    proxy: { '/graphql': { target: router, ws: true, changeOrigin: false } },
  },
  build: { target: 'es2022', sourcemap: false, chunkSizeWarningLimit: 600 },
  ssr: { noExternal: true, target: 'node' },
  // Unit tests run in Node; component tests (*.test.tsx) ask for jsdom in their first line.
  // A generous timeout: the suite shares a loaded machine (jsdom and a render take seconds there).
  test: { environment: 'node', include: ['tests/**/*.test.ts', 'tests/**/*.test.tsx'], testTimeout: 30000 },
}));
