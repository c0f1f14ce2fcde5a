// Hostile input: a corpus of bad requests (built from the tables below) over
// every route and every kind of badness. Each case states the status and
// `error` code it must get (docs/API.md, the spec's error table; protocol
// errors that libmicrohttpd answers itself, before any handler, get its own
// HTML page: `mhd`). Every case is sent byte for byte over a raw socket (no
// client library "fixes" the path or the headers), with the credential it
// names (bearer token, or web-session cookie with the right Origin on
// mutations). After each case: the answer matches, the server is up
// (/healthz), and the database is byte for byte unchanged (`sqlite3 .dump`,
// compared after every case and over the whole corpus).
//
// The credentials are warmed up first (a token's first use and a device's
// last_seen are written, throttled to once a minute), so that any write
// during the corpus is a bug.
//
// Left out on purpose, because they legitimately change state (they are not
// bad input, they are counted attempts): wrong but well-formed user codes
// (claim, deny, GET /api/sync/request: counted by the per-user and per-IP
// limiter, even when the "code" is SQL), failed logins with well-formed
// bodies (counted per account and IP, audited), wrong current passwords,
// signups whose email is well formed (counted per IP), device inits with
// acceptable fields (a device request is created, SQL in its name is just a
// name), and token polls of a live temp token (they record the poll time).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before } from 'node:test';
import { startServer, stopAll, test, sleep } from '../api/lib/server.mjs';
import { Client, expectOk, signup, deviceLogin, initDevice, rawRequest, TYPES } from '../api/lib/client.mjs';

after(stopAll);

const MAX_BODY = 4096;
const MAX_BLOB = 4096;
const BLOB_CAP = Math.ceil(MAX_BLOB / 3) * 4 + 4096; // a data PUT's JSON body cap
const b64 = (n, fill = 7) => Buffer.alloc(n, fill).toString('base64');
const J = (o) => JSON.stringify(o);
const SQL = [
  "' OR '1'='1", "'; DROP TABLE users; --", '" OR ""="', "1; SELECT * FROM keys", "') OR ('a'='a",
  "%' OR 1=1 --", "\\'; DELETE FROM data_revisions; --", "' UNION SELECT password_hash FROM users --",
];

// ---- the server and its state --------------------------------------------------------

let srv;
let ctx;            // what the cases refer to: tokens, cookie, ids, origin, host
let web;            // user A, web session
let dev;            // user A, device (bearer)

before(async () => {
  srv = await startServer({ env: { MAX_BODY_BYTES: String(MAX_BODY), MAX_BLOB_BYTES: String(MAX_BLOB) } });
  web = await signup(srv);
  dev = await deviceLogin(web);
  const spare = await deviceLogin(web); // a device of A that only the NUL case below aims at
  const other = await signup(srv);       // user B: its device id must be invisible to A
  const otherDev = await deviceLogin(other);
  expectOk(await dev.put('/api/sync/key', { wrapped_key: b64(48), kdf: { name: 'argon2id', t: 3 } }));
  expectOk(await dev.put('/api/sync/data/history', { encrypted_data: b64(100, 1) }));
  expectOk(await dev.put('/api/sync/data/history', { encrypted_data: b64(100, 2) }));
  expectOk(await dev.put('/api/sync/data/secret', { encrypted_data: b64(50, 3) }));
  const { data: pending } = await initDevice(srv);
  const u = new URL(srv.url);
  ctx = {
    host: u.host, origin: srv.origin, token: dev.token, cookie: web.cookies.get('flm_session'),
    deviceId: dev.deviceId, spareId: spare.deviceId, otherDeviceId: otherDev.deviceId,
    pendingTemp: pending.temp_token, historyVersion: 2,
  };
  srv.addSecret(ctx.cookie);
});

// ---- building the corpus -----------------------------------------------------------------

const corpus = [];
const MUTATIONS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Adds a case. opts: cred ('none' | 'bearer' | 'cookie' | 'both'), body
 * (string | Buffer | fn(ctx)), ct (Content-Type; null = none; default JSON
 * when there is a body), headers ({name: value | fn(ctx)}), origin (cookie
 * mutations: the Origin to send, null = none), raw (fn(ctx) → the request
 * bytes, for what cannot be said with the above), expect [status, code]
 * where code is an `error` code, 'mhd' (libmicrohttpd's own page) or 'ok';
 * [0, 'closed']: the connection is closed without an answer.
 */
function add(kind, method, path, expect, opts = {}) {
  const creds = opts.cred === 'both' ? ['bearer', 'cookie'] : [opts.cred || 'none'];
  for (const cred of creds) {
    corpus.push({ kind, method, path, expect, ...opts, cred, name: `${kind}: ${method} ${typeof path === 'string' ? path.slice(0, 80) : '(path)'} [${cred}]` });
  }
}

function requestBytes(c) {
  if (c.raw) return c.raw(ctx);
  const path = typeof c.path === 'function' ? c.path(ctx) : c.path;
  const head = [`${c.method} ${path} HTTP/1.1`, `Host: ${ctx.host}`];
  if (c.cred === 'bearer') head.push(`Authorization: Bearer ${ctx.token}`);
  if (c.cred === 'cookie') {
    head.push(`Cookie: flm_session=${ctx.cookie}`);
    const origin = c.origin === undefined ? ctx.origin : c.origin;
    if (MUTATIONS.has(c.method) && origin !== null) head.push(`Origin: ${origin}`);
  }
  for (const [k, v] of Object.entries(c.headers || {})) head.push(`${k}: ${typeof v === 'function' ? v(ctx) : v}`);
  let body = typeof c.body === 'function' ? c.body(ctx) : c.body;
  if (body !== undefined) {
    body = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
    const ct = c.ct === undefined ? 'application/json' : c.ct;
    if (ct !== null) head.push(`Content-Type: ${ct}`);
    head.push(`Content-Length: ${body.length}`);
  }
  head.push('Connection: close');
  return [Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'utf8'), body || Buffer.alloc(0)])];
}

/** The head of a raw request with the credential, for raw cases. */
function rawHead(method, path, cred, extra = []) {
  const h = [`${method} ${path} HTTP/1.1`, `Host: ${ctx.host}`];
  if (cred === 'bearer') h.push(`Authorization: Bearer ${ctx.token}`);
  if (cred === 'cookie') h.push(`Cookie: flm_session=${ctx.cookie}`, `Origin: ${ctx.origin}`);
  return [...h, ...extra];
}

// Every JSON route, with the credential it takes.
const JSON_ROUTES = [
  ['POST', '/api/auth/signup', 'none'], ['POST', '/api/auth/login', 'none'], ['POST', '/api/auth/logout', 'cookie'],
  ['PUT', '/api/auth/password', 'cookie'], ['POST', '/api/auth/verify-turnstile', 'none'], ['POST', '/api/sync/init', 'none'],
  ['POST', '/api/sync/claim', 'both'], ['POST', '/api/sync/deny', 'cookie'], ['POST', '/api/sync/token', 'none'],
  ['POST', '/api/sync/rotate', 'bearer'], ['POST', '/api/sync/revoke', 'bearer'], ['PUT', '/api/sync/config', 'both'],
  ['PUT', '/api/sync/config/data-type/history', 'both'], ['PUT', '/api/sync/key', 'both'],
  ['POST', '/api/sync/key/rotate', 'both'], ['PUT', '/api/sync/data/setting', 'both'],
];
// Every body-less route (GET and DELETE), with its credential.
const BODYLESS_ROUTES = [
  ['GET', '/api/auth/session', 'cookie'], ['GET', '/api/sync/request?code=BCDF-GHJK', 'cookie'],
  ['GET', '/api/sync/config', 'both'], ['GET', '/api/sync/config/data-type/secret', 'both'], ['GET', '/api/sync/key', 'both'],
  ['GET', '/api/sync/data', 'both'], ['GET', '/api/sync/data/history', 'both'], ['GET', '/api/sync/data/history/revisions', 'both'],
  ['GET', '/api/sync/data/history/revisions/1', 'both'], ['GET', '/api/sync/events?after=0&wait=0', 'both'],
  ['GET', '/api/devices', 'both'], ['GET', '/api/audit', 'both'], ['DELETE', '/api/sync/data/history', 'both'],
  ['DELETE', '/api/devices/00000000-0000-0000-0000-000000000000', 'both'], ['GET', '/api/info', 'none'],
  ['GET', '/healthz', 'none'], ['GET', '/readyz', 'none'], ['GET', '/metrics', 'none'],
];

