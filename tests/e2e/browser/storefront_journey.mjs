// A shopper and an administrator use the storefront in headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core), two browser contexts side by side:
//
//   node storefront_journey.mjs CONFIG_JSON
//
// CONFIG_JSON: {"url", "tag", "email", "password", "admin": {"email", "password"},
//               "category", "address": {...}, "shots": {"listing", "search", "order", "feed", "dashboard"}}
//
// The shopper signs up, searches for `tag`, filters to what is in stock, opens the product, adds
// it to the cart, changes the quantity to 3, checks out (a double click on "Place order") and
// pays on the test provider's page in a tab of its own (card 4242) while the admin watches the live
// orders feed: the order page, left open, turns Paid live and the admin's sales dashboard shows
// the new order. At the end a second order is paid with the declined card (4000 0000 0000 0002):
// the order page says the card was declined and shows the order cancelled. Every step prints
// one line on stdout for the pytest side, which asserts on what was on the page:
//   <step> <json>        what the page showed at that step (listing, signed-up, searched, …, done)
//   error <json>         something failed ({"message", "console"}); exit 1
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

// axe-core (the storefront app's dev dependency) checks each page against WCAG 2 A/AA.
const AXE = fileURLToPath(new URL('../../../frontend_contract/app/node_modules/axe-core/axe.min.js', import.meta.url));
const AXE_SOURCE = readFileSync(AXE, 'utf8');
const accessibility = {}; // page -> its serious or critical axe violations
const REFUSED = 'ws://127.0.0.1:9/'; // nothing listens there: a connection that fails at once

const config = JSON.parse(process.argv[2]);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const say = (word, data) => process.stdout.write(`${word} ${JSON.stringify(data ?? {})}\n`);
const consoleLines = [];
let browser;
const deadline = setTimeout(() => {
  say('error', { message: 'gave up after 150 s', console: consoleLines });
  process.exit(1);
}, 150000);

const text = async (locator) => ((await locator.textContent()) ?? '').trim();

