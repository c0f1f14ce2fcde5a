// Encrypted data: PUT/GET/DELETE per type, list, versions, preconditions
// (base_version, If-Match, If-None-Match/ETag/304), concurrency, octet-stream,
// size limits, revisions, tombstones, sync_disabled.

import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { startServer, stopAll, test, metric } from './lib/server.mjs';
import {
  TYPES, expectOk, expectError, expectInvalid, expectTimestamp, signup, deviceLogin, b64, randomBytes,
} from './lib/client.mjs';
import { finalChecks } from './lib/checks.mjs';

const MAX_BLOB = 4096;
const REVS = 3;
let srv;
let web;
let devA;
let devB;

before(async () => {
  srv = await startServer({ env: { MAX_BLOB_BYTES: String(MAX_BLOB), DATA_REVISIONS: String(REVS) } });
  web = await signup(srv);
  devA = await deviceLogin(web, { device_name: 'A' });
  devB = await deviceLogin(web, { device_name: 'B' });
  // a key exists (version 1), so key_version is defined for every item
  expectOk(await web.put('/api/sync/key', { wrapped_key: b64(randomBytes(60)), kdf: { name: 'argon2id' } }));
});
after(stopAll);

const ITEM_KEYS = ['key_version', 'size', 'type', 'updated_at', 'updated_by_device', 'version'];

async function current(type, c = devA) {
  const r = await c.get(`/api/sync/data/${type}`);
  return r.status === 200 ? r.data : r;
}

test('nothing stored yet: empty list, 404 per type', async () => {
  assert.deepEqual(expectOk(await devA.get('/api/sync/data')), { items: [] });
  for (const t of TYPES) expectError(await devA.get(`/api/sync/data/${t}`), 404, 'not_found');
});

test('unknown types answer 400 invalid_type on every data route', async () => {
  for (const t of ['foo', 'History', 'histories', 'settings', 'key', 'x'.repeat(300)]) {
    expectError(await devA.get(`/api/sync/data/${t}`), 400, 'invalid_type');
    expectError(await devA.put(`/api/sync/data/${t}`, { encrypted_data: b64('abc') }), 400, 'invalid_type');
    expectError(await devA.del(`/api/sync/data/${t}`), 400, 'invalid_type');
    expectError(await devA.get(`/api/sync/data/${t}/revisions`), 400, 'invalid_type');
    expectError(await devA.get(`/api/sync/data/${t}/revisions/1`), 400, 'invalid_type');
  }
});

test('no or bad credentials: 401 on every data route', async () => {
  const anon = web.clone();
  anon.cookies.clear();
  for (const [m, p] of [['GET', '/api/sync/data'], ['GET', '/api/sync/data/history'], ['PUT', '/api/sync/data/history'],
    ['DELETE', '/api/sync/data/history'], ['GET', '/api/sync/data/history/revisions'], ['GET', '/api/sync/data/history/revisions/1']]) {
    const r = await anon.request(m, p, m === 'PUT' ? { json: { encrypted_data: b64('abc') } } : {});
    expectError(r, 401, 'unauthorized');
  }
});

test('first PUT answers 200 with version 1; GET returns it (bearer)', async () => {
  const blob = randomBytes(100);
  const t0 = Date.now();
  const r = await devA.put('/api/sync/data/history', { encrypted_data: b64(blob) });
  const d = expectOk(r);
  assert.deepEqual(Object.keys(d).sort(), ['size', 'type', 'updated_at', 'version']);
  assert.equal(d.type, 'history');
  assert.equal(d.version, 1);
  assert.equal(d.size, 100);
  expectTimestamp(d.updated_at);
  assert.ok(Math.abs(Date.parse(d.updated_at) - t0) < 10_000);
  const g = await devB.get('/api/sync/data/history');
  const gd = expectOk(g);
  assert.deepEqual(Object.keys(gd).sort(), [...ITEM_KEYS, 'encrypted_data'].sort());
  assert.equal(gd.type, 'history');
  assert.equal(gd.encrypted_data, b64(blob));
  assert.equal(gd.version, 1);
  assert.equal(gd.size, 100);
  assert.equal(gd.updated_at, d.updated_at);
  assert.equal(gd.updated_by_device, devA.deviceId);
  assert.equal(gd.key_version, 1, 'an item PUT without key_version records the current key version');
  assert.equal(g.headers.get('etag'), '"1"');
});

