// Turnstile on sign-up: with a site key, the login page loads the widget
// script from TURNSTILE_SCRIPT_URL (here a local fake of Cloudflare's,
// tests/api/lib/turnstile.mjs, whose siteverify the server calls), its
// CSP allows exactly that origin, and sign-up needs the widget's token.

import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { startServer, stopAll, test } from '../api/lib/server.mjs';
import { Client, uniqueEmail, uniquePassword, rand, expectOk } from '../api/lib/client.mjs';
import { startFakeTurnstile } from '../api/lib/turnstile.mjs';
import { launch, openPage, settled, screenshots } from './lib/browser.mjs';

const SECRET = `ts-secret-${rand(12)}`;
const SITE_KEY = `ts-site-${rand(6)}`;
const GOOD = `good-token-${rand(8)}`;
let fake;
let srv;
let browser;

before(async () => {
  fake = await startFakeTurnstile({ secret: SECRET, goodToken: GOOD });
  srv = await startServer({
    env: {
      TURNSTILE_SITE_KEY: SITE_KEY, TURNSTILE_SECRET_KEY: SECRET,
      TURNSTILE_VERIFY_URL: fake.url, TURNSTILE_SCRIPT_URL: fake.scriptUrl,
    },
  });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await stopAll();
  await fake?.close();
});

test('the login page allows the widget origin in its CSP, and only on that page', async () => {
  const anon = new Client(srv, { jar: false });
  const login = await anon.get('/login', { expectNonJson: true });
  const csp = login.headers.get('content-security-policy');
  assert.match(csp, new RegExp(`script-src 'self' ${fake.origin.replace(/[.]/g, '\\.')};`));
  assert.match(csp, new RegExp(`frame-src ${fake.origin.replace(/[.]/g, '\\.')};`));
  const other = await anon.get('/sync/complete', { expectNonJson: true });
  assert.ok(!other.headers.get('content-security-policy').includes(fake.origin), 'other pages do not allow it');
  const info = expectOk(await anon.get('/api/info'));
  assert.equal(info.turnstile_site_key, SITE_KEY);
  assert.equal(info.turnstile_script_url, fake.scriptUrl);
});

test('sign-up shows the widget, needs its token, and a failed check can be retried', async () => {
  const page = await openPage(browser.context);
  page.expectHttpError(403, /^\/api\/auth\/signup$/);
  page.expectHttpError(404, /^\/api\/sync\/key$/); // the new account's dashboard: no key yet
  await page.goto(`${srv.url}/login`);
  await settled(page);
  assert.equal(fake.scriptCalls.length, 0, 'no widget script on the sign-in tab');
  await page.click('#tab-signup');
  await page.waitForSelector('.fake-turnstile');
  assert.equal(await page.getAttribute('.fake-turnstile', 'data-sitekey'), SITE_KEY);
  assert.equal(fake.scriptCalls.length, 1);

  const email = uniqueEmail('ts-e2e');
  const password = uniquePassword();
  srv.addSecret(password);
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.fill('#confirm', password);
  const verifies = fake.calls.length;
  await page.click('#submit');
  assert.match(await page.textContent('#turnstile-error'), /Complete the human check/);
  assert.equal(fake.calls.length, verifies, 'no siteverify without a token');

  await page.click('.fake-turnstile >> text=Fail check');
  await page.click('#submit');
  await page.waitForFunction(() => /failed/.test(document.querySelector('#turnstile-error')?.textContent || ''));
  assert.equal(fake.calls.length, verifies + 1);
  assert.equal(fake.calls.at(-1).response, 'bad-token-from-widget');
  assert.ok(await page.getAttribute('.fake-turnstile', 'data-reset'), 'the widget was reset');
  await screenshots(page, 'login-turnstile');

  await page.click('.fake-turnstile >> text=Verify');
  await Promise.all([page.waitForURL((u) => u.pathname === '/dashboard'), page.click('#submit')]);
  assert.equal(fake.calls.at(-1).response, GOOD);
  await settled(page);
  assert.equal(await page.textContent('#user-email'), email);
  page.assertClean('sign-up with Turnstile');
  await page.close();
});
