// Events: the long-poll (answers at once, waits, is woken by another
// client's write, times out empty, LONGPOLL_MAX_SECONDS) and the SSE stream
// (wire format, Last-Event-ID, end on revocation).

import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { startServer, stopAll, test, sleep } from './lib/server.mjs';
import {
  expectOk, expectError, expectInvalid, expectTimestamp, signup, deviceLogin, b64, randomBytes,
} from './lib/client.mjs';
import { finalChecks } from './lib/checks.mjs';

const LONGPOLL_MAX = 3;
let srv;
let web;
let devA;
let devB;
const extra = [];

before(async () => {
  srv = await startServer({ env: {} });
  web = await signup(srv);
  devA = await deviceLogin(web, { device_name: 'A' });
  devB = await deviceLogin(web, { device_name: 'B' });
});
after(stopAll);

const EVENT_KEYS = new Set(['id', 'type', 'data_type', 'version', 'origin_device_id', 'device_id', 'created_at']);

function checkEvent(e) {
  for (const k of Object.keys(e)) assert.ok(EVENT_KEYS.has(k), `unexpected event field ${k}`);
  assert.ok(Number.isInteger(e.id) && e.id > 0, `event id ${e.id}`);
  assert.ok(['data_updated', 'config_changed', 'device_revoked', 'key_rotated'].includes(e.type), e.type);
  expectTimestamp(e.created_at);
}

async function poll(c, after, wait = 0, timeoutMs = 30000) {
  const t0 = Date.now();
  const r = await c.get(`/api/sync/events?after=${after}&wait=${wait}`, { timeoutMs });
  const d = expectOk(r);
  return { ...d, ms: Date.now() - t0 };
}

let last = 0;

test('a fresh user has no events: {events: [], next: after}', async () => {
  const d = await poll(devA, 0);
  assert.deepEqual({ events: d.events, next: d.next }, { events: [], next: 0 });
});

test('a write appends data_updated, seen by every device, the originating one included', async () => {
  const w = expectOk(await devA.put('/api/sync/data/history', { encrypted_data: b64(randomBytes(10)) }));
  for (const c of [devA, devB, web]) {
    const d = await poll(c, 0);
    assert.equal(d.events.length, 1, JSON.stringify(d));
    const e = d.events[0];
    checkEvent(e);
    assert.equal(e.type, 'data_updated');
    assert.equal(e.data_type, 'history');
    assert.equal(e.version, w.version);
    assert.equal(e.origin_device_id, devA.deviceId);
    assert.equal(d.next, e.id);
    last = d.next;
  }
});

test('events newer than after answer at once even with a long wait', async () => {
  const d = await poll(devB, 0, 20);
  assert.equal(d.events.length, 1);
  assert.ok(d.ms < 1500, `answered in ${d.ms} ms`);
});

test('a waiting long-poll is woken by another client\'s write well before wait ends', async () => {
  const started = Date.now();
  const waiting = poll(devB, last, 20);
  await sleep(600);
  const t0 = Date.now();
  const w = expectOk(await devA.put('/api/sync/data/environment', { encrypted_data: b64(randomBytes(10)) }));
  const d = await waiting;
  const after = Date.now() - t0;
  assert.ok(after < 2000, `woken ${after} ms after the PUT`);
  assert.ok(Date.now() - started >= 500, 'it did wait');
  assert.equal(d.events.length, 1, JSON.stringify(d));
  assert.equal(d.events[0].type, 'data_updated');
  assert.equal(d.events[0].data_type, 'environment');
  assert.equal(d.events[0].version, w.version);
  assert.ok(d.events[0].id > last);
  assert.equal(d.next, d.events[0].id);
  last = d.next;
});

test('several waiters (cookie and bearer) are all woken by one write; config_changed', async () => {
  const ws = [poll(devA, last, 20), poll(devB, last, 20), poll(web, last, 20)];
  await sleep(500);
  const t0 = Date.now();
  expectOk(await web.put('/api/sync/config', { secret: false }));
  const res = await Promise.all(ws);
  for (const d of res) {
    assert.ok(Date.now() - t0 < 2500, 'woken promptly');
    assert.equal(d.events.length, 1, JSON.stringify(d));
    assert.equal(d.events[0].type, 'config_changed');
    checkEvent(d.events[0]);
  }
  last = res[0].next;
  expectOk(await web.put('/api/sync/config', { secret: true }));
  last = (await poll(devA, last)).next;
});

test('wait elapses: {events: [], next: after} after about wait seconds', async () => {
  const d = await poll(devA, last, 1);
  assert.deepEqual({ events: d.events, next: d.next }, { events: [], next: last });
  assert.ok(d.ms >= 900 && d.ms < 3000, `returned after ${d.ms} ms`);
});

test('wait=0 answers at once', async () => {
  const d = await poll(devA, last, 0);
  assert.deepEqual(d.events, []);
  assert.ok(d.ms < 1000);
});

test('wait=60 (the default maximum) is accepted and woken by a write', async () => {
  const waiting = poll(devA, last, 60, 70000);
  await sleep(300);
  expectOk(await devB.put('/api/sync/data/secret', { encrypted_data: b64('s') }));
  const d = await waiting;
  assert.equal(d.events.length, 1);
  assert.ok(d.ms < 3000);
  last = d.next;
});