// 1. malformed, truncated, non-UTF-8, NUL, deep: 400 invalid_request on every JSON route
const MALFORMED = {
  'truncated object': '{"a":',
  'trailing comma': '{"history":true,}',
  'single quotes': "{'history':true}",
  'two documents': '{"history":true}{"history":false}',
  'raw NUL byte': Buffer.from('{"a":"\u0000"}', 'utf8'),
  '\\u0000 escape': '{"a":"x\\u0000y"}',
  'invalid UTF-8': Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
  'deep nesting': '['.repeat(1000) + ']'.repeat(1000),
};
const MALFORMED_MORE = {
  'empty-ish garbage': ' x ',
  'truncated string': '{"email":"a@b.co","passw',
  'lone surrogate': '{"a":"\\ud800"}',
  'overlong UTF-8 slash': Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc0, 0xaf, 0x22, 0x7d]),
  'UTF-8 surrogate bytes': Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d]),
  'truncated UTF-8': Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xe2, 0x82, 0x22, 0x7d]),
  'BOM first': Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{}')]),
  'NUL before the object': Buffer.from('\u0000{}', 'utf8'),
  'NUL in a key': '{"hist\\u0000ory":true}',
  'depth 17 objects': `${'{"a":'.repeat(17)}1${'}'.repeat(17)}`,
  'integer beyond 64 bits': '{"a":123456789012345678901234567890}',
  'NaN': '{"a":NaN}',
  'Infinity': '{"a":Infinity}',
  'duplicate keys': '{"history":true,"history":false}',
  'not an object: array': '[{"history":true}]',
  'not an object: string': '"history"',
  'not an object: number': '1e400',
  'not an object: null': 'null',
  'unterminated string': '{"a":"abc',
  'comment': '{"history":true /* x */}',
};
for (const [m, p, cred] of JSON_ROUTES) {
  for (const [what, body] of Object.entries(MALFORMED)) add(`malformed JSON (${what})`, m, p, [400, 'invalid_request'], { cred, body });
}
for (const [m, p, cred] of [['PUT', '/api/sync/config', 'both'], ['POST', '/api/auth/signup', 'none'], ['PUT', '/api/sync/data/secret', 'bearer']]) {
  for (const [what, body] of Object.entries(MALFORMED_MORE)) add(`malformed JSON (${what})`, m, p, [400, 'invalid_request'], { cred, body });
}

