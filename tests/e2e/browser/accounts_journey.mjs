// The account pages and where the session lives, in headless Chromium (Debian's, playwright-core):
//
//   node accounts_journey.mjs CONFIG_JSON      CONFIG_JSON: {"url", "email", "password", "newPassword", "address"}
//
// A shopper signs up (tab "here"): no token is readable by the page (localStorage, sessionStorage,
// document.cookie), the refresh token is an HttpOnly/Secure/SameSite=Strict cookie, a reload stays
// signed in; addresses are added, edited, made default and removed; the password is changed (the
// wrong current one refused first). A second browser ("there") signs in with the new password;
// A second tab here signs in from the shared cookie. "Sign out everywhere" then signs out all: the
// other tab at once, and there a reload of the account page asks to sign in.
// One line per step on stdout: `<step> <json>`; `error <json>` and exit 1.
import { chromium } from 'playwright-core';

const config = JSON.parse(process.argv[2]);
const say = (word, data) => process.stdout.write(`${word} ${JSON.stringify(data ?? {})}\n`);
const consoleLines = [];
const deadline = setTimeout(() => {
  say('error', { message: 'gave up after 120 s', console: consoleLines });
  process.exit(1);
}, 120000);
const text = async (locator) => ((await locator.textContent()) ?? '').trim();
const base = config.url;

