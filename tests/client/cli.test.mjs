// End to end: two flamingo-sync CLI devices against a real flamingo-syncd.
// A logs in, creates the key and pushes all five types; B logs in, unlocks
// the key with the passphrase, pulls and compares byte for byte; a
// conflicting push is detected; A rotates the key and B still reads
// everything; the passphrase changes and the data stays readable; a
// server that weakens or inflates the KDF parameters is refused; a revoked
// device fails with the documented message and exit code. Last, the
// zero-knowledge check: the database files and the server log hold no
// plaintext marker, no passphrase and no key the clients derived.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';

import { startServer, stopAll, test, makeTempDir } from '../api/lib/server.mjs';
import { expectOk, signup, TYPES } from '../api/lib/client.mjs';
import { spawnSync } from 'node:child_process';

import { CLI, Device, EXIT, ROTATE, deriveKeys, killClis, needleForms } from './lib.mjs';
import { openEnvelope, sealEnvelope, typeKey } from './interop.mjs';

let srv, web, A, B;
const PASS1 = `correct horse ${crypto.randomBytes(6).toString('hex')}`;
const PASS2 = `battery staple ${crypto.randomBytes(6).toString('hex')}`;
// one passphrase in two Unicode forms: decomposed (NFD) and composed (NFC)
const PASS3 = `Pa\u0308sswo\u0308rd cafe\u0301 ${crypto.randomBytes(6).toString('hex')}`;
const PASS3_NFC = PASS3.normalize('NFC');
const plain = {};        // type -> Buffer pushed by A (latest)
const markers = [];      // strings that must never reach the server
const keySnapshots = []; // {passphrase, kdf, wrapped_key} of every key version
const ciphertexts = [];  // Buffers the server must hold (sanity of the search)
let work;

function marker(what) {
  const m = `PLAINTEXT-MARKER-${what}-${crypto.randomBytes(8).toString('hex')}`;
  markers.push(m);
  return m;
}

function content(type, n) {
  // JSON-ish text with a marker, binary noise, and (for one type) a larger
  // body, so that framing, base64 and sizes are exercised.
  const size = type === 'collection' ? 300 * 1024 : 2048;
  return Buffer.concat([
    Buffer.from(`{"type":"${type}","n":${n},"marker":"${marker(`${type}-${n}`)}"}\n`),
    crypto.randomBytes(size),
    Buffer.from(`\n${marker(`${type}-${n}-tail`)}\n`),
  ]);
}

async function snapshotKey(passphrase) {
  const k = expectOk(await web.get('/api/sync/key'));
  keySnapshots.push({ passphrase, kdf: k.kdf, wrapped_key: k.wrapped_key, version: k.version });
  return k;
}

async function serverBlob(type) {
  const d = expectOk(await web.get(`/api/sync/data/${type}`));
  return { ...d, bytes: Buffer.from(d.encrypted_data, 'base64') };
}

before(async () => {
  srv = await startServer({ env: { DEVICE_POLL_INTERVAL: '1' } });
  web = await signup(srv);
  A = new Device('laptop-a');
  B = new Device('desktop-b');
  work = makeTempDir('flm-cli-files-');
});
after(async () => { killClis(); await stopAll(); });

test('--help documents the commands and the exit codes; bad usage exits 2', async () => {
  const h = await A.ok(['--help']);
  for (const s of ['login --server URL', 'push TYPE', 'key init', 'key rotate',
    'key change-passphrase', 'devices revoke ID', 'Exit codes', 'FLAMINGO_SYNC_PASSPHRASE']) {
    assert.ok(h.out.includes(s), `--help should mention ${s}`);
  }
  assert.equal((await A.run(['frobnicate'])).code, EXIT.USAGE);
  assert.equal((await A.run(['push', 'history'])).code, EXIT.USAGE);
  const notLogged = await A.run(['status']);
  assert.equal(notLogged.code, EXIT.AUTH);
  assert.match(notLogged.err, /not logged in; run flamingo-sync login/);
  const badType = await A.run(['pull', 'passwords']);
  assert.equal(badType.code, EXIT.USAGE);
});

