#!/usr/bin/env node
// Crash loop: SIGKILL flamingo-syncd at random moments under a concurrent
// write workload, then check that every acknowledged write survived and that
// nothing is half-applied.
//
//   make crash-test-quick        # 30 iterations
//   make crash-test              # 200 iterations
//   CRASH_ITERATIONS=50 FLAMINGO_SYNCD=$PWD/build/flamingo-syncd node tests/robust/crash-loop.mjs
//
// Knobs (environment): CRASH_ITERATIONS (30), CRASH_KILL_MAX_MS (300),
// CRASH_WORKERS (4 concurrent writers), CRASH_SEED (replays the random
// choices, not the timing), CRASH_VERBOSE=1 (a line per iteration).
//
// One server on one SQLite file, DATA_REVISIONS=1000 so that every
// acknowledged version stays readable. A user with a web session (cookie +
// Origin) and two devices (device flow, bearer). Each iteration:
//
//   1. turns every data type back on (an acknowledged config write) and
//      learns the current versions, so that some preconditions succeed;
//   2. runs CRASH_WORKERS writers back to back, each request from one of the
//      three clients at random: data PUTs of all five types (JSON and raw
//      octet-stream, with and without base_version / key_version), DELETEs
//      (some with If-Match), key PUTs with expected_version, atomic key
//      rotations of all five types (POST /api/sync/key/rotate) and config
//      toggles (a type off, then back on);
//   3. SIGKILLs the server at a random moment 0..CRASH_KILL_MAX_MS ms into
//      the workload and lets every request settle: one that was in flight
//      fails with a network error, which is fine (it was not acknowledged);
//   4. with the server dead, reads the file with the sqlite3 CLI:
//      PRAGMA integrity_check = ok, no foreign-key violation, the "state
//      change + audit row + event row commit together" invariants (see
//      INVARIANTS), and every write acknowledged so far in the whole run is
//      in the file with the acknowledged bytes (sha3-256 computed by SQLite);
//   5. restarts the server on the same file (tokens and the cookie are in the
//      file, so the same clients go on) and over HTTP: every write
//      acknowledged in this iteration reads back exactly
//      (GET /api/sync/data/:type/revisions/:version, sha256 of the bytes,
//      key version of rotated items), and the current version of each type
//      and of the key is >= every acknowledged one.
//
// When a type of the current user nears DATA_REVISIONS versions, the next
// iteration starts a new user (same set-up: web session + 2 devices), so that
// no acknowledged version is ever pruned. After the last iteration every
// acknowledged data write of the run is read back over HTTP once more.
// Exit 0 with a summary, or 1 listing every problem.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { startServer, stopAll, sleep } from '../api/lib/server.mjs';
import { signup, deviceLogin, TYPES } from '../api/lib/client.mjs';

const ITERATIONS = Number(process.env.CRASH_ITERATIONS || 30);
const KILL_MAX_MS = Number(process.env.CRASH_KILL_MAX_MS || 300);
const WORKERS = Number(process.env.CRASH_WORKERS || 4);
const SEED = process.env.CRASH_SEED ? Number(process.env.CRASH_SEED) : crypto.randomInt(1, 2 ** 31);
const VERBOSE = process.env.CRASH_VERBOSE === '1';
const REVISIONS = 1000;
// a new user once a type of the current one is past this version
const GENERATION_LIMIT = REVISIONS - 250;

const ENV = { DATA_REVISIONS: String(REVISIONS), LOG_REQUESTS: 'false' };

// ---- seeded choices ------------------------------------------------------------
let rngState = (SEED >>> 0) || 1;
function rnd() { // xorshift32
  rngState ^= rngState << 13; rngState >>>= 0;
  rngState ^= rngState >>> 17;
  rngState ^= rngState << 5; rngState >>>= 0;
  return rngState / 2 ** 32;
}
const pick = (arr) => arr[Math.floor(rnd() * arr.length)];
const randInt = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
const blob = () => crypto.randomBytes(rnd() < 0.05 ? randInt(4096, 16384) : randInt(16, 2048));
const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');
const sha3 = (buf) => crypto.createHash('sha3-256').update(buf).digest('hex');

