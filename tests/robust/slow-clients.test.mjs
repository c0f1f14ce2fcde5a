// Slow and greedy clients: a slowloris (60 connections dribbling a request
// one byte at a time), a per-IP connection flood, and the rate limits shown
// to hold and to recover once their (short) window is over. While the
// slowloris and the flood hold their connections from 127.0.0.1, ordinary
// requests from another client address (127.0.0.2: Linux loopback accepts
// any 127/8 source) still answer promptly.
//
// Small limits keep it fast: CONNECTION_TIMEOUT=2, MAX_CONNECTIONS_PER_IP=8
// for the flood, rate windows of 2 to 10 s, DEVICE_POLL_INTERVAL=1. The only
// sleeps are deliberate: the slow sending, the wait for a connection timeout
// to expire, and the wait for a rate window to end (Retry-After).

import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, describe } from 'node:test';
import { startServer, stopAll, test, sleep, SLOW } from '../api/lib/server.mjs';
import { uniqueEmail, uniquePassword, rand, SESSION_TOKEN_RE } from '../api/lib/client.mjs';

after(stopAll);

const PROMPT_MS = 1500 * SLOW; // "promptly": an ordinary request under attack
const TIMEOUT_S = 2;           // CONNECTION_TIMEOUT of these servers

// ---- a small HTTP client that picks its source address -----------------------

/**
 * One request from `from` (a 127/8 address) on a fresh connection.
 * Resolves {status, headers, json, text, ms}; rejects on a network error.
 */
function httpFrom(srv, from, method, path, { json, headers = {}, bearer, cookie, origin, timeoutMs = 10000 } = {}) {
  const u = new URL(srv.url);
  const h = { host: u.host, connection: 'close', ...headers };
  let body;
  if (json !== undefined) {
    body = Buffer.from(JSON.stringify(json));
    h['content-type'] = 'application/json';
  }
  if (body) h['content-length'] = String(body.length);
  if (bearer) h.authorization = `Bearer ${bearer}`;
  if (cookie) h.cookie = cookie;
  if (origin) h.origin = origin;
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: u.hostname, port: Number(u.port), method, path, headers: h, localAddress: from, agent: false,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let j;
        try { j = JSON.parse(text); } catch { /* not JSON */ }
        resolve({
          status: res.statusCode, headers: res.headers, text, json: j, data: j?.data, error: j?.error, ms: Date.now() - t0,
          describe: () => `${method} ${path} from ${from} -> ${res.statusCode} ${text.slice(0, 300)}`,
        });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path} from ${from}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** A user agent at one source address: a cookie jar and the right Origin. */
class From {
  constructor(srv, ip) { this.srv = srv; this.ip = ip; this.cookie = null; }

  async req(method, path, opts = {}) {
    const mutation = !['GET', 'HEAD'].includes(method);
    const r = await httpFrom(this.srv, this.ip, method, path, {
      cookie: this.cookie, origin: mutation && this.cookie ? this.srv.origin : undefined, ...opts,
    });
    for (const sc of [].concat(r.headers['set-cookie'] || [])) {
      const [nv] = sc.split(';');
      if (nv.startsWith('flm_session=')) this.cookie = nv;
    }
    return r;
  }

  get(path, opts) { return this.req('GET', path, opts); }
  post(path, json, opts = {}) { return this.req('POST', path, { ...opts, json }); }
}

function ok(r, status = 200) {
  assert.equal(r.status, status, r.describe());
  assert.equal(r.json?.success, true, r.describe());
  return r.data;
}

function err(r, status, code) {
  assert.equal(r.status, status, r.describe());
  assert.equal(r.json?.success, false, r.describe());
  assert.equal(r.error, code, r.describe());
  return r.json;
}

