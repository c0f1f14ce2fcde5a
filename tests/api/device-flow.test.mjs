// Device authorization: init, the authorize page's request lookup, claim,
// deny, token polling (the exact order of answers, slow_down), rotation
// (grace and reuse detection), revoke.

import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { startServer, stopAll, test, sleep } from './lib/server.mjs';
import {
  Client, expectOk, expectError, expectInvalid, expectNoStore, expectTimestamp, expectUser, signup, deviceLogin,
  initDevice, rand, TEMP_TOKEN_RE, SESSION_TOKEN_RE, USER_CODE_RE,
} from './lib/client.mjs';
import { finalChecks } from './lib/checks.mjs';

let srv;
let web;
let poller;

before(async () => {
  srv = await startServer({
    env: { DEVICE_POLL_INTERVAL: '1', TEMP_TOKEN_EXPIRY_MINUTES: '2', SESSION_EXPIRY_DAYS: '7' },
  });
  web = await signup(srv);
  poller = new Client(srv, { sendOrigin: false, jar: false });
});
after(stopAll);

const poll = (temp_token) => poller.post('/api/sync/token', { temp_token });

async function auditTypes(c = web) {
  return expectOk(await c.get('/api/audit?limit=200')).events.map((e) => e.event_type);
}

async function deviceStatus(id) {
  const d = expectOk(await web.get('/api/devices'));
  return d.devices.find((x) => x.id === id)?.status;
}

function approx(ts, expectedMs, slackMs, what) {
  expectTimestamp(ts, what);
  const diff = Math.abs(Date.parse(ts) - expectedMs);
  assert.ok(diff <= slackMs, `${what} ${ts} should be ~${new Date(expectedMs).toISOString()} (off by ${diff} ms)`);
}

// ---- init ---------------------------------------------------------------

test('init answers 201 with temp_token, user_code, url, expiry and interval', async () => {
  const t0 = Date.now();
  const r = await poller.post('/api/sync/init', { device_name: 'Work laptop', platform: 'linux', app_version: '2.0.1' });
  const d = expectOk(r, 201);
  expectNoStore(r);
  assert.deepEqual(Object.keys(d).sort(), ['expires_at', 'expires_in', 'interval', 'temp_token', 'url', 'user_code']);
  assert.match(d.temp_token, TEMP_TOKEN_RE);
  assert.match(d.user_code, USER_CODE_RE);
  assert.equal(d.url, `${srv.url}/sync/authorize?code=${d.user_code}`);
  assert.ok(!d.url.includes(d.temp_token));
  assert.ok(!d.url.includes(d.temp_token.slice(9)));
  assert.equal(d.expires_in, 120);
  assert.equal(d.interval, 1);
  approx(d.expires_at, t0 + 120_000, 5000, 'expires_at');

  const d2 = expectOk(await poller.post('/api/sync/init', {}), 201);
  // every field is optional, so a body-less POST works too
  const d3 = expectOk(await poller.post('/api/sync/init'), 201);
  assert.match(d3.temp_token, TEMP_TOKEN_RE);
  assert.notEqual(d2.temp_token, d.temp_token);
  assert.notEqual(d2.user_code, d.user_code);
});

test('init: bad fields answer 400 naming the field', async () => {
  expectInvalid(await poller.post('/api/sync/init', { device_name: 5 }), 'device_name');
  expectInvalid(await poller.post('/api/sync/init', { platform: ['linux'] }), 'platform');
  expectInvalid(await poller.post('/api/sync/init', { app_version: { v: 1 } }), 'app_version');
  expectInvalid(await poller.post('/api/sync/init', { device_name: 'x'.repeat(129) }), 'device_name');
  expectInvalid(await poller.post('/api/sync/init', { device_name: 'ok', color: 'red' }), 'color');
  // 128 bytes is fine (in bytes: 64 two-byte characters)
  expectOk(await poller.post('/api/sync/init', { device_name: 'é'.repeat(64) }), 201);
  expectInvalid(await poller.post('/api/sync/init', { device_name: 'é'.repeat(65) }), 'device_name');
});

