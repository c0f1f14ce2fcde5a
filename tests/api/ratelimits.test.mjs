// Rate limits: failed logins per account and per IP (429 + Retry-After, a
// successful login resets the account's count), signups per IP, device
// inits per IP, wrong user codes per user and per IP.

import assert from 'node:assert/strict';
import { after } from 'node:test';
import { startServer, stopAll, test, sleep, SLOW } from './lib/server.mjs';
import {
  Client, expectOk, expectError, expectRetryAfter, signup, initDevice, deviceLogin, uniqueEmail, uniquePassword,
} from './lib/client.mjs';
import { finalChecks } from './lib/checks.mjs';

const servers = [];
after(stopAll);

async function start(env) {
  const s = await startServer({ env });
  servers.push(s);
  return s;
}

function loginAs(srv, email, password) {
  return new Client(srv).post('/api/auth/login', { email, password });
}

// A code in the user-code alphabet that no request has (a collision with a
// live code is astronomically unlikely).
function wrongCode(i) {
  const a = 'BCDFGHJKLMNPQRSTVWXZ';
  let s = '';
  for (let k = 0; k < 8; k++) s += a[(i * 7 + k * 13 + Math.floor(Math.random() * 20)) % 20];
  return `${s.slice(0, 4)}-${s.slice(4)}`;
}

test('failed logins per account: 429 + Retry-After after the limit, for the right password too', async () => {
  const srv = await start({ RATE_LOGIN_ACCOUNT: '3/60', RATE_LOGIN_IP: '1000/60' });
  const a = await signup(srv);
  const c = await signup(srv);
  for (let i = 0; i < 3; i++) {
    expectError(await loginAs(srv, a.email, `wrong-password-${i}`), 401, 'invalid_credentials');
  }
  const limited = await loginAs(srv, a.email, 'wrong-password-x');
  expectError(limited, 429, 'rate_limited');
  expectRetryAfter(limited);
  // locked: the right password is refused too (else the lock is an oracle)
  const right = await loginAs(srv, a.email, a.password);
  expectError(right, 429, 'rate_limited');
  expectRetryAfter(right);
  // the account is the lower-cased email
  expectError(await loginAs(srv, a.email.toUpperCase(), a.password), 429, 'rate_limited');
  // another account is not affected
  expectOk(await loginAs(srv, c.email, c.password));
  // the existing session of the locked account still works
  expectOk(await a.get('/api/auth/session'));
});

test('failed logins per account: a successful login resets the count', async () => {
  const srv = await start({ RATE_LOGIN_ACCOUNT: '3/60', RATE_LOGIN_IP: '1000/60' });
  const b = await signup(srv);
  expectError(await loginAs(srv, b.email, 'wrong-1-password'), 401, 'invalid_credentials');
  expectError(await loginAs(srv, b.email, 'wrong-2-password'), 401, 'invalid_credentials');
  expectOk(await loginAs(srv, b.email, b.password));
  // without the reset the second of these would already be over the limit
  for (let i = 0; i < 3; i++) {
    expectError(await loginAs(srv, b.email, `wrong-again-${i}`), 401, 'invalid_credentials');
  }
  const limited = await loginAs(srv, b.email, 'wrong-again-x');
  expectError(limited, 429, 'rate_limited');
  expectRetryAfter(limited);
});

test('failed logins per account: Retry-After grows with each lockout', async () => {
  const srv = await start({ RATE_LOGIN_ACCOUNT: '2/60', RATE_LOGIN_IP: '1000/60' });
  const a = await signup(srv);
  expectError(await loginAs(srv, a.email, 'wrong-password-1'), 401, 'invalid_credentials');
  expectError(await loginAs(srv, a.email, 'wrong-password-2'), 401, 'invalid_credentials');
  const r1 = await loginAs(srv, a.email, 'wrong-password-3');
  expectError(r1, 429, 'rate_limited');
  const ra1 = expectRetryAfter(r1);
  assert.ok(ra1 <= 60, `the first delay is short (${ra1} s): a lockout cannot shut a victim out for long`);
  await sleep(ra1 * 1000 + 200);
  // after the delay one more attempt is answered, then a longer delay follows
  expectError(await loginAs(srv, a.email, 'wrong-password-4'), 401, 'invalid_credentials');
  const r2 = await loginAs(srv, a.email, 'wrong-password-5');
  expectError(r2, 429, 'rate_limited');
  const ra2 = expectRetryAfter(r2);
  assert.ok(ra2 > ra1, `Retry-After grows: ${ra1} then ${ra2}`);
});

