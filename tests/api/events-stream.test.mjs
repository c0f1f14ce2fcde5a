// The event stream (Server-Sent Events): wire format and order, resuming
// with Last-Event-ID and ?after= without loss or duplicates, revocation
// ending a stream (and rotation not), heartbeats, the stream limits, a
// reader too slow to drain, retention and resync, CORS, shutdown, and a
// thousand concurrent streams all receiving one broadcast. The `eventsource`
// package from npm is the real client where a browser-like one matters.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after } from 'node:test';
import { EventSource } from 'eventsource';
import { startServer, stopAll, test, sleep, SLOW, until, sql, metric } from './lib/server.mjs';
import {
  expectOk, expectError, expectRetryAfter, signup, deviceLogin, b64, randomBytes, openStream,
} from './lib/client.mjs';

after(stopAll);

const put = (c, type = 'history') => c.put(`/api/sync/data/${type}`, { encrypted_data: b64(randomBytes(24)) }).then((r) => expectOk(r));

/** An EventSource (the npm client) with the device's bearer token. */
function eventSource(srv, dev, { url = '/api/sync/events/stream' } = {}) {
  return new EventSource(srv.url + url, {
    fetch: (input, init) => fetch(input, {
      ...init,
      headers: { ...init.headers, authorization: `Bearer ${dev.bearer}` },
    }),
  });
}

/** Collects the named events of an EventSource. */
function collect(es, types = ['data_updated', 'config_changed', 'device_revoked', 'key_rotated', 'resync']) {
  const got = [];
  const waiters = [];
  for (const t of types) {
    es.addEventListener(t, (m) => {
      got.push({ type: t, id: m.lastEventId, data: JSON.parse(m.data) });
      for (const w of waiters.slice()) w();
    });
  }
  got.until = (pred, ms = 5000 * SLOW) => new Promise((resolve, reject) => {
    const check = () => { if (pred(got)) { done(); resolve(got); return true; } return false; };
    const timer = setTimeout(() => { done(); reject(new Error(`timed out; got ${JSON.stringify(got)}`)); }, ms);
    const w = () => check();
    const done = () => { clearTimeout(timer); waiters.splice(waiters.indexOf(w), 1); };
    waiters.push(w);
    check();
  });
  return got;
}

function opened(es) {
  return new Promise((resolve, reject) => {
    es.onopen = () => resolve();
    es.onerror = (e) => reject(new Error(`EventSource error: ${e.message || e.code}`));
  });
}

test('events arrive in order with id, event type and the JSON event as data', async () => {
  const srv = await startServer();
  const web = await signup(srv);
  const dev = await deviceLogin(web, { device_name: 'A' });
  const es = eventSource(srv, dev);
  const got = collect(es);
  await opened(es);
  const writes = [];
  for (const t of ['history', 'environment', 'secret', 'collection', 'setting', 'history']) {
    writes.push({ type: t, ...(await put(dev, t)) });
  }
  expectOk(await web.put('/api/sync/config', { secret: false }));
  await got.until((g) => g.length >= 7);
  es.close();
  assert.equal(got.length, 7, JSON.stringify(got));
  const ids = got.map((e) => Number(e.id));
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], `ids grow: ${ids}`);
  for (let i = 0; i < 6; i++) {
    assert.equal(got[i].type, 'data_updated');
    assert.equal(got[i].data.type, 'data_updated');
    assert.equal(got[i].data.data_type, writes[i].type);
    assert.equal(got[i].data.version, writes[i].version);
    assert.equal(got[i].data.id, ids[i], 'the data carries the same id as the id: line');
    assert.equal(got[i].data.origin_device_id, dev.deviceId);
  }
  assert.equal(got[6].type, 'config_changed');
});