// ---- the authorize page's lookup ------------------------------------------

test('GET /api/sync/request shows what is being authorized', async () => {
  const t0 = Date.now();
  const { data: init } = await initDevice(srv, { device_name: 'Desk PC', platform: 'windows', app_version: '3.1' });
  const r = await web.get(`/api/sync/request?code=${init.user_code}`);
  const d = expectOk(r);
  assert.deepEqual(Object.keys(d).sort(),
    ['app_version', 'created_at', 'device_name', 'expires_at', 'ip', 'platform', 'status', 'user_code']);
  assert.equal(d.user_code, init.user_code);
  assert.equal(d.device_name, 'Desk PC');
  assert.equal(d.platform, 'windows');
  assert.equal(d.app_version, '3.1');
  assert.equal(d.ip, '127.0.0.1');
  assert.equal(d.status, 'pending');
  approx(d.created_at, t0, 5000, 'created_at');
  assert.equal(d.expires_at, init.expires_at);
  assert.ok(!r.text.includes(init.temp_token), 'never shows the temp token');

  expectError(await poller.get(`/api/sync/request?code=${init.user_code}`), 401, 'unauthorized');
  const dev = await deviceLogin(web);
  expectError(await dev.get(`/api/sync/request?code=${init.user_code}`), 401, 'unauthorized');
  expectInvalid(await web.get('/api/sync/request'));
  expectError(await web.get('/api/sync/request?code=BBBB-BBBB'), 404, 'not_found');
});

// ---- polling ------------------------------------------------------------

test('token: an unknown temp token answers 404 not_found', async () => {
  expectError(await poll(`flm_temp_${rand(16)}`), 404, 'not_found');
});

test('token: pending, then slow_down (+5 s) when polled too soon; the raised interval stays', async () => {
  const { data: init } = await initDevice(srv);
  const r1 = await poll(init.temp_token); // first poll may come at any time
  expectError(r1, 400, 'authorization_pending');
  expectNoStore(r1);
  const r2 = await poll(init.temp_token);
  expectError(r2, 400, 'slow_down');
  expectNoStore(r2);
  assert.equal(r2.json.data?.interval, 6, `data.interval: ${r2.describe()}`);
  await sleep(1300); // enough for the old interval (1 s), not for the raised one (6 s)
  const r3 = await poll(init.temp_token);
  expectError(r3, 400, 'slow_down');
  assert.equal(r3.json.data?.interval, 11, `raised again from the kept 6 s: ${r3.describe()}`);
});

test('token: polling at the interval keeps answering authorization_pending', async () => {
  const { data: init } = await initDevice(srv);
  expectError(await poll(init.temp_token), 400, 'authorization_pending');
  await sleep(1200);
  expectError(await poll(init.temp_token), 400, 'authorization_pending');
  await sleep(1200);
  expectError(await poll(init.temp_token), 400, 'authorization_pending');
});

