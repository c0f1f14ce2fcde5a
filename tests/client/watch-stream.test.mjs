// End to end: `flamingo-sync watch` on the server's event stream (SSE).
// Device B watches while device A pushes: every event arrives once, in
// order; across a server restart (same port and database) the CLI resumes
// with Last-Event-ID, missing nothing and repeating nothing; with
// STREAM_MAX_SECONDS=1 the server ends the stream every second and the CLI
// resumes it transparently; `--once` prints what is there and exits; B
// revoked from A ends B's watch with exit 3 and the documented message.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after } from 'node:test';

import {
  SLOW, makeTempDir, startServer, stopAll, test, until, metric, sql,
} from '../api/lib/server.mjs';
import { signup } from '../api/lib/client.mjs';

import { Device, EXIT, killClis } from './lib.mjs';

after(async () => { killClis(); await stopAll(); });

const PASS = `watch stream ${crypto.randomBytes(6).toString('hex')}`;

/** The CLI's waits are longer than an API call's. */
const WAIT = 15000 * SLOW;

/** A server, a web session, device A with the key and device B. */
async function setup(env = {}) {
  const srv = await startServer({ env: { DEVICE_POLL_INTERVAL: '1', ...env } });
  const web = await signup(srv);
  const A = new Device('stream-a');
  const B = new Device('stream-b');
  await A.login(srv, web);
  await B.login(srv, web);
  A.passphrase = PASS;
  await A.ok(['key', 'init']);
  return { srv, web, A, B, work: makeTempDir('flm-watch-') };
}

/** `watch --json` on dev: its JSON lines as they come, and its exit. */
function watch(dev, args = []) {
  const w = { lines: [] };
  w.run = dev.spawn(['--json', 'watch', ...args], {
    onStdout: (text) => {
      w.lines = text.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l));
    },
  });
  w.data = () => w.lines.filter((e) => e.type === 'data_updated');
  return w;
}

async function push(A, work, type) {
  const f = path.join(work, `${type}-${crypto.randomBytes(4).toString('hex')}`);
  fs.writeFileSync(f, `${type} ${crypto.randomBytes(16).toString('hex')}\n`);
  const r = await A.json(['push', type, f, '--force']);
  assert.equal(r.code, 0, r.err);
  return r.json.version;
}

function assertOnceInOrder(events) {
  const ids = events.map((e) => e.id);
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], `ids increase: ${ids}`);
}

test('watch streams A\'s pushes to B in order; a server restart on the same port and database loses and repeats nothing; --once', async () => {
  const { srv, A, B, work } = await setup();
  const w = watch(B);
  await until(async () => (await metric(srv, 'flamingo_event_streams')) >= 1, WAIT, 'B\'s stream to open');
  const first = ['history', 'environment', 'secret'];
  for (const t of first) await push(A, work, t);
  await until(() => w.data().length >= first.length, WAIT, 'the first pushes');
  assert.deepEqual(w.data().map((e) => e.data_type), first);
  assert.ok(w.data().every((e) => e.own === false && e.version >= 1 && typeof e.created_at === 'string'));

  // the server goes away and comes back on the same port and database
  await srv.stop();
  const port = new URL(srv.url).port;
  const srv2 = await startServer({ dir: srv.dir, args: ['--listen', `127.0.0.1:${port}`],
    env: { DEVICE_POLL_INTERVAL: '1' } });
  assert.equal(srv2.url, srv.url);
  const second = ['collection', 'setting'];
  for (const t of second) await push(A, work, t);
  await until(() => w.data().length >= first.length + second.length, 30000 * SLOW, 'the pushes after the restart');
  // B reconnected to the new server with Last-Event-ID: nothing missed,
  // nothing repeated, in order
  await until(async () => (await metric(srv2, 'flamingo_event_streams')) >= 1, WAIT, 'B\'s stream on the new server');
  assert.deepEqual(w.data().map((e) => e.data_type), [...first, ...second]);
  assertOnceInOrder(w.lines);
  w.run.proc.kill('SIGTERM');
  const end = await w.run.done;
  assert.equal(end.code, 0, end.err);
  assert.equal(B.state().event_cursor, w.lines[w.lines.length - 1].id, 'the cursor is saved');

  // --once: what came since, then exit (long-poll, as before)
  await push(A, work, 'history');
  const once = await B.run(['--json', 'watch', '--once']);
  assert.equal(once.code, 0, once.err);
  const got = once.out.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(got.map((e) => [e.type, e.data_type]), [['data_updated', 'history']]);
  assert.ok(got[0].id > w.lines[w.lines.length - 1].id);
  const nothing = await B.run(['--json', 'watch', '--once']);
  assert.equal(nothing.code, 0, nothing.err);
  assert.equal(nothing.out, '');
});

