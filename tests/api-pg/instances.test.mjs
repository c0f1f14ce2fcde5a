// Several flamingo-syncd instances on one PostgreSQL database (what runs
// behind a load balancer): they start together without racing over the
// migrations, and whatever one records holds on the other at once: events
// wake long-polls across instances (LISTEN/NOTIFY), revocations, token
// rotations, key versions and rate-limit counters are shared.
// Runs only under make api-pg (FLAMINGO_STORE=postgres).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { before, after } from 'node:test';
import {
  startServer, stopAll, test, makeTempDir, psql, waitForLongPolls, runCli, createPgDatabase, pgUrl, STORE,
} from '../api/lib/server.mjs';
import {
  Client, expectOk, expectError, signup, deviceLogin, b64, randomBytes, openStream,
} from '../api/lib/client.mjs';
import { finalChecks } from '../api/lib/checks.mjs';

const skip = STORE !== 'postgres' && 'several instances need PostgreSQL (make api-pg)';
const ENV = { RATE_LOGIN_ACCOUNT: '4/60', RATE_LOGIN_IP: '1000/60' };
let A;
let B;
let webA;
let webB;
after(stopAll);

/** The same browser on the other instance (web sessions live in the database). */
function sameBrowser(web, srv) {
  const c = new Client(srv);
  c.cookies = new Map(web.cookies);
  Object.assign(c, { user: web.user, email: web.email, password: web.password });
  return c;
}

before(async () => {
  if (skip) return;
  // two instances started at the same moment on a fresh database: the
  // migrations run once, under the advisory lock, and both come up
  const dir = makeTempDir();
  [A, B] = await Promise.all([startServer({ env: ENV, dir }), startServer({ env: ENV, dir })]);
  webA = await signup(A);
  webB = sameBrowser(webA, B);
});

test('two instances starting at once on a fresh database apply each migration once', { skip }, () => {
  assert.equal(A.pgdb, B.pgdb);
  const rows = psql(A.pgdb, 'SELECT version FROM schema_migrations ORDER BY version').trim().split('\n');
  const files = fs.readdirSync(new URL('../../src/store/migrations/pg/', import.meta.url)).filter((f) => f.endsWith('.sql'));
  assert.ok(files.length >= 2);
  assert.deepEqual(rows, files.map((_, i) => String(i + 1)), 'each migration once, in order');
  assert.match(A.stderr + B.stderr, /storage: postgres/);
});

test('a write through A wakes a long-poll on B within 2 s (and B -> A)', { skip }, async () => {
  const dev = await deviceLogin(webA);
  const devOnB = new Client(B, { bearer: dev.token, sendOrigin: false });
  for (const [writer, waiter, waiterSrv] of [[dev, devOnB, B], [devOnB, dev, A]]) {
    const next = expectOk(await waiter.get('/api/sync/events?after=0&wait=0')).next;
    const t0 = Date.now();
    const pending = waiter.get(`/api/sync/events?after=${next}&wait=20`, { timeoutMs: 30000 });
    await waitForLongPolls(waiterSrv, 1);
    const w = expectOk(await writer.put('/api/sync/data/history', { encrypted_data: b64(randomBytes(12)) }));
    const tw = Date.now();
    const d = expectOk(await pending);
    const ms = Date.now() - tw;
    assert.ok(ms < 2000, `woken ${ms} ms after the write (held ${Date.now() - t0} ms)`);
    assert.equal(d.events.length, 1, JSON.stringify(d));
    assert.equal(d.events[0].type, 'data_updated');
    assert.equal(d.events[0].version, w.version);
    assert.equal(d.next, d.events[0].id);
    assert.ok(d.next > next);
  }
});

test('a write through A reaches an event stream on B; revoking the device on A ends its stream on B', { skip }, async () => {
  const dev = await deviceLogin(webA);
  const other = await deviceLogin(webA);
  const devOnB = new Client(B, { bearer: dev.token, sendOrigin: false });
  const s = await openStream(devOnB);
  assert.equal(s.res.status, 200);
  const w = expectOk(await other.put('/api/sync/data/secret', { encrypted_data: b64(randomBytes(12)) }));
  const tw = Date.now();
  const ev = await s.waitFor((e) => e.event === 'data_updated' && e.json?.version === w.version, 5000);
  assert.ok(ev, 'the write on A reached the stream on B');
  assert.ok(Date.now() - tw < 2000, `reached it ${Date.now() - tw} ms after the write`);
  expectOk(await webA.del(`/api/devices/${dev.deviceId}`));
  const rev = await s.waitFor((e) => e.event === 'device_revoked', 5000);
  assert.equal(rev?.json.device_id, dev.deviceId);
  await Promise.race([s.ended, new Promise((_, reject) => setTimeout(() => reject(new Error('the stream on B did not end')), 5000))]);
});