test('cookie clients read and write too; a web write has no device', async () => {
  const blob = randomBytes(33);
  const d = expectOk(await web.put('/api/sync/data/environment', { encrypted_data: b64(blob) }));
  assert.equal(d.version, 1);
  const g = expectOk(await web.get('/api/sync/data/environment'));
  assert.equal(g.encrypted_data, b64(blob));
  assert.equal(g.updated_by_device, null);
  assert.equal(expectOk(await devA.get('/api/sync/data/environment')).version, 1);
});

test('every PUT adds one to the version; without a precondition the last writer wins', async () => {
  const v0 = (await current('history')).version;
  const a = randomBytes(20);
  const b = randomBytes(21);
  assert.equal(expectOk(await devA.put('/api/sync/data/history', { encrypted_data: b64(a) })).version, v0 + 1);
  assert.equal(expectOk(await devB.put('/api/sync/data/history', { encrypted_data: b64(b) })).version, v0 + 2);
  const g = await current('history');
  assert.equal(g.encrypted_data, b64(b));
  assert.equal(g.updated_by_device, devB.deviceId);
});

test('list: metadata of every stored type, no blobs; ?include=data adds them', async () => {
  const l = expectOk(await devA.get('/api/sync/data'));
  assert.deepEqual(Object.keys(l), ['items']);
  const types = l.items.map((i) => i.type).sort();
  assert.deepEqual(types, ['environment', 'history']);
  for (const it of l.items) {
    assert.deepEqual(Object.keys(it).sort(), ITEM_KEYS);
    const g = await current(it.type);
    for (const k of ITEM_KEYS) assert.deepEqual(it[k], g[k], `${it.type}.${k}`);
  }
  const full = expectOk(await web.get('/api/sync/data?include=data'));
  for (const it of full.items) {
    assert.equal(it.encrypted_data, (await current(it.type)).encrypted_data);
  }
});

test('base_version: stale answers 409 conflict with the current metadata and stores nothing', async () => {
  const cur = await current('history');
  const r = await devA.put('/api/sync/data/history', { encrypted_data: b64(randomBytes(10)), base_version: cur.version - 1 });
  expectError(r, 409, 'conflict');
  const meta = r.json.data;
  assert.ok(meta, `conflict carries data: ${r.describe()}`);
  assert.equal(meta.type, 'history');
  assert.equal(meta.version, cur.version);
  assert.equal(meta.size, cur.size);
  assert.equal(meta.key_version, cur.key_version);
  assert.equal(meta.updated_at, cur.updated_at);
  assert.equal(meta.updated_by_device, cur.updated_by_device);
  assert.deepEqual(await current('history'), cur);
  const r2 = await devA.put('/api/sync/data/history', { encrypted_data: b64(randomBytes(10)), base_version: cur.version + 5 });
  expectError(r2, 409, 'conflict');
  assert.deepEqual(await current('history'), cur);
  // never-written type: base_version 0 is current, anything else conflicts
  expectError(await devA.put('/api/sync/data/setting', { encrypted_data: b64('x'), base_version: 3 }), 409, 'conflict');
  expectError(await devA.get('/api/sync/data/setting'), 404, 'not_found');
  // the right base_version succeeds
  const ok = await devA.put('/api/sync/data/history', { encrypted_data: b64(randomBytes(10)), base_version: cur.version });
  assert.equal(expectOk(ok).version, cur.version + 1);
});

