// A signed-out shopper's priced cart in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core), against the real stack:
//
//   node pricing_journey.mjs CONFIG_JSON
//
// CONFIG_JSON: {"url", "sku", "quantity", "country", "express", "codes": {"unknown", "tooSmall", "good"},
//               "email", "password", "address": {...}, "shot"}
//
// Signed out, the shopper adds `quantity` of `sku` to a guest cart, sets the destination, picks the
// express method, tries an unknown code, a code whose minimum the cart does not meet, then a good
// one; signs in from "Sign in to check out" (the guest cart is merged: the merge's notices are shown
// once), and places the order at the breakdown shown. One `<step> <json>` line per step on stdout;
// `error <json>` and exit 1 on failure.
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
  // Evaluated over the DevTools protocol: the app's Content-Security-Policy (script-src 'self') stays on.
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

async function breakdown(page) {
  const read = async (id) => ((await page.getByTestId(id).count()) > 0 ? text(page.getByTestId(id).first()) : null);
  return {
    subtotal: (await read('cost-subtotal')) ?? (await read('cart-subtotal')),
    discounts: await read('cost-discounts'),
    shipping: await read('cost-shipping'),
    tax: await read('cost-tax'),
    total: await read('cost-total'),
  };
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

  // -- signed out: add to a guest cart
  await page.goto(`${base}/p/${encodeURIComponent(config.sku)}`);
  await page.getByRole('button', { name: 'Add to cart' }).waitFor();
  await page.getByLabel('Quantity', { exact: true }).fill(String(config.quantity));
  await page.getByRole('button', { name: 'Add to cart' }).click();
  await page.getByText(`Added ${config.quantity} to your cart.`).waitFor();
  const badge = await until(() => text(page.getByTestId('cart-count')), (t) => t === String(config.quantity), 'guest cart badge');
  const token = await page.evaluate(() => window.localStorage.getItem('shopgraph.cartToken'));
  say('guest-added', { badge, hasToken: typeof token === 'string' && token.length > 20, signIn: await page.getByRole('link', { name: 'Sign in' }).count() });

  // -- the cart: destination, shipping method, codes
  await page.getByRole('link', { name: /^Cart/ }).click();
  await page.getByTestId('cart-line').first().waitFor();
  await page.getByLabel('Country (2 letters)').fill(config.country);
  await page.getByRole('button', { name: 'Update destination' }).click();
  await until(() => page.getByTestId('shipping-option').count(), (n) => n >= 2, 'shipping options');
  const options = await page.getByTestId('shipping-option').allTextContents();
  await page.getByRole('radio', { name: new RegExp(`^${config.express}`) }).click(); // checked once the server says so
  await until(() => page.getByRole('radio', { name: new RegExp(`^${config.express}`) }).isChecked(), (c) => c, 'express chosen');

  await page.getByRole('textbox', { name: 'Discount code', exact: true }).fill(config.codes.unknown);
  await page.getByRole('button', { name: 'Apply' }).click();
  const unknown = await text(page.locator('#discount-error'));
  await page.getByRole('textbox', { name: 'Discount code', exact: true }).fill(config.codes.tooSmall);
  await page.getByRole('button', { name: 'Apply' }).click();
  const refused = await text(await page.getByTestId('discount-reason').first().waitFor().then(() => page.getByTestId('discount-reason').first()));
  await page.getByRole('textbox', { name: 'Discount code', exact: true }).fill(config.codes.good);
  await page.getByRole('button', { name: 'Apply' }).click();
  await until(() => page.getByTestId('cost-discounts').count(), (n) => n > 0, 'discount in the breakdown');
  await audit(page, 'cart');
  await page.screenshot({ path: config.shot });
  say('guest-cart', {
    options,
    unknown,
    refused,
    codes: await page.getByTestId('discount-code').allTextContents(),
    lineDiscount: await text(page.getByTestId('line-discount').first()),
    lineTax: await text(page.getByTestId('line-tax').first()),
    breakdown: await breakdown(page),
  });

  // -- "Sign in to check out": the cart (lines, destination, method, code) comes along
  await page.getByTestId('guest-checkout').click();
  await page.getByLabel('Email').fill(config.email);
  await page.getByLabel('Password').fill(config.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Checkout' }).waitFor();
  await page.getByTestId('merge-notices').waitFor();
  const notices = await page.getByTestId('merge-notices').locator('li').allTextContents();
  const badgeAfter = await until(() => text(page.getByTestId('cart-count')), (t) => t === String(config.mergedQuantity), 'merged cart badge');
  await page.getByLabel('Full name').fill(config.address.name);
  await page.getByLabel('Address line 1').fill(config.address.line1);
  await page.getByLabel('City').fill(config.address.city);
  await page.getByLabel('Postal code').fill(config.address.postalCode);
  await page.getByLabel('Country (2 letters)').fill(config.country);
  await page.getByTestId('checkout-shipping-method').waitFor();
  await until(() => page.getByRole('button', { name: 'Place order' }).isEnabled(), (e) => e, 'place order enabled');
  await audit(page, 'checkout');
  const checkout = {
    path: new URL(page.url()).pathname,
    notices,
    badge: badgeAfter,
    method: await text(page.getByTestId('checkout-shipping-method')),
    discounts: await page.getByTestId('checkout-discount').allTextContents(),
    breakdown: await breakdown(page),
    token: await page.evaluate(() => window.localStorage.getItem('shopgraph.cartToken')),
  };
  say('checkout', checkout);

  await page.getByRole('button', { name: 'Place order' }).click();
  await page.getByRole('heading', { name: /^Order / }).waitFor();
  // The order page refetches (and shows "Loading") once its live status subscription starts:
  // read it until one reading has everything.
  const maybe = async (id) => ((await page.getByTestId(id).count()) > 0 ? text(page.getByTestId(id).first()).catch(() => null) : null);
  const readOrder = async () => ({
    number: (await text(page.getByRole('heading', { level: 1 })).catch(() => '')).replace(/^Order /, ''),
    breakdown: await breakdown(page).catch(() => ({ total: null })),
    method: await maybe('order-shipping-method'),
    codes: await maybe('order-discount-codes'),
    orderTotal: await maybe('order-total'),
  });
  const complete = (o) => o.number.startsWith('SG-') && o.method && o.codes && o.orderTotal && Object.values(o.breakdown).every((v) => v !== null);
  say('ordered', await until(readOrder, complete, 'the order page'));

  // -- the merge's notices were shown once: not again after a reload
  await page.reload();
  await page.getByRole('heading', { name: /^Order / }).waitFor();
  say('reloaded', { notices: await page.getByTestId('merge-notices').count(), badge: await text(page.getByTestId('cart-count')) });
  say('done', { accessibility, console: consoleLines });
  clearTimeout(deadline);
  await browser.close();
} catch (e) {
  say('error', { message: String(e?.stack ?? e), console: consoleLines });
  clearTimeout(deadline);
  await browser?.close().catch(() => undefined);
  process.exit(1);
}