test('with STREAM_MAX_SECONDS=1 the server ends each stream and watch resumes it without loss or repeats', async () => {
  const { srv, A, B, work } = await setup({ STREAM_MAX_SECONDS: '1' });
  const w = watch(B);
  const types = ['history', 'environment', 'secret', 'collection', 'setting'];
  let opened = 0;
  // each push after a stream was ended by the server and opened again
  for (const t of types) {
    await until(async () => (await metric(srv, 'flamingo_event_streams')) >= 1, WAIT, 'a stream');
    const n = w.data().length;
    await push(A, work, t);
    await until(() => w.data().length > n, WAIT, `the ${t} event`);
    await until(async () => (await metric(srv, 'flamingo_event_streams')) === 0, WAIT, 'the server to end the stream');
    opened++;
  }
  assert.equal(opened, types.length);
  assert.deepEqual(w.data().map((e) => e.data_type), types, 'each event once, in order');
  assertOnceInOrder(w.lines);
  w.run.proc.kill('SIGTERM');
  assert.equal((await w.run.done).code, 0);
});

test('--poll long-polls; B revoked from A: B\'s watch exits 3 with the revocation message', async () => {
  const { srv, A, B, work } = await setup();
  const p = watch(B, ['--poll']);
  await push(A, work, 'history');
  await until(() => p.data().length >= 1, WAIT, 'the event by long-poll');
  assert.equal(await metric(srv, 'flamingo_event_streams'), 0, '--poll opens no stream');
  p.run.proc.kill('SIGTERM');
  assert.equal((await p.run.done).code, 0);

  const w = watch(B);
  await until(async () => (await metric(srv, 'flamingo_event_streams')) >= 1, WAIT, 'B\'s stream to open');
  const rev = await A.run(['devices', 'revoke', B.deviceId]);
  assert.equal(rev.code, 0, rev.err);
  const end = await w.run.done;
  assert.equal(end.code, EXIT.AUTH, end.err);
  assert.match(end.err, /this device was revoked or its session has ended; run flamingo-sync login/);
  const revoked = w.lines.filter((e) => e.type === 'device_revoked');
  assert.equal(revoked.length, 1, 'the revocation event is printed once');
  const last = w.lines[w.lines.length - 1];
  assert.equal(last.ok, false);
  assert.equal(last.exit, EXIT.AUTH);
});

test('events pruned while B was away: watch --once (long-poll) and watch (stream) say resync, save the new cursor, and go on', async () => {
  let { srv, A, B, work } = await setup();
  const once = async () => {
    const r = await B.run(['--json', 'watch', '--once']);
    assert.equal(r.code, 0, r.err);
    return { lines: r.out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)), err: r.err };
  };
  await once();   // B's cursor: now
  /** Ages every event past EVENT_RETENTION_DAYS, restarts on the same
   * port, and waits for the start-up prune. */
  const pruneAll = async () => {
    await srv.stop();
    sql(srv, 'UPDATE events SET created_at = created_at - 3456000000');
    const port = new URL(srv.url).port;
    srv = await startServer({ dir: srv.dir, args: ['--listen', `127.0.0.1:${port}`],
      env: { DEVICE_POLL_INTERVAL: '1' } });
    await until(async () => (await metric(srv, 'flamingo_housekeeping_runs_total')) >= 1, WAIT, 'the start-up prune');
    assert.equal(sql(srv, 'SELECT count(*) FROM events'), '0');
  };

  // long-poll
  await push(A, work, 'history');
  await push(A, work, 'secret');
  await pruneAll();
  const r = await once();
  assert.equal(r.lines.length, 1, JSON.stringify(r.lines));
  assert.equal(r.lines[0].type, 'resync');
  assert.match(r.err, /older events were pruned on the server; pull every type to catch up/);
  assert.equal(B.state().event_cursor, r.lines[0].next, 'the cursor moves to where the server said');
  assert.deepEqual((await once()).lines, [], 'no resync loop');

  // stream
  await push(A, work, 'collection');
  await pruneAll();
  const w = watch(B);
  await until(() => w.lines.some((e) => e.type === 'resync'), WAIT, 'the resync line');
  await push(A, work, 'setting');
  await until(() => w.data().length >= 1, WAIT, 'the next push');
  assert.deepEqual(w.data().map((e) => e.data_type), ['setting'], 'nothing old replayed');
  w.run.proc.kill('SIGTERM');
  assert.equal((await w.run.done).code, 0);
});
