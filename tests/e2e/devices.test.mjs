// Devices through the dashboard: the whole device authorization (a client
// starts it with fetch, the browser opens its url, signs in, checks the
// code and authorizes; the client's poll then yields a session token),
// deny, unknown and typed-in codes, the overview with synced data, sync
// toggles that the API then enforces, and revoking with a confirmation.

import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { startServer, stopAll, test, sql, SLOW } from '../api/lib/server.mjs';
import { Client, signup, initDevice, b64, randomBytes, expectOk, expectError, SESSION_TOKEN_RE } from '../api/lib/client.mjs';
import { launch, openPage, settled, screenshots } from './lib/browser.mjs';
import { signInThroughPage, pollToken } from './lib/flows.mjs';

let srv;
let browser;
let web;          // the account, through the API
let device;       // a Client with the bearer token the browser approved
const NAME = 'Work laptop';

before(async () => {
  srv = await startServer();
  browser = await launch();
  web = await signup(srv);
});
after(async () => {
  await browser?.close();
  await stopAll();
});

test('device authorization through the pages: login, the right code, authorize, token', async () => {
  const { anon, data: init } = await initDevice(srv, { device_name: NAME, platform: 'linux', app_version: '2.4.1' });
  expectError(await anon.post('/api/sync/token', { temp_token: init.temp_token }), 400, 'authorization_pending');
  assert.ok(!init.url.includes(init.temp_token), 'the url holds no secret');

  const page = await openPage(browser.context);
  await page.goto(init.url);
  await page.waitForURL((u) => u.pathname === '/login');
  assert.equal(new URL(page.url()).searchParams.get('redirect'), `/sync/authorize?code=${init.user_code}`);
  await signInThroughPage(page, web.email, web.password);
  assert.equal(new URL(page.url()).pathname, '/sync/authorize');
  assert.equal(await page.textContent('#user-code'), init.user_code);
  assert.equal(await page.textContent('#device-name'), NAME);
  const facts = await page.textContent('#request-facts');
  for (const s of ['linux', '2.4.1', '127.0.0.1']) assert.ok(facts.includes(s), `the request shows ${s}: ${facts}`);
  assert.match(await page.textContent('.alert-warn'), /Only approve a device that is in front of you/);
  await screenshots(page, 'authorize');
  page.assertClean('/sync/authorize');

  await Promise.all([page.waitForURL((u) => u.pathname === '/sync/complete'), page.click('#authorize')]);
  await page.waitForLoadState('load');
  assert.match(await page.textContent('#complete-text'), new RegExp(NAME));
  assert.match(await page.textContent('#countdown-text'), /closes in \d seconds/);
  await screenshots(page, 'complete');
  // this tab was not opened by a script: the browser keeps it open, and the
  // page says it can be closed
  await page.waitForFunction(() => document.querySelector('#countdown-text')?.dataset.state === 'closable', null, { timeout: 10000 * SLOW });
  page.assertClean('/sync/complete');

  const tok = await pollToken(anon, init.temp_token, init.interval);
  const t = expectOk(tok);
  assert.match(t.session_token, SESSION_TOKEN_RE);
  device = new Client(srv, { bearer: t.session_token, sendOrigin: false });
  expectOk(await device.get('/api/sync/config'));

  // the same link again: nothing left to decide
  await page.goto(init.url);
  await settled(page);
  assert.match(await page.textContent('h1'), /Already authorized/);
  assert.equal(await page.locator('#authorize').count(), 0);
  page.assertClean('/sync/authorize again');
  await page.close();
});

test('deny: the page says so and the client is refused', async () => {
  const { anon, data: init } = await initDevice(srv, { device_name: 'Unknown PC', platform: 'windows', app_version: '1.0.0' });
  const page = await openPage(browser.context);
  await page.goto(init.url);
  await settled(page);
  assert.equal(await page.textContent('#user-code'), init.user_code);
  await page.click('#deny');
  await page.waitForSelector('text=Request denied');
  await screenshots(page, 'authorize-denied');
  page.assertClean('deny');
  const r = await pollToken(anon, init.temp_token, init.interval);
  expectError(r, 403, 'access_denied');
  await page.close();
});

test('an unknown code gets a clear message; a code typed by hand opens its request', async () => {
  const page = await openPage(browser.context);
  page.expectHttpError(404, /^\/api\/sync\/request$/);
  await page.goto(`${srv.url}/sync/authorize?code=BBBB-BBBB`);
  await settled(page);
  assert.match(await page.textContent('[role="alert"]'), /unknown or has expired/);
  await screenshots(page, 'authorize-unknown');

  const { data: init } = await initDevice(srv, { device_name: 'Typed-in device', platform: 'macos', app_version: '3.0.0' });
  await page.goto(`${srv.url}/sync/authorize`);
  await settled(page);
  await page.fill('#code-input', 'no');
  await page.press('#code-input', 'Enter');
  assert.match(await page.textContent('#code-error'), /not a device code/);
  await page.fill('#code-input', init.user_code.toLowerCase().replace('-', ''));
  await Promise.all([page.waitForURL((u) => u.searchParams.get('code') === init.user_code), page.press('#code-input', 'Enter')]);
  await settled(page);
  assert.equal(await page.textContent('#device-name'), 'Typed-in device');
  page.assertClean('typed-in code');
  await page.close();
});

