// Accounts: signup, login, session, logout, password change, their audit
// rows, cookie attributes and Cache-Control.

import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { startServer, stopAll, test } from './lib/server.mjs';
import {
  Client, COOKIE_NAME, expectOk, expectError, expectInvalid, expectNoStore, expectUser, signup, login,
  deviceLogin, uniqueEmail, uniquePassword, rand,
} from './lib/client.mjs';
import { finalChecks } from './lib/checks.mjs';

let srv;
let anon;
before(async () => {
  // many signups here: lift the per-IP signup limit (tested in ratelimits)
  srv = await startServer({ env: { RATE_SIGNUP: '1000/3600' } });
  anon = new Client(srv, { jar: false });
});
after(stopAll);

async function auditTypes(c) {
  const d = expectOk(await c.get('/api/audit?limit=200'));
  return d.events.map((e) => e.event_type);
}

test('signup answers 201 {user}, lower-cases the email and sets the session cookie', async () => {
  const raw = `Mixed.Case-${rand()}@Example.COM`;
  const password = uniquePassword();
  srv.addSecret(password);
  const c = new Client(srv);
  const r = await c.post('/api/auth/signup', { email: raw, password });
  const d = expectOk(r, 201);
  expectUser(d.user, raw.toLowerCase());
  assert.deepEqual(Object.keys(d).sort(), ['user']);
  assert.deepEqual(Object.keys(d.user).sort(), ['created_at', 'email', 'id']);
  expectNoStore(r);
  const ck = r.setCookies.find((x) => x.name === COOKIE_NAME);
  assert.ok(ck, `Set-Cookie ${COOKIE_NAME}: ${r.setCookies.map((x) => x.raw)}`);
  assert.ok(ck.value.length >= 20, 'cookie value looks random');
  assert.equal(ck.attrs.httponly, true, 'HttpOnly');
  assert.equal(String(ck.attrs.samesite).toLowerCase(), 'lax', 'SameSite=Lax');
  assert.equal(ck.attrs.path, '/', 'Path=/');
  assert.equal(ck.attrs.secure, undefined, 'no Secure over http');
  assert.equal(ck.attrs.domain, undefined, 'no Domain');
  assert.ok(!r.text.includes(password), 'the password is not echoed');

  const s = await c.get('/api/auth/session');
  const sd = expectOk(s);
  assert.deepEqual(sd.user, d.user);
  expectNoStore(s);
});

test('signup: an email already registered (any case) answers 409 email_taken', async () => {
  const u = await signup(srv);
  const r = await anon.post('/api/auth/signup', { email: u.email.toUpperCase(), password: uniquePassword() });
  expectError(r, 409, 'email_taken');
  expectNoStore(r);
  // the original password still works
  await login(srv, u.email, u.password);
});

test('signup: 8 parallel signups of one email, exactly one 201', async () => {
  const email = uniqueEmail('race');
  const res = await Promise.all(Array.from({ length: 8 }, (_, i) => {
    const password = `${uniquePassword()}-${i}`;
    srv.addSecret(password);
    return new Client(srv, { jar: false }).post('/api/auth/signup', { email, password });
  }));
  assert.equal(res.filter((r) => r.status === 201).length, 1, res.map((r) => r.status).join(','));
  for (const r of res) if (r.status !== 201) expectError(r, 409, 'email_taken');
});

test('signup: invalid emails answer 400 invalid_request naming email', async () => {
  const bad = ['no-at-sign.example.com', 'a@@example.com', 'a@b@example.com', '@example.com', 'user@localhost',
    '', 'x', `${'x'.repeat(250)}@ex.com`, 'a@'];
  for (const email of bad) {
    expectInvalid(await anon.post('/api/auth/signup', { email, password: uniquePassword() }), 'email');
  }
  for (const email of [5, null, true, ['a@b.co'], { e: 1 }]) {
    expectInvalid(await anon.post('/api/auth/signup', { email, password: uniquePassword() }), 'email');
  }
  // edges: short but valid; exactly 254 bytes is valid, 255 is not
  await signup(srv, { email: `${rand(1)}@b.co` });
  const longEmail = (n) => `u${rand(2)}@${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(n)}.com`;
  assert.equal(Buffer.byteLength(longEmail(61)), 254);
  await signup(srv, { email: longEmail(61) });
  expectInvalid(await anon.post('/api/auth/signup', { email: longEmail(62), password: uniquePassword() }), 'email');
});

test('signup: passwords of 8..1024 bytes only (bytes, not characters)', async () => {
  const cases = [
    ['1234567', 400], // 7 bytes
    ['ééé' + 'a', 400], // 7 bytes
    ['x'.repeat(1025), 400],
    ['12345678', 201],
    ['éééé', 201], // 4 characters, 8 bytes
  ];
  for (const [password, status] of cases) {
    srv.addSecret(password);
    const r = await anon.post('/api/auth/signup', { email: uniqueEmail('pw'), password });
    if (status === 400) expectInvalid(r, 'password');
    else expectOk(r, 201);
  }
  for (const password of [12345678, null, ['abcdefgh']]) {
    expectInvalid(await anon.post('/api/auth/signup', { email: uniqueEmail('pw'), password }), 'password');
  }
});

