// A signed-out shopper on a phone (390 px) while the cart subgraph dies, in headless Chromium
// (Debian's /usr/bin/chromium, driven by playwright-core), against a router whose cart subgraph
// the test kills:
//
//   node cart_outage.mjs CONFIG_JSON
//
// CONFIG_JSON: {"url", "sku", "category", "killed": file that exists once the cart is dead}
//
// The shopper adds the product to a guest cart and opens the cart (step `carted`); the test then
// kills the cart subgraph and creates `killed`. The cart page, opened again, must say kindly that
// the cart is unavailable, the header must not claim a count, and browsing (a category, a product)
// must still work; adding to the cart says the cart is unavailable. Every page's text is reported
// so the test can look for raw error text. One `<step> <json>` line per step on stdout;
// `error <json>` and exit 1 on failure.
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

const config = JSON.parse(process.argv[2]);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const say = (word, data) => process.stdout.write(`${word} ${JSON.stringify(data ?? {})}\n`);
const consoleLines = [];
let browser;
const deadline = setTimeout(() => {
  say('error', { message: 'gave up after 150 s', console: consoleLines });
  process.exit(1);
}, 150000);

const text = async (locator) => ((await locator.textContent()) ?? '').trim().replace(/\s+/g, ' ');

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

/** What the shopper can read on the page: the header's cart link and the whole body's text. */
async function seen(page) {
  return {
    path: new URL(page.url()).pathname,
    cartLink: await text(page.locator('.cart-link')),
    badges: await page.getByTestId('cart-count').count(),
    body: await page.locator('body').innerText(),
  };
}

try {
  browser = await chromium.launch({
    executablePath,
    headless: true,
    timeout: 15000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'en-US', timezoneId: 'UTC' });
  context.setDefaultTimeout(15000);
  const page = await context.newPage();
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  const base = config.url.replace(/\/$/, '');

  // -- a guest cart with one line, while the cart subgraph is up
  await page.goto(`${base}/p/${encodeURIComponent(config.sku)}`);
  await page.getByRole('button', { name: 'Add to cart' }).click();
  await page.getByText('Added 1 to your cart.').waitFor();
  await until(() => text(page.getByTestId('cart-count')), (t) => t === '1', 'cart badge');
  await page.getByRole('link', { name: /^Cart/ }).click();
  await page.getByTestId('cart-line').first().waitFor();
  say('carted', { lines: await page.getByTestId('cart-line').count(), badge: await text(page.getByTestId('cart-count')) });

  // -- the test kills the cart subgraph
  await until(() => existsSync(config.killed), (yes) => yes, 'the cart subgraph killed', 60000);

  // -- the shopper comes back to the cart: a kind message where the cart would be, no count
  await page.reload();
  const region = page.getByRole('alert').filter({ hasText: 'Cart is unavailable right now — try again.' });
  await region.waitFor();
  await until(() => page.getByTestId('cart-count-unknown').count(), (n) => n === 1, 'the header says the cart is unavailable');
  const retry = region.getByRole('button', { name: 'Try again' });
  await retry.click(); // still down: the same kind message, nothing raw
  await region.waitFor();
  say('cart-down', { ...(await seen(page)), retry: true });

  // -- browsing still works: a category from the header, then a product
  await page.getByRole('navigation', { name: 'Categories' }).getByRole('link').first().click();
  await page.getByTestId('product-card').first().waitFor();
  const category = { ...(await seen(page)), cards: await page.getByTestId('product-card').count() };
  say('browsed', category);
  await page.goto(`${base}/p/${encodeURIComponent(config.sku)}`);
  await page.getByTestId('product-price').waitFor();
  const product = { price: await text(page.getByTestId('product-price')) };
  // -- adding to the cart says the cart is unavailable, kindly
  await page.getByRole('button', { name: 'Add to cart' }).click();
  await page.getByText('Cart is unavailable right now — try again.').first().waitFor();
  say('product', { ...product, ...(await seen(page)) });

  // -- the home page too (its featured products come from catalog)
  await page.getByRole('link', { name: 'Shopgraph', exact: true }).click();
  await page.getByTestId('product-card').first().waitFor();
  say('home', await seen(page));

  say('done', { console: consoleLines });
  clearTimeout(deadline);
  await browser.close();
} catch (error) {
  say('error', { message: String(error?.stack ?? error), console: consoleLines });
  await browser?.close().catch(() => undefined);
  process.exit(1);
}