test('the stream answers text/event-stream, no-store, CORS, and opens with a retry hint', async () => {
  const srv = await startServer();
  const web = await signup(srv);
  const dev = await deviceLogin(web);
  const s = await openStream(dev);
  assert.equal(s.res.status, 200);
  assert.match(s.res.headers.get('content-type'), /^text\/event-stream/);
  assert.equal(s.res.headers.get('cache-control'), 'no-store');
  assert.equal(s.res.headers.get('access-control-allow-origin'), '*');
  assert.equal(s.res.headers.get('x-content-type-options'), 'nosniff');
  await until(() => s.comments.length > 0, 3000 * SLOW, 'the first comment');
  s.close();
  const pre = await fetch(`${srv.url}/api/sync/events/stream`, {
    method: 'OPTIONS',
    headers: {
      origin: 'app://flamingo', 'access-control-request-method': 'GET',
      'access-control-request-headers': 'authorization, last-event-id',
    },
  });
  assert.equal(pre.status, 204);
  assert.match(pre.headers.get('access-control-allow-headers'), /Last-Event-ID/i);
  assert.match(pre.headers.get('access-control-allow-headers'), /Authorization/i);
});

test('without credentials, with a bad token or a bad Last-Event-ID the stream is refused', async () => {
  const srv = await startServer();
  const web = await signup(srv);
  const dev = await deviceLogin(web);
  let r = await fetch(`${srv.url}/api/sync/events/stream`);
  assert.equal(r.status, 401);
  assert.equal((await r.json()).error, 'unauthorized');
  r = await fetch(`${srv.url}/api/sync/events/stream`, { headers: { authorization: `Bearer flm_sync_${'0'.repeat(32)}` } });
  assert.equal(r.status, 401);
  await r.arrayBuffer();
  for (const bad of ['abc', '-1', '1e3', '5x', '0x10', '99999999999999999999']) {
    r = await fetch(`${srv.url}/api/sync/events/stream`, { headers: { authorization: `Bearer ${dev.bearer}`, 'last-event-id': bad } });
    assert.equal(r.status, 400, `Last-Event-ID ${bad}`);
    assert.equal((await r.json()).error, 'invalid_request');
  }
  r = await fetch(`${srv.url}/api/sync/events/stream?after=x`, { headers: { authorization: `Bearer ${dev.bearer}` } });
  assert.equal(r.status, 400);
  await r.arrayBuffer();
});

test('a reconnect with Last-Event-ID (or ?after=) gets exactly the missed events', async () => {
  const srv = await startServer();
  const web = await signup(srv);
  const dev = await deviceLogin(web);
  const s1 = await openStream(dev);
  await put(dev, 'history');
  await put(dev, 'secret');
  const second = await s1.waitFor((e) => e.json?.data_type === 'secret', 5000 * SLOW);
  assert.ok(second, 'the second event arrived');
  s1.close();
  await s1.ended;
  const lastSeen = Number(second.id);
  // while disconnected
  const missed = [];
  for (const t of ['environment', 'collection', 'setting']) missed.push(await put(dev, t));
  // EventSource reconnects with Last-Event-ID: the npm client does it on
  // its own after an error; a fetch stands in here to control the moment
  const s2 = await openStream(dev, { lastEventId: lastSeen });
  const s3 = await openStream(dev, { path: `/api/sync/events/stream?after=${lastSeen}` });
  for (const s of [s2, s3]) {
    await until(() => s.events.length >= 3, 5000 * SLOW, 'three missed events');
    const third = Number(s.events[2].id);
    await put(dev, 'history').then(() => s.waitFor((e) => Number(e.id) > third && e.json?.data_type === 'history', 5000 * SLOW));
  }
  for (const s of [s2, s3]) {
    s.close();
    const ids = s.events.map((e) => Number(e.id));
    assert.equal(new Set(ids).size, ids.length, `no duplicates: ${ids}`);
    assert.ok(ids.every((id) => id > lastSeen), `nothing already seen: ${ids}`);
    assert.deepEqual(s.events.slice(0, 3).map((e) => e.json.data_type), ['environment', 'collection', 'setting']);
    assert.deepEqual(s.events.slice(0, 3).map((e) => e.json.version), missed.map((m) => m.version));
  }
  // Last-Event-ID wins over ?after= (ids are not dense on every backend:
  // the ids themselves say where to resume)
  const [, m2, m3] = s2.events.map((e) => Number(e.id));
  const s4 = await openStream(dev, { lastEventId: m2, path: '/api/sync/events/stream?after=0' });
  await until(() => s4.events.length >= 1, 5000 * SLOW, 'an event');
  s4.close();
  assert.equal(Number(s4.events[0].id), m3);
});

