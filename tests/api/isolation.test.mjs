// User isolation: a second user gets 404 for every id of the first, on
// every route that takes one, and sees nothing of the first in any list.

import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { startServer, stopAll, test } from './lib/server.mjs';
import {
  TYPES, expectOk, expectError, signup, deviceLogin, initDevice, b64, randomBytes,
} from './lib/client.mjs';
import { finalChecks } from './lib/checks.mjs';

let srv;
let u1;
let d1;
let u2;
let d2;
let claimedInit;
let deniedInit;
let snapshot;

before(async () => {
  srv = await startServer({ env: {} });
  u1 = await signup(srv);
  d1 = await deviceLogin(u1, { device_name: 'first-user-device' });
  u2 = await signup(srv);
  d2 = await deviceLogin(u2, { device_name: 'second-user-device' });

  // user 1: a key, data with revisions in 'history' and 'secret', a tombstone, config, events, audit
  expectOk(await d1.put('/api/sync/key', { wrapped_key: b64(randomBytes(64)), kdf: { name: 'argon2id' } }));
  for (let i = 0; i < 3; i++) expectOk(await d1.put('/api/sync/data/history', { encrypted_data: b64(randomBytes(20 + i)) }));
  expectOk(await u1.put('/api/sync/data/secret', { encrypted_data: b64(randomBytes(40)) }));
  expectOk(await d1.put('/api/sync/data/collection', { encrypted_data: b64('c') }));
  expectOk(await d1.del('/api/sync/data/collection'));
  expectOk(await u1.put('/api/sync/config', { setting: false }));
  ({ data: claimedInit } = await initDevice(srv));
  expectOk(await u1.post('/api/sync/claim', { user_code: claimedInit.user_code }));
  ({ data: deniedInit } = await initDevice(srv));
  expectOk(await u1.post('/api/sync/deny', { user_code: deniedInit.user_code }));
  snapshot = await stateOf(u1);
});
after(stopAll);

async function stateOf(c) {
  const out = {};
  out.config = expectOk(await c.get('/api/sync/config'));
  out.key = expectOk(await c.get('/api/sync/key'));
  out.data = expectOk(await c.get('/api/sync/data?include=data'));
  out.history = expectOk(await c.get('/api/sync/data/history'));
  out.revisions = expectOk(await c.get('/api/sync/data/history/revisions'));
  out.device = expectOk(await c.get('/api/devices')).devices.filter((d) => d.id === d1.deviceId)
    .map(({ id, name, status, platform, app_version, created_at }) => ({ id, name, status, platform, app_version, created_at }));
  return out;
}

test('the other user\'s device: DELETE answers 404 (cookie and bearer); it keeps working', async () => {
  expectError(await u2.del(`/api/devices/${d1.deviceId}`), 404, 'not_found');
  expectError(await d2.del(`/api/devices/${d1.deviceId}`), 404, 'not_found');
  expectOk(await d1.get('/api/sync/config'));
  const row = expectOk(await u1.get('/api/devices')).devices.find((d) => d.id === d1.deviceId);
  assert.equal(row.status, 'active');
});

test('the other user\'s data and revisions: 404 exactly like missing ones', async () => {
  for (const c of [u2, d2]) {
    const mine = await c.get('/api/sync/data/history');
    expectError(mine, 404, 'not_found');
    const missing = await c.get('/api/sync/data/environment');
    expectError(missing, 404, 'not_found');
    assert.equal(mine.message.replaceAll('history', 'T'), missing.message.replaceAll('environment', 'T'), 'same answer as a missing item');
    expectError(await c.get('/api/sync/data/history', { headers: { accept: 'application/octet-stream' } }), 404, 'not_found');
    for (const v of [1, 2, 3]) expectError(await c.get(`/api/sync/data/history/revisions/${v}`), 404, 'not_found');
    expectError(await c.get('/api/sync/data/secret/revisions/1'), 404, 'not_found');
    const revs = await c.get('/api/sync/data/history/revisions');
    if (revs.status === 200) {
      const list = revs.data.revisions || revs.data.items || [];
      assert.deepEqual(list, [], 'no revisions of the other user');
    } else {
      expectError(revs, 404, 'not_found');
    }
  }
});

test('the other user\'s device requests: the authorize-page lookup answers 404', async () => {
  for (const init of [claimedInit, deniedInit]) {
    expectError(await u2.get(`/api/sync/request?code=${init.user_code}`), 404, 'not_found');
  }
});

test('the other user\'s device requests: claim by user code answers 404', async () => {
  for (const init of [claimedInit, deniedInit]) {
    expectError(await u2.post('/api/sync/claim', { user_code: init.user_code }), 404, 'not_found');
  }
});