test('token: claimed → 200 with the session token; then 410 expired_token', async () => {
  const t0 = Date.now();
  const { data: init } = await initDevice(srv, { device_name: 'Phone', platform: 'android', app_version: '9' });
  const c = await web.post('/api/sync/claim', { user_code: init.user_code });
  const claimed = expectOk(c);
  assert.deepEqual(Object.keys(claimed), ['device']);
  assert.equal(claimed.device.name, 'Phone');
  assert.ok(claimed.device.id);
  // audit timing: token_claimed at claim, device_connected only at issue
  let types = await auditTypes();
  assert.ok(types.includes('token_claimed'), 'token_claimed when claimed');
  const connectedBefore = types.filter((t) => t === 'device_connected').length;

  const r = await poll(init.temp_token);
  const d = expectOk(r);
  expectNoStore(r);
  assert.deepEqual(Object.keys(d).sort(), ['device_id', 'expires_at', 'session_token', 'token_type', 'user']);
  assert.match(d.session_token, SESSION_TOKEN_RE);
  assert.equal(d.token_type, 'Bearer');
  assert.equal(d.device_id, claimed.device.id);
  expectUser(d.user, web.email);
  assert.equal(d.user.id, web.user.id);
  approx(d.expires_at, t0 + 7 * 86400_000, 120_000, 'expires_at (SESSION_EXPIRY_DAYS=7)');
  types = await auditTypes();
  assert.equal(types.filter((t) => t === 'device_connected').length, connectedBefore + 1, 'device_connected at issue');

  const dev = new Client(srv, { bearer: d.session_token });
  expectOk(await dev.get('/api/sync/config'));
  const gone = await poll(init.temp_token); // 410 is decided before slow_down
  expectError(gone, 410, 'expired_token');
  expectNoStore(gone);
  await sleep(1100);
  expectError(await poll(init.temp_token), 410, 'expired_token');
  const st = expectOk(await web.get(`/api/sync/request?code=${init.user_code}`));
  assert.equal(st.status, 'claimed');
  const list = expectOk(await web.get('/api/devices')).devices;
  const row = list.find((x) => x.id === d.device_id);
  assert.ok(row, 'the device is listed');
  assert.equal(row.name, 'Phone');
  assert.equal(row.platform, 'android');
  assert.equal(row.app_version, '9');
  assert.equal(row.status, 'active');
});

test('token: claimed but polled too soon answers slow_down first, then 200', async () => {
  const { data: init } = await initDevice(srv);
  expectError(await poll(init.temp_token), 400, 'authorization_pending');
  expectOk(await web.post('/api/sync/claim', { user_code: init.user_code }));
  const r = await poll(init.temp_token);
  expectError(r, 400, 'slow_down');
  assert.equal(r.json.data?.interval, 6);
  await sleep(6300);
  const ok = await poll(init.temp_token);
  assert.match(expectOk(ok).session_token, SESSION_TOKEN_RE);
});

test('deny: the next poll answers 403 access_denied (before slow_down); no token ever', async () => {
  const { data: init } = await initDevice(srv);
  expectError(await poll(init.temp_token), 400, 'authorization_pending');
  const r = await web.post('/api/sync/deny', { user_code: init.user_code });
  assert.deepEqual(expectOk(r), {});
  expectError(await poll(init.temp_token), 403, 'access_denied');
  await sleep(1100);
  expectError(await poll(init.temp_token), 403, 'access_denied');
  assert.equal(expectOk(await web.get(`/api/sync/request?code=${init.user_code}`)).status, 'denied');
  assert.ok((await auditTypes()).includes('device_denied'));
  // answered once: no claim or second deny after a deny
  expectError(await web.post('/api/sync/claim', { user_code: init.user_code }), 409, 'already_claimed');
  expectError(await web.post('/api/sync/claim', { temp_token: init.temp_token }), 409, 'already_claimed');
  expectError(await web.post('/api/sync/deny', { user_code: init.user_code }), 409, 'already_claimed');
  await sleep(1100);
  expectError(await poll(init.temp_token), 403, 'access_denied');
});

test('deny: cookie only; unknown code 404; after a claim 409', async () => {
  const { data: init } = await initDevice(srv);
  const dev = await deviceLogin(web);
  expectError(await dev.post('/api/sync/deny', { user_code: init.user_code }), 401, 'unauthorized');
  expectError(await poller.post('/api/sync/deny', { user_code: init.user_code }), 401, 'unauthorized');
  expectError(await web.post('/api/sync/deny', { user_code: 'ZZZZ-ZZZZ' }), 404, 'not_found');
  expectInvalid(await web.post('/api/sync/deny', {}), 'user_code');
  expectOk(await web.post('/api/sync/claim', { user_code: init.user_code }));
  expectError(await web.post('/api/sync/deny', { user_code: init.user_code }), 409, 'already_claimed');
  assert.match(expectOk(await poll(init.temp_token)).session_token, SESSION_TOKEN_RE);
});

// ---- claim ----------------------------------------------------------------

