// The account through the dashboard: sign up, the overview, redirects to
// and from login, the 404 page, changing the password, signing in with
// the new one, and the audit log (paged) showing what happened.

import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { startServer, stopAll, test } from '../api/lib/server.mjs';
import { Client, login, uniqueEmail, uniquePassword, expectOk, expectError } from '../api/lib/client.mjs';
import { launch, openPage, settled, screenshots } from './lib/browser.mjs';
import { signInThroughPage } from './lib/flows.mjs';

let srv;
let browser;
const email = uniqueEmail('e2e');
const password = uniquePassword();
const newPassword = uniquePassword();

before(async () => {
  srv = await startServer();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await stopAll();
});

test('a dashboard page without a session goes to login and back after signing up', async () => {
  const page = await openPage(browser.context);
  await page.goto(`${srv.url}/dashboard/devices`);
  await page.waitForURL((u) => u.pathname === '/login');
  assert.equal(new URL(page.url()).searchParams.get('redirect'), '/dashboard/devices');
  await settled(page);
  await screenshots(page, 'login');
  page.assertClean('/login');

  // sign-up tab: validation first
  await page.click('#tab-signup');
  assert.equal(await page.getAttribute('#tab-signup', 'aria-selected'), 'true');
  await page.fill('#email', 'not-an-email');
  await page.fill('#password', 'short');
  await page.click('#submit');
  assert.match(await page.textContent('#email-error'), /valid email/);
  assert.match(await page.textContent('#password-error'), /at least 8/);
  assert.equal(await page.getAttribute('#email', 'aria-invalid'), 'true');
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.fill('#confirm', `${password}x`);
  await page.click('#submit');
  assert.match(await page.textContent('#confirm-error'), /do not match/);
  await screenshots(page, 'login-signup-errors');
  await page.fill('#confirm', password);
  await Promise.all([page.waitForURL((u) => u.pathname === '/dashboard/devices'), page.click('#submit')]);
  await settled(page);
  assert.equal(await page.textContent('#user-email'), email);
  await page.waitForSelector('text=No devices yet');
  page.assertClean('/dashboard/devices after sign-up');
  await page.close();
});

test('the overview shows the five data types, the device count and recent activity', async () => {
  const page = await openPage(browser.context);
  page.expectHttpError(404, /^\/api\/sync\/key$/); // no key yet: the page says so
  await page.goto(`${srv.url}/`);
  await page.waitForURL((u) => u.pathname === '/dashboard');
  await settled(page);
  assert.equal(await page.locator('article.type-card').count(), 5);
  for (const t of ['history', 'environment', 'secret', 'collection', 'setting']) {
    assert.match(await page.textContent(`article[data-type="${t}"]`), /Syncing/);
  }
  assert.match(await page.textContent('#stat-devices'), /0/);
  assert.match(await page.textContent('#stat-key'), /Not set/);
  assert.match(await page.textContent('#recent-activity'), /Account created/);
  assert.equal(await page.getAttribute('a.nav-link[href="/dashboard"]', 'aria-current'), 'page');
  await screenshots(page, 'dashboard');
  await page.emulateMedia({ colorScheme: 'dark' });
  assert.equal(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(12, 12, 15)', 'dark theme');
  await screenshots(page, 'dashboard-dark');
  page.assertClean('/dashboard');
  await page.close();
});

test('keyboard and small screens: skip link, visible focus, the menu at 375 px', async () => {
  const page = await openPage(browser.context);
  page.expectHttpError(404, /^\/api\/sync\/key$/);
  await page.goto(`${srv.url}/dashboard/devices`);
  await settled(page);
  // the first Tab reaches the skip link, which shows itself and moves focus to the content
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.className), 'skip-link');
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, 'none', 'focus is visible');
  // every focusable control shows a focus outline
  const unfocusable = await page.evaluate(() => {
    const bad = [];
    for (const el of document.querySelectorAll('a[href], button, input')) {
      if (!el.offsetParent) continue;
      el.focus({ focusVisible: true });
      if (document.activeElement === el && getComputedStyle(el).outlineStyle === 'none') bad.push(el.outerHTML.slice(0, 80));
    }
    return bad;
  });
  assert.deepEqual(unfocusable, []);

  await page.setViewportSize({ width: 375, height: 760 });
  assert.equal(await page.isVisible('a.nav-link[href="/dashboard/sync"]'), false, 'the sidebar is folded away');
  await page.click('#menu-toggle');
  assert.equal(await page.getAttribute('#menu-toggle', 'aria-expanded'), 'true');
  await page.waitForSelector('a.nav-link[href="/dashboard/sync"]', { state: 'visible' });
  await page.keyboard.press('Escape');
  assert.equal(await page.getAttribute('#menu-toggle', 'aria-expanded'), 'false');
  await page.click('#menu-toggle');
  await Promise.all([page.waitForURL((u) => u.pathname === '/dashboard/sync'), page.click('a.nav-link[href="/dashboard/sync"]')]);
  await settled(page);
  assert.equal(await page.getAttribute('a.nav-link[href="/dashboard/sync"]', 'aria-current'), 'page');
  page.assertClean('keyboard and menu');
  await page.close();
});

