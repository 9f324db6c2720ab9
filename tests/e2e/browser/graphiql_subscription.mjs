// Opens the router's GraphiQL in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core), types the request headers and a subscription into it as a person would, runs
// it, and waits until the result pane shows `expected`.
//
//   node graphiql_subscription.mjs URL HEADERS_JSON QUERY EXPECTED SCREENSHOT [TIMEOUT_MS]
//
// Prints one line per step on stdout, which the pytest side reads:
//   running              the subscription is running in GraphiQL (the run button became "stop")
//   seen <json>          the result pane contains EXPECTED; <json> is {"text": <the pane's text>,
//                        "at": <when it was seen, Unix seconds>}
//   done <json>          the screenshot is taken; {"console", "offsite"}: the page's console lines
//                        and every request that left the router's origin
//   error <json>         something failed; {"message", "console", "offsite"} for diagnosis
// and exits 0 after "seen" (screenshot taken), 1 after "error" (screenshot taken if possible).
import { chromium } from 'playwright-core';

const [url, headers, query, expected, screenshot, timeoutArg] = process.argv.slice(2);
const timeout = Number(timeoutArg || 15000);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const say = (word, data) => process.stdout.write(data === undefined ? `${word}\n` : `${word} ${JSON.stringify(data)}\n`);

const consoleLines = [];
const offsite = []; // requests that left the router's origin (there is no internet here)
let browser;
let page;
const deadline = setTimeout(() => {
  say('error', { message: `gave up after ${timeout + 20000} ms`, console: consoleLines, offsite });
  process.exit(1);
}, timeout + 20000);

// The text of the CodeMirror editor inside `selector` (GraphiQL 3's editors are CodeMirror 5).
const editorText = (selector) =>
  page.evaluate((sel) => {
    const cm = document.querySelector(`${sel} .CodeMirror`);
    return cm && cm.CodeMirror ? cm.CodeMirror.getValue() : null;
  }, selector);

// Replace an editor's text by typing into it: focus it, select all, insert the text.
async function typeInto(selector, text) {
  await page.locator(`${selector} .CodeMirror`).first().click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
  const got = await editorText(selector);
  if (got !== text) throw new Error(`could not type into ${selector}: it holds ${JSON.stringify(got)}`);
}

try {
  browser = await chromium.launch({
    executablePath,
    headless: true,
    timeout: 15000,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 800 } });
  context.setDefaultTimeout(10000);
  page = await context.newPage();
  const origin = new URL(url).origin;
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  page.on('response', (r) => r.status() >= 400 && consoleLines.push(`HTTP ${r.status()}: ${r.url()}`));
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(origin) && !u.startsWith(origin.replace(/^http/, 'ws')) && !u.startsWith('data:')) offsite.push(u);
  });

  await page.goto(url, { waitUntil: 'load', timeout: 15000 });
  await page.locator('.graphiql-query-editor .CodeMirror').waitFor({ state: 'visible' });

  await page.getByRole('button', { name: 'Headers', exact: true }).click();
  await typeInto('.graphiql-editor-tool .graphiql-editor:not(.hidden)', headers);
  await typeInto('.graphiql-query-editor', query);
  await page.getByRole('button', { name: /prettify/i }).click();
  // GraphiQL parses the editor's text after a short debounce and picks the transport (WebSocket
  // for a subscription) from that parse: wait for it, as a person's pause before running does.
  await page.waitForFunction(() => {
    const cm = document.querySelector('.graphiql-query-editor .CodeMirror')?.CodeMirror;
    const ops = cm?.documentAST?.definitions || [];
    return ops.some((d) => d.kind === 'OperationDefinition' && d.operation === 'subscription');
  });

  await page.locator('button.graphiql-execute-button').click();
  // While a subscription runs, GraphiQL turns the run button into a stop button; when it is
  // refused instead, the result pane shows why.
  const stop = page.getByRole('button', { name: /stop/i });
  await stop.or(page.locator('.result-window .CodeMirror-code:has-text("errors")')).first().waitFor();
  if (!(await stop.isVisible())) throw new Error(`GraphiQL did not run it: ${await editorText('.result-window')}`);
  say('running');

  const until = Date.now() + timeout;
  let text = '';
  for (;;) {
    text = (await editorText('.result-window')) || '';
    if (text.includes(expected)) break;
    if (Date.now() > until) throw new Error(`the result pane never showed ${JSON.stringify(expected)}: ${text}`);
    await page.waitForTimeout(25);
  }
  say('seen', { text, at: Date.now() / 1000 });
  await page.screenshot({ path: screenshot });
  say('done', { console: consoleLines, offsite });
} catch (e) {
  if (page) await page.screenshot({ path: screenshot }).catch(() => {});
  say('error', { message: String(e && e.stack ? e.stack : e), console: consoleLines, offsite });
  process.exitCode = 1;
} finally {
  clearTimeout(deadline);
  if (browser) await browser.close().catch(() => {});
}