test('passwords are never truncated (1024 bytes)', async () => {
  const pw = `${rand(8)}${'z'.repeat(1024 - 16)}`;
  assert.equal(pw.length, 1024);
  const u = await signup(srv, { password: pw });
  await login(srv, u.email, pw);
  for (const wrong of [pw.slice(0, 1023), `${pw.slice(0, 1023)}y`, pw.slice(0, 72), pw.slice(0, 64)]) {
    const r = await anon.post('/api/auth/login', { email: u.email, password: wrong });
    expectError(r, 401, 'invalid_credentials');
  }
});

test('session: 401 without a cookie, with an unknown cookie or with a bearer token', async () => {
  expectError(await anon.get('/api/auth/session'), 401, 'unauthorized');
  expectError(await anon.get('/api/auth/session', { headers: { cookie: `${COOKIE_NAME}=${'a'.repeat(43)}` } }), 401, 'unauthorized');
  const u = await signup(srv);
  const dev = await deviceLogin(u);
  expectError(await dev.get('/api/auth/session'), 401, 'unauthorized');
});

test('login: 200 {user} with a fresh session id; email case-insensitive; no-store', async () => {
  const u = await signup(srv);
  const c = new Client(srv);
  const r = await c.post('/api/auth/login', { email: u.email.toUpperCase(), password: u.password });
  const d = expectOk(r);
  expectUser(d.user, u.email);
  assert.deepEqual(d.user, u.user);
  expectNoStore(r);
  const ck = r.setCookies.find((x) => x.name === COOKIE_NAME);
  assert.ok(ck, 'login sets the cookie');
  assert.equal(ck.attrs.httponly, true);
  assert.equal(String(ck.attrs.samesite).toLowerCase(), 'lax');
  assert.notEqual(ck.value, u.cookies.get(COOKIE_NAME), 'fresh session id');
  // both sessions are valid
  expectOk(await c.get('/api/auth/session'));
  expectOk(await u.get('/api/auth/session'));
  // a login presenting an old cookie still gets a fresh id
  const again = u.clone();
  const r2 = await again.post('/api/auth/login', { email: u.email, password: u.password });
  expectOk(r2);
  assert.notEqual(again.cookies.get(COOKIE_NAME), u.cookies.get(COOKIE_NAME));
});

test('login: wrong password and unknown email answer the same 401 invalid_credentials', async () => {
  const u = await signup(srv);
  const a = await anon.post('/api/auth/login', { email: u.email, password: 'wrong-password-123' });
  const b = await anon.post('/api/auth/login', { email: uniqueEmail('nobody'), password: 'wrong-password-123' });
  const ja = expectError(a, 401, 'invalid_credentials');
  const jb = expectError(b, 401, 'invalid_credentials');
  assert.equal(ja.message, jb.message);
  assert.deepEqual(ja, jb);
  assert.equal(a.setCookies.length, 0, 'no cookie on failure');
  expectNoStore(a);
  assert.ok((await auditTypes(u)).includes('login_failed'));
});

test('login: bad bodies answer 400 invalid_request', async () => {
  expectInvalid(await anon.post('/api/auth/login', {}));
  expectInvalid(await anon.post('/api/auth/login', { email: 'a@b.co' }), 'password');
  expectInvalid(await anon.post('/api/auth/login', { email: 5, password: 'abcdefgh' }), 'email');
  expectInvalid(await anon.post('/api/auth/login', { email: 'a@b.co', password: 'abcdefgh', remember: true }), 'remember');
});

test('logout ends that web session, clears the cookie, keeps others', async () => {
  const u = await signup(srv);
  const other = await login(srv, u.email, u.password);
  const stale = u.clone();
  const r = await u.post('/api/auth/logout');
  assert.deepEqual(expectOk(r), {});
  expectNoStore(r);
  const ck = r.setCookies.find((x) => x.name === COOKIE_NAME);
  assert.ok(ck, 'logout sets the cookie to clear it');
  assert.equal(Number(ck.attrs['max-age']), 0, `Max-Age=0: ${ck.raw}`);
  assert.equal(ck.attrs.path, '/');
  expectError(await stale.get('/api/auth/session'), 401, 'unauthorized');
  expectError(await stale.put('/api/sync/config', { history: false }), 401, 'unauthorized');
  expectError(await stale.post('/api/auth/logout'), 401, 'unauthorized');
  expectOk(await other.get('/api/auth/session'));
  assert.ok((await auditTypes(other)).includes('logout'));
  expectError(await anon.post('/api/auth/logout'), 401, 'unauthorized');
});