test('claim: the user code in any case, with or without the dash', async () => {
  for (const f of [(c) => c.toLowerCase(), (c) => c.replace('-', ''), (c) => c.replace('-', '').toLowerCase(),
    (c) => `${c.slice(0, 2).toLowerCase()}${c.slice(2)}`]) {
    const { data: init } = await initDevice(srv);
    const r = await web.post('/api/sync/claim', { user_code: f(init.user_code) });
    expectOk(r);
    const t = expectOk(await poll(init.temp_token));
    assert.equal(t.user.id, web.user.id);
  }
});

test('claim: with the temp_token, by cookie or by another device\'s bearer', async () => {
  const a = await initDevice(srv, { device_name: 'by-cookie' });
  const r = await web.post('/api/sync/claim', { temp_token: a.data.temp_token });
  assert.equal(expectOk(r).device.name, 'by-cookie');
  assert.equal(expectOk(await poll(a.data.temp_token)).user.id, web.user.id);

  const dev = await deviceLogin(web);
  const b = await initDevice(srv, { device_name: 'by-bearer' });
  const r2 = await dev.post('/api/sync/claim', { temp_token: b.data.temp_token });
  assert.equal(expectOk(r2).device.name, 'by-bearer');
  assert.equal(expectOk(await poll(b.data.temp_token)).user.id, web.user.id);
  const c = await initDevice(srv, { device_name: 'by-bearer-code' });
  expectOk(await dev.post('/api/sync/claim', { user_code: c.data.user_code }));
  assert.equal(expectOk(await poll(c.data.temp_token)).user.id, web.user.id);
});

test('claim: a second claim answers 409 already_claimed; wrong code 404; bad bodies 400; no auth 401', async () => {
  const { data: init } = await initDevice(srv);
  expectOk(await web.post('/api/sync/claim', { user_code: init.user_code }));
  expectError(await web.post('/api/sync/claim', { user_code: init.user_code }), 409, 'already_claimed');
  expectError(await web.post('/api/sync/claim', { temp_token: init.temp_token }), 409, 'already_claimed');
  const other = await web.clone();
  expectError(await other.post('/api/sync/claim', { user_code: init.user_code.toLowerCase() }), 409, 'already_claimed');
  expectError(await web.post('/api/sync/claim', { user_code: 'XXXX-XXXX' }), 404, 'not_found');
  expectError(await web.post('/api/sync/claim', { temp_token: `flm_temp_${rand(16)}` }), 404, 'not_found');
  expectInvalid(await web.post('/api/sync/claim', {}));
  expectInvalid(await web.post('/api/sync/claim', { user_code: 12345678 }), 'user_code');
  expectInvalid(await web.post('/api/sync/claim', { user_code: init.user_code, bogus: 1 }), 'bogus');
  const fresh = await initDevice(srv);
  expectError(await poller.post('/api/sync/claim', { user_code: fresh.data.user_code }), 401, 'unauthorized');
  expectError(await poll(fresh.data.temp_token), 400, 'authorization_pending');
});

test('claims are atomic: 10 parallel claims of one request, exactly one wins', async () => {
  const { data: init } = await initDevice(srv);
  const res = await Promise.all(Array.from({ length: 10 }, () => web.post('/api/sync/claim', { user_code: init.user_code })));
  const ok = res.filter((r) => r.status === 200);
  assert.equal(ok.length, 1, res.map((r) => r.status).join(','));
  for (const r of res) if (r.status !== 200) expectError(r, 409, 'already_claimed');
  const devices = expectOk(await web.get('/api/devices')).devices.filter((d) => d.id === ok[0].data.device.id);
  assert.equal(devices.length, 1);
});

test('token exchange is single-use under concurrency: 8 parallel polls, one session token', async () => {
  const { data: init } = await initDevice(srv);
  expectOk(await web.post('/api/sync/claim', { user_code: init.user_code }));
  const res = await Promise.all(Array.from({ length: 8 }, () => new Client(srv, { jar: false }).post('/api/sync/token', { temp_token: init.temp_token })));
  const ok = res.filter((r) => r.status === 200);
  assert.equal(ok.length, 1, res.map((r) => `${r.status} ${r.error || ''}`).join(','));
  for (const r of res) if (r.status !== 200) assert.ok(['slow_down', 'expired_token'].includes(r.error), r.describe());
  expectError(await poll(init.temp_token), 410, 'expired_token');
});

