// The storefront's service worker (built by vite-plugin-pwa's injectManifest into /sw.js).
//
// - The shell (index.html and the built assets) is precached: the app starts offline.
// - Pages: the network first (a new build, fresh pages); offline, the page as last seen, else the shell.
// - The catalog's queries (CATALOG: public data only) go to the network first and their answers are
//   kept; offline, the kept answer for the same operation and variables is served, so product and
//   category pages visited before still show. Nothing else is kept or queued: a mutation (the cart,
//   checkout) offline fails as it would without this worker, and the page says so.
import { clientsClaim } from 'workbox-core';
import { cleanupOutdatedCaches, matchPrecache, precacheAndRoute } from 'workbox-precaching';
import { NavigationRoute, registerRoute } from 'workbox-routing';
import { NetworkFirst } from 'workbox-strategies';

declare const self: ServiceWorkerGlobalScope & { __WB_MANIFEST: Array<{ url: string; revision: string | null }> };

const PAGES = 'shopgraph-pages';
const DATA = 'shopgraph-catalog'; // the app drops it when the viewer changes (src/lib/offline.ts)
const CATALOG = new Set(['CategoryNav', 'CategoryPage', 'ProductDetail', 'ProductDetailBySku', 'ProductList', 'SearchFacets', 'StorefrontHome']);
const OFFLINE_HEADER = 'x-shopgraph-offline'; // on answers served from what was kept

void self.skipWaiting();
clientsClaim();
cleanupOutdatedCaches();
// No directory index: "/" is a page like any other (network first), not the precached shell.
precacheAndRoute(self.__WB_MANIFEST, { directoryIndex: '' });

const KEPT_PAGES = 50; // visited pages kept (search URLs are endless): the oldest go first
const KEPT_ANSWERS = 300;

/** Keep at most `max` entries in a cache, dropping the oldest (a cache lists its keys oldest first). */
async function trim(cacheName: string, max: number): Promise<void> {
  const cache = await caches.open(cacheName);
  const keys = await cache.keys();
  await Promise.all(keys.slice(0, Math.max(0, keys.length - max)).map((key) => cache.delete(key)));
}

const pages = new NetworkFirst({
  cacheName: PAGES,
  networkTimeoutSeconds: 10,
  plugins: [{ cacheDidUpdate: () => trim(PAGES, KEPT_PAGES) }],
});
registerRoute(
  new NavigationRoute(async (options) => {
    try {
      return await pages.handle(options);
    } catch {
      return (await matchPrecache('/index.html')) ?? Response.error();
    }
  }),
);

interface Body {
  operationName?: string;
  variables?: unknown;
}

async function catalogQuery(request: Request): Promise<Response> {
  const body = (await request
    .clone()
    .json()
    .catch(() => null)) as Body | null;
  const name = body?.operationName;
  if (!name || !CATALOG.has(name)) return fetch(request);
  const key = new Request(`/graphql/kept?op=${encodeURIComponent(name)}&v=${encodeURIComponent(JSON.stringify(body.variables ?? {}))}`);
  const cache = await caches.open(DATA);
  let response: Response;
  try {
    response = await fetch(request);
  } catch (offline) {
    const kept = await cache.match(key);
    if (!kept) throw offline;
    const headers = new Headers(kept.headers);
    headers.set(OFFLINE_HEADER, '1');
    return new Response(kept.body, { status: 200, headers });
  }
  if (response.ok) {
    const text = await response.clone().text();
    const answer = JSON.parse(text) as { errors?: unknown }; // an ok answer of the graph is JSON
    if (!answer.errors) {
      const headers = { 'content-type': response.headers.get('content-type') ?? 'application/json' };
      await cache.put(key, new Response(text, { headers }));
      await trim(DATA, KEPT_ANSWERS);
    }
  }
  return response;
}

registerRoute(
  ({ url, request, sameOrigin }) => sameOrigin && url.pathname === '/graphql' && !/event-stream|multipart/.test(request.headers.get('accept') ?? ''),
  ({ request }) => catalogQuery(request),
  'POST',
);