test('login refuses plain http to a remote host', async () => {
  const r = await A.run(['login', '--server', 'http://sync.example.com', '--no-browser']);
  assert.equal(r.code, EXIT.USAGE);
  assert.match(r.err, /https/);
});

test('device A logs in; the state is private (0700 dir, 0600 file) and holds no secret but the token', async () => {
  await A.login(srv, web);
  const st = A.state();
  assert.equal(st.server, srv.url);
  assert.match(st.token, /^flm_sync_[0-9a-f]{32}$/);
  assert.equal(fs.statSync(A.stateDir).mode & 0o777, 0o700);
  assert.equal(fs.statSync(A.statePath).mode & 0o777, 0o600);
  const status = await A.json(['status']);
  assert.equal(status.code, 0, status.err);
  assert.equal(status.json.key_version, 0);
});

test('A creates the key: Argon2id parameters at or above the minimum, 72-byte wrapped key', async () => {
  A.passphrase = PASS1;
  assert.equal((await A.run(['pull', 'history'])).code, EXIT.NOTFOUND, 'no key yet');
  const short = await A.run(['key', 'init'], { env: { FLAMINGO_SYNC_PASSPHRASE: 'short' } });
  assert.equal(short.code, EXIT.USAGE);
  const r = await A.json(['key', 'init']);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.json.key_version, 1);
  const k = await snapshotKey(PASS1);
  assert.equal(k.kdf.alg, 'argon2id');
  assert.equal(k.kdf.version, 19);
  assert.ok(k.kdf.t >= 2 && k.kdf.m >= 65536 && k.kdf.p === 1, JSON.stringify(k.kdf));
  assert.equal(Buffer.from(k.kdf.salt, 'base64').length, 16);
  assert.equal(Buffer.from(k.wrapped_key, 'base64').length, 72);
  const again = await A.run(['key', 'init']);
  assert.equal(again.code, EXIT.CONFLICT);
  assert.match(again.err, /already exists/);
  assert.equal(A.state().key_version, 1);
});

test('A pushes all five types; the server holds only versioned envelopes', async () => {
  for (const type of TYPES) {
    plain[type] = content(type, 1);
    const f = path.join(work, `a-${type}`);
    fs.writeFileSync(f, plain[type]);
    const r = await A.json(['push', type, f]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.json.version, 1);
    assert.equal(r.json.key_version, 1);
    const blob = await serverBlob(type);
    assert.equal(blob.key_version, 1);
    assert.equal(blob.bytes.length, plain[type].length + 48);
    assert.deepEqual([...blob.bytes.subarray(0, 8)], [0x46, 0x53, 1, 2, 0, 0, 0, 1]);
    assert.equal(blob.bytes.indexOf(Buffer.from('PLAINTEXT-MARKER')), -1);
    ciphertexts.push(blob.bytes);
  }
  const list = await A.json(['list']);
  assert.deepEqual(list.json.items.map((i) => i.type).sort(), [...TYPES].sort());
});

test('device B logs in, unlocks with the passphrase, pulls every type byte for byte', async () => {
  await B.login(srv, web);
  assert.notEqual(B.deviceId, A.deviceId);
  B.passphrase = 'not the passphrase at all';
  const wrong = await B.run(['pull', 'history']);
  assert.equal(wrong.code, EXIT.CRYPTO);
  assert.match(wrong.err, /wrong sync passphrase/);
  B.passphrase = PASS1;
  for (const type of TYPES) {
    const f = path.join(work, `b-${type}`);
    await B.ok(['pull', type, f]);
    assert.ok(fs.readFileSync(f).equals(plain[type]), `${type} differs`);
    assert.equal(fs.statSync(f).mode & 0o777, 0o600);
  }
  const out = await B.ok(['pull', 'setting']);
  assert.ok(out.stdout.equals(plain.setting), 'pull to stdout');
  assert.deepEqual(B.state().versions, Object.fromEntries(TYPES.map((t) => [t, 1])));
});