// 2. wrong types, missing and unknown fields, out-of-range numbers, overlong strings: 400 invalid_request
const BAD = [400, 'invalid_request'];
const fieldCases = {
  'POST /api/auth/signup none': [
    { email: 123, password: 'password-1' }, { email: 'a@b.co' }, { password: 'password-1' }, { email: null, password: 'password-1' },
    { email: ['a@b.co'], password: 'password-1' }, { email: { a: 1 }, password: 'password-1' }, { email: 'a@b.co', password: 1.5 },
    { email: 'a@b.co', password: 'short77' }, { email: 'a@b.co', password: 'p'.repeat(1025) }, { email: `${'a'.repeat(250)}@b.co`, password: 'password-1' },
    { email: 'a@b.co', password: 'password-1', turnstile_token: 't'.repeat(2049) }, { email: 'a@b.co', password: 'password-1', turnstile_token: 5 },
    { email: 'a@b.co', password: 'password-1', is_admin: true }, { email: 'no-at-sign.example', password: 'password-1' },
    { email: 'two@@example.com', password: 'password-1' }, { email: 'sp ace@example.com', password: 'password-1' },
    { email: 'a@nodot', password: 'password-1' }, { email: '@example.com', password: 'password-1' },
    ...SQL.map((s) => ({ email: s, password: 'password-1' })), // none is a well-formed email (space, no @ or no dot)
    ...SQL.map((s) => ({ email: 'sql@example.com', password: s.slice(0, 7) })), // too short to be a password
  ],
  'POST /api/auth/login none': [
    { email: 5, password: 'password-1' }, { email: 'a@b.co', password: [] }, { password: 'password-1' }, { email: 'a@b.co' },
    { email: 'a@b.co', password: '' }, { email: 'a@b.co', password: 'p'.repeat(1025) }, { email: 'e'.repeat(1025), password: 'password-1' },
    { email: 'a@b.co', password: 'password-1', remember: true }, { email: null, password: null },
    ...SQL.map((s) => ({ email: s, password: '' })), ...SQL.map((s) => ({ email: 7, password: s })),
  ],
  'PUT /api/auth/password cookie': [
    { current_password: 5, new_password: 'new-password-1' }, { current_password: 'x', new_password: 'short' },
    { current_password: 'x', new_password: 'n'.repeat(1025) }, { new_password: 'new-password-1' }, { current_password: 'x' },
    { current_password: '', new_password: 'new-password-1' }, { current_password: 'x', new_password: 'new-password-1', extra: 1 },
    ...SQL.map((s) => ({ current_password: s, new_password: s.slice(0, 5) })),
  ],
  'POST /api/auth/verify-turnstile none': [{}, { token: 't'.repeat(2049) }, { token: 1 }, { token: '' }, { token: 'x', extra: 1 },
    ...SQL.map((s) => ({ token: s, [s]: 1 }))],
  'POST /api/auth/logout cookie': [{ all: true }],
  'POST /api/sync/init none': [
    { device_name: 'd'.repeat(129) }, { device_name: 'line\nbreak' }, { device_name: 'bell\u0007' }, { platform: 'del\u007f' },
    { app_version: 'esc\u001b[31m' }, { device_name: 5 }, { platform: [] }, { app_version: {} }, { device_name: 'x', owner: 'root' },
    ...SQL.map((s) => ({ device_name: `${s}\n` })),
  ],
  'POST /api/sync/claim both': [
    {}, { user_code: 'BCDF-GHJK', temp_token: 'flm_temp_00000000000000000000000000000000' }, { user_code: 5 }, { user_code: 'B'.repeat(33) },
    { user_code: '' }, { temp_token: 'flm_temp_xyz' }, { temp_token: 'flm_temp_' + 'A'.repeat(32) }, { temp_token: 7 },
    { temp_token: 'flm_sync_00000000000000000000000000000000' }, { temp_token: ' flm_temp_00000000000000000000000000000000' },
    { user_code: 'BCDF-GHJK', extra: 1 }, ...SQL.map((s) => ({ temp_token: `flm_temp_${s}` })),
    ...SQL.map((s) => ({ user_code: s, temp_token: s })), // two answers: refused before any lookup
  ],
  'POST /api/sync/deny cookie': [{}, { user_code: 5 }, { user_code: 'B'.repeat(33) }, { user_code: '' }, { user_code: 'BCDF-GHJK', why: 'x' },
    ...SQL.map((s) => ({ user_code: s, [s]: s }))],
  'POST /api/sync/token none': [
    {}, { temp_token: 5 }, { temp_token: 'flm_temp_short' }, { temp_token: 'flm_sync_00000000000000000000000000000000' },
    { temp_token: 'flm_temp_' + 'G'.repeat(32) }, { temp_token: 'flm_temp_00000000000000000000000000000000 ' },
    { temp_token: 'x'.repeat(3000) }, { temp_token: 'flm_temp_00000000000000000000000000000000', device_code: 'x' },
    ...SQL.map((s) => ({ temp_token: s })),
  ],
  'POST /api/sync/rotate bearer': [{ x: 1 }, { session_token: 'flm_sync_00000000000000000000000000000000' }],
  'POST /api/sync/revoke bearer': [{ x: 1 }, { device_id: 'all' }],
  'PUT /api/sync/config both': [
    {}, { history: 'true' }, { history: 1 }, { history: null }, { history: [true] }, { History: true }, { history: true, extra: 1 },
    ...SQL.map((s) => ({ [s]: true })),
  ],
  'PUT /api/sync/config/data-type/history both': [{}, { enabled: 'false' }, { enabled: 0 }, { enabled: null }, { enabled: true, type: 'secret' }],
  'PUT /api/sync/key both': [
    { wrapped_key: b64(32), kdf: {} }, { wrapped_key: b64(39), kdf: {} }, { wrapped_key: b64(4097), kdf: {} }, { wrapped_key: '!!!!not base64', kdf: {} },
    { wrapped_key: b64(48), kdf: 'argon2id' }, { wrapped_key: b64(48), kdf: [] }, { wrapped_key: b64(48), kdf: { salt: 's'.repeat(1100) } },
    { wrapped_key: b64(48) }, { kdf: {} }, { wrapped_key: b64(48), kdf: {}, expected_version: -1 },
    { wrapped_key: b64(48), kdf: {}, expected_version: 1.5 }, { wrapped_key: b64(48), kdf: {}, expected_version: '1' },
    { wrapped_key: b64(48), kdf: {}, expected_version: 1000000001 }, { wrapped_key: 48, kdf: {} }, { wrapped_key: b64(48), kdf: {}, version: 9 },
    ...SQL.map((s) => ({ wrapped_key: s, kdf: { name: s } })),
  ],
  'POST /api/sync/key/rotate both': [
    { wrapped_key: b64(48), kdf: {}, expected_version: 1 }, { wrapped_key: b64(48), kdf: {}, expected_version: 1, items: {} },
    { wrapped_key: b64(48), kdf: {}, items: [] }, { wrapped_key: b64(48), kdf: {}, expected_version: 1, items: Array(6).fill({ type: 'history', encrypted_data: b64(8) }) },
    { wrapped_key: b64(48), kdf: {}, expected_version: 1, items: ['history'] },
    { wrapped_key: b64(48), kdf: {}, expected_version: 1, items: [{ type: 'history' }] },
    { wrapped_key: b64(48), kdf: {}, expected_version: 1, items: [{ type: 'history', encrypted_data: b64(8), extra: 1 }] },
    { wrapped_key: b64(48), kdf: {}, expected_version: 1, items: [{ type: 'history', encrypted_data: '' }, { type: 'secret', encrypted_data: b64(8) }] },
    { wrapped_key: b64(48), kdf: {}, expected_version: 1, items: [{ type: 'history', encrypted_data: 'not base64!' }, { type: 'secret', encrypted_data: b64(8) }] },
    { wrapped_key: b64(48), kdf: {}, expected_version: 1, items: [{ type: 'history', encrypted_data: b64(8) }, { type: 'history', encrypted_data: b64(8) }] },
    { wrapped_key: b64(32), kdf: {}, expected_version: 1, items: [] }, { wrapped_key: b64(48), kdf: {}, expected_version: 2.0000001, items: [] },
    ...SQL.map((s) => ({ wrapped_key: b64(48), kdf: { s }, expected_version: 1, items: [{ type: 'history', encrypted_data: s }, { type: 'secret', encrypted_data: b64(8) }] })),
  ],
  'PUT /api/sync/data/setting both': [
    {}, { encrypted_data: 5 }, { encrypted_data: '' }, { encrypted_data: 'not base64!!' }, { encrypted_data: ['QUJD'] },
    { encrypted_data: b64(8), base_version: -1 }, { encrypted_data: b64(8), base_version: 1.5 }, { encrypted_data: b64(8), base_version: 2 ** 53 + 2 },
    { encrypted_data: b64(8), base_version: '0' }, { encrypted_data: b64(8), key_version: 1000000001 }, { encrypted_data: b64(8), key_version: -2 },
    { encrypted_data: b64(8), key_version: true }, { encrypted_data: b64(8), type: 'history' }, { encrypted_data: b64(8), version: 7 },
    ...SQL.map((s) => ({ encrypted_data: s })),
  ],
};
for (const [route, bodies] of Object.entries(fieldCases)) {
  const [m, p, cred] = route.split(' ');
  for (const b of bodies) add('wrong field', m, p, BAD, { cred, body: J(b) });
}
// numbers JSON.stringify cannot write
for (const [p, cred, tmpl] of [
  ['/api/sync/data/setting', 'both', (n) => `{"encrypted_data":"${b64(8)}","base_version":${n}}`],
  ['/api/sync/key', 'both', (n) => `{"wrapped_key":"${b64(48)}","kdf":{},"expected_version":${n}}`],
  ['/api/sync/data/setting', 'bearer', (n) => `{"encrypted_data":"${b64(8)}","key_version":${n}}`],
]) {
  for (const n of ['18446744073709551616', '-9223372036854775809', '1e3', '1.0', '-0.0', '0x10', '01', '+1', '1e99999']) {
    add(`huge or non-integer number ${n}`, 'PUT', p, BAD, { cred, body: tmpl(n) });
  }
}

