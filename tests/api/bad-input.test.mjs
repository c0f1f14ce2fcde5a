// Bad bodies change nothing: malformed JSON, wrong shapes and types,
// unknown fields, missing fields, non-UTF-8, deep nesting, oversize bodies
// (by size and by Content-Length before the body is read). Checked with
// GETs after every group.

import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { startServer, stopAll, test } from './lib/server.mjs';
import {
  Client, expectOk, expectError, expectInvalid, signup, deviceLogin, initDevice, b64, randomBytes, rawRequest,
  uniqueEmail, uniquePassword,
} from './lib/client.mjs';
import { finalChecks } from './lib/checks.mjs';

const MAX_BODY = 1024;
const MAX_BLOB = 2048;
let srv;
let web;
let dev;
let state0;

before(async () => {
  srv = await startServer({ env: { MAX_BODY_BYTES: String(MAX_BODY), MAX_BLOB_BYTES: String(MAX_BLOB) } });
  web = await signup(srv);
  dev = await deviceLogin(web);
  expectOk(await dev.put('/api/sync/key', { wrapped_key: b64(randomBytes(48)), kdf: { name: 'argon2id', t: 3 } }));
  expectOk(await dev.put('/api/sync/data/history', { encrypted_data: b64(randomBytes(100)) }));
  expectOk(await dev.put('/api/sync/data/history', { encrypted_data: b64(randomBytes(100)) }));
  state0 = await state();
});
after(stopAll);

async function state() {
  return {
    config: expectOk(await dev.get('/api/sync/config')),
    key: expectOk(await dev.get('/api/sync/key')),
    data: expectOk(await dev.get('/api/sync/data?include=data')),
    revisions: expectOk(await dev.get('/api/sync/data/history/revisions')),
    events: expectOk(await dev.get('/api/sync/events?after=0&wait=0')),
    devices: expectOk(await web.get('/api/devices')).devices.map(({ id, status, name }) => ({ id, status, name })),
  };
}

async function unchanged() {
  assert.deepEqual(await state(), state0, 'a rejected request changed the stored state');
  assert.equal((await dev.get('/healthz', { expectNonJson: true })).status, 200);
}

function raw(c, method, path, body, contentType = 'application/json') {
  return c.request(method, path, { body, contentType });
}

test('malformed JSON answers 400 invalid_request on every JSON route', async () => {
  const bodies = ['{', '{"history": false', '{"history": false,}', "{'history': false}", '{"history": False}',
    '{"history": false} {}', '{"history": false} x', 'nul', '{"a" "b"}', '\u0000{}'];
  const routes = [
    [dev, 'PUT', '/api/sync/config'], [dev, 'PUT', '/api/sync/config/data-type/history'],
    [dev, 'PUT', '/api/sync/key'], [dev, 'POST', '/api/sync/key/rotate'], [dev, 'PUT', '/api/sync/data/secret'],
    [web, 'PUT', '/api/sync/config'], [web, 'POST', '/api/sync/claim'], [new Client(srv), 'POST', '/api/auth/signup'],
    [new Client(srv), 'POST', '/api/auth/login'], [new Client(srv), 'POST', '/api/sync/init'], [new Client(srv), 'POST', '/api/sync/token'],
  ];
  for (const [c, m, p] of routes) {
    for (const b of bodies) {
      const r = await raw(c, m, p, b);
      expectError(r, 400, 'invalid_request');
    }
  }
  await unchanged();
});

test('a JSON value that is not an object answers 400', async () => {
  for (const b of ['[]', '[{"history": false}]', '"history"', '42', 'true', 'null']) {
    expectInvalid(await raw(dev, 'PUT', '/api/sync/config', b));
    expectInvalid(await raw(dev, 'PUT', '/api/sync/data/secret', b));
    expectInvalid(await raw(dev, 'PUT', '/api/sync/key', b));
    expectInvalid(await raw(new Client(srv), 'POST', '/api/auth/signup', b));
  }
  await unchanged();
});