// ---- bookkeeping -----------------------------------------------------------------
const problems = [];
const seenProblems = new Set();
/** Records a problem; one that persists is reported at its first iteration only. */
function fail(msg) {
  const key = msg.replace(/^iteration \d+ \([^)]*\): /, '');
  if (seenProblems.has(key)) return;
  seenProblems.add(key);
  problems.push(msg);
  console.error(`PROBLEM: ${msg}`);
}
const stats = {
  iterations: 0, kills: 0, killsInFlight: 0, requests: 0, networkErrors: 0, statuses: {}, users: 0,
  acked: { put: 0, putRaw: 0, del: 0, keyPut: 0, rotate: 0, rotateItems: 0, config: 0 },
  checkedSql: 0, checkedHttp: 0, finalHttp: 0,
};
const ackData = []; // {gen, type, version, sha256, sha3, keyVersion?, iter, via}
const ackDel = [];  // {gen, type, version, iter}
const ackKey = [];  // {gen, version, sha3, iter, rotation}
const servers = [];

/** A request of the workload; null when it failed on the network. */
async function send(client, method, path, opts) {
  stats.requests++;
  try {
    const r = await client.request(method, path, { timeoutMs: 15000, ...opts });
    stats.statuses[r.status] = (stats.statuses[r.status] || 0) + 1;
    if (r.status >= 500) fail(`${method} ${path} -> ${r.describe()}`);
    return r;
  } catch (e) {
    if (e && e.name === 'TimeoutError') fail(`${method} ${path}: no answer within 15 s`);
    stats.networkErrors++;
    return null;
  }
}

// ---- one user: a web session and two devices ---------------------------------------
async function newGeneration(srv, n) {
  const web = await signup(srv);
  const dev1 = await deviceLogin(web, { device_name: `crash-${n}-a` });
  const dev2 = await deviceLogin(web, { device_name: `crash-${n}-b` });
  stats.users++;
  return {
    n, userId: web.user.id, web, dev1, dev2, clients: [web, dev1, dev2],
    known: { key: 0, data: Object.fromEntries(TYPES.map((t) => [t, 0])) },
  };
}

// ---- the workload ------------------------------------------------------------------
function opPut(g, client, iter) {
  const type = pick(TYPES);
  const data = blob();
  const raw = client.bearer !== null && rnd() < 0.25;
  const withBase = rnd() < 0.4;
  const withKey = rnd() < 0.3;
  return async () => {
    const base = g.known.data[type];
    const kv = g.known.key;
    let r;
    if (raw) {
      const q = [];
      if (withBase) q.push(`base_version=${base}`);
      if (withKey && kv > 0) q.push(`key_version=${kv}`);
      r = await send(client, 'PUT', `/api/sync/data/${type}${q.length ? `?${q.join('&')}` : ''}`,
        { body: data, contentType: 'application/octet-stream' });
    } else {
      const json = { encrypted_data: data.toString('base64') };
      if (withBase) json.base_version = base;
      if (withKey && kv > 0) json.key_version = kv;
      r = await send(client, 'PUT', `/api/sync/data/${type}`, { json });
    }
    if (r && r.status === 200) {
      assert.equal(r.data.type, type, r.describe());
      assert.equal(r.data.size, data.length, r.describe());
      ackData.push({ gen: g, type, version: r.data.version, sha256: sha256(data), sha3: sha3(data), iter, via: raw ? 'raw PUT' : 'PUT' });
      stats.acked[raw ? 'putRaw' : 'put']++;
      g.known.data[type] = Math.max(g.known.data[type], r.data.version);
    } else if (r && !(r.status === 403 && r.error === 'sync_disabled') && !(r.status === 409 &&
      ['conflict', 'key_version_mismatch'].includes(r.error))) {
      fail(`PUT ${type}: unexpected ${r.describe()}`);
    }
  };
}