// 3. preconditions and conflicts: rejected, nothing stored
add('stale base_version', 'PUT', '/api/sync/data/history', [409, 'conflict'], { cred: 'both', body: J({ encrypted_data: b64(8), base_version: 1 }) });
add('base_version 0 on existing data', 'PUT', '/api/sync/data/history', [409, 'conflict'], { cred: 'bearer', body: J({ encrypted_data: b64(8), base_version: 0 }) });
add('stale If-Match', 'PUT', '/api/sync/data/history', [409, 'conflict'], { cred: 'both', body: J({ encrypted_data: b64(8) }), headers: { 'If-Match': '"1"' } });
add('If-Match and base_version disagree', 'PUT', '/api/sync/data/history', BAD, { cred: 'bearer', body: J({ encrypted_data: b64(8), base_version: 2 }), headers: { 'If-Match': '"1"' } });
for (const im of ['abc', '"-1"', 'W/"2"', '"2', '99999999999999999999', '"2", "3"', "'; DROP TABLE data_heads; --"]) {
  add(`bad If-Match ${im}`, 'PUT', '/api/sync/data/history', BAD, { cred: 'bearer', body: J({ encrypted_data: b64(8) }), headers: { 'If-Match': im } });
}
add('old key_version', 'PUT', '/api/sync/data/history', [409, 'key_version_mismatch'], { cred: 'both', body: J({ encrypted_data: b64(8), key_version: 2 }) });
add('stale expected_version (kdf full of SQL)', 'PUT', '/api/sync/key', [409, 'conflict'], { cred: 'both', body: J({ wrapped_key: b64(48), kdf: Object.fromEntries(SQL.map((s, i) => [`k${i}`, s])), expected_version: 0 }) });
add('stale rotation', 'POST', '/api/sync/key/rotate', [409, 'conflict'], {
  cred: 'both', body: J({ wrapped_key: b64(48), kdf: { name: SQL[1] }, expected_version: 0, items: [{ type: 'history', encrypted_data: b64(8) }, { type: 'secret', encrypted_data: b64(8) }] }),
});
add('incomplete rotation', 'POST', '/api/sync/key/rotate', [409, 'incomplete_rotation'], {
  cred: 'both', body: J({ wrapped_key: b64(48), kdf: {}, expected_version: 1, items: [{ type: 'history', encrypted_data: b64(8) }] }),
});
add('rotation item of an unknown type', 'POST', '/api/sync/key/rotate', [400, 'invalid_type'], {
  cred: 'both', body: J({ wrapped_key: b64(48), kdf: {}, expected_version: 1, items: [{ type: SQL[0], encrypted_data: b64(8) }] }),
});
add('rotation item over MAX_BLOB_BYTES', 'POST', '/api/sync/key/rotate', [413, 'payload_too_large'], {
  cred: 'bearer', body: J({ wrapped_key: b64(48), kdf: {}, expected_version: 1, items: [{ type: 'history', encrypted_data: b64(MAX_BLOB + 1) }, { type: 'secret', encrypted_data: b64(8) }] }),
});
add('blob over MAX_BLOB_BYTES', 'PUT', '/api/sync/data/history', [413, 'payload_too_large'], { cred: 'both', body: J({ encrypted_data: b64(MAX_BLOB + 1) }) });
add('DELETE with a stale If-Match', 'DELETE', '/api/sync/data/history', [409, 'conflict'], { cred: 'both', headers: { 'If-Match': '"1"' } });
add('DELETE with a stale base_version', 'DELETE', '/api/sync/data/history?base_version=1', [409, 'conflict'], { cred: 'both' });
add('DELETE with a bad base_version', 'DELETE', '/api/sync/data/history?base_version=two', BAD, { cred: 'both' });
add('DELETE of nothing', 'DELETE', '/api/sync/data/setting', [404, 'not_found'], { cred: 'both' });
add('claim with an unknown temp_token', 'POST', '/api/sync/claim', [404, 'not_found'], { cred: 'both', body: J({ temp_token: 'flm_temp_00000000000000000000000000000000' }) });
add('token with an unknown temp_token', 'POST', '/api/sync/token', [404, 'not_found'], { body: J({ temp_token: 'flm_temp_0123456789abcdef0123456789abcdef' }) });
add('lookup without a code', 'GET', '/api/sync/request', BAD, { cred: 'cookie' });
add('raw PUT, bad key_version', 'PUT', '/api/sync/data/setting?key_version=abc', BAD, { cred: 'bearer', body: Buffer.alloc(16, 1), ct: 'application/octet-stream' });
add('raw PUT, key_version too large', 'PUT', '/api/sync/data/setting?key_version=99999999999', BAD, { cred: 'bearer', body: Buffer.alloc(16, 1), ct: 'application/octet-stream' });
add('raw PUT, key_version mismatch', 'PUT', '/api/sync/data/setting?key_version=7', [409, 'key_version_mismatch'], { cred: 'both', body: Buffer.alloc(16, 1), ct: 'application/octet-stream' });
add('raw PUT, stale base_version', 'PUT', '/api/sync/data/history?base_version=1', [409, 'conflict'], { cred: 'bearer', body: Buffer.alloc(16, 1), ct: 'application/octet-stream' });
add('raw PUT, SQL base_version', 'PUT', `/api/sync/data/history?base_version=${encodeURIComponent(SQL[0])}`, BAD, { cred: 'bearer', body: Buffer.alloc(16, 1), ct: 'application/octet-stream' });

// 4. query parameters
for (const q of ['after=abc&wait=0', 'after=-1&wait=0', 'after=1e3&wait=0', 'after=99999999999999999999&wait=0', 'after=0&wait=61', 'after=0&wait=-1',
  'after=0&wait=1.5', `after=${encodeURIComponent(SQL[0])}&wait=0`, 'after=0&wait=99999999999999999999', 'after=%00&wait=0']) {
  add('bad events query', 'GET', `/api/sync/events?${q}`, BAD, { cred: 'both' });
}
for (const q of ['limit=0', 'limit=201', 'limit=abc', 'limit=-5', 'before=0', 'before=-1', 'before=1.5', `limit=${encodeURIComponent(SQL[2])}`]) {
  add('bad audit query', 'GET', `/api/audit?${q}`, BAD, { cred: 'both' });
}
for (const q of ['include=all', 'include=DATA', 'include=', `include=${encodeURIComponent(SQL[0])}`]) add('bad include', 'GET', `/api/sync/data?${q}`, BAD, { cred: 'both' });

// 5. path tricks in :type, :version and :id
const TYPE_TRICKS = [
  '..', '%2e%2e', '%2E%2E', '.', 'HISTORY', 'History', 'history;', 'history%20', '%20history', 'hist%C3%B6ry', '%E2%80%AEyrotsih',
  'histor%C0%B9', 'history%ff', 'x'.repeat(1800), encodeURIComponent(SQL[0]), encodeURIComponent(SQL[1]), encodeURIComponent("history' --"),
  'history%2F..', 'history%2Frevisions', '%2Fhistory', 'history%5C..', 'secret%3Bhistory', '*', '%25', 'history%0d%0aSet-Cookie:%20x=1',
];
for (const t of TYPE_TRICKS) {
  add('path trick in :type', 'GET', `/api/sync/data/${t}`, [400, 'invalid_type'], { cred: 'both' });
  add('path trick in :type', 'PUT', `/api/sync/data/${t}`, [400, 'invalid_type'], { cred: 'bearer', body: J({ encrypted_data: b64(8) }) });
}
for (const t of ['..', '%2e%2e', 'x'.repeat(1800), encodeURIComponent(SQL[0]), 'hist%C3%B6ry', 'history%2Frevisions']) {
  add('path trick in :type', 'DELETE', `/api/sync/data/${t}`, [400, 'invalid_type'], { cred: 'both' });
  add('path trick in :type', 'PUT', `/api/sync/config/data-type/${t}`, [400, 'invalid_type'], { cred: 'both', body: J({ enabled: false }) });
  add('path trick in :type', 'GET', `/api/sync/data/${t}/revisions`, [400, 'invalid_type'], { cred: 'bearer' });
}
for (const v of ['0', '-1', 'abc', '1.5', '0x1', '1e0', '99999999999999999999', encodeURIComponent(SQL[0]), '%2e%2e', 'x'.repeat(1800), '1%2F2']) {
  add('path trick in :version', 'GET', `/api/sync/data/history/revisions/${v}`, [404, 'not_found'], { cred: 'both' });
}
const ID_TRICKS = [
  '..', '%2e%2e', encodeURIComponent(SQL[0]), encodeURIComponent(SQL[1]), encodeURIComponent("' OR status=0 --"), 'x'.repeat(1800),
  '%E2%98%83', '00000000-0000-0000-0000-000000000000', '*', '%25', (c) => c.otherDeviceId, (c) => c.deviceId.toUpperCase(),
  (c) => `${c.deviceId}%20`, (c) => `${c.deviceId}%2F..`, (c) => encodeURIComponent(`${c.deviceId}' OR '1'='1`),
];
for (const id of ID_TRICKS) {
  const path = typeof id === 'function' ? (c) => `/api/devices/${id(c)}` : `/api/devices/${id}`;
  add('path trick in :id (another user\'s device is not found either)', 'DELETE', path, [404, 'not_found'], { cred: 'both' });
}
for (const p of ['/api/sync/data/history/../../../etc/passwd', '/api/../etc/passwd', '/etc/passwd', '//api/info', '/api/info/', '/API/INFO',
  '/api/sync/data/history/revisions/1/x', '/api/%2e%2e/api/info', '/api/sync/events/stream/x',
  `/api/${'x'.repeat(1900)}`, '/api/sync/config/data-type', '/api/devices/', '/api/sync/data//history']) {
  add('unknown path', 'GET', p, [404, 'not_found'], { cred: 'both' });
}
// an encoded slash never splits a segment: this is one (unknown) type
add('path trick in :type', 'GET', '/api/sync/data/history%2F..%2F..%2Finfo', [400, 'invalid_type'], { cred: 'both' });

