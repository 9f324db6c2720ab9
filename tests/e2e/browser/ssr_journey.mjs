// The server-rendered storefront in headless Chromium (Debian's, driven by playwright-core).
//
//   node ssr_journey.mjs '{"url": "http://127.0.0.1:4000", "category": "Audio", "search": "lamp"}'
//
// 1. JavaScript off: home → the category's link → a product → the header's search form (a GET
//    form) → its results: each page is the server's HTML alone, with links that work.
// 2. JavaScript on (a German browser): a product page, a category page and home hydrate from the
//    server's data: no /graphql request while they do, no hydration error; then a click on a
//    category link is a client-side navigation that reads the graph.
// One line per step on stdout: `<step> <json>` (what the page showed); `error <json>` and exit 1.
import { chromium } from 'playwright-core';

const config = JSON.parse(process.argv[2]);
const say = (word, data) => process.stdout.write(`${word} ${JSON.stringify(data ?? {})}\n`);
const consoleLines = [];
const deadline = setTimeout(() => {
  say('error', { message: 'gave up after 100 s', console: consoleLines });
  process.exit(1);
}, 100000);
const text = async (locator) => ((await locator.first().textContent()) ?? '').trim();
const heading = (page) => text(page.getByRole('heading', { level: 1 }));

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  // 1. No JavaScript at all.
  const still = await (await browser.newContext({ javaScriptEnabled: false })).newPage();
  const home = await still.goto(`${config.url}/`);
  say('home', { status: home.status(), heading: await heading(still), title: await still.title(), cards: await still.getByTestId('product-card').count() });
  await still.getByRole('navigation', { name: 'Categories' }).getByRole('link', { name: config.category }).click();
  await still.waitForURL((u) => new URL(u).pathname === '/products');
  say('category', {
    heading: await heading(still),
    count: await text(still.getByTestId('result-count')),
    cards: await still.getByTestId('product-card').count(),
    url: still.url(),
  });
  const card = still.getByTestId('product-card').first();
  const name = await text(card.locator('.name'));
  await card.getByRole('link').click();
  await still.waitForURL((u) => new URL(u).pathname.startsWith('/p/'));
  say('product', { heading: await heading(still), listed: name, price: await text(still.getByTestId('product-price')), title: await still.title() });
  await still.getByRole('search').first().getByRole('searchbox').fill(config.search);
  await still.getByRole('search').first().getByRole('button', { name: 'Search' }).click();
  await still.waitForURL((u) => new URL(u).searchParams.get('q') === config.search);
  say('search', { heading: await heading(still), count: await text(still.getByTestId('result-count')), cards: await still.getByTestId('product-card').count() });

  // 2. Hydration: the server's data is used as is, and the markup matches even in a browser whose
  //    own locale would format prices otherwise.
  const context = await browser.newContext({ locale: 'de-DE' });
  const live = await context.newPage();
  const graph = [];
  live.on('request', (r) => {
    if (new URL(r.url()).pathname === '/graphql') graph.push(r.postDataJSON()?.operationName ?? r.url());
  });
  live.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') consoleLines.push(`${m.type()}: ${m.text()}`);
  });
  live.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  for (const path of [config.product, `/products?category=${encodeURIComponent(config.categorySlug)}`, '/']) {
    graph.length = 0;
    await live.goto(`${config.url}${path}`, { waitUntil: 'networkidle' });
    // Hydrated: React holds the page's heading (its fiber is set on the nodes it hydrated).
    await live.waitForFunction(() => Object.keys(document.querySelector('#main h1') ?? {}).some((k) => k.startsWith('__react')));
    say(`hydrated:${path}`, { requests: [...graph], heading: await heading(live), errors: consoleLines.filter((l) => /hydrat|did not match|mismatch/i.test(l)) });
  }
  // Live after hydration: a client-side navigation reads the graph, and the product page reacts.
  await live.goto(`${config.url}${config.product}`, { waitUntil: 'networkidle' });
  await live.waitForFunction(() => Object.keys(document.querySelector('#main h1') ?? {}).some((k) => k.startsWith('__react')));
  graph.length = 0;
  await live.getByRole('navigation', { name: 'Categories' }).getByRole('link', { name: config.category }).click();
  await live.getByTestId('result-count').waitFor();
  say('navigated', { requests: [...graph], heading: await heading(live), title: await live.title() });
  say('done', { console: consoleLines });
} catch (e) {
  say('error', { message: String(e && e.stack ? e.stack : e), console: consoleLines });
  process.exitCode = 1;
} finally {
  clearTimeout(deadline);
  await browser.close();
}