function opDelete(g, client, iter) {
  const type = pick(TYPES);
  const withIfMatch = rnd() < 0.5;
  return async () => {
    const headers = withIfMatch ? { 'if-match': `"${g.known.data[type]}"` } : {};
    const r = await send(client, 'DELETE', `/api/sync/data/${type}`, { headers });
    if (r && r.status === 200) {
      ackDel.push({ gen: g, type, version: r.data.version, iter });
      stats.acked.del++;
      g.known.data[type] = Math.max(g.known.data[type], r.data.version);
    } else if (r && !(r.status === 403 && r.error === 'sync_disabled') && !(r.status === 404 && r.error === 'not_found') &&
      !(r.status === 409 && r.error === 'conflict')) {
      fail(`DELETE ${type}: unexpected ${r.describe()}`);
    }
  };
}

const wrappedKey = () => crypto.randomBytes(randInt(40, 300));
const kdf = () => ({ name: 'argon2id', t: 3, m: 65536, p: 1, salt: crypto.randomBytes(16).toString('base64') });

function opKeyPut(g, client, iter) {
  const wk = wrappedKey();
  return async () => {
    const r = await send(client, 'PUT', '/api/sync/key',
      { json: { wrapped_key: wk.toString('base64'), kdf: kdf(), expected_version: g.known.key } });
    if (r && r.status === 200) {
      ackKey.push({ gen: g, version: r.data.version, sha3: sha3(wk), iter, rotation: false });
      stats.acked.keyPut++;
      g.known.key = Math.max(g.known.key, r.data.version);
    } else if (r && !(r.status === 409 && r.error === 'conflict')) {
      fail(`PUT key: unexpected ${r.describe()}`);
    }
  };
}

function opRotate(g, client, iter) {
  const wk = wrappedKey();
  const items = TYPES.map((type) => ({ type, data: blob() }));
  return async () => {
    const r = await send(client, 'POST', '/api/sync/key/rotate', {
      json: {
        wrapped_key: wk.toString('base64'), kdf: kdf(), expected_version: g.known.key,
        items: items.map(({ type, data }) => ({ type, encrypted_data: data.toString('base64') })),
      },
    });
    if (r && r.status === 200) {
      const kv = r.data.version;
      ackKey.push({ gen: g, version: kv, sha3: sha3(wk), iter, rotation: true });
      stats.acked.rotate++;
      g.known.key = Math.max(g.known.key, kv);
      assert.equal(r.data.items.length, items.length, r.describe());
      for (const { type, version } of r.data.items) {
        const { data } = items.find((x) => x.type === type);
        ackData.push({ gen: g, type, version, sha256: sha256(data), sha3: sha3(data), keyVersion: kv, iter, via: 'rotation' });
        stats.acked.rotateItems++;
        g.known.data[type] = Math.max(g.known.data[type], version);
      }
    } else if (r && !(r.status === 409 && r.error === 'conflict')) {
      fail(`rotate: unexpected ${r.describe()}`);
    }
  };
}

function opToggle(g, client) {
  const type = pick(TYPES);
  return async () => {
    for (const enabled of [false, true]) {
      const r = await send(client, 'PUT', `/api/sync/config/data-type/${type}`, { json: { enabled } });
      if (!r) return;
      if (r.status !== 200) {
        fail(`config toggle: unexpected ${r.describe()}`);
        return;
      }
      stats.acked.config++;
    }
  };
}

function nextOp(g, iter) {
  const client = pick(g.clients);
  const x = rnd();
  if (x < 0.74) return opPut(g, client, iter);
  if (x < 0.82) return opDelete(g, client, iter);
  if (x < 0.90) return opKeyPut(g, client, iter);
  if (x < 0.96) return opRotate(g, client, iter);
  return opToggle(g, client);
}

