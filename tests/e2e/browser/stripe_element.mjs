// The order page's payment step with Stripe's Payment Element, in headless Chromium (Debian's, driven by
// playwright-core), against the stand-in Stripe.js the tests' local Stripe server serves.
//
//   node stripe_element.mjs CONFIG_JSON   {"url", "stripe", "email", "password", "paid", "declined", "cancelled"}
//
// Signs in, opens order `paid`, types 4242… into the element's frame, pays, is sent back to the
// order page, which says it waits for the bank (Stripe's webhook is held by the local Stripe server
// until this script releases it) and then turns Paid by itself; then order `declined` with
// 4000 0000 0000 0002: the element says the card was declined and the page shows the order
// cancelled, live; then order `cancelled` is cancelled on its page, whose payment panel follows the
// void that comes after the order event; then an administrator (config.admin) refunds 10.00 of the
// paid order in the admin's orders list, and the shopper's order page shows the refund live; then
// order `secure` is paid with 4000 0027 6000 3184: the bank's 3-D Secure page shows in a frame over
// the order page, is completed there, and the order turns Paid; order `resumed` likewise, but the page
// is reloaded while the bank's frame is open: the page offers the bank's step again, and it pays.
// Every request carrying a card number is recorded by origin, and every CSP violation.
// One line per step on stdout: `<step> <json>`; `error <json>` and exit 1.
import { chromium } from 'playwright-core';

const config = JSON.parse(process.argv[2]);
const say = (word, data) => process.stdout.write(`${word} ${JSON.stringify(data ?? {})}\n`);
const consoleLines = [];
const cardRequests = [];
const deadline = setTimeout(() => {
  say('error', { message: 'gave up after 90 s', console: consoleLines });
  process.exit(1);
}, 90000);
const text = async (locator) => ((await locator.textContent()) ?? '').trim();
const CARDS = ['4242424242424242', '4000000000000002', '4000002760003184'];