test('password change: needs the current password; ends the other web sessions only', async () => {
  const s1 = await signup(srv);
  const s2 = await login(srv, s1.email, s1.password);
  const s3 = await login(srv, s1.email, s1.password);
  const dev = await deviceLogin(s1);
  const newPw = uniquePassword();
  srv.addSecret(newPw);

  const wrong = await s1.put('/api/auth/password', { current_password: 'not-the-password', new_password: newPw });
  expectError(wrong, 401, 'invalid_credentials');
  expectNoStore(wrong);
  expectOk(await s2.get('/api/auth/session')); // a failed change ends nothing

  expectInvalid(await s1.put('/api/auth/password', { current_password: s1.password, new_password: 'short' }), 'new_password');
  expectInvalid(await s1.put('/api/auth/password', { current_password: s1.password }), 'new_password');
  expectInvalid(await s1.put('/api/auth/password', { current_password: s1.password, new_password: newPw, extra: 1 }), 'extra');
  expectOk(await s2.get('/api/auth/session'));

  const ok = await s1.put('/api/auth/password', { current_password: s1.password, new_password: newPw });
  assert.deepEqual(expectOk(ok), {});
  expectNoStore(ok);
  expectOk(await s1.get('/api/auth/session')); // this session is kept
  expectError(await s2.get('/api/auth/session'), 401, 'unauthorized');
  expectError(await s3.get('/api/auth/session'), 401, 'unauthorized');
  expectError(await anon.post('/api/auth/login', { email: s1.email, password: s1.password }), 401, 'invalid_credentials');
  await login(srv, s1.email, newPw);
  expectOk(await dev.get('/api/sync/config')); // device sessions are not web sessions
  assert.ok((await auditTypes(s1)).includes('password_changed'));
  expectError(await anon.put('/api/auth/password', { current_password: newPw, new_password: uniquePassword() }), 401, 'unauthorized');
});

test('Cache-Control: no-store on every response of the auth, init, token, rotate and key endpoints, errors included', async () => {
  const u = await signup(srv);
  const dev = await deviceLogin(u);
  const plain = new Client(srv, { jar: false, sendOrigin: false });
  const reqs = [
    () => plain.get('/api/auth/session'),
    () => plain.post('/api/auth/logout'),
    () => plain.put('/api/auth/password', { current_password: 'abcdefgh', new_password: 'abcdefghi' }),
    () => plain.post('/api/auth/login', {}),
    () => plain.post('/api/auth/login', undefined, { body: 'x', contentType: 'text/plain' }),
    () => plain.post('/api/auth/signup', { email: 'bad' }),
    () => plain.post('/api/auth/verify-turnstile', {}),
    () => u.put('/api/auth/password', { current_password: u.password, new_password: 'x' }),
    () => u.put('/api/auth/password', { current_password: u.password, new_password: 'abcdefghij' }, { origin: null }),
    () => plain.post('/api/sync/init', { device_name: 5 }),
    () => plain.post('/api/sync/token', {}),
    () => plain.post('/api/sync/token', { temp_token: `flm_temp_${rand(16)}` }),
    () => plain.post('/api/sync/rotate'),
    () => plain.get('/api/sync/key'),
    () => dev.get('/api/sync/key'),
    () => dev.put('/api/sync/key', { wrapped_key: 'x' }),
    () => dev.post('/api/sync/key/rotate', {}),
  ];
  const missing = [];
  for (const f of reqs) {
    const r = await f();
    const cc = (r.headers.get('cache-control') || '').toLowerCase();
    if (!cc.split(',').map((x) => x.trim()).includes('no-store')) missing.push(`${r.method} ${r.path} -> ${r.status} (Cache-Control: "${cc}")`);
  }
  assert.deepEqual(missing, []);
});

test('audit rows for the account events carry the IP and user agent', async () => {
  const ua = `FlamingoAuthTest/${rand(3)}`;
  const u = await signup(srv, { userAgent: ua });
  await login(srv, u.email, u.password, { userAgent: ua });
  expectError(await anon.post('/api/auth/login', { email: u.email, password: 'bad-password-999' }), 401, 'invalid_credentials');
  const tmp = await login(srv, u.email, u.password);
  expectOk(await tmp.post('/api/auth/logout'));
  const d = expectOk(await u.get('/api/audit'));
  const types = d.events.map((e) => e.event_type);
  for (const t of ['signup', 'login', 'login_failed', 'logout']) assert.ok(types.includes(t), `audit has ${t}: ${types}`);
  const su = d.events.find((e) => e.event_type === 'signup');
  assert.equal(su.ip, '127.0.0.1');
  assert.equal(su.user_agent, ua);
  assert.equal(su.device_id, null);
  for (const e of d.events) {
    assert.deepEqual(Object.keys(e).sort(), ['created_at', 'device_id', 'event_type', 'id', 'ip', 'metadata', 'user_agent']);
    assert.ok(!JSON.stringify(e).includes(u.password), 'no password in audit');
  }
});

finalChecks(() => [srv]);