/** 429 rate_limited with an integer Retry-After >= 1; returns it. */
function limited(r) {
  err(r, 429, 'rate_limited');
  const ra = r.headers['retry-after'];
  assert.match(String(ra), /^\d+$/, `Retry-After: ${r.describe()}`);
  assert.ok(Number(ra) >= 1, `Retry-After >= 1: ${r.describe()}`);
  return Number(ra);
}

/** Waits a rate window out: Retry-After seconds and a little. */
const waitOut = (retryAfterS) => sleep(retryAfterS * 1000 + 150);

async function signupFrom(srv, ip) {
  const c = new From(srv, ip);
  c.email = uniqueEmail('slow');
  c.password = uniquePassword();
  srv.addSecret(c.password);
  c.user = ok(await c.post('/api/auth/signup', { email: c.email, password: c.password }), 201).user;
  assert.ok(c.cookie, 'signup set the session cookie');
  return c;
}

/** init (from initIp) → claim by web → token; a bearer token. */
async function deviceToken(srv, web, initIp) {
  const anon = new From(srv, initIp);
  const init = ok(await anon.post('/api/sync/init', { device_name: `slow-${rand(2)}` }), 201);
  ok(await web.post('/api/sync/claim', { user_code: init.user_code }));
  const t = ok(await anon.post('/api/sync/token', { temp_token: init.temp_token }));
  assert.match(t.session_token, SESSION_TOKEN_RE);
  srv.addSecret(t.session_token);
  return t.session_token;
}

// ---- raw sockets ----------------------------------------------------------------

/** Opens a TCP connection from `from`; resolves the socket once connected. Tracks close time. */
function connectFrom(srv, from) {
  const u = new URL(srv.url);
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port), localAddress: from });
    s.received = Buffer.alloc(0);
    s.closedAt = null;
    s.lastSentAt = null;
    s.whenClosed = new Promise((res) => s.on('close', () => { s.closedAt = Date.now(); res(s.closedAt); }));
    s.on('data', (d) => { s.received = Buffer.concat([s.received, d]); });
    s.on('error', () => { /* reset by the server: 'close' follows */ });
    s.once('connect', () => resolve(s));
    s.once('error', (e) => { if (!s.connecting) return; reject(e); });
  });
}

function sendByte(s, byte) {
  if (s.destroyed || s.closedAt) return false;
  s.write(byte);
  s.lastSentAt = Date.now();
  return true;
}

/** Resolves true if the socket closes within ms, false otherwise. */
function closesWithin(s, ms) {
  return Promise.race([s.whenClosed.then(() => true), sleep(ms).then(() => false)]);
}

/** Ordinary requests from 127.0.0.2 while an attack holds 127.0.0.1; their latencies. */
async function ordinaryTraffic(srv, token, rounds = 5) {
  const lat = [];
  for (let i = 0; i < rounds; i++) {
    const info = await httpFrom(srv, '127.0.0.2', 'GET', '/api/info');
    ok(info);
    const cfg = await httpFrom(srv, '127.0.0.2', 'GET', '/api/sync/config', { bearer: token });
    ok(cfg);
    const put = await httpFrom(srv, '127.0.0.2', 'PUT', '/api/sync/data/history',
      { bearer: token, json: { encrypted_data: Buffer.from(`round ${i} ${rand()}`).toString('base64') } });
    ok(put);
    lat.push(info.ms, cfg.ms, put.ms);
  }
  return lat;
}

// ---- slowloris --------------------------------------------------------------------

