// The storefront's server: every shopper page rendered by React on the server (src/entry-server.tsx)
// from the router's graph, plus /sitemap.xml and /robots.txt from the catalog. The router serves the
// build's /assets itself and passes every other page request here (router/storefront.py), adding
// the page's security headers; this server only answers the router (it listens on 127.0.0.1 by default).
//
//   PORT / HOST                 where it listens (default 127.0.0.1:4100)
//   SHOPGRAPH_ROUTER            the router whose /graphql the pages read (default http://127.0.0.1:4000)
//   SHOPGRAPH_PUBLIC_URL        the shop's public origin for canonical URLs (default: the request's host)
//
// Bundled with everything it imports (vite build --ssr): `node dist/server/main.js` needs no node_modules.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { PassThrough, type Writable } from 'node:stream';
import { constants, createGzip } from 'node:zlib';
import { render } from '../entry-server';
import { catalogSitemap, robotsTxt } from './seo';
import { log } from './log';
import { Metrics } from './metrics';

const port = Number(process.env.PORT ?? 4100);
const host = process.env.HOST ?? '127.0.0.1';
const routerUrl = (process.env.SHOPGRAPH_ROUTER ?? 'http://127.0.0.1:4000').replace(/\/$/, '');
const graphUrl = `${routerUrl}/graphql`;
const publicUrl = process.env.SHOPGRAPH_PUBLIC_URL?.replace(/\/$/, '');

// The client build's index.html (scripts, styles): the page's head goes before </head>, the app into
// #root, the cache it hydrates from before </body>. Its static title, description and "needs
// JavaScript" notice are for the build served on its own (router/storefront.py without this server).
const template = readFileSync(new URL('../index.html', import.meta.url), 'utf8')
  .replace(/<title>.*?<\/title>\s*/s, '')
  .replace(/<meta name="description"[^>]*>\s*/, '')
  .replace(/<noscript>.*?<\/noscript>\s*/s, '');
const ROOT = '<div id="root">';
const cut = (at: string, from = 0) => {
  const i = template.indexOf(at, from);
  if (i < 0) throw new Error(`index.html has no ${at}`);
  return i;
};
const headEnd = cut('</head>');
const rootStart = cut(ROOT) + ROOT.length;
const bodyEnd = cut('</body>');
const [documentStart, headToRoot, rootToBodyEnd, documentEnd] = [
  template.slice(0, headEnd),
  template.slice(headEnd, rootStart),
  template.slice(rootStart, bodyEnd),
  template.slice(bodyEnd),
];

const metrics = new Metrics();

function originOf(request: IncomingMessage): string {
  if (publicUrl) return publicUrl;
  const proto = String(request.headers['x-forwarded-proto'] ?? 'http')
    .split(',')[0]
    .trim();
  const hostHeader = String(request.headers['x-forwarded-host'] ?? request.headers.host ?? `${host}:${port}`)
    .split(',')[0]
    .trim();
  return `${proto === 'https' ? 'https' : 'http'}://${hostHeader}`;
}

async function page(request: IncomingMessage, response: ServerResponse, url: string): Promise<number> {
  // The shopper's address, as the router signed it, goes back with the page's graph requests, so
  // rate limits count each shopper, not this server (router/shopper_address.py).
  const shopper = request.headers['x-shopgraph-shopper'];
  const rendered = await render(url, originOf(request), graphUrl, shopper ? { 'x-shopgraph-shopper': String(shopper) } : {});
  // Compressed for browsers that take it, each part flushed as it is written (the page still streams).
  const gzip = /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''));
  response.writeHead(rendered.status, {
    'content-type': 'text/html; charset=utf-8',
    // Private: a page may show what its URL's token opens (a guest's order at /order-status?token=).
    'cache-control': 'private, no-cache',
    vary: 'Accept-Encoding',
    ...(gzip ? { 'content-encoding': 'gzip' } : {}),
  });
  if (request.method === 'HEAD') {
    response.end();
    return rendered.status;
  }
  let out: Writable = response;
  if (gzip) {
    const zip = createGzip({ flush: constants.Z_SYNC_FLUSH });
    zip.pipe(response);
    out = zip;
  }
  out.write(documentStart + rendered.head + headToRoot);
  const body = new PassThrough();
  body.pipe(out, { end: false });
  body.on('end', () => out.end(rootToBodyEnd + rendered.state + documentEnd));
  rendered.pipe(body);
  return rendered.status;
}

async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const started = performance.now();
  const url = request.url ?? '/';
  const path = url.split('?', 1)[0];
  let kind = 'page';
  let status = 500;
  try {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      kind = 'other';
      status = 405;
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('Method not allowed');
    } else if (path === '/healthz' || path === '/health' || path === '/ready') {
      kind = 'health'; // probes (the router answers its own /health and /ready: never a shopper's page)
      status = 200;
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    } else if (path === '/metrics') {
      kind = 'metrics';
      status = 200;
      response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metrics.text());
    } else if (path === '/robots.txt') {
      kind = 'robots';
      status = 200;
      response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'public, max-age=3600' });
      response.end(robotsTxt(originOf(request)));
    } else if (path === '/sitemap.xml') {
      kind = 'sitemap';
      const xml = await catalogSitemap(graphUrl, originOf(request));
      status = 200;
      response.writeHead(200, { 'content-type': 'application/xml; charset=utf-8', 'cache-control': 'public, max-age=300' });
      response.end(xml);
    } else {
      status = await page(request, response, url);
    }
  } catch (error) {
    log('ERROR', `${request.method} ${path} failed`, error);
    metrics.failed(kind);
    if (!response.headersSent) {
      response.writeHead(500, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      response.end(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shopgraph</title></head>' +
          '<body><h1>Shopgraph</h1><p>This page could not be shown right now. Try again in a moment.</p></body></html>',
      );
    } else response.destroy();
  } finally {
    metrics.observe(kind, status, (performance.now() - started) / 1000);
  }
}

const server = createServer((request, response) => void handle(request, response));
server.listen(port, host, () => log('INFO', `serving pages on http://${host}:${port} from ${graphUrl}`));
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => server.close(() => process.exit(0)));

// Started by `shopgraph dev` (frontend_contract/build.py): leave with it, even when it was killed.
if (process.env.SHOPGRAPH_EXIT_WITH_PARENT === '1') {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 1000).unref();
}
