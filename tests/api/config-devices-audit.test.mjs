// Sync configuration, the device list and device revocation, the audit log
// (order, fields, limit and paging).

import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { startServer, stopAll, test, until, sql, metric, SLOW } from './lib/server.mjs';
import {
  TYPES, expectOk, expectError, expectInvalid, expectTimestamp, signup, deviceLogin, rand,
} from './lib/client.mjs';
import { finalChecks } from './lib/checks.mjs';

let srv;
let web;
let devA;
let devB;
const UA_A = `FlamingoDesktop/1.0 (${rand(3)})`;
const UA_WEB = `Mozilla/5.0 Test ${rand(3)}`;

before(async () => {
  srv = await startServer({ env: {} });
  web = await signup(srv, { userAgent: UA_WEB });
  devA = await deviceLogin(web, { device_name: 'Laptop A', platform: 'macos', app_version: '1.0.0', userAgent: UA_A });
  devB = await deviceLogin(web, { device_name: 'Desktop B', platform: 'windows', app_version: '1.1.0' });
});
after(stopAll);

const CONFIG_KEYS = [...TYPES, 'updated_at'].sort();

// ---- config -------------------------------------------------------------

test('config: all five types enabled by default, same for bearer and cookie', async () => {
  const a = expectOk(await devA.get('/api/sync/config'));
  assert.deepEqual(Object.keys(a).sort(), CONFIG_KEYS);
  for (const t of TYPES) assert.equal(a[t], true, t);
  assert.ok(a.updated_at === null || typeof a.updated_at === 'string');
  assert.deepEqual(expectOk(await web.get('/api/sync/config')), a);
});

test('config PUT: any subset of the booleans; answers the whole config', async () => {
  const r = expectOk(await devA.put('/api/sync/config', { secret: false }));
  assert.deepEqual(Object.keys(r).sort(), CONFIG_KEYS);
  assert.equal(r.secret, false);
  for (const t of TYPES.filter((x) => x !== 'secret')) assert.equal(r[t], true);
  expectTimestamp(r.updated_at);
  const r2 = expectOk(await web.put('/api/sync/config', { history: false, collection: false }));
  assert.equal(r2.secret, false);
  assert.equal(r2.history, false);
  assert.equal(r2.collection, false);
  assert.equal(r2.environment, true);
  assert.deepEqual(expectOk(await devB.get('/api/sync/config')), r2);
  // an empty subset: the spec does not say; either it changes nothing or it is refused
  const r3 = await web.put('/api/sync/config', {});
  if (r3.status === 200) assert.deepEqual({ ...r3.data, updated_at: null }, { ...r2, updated_at: null });
  else expectInvalid(r3);
  assert.deepEqual({ ...expectOk(await web.get('/api/sync/config')), updated_at: null }, { ...r2, updated_at: null });
  const r4 = expectOk(await devB.put('/api/sync/config', { history: true, collection: true, secret: true, environment: true, setting: true }));
  for (const t of TYPES) assert.equal(r4[t], true);
});

test('config PUT: wrong types and unknown keys answer 400 naming them; nothing changes', async () => {
  const before = expectOk(await devA.get('/api/sync/config'));
  expectInvalid(await devA.put('/api/sync/config', { history: 'false' }), 'history');
  expectInvalid(await devA.put('/api/sync/config', { history: 0 }), 'history');
  expectInvalid(await devA.put('/api/sync/config', { history: null }), 'history');
  expectInvalid(await devA.put('/api/sync/config', { history: false, passwords: false }), 'passwords');
  expectInvalid(await devA.put('/api/sync/config', { updated_at: '2020-01-01T00:00:00Z' }), 'updated_at');
  expectInvalid(await devA.put('/api/sync/config', [false]));
  assert.deepEqual(expectOk(await devA.get('/api/sync/config')), before);
});