test('slowloris: 60 connections dribbling one byte at a time do not slow other clients, and go once silent for CONNECTION_TIMEOUT', async () => {
  const srv = await startServer({
    env: { CONNECTION_TIMEOUT: String(TIMEOUT_S), MAX_CONNECTIONS_PER_IP: '100', MAX_CONNECTIONS: '400', THREADS: '2' },
  });
  const web = await signupFrom(srv, '127.0.0.3');
  const token = await deviceToken(srv, web, '127.0.0.3');

  const N = 60;
  const STEP_MS = 400; // well under the timeout: the dribble keeps them alive
  const request = Buffer.from(`GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'a'.repeat(4000)}`);
  const socks = await Promise.all(Array.from({ length: N }, () => connectFrom(srv, '127.0.0.1')));
  let pos = 0;
  const timer = setInterval(() => {
    for (const s of socks) sendByte(s, request.subarray(pos, pos + 1));
    pos++;
  }, STEP_MS);
  try {
    // the dribble is under way: every connection has sent a few bytes
    while (pos < 3) await sleep(50);
    const lat = await ordinaryTraffic(srv, token, 5);
    assert.ok(Math.max(...lat) < PROMPT_MS, `ordinary requests from 127.0.0.2 during the slowloris took ${lat} ms`);
    // and 127.0.0.1 itself, under its per-IP limit, is served too
    const own = await httpFrom(srv, '127.0.0.1', 'GET', '/healthz');
    assert.equal(own.status, 200);
    assert.ok(own.ms < PROMPT_MS, `/healthz from 127.0.0.1 took ${own.ms} ms`);
    // dribble for longer than the timeout: a byte every STEP_MS is not
    // silence, so an idle timeout alone does not end these (the per-IP
    // limit is what bounds them, see the flood below)
    while (pos * STEP_MS < (TIMEOUT_S + 1) * 1000) await sleep(50);
    const lat2 = await ordinaryTraffic(srv, token, 2);
    assert.ok(Math.max(...lat2) < PROMPT_MS, `ordinary requests from 127.0.0.2 later in the slowloris took ${lat2} ms`);
    console.log(`slowloris: ${N} connections dribbling 1 byte / ${STEP_MS} ms; ${socks.filter((s) => !s.closedAt).length} still open ` +
      `after ${pos * STEP_MS} ms; ordinary requests from 127.0.0.2 took max ${Math.max(...lat, ...lat2)} ms (${lat.length + lat2.length} requests)`);
  } finally {
    clearInterval(timer);
  }
  // silence: each goes CONNECTION_TIMEOUT after its last byte
  const openAtStop = socks.filter((s) => !s.closedAt);
  const closed = await Promise.all(socks.map((s) => closesWithin(s, (TIMEOUT_S + 4) * 1000 * SLOW)));
  assert.equal(closed.filter(Boolean).length, N, `${closed.filter((c) => !c).length} silent connections still open`);
  const idle = openAtStop.map((s) => s.closedAt - s.lastSentAt);
  if (idle.length) {
    assert.ok(Math.min(...idle) >= TIMEOUT_S * 1000 - 300, `closed too early: ${Math.min(...idle)} ms after the last byte`);
    assert.ok(Math.max(...idle) <= (TIMEOUT_S * 1000 + 2500) * SLOW, `closed late: ${Math.max(...idle)} ms after the last byte`);
    console.log(`slowloris: once silent, closed ${Math.min(...idle)}-${Math.max(...idle)} ms after the last byte (CONNECTION_TIMEOUT=${TIMEOUT_S})`);
  }
  for (const s of socks) assert.equal(s.received.length, 0, 'an unfinished request got no answer');
  // the server is fine
  ok(await httpFrom(srv, '127.0.0.1', 'GET', '/api/info'));
});

test('a client slower than CONNECTION_TIMEOUT between two bytes is cut off after the timeout', async () => {
  const srv = await startServer({ env: { CONNECTION_TIMEOUT: String(TIMEOUT_S), THREADS: '2' } });
  const socks = await Promise.all(Array.from({ length: 10 }, () => connectFrom(srv, '127.0.0.1')));
  for (const s of socks) sendByte(s, 'G');
  const gone = await Promise.all(socks.map((s) => closesWithin(s, (TIMEOUT_S + 3) * 1000 * SLOW)));
  assert.ok(gone.every(Boolean), 'every connection silent for longer than the timeout was closed');
  for (const s of socks) {
    const idle = s.closedAt - s.lastSentAt;
    assert.ok(idle >= TIMEOUT_S * 1000 - 300 && idle <= (TIMEOUT_S * 1000 + 2500) * SLOW, `closed ${idle} ms after its only byte`);
    assert.equal(sendByte(s, 'E'), false, 'the second byte, due later, never goes out');
  }
  ok(await httpFrom(srv, '127.0.0.1', 'GET', '/api/info'));
});