async function audit(page, name) {
  // Evaluated over the DevTools protocol: the app's Content-Security-Policy (script-src 'self') stays on.
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(() => window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa'] }));
  accessibility[name] = result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
}

async function newPage(context, who) {
  const page = await context.newPage();
  page.on('console', (m) => m.type() !== 'debug' && consoleLines.push(`${who} ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`${who} pageerror: ${e.message}`));
  page.on('response', (r) => r.status() >= 500 && consoleLines.push(`${who} HTTP ${r.status()}: ${r.url()}`));
  return page;
}

/** Pay the order open on `page` on the test provider's card page, in a tab of its own (the order
 *  page stays open and follows the payment live); the time the card was submitted, or with
 *  `answer`, what the provider's page said. */
async function payInNewTab(page, card, answer = false) {
  const payNow = page.getByTestId('pay-now');
  await payNow.waitFor({ timeout: 20000 });
  const tab = await newPage(page.context(), 'provider');
  // The provider's plain page has no icon: Chromium's own /favicon.ico request is not the page's error.
  await tab.route('**/favicon.ico', (route) => route.fulfill({ status: 204 }));
  await tab.goto(await payNow.getAttribute('href'));
  await tab.getByLabel('Card number').fill(card);
  const submitted = Date.now();
  await tab.getByRole('button', { name: 'Pay' }).click();
  await tab.waitForLoadState();
  const said = answer ? (await tab.locator('body').innerText()).slice(0, 300) : null;
  await tab.close();
  return answer ? said : submitted;
}

/** Wait until `read()` returns something `ok` accepts; return it. */
async function until(read, ok, what, timeout = 15000) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await read();
    if (ok(last)) return last;
    if (Date.now() > end) throw new Error(`${what}: still ${JSON.stringify(last)} after ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

try {
  browser = await chromium.launch({
    executablePath,
    headless: true,
    timeout: 15000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const options = { viewport: { width: 1100, height: 760 }, locale: 'en-US', timezoneId: 'UTC' };
  const base = config.url.replace(/\/$/, '');

  // -- time to an interactive product listing, cold (new context) and warm (same context again)
  const timing = await browser.newContext(options);
  const tp = await newPage(timing, 'timing');
  const listing = `${base}/products?category=${encodeURIComponent(config.category)}`;
  const tti = [];
  for (let i = 0; i < 2; i++) {
    await tp.goto(listing, { waitUntil: 'commit' });
    await tp.getByTestId('product-card').first().waitFor();
    // The app renders on the client: once the cards are on screen their links work.
    tti.push(await tp.evaluate(() => Math.round(performance.now())));
  }
  // The page streams: count the cards once the whole document is in, not at the first card.
  await tp.waitForLoadState('load');
  const cards = await tp.getByTestId('product-card').count();
  await tp.screenshot({ path: config.shots.listing });
  await audit(tp, 'listing');
  say('listing', { ms: tti, cards, count: await text(tp.getByTestId('result-count')) });
  await timing.close();

  const shopper = await browser.newContext(options);
  shopper.setDefaultTimeout(15000);
  const page = await newPage(shopper, 'shopper');

  // -- sign up
  await page.goto(`${base}/`);
  await page.getByRole('heading', { name: 'Welcome to Shopgraph' }).waitFor();
  await page.getByTestId('product-card').first().waitFor();
  await audit(page, 'home');
  await page.getByRole('link', { name: 'Sign up' }).click();
  await audit(page, 'sign-up');
  await page.getByLabel('Name').fill('Sam Browser');
  await page.getByLabel('Email').fill(config.email);
  await page.getByLabel('Password').fill(config.password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByTestId('account-name').waitFor();
  say('signed-up', { name: await text(page.getByTestId('account-name')), path: new URL(page.url()).pathname });

  // -- search, then filter to what is in stock
  await page.getByRole('searchbox', { name: 'Search products' }).fill(config.tag);
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  const searched = await until(() => text(page.getByTestId('result-count')).catch(() => ''), (t) => /product/.test(t), 'search results');
  const names = await page.getByTestId('product-card').locator('.name').allTextContents();
  say('searched', { count: searched, names, heading: await text(page.getByRole('heading', { level: 1 })) });

  await page.getByLabel('In stock only').click(); // the URL changes, then the box (a navigation)
  const filtered = await until(() => text(page.getByTestId('result-count')), (t) => t !== searched, 'filtered results');
  const filteredNames = await page.getByTestId('product-card').locator('.name').allTextContents();
  say('filtered', { count: filtered, names: filteredNames, query: new URL(page.url()).search });
  await page.screenshot({ path: config.shots.search });

  // -- product page, add to cart
  await page.getByTestId('product-card').first().getByRole('link').click();
  await page.getByRole('button', { name: 'Add to cart' }).waitFor();
  const productUrl = page.url();
  const product = { name: await text(page.getByRole('heading', { level: 1 })), price: await text(page.getByTestId('product-price')) };
  await page.getByRole('button', { name: 'Add to cart' }).click();
  await page.getByText('Added 1 to your cart.').waitFor();
  await audit(page, 'product');
  await until(() => text(page.getByTestId('cart-count')), (t) => t === '1', 'cart badge');
  say('added', product);

  // -- cart: change the quantity to 3
  await page.getByRole('link', { name: /^Cart/ }).click();
  await page.getByTestId('cart-line').first().waitFor();
  const quantity = page.getByRole('spinbutton', { name: `Quantity of ${product.name}` });
  // More than is in stock: the cart refuses, and says so beside that line's quantity.
  await quantity.fill('50');
  await page.getByTestId('cart-line').first().getByRole('button', { name: 'Update' }).click();
  const lineError = page.getByTestId('cart-line').first().getByRole('alert');
  await lineError.waitFor();
  const stockError = {
    message: await text(lineError),
    describes: (await quantity.getAttribute('aria-describedby')) === (await lineError.getAttribute('id')),
    invalid: await quantity.getAttribute('aria-invalid'),
    quantity: await text(page.getByTestId('cart-quantity')),
  };
  await quantity.fill('3');
  await page.getByTestId('cart-line').first().getByRole('button', { name: 'Update' }).click();
  await until(() => text(page.getByTestId('cart-quantity')), (t) => t === '3', 'cart quantity');
  // The badge and the priced summary come from their own answers: on a loaded machine they land a
  // moment after the line (the journey read the old subtotal once); wait for them, not for a time.
  await until(() => text(page.getByTestId('cart-count')), (t) => t === '3', 'cart badge after the update');
  await until(
    async () => [await text(page.getByTestId('line-total').first()), await text(page.getByTestId('cart-subtotal'))],
    ([line, subtotal]) => line === subtotal,
    'cart subtotal after the update',
  );
  await audit(page, 'cart');
  say('cart', {
    stockError,
    lines: await page.getByTestId('cart-line').count(),
    quantity: await text(page.getByTestId('cart-quantity')),
    lineTotal: await text(page.getByTestId('line-total').first()),
    subtotal: await text(page.getByTestId('cart-subtotal')),
    badge: await text(page.getByTestId('cart-count')),
  });

  // -- the admin signs in, opens the sales dashboard (24 h window) and the live orders feed
  const admin = await browser.newContext(options);
  admin.setDefaultTimeout(15000);
  // Keep a handle on each page's WebSockets so the test can drop the feed's connection, and
  // while window.__offline is set, point new ones at a closed port (the reconnects fail).
  await admin.addInitScript((refused) => {
    const Native = window.WebSocket;
    window.__sockets = [];
    window.__offline = false;
    window.WebSocket = class extends Native {
      constructor(url, ...rest) {
        super(window.__offline ? refused : url, ...rest);
        window.__sockets.push(this);
      }
    };
  }, REFUSED);
  const sales = await newPage(admin, 'admin');
  await sales.goto(`${base}/signin`);
  await sales.getByLabel('Email').fill(config.admin.email);
  await sales.getByLabel('Password').fill(config.admin.password);
  await sales.getByRole('button', { name: 'Sign in' }).click();
  await sales.getByRole('heading', { name: 'Welcome to Shopgraph' }).waitFor(); // signed in, back home
  await sales.getByRole('link', { name: 'Admin', exact: true }).click();
  await sales.getByRole('link', { name: 'Sales', exact: true }).click();
  await sales.getByLabel('Window').selectOption('DAY');
  await sales.getByTestId('kpi-orders').waitFor();
  // The day's history is there from the first paint: 24 hourly buckets.
  const points = () => sales.getByTestId('chart-timeline').getAttribute('data-points').then(Number);
  const seriesOrders = () => sales.getByTestId('chart-timeline').getAttribute('data-orders').then(Number);
  await until(points, (n) => n === 24, 'the day in hourly buckets');
  const before = {
    orders: await text(sales.getByTestId('kpi-orders')),
    revenue: await text(sales.getByTestId('kpi-revenue')),
    points: await points(),
    seriesOrders: await seriesOrders(),
  };
  say('dashboard-before', before);
  const feed = await newPage(admin, 'feed');
  await feed.goto(`${base}/admin`);
  await until(() => text(feed.getByTestId('feed-state')), (t) => t === 'live', 'feed state');
  await feed.getByTestId('admin-orders').waitFor();
  await feed.waitForTimeout(1000); // the feed's subscription reaches the orders subgraph (as in the GraphiQL test)

  // -- checkout: a double click on "Place order" still places one order
  await page.getByRole('link', { name: 'Check out' }).click();
  await page.getByLabel('Full name').fill(config.address.name);
  await page.getByLabel('Address line 1').fill(config.address.line1);
  await page.getByLabel('City').fill(config.address.city);
  await page.getByLabel('Postal code').fill(config.address.postalCode);
  await page.getByLabel('Country (2 letters)').fill(config.address.country);
  await audit(page, 'checkout');
  // From "Place order" to the order page, the page never shows the emptied cart.
  await page.evaluate(() => {
    window.__sawEmptyCart = false;
    const main = document.querySelector('main');
    new MutationObserver(() => {
      if (main.textContent.includes('Your cart is empty')) window.__sawEmptyCart = true;
    }).observe(main, { subtree: true, childList: true, characterData: true });
  });
  const placedAt = Date.now();
  await page.getByRole('button', { name: 'Place order' }).dblclick();
  // Watch the admin's pages from now on, each in the background: when did each show the order?
  const dashboardUpdated = until(() => text(sales.getByTestId('kpi-orders')), (t) => t !== before.orders, 'dashboard order count', 20000).then(() => Date.now() - placedAt);
  const inFeed = feed.getByTestId('event-feed').getByText('Created').first().waitFor({ timeout: 20000 }).then(() => Date.now() - placedAt);
  await page.getByRole('heading', { name: /^Order / }).waitFor();
  const orderPageMs = Date.now() - placedAt;
  const number = (await text(page.getByRole('heading', { level: 1 }))).replace(/^Order /, '');
  await until(() => text(page.getByTestId('live')), (t) => t.startsWith('live'), 'live marker');
  say('ordered', {
    number,
    orderPageMs,
    status: await text(page.getByTestId('order-status')),
    total: await text(page.getByTestId('order-total')),
    path: new URL(page.url()).pathname,
    badge: await until(() => text(page.getByTestId('cart-count')), (t) => t === '0', 'cart badge after the order'),
    sawEmptyCart: await page.evaluate(() => window.__sawEmptyCart),
  });
  await page.screenshot({ path: config.shots.order });
  await audit(page, 'order');

  // -- the admin sees it in the live feed; the shopper pays on the test provider's page (a tab of
  //    its own, card 4242 4242 4242 4242) and the order page, left open, turns Paid live
  const row = feed.locator(`tr[data-order="${number}"]`);
  await row.waitFor();
  const seenInFeedMs = await inFeed;
  const paidAt = await payInNewTab(page, '4242 4242 4242 4242');
  await until(() => text(page.getByTestId('order-status')), (t) => t === 'Paid', 'live order status', 30000);
  const liveMs = Date.now() - paidAt;
  await until(() => text(row.locator('.status')), (t) => t === 'Paid', 'admin row status');
  const events = await feed.getByTestId('event-feed').locator('li').allTextContents();
  say('paid', { status: await text(page.getByTestId('order-status')), liveMs, seenInFeedMs, row: await text(row), events: events.filter((e) => e.includes(number)) });
  await feed.screenshot({ path: config.shots.feed });
  await audit(feed, 'admin-orders');

  // -- the dashboard counted the order and drew the new figures
  const updatedMs = await dashboardUpdated;
  await until(seriesOrders, (n) => n > before.seriesOrders, 'the order in the history chart');
  await sales.waitForTimeout(300);
  say('dashboard-after', {
    orders: await text(sales.getByTestId('kpi-orders')),
    revenue: await text(sales.getByTestId('kpi-revenue')),
    points: await points(),
    seriesOrders: await seriesOrders(),
    legends: {
      timeline: await sales.locator('[data-testid=chart-timeline] .recharts-legend-item').allTextContents(),
      top: await sales.locator('[data-testid=chart-top-products] .recharts-legend-item').allTextContents(),
    },
    bars: Number(await sales.getByTestId('chart-top-products').getAttribute('data-bars')),
    svgBars: await sales.locator('[data-testid=chart-top-products] .recharts-bar-rectangle').count(),
    top: await sales.getByTestId('top-products').locator('tbody th').allTextContents(),
    updatedMs,
  });
  await sales.screenshot({ path: config.shots.dashboard, fullPage: true });
  await audit(sales, 'admin-sales');
  await sales.getByRole('link', { name: 'Products', exact: true }).click();
  await sales.getByRole('button', { name: 'Create product' }).waitFor();
  await sales.getByRole('table').waitFor();
  await audit(sales, 'admin-products');
  say('accessibility', accessibility);
  // -- the feed's connection drops and stays down while the order ships; back online, the feed
  //    shows the missed event once (it resubscribes after the last event id it showed)
  const feedState = () => text(feed.getByTestId('feed-state'));
  const ofOrder = async () => (await feed.getByTestId('event-feed').locator('li').allTextContents()).filter((e) => e.includes(number));
  const open = await feed.evaluate(() => {
    window.__offline = true;
    return window.__sockets.filter((s) => s.readyState === WebSocket.OPEN).map((s) => s.close(1000, 'dropped by the test')).length;
  });
  if (open !== 1) throw new Error(`the feed page had ${open} open WebSockets, not 1`);
  await until(feedState, (t) => t === 'connecting', 'the feed noticing the drop', 5000);
  await feed.getByRole('button', { name: `Mark shipped: order ${number}` }).click(); // over HTTP
  await until(() => text(row.locator('.status')), (t) => t === 'Shipped', 'the status change answered');
  const whileDown = { state: await feedState(), events: (await ofOrder()).map((e) => e.split(' ')[0]) };
  await feed.evaluate(() => {
    window.__offline = false;
  });
  await until(feedState, (t) => t === 'live', 'the feed reconnecting', 20000);
  await until(ofOrder, (list) => list.some((e) => e.startsWith('Shipped')), 'the missed SHIPPED event', 20000);
  await feed.waitForTimeout(1000); // a duplicate would have arrived by now
  say('resumed', { whileDown, events: (await ofOrder()).map((e) => e.split(' ')[0]) });

  // -- a second order, paid with the declined card 4000 0000 0000 0002: the order page says so
  //    plainly and shows the order cancelled
  await page.goto(productUrl);
  await page.getByRole('button', { name: 'Add to cart' }).click();
  await page.getByText('Added 1 to your cart.').waitFor();
  await page.getByRole('link', { name: /^Cart/ }).click();
  await page.getByRole('link', { name: 'Check out' }).click();
  await page.getByLabel('Full name').fill(config.address.name);
  await page.getByLabel('Address line 1').fill(config.address.line1);
  await page.getByLabel('City').fill(config.address.city);
  await page.getByLabel('Postal code').fill(config.address.postalCode);
  await page.getByLabel('Country (2 letters)').fill(config.address.country);
  await page.getByRole('button', { name: 'Place order' }).click();
  await page.getByRole('heading', { name: /^Order / }).waitFor();
  const declinedNumber = (await text(page.getByRole('heading', { level: 1 }))).replace(/^Order /, '');
  await until(() => text(page.getByTestId('live')), (t) => t.startsWith('live'), 'live marker');
  const provider = await payInNewTab(page, '4000 0000 0000 0002', true);
  await until(() => text(page.getByTestId('order-status')), (t) => t === 'Cancelled', 'declined order status', 30000);
  const alert = page.getByTestId('payment-state').getByRole('alert');
  await alert.waitFor();
  say('declined', { number: declinedNumber, status: await text(page.getByTestId('order-status')), alert: await text(alert), provider });
  say('done', { console: consoleLines });
} catch (e) {
  say('error', { message: String(e && e.stack ? e.stack : e), console: consoleLines });
  process.exitCode = 1;
} finally {
  clearTimeout(deadline);
  if (browser) await browser.close().catch(() => {});
}