test('If-Match: "<version>" is a precondition on PUT and DELETE', async () => {
  const cur = await current('history');
  const stale = await devA.put('/api/sync/data/history', { encrypted_data: b64('zz') }, { headers: { 'if-match': `"${cur.version - 1}"` } });
  expectError(stale, 409, 'conflict');
  assert.equal(stale.json.data?.version, cur.version);
  const del = await devA.del('/api/sync/data/history', { headers: { 'if-match': `"${cur.version - 1}"` } });
  expectError(del, 409, 'conflict');
  assert.deepEqual(await current('history'), cur);
  const ok = await devA.put('/api/sync/data/history', { encrypted_data: b64('yy') }, { headers: { 'if-match': `"${cur.version}"` } });
  assert.equal(expectOk(ok).version, cur.version + 1);
});

test('ETag and If-None-Match: 304 while unchanged, 200 once changed', async () => {
  const g = await devA.get('/api/sync/data/history');
  const etag = g.headers.get('etag');
  assert.equal(etag, `"${g.data.version}"`);
  const nm = await devA.get('/api/sync/data/history', { headers: { 'if-none-match': etag } });
  assert.equal(nm.status, 304, nm.describe());
  assert.equal(nm.buf.length, 0, '304 has no body');
  assert.equal(nm.headers.get('etag'), etag);
  const other = await devA.get('/api/sync/data/history', { headers: { 'if-none-match': '"0"' } });
  assert.equal(other.status, 200);
  expectOk(await devB.put('/api/sync/data/history', { encrypted_data: b64('new') }));
  const after = await devA.get('/api/sync/data/history', { headers: { 'if-none-match': etag } });
  assert.equal(after.status, 200);
  assert.equal(after.headers.get('etag'), `"${g.data.version + 1}"`);
});

test('If-None-Match: a list of tags and weak tags match too (RFC 9110 weak comparison)', async () => {
  const g = await devA.get('/api/sync/data/history');
  const v = g.data.version;
  for (const inm of [`"0", "${v}"`, `W/"${v}"`, '*']) {
    const r = await devA.get('/api/sync/data/history', { headers: { 'if-none-match': inm } });
    assert.equal(r.status, 304, `If-None-Match: ${inm} -> ${r.status}`);
  }
  const r = await devA.get('/api/sync/data/history', { headers: { 'if-none-match': `"${v - 1}", "${v + 1}"` } });
  assert.equal(r.status, 200);
});

test('20 parallel PUTs with one base_version: exactly one 200, the rest 409 conflict', async () => {
  const cur = await current('history');
  const blobs = Array.from({ length: 20 }, () => randomBytes(64));
  const res = await Promise.all(blobs.map((b, i) => (i % 2 ? devA : devB).put('/api/sync/data/history',
    { encrypted_data: b64(b), base_version: cur.version })));
  const ok = res.filter((r) => r.status === 200);
  assert.equal(ok.length, 1, `statuses: ${res.map((r) => r.status).join(',')}`);
  assert.equal(ok[0].data.version, cur.version + 1);
  const winner = blobs[res.indexOf(ok[0])];
  for (const r of res) {
    if (r === ok[0]) continue;
    expectError(r, 409, 'conflict');
    assert.equal(r.json.data?.type, 'history');
    assert.equal(r.json.data?.version, cur.version + 1, 'conflict shows the new current version');
  }
  const g = await current('history');
  assert.equal(g.version, cur.version + 1);
  assert.equal(g.encrypted_data, b64(winner));
});

test('20 parallel PUTs without precondition: all 200, versions without gaps or repeats', async () => {
  const cur = await current('history');
  const res = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? devA : web).put('/api/sync/data/history',
    { encrypted_data: b64(randomBytes(16 + i)) })));
  for (const r of res) expectOk(r);
  const versions = res.map((r) => r.data.version).sort((x, y) => x - y);
  assert.deepEqual(versions, Array.from({ length: 20 }, (_, i) => cur.version + 1 + i));
  const g = await current('history');
  assert.equal(g.version, cur.version + 20);
  // the stored blob is the one of the response that got the last version
  const last = res.find((r) => r.data.version === g.version);
  assert.equal(g.size, last.data.size);
});

