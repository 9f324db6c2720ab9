// Opens the router's GraphiQL in headless Chromium, runs QUERY as a person would, opens the
// "Query plan" panel and reads it: the plan's text and the waterfall of subgraph fetches.
//
//   node graphiql_plan.mjs URL QUERY SCREENSHOT
//
// Prints one line: `done <json>` ({"plan", "summary", "fetches": [{service, width}], "console",
// "offsite"}) or `error <json>`; the screenshot shows GraphiQL with the panel open.
import { chromium } from 'playwright-core';

const [url, query, screenshot] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const say = (word, data) => process.stdout.write(`${word} ${JSON.stringify(data)}\n`);
const consoleLines = [];
const offsite = [];
let browser;
let page;
const deadline = setTimeout(() => {
  say('error', { message: 'gave up after 60 s', console: consoleLines, offsite });
  process.exit(1);
}, 60000);

try {
  browser = await chromium.launch({
    executablePath,
    headless: true,
    timeout: 15000,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  const context = await browser.newContext({ viewport: { width: 1500, height: 850 } });
  context.setDefaultTimeout(15000);
  page = await context.newPage();
  const origin = new URL(url).origin;
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(origin) && !u.startsWith('data:')) offsite.push(u);
  });
  await page.goto(url, { waitUntil: 'load' });
  await page.locator('.graphiql-query-editor .CodeMirror').waitFor({ state: 'visible' });
  await page.locator('.graphiql-query-editor .CodeMirror').first().click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(query);
  await page.getByRole('button', { name: /prettify/i }).click();
  await page.locator('button.graphiql-execute-button').click();
  await page.locator('.result-window .CodeMirror-code:has-text("data")').first().waitFor();
  await page.getByRole('button', { name: 'Show Query plan' }).click();
  await page.locator('.sg-plan .sg-fetch').first().waitFor();
  const read = await page.evaluate(() => ({
    plan: document.querySelector('.sg-plan-text')?.textContent || '',
    summary: document.querySelector('.sg-summary')?.textContent || '',
    fetches: [...document.querySelectorAll('.sg-fetch')].map((row) => ({
      service: row.dataset.service,
      text: row.textContent,
      width: row.querySelector('span > span')?.style.width || '',
    })),
  }));
  await page.screenshot({ path: screenshot });
  say('done', { ...read, console: consoleLines, offsite });
} catch (e) {
  if (page) await page.screenshot({ path: screenshot }).catch(() => {});
  say('error', { message: String(e && e.stack ? e.stack : e), console: consoleLines, offsite });
  process.exitCode = 1;
} finally {
  clearTimeout(deadline);
  if (browser) await browser.close().catch(() => {});
}