// ---- rotation -------------------------------------------------------------

test('rotate: new token at once; old keeps working until the new one is used; then reuse revokes all', async () => {
  const dev = await deviceLogin(web);
  const oldTok = dev.token;
  const r = await dev.post('/api/sync/rotate');
  const d = expectOk(r);
  expectNoStore(r);
  assert.deepEqual(Object.keys(d).sort(), ['expires_at', 'session_token']);
  assert.match(d.session_token, SESSION_TOKEN_RE);
  assert.notEqual(d.session_token, oldTok);
  expectTimestamp(d.expires_at);
  const oldC = new Client(srv, { bearer: oldTok });
  const newC = new Client(srv, { bearer: d.session_token });
  // grace: the old token still works before the new one is used
  expectOk(await oldC.get('/api/sync/config'));
  expectOk(await oldC.get('/api/devices'));
  // first use of the new token ends the grace
  expectOk(await newC.get('/api/sync/config'));
  expectOk(await newC.get('/api/sync/config'));
  // reuse of the old token: 401 and the whole device session is revoked
  expectError(await oldC.get('/api/sync/config'), 401, 'unauthorized');
  expectError(await newC.get('/api/sync/config'), 401, 'unauthorized');
  const types = await auditTypes();
  assert.ok(types.includes('token_rotated'));
  assert.ok(types.includes('token_reuse_detected'));
  assert.equal(await deviceStatus(dev.deviceId), 'revoked');
});

test('rotate: the old token after the new one was used, immediately, is reuse', async () => {
  const dev = await deviceLogin(web);
  const d = expectOk(await dev.post('/api/sync/rotate'));
  const newC = new Client(srv, { bearer: d.session_token });
  expectOk(await newC.put('/api/sync/config', { setting: true }));
  expectError(await dev.get('/api/sync/config'), 401, 'unauthorized');
  expectError(await newC.get('/api/sync/config'), 401, 'unauthorized');
});

test('rotate: a chain of rotations keeps one live token', async () => {
  const dev = await deviceLogin(web);
  const t1 = expectOk(await dev.post('/api/sync/rotate')).session_token;
  const c1 = new Client(srv, { bearer: t1 });
  const t2 = expectOk(await c1.post('/api/sync/rotate')).session_token;
  const c2 = new Client(srv, { bearer: t2 });
  expectOk(await c2.get('/api/sync/config'));
  expectError(await c1.get('/api/sync/config'), 401, 'unauthorized');
  expectError(await c2.get('/api/sync/config'), 401, 'unauthorized');
  expectError(await dev.get('/api/sync/config'), 401, 'unauthorized');
});

test('rotate and revoke need a bearer token', async () => {
  expectError(await web.post('/api/sync/rotate'), 401, 'unauthorized');
  expectError(await web.post('/api/sync/revoke'), 401, 'unauthorized');
  expectError(await poller.post('/api/sync/rotate'), 401, 'unauthorized');
});

// ---- revoke -----------------------------------------------------------------

test('revoke: {}; the token answers 401 at once; the device shows revoked', async () => {
  const dev = await deviceLogin(web);
  expectOk(await dev.get('/api/sync/config'));
  const r = await dev.post('/api/sync/revoke');
  assert.deepEqual(expectOk(r), {});
  expectError(await dev.get('/api/sync/config'), 401, 'unauthorized');
  expectError(await dev.post('/api/sync/revoke'), 401, 'unauthorized');
  expectError(await dev.post('/api/sync/rotate'), 401, 'unauthorized');
  assert.equal(await deviceStatus(dev.deviceId), 'revoked');
  assert.ok((await auditTypes()).includes('token_revoked'));
});

finalChecks(() => [srv]);