async function newPage(browser, who) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('console', (m) => m.type() === 'error' && consoleLines.push(`${who} console: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`${who} pageerror: ${e.message}`));
  return { context, page };
}

/** Everything a script on the page can read where tokens could be kept. */
const readable = (page) =>
  page.evaluate(() => ({
    storage: [window.localStorage, window.sessionStorage].flatMap((s) => Object.keys(s).map((k) => `${k}=${s.getItem(k)}`)),
    cookie: document.cookie,
  }));

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const here = await newPage(browser, 'here');
  const page = here.page;
  // The access token the graph answered with (the test reads it off the wire; the page keeps it in memory).
  const accessTokens = [];
  page.on('response', async (r) => {
    if (!r.url().endsWith('/graphql') || r.request().method() !== 'POST') return;
    const body = await r.json().catch(() => null);
    for (const value of Object.values(body?.data ?? {})) if (value?.accessToken) accessTokens.push(value.accessToken);
  });

  await page.goto(`${base}/signup`);
  await page.getByLabel('Name').fill('Ada Account');
  await page.getByLabel('Email').fill(config.email);
  await page.getByLabel('Password').fill(config.password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByTestId('account-name').waitFor();
  const cookies = await here.context.cookies();
  const session = cookies.find((c) => c.name === 'shopgraph_refresh');
  const seen = await readable(page);
  say('signed-up', {
    name: await text(page.getByTestId('account-name')),
    cookie: session ? { httpOnly: session.httpOnly, secure: session.secure, sameSite: session.sameSite, path: session.path } : null,
    // No token anywhere a script could read it: neither the access token nor the cookie's value.
    tokenReadable: seen.storage.concat(seen.cookie).some((v) => accessTokens.some((t) => v.includes(t)) || (session && v.includes(session.value))),
    storage: seen.storage,
    documentCookie: seen.cookie,
    accessTokens: accessTokens.length,
  });

  // A reload: the page starts with no token and signs in again with the cookie.
  await page.goto(`${base}/account`);
  await page.getByRole('heading', { name: 'Your account' }).waitFor();
  say('reloaded', { path: new URL(page.url()).pathname, name: await text(page.getByTestId('account-name')) });

  // Addresses: add two, edit the first, make the second the default, remove the first.
  const add = async (a) => {
    const form = page.getByRole('form', { name: 'Add an address' });
    await form.getByLabel('Name').fill(a.name);
    await form.getByLabel('Address line 1').fill(a.line1);
    await form.getByLabel('City').fill(a.city);
    await form.getByLabel('Postal code').fill(a.postalCode);
    await form.getByLabel('Country (2 letters)').fill(a.country);
    await form.getByRole('button', { name: 'Add address' }).click();
  };
  const saved = page.getByTestId('saved-address');
  await add(config.address);
  await saved.first().waitFor();
  await add({ ...config.address, line1: '22 Second Street' });
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="saved-address"]').length === 2);
  await page.getByRole('button', { name: `Edit the address ${config.address.line1}` }).click();
  const edit = page.getByRole('form', { name: `Edit the address ${config.address.line1}` });
  await edit.getByLabel('City').fill('York');
  await edit.getByRole('button', { name: 'Save address' }).click();
  await saved.filter({ hasText: 'York' }).waitFor();
  await page.getByRole('button', { name: 'Make default the address 22 Second Street' }).click();
  await saved.filter({ hasText: '22 Second Street' }).getByText('Default').waitFor();
  const edited = await saved.allTextContents();
  await page.getByRole('button', { name: `Remove the address ${config.address.line1}` }).click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="saved-address"]').length === 1);
  say('addresses', { edited: edited.map((t) => t.replace(/\s+/g, ' ').trim()), left: (await saved.allTextContents()).map((t) => t.replace(/\s+/g, ' ').trim()) });

  // Change the password: the wrong current one is refused, then the change keeps this session.
  const password = page.getByRole('form', { name: 'Password' });
  await password.getByLabel('Current password').fill('not my password at all');
  await password.getByLabel('New password', { exact: true }).fill(config.newPassword);
  await password.getByLabel('New password again').fill(config.newPassword);
  await password.getByRole('button', { name: 'Change password' }).click();
  await page.waitForFunction(() => (document.querySelector('#password-current-error')?.textContent ?? '').trim().length > 0);
  const refused = await text(page.locator('#password-current-error'));
  await password.getByLabel('Current password').fill(config.password);
  await password.getByRole('button', { name: 'Change password' }).click();
  const changed = await text(page.getByTestId('password-changed'));
  await page.reload();
  await page.getByRole('heading', { name: 'Your account' }).waitFor();
  say('password', { refused, changed, stillSignedIn: await text(page.getByTestId('account-name')) });

  // Another browser signs in with the new password.
  const there = await newPage(browser, 'there');
  await there.page.goto(`${base}/signin?next=/account`);
  await there.page.getByLabel('Email').fill(config.email);
  await there.page.getByLabel('Password').fill(config.newPassword);
  await there.page.getByRole('button', { name: 'Sign in' }).click();
  await there.page.getByRole('heading', { name: 'Your account' }).waitFor();

  // A second tab of this browser, signed in from the shared cookie (the tabs take turns refreshing).
  const tab = await here.context.newPage();
  await tab.goto(`${base}/orders`);
  await tab.getByTestId('account-name').waitFor();

  // Sign out everywhere, here: both browsers are signed out, and the other tab follows at once.
  await page.getByRole('button', { name: 'Sign out everywhere' }).click();
  await page.waitForURL((u) => new URL(u).pathname === '/signin');
  const notice = await text(page.getByRole('status').filter({ hasText: 'every device' }));
  const left = (await here.context.cookies()).filter((c) => c.name === 'shopgraph_refresh').length;
  await tab.getByTestId('account-name').waitFor({ state: 'detached' });
  const otherTab = await tab.getByRole('navigation', { name: 'Account' }).getByRole('link', { name: 'Sign in' }).count();
  await there.page.reload();
  await there.page.waitForURL((u) => new URL(u).pathname === '/signin');
  say('everywhere', {
    notice,
    cookiesLeftHere: left,
    otherTabSignIn: otherTab,
    therePath: new URL(there.page.url()).pathname,
    thereSignInLink: await there.page.getByRole('link', { name: 'Sign in' }).count(),
  });
  say('done', { console: consoleLines });
} catch (e) {
  say('error', { message: String(e && e.stack ? e.stack : e), console: consoleLines });
  process.exitCode = 1;
} finally {
  clearTimeout(deadline);
  await browser.close();
}