test('unknown fields answer 400 naming the field, on every JSON route', async () => {
  const { data: init } = await initDevice(srv);
  const cases = [
    [dev, 'PUT', '/api/sync/config', { history: false, zz_unknown_a: 1 }, 'zz_unknown_a'],
    [dev, 'PUT', '/api/sync/config/data-type/history', { enabled: false, zz_unknown_b: 1 }, 'zz_unknown_b'],
    [dev, 'PUT', '/api/sync/key', { wrapped_key: b64(randomBytes(48)), kdf: {}, zz_unknown_c: 1 }, 'zz_unknown_c'],
    [dev, 'POST', '/api/sync/key/rotate', { wrapped_key: b64(randomBytes(48)), kdf: {}, expected_version: 1, items: [], zz_unknown_d: 1 }, 'zz_unknown_d'],
    [dev, 'POST', '/api/sync/key/rotate', { wrapped_key: b64(randomBytes(48)), kdf: {}, expected_version: 1, items: [{ type: 'history', encrypted_data: b64('x'), zz_unknown_e: 1 }] }, 'zz_unknown_e'],
    [dev, 'PUT', '/api/sync/data/history', { encrypted_data: b64('x'), zz_unknown_f: 1 }, 'zz_unknown_f'],
    [web, 'POST', '/api/sync/claim', { user_code: init.user_code, zz_unknown_g: 1 }, 'zz_unknown_g'],
    [web, 'POST', '/api/sync/deny', { user_code: init.user_code, zz_unknown_h: 1 }, 'zz_unknown_h'],
    [new Client(srv), 'POST', '/api/sync/token', { temp_token: init.temp_token, zz_unknown_i: 1 }, 'zz_unknown_i'],
    [new Client(srv), 'POST', '/api/sync/init', { device_name: 'x', zz_unknown_j: 1 }, 'zz_unknown_j'],
    [web, 'PUT', '/api/auth/password', { current_password: web.password, new_password: 'new-password-1', zz_unknown_k: 1 }, 'zz_unknown_k'],
  ];
  for (const [c, m, p, json, field] of cases) {
    expectInvalid(await c.request(m, p, { json }), field);
  }
  // signup with an unknown field makes no account
  const email = uniqueEmail('unk');
  const password = uniquePassword();
  srv.addSecret(password);
  expectInvalid(await new Client(srv).post('/api/auth/signup', { email, password, zz_unknown_l: true }), 'zz_unknown_l');
  expectOk(await new Client(srv).post('/api/auth/signup', { email, password }), 201);
  // the device request was neither claimed nor denied, the password is unchanged
  assert.equal(expectOk(await web.get(`/api/sync/request?code=${init.user_code}`)).status, 'pending');
  expectError(await new Client(srv).post('/api/sync/token', { temp_token: init.temp_token }), 400, 'authorization_pending');
  expectOk(await new Client(srv).post('/api/auth/login', { email: web.email, password: web.password }));
  await unchanged();
});

