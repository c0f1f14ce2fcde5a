// PostgreSQL goes down under running servers: every request that needs
// storage answers 503 `unavailable` at once (no hang, no crash), /readyz
// answers 503, nothing is half-written; when PostgreSQL is back the
// servers recover by themselves (each thread reconnects, the LISTEN
// connection too) and every acknowledged write is there.
// The test stops and starts a cluster of its own (scripts/pg-test-cluster),
// so that the suites sharing the run's cluster are not disturbed.
// Runs only under make api-pg (FLAMINGO_STORE=postgres).

import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { before, after } from 'node:test';
import {
  startServer, stopAll, test, psql, waitForLongPolls, STORE,
} from '../api/lib/server.mjs';
import {
  Client, expectOk, expectError, signup, deviceLogin, b64, uniqueEmail, uniquePassword,
} from '../api/lib/client.mjs';
import { finalChecks } from '../api/lib/checks.mjs';

const skip = STORE !== 'postgres' && 'the outage test needs PostgreSQL (make api-pg)';
const CLUSTER = fileURLToPath(new URL('../../scripts/pg-test-cluster', import.meta.url));
const run = promisify(execFile);
const PROMPT_MS = 3000;  // "at once": far below any client or proxy timeout
let top;     // the cluster's folder: owned here, not by makeTempDir, so
let pgdir;   // that it is never removed under a running cluster
let A;
let B;

function stopCluster() {
  if (pgdir) spawnSync(CLUSTER, ['stop', pgdir], { timeout: 60000 });
  if (top) fs.rmSync(top, { recursive: true, force: true });
  pgdir = undefined;
  top = undefined;
}
process.on('exit', stopCluster);
after(async () => {
  await stopAll();
  stopCluster();
});

before(async () => {
  if (skip) return;
  top = fs.mkdtempSync(path.join(os.tmpdir(), 'flm-outage-'));
  fs.chmodSync(top, 0o755);  // the cluster runs as the postgres user
  pgdir = path.join(top, 'pg');
  const conninfo = (await run(CLUSTER, ['start', pgdir])).stdout.trim();
  psql('postgres', 'CREATE DATABASE outage', conninfo);
  const database = `${conninfo} dbname=outage`;
  [A, B] = await Promise.all([startServer({ database }), startServer({ database })]);
});

/** Runs fn, asserting it settles within PROMPT_MS; returns its result. */
async function prompt(what, fn) {
  const t0 = Date.now();
  const r = await fn();
  const ms = Date.now() - t0;
  assert.ok(ms < PROMPT_MS, `${what} took ${ms} ms`);
  return r;
}

async function readyz(srv) {
  const r = await fetch(`${srv.url}/readyz`, { signal: AbortSignal.timeout(10000) });
  return { status: r.status, body: await r.json() };
}

/** Head, revision and event of one write: all there or none. */
async function assertWhole(dev, type, version, data) {
  const g = expectOk(await dev.get(`/api/sync/data/${type}`));
  assert.equal(g.version, version, `${type} head`);
  if (data !== undefined) assert.equal(g.encrypted_data, data);
  const revs = expectOk(await dev.get(`/api/sync/data/${type}/revisions`)).revisions;
  assert.ok(revs.some((r) => r.version === version), `${type} v${version} has its revision`);
  const ev = expectOk(await dev.get('/api/sync/events?after=0&wait=0')).events;
  assert.ok(ev.some((e) => e.type === 'data_updated' && e.data_type === type && e.version === version),
    `${type} v${version} has its event`);
}

