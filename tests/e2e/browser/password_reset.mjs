// The forgotten-password pages in headless Chromium (Debian's, driven by playwright-core).
//
//   node password_reset.mjs CONFIG_JSON
//
// mode "request": {"url", "email"}: sign-in page → "Forgot your password?" → the email → "Check your mail".
// mode "reset":   {"url", "link", "email", "password"}: a bogus token is refused on the page; two
//                 different passwords are refused before sending; then the mailed link's page sets
//                 the new password, and signing in with it works.
// One line per step on stdout: `<step> <json>` (what the page showed); `error <json>` and exit 1.
import { chromium } from 'playwright-core';

const config = JSON.parse(process.argv[2]);
const say = (word, data) => process.stdout.write(`${word} ${JSON.stringify(data ?? {})}\n`);
const consoleLines = [];
const deadline = setTimeout(() => {
  say('error', { message: 'gave up after 60 s', console: consoleLines });
  process.exit(1);
}, 60000);
const text = async (locator) => ((await locator.textContent()) ?? '').trim();

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  if (config.mode === 'request') {
    await page.goto(`${config.url}/signin`);
    await page.getByRole('link', { name: 'Forgot your password?' }).click();
    await page.getByLabel('Email').fill(config.email);
    await page.getByRole('button', { name: 'Mail me a link' }).click();
    const status = page.getByRole('status');
    await status.waitFor();
    say('requested', { heading: await text(page.getByRole('heading', { level: 1 })), status: await text(status), path: new URL(page.url()).pathname });
  } else {
    await page.goto(`${config.url}/reset-password?token=not-a-real-token`);
    await page.getByLabel('New password', { exact: true }).fill('a good long passphrase');
    await page.getByLabel('New password again').fill('a good long passphrase');
    await page.getByRole('button', { name: 'Set new password' }).click();
    const refused = page.locator('#reset-error');
    await page.waitForFunction(() => (document.querySelector('#reset-error')?.textContent ?? '').trim().length > 0);
    say('bogus', { error: await text(refused), offers: await page.getByRole('link', { name: 'Ask for a new link' }).count() });

    await page.goto(config.link);
    await page.getByLabel('New password', { exact: true }).fill(config.password);
    await page.getByLabel('New password again').fill(config.password + ' typo');
    await page.getByRole('button', { name: 'Set new password' }).click();
    await page.waitForFunction(() => (document.querySelector('#reset-confirm-error')?.textContent ?? '').trim().length > 0);
    say('mismatch', { error: await text(page.locator('#reset-confirm-error')) });

    await page.getByLabel('New password again').fill(config.password);
    await page.getByRole('button', { name: 'Set new password' }).click();
    const done = page.getByRole('status');
    await done.waitFor();
    say('changed', { heading: await text(page.getByRole('heading', { level: 1 })), status: await text(done) });

    await page.getByRole('link', { name: 'Sign in' }).last().click();
    await page.getByLabel('Email').fill(config.email);
    await page.getByLabel('Password').fill(config.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => new URL(u).pathname === '/');
    // Signed in: the header names the account (the tokens are in memory and an HttpOnly cookie).
    const signedIn = await page.getByTestId('account-name').waitFor().then(() => true, () => false);
    say('signed-in', { path: new URL(page.url()).pathname, hasSession: signedIn });
  }
  say('done', {});
} catch (e) {
  say('error', { message: String(e && e.stack ? e.stack : e), console: consoleLines });
  process.exitCode = 1;
} finally {
  clearTimeout(deadline);
  await browser.close();
}
