// The wrapped master key: versions, expected_version, refusing unwrapped
// keys, key_version checks on data writes, atomic key rotation.

import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { startServer, stopAll, test } from './lib/server.mjs';
import {
  expectOk, expectError, expectInvalid, expectNoStore, expectTimestamp, signup, deviceLogin, b64, randomBytes,
} from './lib/client.mjs';
import { finalChecks } from './lib/checks.mjs';

let srv;
let web;
let dev;

before(async () => {
  srv = await startServer({ env: { MAX_BLOB_BYTES: '4096' } });
  web = await signup(srv);
  dev = await deviceLogin(web, { device_name: 'keydev' });
});
after(stopAll);

const kdf = (n = 1) => ({ name: 'argon2id', salt: b64(randomBytes(16)), t: 3, m: 65536, p: 1, n });
const wrapped = (n = 60) => b64(randomBytes(n));

async function key(c = dev) {
  const r = await c.get('/api/sync/key');
  return r.status === 200 ? r.data : r;
}

test('no key yet: 404 not_found with Cache-Control: no-store', async () => {
  for (const c of [dev, web]) {
    const r = await c.get('/api/sync/key');
    expectError(r, 404, 'not_found');
    expectNoStore(r);
  }
});

test('before any key exists, key_version on a data PUT is not checked', async () => {
  expectOk(await dev.put('/api/sync/data/setting', { encrypted_data: b64('pre-key'), key_version: 3 }));
  expectOk(await dev.del('/api/sync/data/setting')); // leaves a tombstone: holds no data for rotation
});

test('first PUT (cookie) answers 200 {version: 1}; GET returns it as stored', async () => {
  const w = wrapped(72);
  const k = kdf(1);
  const r = await web.put('/api/sync/key', { wrapped_key: w, kdf: k });
  const d = expectOk(r);
  expectNoStore(r);
  assert.deepEqual(Object.keys(d).sort(), ['created_at', 'version']);
  assert.equal(d.version, 1);
  expectTimestamp(d.created_at);
  const g = await dev.get('/api/sync/key');
  const gd = expectOk(g);
  expectNoStore(g);
  assert.deepEqual(Object.keys(gd).sort(), ['created_at', 'created_by_device', 'kdf', 'version', 'wrapped_key']);
  assert.equal(gd.wrapped_key, w);
  assert.deepEqual(gd.kdf, k);
  assert.equal(gd.version, 1);
  assert.equal(gd.created_at, d.created_at);
  assert.equal(gd.created_by_device, null, 'stored through a web session');
});

test('each PUT makes a new version; a bearer PUT records its device', async () => {
  const w = wrapped(48);
  const d = expectOk(await dev.put('/api/sync/key', { wrapped_key: w, kdf: kdf(2), expected_version: 1 }));
  assert.equal(d.version, 2);
  const g = await key();
  assert.equal(g.version, 2);
  assert.equal(g.wrapped_key, w);
  assert.equal(g.created_by_device, dev.deviceId);
  assert.deepEqual(g.kdf, { ...g.kdf, n: 2 });
  const audit = expectOk(await web.get('/api/audit?limit=200')).events;
  assert.ok(audit.filter((e) => e.event_type === 'key_stored').length >= 2, 'key_stored audited');
});

test('expected_version not equal to the current version answers 409 conflict, nothing changes', async () => {
  const before = await key();
  for (const ev of [0, 1, 3, 100]) {
    const r = await dev.put('/api/sync/key', { wrapped_key: wrapped(), kdf: kdf(9), expected_version: ev });
    expectError(r, 409, 'conflict');
    expectNoStore(r);
  }
  assert.deepEqual(await key(), before);
});

test('10 parallel PUTs with one expected_version: exactly one new version', async () => {
  const before = await key();
  const res = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? dev : web).put('/api/sync/key',
    { wrapped_key: wrapped(), kdf: kdf(i), expected_version: before.version })));
  const ok = res.filter((r) => r.status === 200);
  assert.equal(ok.length, 1, res.map((r) => r.status).join(','));
  for (const r of res) if (r.status !== 200) expectError(r, 409, 'conflict');
  assert.equal((await key()).version, before.version + 1);
});