// ---- per-IP flood --------------------------------------------------------------------

test('per-IP connection flood: 127.0.0.1 is held at MAX_CONNECTIONS_PER_IP, 127.0.0.2 is served promptly, and it all recovers', async () => {
  const LIMIT = 8;
  const srv = await startServer({
    env: { CONNECTION_TIMEOUT: String(TIMEOUT_S), MAX_CONNECTIONS_PER_IP: String(LIMIT), THREADS: '2' },
  });
  const web = await signupFrom(srv, '127.0.0.3');
  const token = await deviceToken(srv, web, '127.0.0.3');
  // The harness's readiness probe (fetch, from 127.0.0.1) may still hold an
  // idle keep-alive connection; wait for the server to time it out (a
  // deliberate wait for the timeout), so that 127.0.0.1 starts from zero.
  await sleep((TIMEOUT_S + 1) * 1000);

  const holders = await Promise.all(Array.from({ length: LIMIT + 6 }, () => connectFrom(srv, '127.0.0.1')));
  // the server refuses (closes at once) every connection past the limit
  const t0 = Date.now();
  while (holders.filter((s) => s.closedAt).length < 6 && Date.now() - t0 < 1500 * SLOW) await sleep(20);
  const refused = holders.filter((s) => s.closedAt);
  const held = holders.filter((s) => !s.closedAt);
  assert.equal(refused.length, 6, `connections past MAX_CONNECTIONS_PER_IP=${LIMIT} closed at once: ${refused.length}`);
  assert.equal(held.length, LIMIT);
  for (const s of refused) assert.ok(s.closedAt - t0 < 1000 * SLOW, 'refused promptly');

  // one more from 127.0.0.1 gets nowhere ...
  await assert.rejects(httpFrom(srv, '127.0.0.1', 'GET', '/healthz', { timeoutMs: 3000 }),
    '127.0.0.1 is at its limit: the connection is closed without an answer');
  // ... while 127.0.0.2 is served promptly
  const lat = await ordinaryTraffic(srv, token, 3);
  assert.ok(Math.max(...lat) < PROMPT_MS, `ordinary requests from 127.0.0.2 during the flood took ${lat} ms`);
  console.log(`per-IP flood: ${holders.length} connections from 127.0.0.1, ${held.length} held, ${refused.length} refused in ` +
    `${Math.max(...refused.map((s) => s.closedAt - t0))} ms; requests from 127.0.0.2 took max ${Math.max(...lat)} ms`);

  // releasing one holder frees one slot at once
  held[0].destroy();
  await held[0].whenClosed;
  let r;
  for (let i = 0; i < 50; i++) { // the server notices the close asynchronously
    try { r = await httpFrom(srv, '127.0.0.1', 'GET', '/healthz', { timeoutMs: 3000 }); break; } catch { await sleep(20); }
  }
  assert.equal(r?.status, 200, 'a slot freed by the client is usable again');

  // the idle holders are closed by the server after CONNECTION_TIMEOUT
  const gone = await Promise.all(held.slice(1).map((s) => closesWithin(s, (TIMEOUT_S + 3) * 1000 * SLOW)));
  assert.ok(gone.every(Boolean), `${gone.filter((g) => !g).length} idle holders outlived the timeout`);
  const burst = await Promise.all(Array.from({ length: LIMIT - 2 }, () => httpFrom(srv, '127.0.0.1', 'GET', '/api/info')));
  for (const b of burst) ok(b);
});