test('PostgreSQL down: prompt 503s and /readyz 503; back up: recovery without a restart, acknowledged writes intact',
  { skip, timeout: 120000 }, async () => {
    const web = await signup(A);
    const dev = await deviceLogin(web);
    const devOnB = new Client(B, { bearer: dev.token, sendOrigin: false });
    let history;
    for (let i = 0; i < 3; i++) {
      const data = b64(`h${i}`);
      history = { version: expectOk(await dev.put('/api/sync/data/history', { encrypted_data: data })).version, data };
    }

    // a writer that keeps going through the outage, and a long-poll held
    // across its start
    let acked = null;
    let stopWriter = false;
    let firstAck;
    const acknowledged = new Promise((res) => { firstAck = res; });
    const writer = (async () => {
      for (let i = 0; !stopWriter; i++) {
        const data = b64(`c${i}`);
        const r = await devOnB.put('/api/sync/data/collection', { encrypted_data: data }, { timeoutMs: 10000 });
        if (r.status === 200) {
          acked = { version: r.data.version, data };
          firstAck();
        } else {
          expectError(r, 503, 'unavailable');
        }
      }
    })();
    const poll = devOnB.get('/api/sync/events?after=999999999&wait=4', { timeoutMs: 15000 });

    await acknowledged;
    await run(CLUSTER, ['halt', pgdir]);
    const t0 = Date.now();

    for (const srv of [A, B]) {
      for (let i = 0; i < 2; i++) {
        const r = await prompt(`${srv.url}/readyz`, () => readyz(srv));
        assert.equal(r.status, 503);
        assert.equal(r.body.error, 'unavailable');
      }
      // liveness is not readiness: the process itself is fine
      assert.equal((await fetch(`${srv.url}/healthz`)).status, 200);
    }
    const c = (srv) => (srv === A ? dev : devOnB);
    for (const srv of [A, B]) {
      expectError(await prompt('GET data', () => c(srv).get('/api/sync/data/history')), 503, 'unavailable');
      expectError(await prompt('PUT data', () => c(srv).put('/api/sync/data/history', { encrypted_data: b64('lost') })),
        503, 'unavailable');
      expectError(await prompt('events', () => c(srv).get('/api/sync/events?after=0&wait=0')), 503, 'unavailable');
      expectError(await prompt('login', () => new Client(srv).post('/api/auth/login',
        { email: web.email, password: web.password })), 503, 'unavailable');
      expectError(await prompt('signup', () => new Client(srv).post('/api/auth/signup',
        { email: uniqueEmail(), password: uniquePassword() })), 503, 'unavailable');
      expectError(await prompt('devices', () => web.get('/api/devices')), 503, 'unavailable');
    }
    // the held long-poll ends by its deadline (200 or 503), it does not hang
    const p = await poll;
    assert.ok(p.status === 200 || p.status === 503, p.describe());
    assert.ok(Date.now() - t0 < 4000 + PROMPT_MS, 'the long-poll ended near its deadline');
    stopWriter = true;
    await writer;
    assert.ok(A.exit === null && B.exit === null, 'both servers are still running');

    await run(CLUSTER, ['resume', pgdir]);
    // recovery: /readyz answers 200 again on both, with no restart
    for (const srv of [A, B]) {
      const t1 = Date.now();
      for (;;) {
        const r = await readyz(srv);
        if (r.status === 200) break;
        assert.ok(Date.now() - t1 < 15000, `${srv.url} did not recover: ${JSON.stringify(r)}`);
        await new Promise((res) => setTimeout(res, 50));
      }
    }
    // once /readyz says the database is back, no worker thread still
    // refuses because of a connect that failed during the outage: parallel
    // requests (spread over every thread) all succeed at once
    for (const srv of [A, B]) {
      const rs = await Promise.all(Array.from({ length: 12 },
        () => new Client(srv, { bearer: dev.token, sendOrigin: false }).get('/api/sync/config')));
      for (const r of rs) expectOk(r);
    }

    // every acknowledged write is there; the refused one changed nothing
    await assertWhole(dev, 'history', history.version, history.data);
    const col = expectOk(await dev.get('/api/sync/data/collection'));
    // at most one later write may have committed while its answer was lost
    assert.ok(col.version === acked.version || col.version === acked.version + 1,
      `collection: acked v${acked.version}, found v${col.version}`);
    await assertWhole(dev, 'collection', col.version, col.version === acked.version ? acked.data : undefined);

    // both work again, and events cross instances again (the LISTEN
    // connection reconnected too)
    expectOk(await new Client(A).post('/api/auth/login', { email: web.email, password: web.password }));
    const next = expectOk(await devOnB.get('/api/sync/events?after=0&wait=0')).next;
    const pending = devOnB.get(`/api/sync/events?after=${next}&wait=20`, { timeoutMs: 30000 });
    // the long-poll must park; if it is answered instead, say with what
    let parked = false;
    const early = pending.then((r) => {
      if (!parked) throw new Error(`the long-poll was answered before any write: ${r.describe()}`);
    });
    early.catch(() => {}); // a later failure is the `await pending` below's
    await Promise.race([waitForLongPolls(B, 1), early]);
    parked = true;
    const w = expectOk(await dev.put('/api/sync/data/history', { encrypted_data: b64('after') }));
    assert.equal(w.version, history.version + 1);
    const tw = Date.now();
    const d = expectOk(await pending);
    assert.ok(Date.now() - tw < PROMPT_MS, `woken ${Date.now() - tw} ms after the write`);
    assert.ok(d.events.some((e) => e.data_type === 'history' && e.version === w.version));
  });

test('a PostgreSQL restart while the servers are idle costs no request an error', { skip, timeout: 60000 }, async () => {
  const web = await signup(A);
  const dev = await deviceLogin(web);
  const devOnB = new Client(B, { bearer: dev.token, sendOrigin: false });
  // every worker thread of both has a live connection now
  for (let i = 0; i < 8; i++) {
    expectOk(await dev.get('/api/sync/config'));
    expectOk(await devOnB.get('/api/sync/config'));
  }
  await run(CLUSTER, ['halt', pgdir]);
  await run(CLUSTER, ['resume', pgdir]);
  // the dead sessions are noticed and replaced before use
  for (let i = 0; i < 8; i++) {
    expectOk(await dev.get('/api/sync/config'));
    expectOk(await devOnB.put('/api/sync/config', { history: i % 2 === 0 }));
  }
});

if (!skip) finalChecks(() => [A, B]);