test('config per type: GET and PUT {enabled} → {type, enabled}', async () => {
  for (const t of TYPES) {
    assert.deepEqual(expectOk(await devA.get(`/api/sync/config/data-type/${t}`)), { type: t, enabled: true });
  }
  assert.deepEqual(expectOk(await web.put('/api/sync/config/data-type/environment', { enabled: false })), { type: 'environment', enabled: false });
  assert.deepEqual(expectOk(await devB.get('/api/sync/config/data-type/environment')), { type: 'environment', enabled: false });
  assert.equal(expectOk(await devA.get('/api/sync/config')).environment, false);
  assert.deepEqual(expectOk(await devA.put('/api/sync/config/data-type/environment', { enabled: true })), { type: 'environment', enabled: true });
  expectError(await devA.get('/api/sync/config/data-type/passwords'), 400, 'invalid_type');
  expectError(await devA.put('/api/sync/config/data-type/passwords', { enabled: false }), 400, 'invalid_type');
  expectInvalid(await devA.put('/api/sync/config/data-type/history', { enabled: 'no' }), 'enabled');
  expectInvalid(await devA.put('/api/sync/config/data-type/history', {}), 'enabled');
  expectInvalid(await devA.put('/api/sync/config/data-type/history', { enabled: false, type: 'history' }), 'type');
  assert.equal(expectOk(await devA.get('/api/sync/config')).history, true);
});

test('config changes are audited (config_updated with the device and user agent)', async () => {
  expectOk(await devA.put('/api/sync/config', { setting: false }));
  expectOk(await devA.put('/api/sync/config', { setting: true }));
  const ev = expectOk(await web.get('/api/audit?limit=5')).events;
  const row = ev.find((e) => e.event_type === 'config_updated');
  assert.ok(row, 'config_updated');
  assert.equal(row.device_id, devA.deviceId);
  assert.equal(row.user_agent, UA_A);
  assert.equal(row.ip, '127.0.0.1');
});

test('config routes need credentials', async () => {
  const anon = web.clone();
  anon.cookies.clear();
  expectError(await anon.get('/api/sync/config'), 401, 'unauthorized');
  expectError(await anon.put('/api/sync/config', { history: false }), 401, 'unauthorized');
  expectError(await anon.get('/api/sync/config/data-type/history'), 401, 'unauthorized');
  expectError(await anon.put('/api/sync/config/data-type/history', { enabled: false }), 401, 'unauthorized');
});

// ---- devices --------------------------------------------------------------

const DEVICE_KEYS = ['app_version', 'created_at', 'current', 'id', 'last_ip', 'last_seen_at', 'name', 'platform', 'status'];

test('devices: the list shows each device; current marks the caller\'s', async () => {
  const a = expectOk(await devA.get('/api/devices'));
  assert.deepEqual(Object.keys(a), ['devices']);
  assert.equal(a.devices.length, 2);
  for (const d of a.devices) {
    assert.deepEqual(Object.keys(d).sort(), DEVICE_KEYS);
    assert.equal(d.status, 'active');
    expectTimestamp(d.created_at, 'created_at');
    expectTimestamp(d.last_seen_at, 'last_seen_at');
    assert.equal(d.last_ip, '127.0.0.1');
  }
  const rowA = a.devices.find((d) => d.id === devA.deviceId);
  const rowB = a.devices.find((d) => d.id === devB.deviceId);
  assert.equal(rowA.current, true);
  assert.equal(rowB.current, false);
  assert.equal(rowA.name, 'Laptop A');
  assert.equal(rowA.platform, 'macos');
  assert.equal(rowA.app_version, '1.0.0');
  const b = expectOk(await devB.get('/api/devices'));
  assert.equal(b.devices.find((d) => d.id === devB.deviceId).current, true);
  assert.equal(b.devices.find((d) => d.id === devA.deviceId).current, false);
  const w = expectOk(await web.get('/api/devices'));
  assert.ok(w.devices.every((d) => d.current === false), 'no device is current for a web session');
  assert.ok(!JSON.stringify(w).includes(devA.token), 'no tokens in the list');
});