test('a 32-byte "wrapped" key is refused as an unwrapped key; sizes 40..4096 only', async () => {
  const before = await key();
  const r = await dev.put('/api/sync/key', { wrapped_key: b64(randomBytes(32)), kdf: kdf() });
  expectInvalid(r, 'wrapped_key');
  for (const n of [0, 1, 31, 33, 39, 4097]) {
    const x = await dev.put('/api/sync/key', { wrapped_key: b64(randomBytes(n)), kdf: kdf() });
    expectInvalid(x, 'wrapped_key');
  }
  assert.deepEqual(await key(), before);
  expectInvalid(await dev.put('/api/sync/key', { wrapped_key: 'not base64!', kdf: kdf() }), 'wrapped_key');
  expectInvalid(await dev.put('/api/sync/key', { wrapped_key: 12, kdf: kdf() }), 'wrapped_key');
  expectInvalid(await dev.put('/api/sync/key', { kdf: kdf() }), 'wrapped_key');
  expectInvalid(await dev.put('/api/sync/key', { wrapped_key: wrapped() }), 'kdf');
  expectInvalid(await dev.put('/api/sync/key', { wrapped_key: wrapped(), kdf: 'argon2id' }), 'kdf');
  expectInvalid(await dev.put('/api/sync/key', { wrapped_key: wrapped(), kdf: ['argon2id'] }), 'kdf');
  expectInvalid(await dev.put('/api/sync/key', { wrapped_key: wrapped(), kdf: { pad: 'x'.repeat(1100) } }), 'kdf');
  expectInvalid(await dev.put('/api/sync/key', { wrapped_key: wrapped(), kdf: kdf(), expected_version: '2' }), 'expected_version');
  expectInvalid(await dev.put('/api/sync/key', { wrapped_key: wrapped(), kdf: kdf(), plain_key: 'x' }), 'plain_key');
  assert.deepEqual(await key(), before);
  // the bounds themselves are accepted
  const v = before.version;
  assert.equal(expectOk(await dev.put('/api/sync/key', { wrapped_key: wrapped(40), kdf: kdf() })).version, v + 1);
  assert.equal(expectOk(await dev.put('/api/sync/key', { wrapped_key: wrapped(4096), kdf: kdf() })).version, v + 2);
  const big = await key();
  assert.equal(Buffer.from(big.wrapped_key, 'base64').length, 4096);
});

test('data PUT under a key version that is not current answers 409 key_version_mismatch', async () => {
  const kv = (await key()).version;
  const cur = await dev.get('/api/sync/data/history');
  assert.equal(cur.status, 404);
  for (const bad of [kv - 1, kv + 1, 0]) {
    expectError(await dev.put('/api/sync/data/history', { encrypted_data: b64('x'), key_version: bad }), 409, 'key_version_mismatch');
    expectError(await dev.put(`/api/sync/data/history?key_version=${bad}`, undefined, { body: Buffer.from('x'), contentType: 'application/octet-stream' }), 409, 'key_version_mismatch');
  }
  expectError(await dev.get('/api/sync/data/history'), 404, 'not_found');
  const ok = expectOk(await dev.put('/api/sync/data/history', { encrypted_data: b64('h1'), key_version: kv }));
  assert.equal(ok.version, 1);
  expectOk(await dev.put(`/api/sync/data/history?key_version=${kv}`, undefined, { body: Buffer.from('h2'), contentType: 'application/octet-stream' }));
  // key_version omitted is not checked; the item records the current version
  expectOk(await web.put('/api/sync/data/secret', { encrypted_data: b64('s1') }));
  const s = expectOk(await dev.get('/api/sync/data/secret'));
  assert.equal(s.key_version, kv);
  const raw = await dev.get('/api/sync/data/history', { headers: { accept: 'application/octet-stream' }, expectNonJson: true });
  assert.equal(raw.headers.get('x-key-version'), String(kv));
  assert.equal(raw.headers.get('x-sync-version'), '2');
  // after a new key, the old version is refused
  expectOk(await web.put('/api/sync/key', { wrapped_key: wrapped(), kdf: kdf(), expected_version: kv }));
  expectError(await dev.put('/api/sync/data/history', { encrypted_data: b64('old'), key_version: kv }), 409, 'key_version_mismatch');
  const h = expectOk(await dev.get('/api/sync/data/history'));
  assert.equal(h.version, 2);
  assert.equal(h.encrypted_data, b64('h2'));
  assert.equal(h.key_version, kv);
});