// 6. methods
for (const [m, p, allow] of [['PATCH', '/api/sync/data/history', 1], ['POST', '/api/sync/data/history', 1], ['DELETE', '/api/sync/key', 1],
  ['PUT', '/api/devices', 1], ['POST', '/healthz', 0], ['TRACE', '/api/info', 0], ['get', '/api/info', 0], ['FOO', '/api/sync/config', 1],
  ['GET', '/api/sync/claim', 0], ['DELETE', '/api/auth/session', 0]]) {
  add('wrong method', m, p, [405, 'method_not_allowed'], { cred: allow ? 'both' : 'none' });
}

// 7. credentials
const BEARERS = ['Bearer flm_sync_00000000000000000000000000000000', `Bearer flm_sync_${SQL[0]}`, `Bearer ${'a'.repeat(8000)}`, 'Basic dXNlcjpwYXNzd29yZA==',
  'Bearer', 'Bearer ', (c) => `Bearer ${c.token.toUpperCase()}`, (c) => `Bearer  ${c.token}`, (c) => `Bearer ${c.token}x`, (c) => `Bearer ${c.token.slice(0, -1)}`,
  (c) => `Token ${c.token}`, (c) => c.token, (c) => `Bearer ${c.pendingTemp}`, (c) => `Bearer ${c.cookie}`];
for (const a of BEARERS) {
  add('bad bearer', 'GET', '/api/sync/config', [401, 'unauthorized'], { headers: { Authorization: a } });
  add('bad bearer', 'PUT', '/api/sync/config', [401, 'unauthorized'], { headers: { Authorization: a }, body: J({ history: false }) });
}
for (const v of ['flm_web_00000000000000000000000000000000', SQL[0].replace(/;/g, ''), 'x'.repeat(5000), (c) => c.token, (c) => c.cookie.toUpperCase()]) {
  add('bad cookie', 'GET', '/api/auth/session', [401, 'unauthorized'], { headers: { Cookie: (c) => `flm_session=${typeof v === 'function' ? v(c) : v}` } });
  add('bad cookie', 'PUT', '/api/sync/config', [401, 'unauthorized'], { headers: { Cookie: (c) => `flm_session=${typeof v === 'function' ? v(c) : v}`, Origin: (c) => c.origin }, body: J({ history: false }) });
}
add('bearer on a cookie-only route', 'POST', '/api/auth/logout', [401, 'unauthorized'], { cred: 'bearer', body: '{}' });
add('bearer on a cookie-only route', 'POST', '/api/sync/deny', [401, 'unauthorized'], { cred: 'bearer', body: J({ user_code: 'BCDF-GHJK' }) });
add('bearer on a cookie-only route', 'GET', '/api/auth/session', [401, 'unauthorized'], { cred: 'bearer' });
add('cookie on a bearer-only route', 'POST', '/api/sync/rotate', [401, 'unauthorized'], { cred: 'cookie', body: '{}' });
add('cookie on a bearer-only route', 'POST', '/api/sync/revoke', [401, 'unauthorized'], { cred: 'cookie', body: '{}' });
add('no credential', 'DELETE', '/api/sync/data/history', [401, 'unauthorized']);
add('no credential', 'PUT', '/api/sync/key', [401, 'unauthorized'], { body: J({ wrapped_key: b64(48), kdf: {} }) });

// 8. CSRF: cookie mutations, valid bodies, without the right Origin
const CSRF_TARGETS = [
  ['PUT', '/api/sync/config', J({ history: false })], ['PUT', '/api/sync/config/data-type/secret', J({ enabled: false })],
  ['DELETE', '/api/sync/data/history', undefined], ['POST', '/api/auth/logout', '{}'], ['PUT', '/api/sync/key', J({ wrapped_key: b64(48), kdf: {} })],
  ['PUT', '/api/sync/data/environment', J({ encrypted_data: b64(8) })], ['DELETE', '/api/devices/x', undefined],
  ['POST', '/api/sync/claim', J({ temp_token: 'flm_temp_00000000000000000000000000000000' })],
  ['POST', '/api/sync/key/rotate', J({ wrapped_key: b64(48), kdf: {}, expected_version: 1, items: [{ type: 'history', encrypted_data: b64(8) }, { type: 'secret', encrypted_data: b64(8) }] })],
];
const BAD_ORIGINS = [null, 'http://evil.example', 'null', (c) => `${c.origin}/`, (c) => `${c.origin}.evil.example`, 'http://127.0.0.1',
  (c) => c.origin.replace('http:', 'https:'), (c) => c.origin.replace(/:\d+$/, ':1'), (c) => c.origin.toUpperCase(), (c) => ` ${c.origin}x`];
for (const [m, p, body] of CSRF_TARGETS) {
  for (const o of BAD_ORIGINS) {
    add('CSRF: cookie mutation without the right Origin', m, p, [403, 'csrf_rejected'], { cred: 'cookie', body, origin: o });
  }
}
for (const [m, p, body] of CSRF_TARGETS.slice(0, 4)) {
  for (const site of ['cross-site', 'same-site', 'none', 'same-origin, cross-site']) {
    add('CSRF: Sec-Fetch-Site other than same-origin', m, p, [403, 'csrf_rejected'], { cred: 'cookie', body, origin: null, headers: { 'Sec-Fetch-Site': site } });
  }
}

// 9. content types
for (const [m, p, cred, body] of [['PUT', '/api/sync/config', 'both', J({ history: false })], ['PUT', '/api/sync/data/history', 'both', J({ encrypted_data: b64(8) })],
  ['POST', '/api/auth/signup', 'none', J({ email: 'ct@example.com', password: 'password-1' })], ['POST', '/api/sync/init', 'none', '{}'],
  ['PUT', '/api/sync/key', 'bearer', J({ wrapped_key: b64(48), kdf: {} })], ['POST', '/api/auth/logout', 'cookie', '{}']]) {
  for (const ct of ['text/plain', null, 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx',
    'application/json-patch+json', 'text/json', 'application/javascript']) {
    add(`Content-Type ${ct}`, m, p, [415, 'unsupported_media_type'], { cred, body, ct });
  }
}
add('octet-stream to a JSON-only route', 'PUT', '/api/sync/config', [415, 'unsupported_media_type'], { cred: 'both', body: J({ history: false }), ct: 'application/octet-stream' });
add('octet-stream to a JSON-only route', 'PUT', '/api/sync/key', [415, 'unsupported_media_type'], { cred: 'bearer', body: J({ wrapped_key: b64(48), kdf: {} }), ct: 'application/octet-stream' });

