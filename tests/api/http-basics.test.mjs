// HTTP basics: health, info, metrics, 404/405, CORS preflight and headers,
// CSRF on every cookie-authenticated mutation, content types, request log,
// web pages.

import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { startServer, stopAll, test } from './lib/server.mjs';
import {
  Client, TYPES, expectOk, expectError, signup, deviceLogin, initDevice, rand, b64, randomBytes, COOKIE_NAME,
} from './lib/client.mjs';
import { finalChecks } from './lib/checks.mjs';

const METRICS_TOKEN = `metrics-${rand(16)}`;
let srv;
let anon;

before(async () => {
  srv = await startServer({
    env: { METRICS_TOKEN, MAX_BLOB_BYTES: '4096', MAX_BODY_BYTES: '2048', DATA_REVISIONS: '4' },
  });
  srv.addSecret(METRICS_TOKEN);
  anon = new Client(srv, { sendOrigin: false });
});
after(stopAll);

function allowList(res) {
  return (res.headers.get('allow') || '').split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
}

test('/healthz and /readyz answer 200 with the common headers', async () => {
  for (const p of ['/healthz', '/readyz']) {
    const r = await anon.get(p, { expectNonJson: true });
    assert.equal(r.status, 200, r.describe());
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.ok(r.headers.get('x-request-id'), 'X-Request-Id');
  }
});

test('X-Request-Id differs from request to request', async () => {
  const ids = new Set();
  for (let i = 0; i < 5; i++) {
    const r = await anon.get('/api/info');
    ids.add(r.headers.get('x-request-id'));
  }
  assert.equal(ids.size, 5);
});

test('/api/info tells a client what it needs', async () => {
  const r = await anon.get('/api/info');
  const d = expectOk(r);
  assert.equal(r.headers.get('content-type').replace(/\s/g, '').toLowerCase(), 'application/json;charset=utf-8');
  assert.equal(typeof d.version, 'string');
  assert.ok(d.version.length > 0);
  assert.deepEqual([...d.data_types].sort(), [...TYPES].sort());
  assert.equal(typeof d.limits, 'object');
  assert.equal(d.limits.max_blob_bytes, 4096);
  assert.equal(d.limits.max_body_bytes, 2048);
  assert.equal(d.registration_open, true);
  assert.equal(d.turnstile_site_key, null);
});

test('unknown paths answer 404 not_found as JSON', async () => {
  for (const [m, p] of [['GET', '/api/does-not-exist'], ['POST', '/api/nope'], ['GET', '/nope'],
    ['GET', '/api/sync/data/history/revisions/1/extra'], ['GET', '/api/devices/x/y'], ['GET', '/api']]) {
    const r = await anon.request(m, p, m === 'POST' ? { json: {} } : {});
    expectError(r, 404, 'not_found');
  }
});

test('known path with a wrong method answers 405 with Allow', async () => {
  const cases = [
    ['DELETE', '/api/info', ['GET']],
    ['PUT', '/api/auth/login', ['POST']],
    ['GET', '/api/sync/token', ['POST']],
    ['GET', '/api/sync/init', ['POST']],
    ['PATCH', '/api/sync/config', ['GET', 'PUT']],
    ['POST', '/api/devices/some-id', ['DELETE']],
    ['POST', '/api/sync/data/history', ['GET', 'PUT', 'DELETE']],
    ['DELETE', '/api/sync/events', ['GET']],
    ['POST', '/api/audit', ['GET']],
  ];
  for (const [m, p, allow] of cases) {
    const r = await anon.request(m, p, m === 'GET' || m === 'DELETE' ? {} : { json: {} });
    expectError(r, 405, 'method_not_allowed');
    const got = allowList(r);
    for (const a of allow) assert.ok(got.includes(a), `Allow of ${m} ${p} should list ${a}: "${r.headers.get('allow')}"`);
    assert.ok(!got.includes(m), `Allow of ${p} should not list ${m}`);
  }
});