test('another implementation (WebCrypto HKDF + JS XChaCha20-Poly1305) reads what the CLI wrote, and the CLI reads what it writes', async () => {
  const k = keySnapshots.at(-1);
  const keys = deriveKeys(k.passphrase, k.kdf, k.wrapped_key);
  const master = Buffer.from(keys.master_key, 'hex');
  for (const type of TYPES) {
    assert.equal((await typeKey(master, type)).toString('hex'), keys[`type_key_${type}`]);
    const blob = await serverBlob(type);
    assert.ok((await openEnvelope(master, type, blob.bytes)).equals(plain[type]), type);
  }
  // the type is authenticated in the JS implementation too
  const sec = await serverBlob('secret');
  await assert.rejects(openEnvelope(master, 'setting', sec.bytes));
  // written by JS, read by the CLI
  plain.setting = Buffer.from(`{"theme":"dark","marker":"${marker('setting-js')}"}`);
  const env = await sealEnvelope(master, 'setting', k.version, plain.setting);
  const put = expectOk(await web.put('/api/sync/data/setting', {
    encrypted_data: env.toString('base64'), key_version: k.version, base_version: 1 }));
  assert.equal(put.version, 2);
  ciphertexts.push(env);
  const r = await B.run(['pull', 'setting']);
  assert.equal(r.code, 0, r.err);
  assert.ok(r.stdout.equals(plain.setting));
});

test('a conflicting push is detected with exit 4 and the server version; --force overrides', async () => {
  plain.history = content('history', 2);
  fs.writeFileSync(path.join(work, 'a-history'), plain.history);
  await A.ok(['push', 'history', path.join(work, 'a-history')]);      // v2
  const mine = content('history', 3);
  fs.writeFileSync(path.join(work, 'b-history-edit'), mine);
  const c = await B.json(['push', 'history', path.join(work, 'b-history-edit')]);
  assert.equal(c.code, EXIT.CONFLICT, c.err);
  assert.match(c.err, /conflict: the server holds version 2 of history/);
  assert.match(c.err, /push --force/);
  assert.equal(c.json.error, 'conflict');
  assert.equal(c.json.server_version, 2);
  assert.equal(c.json.base_version, 1);
  assert.equal((await serverBlob('history')).version, 2, 'nothing stored by the refused push');
  // merge path: pull v2, then push on top of it
  await B.ok(['pull', 'history', path.join(work, 'b-history')]);
  assert.ok(fs.readFileSync(path.join(work, 'b-history')).equals(plain.history));
  const merged = await B.json(['push', 'history', path.join(work, 'b-history-edit')]);
  assert.equal(merged.code, 0, merged.err);
  assert.equal(merged.json.version, 3);
  // A is now stale: its push conflicts, --force wins (last writer wins)
  assert.equal((await A.run(['push', 'history', path.join(work, 'a-history')])).code, EXIT.CONFLICT);
  const forced = await A.json(['push', 'history', path.join(work, 'a-history'), '--force']);
  assert.equal(forced.code, 0, forced.err);
  assert.equal(forced.json.version, 4);
  await B.ok(['pull', 'history', path.join(work, 'b-history')]);
  assert.ok(fs.readFileSync(path.join(work, 'b-history')).equals(plain.history));
});

test('A rotates the key: one atomic request, every type re-encrypted; B still reads everything', async () => {
  const before = expectOk(await web.get('/api/sync/data?include=data')).items;
  const r = await A.json(['key', 'rotate']);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.json.key_version, 2);
  const k = await snapshotKey(PASS1);
  assert.equal(k.version, 2);
  const afterItems = expectOk(await web.get('/api/sync/data?include=data')).items;
  assert.equal(afterItems.length, TYPES.length);
  for (const it of afterItems) {
    const old = before.find((b) => b.type === it.type);
    assert.equal(it.key_version, 2, it.type);
    assert.equal(it.version, old.version + 1, it.type);
    const bytes = Buffer.from(it.encrypted_data, 'base64');
    assert.deepEqual([...bytes.subarray(0, 8)], [0x46, 0x53, 1, 2, 0, 0, 0, 2]);
    ciphertexts.push(bytes);
  }
  const audit = expectOk(await web.get('/api/audit')).events;
  assert.ok(audit.some((e) => e.event_type === 'key_stored'));
  for (const type of TYPES) {
    const f = path.join(work, `b2-${type}`);
    const p = await B.run(['pull', type, f]);
    assert.equal(p.code, 0, p.err);
    assert.ok(fs.readFileSync(f).equals(plain[type]), `${type} differs after rotation`);
  }
  assert.match((await B.run(['pull', 'history', path.join(work, 'x')])).err, /Pulled history/);
  assert.equal(B.state().key_version, 2);
  // a blob from before the rotation (kept as a revision) no longer opens
  const revs = expectOk(await web.get('/api/sync/data/secret/revisions')).revisions;
  assert.ok(revs.some((v) => v.key_version === 1));
});

