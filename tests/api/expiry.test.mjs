// Slow (~62 s, runs in parallel with the other files): temp tokens expire
// after TEMP_TOKEN_EXPIRY_MINUTES (minimum 1), and the old token of a
// rotation stops working 60 s after the rotation even if the new one was
// never used.

import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { startServer, stopAll, test, sleep } from './lib/server.mjs';
import { Client, expectOk, expectError, signup, deviceLogin, initDevice } from './lib/client.mjs';
import { finalChecks } from './lib/checks.mjs';

let srv;
let web;
let dev;
let unclaimed;
let claimed;
let rotatedAt;
let newToken;
const poller = () => new Client(srv, { sendOrigin: false });

before(async () => {
  srv = await startServer({ env: { TEMP_TOKEN_EXPIRY_MINUTES: '1', DEVICE_POLL_INTERVAL: '1' } });
  web = await signup(srv);
  dev = await deviceLogin(web);
});
after(async () => { await stopAll(); });

test('setup: an unclaimed request, a claimed-but-unexchanged one, a rotation', async () => {
  ({ data: unclaimed } = await initDevice(srv));
  assert.equal(unclaimed.expires_in, 60);
  ({ data: claimed } = await initDevice(srv));
  expectOk(await web.post('/api/sync/claim', { user_code: claimed.user_code }));
  rotatedAt = Date.now();
  newToken = expectOk(await dev.post('/api/sync/rotate')).session_token;
  srv.addSecret(newToken);
});

test('within 60 s the old token of a rotation still works while the new one is unused', async () => {
  await sleep(30_000);
  expectOk(await dev.get('/api/sync/config'));
  expectError(await poller().post('/api/sync/token', { temp_token: unclaimed.temp_token }), 400, 'authorization_pending');
});

test('after the expiry: 410 expired_token, status expired, never a session token', async () => {
  const wait = rotatedAt + 62_000 - Date.now();
  if (wait > 0) await sleep(wait);
  expectError(await poller().post('/api/sync/token', { temp_token: unclaimed.temp_token }), 410, 'expired_token');
  expectError(await poller().post('/api/sync/token', { temp_token: claimed.temp_token }), 410, 'expired_token');
  const st = expectOk(await web.get(`/api/sync/request?code=${unclaimed.user_code}`));
  assert.equal(st.status, 'expired');
  const c = await web.post('/api/sync/claim', { user_code: unclaimed.user_code });
  assert.ok(c.status === 410 || c.status === 404, `claim of an expired request: ${c.describe()}`);
  assert.ok(c.error === 'expired_token' || c.error === 'not_found', c.describe());
  await sleep(1100);
  expectError(await poller().post('/api/sync/token', { temp_token: unclaimed.temp_token }), 410, 'expired_token');
});

test('60 s after a rotation the old token is dead; the unused new one works', async () => {
  expectError(await dev.get('/api/sync/config'), 401, 'unauthorized');
  expectOk(await new Client(srv, { bearer: newToken }).get('/api/sync/config'));
});

finalChecks(() => [srv]);