test('OPTIONS preflight on any /api path answers 204 with the CORS headers', async () => {
  for (const p of ['/api/sync/data/history', '/api/auth/login', '/api/devices/abc', '/api/sync/events',
    '/api/sync/key/rotate', '/api/some/unknown/path']) {
    const r = await anon.request('OPTIONS', p, {
      headers: {
        origin: 'https://elsewhere.example', 'access-control-request-method': 'PUT',
        'access-control-request-headers': 'content-type, authorization, if-match',
      },
      expectNonJson: true,
    });
    assert.equal(r.status, 204, r.describe());
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
    assert.equal(r.headers.get('access-control-allow-credentials'), null);
    const methods = (r.headers.get('access-control-allow-methods') || '').split(',').map((s) => s.trim());
    assert.deepEqual(methods.sort(), ['DELETE', 'GET', 'OPTIONS', 'PATCH', 'POST', 'PUT']);
    const hdrs = (r.headers.get('access-control-allow-headers') || '').split(',').map((s) => s.trim().toLowerCase());
    for (const h of ['content-type', 'authorization', 'if-match', 'if-none-match', 'last-event-id']) {
      assert.ok(hdrs.includes(h), `Allow-Headers should list ${h}: ${r.headers.get('access-control-allow-headers')}`);
    }
    assert.equal(r.headers.get('access-control-max-age'), '86400');
    assert.equal(r.buf.length, 0, '204 has no body');
  }
});

test('API responses allow any origin and never credentials, errors included', async () => {
  const h = { origin: 'https://evil.example' };
  for (const [p, status] of [['/api/info', 200], ['/api/sync/config', 401], ['/api/nope', 404]]) {
    const r = await anon.get(p, { headers: h });
    assert.equal(r.status, status, r.describe());
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
    assert.equal(r.headers.get('access-control-allow-credentials'), null);
  }
});

test('credentials: missing, unknown and malformed bearer tokens answer 401 unauthorized', async () => {
  expectError(await anon.get('/api/sync/config'), 401, 'unauthorized');
  const fake = new Client(srv, { bearer: `flm_sync_${rand(16)}` });
  expectError(await fake.get('/api/sync/config'), 401, 'unauthorized');
  for (const auth of ['Bearer', 'Bearer ', 'Bearer flm_sync_xyz', `Basic ${b64('a:b')}`, `Bearer flm_temp_${rand(16)}`]) {
    expectError(await anon.get('/api/sync/config', { headers: { authorization: auth } }), 401, 'unauthorized');
  }
  expectError(await anon.get('/api/sync/config', { headers: { cookie: `${COOKIE_NAME}=${rand(16)}` } }), 401, 'unauthorized');
});

test('/metrics needs the METRICS_TOKEN bearer and answers Prometheus text', async () => {
  const none = await anon.get('/metrics', { expectNonJson: true });
  assert.equal(none.status, 401, none.describe());
  const wrong = await anon.get('/metrics', { headers: { authorization: 'Bearer not-the-token' }, expectNonJson: true });
  assert.equal(wrong.status, 401, wrong.describe());
  const ok = await anon.get('/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}` }, expectNonJson: true });
  assert.equal(ok.status, 200, ok.describe());
  assert.match(ok.headers.get('content-type') || '', /^text\/plain/);
  assert.match(ok.text, /^# (TYPE|HELP) \w+/m, 'Prometheus text format');
  for (const line of ok.text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eEInfNa]+( \d+)?$/, `metrics line: ${line}`);
  }
});

// ---- CSRF -----------------------------------------------------------------

let web;
let dev;

test('CSRF: setup (a user and a device)', async () => {
  web = await signup(srv);
  dev = await deviceLogin(web);
  expectOk(await web.put('/api/sync/data/history', { encrypted_data: b64(randomBytes(64)) }));
});

async function configNow() {
  return expectOk(await dev.get('/api/sync/config'));
}

test('CSRF: cookie PUT without Origin, with a foreign Origin or null is refused and changes nothing', async () => {
  const badOrigins = [null, 'http://evil.example', 'null', srv.origin.replace(/:(\d+)$/, (m, p) => `:${Number(p) + 1}`),
    srv.origin.replace('http://', 'https://'), `${srv.origin}.evil.example`];
  for (const origin of badOrigins) {
    const r = await web.put('/api/sync/config', { history: false }, { origin });
    expectError(r, 403, 'csrf_rejected');
  }
  for (const site of ['cross-site', 'same-site', 'none']) {
    const r = await web.put('/api/sync/config', { history: false }, { origin: null, headers: { 'sec-fetch-site': site } });
    expectError(r, 403, 'csrf_rejected');
  }
  assert.equal((await configNow()).history, true, 'refused requests changed the config');
});

test('CSRF: cookie PUT with the public Origin, or Sec-Fetch-Site: same-origin, is accepted', async () => {
  const a = await web.put('/api/sync/config', { history: false }, { origin: srv.origin });
  assert.equal(expectOk(a).history, false);
  const b = await web.put('/api/sync/config', { history: true }, { origin: null, headers: { 'sec-fetch-site': 'same-origin' } });
  assert.equal(expectOk(b).history, true);
});