test('LONGPOLL_MAX_SECONDS bounds how long a poll is held', async () => {
  const s2 = await startServer({ env: { LONGPOLL_MAX_SECONDS: String(LONGPOLL_MAX) } });
  extra.push(s2);
  const u = await signup(s2);
  const t0 = Date.now();
  const r = await u.get('/api/sync/events?after=0&wait=30', { timeoutMs: 40000 });
  const ms = Date.now() - t0;
  assert.ok(ms < (LONGPOLL_MAX + 2) * 1000, `held ${ms} ms with LONGPOLL_MAX_SECONDS=${LONGPOLL_MAX}`);
  if (r.status === 200) {
    assert.deepEqual(r.data, { events: [], next: 0 }); // clamped
  } else {
    expectInvalid(r, 'wait'); // or refused
  }
  const ok = await poll(u, 0, LONGPOLL_MAX, 10000);
  assert.deepEqual({ events: ok.events, next: ok.next }, { events: [], next: 0 });
  assert.ok(ok.ms >= (LONGPOLL_MAX - 0.2) * 1000, `waited ${ok.ms} ms`);
});

test('ids grow; after=k returns only newer events, in order', async () => {
  for (let i = 0; i < 3; i++) expectOk(await devB.put('/api/sync/data/setting', { encrypted_data: b64(`s${i}`) }));
  expectOk(await devB.del('/api/sync/data/setting'));
  const all = (await poll(web, 0)).events;
  for (let i = 1; i < all.length; i++) assert.ok(all[i].id > all[i - 1].id, 'ascending ids');
  const tail = all.slice(-4);
  assert.deepEqual(tail.map((e) => [e.type, e.data_type, e.version, e.origin_device_id]), [
    ['data_updated', 'setting', 1, devB.deviceId], ['data_updated', 'setting', 2, devB.deviceId],
    ['data_updated', 'setting', 3, devB.deviceId], ['data_updated', 'setting', 4, devB.deviceId],
  ]);
  const k = all[all.length - 3].id;
  const newer = await poll(web, k);
  assert.deepEqual(newer.events, all.slice(-2));
  assert.equal(newer.next, all[all.length - 1].id);
  last = newer.next;
});

test('a web write has no origin device', async () => {
  expectOk(await web.put('/api/sync/data/collection', { encrypted_data: b64('c') }));
  const d = await poll(devA, last);
  assert.equal(d.events.length, 1);
  assert.ok(d.events[0].origin_device_id === null || d.events[0].origin_device_id === undefined);
  last = d.next;
});

test('config_changed also comes from the per-type config route', async () => {
  expectOk(await devA.put('/api/sync/config/data-type/collection', { enabled: false }));
  expectOk(await devA.put('/api/sync/config/data-type/collection', { enabled: true }));
  const d = await poll(devB, last);
  assert.deepEqual(d.events.map((e) => e.type), ['config_changed', 'config_changed']);
  assert.equal(d.events[0].origin_device_id, devA.deviceId);
  last = d.next;
});

test('a waiting long-poll of a device that gets revoked returns promptly with device_revoked', async () => {
  const c = await deviceLogin(web, { device_name: 'poller' });
  const t0 = Date.now();
  const waiting = poll(c, last, 20);
  await sleep(400);
  expectOk(await web.del(`/api/devices/${c.deviceId}`));
  const d = await waiting;
  assert.ok(Date.now() - t0 < 3000, 'promptly');
  assert.ok(d.events.some((e) => e.type === 'device_revoked'), JSON.stringify(d.events));
  expectError(await c.get(`/api/sync/events?after=${d.next}&wait=0`), 401, 'unauthorized');
  last = (await poll(devA, last)).next;
});

test('40 waiting long-polls do not hold up other requests', async () => {
  const polls = Array.from({ length: 40 }, (_, i) => poll(i % 2 ? devA : devB, last, 20));
  await sleep(500);
  const lat = [];
  for (let i = 0; i < 5; i++) {
    const t0 = Date.now();
    expectOk(await devA.get('/api/sync/config'));
    lat.push(Date.now() - t0);
  }
  const t0 = Date.now();
  expectOk(await web.put('/api/sync/data/history', { encrypted_data: b64('wake-all') }));
  const res = await Promise.all(polls);
  assert.ok(Date.now() - t0 < 3000, `all 40 woken in ${Date.now() - t0} ms`);
  for (const d of res) assert.equal(d.events.length, 1);
  assert.ok(Math.max(...lat) < 500, `requests during 40 long-polls took ${lat} ms`);
  last = res[0].next;
});

test('bad queries answer 400 invalid_request; no credentials 401', async () => {
  expectInvalid(await devA.get('/api/sync/events?after=abc&wait=0'), 'after');
  expectInvalid(await devA.get('/api/sync/events?after=-1&wait=0'), 'after');
  expectInvalid(await devA.get('/api/sync/events?after=0&wait=abc'), 'wait');
  expectInvalid(await devA.get('/api/sync/events?after=0&wait=-1'), 'wait');
  const anon = web.clone();
  anon.cookies.clear();
  expectError(await anon.get('/api/sync/events?after=0&wait=0'), 401, 'unauthorized');
});

finalChecks(() => [srv, ...extra]);