// 10. sizes: bodies over the cap (by Content-Length), bodies on body-less routes
for (const [m, p, cred, n] of [['PUT', '/api/sync/config', 'both', MAX_BODY + 1], ['POST', '/api/auth/signup', 'none', MAX_BODY + 1],
  ['PUT', '/api/sync/key', 'bearer', 16385], ['PUT', '/api/sync/data/history', 'bearer', BLOB_CAP + 1], ['POST', '/api/sync/claim', 'cookie', 100000]]) {
  add('body over the cap', m, p, [413, 'payload_too_large'], { cred, body: `{"a":"${'x'.repeat(n - 8)}"}` });
}
add('raw blob over MAX_BLOB_BYTES', 'PUT', '/api/sync/data/history', [413, 'payload_too_large'], { cred: 'both', body: Buffer.alloc(MAX_BLOB + 1, 9), ct: 'application/octet-stream' });
for (const [m, p, cred] of BODYLESS_ROUTES) add('body on a body-less route', m, p, [413, 'payload_too_large'], { cred, body: '{}' });

// 11. URL and header sizes
add('URL over MAX_URL_BYTES', 'GET', `/api/info?x=${'a'.repeat(2100)}`, [414, 'invalid_request']);
add('URL over MAX_URL_BYTES', 'GET', `/api/sync/data/${'a'.repeat(3000)}`, [414, 'invalid_request'], { cred: 'bearer' });
add('URL over MAX_URL_BYTES', 'PUT', `/api/sync/config?${'a'.repeat(3000)}`, [414, 'invalid_request'], { cred: 'both', body: J({ history: false }) });
// 1000 query parameters (4 KB): more records than CONNECTION_MEMORY_BYTES holds
// libmicrohttpd stores every parameter in CONNECTION_MEMORY_BYTES before the
// server sees the request; when they do not fit it closes the connection
// without an answer (documented in docs/API.md). The server must stay up.
add('URL over MAX_URL_BYTES, 1000 parameters', 'GET', `/api/sync/config?${'a=1&'.repeat(1000)}`, [0, 'closed'], { cred: 'bearer', timeoutMs: 3000 });
add('URL far over MAX_URL_BYTES, within CONNECTION_MEMORY_BYTES', 'GET', `/api/info?x=${'a'.repeat(10000)}`, [414, 'invalid_request']);
// a request line that does not fit in CONNECTION_MEMORY_BYTES (16 KiB) is
// refused by libmicrohttpd before the server sees it (docs/API.md)
add('URL over CONNECTION_MEMORY_BYTES', 'GET', `/api/info?x=${'a'.repeat(60000)}`, [414, 'mhd']);
add('header over CONNECTION_MEMORY_BYTES', 'GET', '/api/info', [431, 'mhd'], { headers: { 'X-Big': 'a'.repeat(70000) } });
add('cookie header over CONNECTION_MEMORY_BYTES', 'PUT', '/api/sync/config', [431, 'mhd'], { headers: { Cookie: `flm_session=${'a'.repeat(70000)}` }, body: J({ history: false }) });
add('authorization over CONNECTION_MEMORY_BYTES', 'DELETE', '/api/sync/data/history', [431, 'mhd'], { headers: { Authorization: `Bearer ${'a'.repeat(70000)}` } });
add('3000 headers', 'GET', '/api/sync/config', [431, 'mhd'], { cred: 'bearer', raw: () => [Buffer.from(`${rawHead('GET', '/api/sync/config', 'bearer', Array.from({ length: 3000 }, (_, i) => `X-H${i}: v`)).join('\r\n')}\r\nConnection: close\r\n\r\n`)] });

// 12. raw protocol abuse: header injection, NUL bytes, framing, chunked bodies
const CRLF = '\r\n';
function rawCase(kind, method, path, expect, cred, fn) {
  corpus.push({ kind, method, path, expect, cred, raw: fn, name: `${kind}: ${method} ${path} [${cred}]` });
}
rawCase('bare CR in Authorization (injection attempt)', 'GET', '/api/sync/config', [401, 'unauthorized'], 'none',
  (c) => [`GET /api/sync/config HTTP/1.1${CRLF}Host: ${c.host}${CRLF}Authorization: Bearer ${c.token}\rSet-Cookie: injected=1${CRLF}Connection: close${CRLF}${CRLF}`]);
rawCase('bare CR in Origin (injection attempt)', 'PUT', '/api/sync/config', [403, 'csrf_rejected'], 'cookie',
  (c) => { const b = J({ history: false }); return [`PUT /api/sync/config HTTP/1.1${CRLF}Host: ${c.host}${CRLF}Cookie: flm_session=${c.cookie}${CRLF}Origin: ${c.origin}\rX-Injected: 1${CRLF}Content-Type: application/json${CRLF}Content-Length: ${b.length}${CRLF}Connection: close${CRLF}${CRLF}${b}`]; });
rawCase('CRLF then a second, evil Origin', 'PUT', '/api/sync/config', [403, 'csrf_rejected'], 'cookie',
  (c) => { const b = J({ history: false }); return [`PUT /api/sync/config HTTP/1.1${CRLF}Host: ${c.host}${CRLF}Cookie: flm_session=${c.cookie}${CRLF}Origin: http://evil.example${CRLF}Origin: ${c.origin}${CRLF}Content-Type: application/json${CRLF}Content-Length: ${b.length}${CRLF}Connection: close${CRLF}${CRLF}${b}`]; });
rawCase('CRLF in the request line', 'GET', '/api/info', [400, 'mhd'], 'none',
  (c) => [`GET /api/info?x=1${CRLF}Set-Cookie: injected=1 HTTP/1.1${CRLF}Host: ${c.host}${CRLF}Connection: close${CRLF}${CRLF}`]);
rawCase('bare LF then Set-Cookie after a good bearer (a separate request header, never echoed)', 'GET', '/api/sync/config', [200, 'ok'], 'none',
  (c) => [`GET /api/sync/config HTTP/1.1${CRLF}Host: ${c.host}${CRLF}Authorization: Bearer ${c.token}\nSet-Cookie: injected=1${CRLF}Connection: close${CRLF}${CRLF}`]);
rawCase('bare LF in Origin: the evil one is what counts', 'PUT', '/api/sync/config', [403, 'csrf_rejected'], 'cookie',
  (c) => { const b = J({ history: false }); return [`PUT /api/sync/config HTTP/1.1${CRLF}Host: ${c.host}${CRLF}Cookie: flm_session=${c.cookie}${CRLF}Origin: http://evil.example\nX-Origin: ${c.origin}${CRLF}Content-Type: application/json${CRLF}Content-Length: ${b.length}${CRLF}Connection: close${CRLF}${CRLF}${b}`]; });
rawCase('%0d%0a in a query value is not echoed', 'GET', '/api/sync/events', [400, 'invalid_request'], 'bearer',
  (c) => [`${rawHead('GET', '/api/sync/events?after=1%0d%0aSet-Cookie:%20injected=1&wait=0', 'bearer').join(CRLF)}${CRLF}Connection: close${CRLF}${CRLF}`]);
rawCase('header line without a colon', 'GET', '/api/sync/config', [400, 'mhd'], 'bearer',
  (c) => [`${rawHead('GET', '/api/sync/config', 'bearer', ['Set-Cookie injected=1']).join(CRLF)}${CRLF}Connection: close${CRLF}${CRLF}`]);