test('change-passphrase re-wraps the same master key: old data stays readable, the old passphrase stops working', async () => {
  const before = keySnapshots.at(-1);
  const r = await A.json(['key', 'change-passphrase'], { env: { FLAMINGO_SYNC_NEW_PASSPHRASE: PASS2 } });
  assert.equal(r.code, 0, r.err);
  assert.equal(r.json.key_version, 3);
  const k = await snapshotKey(PASS2);
  const m1 = deriveKeys(before.passphrase, before.kdf, before.wrapped_key).master_key;
  const m2 = deriveKeys(PASS2, k.kdf, k.wrapped_key).master_key;
  assert.equal(m1, m2, 'same master key under the new passphrase');
  assert.notEqual(k.kdf.salt, before.kdf.salt, 'fresh salt');
  const old = await B.run(['pull', 'secret']);
  assert.equal(old.code, EXIT.CRYPTO);
  B.passphrase = PASS2;
  A.passphrase = PASS2;
  for (const type of TYPES) {
    const p = await B.run(['pull', type]);
    assert.equal(p.code, 0, p.err);
    assert.ok(p.stdout.equals(plain[type]), `${type} unreadable after passphrase change`);
  }
  // new writes carry the new key version; B's push works
  plain.environment = content('environment', 2);
  fs.writeFileSync(path.join(work, 'b-env'), plain.environment);
  const pushed = await B.json(['push', 'environment', path.join(work, 'b-env')]);
  assert.equal(pushed.code, 0, pushed.err);
  assert.equal(pushed.json.key_version, 3);
  const pulled = await A.run(['pull', 'environment']);
  assert.ok(pulled.stdout.equals(plain.environment));
});

