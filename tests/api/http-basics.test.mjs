// HTTP basics: health, info, metrics, 404/405, CORS preflight and headers,
// CSRF on every cookie-authenticated mutation, content types, request log,
// web pages.

import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { startServer, stopAll, test } from './lib/server.mjs';
import {
  Client, TYPES, expectOk, expectError, signup, deviceLogin, initDevice, rand, b64, randomBytes, COOKIE_NAME, rawRequest,
} from './lib/client.mjs';
import { finalChecks } from './lib/checks.mjs';

const METRICS_TOKEN = `metrics-${rand(16)}`;
let srv;
let anon;
const extra = [];

before(async () => {
  srv = await startServer({
    env: { METRICS_TOKEN, MAX_BLOB_BYTES: '4096', MAX_BODY_BYTES: '2048', DATA_REVISIONS: '4' },
  });
  srv.addSecret(METRICS_TOKEN);
  anon = new Client(srv, { sendOrigin: false, jar: false });
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
    ['POST', '/healthz', ['GET']],
    ['DELETE', '/api/sync/key', ['GET', 'PUT']],
    ['GET', '/api/sync/key/rotate', ['POST']],
    ['GET', '/api/auth/logout', ['POST']],
    ['GET', '/api/sync/claim', ['POST']],
    ['GET', '/api/sync/deny', ['POST']],
    ['PUT', '/api/sync/request', ['GET']],
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

test('credentials are not interchangeable: cookie value as bearer, bearer as cookie, temp token as bearer', async () => {
  const u = await signup(srv);
  const d = await deviceLogin(u);
  const cookieVal = u.cookies.get(COOKIE_NAME);
  expectError(await anon.get('/api/sync/config', { headers: { authorization: `Bearer ${cookieVal}` } }), 401, 'unauthorized');
  expectError(await anon.get('/api/sync/config', { headers: { cookie: `${COOKIE_NAME}=${d.token}` } }), 401, 'unauthorized');
  expectError(await anon.get('/api/auth/session', { headers: { cookie: `${COOKIE_NAME}=${d.token}` } }), 401, 'unauthorized');
  const { data: init } = await initDevice(srv);
  expectError(await anon.get('/api/sync/config', { headers: { authorization: `Bearer ${init.temp_token}` } }), 401, 'unauthorized');
  // a token differing in case or with extra characters is unknown
  expectError(await anon.get('/api/sync/config', { headers: { authorization: `Bearer ${d.token.toUpperCase().replace('FLM_SYNC_', 'flm_sync_')}` } }), 401, 'unauthorized');
  expectError(await anon.get('/api/sync/config', { headers: { authorization: `Bearer ${d.token}0` } }), 401, 'unauthorized');
  expectError(await anon.get('/api/sync/config', { headers: { authorization: `Bearer ${d.token.slice(0, -1)}` } }), 401, 'unauthorized');
  expectOk(await anon.get('/api/sync/config', { headers: { authorization: `bearer ${d.token}` } }));
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

test('an over-long URL or header is refused with a 4xx, JSON and nosniff; the server keeps serving', async () => {
  const u = await anon.get(`/api/info?x=${'a'.repeat(10000)}`);
  assert.ok([400, 414].includes(u.status), u.describe());
  assert.equal(u.json?.success, false, u.describe());
  let h;
  try {
    // (asserted here, so kept out of the file-wide header check)
    h = await anon.get('/api/info', { headers: { 'x-big': 'a'.repeat(100000) }, noCommonChecks: true });
  } catch (e) {
    h = null; // closing the connection is acceptable too
  }
  if (h) {
    // Headers past CONNECTION_MEMORY_BYTES are refused by libmicrohttpd
    // itself, before any handler runs, with its own 431 page (docs/API.md).
    assert.equal(h.status, 431, h.describe());
  }
  expectOk(await anon.get('/api/info'));
});

test('framing: chunked bodies within the cap work, past it answer 413 when they end; two lengths are refused', async () => {
  const web = await signup(srv);
  const dev = await deviceLogin(web);
  const host = new URL(srv.url).host;
  const head = (method, path, extra) => [`${method} ${path} HTTP/1.1`, `Host: ${host}`,
    `Authorization: Bearer ${dev.token}`, ...extra, 'Connection: close', '', ''].join('\r\n');
  const chunk = (s) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
  const body = JSON.stringify({ history: false });
  const ok = await rawRequest(srv, [head('PUT', '/api/sync/config', ['Content-Type: application/json', 'Transfer-Encoding: chunked']),
    chunk(body.slice(0, 5)), chunk(body.slice(5)), '0\r\n\r\n']);
  assert.equal(ok.status, 200, ok.body.toString());
  assert.equal(JSON.parse(ok.body).data.history, false);
  // past MAX_BODY_BYTES (2048): read to its end, then 413, nothing changed
  const big = JSON.stringify({ history: true, pad: 'x'.repeat(3000) });
  const tooBig = await rawRequest(srv, [head('PUT', '/api/sync/config', ['Content-Type: application/json', 'Transfer-Encoding: chunked']),
    ...[0, 1000, 2000, 3000].map((i) => chunk(big.slice(i, i + 1000))), '0\r\n\r\n']);
  assert.equal(tooBig.status, 413, tooBig.body.toString());
  assert.equal(JSON.parse(tooBig.body).error, 'payload_too_large');
  // a body on a route that takes none, chunked: 413 too
  const noBody = await rawRequest(srv, [head('GET', '/api/sync/config', ['Transfer-Encoding: chunked']), chunk('{}'), '0\r\n\r\n']);
  assert.equal(noBody.status, 413, noBody.body.toString());
  // two lengths, or a length beside a transfer coding: 400, nothing changed
  for (const extra of [['Content-Length: 17', 'Content-Length: 2'], ['Content-Length: 17', 'Transfer-Encoding: chunked']]) {
    const r = await rawRequest(srv, [`${head('PUT', '/api/sync/config', ['Content-Type: application/json', ...extra])}{"history":true}`]);
    assert.equal(r.status, 400, `${extra}: ${r.body.toString()}`);
    assert.equal(JSON.parse(r.body).error, 'invalid_request');
  }
  assert.equal(expectOk(await dev.get('/api/sync/config')).history, false);
});

test('the path is routed on its own segments: %2F and %00 never split or cut one', async () => {
  const web = await signup(srv);
  const dev = await deviceLogin(web);
  expectError(await dev.get('/api/sync/data/history%2Frevisions'), 400, 'invalid_type');
  expectError(await dev.get('/api/sync/data/history%00'), 400, 'invalid_type');
  expectError(await dev.get('/api/sync/data/history/revisions/1%00'), 404, 'not_found');
  expectError(await dev.get('/api/audit?limit=1%00'), 400, 'invalid_request');
  // other escapes are decoded as usual
  expectError(await dev.get('/api/sync/data/%68istory'), 404, 'not_found');
});

test('token-shaped values in a URL are redacted from the request log', async () => {
  const sync = `flm_sync_${rand(16)}`;
  const temp = `flm_temp_${rand(16)}`;
  const marker = `redact-${rand()}`;
  expectOk(await anon.get(`/api/info?${marker}=1&token=${sync}&t=${temp}`));
  expectError(await anon.get(`/api/${marker}/${sync}`), 404, 'not_found');
  const line = await srv.waitForLog(new RegExp(marker));
  assert.ok(line, 'logged');
  await new Promise((r) => setTimeout(r, 100));
  const lines = srv.logLines().filter((l) => l.includes(marker));
  assert.equal(lines.length, 2);
  for (const l of lines) {
    assert.ok(!l.includes(sync.slice(9)) && !l.includes(temp.slice(9)), `token in the log: ${l}`);
  }
});

test('X-Forwarded-For from an untrusted peer is not believed', async () => {
  const ua = `xff-${rand()}`;
  const c = new Client(srv, { userAgent: ua });
  const { data: init } = await initDevice(srv);
  const r = await web.get(`/api/sync/request?code=${init.user_code}`, { headers: { 'x-forwarded-for': '203.0.113.9' } });
  expectOk(r);
  const i2 = await c.post('/api/sync/init', { device_name: 'xff' }, { headers: { 'x-forwarded-for': '203.0.113.9' } });
  const d2 = expectOk(i2, 201);
  assert.equal(expectOk(await web.get(`/api/sync/request?code=${d2.user_code}`)).ip, '127.0.0.1');
  expectOk(await dev.put('/api/sync/config', { setting: true }, { headers: { 'x-forwarded-for': '203.0.113.9' } }));
  const audit = expectOk(await web.get('/api/audit?limit=5')).events;
  assert.ok(audit.every((e) => e.ip !== '203.0.113.9'), JSON.stringify(audit.map((e) => e.ip)));
});

test('an https PUBLIC_URL: __Host- cookie with Secure, Origin checked against it, URLs built from it', async () => {
  const pub = 'https://sync.example.test';
  const s = await startServer({ env: { PUBLIC_URL: pub } });
  extra.push(s);
  const c = new Client(s);
  const password = `pw-${rand(8)}-https`;
  s.addSecret(password);
  const r = await c.post('/api/auth/signup', { email: `https-${rand()}@example.com`, password });
  expectOk(r, 201);
  const ck = r.setCookies.find((x) => x.name === '__Host-flm_session');
  assert.ok(ck, `__Host-flm_session cookie: ${r.setCookies.map((x) => x.raw)}`);
  assert.equal(ck.attrs.secure, true, 'Secure');
  assert.equal(ck.attrs.httponly, true, 'HttpOnly');
  assert.equal(String(ck.attrs.samesite).toLowerCase(), 'lax');
  assert.equal(ck.attrs.path, '/');
  assert.equal(ck.attrs.domain, undefined);
  assert.ok(!r.setCookies.some((x) => x.name === 'flm_session'), 'no plain flm_session under https');
  expectOk(await c.get('/api/auth/session'));
  expectError(await c.put('/api/sync/config', { history: false }, { origin: s.url }), 403, 'csrf_rejected');
  expectError(await c.put('/api/sync/config', { history: false }, { origin: 'http://sync.example.test' }), 403, 'csrf_rejected');
  assert.equal(expectOk(await c.put('/api/sync/config', { history: false }, { origin: pub })).history, false);
  const { data: init } = await initDevice(s);
  assert.equal(init.url, `${pub}/sync/authorize?code=${init.user_code}`);
  const login = await new Client(s, { jar: false }).get('/login', { expectNonJson: true });
  assert.match(login.headers.get('strict-transport-security') || '', /max-age=\d+/, 'HSTS on pages under https');
});

test('REGISTRATION_OPEN=false: /api/info says so and signup is refused', async () => {
  const closed = await startServer({ env: { REGISTRATION_OPEN: 'false' } });
  extra.push(closed);
  const c = new Client(closed, { jar: false });
  assert.equal(expectOk(await c.get('/api/info')).registration_open, false);
  const email = `closed-${rand()}@example.com`;
  const r = await c.post('/api/auth/signup', { email, password: 'long-enough-password' });
  assert.ok(r.status === 403 && r.json?.success === false, r.describe());
  expectError(await c.post('/api/auth/login', { email, password: 'long-enough-password' }), 401, 'invalid_credentials');
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


finalChecks(() => [srv, ...extra]);