test('ids stay in commit order per user when both instances write at once', { skip }, async () => {
  const dev = await deviceLogin(webA);
  const devOnB = new Client(B, { bearer: dev.token, sendOrigin: false });
  const start = expectOk(await dev.get('/api/sync/events?after=0&wait=0')).next;
  const writes = [];
  for (let i = 0; i < 10; i++) {
    writes.push(dev.put('/api/sync/data/setting', { encrypted_data: b64(`a${i}`) }));
    writes.push(devOnB.put('/api/sync/data/setting', { encrypted_data: b64(`b${i}`) }));
  }
  for (const r of await Promise.all(writes)) expectOk(r);
  const ev = expectOk(await devOnB.get(`/api/sync/events?after=${start}&wait=0`)).events;
  // 20 writes of one type: versions 1..20, and the events of their commits
  // come out in that order, ids ascending
  assert.deepEqual(ev.map((e) => e.version), Array.from({ length: 20 }, (_, i) => i + 1));
  for (let i = 1; i < ev.length; i++) assert.ok(ev[i].id > ev[i - 1].id);
});

test('a device revoked on A is refused on B at its next request', { skip }, async () => {
  const dev = await deviceLogin(webA);
  const devOnB = new Client(B, { bearer: dev.token, sendOrigin: false });
  expectOk(await devOnB.get('/api/sync/config'));
  expectOk(await webA.del(`/api/devices/${dev.deviceId}`));
  expectError(await devOnB.get('/api/sync/config'), 401, 'unauthorized');
  const list = expectOk(await webB.get('/api/devices')).devices;
  assert.equal(list.find((d) => d.id === dev.deviceId).status, 'revoked');
});

test('a token rotated on A is honoured on B: new token works, reuse of the old one revokes', { skip }, async () => {
  const dev = await deviceLogin(webA);
  const rotated = expectOk(await dev.post('/api/sync/rotate'));
  const newOnB = new Client(B, { bearer: rotated.session_token, sendOrigin: false });
  const oldOnB = new Client(B, { bearer: dev.token, sendOrigin: false });
  expectOk(await oldOnB.get('/api/sync/config'));   // grace, until the new one is used
  expectOk(await newOnB.get('/api/sync/config'));   // first use, on B
  expectError(await dev.get('/api/sync/config'), 401, 'unauthorized');     // old on A: reuse
  expectError(await newOnB.get('/api/sync/config'), 401, 'unauthorized');  // whole session revoked
});

test('a key version stored on A is the one B checks expected_version against', { skip }, async () => {
  const web = await signup(A);
  const webOnB = sameBrowser(web, B);
  const kdf = { name: 'argon2id', salt: b64(randomBytes(16)), t: 3, m: 65536, p: 1 };
  expectOk(await web.put('/api/sync/key', { wrapped_key: b64(randomBytes(60)), kdf }));
  expectError(await webOnB.put('/api/sync/key', { wrapped_key: b64(randomBytes(60)), kdf, expected_version: 0 }),
    409, 'conflict');
  expectOk(await webOnB.put('/api/sync/key', { wrapped_key: b64(randomBytes(60)), kdf, expected_version: 1 }));
  assert.equal(expectOk(await web.get('/api/sync/key')).version, 2);
});

test('a rate-limit counter on A holds on B', { skip }, async () => {
  const victim = await signup(A);
  const wrong = (srv, i) => new Client(srv).post('/api/auth/login', { email: victim.email, password: `wrong-${i}` });
  expectError(await wrong(A, 0), 401, 'invalid_credentials');
  expectError(await wrong(A, 1), 401, 'invalid_credentials');
  expectError(await wrong(B, 2), 401, 'invalid_credentials');
  expectError(await wrong(A, 3), 401, 'invalid_credentials');
  // 4 failures in all (4/60): both instances now refuse, the right password too
  expectError(await wrong(B, 4), 429, 'rate_limited');
  expectError(await new Client(A).post('/api/auth/login', { email: victim.email, password: victim.password }),
    429, 'rate_limited');
});

test('a database migrated by a newer version is refused, not touched', { skip }, () => {
  const db = createPgDatabase();
  const args = ['--listen', '127.0.0.1:0', '--database', pgUrl(db)];
  psql(db, 'CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at bigint NOT NULL); '
    + 'INSERT INTO schema_migrations VALUES (99, 0)');
  const r = runCli(args);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /schema version 99 is newer than this program knows/);
  assert.equal(psql(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'users'").trim(), '0');
});

test('an unreachable PostgreSQL stops start-up with one line, never the password', { skip }, () => {
  for (const url of ['postgres://flamingo:hunter2@127.0.0.1:1/x',
    'host=127.0.0.1 port=1 user=flamingo password=hunter2 dbname=x']) {
    const r = runCli(['--listen', '127.0.0.1:0', '--database', url]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /postgres: cannot connect/);
    assert.ok(!r.stderr.includes('hunter2'), r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

if (!skip) finalChecks(() => [A, B]);