test('the other user\'s device requests: claim by temp token answers 404 (cookie and bearer)', async () => {
  for (const init of [claimedInit, deniedInit]) {
    expectError(await u2.post('/api/sync/claim', { temp_token: init.temp_token }), 404, 'not_found');
    expectError(await d2.post('/api/sync/claim', { temp_token: init.temp_token }), 404, 'not_found');
  }
});

test('the other user\'s device requests: deny answers 404', async () => {
  for (const init of [claimedInit, deniedInit]) {
    expectError(await u2.post('/api/sync/deny', { user_code: init.user_code }), 404, 'not_found');
  }
});

test('the other user\'s device requests stay user 1\'s', async () => {
  // user 1's claim still yields user 1's token; the denied one stays denied
  const t = expectOk(await d2.post('/api/sync/token', { temp_token: claimedInit.temp_token }));
  assert.equal(t.user.id, u1.user.id);
  expectError(await d2.post('/api/sync/token', { temp_token: deniedInit.temp_token }), 403, 'access_denied');
});

test('lists: the second user sees none of the first user\'s data, devices, events, audit, key, config', async () => {
  for (const c of [u2, d2]) {
    assert.deepEqual(expectOk(await c.get('/api/sync/data')).items, []);
    assert.deepEqual(expectOk(await c.get('/api/sync/data?include=data')).items, []);
    const devs = expectOk(await c.get('/api/devices')).devices;
    assert.deepEqual(devs.map((d) => d.id), [d2.deviceId]);
    const ev = expectOk(await c.get('/api/sync/events?after=0&wait=0'));
    assert.deepEqual(ev.events, [], JSON.stringify(ev.events));
    expectError(await c.get('/api/sync/key'), 404, 'not_found');
    const cfg = expectOk(await c.get('/api/sync/config'));
    for (const t of TYPES) assert.equal(cfg[t], true, t);
  }
  const a1 = expectOk(await u1.get('/api/audit?limit=200')).events;
  const a2 = expectOk(await u2.get('/api/audit?limit=200')).events;
  const ids1 = new Set(a1.map((e) => String(e.id)));
  assert.ok(a2.every((e) => !ids1.has(String(e.id))), 'no audit row of user 1');
  assert.ok(a2.every((e) => e.device_id === null || e.device_id === d2.deviceId), 'no device of user 1 in audit');
  assert.ok(!a2.some((e) => ['key_stored', 'data_cleared', 'device_denied'].includes(e.event_type)));
  // paging from user 1's newest id does not reach user 1's rows
  const newest1 = a1[0].id;
  const paged = expectOk(await u2.get(`/api/audit?limit=200&before=${encodeURIComponent(newest1)}`)).events;
  assert.ok(paged.every((e) => !ids1.has(String(e.id))));
  // events after an id of user 1 show nothing of user 1
  const ev1 = expectOk(await u1.get('/api/sync/events?after=0&wait=0')).events;
  assert.ok(ev1.length > 0);
  const ev2 = expectOk(await d2.get(`/api/sync/events?after=0&wait=0`)).events;
  const evIds1 = new Set(ev1.map((e) => e.id));
  assert.ok(ev2.every((e) => !evIds1.has(e.id)));
});

test('the second user\'s writes never touch the first user\'s items', async () => {
  expectOk(await d2.put('/api/sync/data/history', { encrypted_data: b64('u2-h') }));
  const r = await d2.del('/api/sync/data/secret');
  assert.ok(r.status === 404 || r.status === 200, r.describe());
  expectOk(await u2.put('/api/sync/config', { setting: false, history: false }));
  expectOk(await d2.put('/api/sync/key', { wrapped_key: b64(randomBytes(50)), kdf: { name: 'argon2id' } }));
  const h2 = expectOk(await d2.get('/api/sync/data/history'));
  assert.equal(h2.version, 1, 'user 2 counts its own versions');
  assert.equal(expectOk(await d2.get('/api/sync/key')).version, 1);
  // user 1 is unchanged
  const now = await stateOf(u1);
  assert.deepEqual(now, snapshot);
  // user 2's event stream holds only user 2's events
  const ev2 = expectOk(await u2.get('/api/sync/events?after=0&wait=0')).events;
  assert.ok(ev2.every((e) => e.origin_device_id === null || e.origin_device_id === undefined || e.origin_device_id === d2.deviceId));
});

test('a waiting long-poll of one user is not woken by another user\'s write', async () => {
  const last = expectOk(await d2.get('/api/sync/events?after=0&wait=0')).next;
  const t0 = Date.now();
  const waiting = d2.get(`/api/sync/events?after=${last}&wait=2`);
  await new Promise((r) => setTimeout(r, 300));
  expectOk(await d1.put('/api/sync/data/environment', { encrypted_data: b64('u1-env') }));
  const d = expectOk(await waiting);
  assert.deepEqual(d.events, []);
  assert.equal(d.next, last);
  assert.ok(Date.now() - t0 >= 1800, 'it waited the full time');
});

finalChecks(() => [srv]);