test('devices: DELETE by cookie revokes at once, keeps the row as revoked, sends device_revoked', async () => {
  const c = await deviceLogin(web, { device_name: 'to-revoke' });
  expectOk(await c.get('/api/sync/config'));
  const ev0 = expectOk(await devA.get('/api/sync/events?after=0&wait=0'));
  const r = await web.del(`/api/devices/${c.deviceId}`);
  assert.deepEqual(expectOk(r), {});
  expectError(await c.get('/api/sync/config'), 401, 'unauthorized');
  expectError(await c.post('/api/sync/rotate'), 401, 'unauthorized');
  const row = expectOk(await web.get('/api/devices')).devices.find((d) => d.id === c.deviceId);
  assert.ok(row, 'a revoked device stays listed');
  assert.equal(row.status, 'revoked');
  const ev = expectOk(await devA.get(`/api/sync/events?after=${ev0.next}&wait=0`));
  assert.ok(ev.events.some((e) => e.type === 'device_revoked'), JSON.stringify(ev.events));
  const audit = expectOk(await web.get('/api/audit?limit=5')).events;
  assert.ok(audit.some((e) => e.event_type === 'device_revoked'));
});

test('devices: DELETE by bearer of another device; unknown ids 404', async () => {
  const c = await deviceLogin(web, { device_name: 'to-revoke-2' });
  assert.deepEqual(expectOk(await devA.del(`/api/devices/${c.deviceId}`)), {});
  expectError(await c.get('/api/sync/config'), 401, 'unauthorized');
  for (const id of ['does-not-exist', '0', '999999', 'x'.repeat(40)]) {
    expectError(await web.del(`/api/devices/${id}`), 404, 'not_found');
  }
  const anon = web.clone();
  anon.cookies.clear();
  expectError(await anon.del(`/api/devices/${devB.deviceId}`), 401, 'unauthorized');
  expectError(await anon.get('/api/devices'), 401, 'unauthorized');
  expectOk(await devB.get('/api/sync/config'));
});

test('devices: a device can revoke itself through DELETE /api/devices/:id', async () => {
  const c = await deviceLogin(web, { device_name: 'self' });
  assert.deepEqual(expectOk(await c.del(`/api/devices/${c.deviceId}`)), {});
  expectError(await c.get('/api/devices'), 401, 'unauthorized');
  assert.equal(expectOk(await web.get('/api/devices')).devices.find((d) => d.id === c.deviceId).status, 'revoked');
});

test('devices: last_seen_at is between created_at and now', async () => {
  expectOk(await devB.get('/api/sync/config'));
  const row = expectOk(await web.get('/api/devices')).devices.find((d) => d.id === devB.deviceId);
  assert.ok(Date.parse(row.last_seen_at) >= Date.parse(row.created_at), `${row.last_seen_at} >= ${row.created_at}`);
  assert.ok(Date.parse(row.last_seen_at) <= Date.now() + 2000);
});

// ---- audit ----------------------------------------------------------------

const AUDIT_KEYS = ['created_at', 'device_id', 'event_type', 'id', 'ip', 'metadata', 'user_agent'];

test('audit: newest first, fields, the device flow events', async () => {
  const d = expectOk(await web.get('/api/audit'));
  assert.deepEqual(Object.keys(d), ['events']);
  const ev = d.events;
  for (const e of ev) {
    assert.deepEqual(Object.keys(e).sort(), AUDIT_KEYS);
    expectTimestamp(e.created_at);
    assert.ok(e.metadata === null || typeof e.metadata === 'object');
  }
  for (let i = 1; i < ev.length; i++) {
    assert.ok(Date.parse(ev[i - 1].created_at) >= Date.parse(ev[i].created_at), 'newest first');
    if (typeof ev[i].id === 'number') assert.ok(ev[i - 1].id > ev[i].id, 'ids descend');
  }
  const types = ev.map((e) => e.event_type);
  for (const t of ['signup', 'token_claimed', 'device_connected', 'config_updated', 'device_revoked']) {
    assert.ok(types.includes(t), `audit has ${t}`);
  }
  const connected = ev.filter((e) => e.event_type === 'device_connected').map((e) => e.device_id);
  assert.ok(connected.includes(devA.deviceId) && connected.includes(devB.deviceId));
  const signupRow = ev.find((e) => e.event_type === 'signup');
  assert.equal(signupRow.user_agent, UA_WEB);
  assert.equal(signupRow.device_id, null);
});