// ---- the file, read directly with the server dead ----------------------------------------
// The checks and what the acknowledged writes are compared with, in one
// sqlite3 run that prints one JSON object. The lookups go through TEMP
// copies with indexes (the temp schema is not part of the file; the file's
// own indexes do not cover these joins). Schema:
// src/store/migrations/sqlite/001_init.sql.
const SNAPSHOT_SQL = `
CREATE TEMP TABLE ev AS SELECT user_id u, type et, data_type dt, version v FROM events;
CREATE INDEX temp.ev_i ON ev(u, et, dt, v);
CREATE INDEX temp.ev_k ON ev(u, et, v);
CREATE TEMP TABLE au AS SELECT user_id u, event_type et, json_extract(metadata, '$.type') dt,
  json_extract(metadata, '$.version') v, json_extract(metadata, '$.rotation') rot FROM audit
  WHERE event_type IN ('data_cleared', 'key_stored', 'config_updated');
CREATE INDEX temp.au_i ON au(u, et, dt, v);
CREATE INDEX temp.au_k ON au(u, et, v);
CREATE TEMP TABLE rv AS SELECT user_id u, type dt, version v, key_version kv, updated_at at FROM data_revisions;
CREATE INDEX temp.rv_i ON rv(u, dt, v);
CREATE INDEX temp.rv_k ON rv(u, kv, dt, at);
SELECT json_object(
 'integrity', (SELECT group_concat(integrity_check, '; ') FROM pragma_integrity_check),
 'fk', (SELECT count(*) FROM pragma_foreign_key_check),
 'rev_no_event', (SELECT json_group_array(dt || ' v' || v) FROM rv
   WHERE NOT EXISTS (SELECT 1 FROM ev WHERE ev.u = rv.u AND ev.et = 'data_updated' AND ev.dt = rv.dt AND ev.v = rv.v)),
 'event_no_write', (SELECT json_group_array(dt || ' v' || v) FROM ev WHERE et = 'data_updated'
   AND NOT EXISTS (SELECT 1 FROM rv WHERE rv.u = ev.u AND rv.dt = ev.dt AND rv.v = ev.v)
   AND NOT EXISTS (SELECT 1 FROM au WHERE au.u = ev.u AND au.et = 'data_cleared' AND au.dt = ev.dt AND au.v = ev.v)),
 'dup_events', (SELECT json_group_array(dt || ' v' || v) FROM (SELECT dt, v, count(*) n
   FROM ev WHERE et = 'data_updated' GROUP BY u, dt, v HAVING n > 1)),
 'tomb_no_audit', (SELECT json_group_array(type || ' v' || version) FROM data_heads h WHERE deleted = 1
   AND NOT EXISTS (SELECT 1 FROM au WHERE au.u = h.user_id AND au.et = 'data_cleared' AND au.dt = h.type AND au.v = h.version)),
 'cleared_no_event', (SELECT json_group_array(dt || ' v' || v) FROM au WHERE et = 'data_cleared'
   AND NOT EXISTS (SELECT 1 FROM ev WHERE ev.u = au.u AND ev.et = 'data_updated' AND ev.dt = au.dt AND ev.v = au.v)),
 'cleared_with_rev', (SELECT json_group_array(au.dt || ' v' || au.v) FROM au JOIN rv
   ON rv.u = au.u AND rv.dt = au.dt AND rv.v = au.v WHERE au.et = 'data_cleared'),
 'head_no_rev', (SELECT json_group_array(type || ' v' || version) FROM data_heads h WHERE deleted = 0
   AND NOT EXISTS (SELECT 1 FROM rv WHERE rv.u = h.user_id AND rv.dt = h.type AND rv.v = h.version)),
 'head_not_newest', (SELECT json_group_array(h.type || ' head v' || h.version || ', newest event v' || m.v) FROM data_heads h
   JOIN (SELECT u, dt, max(v) v FROM ev WHERE et = 'data_updated' GROUP BY 1, 2) m
   ON m.u = h.user_id AND m.dt = h.type WHERE m.v <> h.version),
 'no_head', (SELECT json_group_array(dt || ' v' || v) FROM ev WHERE et = 'data_updated'
   AND NOT EXISTS (SELECT 1 FROM data_heads h WHERE h.user_id = ev.u AND h.type = ev.dt)),
 'version_gaps', (SELECT json_group_array(type || ': head v' || version || ', ' || n || ' versions stored') FROM (
   SELECT h.type, h.version, (SELECT count(*) FROM rv WHERE rv.u = h.user_id AND rv.dt = h.type) +
     (SELECT count(*) FROM au WHERE au.u = h.user_id AND au.et = 'data_cleared' AND au.dt = h.type) n
   FROM data_heads h) WHERE n <> version AND version <= ${REVISIONS}),
 'key_no_audit', (SELECT json_group_array(version) FROM keys k WHERE NOT EXISTS (SELECT 1 FROM au
   WHERE au.u = k.user_id AND au.et = 'key_stored' AND au.v = k.version)),
 'key_no_event', (SELECT json_group_array(version) FROM keys k WHERE NOT EXISTS (SELECT 1 FROM ev
   WHERE ev.u = k.user_id AND ev.et = 'key_rotated' AND ev.v = k.version)),
 'audit_no_key', (SELECT json_group_array(v) FROM au WHERE et = 'key_stored'
   AND NOT EXISTS (SELECT 1 FROM keys k WHERE k.user_id = au.u AND k.version = au.v)),
 'event_no_key', (SELECT json_group_array(v) FROM ev WHERE et = 'key_rotated'
   AND NOT EXISTS (SELECT 1 FROM keys k WHERE k.user_id = ev.u AND k.version = ev.v)),
 'key_gaps', (SELECT json_group_array(user_id || ': max v' || mx || ', ' || n || ' versions')
   FROM (SELECT user_id, max(version) mx, count(*) n FROM keys GROUP BY user_id) WHERE mx <> n),
 'rotation_partial', (SELECT json_group_array('key v' || k.version || ' without ' || t.type) FROM keys k
   JOIN au ON au.u = k.user_id AND au.et = 'key_stored' AND au.v = k.version AND au.rot = 1
   JOIN (SELECT 'history' type UNION ALL SELECT 'environment' UNION ALL SELECT 'secret'
         UNION ALL SELECT 'collection' UNION ALL SELECT 'setting') t
   WHERE NOT EXISTS (SELECT 1 FROM rv WHERE rv.u = k.user_id AND rv.kv = k.version AND rv.dt = t.type AND rv.at = k.created_at)),
 'rev_unknown_key', (SELECT json_group_array(dt || ' v' || v || ' under key v' || kv) FROM rv
   WHERE kv > 0 AND NOT EXISTS (SELECT 1 FROM keys k WHERE k.user_id = rv.u AND k.version = rv.kv)),
 'config_mismatch', (SELECT json_group_array(id || ': ' || na || ' config_updated rows, ' || ne || ' config_changed events')
   FROM (SELECT u.id,
     (SELECT count(*) FROM au WHERE au.u = u.id AND au.et = 'config_updated') na,
     (SELECT count(*) FROM ev WHERE ev.u = u.id AND ev.et = 'config_changed') ne FROM users u) WHERE na <> ne),
 'heads', (SELECT json_group_array(json_array(user_id, type, version, deleted)) FROM data_heads),
 'revs', (SELECT json_group_array(json_array(user_id, type, version, key_version, lower(hex(sha3(blob))))) FROM data_revisions),
 'cleared', (SELECT json_group_array(json_array(u, dt, v)) FROM au WHERE et = 'data_cleared'),
 'keys', (SELECT json_group_array(json_array(user_id, version, lower(hex(sha3(wrapped))))) FROM keys)
);`;

