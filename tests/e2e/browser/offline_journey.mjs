// Installable and offline, in headless Chromium (Debian's, playwright-core):
//
//   node offline_journey.mjs CONFIG_JSON      CONFIG_JSON: {"url", "category"}
//
// A shopper opens the shop (the service worker installs and takes the page), visits a category and
// a product, then goes offline (context.setOffline): the product and the category page open again
// from what the worker kept, under the offline notice; "Add to cart" says at once that nothing was
// changed (no pending state, nothing queued); back online, the notice goes.
// One line per step on stdout: `<step> <json>`; `error <json>` and exit 1.
import { chromium } from 'playwright-core';

const config = JSON.parse(process.argv[2]);
const say = (word, data) => process.stdout.write(`${word} ${JSON.stringify(data ?? {})}\n`);
const consoleLines = [];
const deadline = setTimeout(() => {
  say('error', { message: 'gave up after 90 s', console: consoleLines });
  process.exit(1);
}, 90000);
const text = async (locator) => ((await locator.textContent()) ?? '').trim();
const base = config.url;

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('console', (m) => m.type() === 'error' && consoleLines.push(`console: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  // Answers the worker served from what it kept (it marks them).
  const kept = [];
  page.on('response', (r) => {
    if (r.fromServiceWorker() && r.headers()['x-shopgraph-offline'] === '1') kept.push(r.request().postDataJSON()?.operationName);
  });

  await page.goto(`${base}/`);
  await page.getByTestId('product-card').first().waitFor();
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 30000 });
  const manifest = await page.evaluate(async () => {
    const link = document.querySelector('link[rel="manifest"]');
    const body = link ? await (await fetch(link.href)).json() : null;
    return body && { name: body.name, display: body.display, startUrl: body.start_url, icons: body.icons.map((i) => i.sizes) };
  });
  say('installed', { manifest, controlled: true });

  // Visit a category and a product while online.
  const categoryUrl = `${base}/products?category=${encodeURIComponent(config.category)}`;
  await page.goto(categoryUrl);
  await page.getByTestId('product-card').first().waitFor();
  const cards = await page.getByTestId('product-card').count();
  await page.getByTestId('product-card').first().getByRole('link').first().click();
  await page.getByRole('button', { name: 'Add to cart' }).waitFor();
  const productUrl = page.url();
  const product = await text(page.getByRole('heading', { level: 1 }));
  say('visited', { cards, product, path: new URL(productUrl).pathname });

  // Offline: the product page again, from the worker.
  await context.setOffline(true);
  await page.goto(productUrl);
  await page.getByRole('button', { name: 'Add to cart' }).waitFor();
  const notice = await text(page.getByTestId('offline-notice'));
  const offlineProduct = await text(page.getByRole('heading', { level: 1 }));
  // Add to cart offline: refused at once, said next to the button; the cart is untouched.
  await page.getByRole('button', { name: 'Add to cart' }).click();
  await page.locator('#add-offline').waitFor();
  say('offline-product', {
    product: offlineProduct,
    notice,
    addError: await text(page.locator('#add-offline')),
    adding: await page.getByRole('button', { name: 'Adding…' }).count(),
    added: await page.getByRole('status').filter({ hasText: 'Added' }).count(),
    badge: await text(page.getByTestId('cart-count')),
  });

  // The category page, offline, from the worker too.
  await page.goto(categoryUrl);
  await page.getByTestId('product-card').first().waitFor();
  say('offline-category', { cards: await page.getByTestId('product-card').count(), notice: await page.getByTestId('offline-notice').count(), kept: [...new Set(kept)].sort() });

  await context.setOffline(false);
  await page.getByTestId('offline-notice').waitFor({ state: 'detached' });
  say('online', { notice: await page.getByTestId('offline-notice').count() });
  say('done', { console: consoleLines });
} catch (e) {
  say('error', { message: String(e && e.stack ? e.stack : e), console: consoleLines });
  process.exitCode = 1;
} finally {
  clearTimeout(deadline);
  await browser.close();
}