test('rotate: must cover every type that holds data; else 409 incomplete_rotation and nothing changes', async () => {
  // state: history and secret hold data; collection is written and then deleted (a tombstone holds none)
  expectOk(await dev.put('/api/sync/data/collection', { encrypted_data: b64('c1') }));
  expectOk(await dev.del('/api/sync/data/collection'));
  const k0 = await key();
  const h0 = expectOk(await dev.get('/api/sync/data/history'));
  const s0 = expectOk(await dev.get('/api/sync/data/secret'));
  const nextKey = { wrapped_key: wrapped(80), kdf: kdf(7), expected_version: k0.version };
  const r = await dev.post('/api/sync/key/rotate', { ...nextKey, items: [{ type: 'history', encrypted_data: b64('h-new') }] });
  expectError(r, 409, 'incomplete_rotation');
  assert.deepEqual(await key(), k0);
  assert.deepEqual(expectOk(await dev.get('/api/sync/data/history')), h0);
  assert.deepEqual(expectOk(await dev.get('/api/sync/data/secret')), s0);

  // a stale expected_version conflicts, nothing changes
  const c = await dev.post('/api/sync/key/rotate', { ...nextKey, expected_version: k0.version - 1,
    items: [{ type: 'history', encrypted_data: b64('h-new') }, { type: 'secret', encrypted_data: b64('s-new') }] });
  expectError(c, 409, 'conflict');
  // a refused key or an over-large item or an unknown type: nothing changes
  expectInvalid(await dev.post('/api/sync/key/rotate', { ...nextKey, wrapped_key: b64(randomBytes(32)),
    items: [{ type: 'history', encrypted_data: b64('h-new') }, { type: 'secret', encrypted_data: b64('s-new') }] }), 'wrapped_key');
  expectError(await dev.post('/api/sync/key/rotate', { ...nextKey,
    items: [{ type: 'history', encrypted_data: b64('h-new') }, { type: 'secret', encrypted_data: b64(randomBytes(4097)) }] }), 413, 'payload_too_large');
  expectError(await dev.post('/api/sync/key/rotate', { ...nextKey,
    items: [{ type: 'history', encrypted_data: b64('h-new') }, { type: 'secret', encrypted_data: b64('s-new') }, { type: 'bogus', encrypted_data: b64('b') }] }), 400, 'invalid_type');
  expectInvalid(await dev.post('/api/sync/key/rotate', { ...nextKey, items: [{ type: 'history' }, { type: 'secret', encrypted_data: b64('s') }] }), 'encrypted_data');
  expectInvalid(await dev.post('/api/sync/key/rotate', { ...nextKey, items: 'all' }), 'items');
  expectInvalid(await dev.post('/api/sync/key/rotate', { wrapped_key: nextKey.wrapped_key, kdf: nextKey.kdf, items: [] }), 'expected_version');
  assert.deepEqual(await key(), k0);
  assert.deepEqual(expectOk(await dev.get('/api/sync/data/history')), h0);
  assert.deepEqual(expectOk(await dev.get('/api/sync/data/secret')), s0);
});

test('rotate: stores the new key and every item in one go', async () => {
  const k0 = await key();
  const h0 = expectOk(await dev.get('/api/sync/data/history'));
  const s0 = expectOk(await dev.get('/api/sync/data/secret'));
  const ev0 = expectOk(await web.get('/api/sync/events?after=0&wait=0'));
  const w = wrapped(80);
  const r = await web.post('/api/sync/key/rotate', { wrapped_key: w, kdf: kdf(8), expected_version: k0.version,
    items: [{ type: 'history', encrypted_data: b64('h-rot') }, { type: 'secret', encrypted_data: b64('s-rot') }] });
  expectOk(r);
  expectNoStore(r);
  const k1 = await key();
  assert.equal(k1.version, k0.version + 1);
  assert.equal(k1.wrapped_key, w);
  const h1 = expectOk(await dev.get('/api/sync/data/history'));
  const s1 = expectOk(await dev.get('/api/sync/data/secret'));
  assert.equal(h1.encrypted_data, b64('h-rot'));
  assert.equal(h1.version, h0.version + 1);
  assert.equal(h1.key_version, k1.version);
  assert.equal(s1.encrypted_data, b64('s-rot'));
  assert.equal(s1.version, s0.version + 1);
  assert.equal(s1.key_version, k1.version);
  expectError(await dev.get('/api/sync/data/collection'), 404, 'not_found');
  // events: key_rotated and a data_updated per item
  const ev1 = expectOk(await web.get(`/api/sync/events?after=${ev0.next}&wait=0`));
  const types = ev1.events.map((e) => `${e.type}:${e.data_type ?? ''}`);
  assert.ok(types.includes('key_rotated:'), types.join(','));
  assert.ok(types.includes('data_updated:history'), types.join(','));
  assert.ok(types.includes('data_updated:secret'), types.join(','));
  const audit = expectOk(await web.get('/api/audit?limit=5')).events;
  assert.ok(audit.some((e) => e.event_type === 'key_stored'));
  // data under the old key version is now refused
  expectError(await dev.put('/api/sync/data/history', { encrypted_data: b64('x'), key_version: k0.version }), 409, 'key_version_mismatch');
  assert.equal(expectOk(await dev.put('/api/sync/data/history', { encrypted_data: b64('x'), key_version: k1.version })).version, h1.version + 1);
});

test('key routes need credentials; cookie writes need the Origin', async () => {
  const anon = web.clone();
  anon.cookies.clear();
  expectError(await anon.get('/api/sync/key'), 401, 'unauthorized');
  expectError(await anon.put('/api/sync/key', { wrapped_key: wrapped(), kdf: kdf() }), 401, 'unauthorized');
  expectError(await anon.post('/api/sync/key/rotate', { wrapped_key: wrapped(), kdf: kdf(), expected_version: 1, items: [] }), 401, 'unauthorized');
  expectError(await web.put('/api/sync/key', { wrapped_key: wrapped(), kdf: kdf() }, { origin: null }), 403, 'csrf_rejected');
});

finalChecks(() => [srv]);