test('audit: last 50 by default, ?limit up to 200, ?before pages back', async () => {
  for (let i = 0; i < 60; i++) expectOk(await devB.put('/api/sync/config', { setting: i % 2 === 0 }));
  const def = expectOk(await devA.get('/api/audit')).events;
  assert.equal(def.length, 50);
  const all = expectOk(await devA.get('/api/audit?limit=200')).events;
  assert.ok(all.length > 60 && all.length <= 200, `limit=200 gave ${all.length}`);
  assert.deepEqual(def, all.slice(0, 50));
  assert.equal(expectOk(await web.get('/api/audit?limit=3')).events.length, 3);
  // paging with before
  const seen = [];
  let before;
  for (;;) {
    const q = before === undefined ? '/api/audit?limit=20' : `/api/audit?limit=20&before=${encodeURIComponent(before)}`;
    const page = expectOk(await web.get(q)).events;
    if (page.length === 0) break;
    seen.push(...page);
    before = page[page.length - 1].id;
    assert.ok(seen.length <= all.length + 5, 'paging terminates');
  }
  assert.deepEqual(seen.map((e) => e.id), all.map((e) => e.id), 'pages are the full list, in order, no overlap');
  for (const bad of ['0', '201', '-1', 'abc', '1.5']) {
    expectInvalid(await web.get(`/api/audit?limit=${bad}`), 'limit');
  }
});

test('audit rows older than AUDIT_RETENTION_DAYS are pruned, every account\'s; 0 keeps them all', async () => {
  let s = await startServer();
  const w1 = await signup(s);
  const w2 = await signup(s);
  for (const w of [w1, w2]) expectOk(await w.put('/api/sync/config', { history: false }));
  const ids = (w) => w.get('/api/audit?limit=200').then((r) => expectOk(r).events.map((e) => e.id));
  const [a1, a2] = [await ids(w1), await ids(w2)];
  assert.ok(a1.length >= 2 && a2.length >= 2);
  const total = Number(sql(s, 'SELECT count(*) FROM audit'));
  await s.stop();
  // each account's signup row is 400 days old
  const old = [a1[a1.length - 1], a2[a2.length - 1]];
  sql(s, `UPDATE audit SET created_at = created_at - 34560000000 WHERE id IN (${old.join(',')})`);
  // kept forever with 0 (once the start-up housekeeping has run)
  const housekept = (srv) => until(async () => await metric(srv, 'flamingo_housekeeping_runs_total') >= 1,
    10000 * SLOW, 'the start-up housekeeping');
  s = await startServer({ dir: s.dir, env: { AUDIT_RETENTION_DAYS: '0' } });
  await housekept(s);
  assert.equal(await metric(s, 'flamingo_pruned_rows_total{table="audit"}'), 0);
  assert.equal(Number(sql(s, 'SELECT count(*) FROM audit')), total, 'nothing pruned with 0');
  await s.stop();
  // the default (365 days): the start-up housekeeping drops exactly those
  s = await startServer({ dir: s.dir });
  await housekept(s);
  assert.equal(await metric(s, 'flamingo_pruned_rows_total{table="audit"}'), 2);
  assert.equal(Number(sql(s, 'SELECT count(*) FROM audit')), total - 2);
  for (const [w, before] of [[w1, a1], [w2, a2]]) {
    w.srv = s;
    assert.deepEqual(await ids(w), before.slice(0, -1), 'the old row went, the rest stayed in order');
  }
  await s.stop();
});

test('audit needs credentials', async () => {
  const anon = web.clone();
  anon.cookies.clear();
  expectError(await anon.get('/api/audit'), 401, 'unauthorized');
});

finalChecks(() => [srv]);