test('/metrics counts durable writes and the commits that carried them; WRITE_BATCH_MAX=1: one each', async () => {
  const counts = async (s) => ({
    txs: await metric(s, 'flamingo_store_write_transactions_total'),
    commits: await metric(s, 'flamingo_store_commits_total'),
  });
  const before = await counts(srv);
  const res = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? devA : web).put('/api/sync/data/setting',
    { encrypted_data: b64(randomBytes(16)) })));
  for (const r of res) expectOk(r);
  const now = await counts(srv);
  assert.ok(now.txs - before.txs >= 20, `${now.txs - before.txs} writes counted`);
  assert.ok(now.commits > before.commits && now.commits - before.commits <= now.txs - before.txs,
    `${now.commits - before.commits} commits for ${now.txs - before.txs} writes`);
  assert.equal(await metric(srv, 'flamingo_store_write_queue'), 0);

  const single = await startServer({ env: { WRITE_BATCH_MAX: '1' } });
  const w = await signup(single);
  const res1 = await Promise.all(Array.from({ length: 10 }, () => w.put('/api/sync/data/setting',
    { encrypted_data: b64(randomBytes(16)) })));
  for (const r of res1) expectOk(r);
  const one = await counts(single);
  assert.ok(one.txs >= 10, `${one.txs} writes counted`);
  assert.equal(one.commits, one.txs);
  await single.stop();
});

test('octet-stream PUT with query preconditions; Accept: octet-stream GET with headers', async () => {
  const cur = await current('collection', devA);
  assert.equal(cur.status, 404);
  const raw = Buffer.concat([Buffer.from([0, 255, 0, 128, 10, 13]), randomBytes(300)]);
  const r = await devA.put('/api/sync/data/collection?base_version=0', undefined, { body: raw, contentType: 'application/octet-stream' });
  const d = expectOk(r);
  assert.equal(d.version, 1);
  assert.equal(d.size, raw.length);
  const g = await devB.get('/api/sync/data/collection', { headers: { accept: 'application/octet-stream' }, expectNonJson: true });
  assert.equal(g.status, 200);
  assert.match(g.headers.get('content-type') || '', /^application\/octet-stream/);
  assert.ok(g.buf.equals(raw), 'raw bytes round-trip');
  assert.equal(g.headers.get('etag'), '"1"');
  assert.equal(g.headers.get('x-sync-version'), '1');
  assert.equal(g.headers.get('x-key-version'), '1');
  // the same bytes through JSON
  assert.equal(expectOk(await devB.get('/api/sync/data/collection')).encrypted_data, raw.toString('base64'));
  // stale base_version in the query
  const stale = await devA.put('/api/sync/data/collection?base_version=0', undefined, { body: randomBytes(5), contentType: 'application/octet-stream' });
  expectError(stale, 409, 'conflict');
  assert.equal(stale.json.data?.version, 1);
  // If-None-Match on the raw GET
  const nm = await devB.get('/api/sync/data/collection', { headers: { accept: 'application/octet-stream', 'if-none-match': '"1"' }, expectNonJson: true });
  assert.equal(nm.status, 304);
  // a bad query value
  expectInvalid(await devA.put('/api/sync/data/collection?base_version=abc', undefined, { body: randomBytes(5), contentType: 'application/octet-stream' }), 'base_version');
  expectInvalid(await devA.put('/api/sync/data/collection?key_version=x1', undefined, { body: randomBytes(5), contentType: 'application/octet-stream' }), 'key_version');
  // a cookie client can upload raw too
  const w = await web.put('/api/sync/data/collection?base_version=1', undefined, { body: Buffer.from('raw-from-web'), contentType: 'application/octet-stream' });
  assert.equal(expectOk(w).version, 2);
  assert.equal(expectOk(await devA.get('/api/sync/data/collection')).encrypted_data, b64('raw-from-web'));
});