// Each is a list of offending rows; all must be empty.
const INVARIANTS = {
  rev_no_event: 'a data revision without its data_updated event',
  event_no_write: 'a data_updated event without its revision or tombstone',
  dup_events: 'two data_updated events for one version',
  tomb_no_audit: 'a tombstone without its data_cleared audit row',
  cleared_no_event: 'a data_cleared audit row without its data_updated event',
  cleared_with_rev: 'a deleted version that also holds data',
  head_no_rev: 'a live head whose revision is missing',
  head_not_newest: 'a head older or newer than the newest data_updated event',
  no_head: 'a data_updated event for a type without a head',
  version_gaps: 'versions 1..head not each a revision or a tombstone',
  key_no_audit: 'a key version without its key_stored audit row',
  key_no_event: 'a key version without its key_rotated event',
  audit_no_key: 'a key_stored audit row without its key version',
  event_no_key: 'a key_rotated event without its key version',
  key_gaps: 'key versions not 1..max',
  rotation_partial: 'a rotation whose key is stored without every re-encrypted item',
  rev_unknown_key: 'a revision under a key version that does not exist',
  config_mismatch: 'config_updated audit rows and config_changed events differ',
};

function snapshot(db) {
  const out = execFileSync('sqlite3', ['-bail', db, SNAPSHOT_SQL], { encoding: 'utf8', maxBuffer: 1 << 30 });
  const s = JSON.parse(out);
  for (const k of [...Object.keys(INVARIANTS), 'heads', 'revs', 'cleared', 'keys']) {
    if (typeof s[k] === 'string') s[k] = JSON.parse(s[k]);
    if (!Array.isArray(s[k])) throw new Error(`snapshot: ${k} is ${JSON.stringify(s[k])}`);
  }
  return s;
}

