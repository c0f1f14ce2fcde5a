// Turnstile: with a secret key and a (fake, local) siteverify URL, signup
// needs a good token; /api/auth/verify-turnstile checks one.

import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { startServer, stopAll, test } from './lib/server.mjs';
import { Client, expectOk, expectError, expectUser, uniqueEmail, uniquePassword, rand } from './lib/client.mjs';
import { startFakeTurnstile } from './lib/turnstile.mjs';
import { finalChecks } from './lib/checks.mjs';

const SECRET = `ts-secret-${rand(12)}`;
const SITE_KEY = `ts-site-${rand(6)}`;
const GOOD = `good-token-${rand(8)}`;
let fake;
let srv;
let anon;

before(async () => {
  fake = await startFakeTurnstile({ secret: SECRET, goodToken: GOOD });
  srv = await startServer({
    env: { TURNSTILE_SITE_KEY: SITE_KEY, TURNSTILE_SECRET_KEY: SECRET, TURNSTILE_VERIFY_URL: fake.url },
  });
  srv.addSecret(SECRET);
  anon = new Client(srv, { jar: false });
});
after(async () => {
  await stopAll();
  await fake?.close();
});

test('/api/info shows the site key', async () => {
  const d = expectOk(await anon.get('/api/info'));
  assert.equal(d.turnstile_site_key, SITE_KEY);
  assert.equal(d.registration_open, true);
});

test('signup without a token answers 403 turnstile_failed and makes no account', async () => {
  const email = uniqueEmail('ts');
  const password = uniquePassword();
  srv.addSecret(password);
  const r = await anon.post('/api/auth/signup', { email, password });
  expectError(r, 403, 'turnstile_failed');
  assert.equal(r.setCookies.length, 0);
  expectError(await anon.post('/api/auth/login', { email, password }), 401, 'invalid_credentials');
});

test('signup with a bad token answers 403 turnstile_failed; siteverify got secret, token and IP', async () => {
  const email = uniqueEmail('ts');
  const password = uniquePassword();
  srv.addSecret(password);
  const n = fake.calls.length;
  const r = await anon.post('/api/auth/signup', { email, password, turnstile_token: 'bad-token-123' });
  expectError(r, 403, 'turnstile_failed');
  const calls = fake.calls.slice(n);
  assert.equal(calls.length, 1, 'one siteverify call');
  assert.equal(calls[0].method, 'POST');
  assert.match(calls[0].contentType, /^application\/x-www-form-urlencoded/);
  assert.equal(calls[0].secret, SECRET);
  assert.equal(calls[0].response, 'bad-token-123');
  assert.equal(calls[0].remoteip, '127.0.0.1');
  expectError(await anon.post('/api/auth/login', { email, password }), 401, 'invalid_credentials');
  // and the same email can still sign up with a good token
  const ok = await new Client(srv).post('/api/auth/signup', { email, password, turnstile_token: GOOD });
  expectUser(expectOk(ok, 201).user, email);
});

test('signup with the good token answers 201', async () => {
  const n = fake.calls.length;
  const email = uniqueEmail('ts');
  const c = new Client(srv);
  const password = uniquePassword();
  srv.addSecret(password);
  const r = await c.post('/api/auth/signup', { email, password, turnstile_token: GOOD });
  expectUser(expectOk(r, 201).user, email);
  const calls = fake.calls.slice(n);
  assert.equal(calls.length, 1);
  assert.equal(calls[0].secret, SECRET);
  assert.equal(calls[0].response, GOOD);
  expectOk(await c.get('/api/auth/session'));
});

test('signup with a wrongly-typed or oversized token never reaches siteverify', async () => {
  const n = fake.calls.length;
  const r = await anon.post('/api/auth/signup', { email: uniqueEmail('ts'), password: uniquePassword(), turnstile_token: 12 });
  expectError(r, 400, 'invalid_request');
  assert.ok(r.message.includes('turnstile_token'), r.describe());
  const big = await anon.post('/api/auth/signup', { email: uniqueEmail('ts'), password: uniquePassword(), turnstile_token: 'x'.repeat(2049) });
  assert.ok([400, 403].includes(big.status), big.describe());
  assert.ok(['invalid_request', 'turnstile_failed'].includes(big.error), big.describe());
  assert.equal(fake.calls.length, n, 'siteverify not called');
});

test('verify-turnstile: good token → {verified:true}; bad or missing → 403/400', async () => {
  let n = fake.calls.length;
  const ok = await anon.post('/api/auth/verify-turnstile', { token: GOOD });
  assert.deepEqual(expectOk(ok), { verified: true });
  assert.match(ok.headers.get('cache-control') || '', /no-store/);
  assert.equal(fake.calls.length, n + 1);
  assert.equal(fake.calls[n].secret, SECRET);
  assert.equal(fake.calls[n].response, GOOD);
  n = fake.calls.length;
  const bad = await anon.post('/api/auth/verify-turnstile', { token: 'nope-token' });
  expectError(bad, 403, 'turnstile_failed');
  assert.equal(fake.calls.length, n + 1);
  assert.equal(fake.calls[n].response, 'nope-token');
  const missing = await anon.post('/api/auth/verify-turnstile', {});
  expectError(missing, 400, 'invalid_request');
  assert.ok(missing.message.includes('token'));
  const extra = await anon.post('/api/auth/verify-turnstile', { token: GOOD, foo: 1 });
  expectError(extra, 400, 'invalid_request');
  assert.ok(extra.message.includes('foo'));
});

test('login is not gated by Turnstile', async () => {
  const email = uniqueEmail('ts');
  const password = uniquePassword();
  srv.addSecret(password);
  expectOk(await new Client(srv).post('/api/auth/signup', { email, password, turnstile_token: GOOD }), 201);
  expectOk(await new Client(srv).post('/api/auth/login', { email, password }));
});

finalChecks(() => [srv]);