test('failed logins per IP: 429 + Retry-After after the limit, whatever the email', async () => {
  const srv = await start({ RATE_LOGIN_ACCOUNT: '1000/60', RATE_LOGIN_IP: '4/60' });
  for (let i = 0; i < 4; i++) {
    expectError(await loginAs(srv, uniqueEmail('nobody'), 'some-password-1'), 401, 'invalid_credentials');
  }
  const r = await loginAs(srv, uniqueEmail('nobody'), 'some-password-1');
  expectError(r, 429, 'rate_limited');
  expectRetryAfter(r);
  const r2 = await loginAs(srv, uniqueEmail('other'), 'some-password-2');
  expectError(r2, 429, 'rate_limited');
  expectRetryAfter(r2);
});

test('failed logins per IP: X-Forwarded-For from an untrusted peer does not escape the limit', async () => {
  const srv = await start({ RATE_LOGIN_ACCOUNT: '1000/60', RATE_LOGIN_IP: '3/60' });
  for (let i = 0; i < 3; i++) {
    const r = await new Client(srv).post('/api/auth/login', { email: uniqueEmail('x'), password: 'some-password-1' },
      { headers: { 'x-forwarded-for': `198.51.100.${i + 1}` } });
    expectError(r, 401, 'invalid_credentials');
  }
  const r = await new Client(srv).post('/api/auth/login', { email: uniqueEmail('x'), password: 'some-password-1' },
    { headers: { 'x-forwarded-for': '198.51.100.99' } });
  expectError(r, 429, 'rate_limited');
});

test('a flood of logins is bounded by HASH_QUEUE and leaves sync requests answering promptly', async () => {
  const srv = await start({ HASH_THREADS: '1', HASH_QUEUE: '2', RATE_LOGIN_ACCOUNT: '1000/60', RATE_LOGIN_IP: '1000/60' });
  const u = await signup(srv);
  const dev = await deviceLogin(u);
  const flood = Promise.all(Array.from({ length: 16 }, (_, i) => loginAs(srv, u.email, `wrong-password-${i}`)));
  const lat = [];
  for (let i = 0; i < 5; i++) {
    const t0 = Date.now();
    expectOk(await dev.get('/api/sync/config'));
    lat.push(Date.now() - t0);
  }
  const res = await flood;
  for (const r of res) {
    assert.ok(r.status === 401 || r.status === 429, r.describe());
    if (r.status === 429) { expectError(r, 429, 'rate_limited'); expectRetryAfter(r); }
  }
  // valgrind runs one thread at a time: the queue never fills there (SLOW runs)
  if (SLOW === 1) assert.ok(res.some((r) => r.status === 429), `a full hash queue answers 429: ${res.map((r) => r.status)}`);
  // valgrind runs one thread at a time, so it cannot show this (SLOW runs)
  if (SLOW === 1) assert.ok(Math.max(...lat) < 500, `sync requests during the flood took ${lat} ms`);
});

test('signups per IP: 429 + Retry-After after the limit, and no account is made', async () => {
  const srv = await start({ RATE_SIGNUP: '3/3600' });
  for (let i = 0; i < 3; i++) await signup(srv);
  const email = uniqueEmail('late');
  const password = uniquePassword();
  srv.addSecret(password);
  const r = await new Client(srv).post('/api/auth/signup', { email, password });
  expectError(r, 429, 'rate_limited');
  expectRetryAfter(r);
  expectError(await loginAs(srv, email, password), 401, 'invalid_credentials');
});

test('device inits per IP: 429 + Retry-After after the limit', async () => {
  const srv = await start({ RATE_INIT: '3/600' });
  for (let i = 0; i < 3; i++) await initDevice(srv);
  const r = await new Client(srv, { sendOrigin: false }).post('/api/sync/init', { device_name: 'x' });
  expectError(r, 429, 'rate_limited');
  expectRetryAfter(r);
  assert.equal(r.data, undefined);
});

test('per-IP limits count an IPv6 client by its /64 (RATE_IPV6_PREFIX), an IPv4-mapped one as IPv4', async () => {
  const init = (srv, ip) => new Client(srv, { sendOrigin: false })
    .post('/api/sync/init', {}, { headers: { 'x-forwarded-for': ip } });
  const srv = await start({ TRUSTED_PROXIES: '127.0.0.1', RATE_INIT: '2/600' });
  // two addresses of one /64 spend one budget
  expectOk(await init(srv, '2001:db8:1:2::1'), 201);
  expectOk(await init(srv, '2001:db8:1:2:ffff:ffff:ffff:9'), 201);
  const r = await init(srv, '2001:db8:1:2::abcd');
  expectError(r, 429, 'rate_limited');
  expectRetryAfter(r);
  // the next /64 has its own
  expectOk(await init(srv, '2001:db8:1:3::1'), 201);
  // the log and the device request keep the whole address
  assert.ok(srv.logLines().some((l) => /ip=2001:db8:1:2:ffff:ffff:ffff:9 /.test(l)));
  // an IPv4-mapped address is its IPv4 address
  expectOk(await init(srv, '198.51.100.7'), 201);
  expectOk(await init(srv, '::ffff:198.51.100.7'), 201);
  expectError(await init(srv, '198.51.100.7'), 429, 'rate_limited');

  // with 128 bits, every address counts alone
  const each = await start({ TRUSTED_PROXIES: '127.0.0.1', RATE_INIT: '1/600', RATE_IPV6_PREFIX: '128' });
  expectOk(await init(each, '2001:db8:1:2::1'), 201);
  expectOk(await init(each, '2001:db8:1:2::2'), 201);
  expectError(await init(each, '2001:db8:1:2::1'), 429, 'rate_limited');
  // a /48: the whole site shares
  const site = await start({ TRUSTED_PROXIES: '127.0.0.1', RATE_INIT: '1/600', RATE_IPV6_PREFIX: '48' });
  expectOk(await init(site, '2001:db8:1:2::1'), 201);
  expectError(await init(site, '2001:db8:1:ffff::1'), 429, 'rate_limited');
  expectOk(await init(site, '2001:db8:2::1'), 201);
});