test('the npm EventSource resumes by itself after the server restarts, with no loss and no duplicates', async () => {
  const srv = await startServer();
  const web = await signup(srv);
  const dev = await deviceLogin(web);
  const es = eventSource(srv, dev);
  const got = collect(es);
  await opened(es);
  await put(dev, 'history');
  await got.until((g) => g.length >= 1);
  // the server goes away and comes back on the same port and database
  await srv.stop();
  const port = new URL(srv.url).port;
  const srv2 = await startServer({ dir: srv.dir, args: ['--listen', `127.0.0.1:${port}`] });
  assert.equal(srv2.url, srv.url);
  dev.srv = srv2;
  await put(dev, 'secret');
  await got.until((g) => g.length >= 2, 10000 * SLOW);
  es.close();
  assert.deepEqual(got.map((g) => g.data.data_type), ['history', 'secret']);
});

test('a stream ends after STREAM_MAX_SECONDS; EventSource reconnects with Last-Event-ID and misses nothing', async () => {
  const srv = await startServer({ env: { STREAM_MAX_SECONDS: '1' } });
  const web = await signup(srv);
  const dev = await deviceLogin(web);
  const es = eventSource(srv, dev);
  const got = collect(es);
  let opens = 0;
  await opened(es);
  es.onopen = () => { opens++; };
  es.onerror = () => {};
  const types = ['history', 'environment', 'secret', 'collection', 'setting'];
  const t0 = Date.now();
  // writes spread over several stream lifetimes and reconnect gaps
  for (const t of types) {
    await put(dev, t);
    await sleep(900);
  }
  await got.until((g) => g.length >= types.length, 10000 * SLOW);
  es.close();
  assert.ok(opens >= 1, `reconnected (${opens} times in ${Date.now() - t0} ms)`);
  assert.deepEqual(got.map((g) => g.data.data_type), types, 'each event once, in order');
});

test('a revoked device gets device_revoked naming it, then its stream ends; other devices stream on', async () => {
  const srv = await startServer();
  const web = await signup(srv);
  const a = await deviceLogin(web, { device_name: 'A' });
  const b = await deviceLogin(web, { device_name: 'B' });
  const sa = await openStream(a);
  const sb = await openStream(b);
  await until(() => sa.comments.length > 0 && sb.comments.length > 0, 3000 * SLOW, 'both streams open');
  expectOk(await web.del(`/api/devices/${a.deviceId}`));
  const ev = await sa.waitFor((e) => e.event === 'device_revoked', 5000 * SLOW);
  assert.ok(ev, 'device_revoked reached the revoked device');
  assert.equal(ev.json.device_id, a.deviceId);
  await Promise.race([sa.ended, sleep(5000 * SLOW).then(() => { throw new Error('the revoked stream did not end'); })]);
  assert.equal(sa.events[sa.events.length - 1].event, 'device_revoked', 'nothing after device_revoked');
  // B saw the revocation of A and keeps streaming
  const evb = await sb.waitFor((e) => e.event === 'device_revoked', 5000 * SLOW);
  assert.equal(evb.json.device_id, a.deviceId);
  await put(b, 'history');
  assert.ok(await sb.waitFor((e) => e.event === 'data_updated', 5000 * SLOW));
  assert.equal(sb.endedFlag, false);
  // the revoked device cannot open a new stream
  const r = await fetch(`${srv.url}/api/sync/events/stream`, { headers: { authorization: `Bearer ${a.bearer}` } });
  assert.equal(r.status, 401);
  await r.arrayBuffer();
  sb.close();
});