test('MAX_BLOB_BYTES: the decoded size is the limit (JSON and raw); over answers 413 and stores nothing', async () => {
  const exact = randomBytes(MAX_BLOB);
  assert.equal(expectOk(await devA.put('/api/sync/data/setting', { encrypted_data: b64(exact) })).size, MAX_BLOB);
  const cur = await current('setting');
  expectError(await devA.put('/api/sync/data/setting', { encrypted_data: b64(randomBytes(MAX_BLOB + 1)) }), 413, 'payload_too_large');
  expectError(await devA.put('/api/sync/data/setting', undefined, { body: randomBytes(MAX_BLOB + 1), contentType: 'application/octet-stream' }), 413, 'payload_too_large');
  expectError(await devA.put('/api/sync/data/setting', undefined, { body: randomBytes(MAX_BLOB * 4), contentType: 'application/octet-stream' }), 413, 'payload_too_large');
  assert.deepEqual(await current('setting'), cur);
  const raw = await devA.put('/api/sync/data/setting', undefined, { body: randomBytes(MAX_BLOB), contentType: 'application/octet-stream' });
  assert.equal(expectOk(raw).size, MAX_BLOB);
});

test('bad data bodies answer 400 and store nothing', async () => {
  const cur = await current('history');
  const bad = [
    [{}, 'encrypted_data'],
    [{ encrypted_data: 5 }, 'encrypted_data'],
    [{ encrypted_data: null }, 'encrypted_data'],
    [{ encrypted_data: 'not base64 !!' }, 'encrypted_data'],
    [{ encrypted_data: 'QUJD=' }, 'encrypted_data'],
    [{ encrypted_data: b64('x'), base_version: '1' }, 'base_version'],
    [{ encrypted_data: b64('x'), base_version: -1 }, 'base_version'],
    [{ encrypted_data: b64('x'), base_version: 1.5 }, 'base_version'],
    [{ encrypted_data: b64('x'), key_version: 'one' }, 'key_version'],
    [{ encrypted_data: b64('x'), type: 'history' }, 'type'],
  ];
  for (const [body, field] of bad) {
    expectInvalid(await devA.put('/api/sync/data/history', body), field);
  }
  for (const body of ['{"encrypted_data": "QUJD"', '[]', 'null', '{"encrypted_data":"QUJD"} {}']) {
    expectInvalid(await devA.put('/api/sync/data/history', undefined, { body, contentType: 'application/json' }));
  }
  assert.deepEqual(await current('history'), cur);
});

test('revisions: the last DATA_REVISIONS versions are listed and readable', async () => {
  const type = 'secret';
  const blobs = {};
  for (let i = 0; i < 5; i++) {
    const b = randomBytes(30 + i);
    const d = expectOk(await devA.put(`/api/sync/data/${type}`, { encrypted_data: b64(b) }));
    blobs[d.version] = b;
  }
  const cur = await current(type);
  assert.equal(cur.version, 5);
  const l = expectOk(await devB.get(`/api/sync/data/${type}/revisions`));
  const list = l.revisions || l.items;
  assert.ok(Array.isArray(list), `revisions list: ${JSON.stringify(l)}`);
  assert.equal(list.length, REVS);
  const versions = list.map((x) => x.version).sort((a, b) => a - b);
  assert.deepEqual(versions, [3, 4, 5], 'the last DATA_REVISIONS versions, the current one included');
  for (const rev of list) {
    assert.deepEqual(Object.keys(rev).sort(), ['key_version', 'size', 'updated_at', 'updated_by_device', 'version']);
    assert.equal(rev.size, blobs[rev.version].length);
    assert.equal(rev.updated_by_device, devA.deviceId);
    expectTimestamp(rev.updated_at);
    const one = expectOk(await web.get(`/api/sync/data/${type}/revisions/${rev.version}`));
    assert.equal(one.encrypted_data, b64(blobs[rev.version]));
    if ('version' in one) assert.equal(one.version, rev.version);
  }
  for (const v of [1, 2, 6, 999]) {
    expectError(await devB.get(`/api/sync/data/${type}/revisions/${v}`), 404, 'not_found');
  }
  const abc = await devB.get(`/api/sync/data/${type}/revisions/abc`);
  assert.ok((abc.status === 400 && abc.error === 'invalid_request') || (abc.status === 404 && abc.error === 'not_found'), abc.describe());
});