test('CSRF: bearer requests need no Origin and ignore a foreign one', async () => {
  expectOk(await dev.put('/api/sync/config', { secret: false }));
  expectOk(await dev.put('/api/sync/config', { secret: true }, { origin: 'http://evil.example' }));
  expectOk(await dev.put('/api/sync/data/environment', { encrypted_data: b64(randomBytes(50)) }, { origin: 'http://evil.example' }));
});

test('CSRF: every cookie-authenticated mutation is refused without Origin', async () => {
  const { data: init } = await initDevice(srv);
  const other = await deviceLogin(web);
  const keyBody = { wrapped_key: b64(randomBytes(60)), kdf: { name: 'argon2id', salt: b64(randomBytes(16)), t: 3, m: 65536, p: 1 } };
  const cases = [
    ['POST', '/api/auth/logout', undefined],
    ['PUT', '/api/auth/password', { current_password: web.password, new_password: 'another-password-123' }],
    ['POST', '/api/sync/claim', { user_code: init.user_code }],
    ['POST', '/api/sync/deny', { user_code: init.user_code }],
    ['PUT', '/api/sync/config', { history: false }],
    ['PUT', '/api/sync/config/data-type/history', { enabled: false }],
    ['PUT', '/api/sync/key', keyBody],
    ['POST', '/api/sync/key/rotate', { ...keyBody, expected_version: 0, items: [] }],
    ['PUT', '/api/sync/data/history', { encrypted_data: b64(randomBytes(40)) }],
    ['DELETE', '/api/sync/data/history', undefined],
    ['DELETE', `/api/devices/${other.deviceId}`, undefined],
  ];
  for (const [m, p, json] of cases) {
    const r = await web.request(m, p, { json, origin: null });
    expectError(r, 403, 'csrf_rejected');
    const r2 = await web.request(m, p, { json, origin: 'https://attacker.example' });
    expectError(r2, 403, 'csrf_rejected');
  }
  // Nothing happened.
  expectOk(await web.get('/api/auth/session'));
  const req = expectOk(await web.get(`/api/sync/request?code=${encodeURIComponent(init.user_code)}`));
  assert.equal(req.status, 'pending');
  assert.equal((await configNow()).history, true);
  expectError(await web.get('/api/sync/key'), 404, 'not_found');
  const h = expectOk(await web.get('/api/sync/data/history'));
  assert.equal(h.version, 1);
  expectOk(await other.get('/api/sync/config'));
  // The login password is unchanged.
  const again = new Client(srv);
  expectOk(await again.post('/api/auth/login', { email: web.email, password: web.password }));
});

test('CSRF: cookie GETs need no Origin', async () => {
  expectOk(await web.get('/api/auth/session', { origin: null }));
  expectOk(await web.get('/api/sync/config', { origin: null }));
  expectOk(await web.get('/api/devices', { origin: null }));
});

// ---- content types ------------------------------------------------------

test('bodies with another Content-Type answer 415 and change nothing', async () => {
  for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream', 'multipart/form-data; boundary=x']) {
    const r = await dev.put('/api/sync/config', undefined, { body: '{"history":false}', contentType: ct });
    expectError(r, 415, 'unsupported_media_type');
    const r2 = await web.put('/api/sync/config', undefined, { body: '{"history":false}', contentType: ct });
    expectError(r2, 415, 'unsupported_media_type');
  }
  const email = `ct-${rand()}@example.com`;
  const s = await anon.post('/api/auth/signup', undefined, { body: JSON.stringify({ email, password: 'long-enough-pw' }), contentType: 'text/plain' });
  expectError(s, 415, 'unsupported_media_type');
  const k = await dev.put('/api/sync/key', undefined, { body: b64(randomBytes(60)), contentType: 'application/octet-stream' });
  expectError(k, 415, 'unsupported_media_type');
  const d = await dev.put('/api/sync/data/history', undefined, { body: 'hello world', contentType: 'text/plain' });
  expectError(d, 415, 'unsupported_media_type');
  assert.equal((await configNow()).history, true);
  assert.equal(expectOk(await dev.get('/api/sync/data/history')).version, 1);
  // The signup did not happen.
  const login = await anon.post('/api/auth/login', { email, password: 'long-enough-pw' });
  expectError(login, 401, 'invalid_credentials');
});

test('application/json with a charset parameter is accepted', async () => {
  const r = await dev.put('/api/sync/config', undefined, { body: '{"collection":false}', contentType: 'application/json; charset=utf-8' });
  assert.equal(expectOk(r).collection, false);
  const r2 = await dev.put('/api/sync/config', undefined, { body: '{"collection":true}', contentType: 'application/json;charset=UTF-8' });
  assert.equal(expectOk(r2).collection, true);
});