// libmicrohttpd ends a header value at a raw NUL byte and the server never
// sees what follows (documented in docs/API.md): the Origin below is the good
// one (a browser cannot send a NUL in Origin, so CSRF is not weakened), and
// the invalid body is then refused; the bearer below is the valid token.
rawCase('NUL inside the Origin of a cookie mutation', 'PUT', '/api/sync/config', [400, 'invalid_request'], 'cookie',
  (c) => { const b = J({ history: null }); return [`PUT /api/sync/config HTTP/1.1${CRLF}Host: ${c.host}${CRLF}Cookie: flm_session=${c.cookie}${CRLF}Origin: ${c.origin}\u0000.evil.example${CRLF}Content-Type: application/json${CRLF}Content-Length: ${b.length}${CRLF}Connection: close${CRLF}${CRLF}${b}`]; });
rawCase('NUL inside a bearer token', 'GET', '/api/sync/config', [200, 'ok'], 'none',
  (c) => [`GET /api/sync/config HTTP/1.1${CRLF}Host: ${c.host}${CRLF}Authorization: Bearer ${c.token}\u0000junk${CRLF}Connection: close${CRLF}${CRLF}`]);
rawCase('raw NUL in the path', 'GET', '/api/sync/data/history\\0x', [400, 'invalid_type'], 'bearer',
  (c) => [`${rawHead('GET', '/api/sync/data/history\u0000x', 'bearer').join(CRLF)}${CRLF}Connection: close${CRLF}${CRLF}`]);
rawCase('raw invalid UTF-8 in the path', 'GET', '/api/sync/data/hist\\xff\\xfeory', [400, 'invalid_type'], 'bearer',
  (c) => [Buffer.concat([Buffer.from('GET /api/sync/data/hist'), Buffer.from([0xff, 0xfe]), Buffer.from(`ory HTTP/1.1${CRLF}Host: ${c.host}${CRLF}Authorization: Bearer ${c.token}${CRLF}Connection: close${CRLF}${CRLF}`)])]);
rawCase('raw invalid UTF-8 in a header', 'GET', '/api/sync/config', [401, 'unauthorized'], 'none',
  (c) => [Buffer.concat([Buffer.from(`GET /api/sync/config HTTP/1.1${CRLF}Host: ${c.host}${CRLF}Authorization: Bearer flm_sync_`), Buffer.from([0xc0, 0xaf, 0xff]), Buffer.from(`${CRLF}Connection: close${CRLF}${CRLF}`)])]);
rawCase('Content-Length negative', 'PUT', '/api/sync/config', [400, 'mhd'], 'bearer',
  (c) => [`${rawHead('PUT', '/api/sync/config', 'bearer', ['Content-Type: application/json', 'Content-Length: -1']).join(CRLF)}${CRLF}Connection: close${CRLF}${CRLF}{}`]);
rawCase('Content-Length in hex', 'PUT', '/api/sync/config', [400, 'mhd'], 'bearer',
  (c) => [`${rawHead('PUT', '/api/sync/config', 'bearer', ['Content-Type: application/json', 'Content-Length: 0x11']).join(CRLF)}${CRLF}Connection: close${CRLF}${CRLF}{"history":false}`]);
rawCase('Content-Length beyond 64 bits', 'PUT', '/api/sync/config', [413, 'any'], 'bearer',
  (c) => [`${rawHead('PUT', '/api/sync/config', 'bearer', ['Content-Type: application/json', 'Content-Length: 99999999999999999999999']).join(CRLF)}${CRLF}Connection: close${CRLF}${CRLF}{}`]);
rawCase('two different Content-Lengths (smuggling)', 'PUT', '/api/sync/config', [400, 'any'], 'bearer',
  (c) => [`${rawHead('PUT', '/api/sync/config', 'bearer', ['Content-Type: application/json', 'Content-Length: 16', 'Content-Length: 2']).join(CRLF)}${CRLF}Connection: close${CRLF}${CRLF}{"history":true}`]);
rawCase('HTTP version 9.9', 'GET', '/api/info', [505, 'mhd'], 'none',
  (c) => [`GET /api/info HTTP/9.9${CRLF}Host: ${c.host}${CRLF}Connection: close${CRLF}${CRLF}`]);
const chunked = (method, path, cred, chunks, ct = 'application/json') => (c) => [
  `${rawHead(method, path, cred, [`Content-Type: ${ct}`, 'Transfer-Encoding: chunked']).join(CRLF)}${CRLF}Connection: close${CRLF}${CRLF}`,
  ...chunks.map((x) => `${Buffer.byteLength(x).toString(16)}${CRLF}${x}${CRLF}`), `0${CRLF}${CRLF}`];
rawCase('chunked body over the cap', 'PUT', '/api/sync/config', [413, 'payload_too_large'], 'bearer',
  chunked('PUT', '/api/sync/config', 'bearer', Array.from({ length: Math.ceil(MAX_BODY / 512) }, () => ' '.repeat(512)).concat(['{"history":true}'])));
rawCase('chunked body over the cap', 'PUT', '/api/sync/data/history', [413, 'payload_too_large'], 'cookie',
  chunked('PUT', '/api/sync/data/history', 'cookie', Array.from({ length: Math.ceil(BLOB_CAP / 1000) }, () => ' '.repeat(1000)).concat([J({ encrypted_data: b64(8) })])));
rawCase('chunked body over the cap, one big chunk', 'POST', '/api/auth/signup', [413, 'payload_too_large'], 'none',
  chunked('POST', '/api/auth/signup', 'none', [`{"email":"big@example.com","password":"${'p'.repeat(MAX_BODY)}"}`]));
rawCase('chunked raw blob over MAX_BLOB_BYTES', 'PUT', '/api/sync/data/history', [413, 'payload_too_large'], 'bearer',
  chunked('PUT', '/api/sync/data/history', 'bearer', ['x'.repeat(MAX_BLOB), 'x'.repeat(100)], 'application/octet-stream'));
rawCase('chunked body on a body-less route', 'GET', '/api/sync/config', [413, 'payload_too_large'], 'bearer',
  chunked('GET', '/api/sync/config', 'bearer', ['{}']));
rawCase('chunked body on a body-less route', 'DELETE', '/api/sync/data/history', [413, 'payload_too_large'], 'bearer',
  chunked('DELETE', '/api/sync/data/history', 'bearer', ['{}']));
rawCase('chunk size not hex', 'PUT', '/api/sync/config', [400, 'mhd'], 'bearer',
  (c) => [`${rawHead('PUT', '/api/sync/config', 'bearer', ['Content-Type: application/json', 'Transfer-Encoding: chunked']).join(CRLF)}${CRLF}Connection: close${CRLF}${CRLF}zz${CRLF}{}${CRLF}0${CRLF}${CRLF}`]);
rawCase('chunk size beyond 64 bits', 'PUT', '/api/sync/config', [413, 'mhd'], 'bearer',
  (c) => [`${rawHead('PUT', '/api/sync/config', 'bearer', ['Content-Type: application/json', 'Transfer-Encoding: chunked']).join(CRLF)}${CRLF}Connection: close${CRLF}${CRLF}FFFFFFFFFFFFFFFFFFFF${CRLF}{}${CRLF}0${CRLF}${CRLF}`]);