function checkSnapshot(s, iter) {
  const at = `iteration ${iter} (server dead)`;
  if (s.integrity !== 'ok') fail(`${at}: PRAGMA integrity_check says ${s.integrity}`);
  if (s.fk !== 0) fail(`${at}: ${s.fk} foreign key violation(s)`);
  for (const [k, what] of Object.entries(INVARIANTS)) {
    if (s[k].length) fail(`${at}: half-applied state, ${what}: ${JSON.stringify(s[k].slice(0, 10))}`);
  }
  const revs = new Map(s.revs.map(([u, t, v, kv, h]) => [`${u}/${t}/${v}`, { kv, h }]));
  const heads = new Map(s.heads.map(([u, t, v, d]) => [`${u}/${t}`, { v, d }]));
  const cleared = new Set(s.cleared.map(([u, t, v]) => `${u}/${t}/${v}`));
  const keys = new Map(s.keys.map(([u, v, h]) => [`${u}/${v}`, h]));
  for (const a of ackData) {
    const head = heads.get(`${a.gen.userId}/${a.type}`);
    const r = revs.get(`${a.gen.userId}/${a.type}/${a.version}`);
    const what = `acknowledged ${a.via} ${a.type} v${a.version} (user ${a.gen.n}, iteration ${a.iter})`;
    if (!head || head.v < a.version) fail(`${at}: ${what}, but the head is ${head ? `v${head.v}` : 'missing'}`);
    else if (!r) fail(`${at}: ${what} is not in the file`);
    else if (r.h !== a.sha3) fail(`${at}: ${what} holds other bytes`);
    else if (a.keyVersion !== undefined && r.kv !== a.keyVersion) fail(`${at}: ${what} is under key v${r.kv}, not v${a.keyVersion}`);
    stats.checkedSql++;
  }
  for (const d of ackDel) {
    const head = heads.get(`${d.gen.userId}/${d.type}`);
    const what = `acknowledged DELETE ${d.type} v${d.version} (user ${d.gen.n}, iteration ${d.iter})`;
    if (!head || head.v < d.version) fail(`${at}: ${what}, but the head is ${head ? `v${head.v}` : 'missing'}`);
    else if (!cleared.has(`${d.gen.userId}/${d.type}/${d.version}`)) fail(`${at}: ${what} has no data_cleared audit row`);
    else if (revs.has(`${d.gen.userId}/${d.type}/${d.version}`)) fail(`${at}: ${what} holds data`);
    stats.checkedSql++;
  }
  for (const k of ackKey) {
    const h = keys.get(`${k.gen.userId}/${k.version}`);
    const what = `acknowledged ${k.rotation ? 'rotation to' : 'PUT of'} key v${k.version} (user ${k.gen.n}, iteration ${k.iter})`;
    if (h === undefined) fail(`${at}: ${what} is not in the file`);
    else if (h !== k.sha3) fail(`${at}: ${what} holds another wrapped key`);
    stats.checkedSql++;
  }
  return heads;
}