test('an expired code: the page says so on opening, and when it expires while the page is open', async () => {
  // the store keeps the code without its dash
  const expire = (code) => {
    sql(srv, `UPDATE device_requests SET expires_at = ${Date.now() - 1000} WHERE user_code = '${code.replace('-', '')}'`);
    assert.equal(sql(srv, `SELECT count(*) FROM device_requests WHERE user_code = '${code.replace('-', '')}' AND expires_at < ${Date.now()}`), '1');
  };
  const page = await openPage(browser.context);
  const { data: a } = await initDevice(srv, { device_name: 'Late device', platform: 'linux', app_version: '1.0.0' });
  expire(a.user_code);
  await page.goto(`${srv.url}/sync/authorize?code=${a.user_code}`);
  await settled(page);
  assert.match(await page.textContent('#page, main'), /This request has expired/);
  assert.equal(await page.locator('#authorize').count(), 0);
  await screenshots(page, 'authorize-expired');

  // open and waiting, then the code runs out: Authorize says so
  const { data: b } = await initDevice(srv, { device_name: 'Slow device', platform: 'linux', app_version: '1.0.0' });
  await page.goto(`${srv.url}/sync/authorize?code=${b.user_code}`);
  await settled(page);
  assert.equal(await page.textContent('#device-name'), 'Slow device');
  expire(b.user_code);
  page.expectHttpError(410, /^\/api\/sync\/claim$/);
  await page.click('#authorize');
  await page.waitForFunction(() => /This request has expired/.test(document.body.textContent));
  assert.equal(await page.locator('#authorize').count(), 0);
  page.assertClean('expired codes');
  await page.close();
});

test('the overview shows synced data by device, the device count and the key version', async () => {
  expectOk(await device.put('/api/sync/key', { wrapped_key: b64(randomBytes(60)), kdf: { name: 'argon2id', t: 3, m: 65536, p: 1 } }));
  expectOk(await device.put('/api/sync/data/history', { encrypted_data: b64(randomBytes(3000)), key_version: 1 }));
  const page = await openPage(browser.context);
  await page.goto(`${srv.url}/dashboard`);
  await settled(page);
  const card = await page.textContent('article[data-type="history"]');
  assert.match(card, /v1/);
  assert.match(card, new RegExp(NAME));
  assert.match(card, /2\.9 KiB/);
  assert.match(await page.textContent('#stat-devices'), /1/);
  assert.match(await page.textContent('#stat-key'), /v1/);
  await screenshots(page, 'dashboard-with-data');
  await page.goto(`${srv.url}/dashboard/security`);
  await settled(page);
  assert.equal(await page.textContent('#key-version'), 'v1');
  assert.match(await page.textContent('#enc-title + p, section[aria-labelledby="enc-title"]'), /argon2id/);
  page.assertClean('overview with data');
  await page.close();
});