// 13. NUL truncation in the URL: a percent-encoded NUL must not cut the
// path or a parameter short (these would act on another resource, or pass a
// precondition, if it did). Last: if one of them is wrongly accepted it
// changes the state that later cases would see.
add('%00 in :type', 'GET', '/api/sync/data/history%00x', [400, 'invalid_type'], { cred: 'bearer' });
add('%00 in :type', 'PUT', '/api/sync/data/secret%00.bak', [400, 'invalid_type'], { cred: 'both', body: J({ encrypted_data: b64(8) }) });
add('%00 in :version', 'GET', '/api/sync/data/history/revisions/1%00', [404, 'not_found'], { cred: 'bearer' });
add('%00 in a query value', 'GET', '/api/sync/data?include=data%00', BAD, { cred: 'bearer' });
add('%00 in a query value', 'GET', '/api/audit?limit=1%00x', BAD, { cred: 'both' });
add('%00 in base_version', 'DELETE', (c) => `/api/sync/data/history?base_version=${c.historyVersion}%00junk`, BAD, { cred: 'bearer' });
add('%00 in :id', 'DELETE', (c) => `/api/devices/${c.spareId}%00junk`, [404, 'not_found'], { cred: 'cookie' });

// the CSRF cases built before ctx existed: resolve their Origins now
function resolveLate() {
  for (const c of corpus) {
    if (typeof c.origin === 'function') c.origin = c.origin(ctx);
  }
}

// ---- running it ---------------------------------------------------------------------------------

function dump() {
  return execFileSync('sqlite3', [srv.db, '.dump'], { encoding: 'utf8', maxBuffer: 1 << 28 });
}

function firstDiff(a, b) {
  const x = a.split('\n');
  const y = b.split('\n');
  const gone = x.filter((l) => !y.includes(l)).slice(0, 3);
  const added = y.filter((l) => !x.includes(l)).slice(0, 3);
  return `removed ${JSON.stringify(gone).slice(0, 500)} added ${JSON.stringify(added).slice(0, 500)}`;
}

async function send(c) {
  try {
    return await rawRequest(srv, requestBytes(c), { timeoutMs: c.timeoutMs || 10000 });
  } catch (e) {
    return { status: 0, headers: {}, body: Buffer.alloc(0), error: e };
  }
}

function judge(c, r) {
  const [status, code] = c.expect;
  const got = `${r.status} ${r.body ? r.body.toString('utf8').slice(0, 200).replace(/\s+/g, ' ') : ''}${r.error ? ` (${r.error.code || r.error.message})` : ''}`;
  const problems = [];
  if (status === 0 && code === 'closed') return r.status === 0 ? [] : [`expected the connection closed without an answer — got ${got}`];
  if (r.status !== status) problems.push(`status ${r.status}, expected ${status}`);
  if (r.status === 0) return [`no answer: the server closed the connection${r.error ? ` (${r.error.code || r.error.message})` : ''}`];
  const ct = r.headers['content-type'] || '';
  if (code === 'mhd') {
    if (/json/.test(ct) || !/<html>/i.test(r.body.toString('latin1'))) problems.push('expected libmicrohttpd\'s own page');
  } else if (code !== 'any' || /json/.test(ct)) {
    if (ct !== 'application/json; charset=utf-8') problems.push(`Content-Type "${ct}"`);
    if (!r.json || typeof r.json !== 'object') problems.push('no JSON envelope');
    else if (code === 'ok') {
      if (r.json.success !== true) problems.push('expected success');
    } else if (code !== 'any') {
      if (r.json.success !== false) problems.push('expected success:false');
      if (r.json.error !== code) problems.push(`error ${JSON.stringify(r.json.error)}, expected ${code}`);
      if (typeof r.json.message !== 'string' || !r.json.message) problems.push('no message');
    }
    if ((r.headers['x-content-type-options'] || '') !== 'nosniff') problems.push('no nosniff');
  }
  // nothing a bad request sends may come back as a header
  if (r.headers['set-cookie']) problems.push(`Set-Cookie: ${r.headers['set-cookie']}`);
  for (const h of Object.keys(r.headers)) if (/injected|^x-h\d/.test(h)) problems.push(`reflected header ${h}`);
  return problems.map((p) => `${p} — got ${got}`);
}

test('the corpus is big and covers every route and every kind', () => {
  const routes = new Set(corpus.map((c) => `${c.method} ${typeof c.path === 'string' ? c.path.split('?')[0].replace(/\/(history|secret|setting|environment)(?=\/|$)/, '/:type') : ':fn'}`));
  assert.ok(corpus.length >= 200, `${corpus.length} cases`);
  for (const [m, p] of [...JSON_ROUTES, ...BODYLESS_ROUTES]) {
    const key = `${m} ${p.split('?')[0].replace(/\/(history|secret|setting|environment)(?=\/|$)/, '/:type')}`;
    assert.ok(routes.has(key), `no case for ${key}`);
  }
  const kinds = new Set(corpus.map((c) => c.kind.replace(/ \(.*$/, '')));
  console.log(`hostile corpus: ${corpus.length} cases, ${kinds.size} kinds, ${routes.size} method+route pairs`);
});

test('every bad request gets its documented answer, the server stays up, and the database does not change', async () => {
  resolveLate();
  // warm up: each credential's first use and last_seen are written once
  expectOk(await new Client(srv, { bearer: ctx.token }).get('/api/sync/config'));
  expectOk(await web.get('/api/sync/config'));
  const failures = [];
  let warmedAt = Date.now();
  let base = dump();
  let segmentStart = base;
  const changed = [];
  const t0 = Date.now();
  for (const c of corpus) {
    // credentials are touched at most once a minute: stay inside the minute
    if (Date.now() - warmedAt > 45000) {
      if (dump() !== segmentStart) changed.push('(segment)');
      expectOk(await new Client(srv, { bearer: ctx.token }).get('/api/sync/config'));
      expectOk(await web.get('/api/sync/config'));
      warmedAt = Date.now();
      base = dump();
      segmentStart = base;
    }
    const r = await send(c);
    const problems = judge(c, r);
    let health;
    try {
      health = await fetch(`${srv.url}/healthz`, { signal: AbortSignal.timeout(5000) });
      await health.arrayBuffer();
    } catch (e) { health = { status: `down (${e.message})` }; }
    if (health.status !== 200) problems.push(`/healthz after it: ${health.status}`);
    if (srv.exit) {
      failures.push(`${c.name}: the server exited ${JSON.stringify(srv.exit)}`);
      break;
    }
    const now = dump();
    if (now !== base) {
      problems.push(`the database changed: ${firstDiff(base, now)}`);
      changed.push(c.name);
      base = now;
    }
    if (problems.length) failures.push(`${c.name}\n      ${problems.join('\n      ')}`);
  }
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  console.log(`hostile corpus: ${corpus.length} cases in ${secs} s, ${failures.length} failing, ${changed.length} changed the database`);
  if (dump() !== segmentStart && changed.length === 0) failures.push('the database changed over the corpus (not after any one case)');
  assert.deepEqual(failures, [], `${failures.length} of ${corpus.length} cases failed` +
    `${changed.length ? ` (${changed.length} changed the database)` : ''}:\n  ${failures.join('\n  ')}`);
});

test('the request log stays one well-formed line per request (no forged lines, no control characters)', async () => {
  await sleep(100);
  const bad = srv.logLines().filter((l) => !l.startsWith('flamingo-syncd: ') || /[\x00-\x08\x0b-\x1f\x7f]/.test(l));
  assert.deepEqual(bad.slice(0, 10), [], `${bad.length} odd log line(s)`);
  for (const s of srv.secrets) {
    assert.ok(!srv.stderr.includes(s), 'a token or cookie value in the log');
  }
});