// ---- request log ------------------------------------------------------------

test('the request log has one line per request', async () => {
  const marker = `/api/log-marker-${rand()}`;
  const r = await anon.get(marker);
  expectError(r, 404, 'not_found');
  const line = await srv.waitForLog(new RegExp(marker));
  assert.ok(line, 'the request was logged');
  assert.equal(srv.logLines().filter((l) => l.includes(marker)).length, 1, 'exactly one line');
  const marker2 = `/api/log-marker-${rand()}`;
  for (let i = 0; i < 3; i++) await anon.get(marker2);
  await srv.waitForLog(new RegExp(marker2));
  const t0 = Date.now();
  while (srv.logLines().filter((l) => l.includes(marker2)).length < 3 && Date.now() - t0 < 2000) {
    await new Promise((res) => setTimeout(res, 20));
  }
  assert.equal(srv.logLines().filter((l) => l.includes(marker2)).length, 3);
});

// ---- web pages ----------------------------------------------------------

function cspDirectives(res) {
  const csp = res.headers.get('content-security-policy') || '';
  const out = {};
  for (const part of csp.split(';')) {
    const [name, ...vals] = part.trim().split(/\s+/);
    if (name) out[name.toLowerCase()] = vals;
  }
  return out;
}

function expectPageHeaders(res) {
  const csp = cspDirectives(res);
  assert.ok(Object.keys(csp).length, `no Content-Security-Policy on ${res.path}`);
  assert.deepEqual(csp['frame-ancestors'], ["'none'"], `frame-ancestors on ${res.path}`);
  assert.deepEqual(csp['object-src'], ["'none'"], `object-src on ${res.path}`);
  assert.deepEqual(csp['base-uri'], ["'none'"], `base-uri on ${res.path}`);
  const script = csp['script-src'] || csp['default-src'];
  assert.ok(script, `no script-src/default-src on ${res.path}`);
  assert.ok(!script.includes("'unsafe-inline'") && !script.includes("'unsafe-eval'") && !script.includes('*'),
    `script-src allows inline/eval/any on ${res.path}: ${script.join(' ')}`);
  assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
}

function redirectTarget(res) {
  assert.ok([301, 302, 303, 307, 308].includes(res.status), `expected a redirect: ${res.describe()}`);
  const loc = res.headers.get('location');
  assert.ok(loc, 'Location');
  return new URL(loc, srv.url);
}

test('web pages: / redirects to /dashboard; dashboards need a session', async () => {
  const root = await anon.get('/', { expectNonJson: true });
  assert.equal(redirectTarget(root).pathname, '/dashboard');
  for (const p of ['/dashboard', '/dashboard/sync', '/dashboard/devices', '/dashboard/security']) {
    const r = await anon.get(p, { expectNonJson: true });
    const u = redirectTarget(r);
    assert.equal(u.pathname, '/login', `${p} without session`);
    assert.equal(u.searchParams.get('redirect'), p);
    const w = await web.get(p, { expectNonJson: true });
    assert.equal(w.status, 200, `${p} with a session: ${w.status}`);
    assert.match(w.headers.get('content-type') || '', /^text\/html/);
    expectPageHeaders(w);
  }
});

test('web pages: public pages carry a strict CSP and no inline script', async () => {
  for (const p of ['/login', '/sync/complete']) {
    const r = await anon.get(p, { expectNonJson: true });
    assert.equal(r.status, 200, r.describe());
    assert.match(r.headers.get('content-type') || '', /^text\/html/);
    expectPageHeaders(r);
    const inline = r.text.match(/<script(?![^>]*\bsrc\s*=)[^>]*>/gi);
    assert.equal(inline, null, `inline script on ${p}`);
    assert.doesNotMatch(r.text, /\son[a-z]+\s*=\s*["']/i, `inline event handler on ${p}`);
  }
});

test('web pages: /sync/authorize sends a visitor without session to login and back', async () => {
  const { data: init } = await initDevice(srv);
  const p = `/sync/authorize?code=${init.user_code}`;
  const r = await anon.get(p, { expectNonJson: true });
  const u = redirectTarget(r);
  assert.equal(u.pathname, '/login');
  assert.equal(u.searchParams.get('redirect'), p);
  const w = await web.get(p, { expectNonJson: true });
  assert.equal(w.status, 200, w.describe());
  expectPageHeaders(w);
  assert.ok(!w.text.includes(init.temp_token), 'the page never holds the temp token');
});

finalChecks(() => [srv]);