test('a device that revokes itself (/api/sync/revoke) ends its own stream', async () => {
  const srv = await startServer();
  const web = await signup(srv);
  const a = await deviceLogin(web);
  const sa = await openStream(a);
  await until(() => sa.comments.length > 0, 3000 * SLOW, 'stream open');
  expectOk(await a.post('/api/sync/revoke', {}));
  const ev = await sa.waitFor((e) => e.event === 'device_revoked', 5000 * SLOW);
  assert.equal(ev?.json.device_id, a.deviceId);
  await Promise.race([sa.ended, sleep(5000 * SLOW).then(() => { throw new Error('stream did not end'); })]);
});

test('rotating the session token keeps the stream of that session alive', async () => {
  // heartbeats recheck the credentials: several must pass after the rotation
  const srv = await startServer({ env: { STREAM_HEARTBEAT_SECONDS: '1' } });
  const web = await signup(srv);
  const a = await deviceLogin(web);
  const sa = await openStream(a);
  await until(() => sa.comments.length > 0, 3000 * SLOW, 'stream open');
  const rot = expectOk(await a.post('/api/sync/rotate', {}));
  a.bearer = rot.session_token;
  srv.addSecret(rot.session_token);
  await put(a, 'history'); // uses the new token: the old one is now dead
  assert.ok(await sa.waitFor((e) => e.event === 'data_updated', 5000 * SLOW));
  await put(a, 'secret');
  assert.ok(await sa.waitFor((e) => e.json?.data_type === 'secret', 5000 * SLOW));
  const pings = sa.comments.filter((c) => c === ': ping').length;
  await until(() => sa.endedFlag || sa.comments.filter((c) => c === ': ping').length >= pings + 2,
    8000 * SLOW, 'two heartbeats after the rotation');
  assert.equal(sa.endedFlag, false, 'the rotated session\'s stream survives its heartbeats');
  sa.close();
});

test('an idle stream gets a comment heartbeat every STREAM_HEARTBEAT_SECONDS', async () => {
  const srv = await startServer({ env: { STREAM_HEARTBEAT_SECONDS: '1' } });
  const web = await signup(srv);
  const a = await deviceLogin(web);
  const s = await openStream(a);
  await until(() => s.comments.filter((c) => c === ': ping').length >= 2, 6000 * SLOW, 'two heartbeats');
  s.close();
});

test('a dashboard (cookie) stream ends once its web session is signed out', async () => {
  const srv = await startServer({ env: { STREAM_HEARTBEAT_SECONDS: '1' } });
  const web = await signup(srv);
  const other = web.clone();
  const s = await openStream(web);
  await until(() => s.comments.length > 0, 3000 * SLOW, 'stream open');
  expectOk(await other.post('/api/auth/logout', {}));
  await Promise.race([s.ended, sleep(6000 * SLOW).then(() => { throw new Error('stream did not end'); })]);
});

test('STREAMS_PER_USER and STREAMS_MAX answer 429 rate_limited with Retry-After; a closed stream frees its place', async () => {
  // a closed client is noticed at the next write: heartbeats make it soon
  const srv = await startServer({ env: { STREAMS_PER_USER: '2', STREAMS_MAX: '3', STREAM_HEARTBEAT_SECONDS: '1' } });
  const w1 = await signup(srv);
  const w2 = await signup(srv);
  const a = await deviceLogin(w1);
  const a2 = await deviceLogin(w1);
  const b = await deviceLogin(w2);
  const s1 = await openStream(a);
  const s2 = await openStream(a);
  // another device of the account: at the account's limit
  const r = await a2.get('/api/sync/events/stream');
  expectError(r, 429, 'rate_limited');
  expectRetryAfter(r);
  const s3 = await openStream(b);
  assert.equal(s3.res.status, 200);
  const r2 = await b.get('/api/sync/events/stream');
  expectError(r2, 429, 'rate_limited');
  assert.match(r2.message, /server/);
  assert.equal(await metric(srv, 'flamingo_event_streams'), 3);
  s1.close();
  await until(async () => (await metric(srv, 'flamingo_event_streams')) === 2, 5000 * SLOW, 'the stream count to drop');
  const s4 = await openStream(a2);
  assert.equal(s4.res.status, 200);
  for (const s of [s2, s3, s4]) s.close();
});