test('DELETE leaves a tombstone: GET 404, list omits, the next PUT continues the count', async () => {
  const type = 'environment';
  const cur = await current(type);
  const r = await devA.del(`/api/sync/data/${type}`);
  assert.deepEqual(expectOk(r), { type, version: cur.version + 1 });
  expectError(await devA.get(`/api/sync/data/${type}`), 404, 'not_found');
  expectError(await devA.get(`/api/sync/data/${type}`, { headers: { accept: 'application/octet-stream' } }), 404, 'not_found');
  const l = expectOk(await devA.get('/api/sync/data'));
  assert.ok(!l.items.some((i) => i.type === type), 'list omits the deleted type');
  const full = expectOk(await devA.get('/api/sync/data?include=data'));
  assert.ok(!full.items.some((i) => i.type === type));
  const p = expectOk(await devB.put(`/api/sync/data/${type}`, { encrypted_data: b64('back') }));
  assert.equal(p.version, cur.version + 2);
  const audit = expectOk(await web.get('/api/audit?limit=200')).events;
  const cleared = audit.find((e) => e.event_type === 'data_cleared');
  assert.ok(cleared, 'DELETE audits data_cleared');
  assert.equal(cleared.device_id, devA.deviceId);
});

test('DELETE with a stale If-Match conflicts; a cookie DELETE works', async () => {
  const type = 'environment';
  const cur = await current(type);
  expectError(await web.del(`/api/sync/data/${type}`, { headers: { 'if-match': '"1"' } }), 409, 'conflict');
  assert.deepEqual(await current(type), cur);
  const r = await web.del(`/api/sync/data/${type}`, { headers: { 'if-match': `"${cur.version}"` } });
  assert.deepEqual(expectOk(r), { type, version: cur.version + 1 });
});

test('sync_disabled: writes to a disabled type are refused, reads still work', async () => {
  const type = 'history';
  const cur = await current(type);
  expectOk(await web.put('/api/sync/config', { [type]: false }));
  for (const c of [devA, web]) {
    expectError(await c.put(`/api/sync/data/${type}`, { encrypted_data: b64('nope') }), 403, 'sync_disabled');
    expectError(await c.put(`/api/sync/data/${type}`, undefined, { body: Buffer.from('nope'), contentType: 'application/octet-stream' }), 403, 'sync_disabled');
    expectError(await c.del(`/api/sync/data/${type}`), 403, 'sync_disabled');
  }
  assert.deepEqual(await current(type), cur);
  assert.equal(expectOk(await web.get(`/api/sync/data/${type}`)).version, cur.version);
  assert.ok(expectOk(await devA.get('/api/sync/data')).items.some((i) => i.type === type));
  expectOk(await devA.get(`/api/sync/data/${type}/revisions`));
  // other types are still writable
  expectOk(await devA.put('/api/sync/data/setting', { encrypted_data: b64('ok') }));
  // through the per-type config route too
  expectOk(await devA.put('/api/sync/config/data-type/setting', { enabled: false }));
  expectError(await devA.put('/api/sync/data/setting', { encrypted_data: b64('no') }), 403, 'sync_disabled');
  expectOk(await devA.put('/api/sync/config/data-type/setting', { enabled: true }));
  expectOk(await web.put('/api/sync/config', { [type]: true }));
  assert.equal(expectOk(await devA.put(`/api/sync/data/${type}`, { encrypted_data: b64('yes') })).version, cur.version + 1);
});

finalChecks(() => [srv]);