test('a server cannot weaken or inflate the KDF: the client refuses before deriving', async () => {
  const cur = expectOk(await web.get('/api/sync/key'));
  const cases = [
    [{ ...cur.kdf, t: 1 }, /weaker than this client's minimum/],
    [{ ...cur.kdf, m: 8192 }, /weaker than this client's minimum/],
    [{ ...cur.kdf, m: 100 * 1024 * 1024 }, /above this client's caps/],
    [{ ...cur.kdf, t: 1000000 }, /above this client's caps/],
    [{ ...cur.kdf, alg: 'pbkdf2' }, /not in a format this client knows/],
  ];
  let version = cur.version;
  for (const [kdf, re] of cases) {
    expectOk(await web.put('/api/sync/key', { wrapped_key: cur.wrapped_key, kdf, expected_version: version }));
    version++;
    const t0 = Date.now();
    const r = await B.run(['pull', 'history']);
    assert.equal(r.code, EXIT.CRYPTO, `${JSON.stringify(kdf)}: ${r.err}`);
    assert.match(r.err, re);
    assert.ok(Date.now() - t0 < 5000, 'refused without running the KDF');
  }
  // parameters changed but still strong: the wrapped key's associated data
  // binds them, so the unwrap fails instead of using other parameters
  expectOk(await web.put('/api/sync/key', { wrapped_key: cur.wrapped_key, kdf: { ...cur.kdf, t: cur.kdf.t + 1 }, expected_version: version }));
  version++;
  const bound = await B.run(['pull', 'history']);
  assert.equal(bound.code, EXIT.CRYPTO);
  // restore the genuine key
  expectOk(await web.put('/api/sync/key', { wrapped_key: cur.wrapped_key, kdf: cur.kdf, expected_version: version }));
  const ok = await B.run(['pull', 'history']);
  assert.equal(ok.code, 0, ok.err);
  assert.ok(ok.stdout.equals(plain.history));
});

test('tampered ciphertext on the server is refused (exit 5), not returned', async () => {
  const blob = await serverBlob('setting');
  const bad = Buffer.from(blob.bytes);
  bad[bad.length - 20] ^= 0x01;
  const kv = expectOk(await web.get('/api/sync/key')).version;
  expectOk(await web.put('/api/sync/data/setting', { encrypted_data: bad.toString('base64'), key_version: kv }));
  const r = await B.run(['pull', 'setting']);
  assert.equal(r.code, EXIT.CRYPTO);
  assert.match(r.err, /does not authenticate/);
  assert.equal(r.stdout.length, 0, 'nothing written');
  // a blob moved to another type is refused too (the type is authenticated)
  const sec = await serverBlob('secret');
  expectOk(await web.put('/api/sync/data/setting', { encrypted_data: sec.encrypted_data, key_version: kv }));
  assert.equal((await B.run(['pull', 'setting'])).code, EXIT.CRYPTO);
  fs.writeFileSync(path.join(work, 'a-setting'), plain.setting);
  await A.ok(['push', 'setting', path.join(work, 'a-setting'), '--force']);
});

test('config and devices commands', async () => {
  await A.ok(['config', 'set', 'history', 'off']);
  const cfg = await A.json(['config', 'show']);
  assert.equal(cfg.json.history, false);
  assert.equal(cfg.json.secret, true);
  const d = await A.run(['push', 'history', path.join(work, 'a-history'), '--force']);
  assert.equal(d.code, EXIT.DISABLED);
  await A.ok(['config', 'set', 'history', 'on']);
  const devs = await A.json(['devices']);
  assert.equal(devs.json.devices.length, 2);
  assert.equal(devs.json.devices.filter((x) => x.current).length, 1);
  const w = await B.json(['watch', '--once']);
  assert.equal(w.code, 0, w.err);
  assert.ok(w.out.includes('"type":"data_updated"'));
  assert.ok(B.state().event_cursor > 0);
});

test('delete: a stale delete conflicts, a current one leaves a tombstone', async () => {
  plain.collection = content('collection', 2);
  fs.writeFileSync(path.join(work, 'a-collection'), plain.collection);
  const pushed = await A.json(['push', 'collection', path.join(work, 'a-collection')]);
  assert.equal(pushed.code, 0, pushed.err);
  const stale = await B.run(['delete', 'collection']);
  assert.equal(stale.code, EXIT.CONFLICT, stale.err);
  assert.match(stale.err, /pull first, or delete --force/);
  assert.equal((await serverBlob('collection')).version, pushed.json.version, 'nothing deleted');
  await B.ok(['pull', 'collection', path.join(work, 'b-collection')]);
  const del = await B.json(['delete', 'collection']);
  assert.equal(del.code, 0, del.err);
  assert.equal(del.json.version, pushed.json.version + 1);
  const gone = await A.run(['pull', 'collection']);
  assert.equal(gone.code, EXIT.NOTFOUND);
  assert.match(gone.err, /nothing is stored for this type/);
  const list = await A.json(['list']);
  assert.ok(!list.json.items.some((i) => i.type === 'collection'));
  const st = await A.json(['status']);
  assert.equal(st.json.key_version, expectOk(await web.get('/api/sync/key')).version);
  assert.equal(st.json.items.length, TYPES.length - 1);
});

test('session-token rotation through the library: the stored new token works; the old one, presented after, revokes the device', async () => {
  const st = A.state();
  const rot = spawnSync(ROTATE, [srv.url], { env: { ...A.env(), FLAMINGO_SYNC_TOKEN: st.token }, encoding: 'utf8' });
  assert.equal(rot.status, 0, rot.stderr);
  const fresh = rot.stdout.trim();
  assert.match(fresh, /^flm_sync_[0-9a-f]{32}$/);
  assert.notEqual(fresh, st.token);
  fs.writeFileSync(A.statePath, JSON.stringify({ ...st, token: fresh }), { mode: 0o600 });
  await A.ok(['list']);
  // the application must not keep using the old token: reuse detection
  const reuse = spawnSync(ROTATE, [srv.url], { env: { ...A.env(), FLAMINGO_SYNC_TOKEN: st.token }, encoding: 'utf8' });
  assert.equal(reuse.status, 3, reuse.stderr);
  assert.equal((await A.run(['list'])).code, EXIT.AUTH, 'the device session was revoked');
  await A.login(srv, web);
  A.passphrase = PASS2;
  await A.ok(['pull', 'secret']);
});

test('a passphrase is text: typed in another Unicode form it opens the same key; bytes that are not UTF-8 are refused', async () => {
  assert.notEqual(PASS3, PASS3_NFC);
  const r = await A.json(['key', 'change-passphrase'], { env: { FLAMINGO_SYNC_NEW_PASSPHRASE: PASS3 } });
  assert.equal(r.code, 0, r.err);
  const k = await snapshotKey(PASS3);
  assert.equal(deriveKeys(PASS3_NFC, k.kdf, k.wrapped_key).master_key,
    deriveKeys(PASS3, k.kdf, k.wrapped_key).master_key);
  A.passphrase = PASS3;
  B.passphrase = PASS3_NFC;
  const p = await B.run(['pull', 'secret']);
  assert.equal(p.code, 0, p.err);
  assert.ok(p.stdout.equals(plain.secret));
  // not text (bytes the shell makes; Node's environment is always UTF-8)
  const env = B.env();
  delete env.FLAMINGO_SYNC_PASSPHRASE;
  const bad = spawnSync('sh', ['-c', 'FLAMINGO_SYNC_PASSPHRASE="$(printf \'\\377\\376 not text\')" exec "$0" pull secret', CLI],
    { env, encoding: 'utf8' });
  assert.equal(bad.status, EXIT.USAGE, bad.stderr);
  assert.match(bad.stderr, /the sync passphrase must be UTF-8 text/);
});

test('a revoked device fails cleanly: exit 3 and "run flamingo-sync login"', async () => {
  const devs = (await A.json(['devices'])).json.devices;
  const b = devs.find((x) => x.name === B.name && x.status !== 'revoked');
  assert.ok(b, JSON.stringify(devs));
  await A.ok(['devices', 'revoke', b.id]);
  for (const args of [['pull', 'history'], ['status'], ['list']]) {
    const r = await B.run(args);
    assert.equal(r.code, EXIT.AUTH, `${args}: ${r.err}`);
    assert.match(r.err, /this device was revoked or its session has ended; run flamingo-sync login/);
  }
  const j = await B.json(['list']);
  assert.equal(j.json.error, 'unauthorized');
  assert.equal(j.json.exit, EXIT.AUTH);
  // A logs out: its session ends on the server and in its state
  await A.ok(['logout']);
  assert.equal(A.state().token, '');
  assert.equal((await A.run(['status'])).code, EXIT.AUTH);
});

test('zero knowledge: no plaintext, passphrase or key in the database files or the server log', async () => {
  const files = [srv.db, `${srv.db}-wal`].filter((f) => fs.existsSync(f));
  assert.ok(files.length >= 1);
  const hay = files.map((f) => [f, fs.readFileSync(f)]);
  hay.push(['server log', Buffer.from(srv.stderr)]);
  // the search finds what is there: the ciphertexts are stored
  const all = Buffer.concat(hay.map(([, b]) => b));
  assert.ok(ciphertexts.some((c) => all.indexOf(c.subarray(0, 64)) >= 0), 'ciphertext not found: the search is broken');
  const needles = [];
  for (const m of markers) needles.push([`marker ${m}`, Buffer.from(m)]);
  for (const p of [PASS1, PASS2, PASS3, PASS3_NFC]) needles.push(['passphrase', Buffer.from(p)]);
  assert.ok(keySnapshots.length >= 3);
  for (const s of keySnapshots) {
    const keys = deriveKeys(s.passphrase, s.kdf, s.wrapped_key);
    assert.equal(Object.keys(keys).length, 7);
    for (const [name, hex] of Object.entries(keys)) {
      for (const form of needleForms(Buffer.from(hex, 'hex'))) {
        needles.push([`${name} (key version ${s.version})`, form]);
      }
    }
  }
  for (const [where, buf] of hay) {
    for (const [what, n] of needles) {
      assert.equal(buf.indexOf(n), -1, `${what} found in ${where}`);
    }
  }
  // nor in either device's state file
  for (const d of [A, B]) {
    const st = fs.readFileSync(d.statePath);
    for (const [what, n] of needles) assert.equal(st.indexOf(n), -1, `${what} in ${d.name}'s state`);
  }
});