test('at the account\'s limit, a new stream of the same device or browser session takes the place of its oldest', async () => {
  // heartbeats far away: a closed client would hold its place a long time
  const srv = await startServer({ env: { STREAMS_PER_USER: '2', STREAM_HEARTBEAT_SECONDS: '300' } });
  const web = await signup(srv);
  const a = await deviceLogin(web);
  const b = await deviceLogin(web);
  const s1 = await openStream(a);
  const s2 = await openStream(a);
  // a third stream of device a: s1 (the oldest) ends, s2 stays
  const s3 = await openStream(a);
  assert.equal(s3.res.status, 200);
  await until(() => s1.endedFlag, 5000 * SLOW, 'the oldest stream to end');
  await until(async () => (await metric(srv, 'flamingo_event_streams')) === 2, 5000 * SLOW, 'two streams');
  assert.equal(s2.endedFlag, false);
  // device b is another credential: 429, and nobody is displaced
  expectError(await b.get('/api/sync/events/stream'), 429, 'rate_limited');
  assert.equal(s2.endedFlag || s3.endedFlag, false);
  // the survivors still stream
  await put(b, 'history');
  for (const s of [s2, s3]) {
    assert.ok(await s.waitFor((e) => e.json?.data_type === 'history', 5000 * SLOW), 'the event reaches both');
  }
  s2.close();
  s3.close();
  await until(async () => (await metric(srv, 'flamingo_event_streams')) === 0 ||
    (await put(b, 'secret'), false), 10000 * SLOW, 'the closed streams to go');
  // a browser session reloading the dashboard: same cookie, same rule
  const t1 = await openStream(web);
  const t2 = await openStream(web);
  const t3 = await openStream(web);
  assert.equal(t3.res.status, 200);
  await until(() => t1.endedFlag, 5000 * SLOW, 'the oldest dashboard stream to end');
  assert.equal(t2.endedFlag, false);
  // another browser (another session) of the same account: 429
  const other = web.clone();
  other.cookies.clear();
  expectOk(await other.post('/api/auth/login', { email: web.email, password: web.password }));
  expectError(await other.get('/api/sync/events/stream'), 429, 'rate_limited');
  t2.close();
  t3.close();
});

/** A backlog of events far larger than every buffer between the server
 * and a reader that reads nothing (socket buffers on both sides and the
 * connection's own). */
async function backlog(a, n = 1500) {
  for (let i = 0; i < n; i += 25) {
    await Promise.all(Array.from({ length: 25 }, (_, j) => a.put('/api/sync/config', { history: (i + j) % 2 === 0 })));
  }
}

/** A stream from the start, on a raw socket that reads nothing. */
async function stalledStream(srv, a) {
  const sock = net.connect(Number(new URL(srv.url).port), '127.0.0.1');
  await new Promise((resolve) => sock.on('connect', resolve));
  const st = { sock, closed: false };
  sock.on('close', () => { st.closed = true; });
  sock.on('error', () => {});
  sock.write(`GET /api/sync/events/stream?after=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${a.bearer}\r\n\r\n`);
  sock.pause();
  return st;
}