async function until(read, ok, what, timeout = 20000) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await read();
    if (ok(last)) return last;
    if (Date.now() > end) throw new Error(`${what}: still ${JSON.stringify(last)} after ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function typeCard(page, card) {
  const frame = page.frameLocator('iframe[title="Secure payment input frame"]');
  await frame.getByLabel('Card number').fill(card);
  await page.getByRole('button', { name: 'Pay', exact: true }).click();
}

let page;
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const context = await browser.newContext();
  // Every request of the page and of its frames: which origins did a card number go to?
  context.on('request', (request) => {
    const seen = `${request.url()} ${request.postData() ?? ''}`.replace(/%20|\+|\s/g, '');
    if (CARDS.some((card) => seen.includes(card))) cardRequests.push(new URL(request.url()).origin);
  });
  page = await context.newPage();
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  await page.goto(`${config.url}/signin`);
  await page.getByLabel('Email').fill(config.email);
  await page.getByLabel('Password').fill(config.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => new URL(u).pathname === '/');

  await page.goto(`${config.url}/orders/${config.paid}`);
  await until(() => text(page.getByTestId('live')), (t) => t.startsWith('live'), 'live marker');
  await page.frameLocator('iframe[title="Secure payment input frame"]').getByLabel('Card number').waitFor();
  const scripts = await page.evaluate(() => [...document.scripts].map((s) => s.src).filter(Boolean));
  await typeCard(page, '4242 4242 4242 4242');
  const submitted = Date.now();
  await page.waitForURL((u) => new URL(u).searchParams.get('redirect_status') === 'succeeded');
  const back = new URL(page.url());
  // Stripe's webhook is held: the page says it waits, and offers no second card form meanwhile.
  await page.getByTestId('payment-confirming').waitFor();
  const waiting = {
    text: await text(page.getByTestId('payment-state')),
    forms: await page.locator('iframe[title="Secure payment input frame"]').count(),
    status: await text(page.getByTestId('order-status')),
  };
  const released = await (await fetch(`${config.stripe}/_test/release`, { method: 'POST' })).json();
  await until(() => text(page.getByTestId('order-status')), (t) => t === 'Paid', 'paid order status', 30000);
  await until(() => text(page.getByTestId('payment-state')), (t) => t.startsWith('Paid'), 'captured payment', 30000);
  say('paid', {
    waiting,
    released,
    path: back.pathname,
    intent: back.searchParams.get('payment_intent'),
    status: await text(page.getByTestId('order-status')),
    payment: await text(page.getByTestId('payment-state')),
    ms: Date.now() - submitted,
    scripts,
  });

  await page.goto(`${config.url}/orders/${config.declined}`);
  await until(() => text(page.getByTestId('live')), (t) => t.startsWith('live'), 'live marker');
  // What the element's form says may be replaced at once by the live decline: keep every alert shown.
  await page.evaluate(() => {
    window.__alerts = [];
    new MutationObserver(() => {
      for (const a of document.querySelectorAll('form [role="alert"]')) {
        const t = (a.textContent ?? '').trim();
        if (t && !window.__alerts.includes(t)) window.__alerts.push(t);
      }
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  await typeCard(page, '4000 0000 0000 0002');
  await page.waitForFunction(() => window.__alerts.length > 0); // the element's answer, then Stripe's event
  await fetch(`${config.stripe}/_test/release`, { method: 'POST' });
  await until(() => text(page.getByTestId('order-status')), (t) => t === 'Cancelled', 'declined order status', 30000);
  const alert = page.getByTestId('payment-state').getByRole('alert');
  await alert.waitFor();
  const elementSaid = await page.evaluate(() => window.__alerts);
  say('declined', { path: new URL(page.url()).pathname, elementSaid, status: await text(page.getByTestId('order-status')), alert: await text(alert) });

  await page.goto(`${config.url}/orders/${config.cancelled}`);
  await until(() => text(page.getByTestId('live')), (t) => t.startsWith('live'), 'live marker');
  await page.getByRole('button', { name: 'Cancel this order' }).click();
  await until(() => text(page.getByTestId('order-status')), (t) => t === 'Cancelled', 'cancelled order status', 30000);
  // The void follows the order event; no order event follows the void: the page reads it again.
  const voided = await until(
    () => text(page.getByTestId('payment-state')),
    (t) => t === 'The payment was cancelled; nothing was charged.',
    'voided payment',
    30000,
  );
  say('cancelled', { status: await text(page.getByTestId('order-status')), payment: voided });

  // The administrator refunds part of the paid order from the orders list; the shopper's page follows.
  await page.goto(`${config.url}/orders/${config.paid}`);
  await until(() => text(page.getByTestId('live')), (t) => t.startsWith('live'), 'live marker');
  const adminContext = await browser.newContext();
  const admin = await adminContext.newPage();
  admin.on('pageerror', (e) => consoleLines.push(`admin pageerror: ${e.message}`));
  await admin.goto(`${config.url}/signin`);
  await admin.getByLabel('Email').fill(config.admin.email);
  await admin.getByLabel('Password').fill(config.admin.password);
  await admin.getByRole('button', { name: 'Sign in' }).click();
  await admin.waitForURL((u) => new URL(u).pathname === '/');
  await admin.goto(`${config.url}/admin`);
  const row = admin.locator(`tr[data-order="${config.paid}"]`);
  const before = await text(row.getByTestId('payment-cell'));
  await row.getByLabel(`Refund amount for ${config.paid} (empty: all)`).fill('10.00');
  await row.getByRole('button', { name: 'Refund' }).click();
  const after = await until(() => text(row.getByTestId('payment-cell')), (t) => t.includes('refunded'), 'admin refund', 30000);
  const shopperSees = await until(
    () => text(page.getByTestId('payment-state')),
    (t) => t.includes('Refunded'),
    'refund on the order page',
    30000,
  );
  say('refunded', { before, after, shopperSees });

  await page.goto(`${config.url}/orders/${config.secure}`);
  await until(() => text(page.getByTestId('live')), (t) => t.startsWith('live'), 'live marker');
  await typeCard(page, '4000 0027 6000 3184');
  const bank = page.frameLocator('iframe[title="3D Secure authentication"]');
  const asked = await text(bank.getByRole('heading', { level: 1 }));
  await bank.getByRole('button', { name: 'Complete authentication' }).click();
  await page.waitForURL((u) => new URL(u).searchParams.get('redirect_status') === 'succeeded');
  await page.getByTestId('payment-confirming').waitFor();
  await fetch(`${config.stripe}/_test/release`, { method: 'POST' });
  await until(() => text(page.getByTestId('order-status')), (t) => t === 'Paid', 'paid after 3-D Secure', 30000);
  say('secure', { asked, status: await text(page.getByTestId('order-status')) });

  // 3-D Secure left half-way: the bank's frame is open when the shopper reloads the page.
  await page.goto(`${config.url}/orders/${config.resumed}`);
  await until(() => text(page.getByTestId('live')), (t) => t.startsWith('live'), 'live marker');
  await typeCard(page, '4000 0027 6000 3184');
  await page.frameLocator('iframe[title="3D Secure authentication"]').getByRole('button', { name: 'Complete authentication' }).waitFor();
  await fetch(`${config.stripe}/_test/release`, { method: 'POST' }); // Stripe: payment_intent.requires_action
  await page.reload();
  const again = page.getByRole('button', { name: 'Confirm with your bank' });
  await again.waitFor();
  const told = await text(page.getByTestId('payment-state').getByRole('alert').locator('p').first());
  await again.click();
  await page.frameLocator('iframe[title="3D Secure authentication"]').getByRole('button', { name: 'Complete authentication' }).click();
  await page.getByTestId('payment-confirming').waitFor();
  await fetch(`${config.stripe}/_test/release`, { method: 'POST' });
  await until(() => text(page.getByTestId('order-status')), (t) => t === 'Paid', 'paid after resuming 3-D Secure', 30000);
  say('resumed', { told, status: await text(page.getByTestId('order-status')) });
  say('done', { console: consoleLines, cardRequests });
} catch (e) {
  const shown = page ? await page.locator('body').innerText().catch(() => '') : '';
  say('error', { message: String(e && e.stack ? e.stack : e), url: page?.url(), shown: shown.slice(0, 800), console: consoleLines });
  process.exitCode = 1;
} finally {
  clearTimeout(deadline);
  await browser.close();
}
