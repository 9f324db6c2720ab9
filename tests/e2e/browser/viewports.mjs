// Every page of the storefront and the admin area at phone, tablet and desktop widths, in headless
// Chromium (Debian's /usr/bin/chromium, driven by playwright-core), against the real stack:
//
//   node viewports.mjs CONFIG_JSON
//
// CONFIG_JSON: {"url", "widths": [360, ...], "shopper": {"email", "password"}, "admin": {...},
//               "pages": {"anonymous": [{"path", "ready": CSS selector of its content}, ...],
//                         "shopper": [...], "admin": [...]},
//               "category": path of a category page,
//               "shots": {width: {"category", "drawer", "<who> <path>": file of a page's screenshot}}}
//
// Each page is opened at each width once its content is on screen (its heading, no loading
// notice left), and measured: the document's scrollWidth against the viewport's width (no page
// may scroll sideways). A category page is also measured for its first screen (how many product
// cards, in how many columns) and its filters (a drawer on phones). One `<step> <json>` line per
// step on stdout; `error <json>` and exit 1 on failure.
import { chromium } from 'playwright-core';

const config = JSON.parse(process.argv[2]);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const say = (word, data) => process.stdout.write(`${word} ${JSON.stringify(data ?? {})}\n`);
const consoleLines = [];
let browser;
const deadline = setTimeout(() => {
  say('error', { message: 'gave up after 270 s', console: consoleLines });
  process.exit(1);
}, 270000);

async function newPage(context, who) {
  const page = await context.newPage();
  page.on('console', (m) => m.type() === 'error' && consoleLines.push(`${who} ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`${who} pageerror: ${e.message}`));
  return page;
}

async function signIn(page, base, account) {
  await page.goto(`${base}/signin`);
  await page.getByLabel('Email').fill(account.email);
  await page.getByLabel('Password').fill(account.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('account-name').waitFor();
}

/** Open `path` inside the running app (React Router follows history), then wait for its content:
 * a fresh element matching `ready` (those of the page before are marked stale first). */
async function open(page, { path, ready }) {
  await page.evaluate(
    ([to, selector]) => {
      for (const el of document.querySelectorAll(selector)) el.setAttribute('data-stale', '');
      window.history.pushState({}, '', to);
      window.dispatchEvent(new PopStateEvent('popstate'));
    },
    [path, ready],
  );
  try {
    await page.locator(`${ready}:not([data-stale])`).first().waitFor();
  } catch (error) {
    const main = await page.locator('main').innerText().catch(() => '');
    throw new Error(`${path} at ${page.viewportSize().width} px: ${error.message.split('\n')[0]}; the page said: ${main.slice(0, 300)}`);
  }
  // Content, not a loading notice: every page says "…" while it waits for the graph.
  await page.waitForFunction(() => !document.querySelector('main .loading'), null, { timeout: 15000 });
  // Charts and grids lay out after their data: two frames.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

const measure = (page) =>
  page.evaluate(() => {
    const root = document.documentElement;
    // The widest element, to name the culprit when a page is too wide.
    let widest = null;
    for (const el of document.querySelectorAll('body *')) {
      const right = el.getBoundingClientRect().right;
      if (right > window.innerWidth + 0.5 && (!widest || right > widest.right)) {
        widest = { right: Math.round(right), tag: el.tagName.toLowerCase(), cls: String(el.className?.baseVal ?? el.className ?? ''), text: (el.textContent ?? '').trim().slice(0, 40) };
      }
    }
    return { scrollWidth: root.scrollWidth, innerWidth: window.innerWidth, widest };
  });

try {
  browser = await chromium.launch({
    executablePath,
    headless: true,
    timeout: 15000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const base = config.url.replace(/\/$/, '');
  const options = { viewport: { width: 1280, height: 800 }, locale: 'en-US', timezoneId: 'UTC' };
  const pages = {};
  for (const who of ['anonymous', 'shopper', 'admin']) {
    const context = await browser.newContext(options);
    context.setDefaultTimeout(15000);
    const page = await newPage(context, who);
    if (who === 'anonymous') await page.goto(`${base}/signin`); // not a page it opens first
    else await signIn(page, base, config[who]);
    pages[who] = page;
  }

  for (const width of config.widths) {
    const widths = {};
    for (const [who, page] of Object.entries(pages)) {
      await page.setViewportSize({ width, height: 800 });
      for (const target of config.pages[who]) {
        await open(page, target);
        widths[`${who} ${target.path}`] = await measure(page);
        const shot = config.shots[width]?.[`${who} ${target.path}`];
        if (shot) await page.screenshot({ path: shot, fullPage: true });
      }
    }
    say(`width-${width}`, widths);

    // The category page's first screen, and its filters.
    const page = pages.anonymous;
    await open(page, { path: config.category, ready: '[data-testid=product-card]' });
    const category = await page.evaluate(() => {
      const cards = [...document.querySelectorAll('[data-testid=product-card]')].map((c) => c.getBoundingClientRect());
      const filters = document.getElementById('filters');
      return {
        cardsOnFirstScreen: cards.filter((r) => r.top < window.innerHeight && r.bottom > 0).length,
        columns: new Set(cards.slice(0, 8).map((r) => Math.round(r.left))).size,
        filtersShown: filters !== null && getComputedStyle(filters).display !== 'none',
      };
    });
    const toggle = page.getByTestId('filters-toggle');
    if (await toggle.isVisible()) {
      await toggle.click();
      await page.getByRole('button', { name: 'Show products' }).waitFor();
      category.drawer = {
        opened: await page.locator('#filters').isVisible(),
        expanded: await toggle.getAttribute('aria-expanded'),
        sortInside: await page.locator('#filters').getByLabel('Sort by').isVisible(),
        ...(await measure(page)),
      };
      if (config.shots[width]) await page.screenshot({ path: config.shots[width].drawer });
      await page.getByRole('button', { name: 'Show products' }).click();
      category.drawer.closed = !(await page.locator('#filters').isVisible());
    }
    if (config.shots[width]) await page.screenshot({ path: config.shots[width].category });
    say(`category-${width}`, category);
  }
  say('done', { console: consoleLines });
  clearTimeout(deadline);
  await browser.close();
} catch (error) {
  say('error', { message: String(error?.stack ?? error), console: consoleLines });
  await browser?.close().catch(() => undefined);
  process.exit(1);
}