test('a reader that stops draining is disconnected after STREAM_STALL_SECONDS; others stream on', async () => {
  const srv = await startServer({ env: { STREAM_STALL_SECONDS: '2', STREAM_BUFFER_BYTES: '4096' } });
  const web = await signup(srv);
  const a = await deviceLogin(web);
  await backlog(a);
  const healthy = await openStream(a);
  const stalled = await stalledStream(srv, a);
  const { sock } = stalled;
  await until(async () => (await metric(srv, 'flamingo_event_streams')) === 2, 5000 * SLOW, 'both streams open');
  // the stalled stream goes; the healthy one stays and still gets news
  await until(async () => (await metric(srv, 'flamingo_event_streams')) === 1, 15000 * SLOW, 'the stalled stream to be closed');
  await put(a, 'secret');
  assert.ok(await healthy.waitFor((e) => e.json?.data_type === 'secret', 5000 * SLOW));
  assert.equal(healthy.endedFlag, false);
  sock.resume();
  await until(() => stalled.closed, 10000 * SLOW, 'the stalled socket to close');
  healthy.close();
});

test('replaced streams that have not ended yet still count: one credential holds at most twice STREAMS_PER_USER', async () => {
  const stall = 5 * SLOW;
  const srv = await startServer({ env: { STREAMS_PER_USER: '1', STREAM_STALL_SECONDS: String(stall), STREAM_BUFFER_BYTES: '4096' } });
  const web = await signup(srv);
  const a = await deviceLogin(web);
  await backlog(a);
  // s1 stalls: replaced, it cannot end before STREAM_STALL_SECONDS
  const s1 = await stalledStream(srv, a);
  await until(async () => (await metric(srv, 'flamingo_event_streams')) === 1, 5000 * SLOW, 's1 open');
  // the backlog fills every buffer on loopback within milliseconds; after
  // that the server cannot write to s1 at all (nothing outside shows it)
  await sleep(1000 * SLOW);
  const s2 = await openStream(a);
  assert.equal(s2.res.status, 200, 's2 takes s1\'s place');
  assert.equal(await metric(srv, 'flamingo_event_streams'), 2, 's1 is still there');
  const r = await a.get('/api/sync/events/stream');
  expectError(r, 429, 'rate_limited');
  assert.equal(s2.endedFlag, false, 'a refused stream displaces nobody');
  // once s1 is cut, the device may replace again
  await until(async () => (await metric(srv, 'flamingo_event_streams')) === 1, (stall + 10) * 1000, 's1 to be cut');
  s1.sock.resume();
  await until(() => s1.closed, 10000 * SLOW, 's1\'s socket to close');
  const s3 = await openStream(a);
  assert.equal(s3.res.status, 200);
  await until(() => s2.endedFlag, 5000 * SLOW, 's2 to end');
  s3.close();
});