test('wrong types and missing fields answer 400 naming the field', async () => {
  const cases = [
    [dev, 'PUT', '/api/sync/data/history', { encrypted_data: ['QUJD'] }, 'encrypted_data'],
    [dev, 'PUT', '/api/sync/data/history', { encrypted_data: b64('x'), base_version: true }, 'base_version'],
    [dev, 'PUT', '/api/sync/data/history', { encrypted_data: b64('x'), key_version: '1' }, 'key_version'],
    [dev, 'PUT', '/api/sync/data/history', { base_version: 2 }, 'encrypted_data'],
    [dev, 'PUT', '/api/sync/key', { wrapped_key: b64(randomBytes(48)), kdf: 1 }, 'kdf'],
    [dev, 'PUT', '/api/sync/key', { wrapped_key: b64(randomBytes(48)), kdf: {}, expected_version: 'one' }, 'expected_version'],
    [dev, 'PUT', '/api/sync/key', { wrapped_key: b64(randomBytes(48)) }, 'kdf'],
    [dev, 'POST', '/api/sync/key/rotate', { wrapped_key: b64(randomBytes(48)), kdf: {}, expected_version: 1, items: {} }, 'items'],
    [dev, 'POST', '/api/sync/key/rotate', { wrapped_key: b64(randomBytes(48)), kdf: {}, expected_version: 1 }, 'items'],
    [dev, 'PUT', '/api/sync/config', { history: 'yes' }, 'history'],
    [dev, 'PUT', '/api/sync/config/data-type/history', { enabled: 1 }, 'enabled'],
    [web, 'POST', '/api/sync/claim', { user_code: ['BCDF-GHJK'] }, 'user_code'],
    [new Client(srv), 'POST', '/api/sync/token', {}, 'temp_token'],
    [new Client(srv), 'POST', '/api/sync/token', { temp_token: 5 }, 'temp_token'],
    [new Client(srv), 'POST', '/api/auth/signup', { email: uniqueEmail() }, 'password'],
    [new Client(srv), 'POST', '/api/auth/login', { password: 'abcdefghij' }, 'email'],
    [web, 'PUT', '/api/auth/password', { current_password: 1, new_password: 'new-password-1' }, 'current_password'],
  ];
  for (const [c, m, p, json, field] of cases) {
    expectInvalid(await c.request(m, p, { json }), field);
  }
  await unchanged();
});

test('non-UTF-8 bodies answer 400 and store nothing', async () => {
  const bad = Buffer.from([0xc3, 0x28]); // invalid 2-byte sequence
  const overlong = Buffer.from([0xc0, 0xaf]); // overlong '/'
  const cat = (...parts) => Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p))));
  const email = `utf${Date.now()}`;
  const password = uniquePassword();
  srv.addSecret(password);
  const cases = [
    [dev, 'PUT', '/api/sync/key', cat('{"wrapped_key":"', b64(randomBytes(48)), '","kdf":{"name":"argon2id', bad, '"}}')],
    [dev, 'PUT', '/api/sync/key', cat('{"wrapped_key":"', b64(randomBytes(48)), '","kdf":{"name":"', overlong, '"}}')],
    [dev, 'PUT', '/api/sync/data/history', cat('{"encrypted_data":"QUJD', bad, '"}')],
    [dev, 'PUT', '/api/sync/config', cat('{"history":false,"', bad, '":true}')],
    [new Client(srv), 'POST', '/api/auth/signup', cat(`{"email":"${email}`, bad, `@example.com","password":"${password}"}`)],
    [new Client(srv), 'POST', '/api/auth/signup', cat(`{"email":"${email}@example.com","password":"${password}`, Buffer.from([0xff]), '"}')],
    [new Client(srv), 'POST', '/api/sync/init', cat('{"device_name":"laptop', Buffer.from([0xfe, 0xff]), '"}')],
  ];
  for (const [c, m, p, body] of cases) {
    expectInvalid(await c.request(m, p, { body, contentType: 'application/json' }));
  }
  // the signups made no account
  expectError(await new Client(srv).post('/api/auth/login', { email: `${email}@example.com`, password }), 401, 'invalid_credentials');
  await unchanged();
});

test('deep nesting answers 400 and the server keeps serving', async () => {
  const deepArr = (n) => `${'['.repeat(n)}${']'.repeat(n)}`;
  const deepObj = (n) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
  expectInvalid(await raw(dev, 'PUT', '/api/sync/config', `{"history":${deepArr(400)}}`));
  expectInvalid(await raw(dev, 'PUT', '/api/sync/config', deepArr(500)));
  expectInvalid(await raw(dev, 'PUT', '/api/sync/key', `{"wrapped_key":"${b64(randomBytes(48))}","kdf":${deepObj(100)}}`));
  expectInvalid(await raw(dev, 'PUT', '/api/sync/data/history', `{"encrypted_data":"QUJD","x":${deepArr(600)}}`));
  expectInvalid(await raw(new Client(srv), 'POST', '/api/auth/login', `{"email":${deepArr(500)}}`));
  await unchanged();
});