// ---- over HTTP, after a restart ---------------------------------------------------------
async function httpCheck(label, acks, dels, keys, { concurrency = 1 } = {}) {
  let n = 0;
  // the current version of each type of each user is >= every acknowledged one
  const byGen = new Map();
  for (const a of [...acks, ...dels, ...keys]) byGen.set(a.gen, true);
  for (const g of byGen.keys()) {
    const c = g.dev1;
    for (const t of TYPES) {
      const mine = [...acks, ...dels].filter((a) => a.gen === g && a.type === t);
      if (!mine.length) continue;
      const want = Math.max(...mine.map((a) => a.version));
      const r = await c.get(`/api/sync/data/${t}`);
      n++;
      if (r.status === 200) {
        if (r.data.version < want) fail(`${label}: ${t} (user ${g.n}) is at v${r.data.version}, v${want} was acknowledged`);
      } else if (r.status === 404 && r.error === 'not_found') {
        // a tombstone, newer than the acknowledged write (the versions of
        // tombstones are checked in the file, see checkSnapshot)
      } else {
        fail(`${label}: GET ${t} (user ${g.n}) -> ${r.describe()}`);
      }
    }
    const gk = keys.filter((k) => k.gen === g);
    if (gk.length) {
      const want = Math.max(...gk.map((k) => k.version));
      const r = await c.get('/api/sync/key');
      n++;
      if (r.status !== 200) fail(`${label}: GET key (user ${g.n}) -> ${r.describe()}`);
      else if (r.data.version < want) fail(`${label}: key (user ${g.n}) is at v${r.data.version}, v${want} was acknowledged`);
    }
  }
  // every acknowledged data write reads back exactly
  const queue = acks.slice();
  const worker = async () => {
    for (let a = queue.shift(); a; a = queue.shift()) {
      const r = await a.gen.dev2.get(`/api/sync/data/${a.type}/revisions/${a.version}`);
      n++;
      const what = `acknowledged ${a.via} ${a.type} v${a.version} (user ${a.gen.n}, iteration ${a.iter})`;
      if (r.status !== 200) {
        fail(`${label}: ${what}: ${r.describe()}`);
        continue;
      }
      if (sha256(Buffer.from(r.data.encrypted_data, 'base64')) !== a.sha256) fail(`${label}: ${what} reads back other bytes`);
      if (a.keyVersion !== undefined && r.data.key_version !== a.keyVersion) {
        fail(`${label}: ${what} reads back under key v${r.data.key_version}, not v${a.keyVersion}`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return n;
}

// ---- main ----------------------------------------------------------------------------------
async function main() {
  const t0 = Date.now();
  console.log(`crash loop: ${ITERATIONS} iterations, ${WORKERS} writers, SIGKILL at 0-${KILL_MAX_MS} ms, CRASH_SEED=${SEED}`);
  let srv = await startServer({ env: ENV });
  servers.push(srv);
  const dir = srv.dir;
  let g = await newGeneration(srv, 1);
  const users = [g];
  let heads = new Map();

  for (let iter = 1; iter <= ITERATIONS && problems.length < 50; iter++) {
    // a fresh user before a type could reach DATA_REVISIONS versions
    const top = Math.max(0, ...TYPES.map((t) => heads.get(`${g.userId}/${t}`)?.v ?? 0));
    if (top > GENERATION_LIMIT) {
      g = await newGeneration(srv, g.n + 1);
      users.push(g);
    }

    // 1. every type on; the current versions
    const c0 = pick(g.clients);
    const on = await c0.put('/api/sync/config', Object.fromEntries(TYPES.map((t) => [t, true])));
    if (on.status !== 200) fail(`iteration ${iter}: PUT /api/sync/config -> ${on.describe()}`);
    else stats.acked.config++;
    for (const it of (await c0.get('/api/sync/data')).data?.items || []) {
      g.known.data[it.type] = Math.max(g.known.data[it.type], it.version);
    }
    const k = await c0.get('/api/sync/key');
    if (k.status === 200) g.known.key = Math.max(g.known.key, k.data.version);

    // 2. writers, back to back, until the kill
    let killed = false;
    let inFlight = 0;
    const gen = g;
    const writer = async () => {
      while (!killed) {
        const op = nextOp(gen, iter);
        inFlight++;
        try { await op(); } finally { inFlight--; }
      }
    };
    const killAt = rnd() * KILL_MAX_MS;
    const writers = Array.from({ length: WORKERS }, writer);

    // 3. the kill
    await sleep(killAt);
    if (srv.exit) fail(`iteration ${iter}: the server died by itself: ${JSON.stringify(srv.exit)}\n${srv.stderr.slice(-3000)}`);
    const inFlightAtKill = inFlight;
    killed = true;
    srv.proc.kill('SIGKILL');
    const exit = await srv.exited;
    if (exit.signal !== 'SIGKILL') fail(`iteration ${iter}: the server exited ${JSON.stringify(exit)}, not by the SIGKILL`);
    stats.kills++;
    if (inFlightAtKill > 0) stats.killsInFlight++;
    await Promise.all(writers);

    // 4. the file
    let snap;
    try {
      snap = snapshot(srv.db);
    } catch (e) {
      fail(`iteration ${iter}: the sqlite3 CLI could not read the file: ${e.message}`);
      break;
    }
    heads = checkSnapshot(snap, iter);

    // 5. restart on the same file; read back what this iteration acknowledged
    const prev = srv;
    srv = await startServer({ env: ENV, dir });
    servers.push(srv);
    for (const s of prev.secrets) srv.addSecret(s);
    for (const u of users) for (const c of u.clients) c.srv = srv;
    stats.checkedHttp += await httpCheck(`iteration ${iter} (after restart)`,
      ackData.filter((a) => a.iter === iter), ackDel.filter((a) => a.iter === iter), ackKey.filter((a) => a.iter === iter));
    stats.iterations++;
    if (VERBOSE || iter % 10 === 0 || iter === ITERATIONS) {
      const mine = TYPES.map((t) => { const h = heads.get(`${g.userId}/${t}`); return `${t}=${h ? h.v : 0}${h?.d ? '(deleted)' : ''}`; });
      console.log(`  ${iter}/${ITERATIONS}: killed at ${killAt.toFixed(0)} ms, ${inFlightAtKill} request(s) in flight; acknowledged so far: ` +
        `${ackData.length} data, ${ackDel.length} deletes, ${ackKey.length} keys; user ${g.n}: ${mine.join(' ')}`);
    }
  }

  // every acknowledged data write of the run, once more
  const live = servers[servers.length - 1];
  if (!live.exit) stats.finalHttp = await httpCheck('final read-back', ackData, ackDel, ackKey, { concurrency: 4 });
  await stopAll();
  for (const v of [...new Set(servers.flatMap((s) => s.violations))].slice(0, 20)) fail(`a response broke the common rules: ${v}`);

  const a = stats.acked;
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  console.log(`crash loop: ${stats.iterations} iterations, ${stats.kills} SIGKILLs (${stats.killsInFlight} with requests in flight), ` +
    `${stats.users} user(s), ${stats.requests} workload requests (${stats.networkErrors} cut by a kill), statuses ${JSON.stringify(stats.statuses)}`);
  console.log(`  acknowledged: ${a.put} JSON PUTs, ${a.putRaw} raw PUTs, ${a.del} DELETEs, ${a.keyPut} key PUTs, ` +
    `${a.rotate} rotations (${a.rotateItems} items), ${a.config} config writes`);
  console.log(`  checked: ${ackData.length + ackDel.length + ackKey.length} acknowledged writes, ${stats.checkedSql} checks against the file ` +
    `(every write after every later kill), ${stats.checkedHttp} reads after restarts, ${stats.finalHttp} in the final read-back; ${secs} s`);
  if (problems.length) {
    console.error(`crash loop FAILED: ${problems.length} problem(s); CRASH_SEED=${SEED}`);
    process.exit(1);
  }
  console.log('crash loop: OK');
}

main().catch(async (e) => {
  console.error(e);
  try { await stopAll(); } catch { /* ignore */ }
  process.exit(1);
});