test('another site cannot spend the wrong-code budget by navigating a signed-in browser', async () => {
  const srv = await start({ RATE_USER_CODE_USER: '2/900', RATE_USER_CODE_IP: '1000/900' });
  const x = await signup(srv);
  const { data: good } = await initDevice(srv);
  // what a top-level navigation from another site sends: the Lax cookie
  // and Sec-Fetch-Site; refused before the code is looked up or counted
  for (let i = 0; i < 5; i++) {
    for (const site of ['cross-site', 'same-site']) {
      const r = await x.get(`/api/sync/request?code=${wrongCode(i)}`,
        { headers: { 'sec-fetch-site': site, 'sec-fetch-mode': 'navigate' } });
      expectError(r, 403, 'csrf_rejected');
    }
  }
  expectError(await x.get('/api/devices', { headers: { 'sec-fetch-site': 'cross-site' } }), 403, 'csrf_rejected');
  // the budget is whole: one wrong code, then the right one, still answer
  expectError(await x.get(`/api/sync/request?code=${wrongCode(9)}`,
    { headers: { 'sec-fetch-site': 'same-origin' } }), 404, 'not_found');
  const req = expectOk(await x.get(`/api/sync/request?code=${encodeURIComponent(good.user_code)}`,
    { headers: { 'sec-fetch-site': 'same-origin' } }));
  assert.equal(req.status, 'pending');
  // an address typed or bookmarked (none) and clients without the header pass
  expectOk(await x.get('/api/devices', { headers: { 'sec-fetch-site': 'none' } }));
  expectOk(await x.get('/api/devices'));
  // a bearer token is not a cookie: the header does not matter
  const dev = await deviceLogin(x);
  expectOk(await dev.get('/api/sync/config', { headers: { 'sec-fetch-site': 'cross-site' } }));
});

test('wrong user codes per user: claims and lookups count; then 429 even for a good code', async () => {
  const srv = await start({ RATE_USER_CODE_USER: '3/900', RATE_USER_CODE_IP: '1000/900' });
  const x = await signup(srv);
  const y = await signup(srv);
  const { data: good } = await initDevice(srv);
  expectError(await x.post('/api/sync/claim', { user_code: wrongCode(1) }), 404, 'not_found');
  expectError(await x.get(`/api/sync/request?code=${wrongCode(2)}`), 404, 'not_found');
  expectError(await x.post('/api/sync/claim', { user_code: wrongCode(3) }), 404, 'not_found');
  const r = await x.post('/api/sync/claim', { user_code: wrongCode(4) });
  expectError(r, 429, 'rate_limited');
  expectRetryAfter(r);
  const r2 = await x.post('/api/sync/claim', { user_code: good.user_code });
  expectError(r2, 429, 'rate_limited');
  expectRetryAfter(r2);
  // another user (same IP, under its limit) is not affected
  expectOk(await y.post('/api/sync/claim', { user_code: good.user_code }));
});

test('wrong user codes per IP: the count spans users', async () => {
  const srv = await start({ RATE_USER_CODE_USER: '1000/900', RATE_USER_CODE_IP: '3/900' });
  const x = await signup(srv);
  const y = await signup(srv);
  const z = await signup(srv);
  expectError(await x.post('/api/sync/claim', { user_code: wrongCode(5) }), 404, 'not_found');
  expectError(await x.post('/api/sync/claim', { user_code: wrongCode(6) }), 404, 'not_found');
  expectError(await y.post('/api/sync/claim', { user_code: wrongCode(7) }), 404, 'not_found');
  const r = await z.post('/api/sync/claim', { user_code: wrongCode(8) });
  expectError(r, 429, 'rate_limited');
  expectRetryAfter(r);
});

finalChecks(() => servers);