// ---- rate limits: hold, then recover ----------------------------------------------

describe('rate limits hold and recover after a short window', { concurrency: true }, () => {
  let srv;
  // Windows of 2 s; 10 s where every hit costs an Argon2id hash, so that
  // the hits of one test surely fall in one window on a busy machine (the
  // login limits recover after their first, 1 s, lockout anyway).
  const env = {
    RATE_SIGNUP: '3/10', RATE_INIT: '3/2', RATE_LOGIN_ACCOUNT: '3/10', RATE_LOGIN_IP: '5/10',
    RATE_USER_CODE_USER: '3/2', RATE_USER_CODE_IP: '5/2', DEVICE_POLL_INTERVAL: '1',
  };
  const server = async () => { srv = srv || await startServer({ env }); return srv; };
  // each test uses its own source addresses: the per-IP counts do not mix
  let ipNo = 10;
  const ips = (n) => Array.from({ length: n }, () => `127.0.0.${ipNo++}`);
  const wrongCode = () => {
    const a = 'BCDFGHJKLMNPQRSTVWXZ';
    let s = '';
    for (let i = 0; i < 8; i++) s += a[Math.floor(Math.random() * 20)];
    return `${s.slice(0, 4)}-${s.slice(4)}`;
  };

  test('signup per IP: 3 per 10 s, then 429; another IP is not affected; after the window, again', async () => {
    const s = await server();
    const [a, b] = ips(2);
    for (let i = 0; i < 3; i++) await signupFrom(s, a);
    const email = uniqueEmail('late');
    const r = await new From(s, a).post('/api/auth/signup', { email, password: uniquePassword() });
    const ra = limited(r);
    assert.ok(ra <= 10, `Retry-After within the 10 s window: ${ra}`);
    limited(await new From(s, a).post('/api/auth/signup', { email, password: uniquePassword() }));
    await signupFrom(s, b);
    await waitOut(ra);
    const again = new From(s, a);
    const password = uniquePassword();
    s.addSecret(password);
    ok(await again.post('/api/auth/signup', { email, password }), 201);
  });

  test('login per account: 3 failures, then 429 even for the right password; recovers after Retry-After', async () => {
    const s = await server();
    const [home, a] = ips(2);
    const u = await signupFrom(s, home);
    for (let i = 0; i < 3; i++) {
      err(await new From(s, a).post('/api/auth/login', { email: u.email, password: `wrong-password-${i}` }), 401, 'invalid_credentials');
    }
    const ra = limited(await new From(s, a).post('/api/auth/login', { email: u.email, password: u.password }));
    limited(await new From(s, a).post('/api/auth/login', { email: u.email.toUpperCase(), password: u.password }));
    assert.ok(ra <= 2, `the first lockout is short (1 s), not the whole window: ${ra}`);
    await waitOut(ra);
    ok(await new From(s, a).post('/api/auth/login', { email: u.email, password: u.password }));
  });

  test('login per IP: 5 failures with any emails, then 429; another IP is not affected; recovers', async () => {
    const s = await server();
    const [home, a, b] = ips(3);
    const u = await signupFrom(s, home);
    for (let i = 0; i < 5; i++) {
      err(await new From(s, a).post('/api/auth/login', { email: uniqueEmail('nobody'), password: 'some-password-1' }), 401, 'invalid_credentials');
    }
    const ra = limited(await new From(s, a).post('/api/auth/login', { email: uniqueEmail('nobody'), password: 'some-password-1' }));
    limited(await new From(s, a).post('/api/auth/login', { email: u.email, password: u.password }));
    err(await new From(s, b).post('/api/auth/login', { email: uniqueEmail('nobody'), password: 'some-password-1' }), 401, 'invalid_credentials');
    ok(await new From(s, b).post('/api/auth/login', { email: u.email, password: u.password }));
    await waitOut(ra);
    ok(await new From(s, a).post('/api/auth/login', { email: u.email, password: u.password }));
  });

  test('device init per IP: 3 per 2 s, then 429; another IP is not affected; after the window, again', async () => {
    const s = await server();
    const [a, b] = ips(2);
    for (let i = 0; i < 3; i++) ok(await new From(s, a).post('/api/sync/init', { device_name: `d${i}` }), 201);
    const r = await new From(s, a).post('/api/sync/init', { device_name: 'd4' });
    const ra = limited(r);
    assert.equal(r.json.data, undefined, 'no temp token in a refusal');
    ok(await new From(s, b).post('/api/sync/init', { device_name: 'other' }), 201);
    await waitOut(ra);
    ok(await new From(s, a).post('/api/sync/init', { device_name: 'd5' }), 201);
  });

  test('wrong user codes: per user (3) and per IP (5), 429 even for a good code; recovers', async () => {
    const s = await server();
    const [home, a, other, dev] = ips(4);
    const x = await signupFrom(s, home);
    const y = await signupFrom(s, home);
    x.ip = a;
    y.ip = a;
    const good1 = ok(await new From(s, dev).post('/api/sync/init', { device_name: 'good-1' }), 201);
    const good2 = ok(await new From(s, dev).post('/api/sync/init', { device_name: 'good-2' }), 201);
    // x: 3 wrong codes (claims and a lookup), then even the good code is refused
    err(await x.post('/api/sync/claim', { user_code: wrongCode() }), 404, 'not_found');
    err(await x.get(`/api/sync/request?code=${wrongCode()}`), 404, 'not_found');
    err(await x.post('/api/sync/claim', { user_code: wrongCode() }), 404, 'not_found');
    const raX = limited(await x.post('/api/sync/claim', { user_code: good1.user_code }));
    // y, same IP: its own count is 0, the IP's is 3 of 5
    err(await y.post('/api/sync/claim', { user_code: wrongCode() }), 404, 'not_found');
    err(await y.post('/api/sync/claim', { user_code: wrongCode() }), 404, 'not_found');
    const raY = limited(await y.post('/api/sync/claim', { user_code: good2.user_code }));
    // y from another address is under both limits
    y.ip = other;
    assert.equal(ok(await y.post('/api/sync/claim', { user_code: good2.user_code })).device.name, 'good-2');
    // after the window x (and the IP) recover
    await waitOut(Math.max(raX, raY));
    assert.equal(ok(await x.post('/api/sync/claim', { user_code: good1.user_code })).device.name, 'good-1');
  });

  test('token polling: slow_down adds 5 s to the interval, the raised interval is kept, obeying it recovers', async () => {
    const s = await server();
    const [a, home] = ips(2);
    const desk = new From(s, a);
    const init = ok(await desk.post('/api/sync/init', { device_name: 'poller' }), 201);
    assert.equal(init.interval, 1);
    const poll = () => desk.post('/api/sync/token', { temp_token: init.temp_token });
    const p1 = err(await poll(), 400, 'authorization_pending');
    assert.equal(p1.data.interval, 1);
    const p2 = err(await poll(), 400, 'slow_down');
    assert.equal(p2.data.interval, 6, 'slow_down raises the interval by 5 s');
    // 1.3 s later would have been fine at the old interval: the new one is kept
    await sleep(1300);
    const p3 = err(await poll(), 400, 'slow_down');
    assert.equal(p3.data.interval, 11, 'polled again too soon: raised again');
    // the user approves meanwhile; obeying the interval gets the token
    const web = await signupFrom(s, home);
    ok(await web.post('/api/sync/claim', { user_code: init.user_code }));
    await sleep(p3.data.interval * 1000 + 150);
    const t = ok(await poll());
    assert.match(t.session_token, SESSION_TOKEN_RE);
    s.addSecret(t.session_token);
    err(await poll(), 410, 'expired_token');
  });
});