test('signed in, /login goes to the dashboard; an unknown page is the 404 page', async () => {
  const page = await openPage(browser.context);
  page.expectHttpError(404, /^\/no-such-page$/);
  page.expectHttpError(404, /^\/api\/sync\/key$/); // the dashboard, passed through
  await page.goto(`${srv.url}/login`);
  await page.waitForURL((u) => u.pathname === '/dashboard');
  const res = await page.goto(`${srv.url}/no-such-page`);
  assert.equal(res.status(), 404);
  assert.match(await page.textContent('h1'), /Page not found/);
  await screenshots(page, 'not-found');
  page.assertClean('404 page');
  await page.close();
});

test('the login page refuses open redirects', async () => {
  const page = await openPage(browser.context);
  page.expectHttpError(404, /^\/api\/sync\/key$/);
  for (const bad of ['//evil.example/x', 'https://evil.example/', '/\\evil.example', 'javascript:alert(1)', '/login']) {
    await page.context().clearCookies();
    await page.goto(`${srv.url}/login?redirect=${encodeURIComponent(bad)}`);
    await signInThroughPage(page, email, password);
    assert.equal(new URL(page.url()).origin, srv.url, `redirect=${bad} left the site`);
    assert.equal(new URL(page.url()).pathname, '/dashboard', `redirect=${bad}`);
  }
  page.assertClean('login redirects');
  await page.close();
});

test('a wrong password is a clear error; changing the password works and the new one signs in', async () => {
  const page = await openPage(browser.context);
  page.expectHttpError(401, /^\/api\/auth\/(login|password)$/);
  page.expectHttpError(404, /^\/api\/sync\/key$/);
  await page.context().clearCookies();
  await page.goto(`${srv.url}/login`);
  await page.waitForSelector('#auth-form');
  await page.fill('#email', email);
  await page.fill('#password', 'wrong-password-123');
  await page.click('#submit');
  await page.waitForSelector('#form-alert:not(.hidden)');
  assert.match(await page.textContent('#form-alert'), /email or password is not right/);

  await page.fill('#password', password);
  await Promise.all([page.waitForURL((u) => u.pathname === '/dashboard'), page.click('#submit')]);
  await page.goto(`${srv.url}/dashboard/security`);
  await settled(page);
  assert.match(await page.textContent('#key-version'), /No key yet/);
  await screenshots(page, 'security');

  await page.fill('#current-password', 'not-my-password');
  await page.fill('#new-password', newPassword);
  await page.fill('#confirm-password', newPassword);
  await page.click('#password-submit');
  await page.waitForFunction(() => document.querySelector('#current-password-error')?.textContent !== '');
  assert.match(await page.textContent('#current-password-error'), /not right/);
  expectOk(await new Client(srv, { jar: false }).post('/api/auth/login', { email, password }));

  await page.fill('#current-password', password);
  await page.click('#password-submit');
  await page.waitForSelector('.toast[data-kind="success"]');
  assert.match(await page.textContent('.toast[data-kind="success"]'), /Password changed/);
  expectError(await new Client(srv, { jar: false }).post('/api/auth/login', { email, password }), 401, 'invalid_credentials');

  // sign out, then in with the new password
  await Promise.all([page.waitForURL((u) => u.pathname === '/login'), page.click('#sign-out')]);
  await page.goto(`${srv.url}/login?redirect=${encodeURIComponent('/dashboard/security')}`);
  await signInThroughPage(page, email, newPassword);
  assert.equal(new URL(page.url()).pathname, '/dashboard/security');
  const log = await page.textContent('#audit-table');
  for (const label of ['Password changed', 'Signed out', 'Signed in', 'Failed sign-in attempt', 'Account created']) {
    assert.ok(log.includes(label), `audit log shows "${label}"`);
  }
  page.assertClean('security page');
  await page.close();
});

test('the audit log pages back with "Show older events"', async () => {
  // 25 more events: sign-ins through the API
  for (let i = 0; i < 25; i++) await login(srv, email, newPassword);
  const page = await openPage(browser.context);
  page.expectHttpError(404, /^\/api\/sync\/key$/);
  await page.goto(`${srv.url}/dashboard/security`);
  await settled(page);
  const first = await page.locator('#audit-table tbody tr').count();
  assert.equal(first, 20);
  await page.click('#audit-more');
  await page.waitForFunction(() => document.querySelectorAll('#audit-table tbody tr').length > 20);
  const all = await page.locator('#audit-table tbody tr').count();
  assert.ok(all > 20, `older events appended (${all})`);
  const ids = await page.$$eval('#audit-table tbody tr', (rows) => rows.map((r) => r.textContent));
  assert.match(ids[ids.length - 1], /Account created/, 'the oldest event is the sign-up');
  page.assertClean('audit paging');
  await page.close();
});

test('the checks above would notice: an inline script is a CSP violation and a console error', async () => {
  const page = await openPage(browser.context);
  await page.goto(`${srv.url}/sync/complete`);
  await page.waitForLoadState('load');
  await page.evaluate(() => {
    window.seenViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.seenViolations.push(e.violatedDirective));
    const s = document.createElement('script');
    s.textContent = 'window.inlineRan = true;';
    document.body.appendChild(s);
    document.body.setAttribute('style', 'color: red');
  });
  // both events have fired (the harness's listener runs before this one)
  await page.waitForFunction(() => window.seenViolations.length >= 2);
  assert.equal(await page.evaluate(() => window.inlineRan === true), false, 'the inline script did not run');
  const seen = page.problems.splice(0);
  assert.ok(seen.some((p) => /CSP violation: script-src/.test(p)), `script violation reported: ${seen}`);
  assert.ok(seen.some((p) => /CSP violation: style-src/.test(p)), `style violation reported: ${seen}`);
  await page.close();
});