test('bodies over MAX_BODY_BYTES answer 413 and change nothing; data and key routes have their own caps', async () => {
  const pad = (json, n) => `${json.slice(0, -1)}${' '.repeat(n)}}`;
  expectError(await raw(dev, 'PUT', '/api/sync/config', pad('{"history":false}', MAX_BODY)), 413, 'payload_too_large');
  expectError(await raw(web, 'PUT', '/api/sync/config', pad('{"history":false}', MAX_BODY * 4)), 413, 'payload_too_large');
  expectError(await raw(new Client(srv), 'POST', '/api/sync/init', pad('{"device_name":"x"}', MAX_BODY)), 413, 'payload_too_large');
  const email = uniqueEmail('big');
  const password = uniquePassword();
  srv.addSecret(password);
  expectError(await raw(new Client(srv), 'POST', '/api/auth/signup', pad(JSON.stringify({ email, password }), MAX_BODY)), 413, 'payload_too_large');
  expectError(await new Client(srv).post('/api/auth/login', { email, password }), 401, 'invalid_credentials');
  await unchanged();
  // exactly at the cap is fine
  const exact = '{"history":true}';
  const atCap = `${exact.slice(0, -1)}${' '.repeat(MAX_BODY - exact.length)}}`;
  assert.equal(Buffer.byteLength(atCap), MAX_BODY);
  assert.equal(expectOk(await raw(dev, 'PUT', '/api/sync/config', atCap)).history, true);
  state0 = await state(); // updated_at may have moved
});

test('Content-Length over the cap answers 413 before the body is read, and closes', async () => {
  const auth = `Authorization: Bearer ${dev.token}\r\n`;
  const r = await rawRequest(srv, [
    `PUT /api/sync/config HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n`,
    '{"history":false',
  ], { timeoutMs: 5000, waitClose: true });
  assert.equal(r.status, 413, r.raw.toString('latin1').slice(0, 300));
  assert.equal(r.json?.error, 'payload_too_large');
  assert.ok(r.closed, 'the connection is closed');
  const r2 = await rawRequest(srv, [
    `PUT /api/sync/data/history HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}Content-Type: application/octet-stream\r\nContent-Length: 1073741824\r\n\r\n`,
    randomBytes(1000),
  ], { timeoutMs: 5000, waitClose: true });
  assert.equal(r2.status, 413, r2.raw.toString('latin1').slice(0, 300));
  assert.equal(r2.json?.error, 'payload_too_large');
  assert.ok(r2.closed);
  const r3 = await rawRequest(srv, [
    'POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 99999999\r\n\r\n',
  ], { timeoutMs: 5000, waitClose: true });
  assert.equal(r3.status, 413);
  assert.ok(r3.closed);
  await unchanged();
});

test('data and key uploads are bounded by their own limits, not MAX_BODY_BYTES', async () => {
  const blob = randomBytes(MAX_BLOB); // base64 ≈ 2.7 KiB > MAX_BODY_BYTES
  const d = expectOk(await dev.put('/api/sync/data/environment', { encrypted_data: b64(blob) }));
  assert.equal(d.size, MAX_BLOB);
  const k = expectOk(await dev.put('/api/sync/key', { wrapped_key: b64(randomBytes(4096)), kdf: { name: 'argon2id', note: 'x'.repeat(900) } }));
  assert.equal(k.version, 2);
  assert.equal(expectOk(await dev.get('/api/sync/data/environment')).encrypted_data, b64(blob));
});

finalChecks(() => [srv]);
