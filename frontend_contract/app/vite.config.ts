// Vite: builds the app into dist/ (served by the router at /), and in `npm run dev` serves it with
// hot reload, proxying /graphql (HTTP and WebSocket) to the running router.
//
//   SHOPGRAPH_ROUTER=http://127.0.0.1:4000   where `npm run dev` proxies the graph (default)
//   SHOPGRAPH_PERSISTED_QUERIES=1            build a client that sends persisted queries by their
//                                            manifest id (../manifest.json) instead of the text
import { readFileSync } from 'node:fs';
import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';

interface Manifest {
  operations: Array<{ id: string; name: string }>;
}

function persistedIds(): Record<string, string> | null {
  if (!['1', 'true'].includes(process.env.SHOPGRAPH_PERSISTED_QUERIES ?? '')) return null;
  const manifest = JSON.parse(readFileSync(new URL('../manifest.json', import.meta.url), 'utf8')) as Manifest;
  return Object.fromEntries(manifest.operations.map((op) => [op.name, op.id]));
}

const router = process.env.SHOPGRAPH_ROUTER ?? 'http://127.0.0.1:4000';

export default defineConfig({
  plugins: [react()],
  define: { __SHOPGRAPH_PERSISTED__: JSON.stringify(persistedIds()) },
  server: {
    host: '127.0.0.1',
    port: 5173,
    strictPort: false,
    proxy: { '/graphql': { target: router, ws: true, changeOrigin: false } },
  },
  build: { target: 'es2022', sourcemap: false, chunkSizeWarningLimit: 600 },
  // Unit tests run in Node; component tests (*.test.tsx) ask for jsdom in their first line.
  // A generous timeout: the suite shares a loaded machine (jsdom and a render take seconds there).
  test: { environment: 'node', include: ['tests/**/*.test.ts', 'tests/**/*.test.tsx'], testTimeout: 30000 },
});