test('events older than EVENT_RETENTION_DAYS are pruned; asking for an older id says resync', async () => {
  let srv = await startServer();
  const web = await signup(srv);
  const a = await deviceLogin(web);
  for (const ty of ['history', 'secret', 'setting']) await put(a, ty);
  const first = expectOk(await a.get('/api/sync/events?after=0&wait=0')).events;
  assert.equal(first.length, 3);
  await srv.stop();
  // the first two events are 40 days old
  sql(srv, `UPDATE events SET created_at = created_at - 3456000000 WHERE id <= ${first[1].id}`);
  srv = await startServer({ dir: srv.dir, env: { EVENT_RETENTION_DAYS: '30' } });
  a.srv = srv;
  web.srv = srv;
  // housekeeping runs once the server listens, beside the first requests
  await until(() => sql(srv, 'SELECT count(*) FROM events') === '1', 10000 * SLOW, 'the start-up prune');
  // the long-poll: resync, with where to continue
  for (const after of [0, first[0].id]) {
    const d = expectOk(await a.get(`/api/sync/events?after=${after}&wait=0`));
    assert.deepEqual(d, { events: [], next: first[2].id, resync: true }, `after=${after}`);
  }
  // from the newest pruned id on, nothing was missed
  const d = expectOk(await a.get(`/api/sync/events?after=${first[1].id}&wait=0`));
  assert.equal(d.resync, undefined);
  assert.deepEqual(d.events.map((e) => e.id), [first[2].id]);
  // the stream: a resync event, then the stream carries on from there
  const s = await openStream(a, { lastEventId: first[0].id });
  const rs = await s.waitFor((e) => e.event === 'resync', 5000 * SLOW);
  assert.deepEqual(rs?.json, { next: first[2].id });
  assert.equal(rs.id, String(first[2].id), 'the resync moves Last-Event-ID on');
  await put(a, 'environment');
  const ev = await s.waitFor((e) => e.event === 'data_updated', 5000 * SLOW);
  assert.equal(ev.json.data_type, 'environment');
  assert.equal(s.events.filter((e) => e.event === 'data_updated').length, 1, 'no old event replayed');
  s.close();
  const s2 = await openStream(a, { lastEventId: first[1].id });
  await until(() => s2.events.length >= 2, 5000 * SLOW, 'two events');
  assert.deepEqual(s2.events.map((e) => e.event), ['data_updated', 'data_updated']);
  s2.close();
  // every event of the user pruned: resync points at the newest pruned id,
  // and from there nothing is missed (no resync loop)
  const newest = Number(sql(srv, 'SELECT max(id) FROM events'));
  await srv.stop();
  sql(srv, 'UPDATE events SET created_at = created_at - 3456000000');
  srv = await startServer({ dir: srv.dir, env: { EVENT_RETENTION_DAYS: '30' } });
  a.srv = srv;
  await until(() => sql(srv, 'SELECT count(*) FROM events') === '0', 10000 * SLOW, 'the start-up prune');
  const all = expectOk(await a.get('/api/sync/events?after=0&wait=0'));
  assert.deepEqual(all, { events: [], next: newest, resync: true });
  const on = expectOk(await a.get(`/api/sync/events?after=${all.next}&wait=0`));
  assert.deepEqual(on, { events: [], next: newest });
  const s3 = await openStream(a, { lastEventId: 1 });
  const rs3 = await s3.waitFor((e) => e.event === 'resync', 5000 * SLOW);
  assert.equal(rs3?.id, String(newest));
  s3.close();
});

test('SIGTERM ends open streams and the server exits cleanly', async () => {
  const srv = await startServer();
  const web = await signup(srv);
  const a = await deviceLogin(web);
  const s = await openStream(a);
  await until(() => s.comments.length > 0, 3000 * SLOW, 'stream open');
  const exit = await srv.stop();
  assert.equal(exit.code, 0, JSON.stringify(exit));
  await Promise.race([s.ended, sleep(3000 * SLOW).then(() => { throw new Error('stream did not end'); })]);
});

// Under valgrind every stream costs far more: fewer, same assertions.
const MANY = process.env.FLAMINGO_SYNCD_WRAP ? 100 : 1000;

test(`${MANY} concurrent streams all receive a broadcast`, { timeout: 120000 * SLOW }, async () => {
  const srv = await startServer({
    env: {
      // two workers for a thousand streams: no stream holds one
      THREADS: '2',
      STREAMS_MAX: String(MANY), STREAMS_PER_USER: String(MANY),
      MAX_CONNECTIONS: String(MANY + 64), MAX_CONNECTIONS_PER_IP: String(MANY + 64),
      STREAM_HEARTBEAT_SECONDS: '1',
    },
  });
  const web = await signup(srv);
  const a = await deviceLogin(web);
  const streams = [];
  for (let i = 0; i < MANY; i += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, MANY - i) }, () => {
      const es = eventSource(srv, a);
      const got = collect(es, ['data_updated']);
      return opened(es).then(() => ({ es, got }));
    }));
    streams.push(...batch);
  }
  assert.equal(await metric(srv, 'flamingo_event_streams'), MANY);
  const w = await put(a, 'history');
  await Promise.all(streams.map((s) => s.got.until((g) => g.length >= 1, 30000 * SLOW)));
  for (const s of streams) {
    assert.equal(s.got.length, 1);
    assert.equal(s.got[0].data.version, w.version);
    s.es.close();
  }
  await until(async () => (await metric(srv, 'flamingo_event_streams')) === 0, 20000 * SLOW, 'every stream to close');
});
