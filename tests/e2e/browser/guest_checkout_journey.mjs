// A guest's checkout in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core),
// against the real stack:
//
//   node guest_checkout_journey.mjs CONFIG_JSON
//
// CONFIG_JSON: {"url", "sku", "variant": {"value"}, "facet": {"category", "option"}, "email", "password",
//               "address": {...}, "country", "card"}
//
// Signed out, the shopper picks a variant on the product page (its price and stock shown), adds it,
// checks out as a guest with an e-mail address, sees the order by its lookup link, pays for it on
// the provider's page (still signed out) and sees it turn Paid, creates an
// account with that address from the order page, and finds the order in the account's order
// history. One `<step> <json>` line per step on stdout; `error <json>` and exit 1 on failure.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const AXE = fileURLToPath(new URL('../../../frontend_contract/app/node_modules/axe-core/axe.min.js', import.meta.url));
const AXE_SOURCE = readFileSync(AXE, 'utf8');
const accessibility = {};
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

async function audit(page, name) {
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(() => window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa'] }));
  accessibility[name] = result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
}

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
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 }, locale: 'en-US', timezoneId: 'UTC' });
  context.setDefaultTimeout(15000);
  const page = await context.newPage();
  page.on('console', (m) => m.type() !== 'debug' && consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  page.on('response', (r) => r.status() >= 500 && consoleLines.push(`HTTP ${r.status()}: ${r.url()}`));
  const base = config.url.replace(/\/$/, '');

  // -- a category's page: its option-value facets narrow the listing, with counts that agree
  await page.goto(`${base}/products?category=${encodeURIComponent(config.facet.category)}`);
  const facets = page.getByTestId('facets');
  await facets.waitFor();
  const resultCount = () => text(page.getByTestId('result-count'));
  const all = await until(resultCount, (t) => /^\d+ products?$/.test(t), 'category results');
  const option = facets.locator('fieldset', { has: page.locator('legend', { hasText: new RegExp(`^${config.facet.option}$`) }) });
  const first = option.getByRole('button').first();
  const label = await text(first);
  const value = label.replace(/ \(\d+\)$/, '');
  const counted = Number(/\((\d+)\)$/.exec(label)?.[1]);
  await first.click();
  const narrowed = await until(resultCount, (t) => t !== all && /^\d+ products?$/.test(t), 'narrowed results');
  await until(() => first.getAttribute('aria-pressed'), (p) => p === 'true', 'facet chosen');
  await audit(page, 'facets');
  say('facets', { all, value, counted, narrowed, url: decodeURIComponent(new URL(page.url()).search) });

  // -- signed out: the variant picker shows the chosen variant's price and stock
  await page.goto(`${base}/p/${encodeURIComponent(config.sku)}`);
  await page.getByRole('button', { name: 'Add to cart' }).waitFor();
  const before = await text(page.getByTestId('product-price'));
  await page.getByRole('radio', { name: config.variant.value, exact: true }).check();
  const price = await until(() => text(page.getByTestId('product-price')), (t) => t !== before, 'variant price');
  const stock = await text(page.locator('.in-stock'));
  await page.getByRole('button', { name: 'Add to cart' }).click();
  await page.getByText('Added 1 to your cart.').waitFor();
  await until(() => text(page.getByTestId('cart-count')), (t) => t === '1', 'guest cart badge');
  say('variant', { before, price, stock });

  // -- the cart: check out as a guest
  await page.getByRole('link', { name: /^Cart/ }).click();
  await page.getByTestId('cart-line').first().waitFor();
  await page.getByTestId('guest-checkout-email').click();
  await page.getByRole('heading', { name: 'Checkout' }).waitFor();
  await page.getByLabel('Email').fill('not-an-address');
  await page.getByLabel('Full name').fill(config.address.name);
  await page.getByLabel('Address line 1').fill(config.address.line1);
  await page.getByLabel('City').fill(config.address.city);
  await page.getByLabel('Postal code').fill(config.address.postalCode);
  await page.getByLabel('Country (2 letters)').fill(config.country);
  await until(() => page.getByRole('button', { name: 'Place order' }).isEnabled(), (e) => e, 'place order enabled');
  await audit(page, 'guest-checkout');
  // The browser's own check stops a malformed address first; the server's is shown beside the field.
  await page.locator('form[aria-label="Guest checkout"]').evaluate((f) => f.setAttribute('novalidate', ''));
  await page.getByRole('button', { name: 'Place order' }).click();
  const emailError = await text(await page.locator('#guest-email-error').filter({ hasText: /./ }).waitFor().then(() => page.locator('#guest-email-error')));
  await page.getByLabel('Email').fill(config.email);
  // From "Place order" to the order, the page never shows the emptied cart.
  await page.evaluate(() => {
    window.__sawEmptyCart = false;
    const main = document.querySelector('main');
    new MutationObserver(() => {
      if (main.textContent.includes('Your cart is empty')) window.__sawEmptyCart = true;
    }).observe(main, { subtree: true, childList: true, characterData: true });
  });
  await page.getByRole('button', { name: 'Place order' }).click();

  // -- the order, by its lookup link
  await page.getByTestId('guest-order-placed').waitFor();
  await audit(page, 'guest-order');
  const orderUrl = page.url();
  const order = {
    number: (await text(page.getByRole('heading', { level: 1 }))).replace(/^Order /, ''),
    email: await text(page.getByTestId('guest-order-email')),
    items: await page.getByTestId('guest-order-item').allTextContents(),
    total: await text(page.getByTestId('order-total')),
    path: new URL(orderUrl).pathname,
    kept: await page.evaluate(() => JSON.parse(window.localStorage.getItem('shopgraph.guestOrders') ?? '[]').length),
    badge: await text(page.getByTestId('cart-count')),
    sawEmptyCart: await page.evaluate(() => window.__sawEmptyCart),
  };
  say('ordered', { emailError, ...order });

  // -- still signed out: pay on the provider's page, back to the order, which turns Paid
  const shop = new URL(base).origin;
  // The provider's plain page has no icon: Chromium's own /favicon.ico request is not the page's error.
  await context.route((url) => url.pathname === '/favicon.ico' && url.origin !== shop, (route) => route.fulfill({ status: 204 }));
  // In a tab of its own (as the storefront journey pays): the provider sends the browser back to
  // the shop URL it is configured with, which is not this test's router; the order page, polling
  // while unpaid, turns Paid by itself.
  const tab = await context.newPage();
  await tab.goto(await page.getByTestId('guest-pay-now').getAttribute('href'));
  await tab.getByLabel('Card number').fill(config.card);
  await tab.getByRole('button', { name: 'Pay' }).click();
  await tab.waitForLoadState();
  await tab.close();
  await page.locator('.status-paid').waitFor({ timeout: 30000 });
  say('paid', { path: new URL(page.url()).pathname, status: await text(page.locator('.status-paid')), payNow: await page.getByTestId('guest-pay-now').count() });

  // -- sign up with that address from the order page: the order joins the account's history
  await page.getByTestId('claim-hint').getByRole('link', { name: /Create an account/ }).click();
  await page.getByRole('heading', { name: 'Create an account' }).waitFor();
  const prefilled = await page.getByLabel('Email').inputValue();
  await page.getByLabel('Name').fill(config.address.name);
  await page.getByLabel('Password').fill(config.password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('link', { name: order.number }).waitFor();
  await audit(page, 'orders');
  const rows = await page.locator('tbody tr').allTextContents();
  say('claimed', {
    path: new URL(page.url()).pathname,
    prefilled,
    rows: rows.map((r) => r.trim().replace(/\s+/g, ' ')),
    kept: await page.evaluate(() => JSON.parse(window.localStorage.getItem('shopgraph.guestOrders') ?? '[]').length),
  });

  // -- the lookup link opens nothing now: the order is the account's
  await page.goto(orderUrl);
  await page.getByRole('heading', { name: 'Order not found' }).waitFor();
  await page.getByRole('link', { name: order.number }).count();
  await page.goto(`${base}/orders/${encodeURIComponent(order.number)}`);
  await page.getByRole('heading', { name: `Order ${order.number}` }).waitFor();
  say('done', { accessibility, console: consoleLines });
  clearTimeout(deadline);
  await browser.close();
} catch (e) {
  say('error', { message: String(e?.stack ?? e), console: consoleLines });
  clearTimeout(deadline);
  await browser?.close().catch(() => undefined);
  process.exit(1);
}