test('the overview follows the account live; reloads never run out of event streams', async () => {
  const page = await openPage(browser.context);
  await page.goto(`${srv.url}/dashboard`);
  await settled(page);
  await page.waitForSelector('#page[data-live="on"]');
  assert.match(await page.textContent('article[data-type="secret"]'), /Nothing synced yet/);
  // another device pushes: the card changes with no reload
  expectOk(await device.put('/api/sync/data/secret', { encrypted_data: b64(randomBytes(100)), key_version: 1 }));
  await page.waitForFunction(() => /v1/.test(document.querySelector('article[data-type="secret"]')?.textContent || ''),
    null, { timeout: 10000 * SLOW });
  assert.match(await page.textContent('article[data-type="secret"]'), new RegExp(NAME));
  // more reloads than STREAMS_PER_USER (20): each new stream of this
  // browser session takes the place of its oldest, so the page stays live
  for (let i = 0; i < 22; i++) {
    await page.reload();
    await settled(page);
  }
  await page.waitForSelector('#page[data-live="on"]');
  expectOk(await device.put('/api/sync/data/environment', { encrypted_data: b64(randomBytes(100)), key_version: 1 }));
  await page.waitForFunction(() => /v1/.test(document.querySelector('article[data-type="environment"]')?.textContent || ''),
    null, { timeout: 10000 * SLOW });
  // a hidden tab lets its stream go (browsers keep six connections per
  // server); shown again, it reopens one and catches up with what it missed
  const setHidden = (hidden) => page.evaluate((h) => {
    Object.defineProperty(document, 'hidden', { value: h, configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
  await setHidden(true);
  await page.waitForSelector('#page[data-live="off"]');
  expectOk(await device.put('/api/sync/data/collection', { encrypted_data: b64(randomBytes(100)), key_version: 1 }));
  assert.match(await page.textContent('article[data-type="collection"]'), /Nothing synced yet/);
  await setHidden(false);
  await page.waitForSelector('#page[data-live="on"]');
  await page.waitForFunction(() => /v1/.test(document.querySelector('article[data-type="collection"]')?.textContent || ''),
    null, { timeout: 10000 * SLOW });
  page.assertClean('live overview');
  await page.close();
});

test('sync toggles save at once, survive a reload, and the API then refuses that type', async () => {
  const page = await openPage(browser.context);
  await page.goto(`${srv.url}/dashboard/sync`);
  await settled(page);
  assert.equal(await page.getAttribute('#switch-secret', 'aria-checked'), 'true');
  await page.click('#switch-secret');
  await page.waitForFunction(() => document.querySelector('#state-secret')?.textContent === 'Saved');
  assert.equal(await page.getAttribute('#switch-secret', 'aria-checked'), 'false');
  assert.match(await page.textContent('.toast[data-kind="success"]'), /Secrets sync turned off/);
  await screenshots(page, 'sync');

  await page.reload();
  await settled(page);
  assert.equal(await page.getAttribute('#switch-secret', 'aria-checked'), 'false');
  assert.equal(await page.getAttribute('#switch-history', 'aria-checked'), 'true');
  expectError(await device.put('/api/sync/data/secret', { encrypted_data: b64(randomBytes(100)), key_version: 1 }), 403, 'sync_disabled');
  expectOk(await device.put('/api/sync/data/history', { encrypted_data: b64(randomBytes(100)), key_version: 1 }));

  // keyboard: Space on the focused switch turns it back on
  await page.focus('#switch-secret');
  await page.keyboard.press('Space');
  await page.waitForFunction(() => document.querySelector('#state-secret')?.textContent === 'Saved');
  assert.equal(expectOk(await device.get('/api/sync/config')).secret, true);
  page.assertClean('/dashboard/sync');
  await page.close();
});

test('a failed save puts the switch back and says why', async () => {
  const page = await openPage(browser.context);
  page.expectHttpError(503, /^\/api\/sync\/config$/);
  await page.route('**/api/sync/config', (route) => (route.request().method() === 'PUT'
    ? route.fulfill({ status: 503, contentType: 'application/json; charset=utf-8', body: JSON.stringify({ success: false, error: 'unavailable', message: 'Storage is unavailable; the request had no effect.' }) })
    : route.continue()));
  await page.goto(`${srv.url}/dashboard/sync`);
  await settled(page);
  await page.click('#switch-collection');
  await page.waitForSelector('.toast[data-kind="error"]');
  assert.equal(await page.getAttribute('#switch-collection', 'aria-checked'), 'true');
  assert.equal(await page.textContent('#state-collection'), 'Not saved');
  assert.match(await page.textContent('.toast[data-kind="error"]'), /Could not change collections sync/);
  assert.equal(expectOk(await device.get('/api/sync/config')).collection, true);
  page.assertClean('failed toggle');
  await page.close();
});

test('revoking a device asks first; once confirmed the device is signed out', async () => {
  const page = await openPage(browser.context);
  await page.goto(`${srv.url}/dashboard/devices`);
  await settled(page);
  const row = page.locator(`tr[data-device="${device.bearer ? (await device.get('/api/devices')).data.devices.find((d) => d.current).id : ''}"]`);
  assert.match(await row.textContent(), new RegExp(NAME));
  assert.match(await row.textContent(), /linux/);
  assert.match(await row.textContent(), /127\.0\.0\.1/);
  await screenshots(page, 'devices');

  // Cancel changes nothing
  await row.locator('button[data-revoke]').click();
  await page.waitForSelector('dialog[open]');
  assert.match(await page.textContent('dialog[open]'), new RegExp(`Revoke ${NAME}\\?`));
  await screenshots(page, 'devices-confirm');
  await page.click('dialog[open] >> text=Cancel');
  await page.waitForSelector('dialog[open]', { state: 'detached' });
  expectOk(await device.get('/api/sync/config'));

  // Escape cancels too
  await row.locator('button[data-revoke]').click();
  await page.waitForSelector('dialog[open]');
  await page.keyboard.press('Escape');
  await page.waitForSelector('dialog[open]', { state: 'detached' });
  expectOk(await device.get('/api/sync/config'));

  await row.locator('button[data-revoke]').click();
  await page.click('dialog[open] >> text=Revoke device');
  await page.waitForSelector('.toast[data-kind="success"]');
  await page.waitForSelector('text=Revoked');
  expectError(await device.get('/api/sync/config'), 401, 'unauthorized');
  assert.match(await page.textContent('#devices-count'), /0 active, 1 revoked/);
  page.assertClean('/dashboard/devices');

  await page.goto(`${srv.url}/dashboard/security`);
  await settled(page);
  const log = await page.textContent('#audit-table');
  for (const label of ['Device revoked', 'Sync settings changed', 'Device connected', 'Device approved', 'Device request denied', 'Encryption key stored']) {
    assert.ok(log.includes(label), `audit log shows "${label}"`);
  }
  await page.close();
});
