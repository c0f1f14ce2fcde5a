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

import { SLOW, makeTempDir, startServer, stopAll, test } from '../api/lib/server.mjs';
import { signup } from '../api/lib/client.mjs';

import { Device, EXIT } from './lib.mjs';

after(async () => { await stopAll(); });

const PASS = `watch stream ${crypto.randomBytes(6).toString('hex')}`;

async function metric(srv, name) {
  const r = await fetch(`${srv.url}/metrics`);
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(await r.text());
  return m ? Number(m[1]) : NaN;
}

async function until(fn, what, ms = 15000 * SLOW) {
  const t0 = Date.now();
  for (;;) {
    if (await fn()) return;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => { setTimeout(r, 25); });
  }
}

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
  await until(async () => (await metric(srv, 'flamingo_event_streams')) >= 1, 'B\'s stream to open');
  const first = ['history', 'environment', 'secret'];
  for (const t of first) await push(A, work, t);
  await until(() => w.data().length >= first.length, 'the first pushes');
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
  await until(() => w.data().length >= first.length + second.length, 'the pushes after the restart', 30000 * SLOW);
  // B reconnected to the new server with Last-Event-ID: nothing missed,
  // nothing repeated, in order
  await until(async () => (await metric(srv2, 'flamingo_event_streams')) >= 1, 'B\'s stream on the new server');
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
    await until(async () => (await metric(srv, 'flamingo_event_streams')) >= 1, 'a stream');
    const n = w.data().length;
    await push(A, work, t);
    await until(() => w.data().length > n, `the ${t} event`);
    await until(async () => (await metric(srv, 'flamingo_event_streams')) === 0, 'the server to end the stream');
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
  await until(() => p.data().length >= 1, 'the event by long-poll');
  assert.equal(await metric(srv, 'flamingo_event_streams'), 0, '--poll opens no stream');
  p.run.proc.kill('SIGTERM');
  assert.equal((await p.run.done).code, 0);

  const w = watch(B);
  await until(async () => (await metric(srv, 'flamingo_event_streams')) >= 1, 'B\'s stream to open');
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
