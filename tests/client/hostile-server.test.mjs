// The CLI against a scripted fake server (node:http), for what a real
// flamingo-syncd does not do on demand: dropped connections and slow_down
// during the device login (the client must honour the raised interval and
// back off), oversized answers, non-JSON errors, and terminal escapes in
// server messages; an event stream answering 429, resuming, and sending a
// line over the cap; a server without the stream endpoint.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';

import { Device, EXIT, killClis } from './lib.mjs';

const PASS = 'correct horse battery staple';
// The wrapped-key test vector of docs/CRYPTO.md (passphrase PASS).
const KEY = {
  wrapped_key: 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXv3spCIyV2kWXfR9YjB+ujkAtLrepV+cS3LkWxCGhfk4SeAVkLrKeWTJc1RIjUugd',
  kdf: { alg: 'argon2id', version: 19, t: 2, m: 65536, p: 1, salt: 'oKGio6SlpqeoqaqrrK2urw==' },
  version: 1, created_at: '2026-12-01T00:00:00Z', created_by_device: 'x',
};
const TOKEN = `flm_sync_${'ab'.repeat(16)}`;

let server, url;
const polls = [];
let script = [];
let routes = {};

function send(res, status, body) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/html' : 'application/json; charset=utf-8' });
  res.end(text);
}

before(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const path = req.url;
      if (req.method === 'POST' && path === '/api/sync/init') {
        return send(res, 201, { success: true, data: {
          temp_token: `flm_temp_${'cd'.repeat(16)}`, user_code: 'BCDF-GHJK',
          url: `${url}/sync/authorize?code=BCDF-GHJK`, expires_at: '2026-12-06T00:00:00Z',
          expires_in: 60, interval: 1 } });
      }
      if (req.method === 'POST' && path === '/api/sync/token') {
        const step = script.shift();
        polls.push({ t: Date.now(), step });
        if (step === 'drop') return req.socket.destroy();
        if (step === 'slow_down') return send(res, 400, { success: false, error: 'slow_down', message: 'slow down', data: { interval: 2 } });
        if (step === 'pending') return send(res, 400, { success: false, error: 'authorization_pending', message: 'pending', data: { interval: 2 } });
        if (step === 'denied') return send(res, 403, { success: false, error: 'access_denied', message: 'denied' });
        return send(res, 200, { success: true, data: { session_token: TOKEN, token_type: 'Bearer', expires_at: '2027-01-01T00:00:00Z', device_id: 'dev-1', user: {} } });
      }
      const r = routes[`${req.method} ${path.split('?')[0]}`];
      if (r) return r(req, res);
      return send(res, 404, { success: false, error: 'not_found', message: 'no such route' });
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${server.address().port}`;
});
after(() => { killClis(); return new Promise((resolve) => server.close(resolve)); });

test('login honours interval and slow_down, backs off after a dropped connection', async () => {
  const d = new Device('polling');
  // libcurl re-sends a request once at once when a reused connection turns
  // out dead, so two drops make one failed poll for the client.
  script = ['drop', 'drop', 'slow_down', 'pending', 'ok'];
  polls.length = 0;
  const t0 = Date.now();
  const r = await d.run(['login', '--server', url, '--no-browser']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /BCDF-GHJK/);
  assert.match(r.out, /sync\/authorize\?code=BCDF-GHJK/);
  assert.deepEqual(polls.map((p) => p.step), ['drop', 'drop', 'slow_down', 'pending', 'ok']);
  const gap = (step) => {
    const i = polls.findIndex((p) => p.step === step);
    return polls[i].t - polls[i - 1].t;
  };
  assert.ok(polls[0].t - t0 >= 950, `first poll after the interval (1 s), got ${polls[0].t - t0} ms`);
  assert.ok(gap('slow_down') >= 950, `backoff after a failed poll, got ${gap('slow_down')} ms`);
  assert.ok(gap('pending') >= 1950, `slow_down raised the interval to 2 s, got ${gap('pending')} ms`);
  assert.ok(gap('ok') >= 1950, `the raised interval is kept, got ${gap('ok')} ms`);
  const st = d.state();
  assert.equal(st.token, TOKEN);
  assert.equal(st.device_id, 'dev-1');
});

test('a denied login exits 8 with a clear message', async () => {
  const d = new Device('denied');
  script = ['denied'];
  const r = await d.run(['login', '--server', url, '--no-browser']);
  assert.equal(r.code, EXIT.LOGIN);
  assert.match(r.err, /denied in the browser/);
});

async function loggedIn(name) {
  const d = new Device(name);
  script = ['ok'];
  await d.ok(['login', '--server', url, '--no-browser']);
  d.passphrase = PASS;
  return d;
}

test('answers larger than the caps are refused before they are buffered', async () => {
  const d = await loggedIn('caps');
  let sent = 0;
  routes = {
    'GET /api/info': (req, res) => send(res, 200, { success: true, data: { version: 'x', limits: { max_blob_bytes: 1024, max_body_bytes: 65536 } } }),
    'GET /api/sync/key': (req, res) => send(res, 200, { success: true, data: KEY }),
    'GET /api/sync/data/history': (req, res) => {
      // 8 MiB of base64 for a server that promised 1 KiB blobs
      const chunk = 'A'.repeat(64 * 1024);
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.write('{"success":true,"data":{"type":"history","version":1,"key_version":1,"encrypted_data":"');
      const pump = () => {
        while (sent < 8 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) { res.once('drain', pump); return; }
        }
        res.end('"}}');
      };
      res.on('error', () => {});
      pump();
    },
    'GET /api/devices': (req, res) => send(res, 200, { success: true, data: { devices: Array.from({ length: 1001 }, (_, i) => ({ id: `d${i}` })) } }),
  };
  const r = await d.run(['pull', 'history']);
  assert.equal(r.code, EXIT.ERROR, r.err);
  assert.match(r.err, /larger than this client accepts/);
  assert.equal(r.stdout.length, 0);
  const devs = await d.run(['devices']);
  assert.equal(devs.code, EXIT.ERROR);
  assert.match(devs.err, /malformed answer/);
});

test('non-JSON errors and terminal escapes in server messages', async () => {
  const d = await loggedIn('hostile');
  routes = {
    'GET /api/sync/data': (req, res) => send(res, 502, '<html>bad gateway</html>'),
    'GET /api/sync/config': (req, res) => send(res, 500, { success: false, error: 'internal_error', message: '\u001b[31mred\u001b]0;title\u0007 alert' }),
  };
  const r = await d.run(['list']);
  assert.equal(r.code, EXIT.ERROR);
  assert.match(r.err, /unexpected answer from the server \(HTTP 502/);
  const c = await d.run(['config', 'show']);
  assert.equal(c.code, EXIT.ERROR);
  assert.ok(!c.err.includes('\u001b') && !c.err.includes('\u0007'), JSON.stringify(c.err));
  assert.match(c.err, /\?\[31mred/);
});

test('an unreachable server exits 6', async () => {
  const d = await loggedIn('gone');
  const st = d.state();
  // a port nobody listens on: the fake server's, once closed, is not safe
  // to reuse, so point the state at port 9 (discard) on loopback
  st.server = 'http://127.0.0.1:9';
  const fs = await import('node:fs');
  fs.writeFileSync(d.statePath, JSON.stringify(st));
  const r = await d.run(['list']);
  assert.equal(r.code, EXIT.NETWORK, r.err);
  assert.match(r.err, /cannot reach http:\/\/127\.0\.0\.1:9/);
});

test('watch: a 429 stream waits Retry-After, reconnects with Last-Event-ID after retry:, refuses a line over 64 KiB', async () => {
  const d = await loggedIn('stream');
  const reqs = [];
  routes = {
    'GET /api/sync/events/stream': (req, res) => {
      reqs.push({ t: Date.now(), lastEventId: req.headers['last-event-id'], accept: req.headers.accept });
      if (reqs.length === 1) {
        res.writeHead(429, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '4' });
        return res.end(JSON.stringify({ success: false, error: 'rate_limited', message: 'too many streams' }));
      }
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
      if (reqs.length === 2) {
        // the event split across writes, CRLF line ends; then the end
        res.write('retry: 100\r\n: connected\r\n\r\nid: 5\r\nevent: data_');
        res.write('updated\r\ndata: {"id":5,"type":"data_updated","data_type":"secret",');
        return res.end('"version":2,"created_at":"2026-12-05T00:00:00Z"}\r\n\r\n');
      }
      res.write(': connected\n\n');
      return res.end(`data: ${'x'.repeat(70 * 1024)}\n\n`);
    },
  };
  const r = await d.run(['--json', 'watch']);
  assert.equal(r.code, EXIT.ERROR, r.err);
  assert.match(r.err, /malformed event stream: a line longer than 64 KiB/);
  assert.equal(reqs.length, 3);
  assert.ok(reqs.every((q) => q.accept === 'text/event-stream'));
  assert.deepEqual(reqs.map((q) => q.lastEventId), ['0', '0', '5']);
  assert.ok(reqs[1].t - reqs[0].t >= 3950, `Retry-After honoured, got ${reqs[1].t - reqs[0].t} ms`);
  const gap = reqs[2].t - reqs[1].t;
  assert.ok(gap >= 100 && gap < 2000, `retry: 100 honoured (not the 3 s default), got ${gap} ms`);
  const lines = r.out.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines[0], { id: 5, type: 'data_updated', data_type: 'secret', version: 2, own: false, created_at: '2026-12-05T00:00:00Z' });
  assert.equal(lines[1].ok, false);
  assert.equal(d.state().event_cursor, 5);
});

test('watch falls back to long-polling when the server has no stream endpoint (404)', async () => {
  const d = await loggedIn('old-server');
  let polls = 0;
  routes = {
    'GET /api/sync/events': (req, res) => {
      polls++;
      if (polls > 1) return undefined;   // a long-poll that waits
      return send(res, 200, { success: true, data: { next: 3, events: [
        { id: 3, type: 'config_changed', created_at: '2026-12-05T00:00:00Z' }] } });
    },
  };
  const got = new Promise((resolve) => {
    const run = d.spawn(['--json', 'watch'], {
      onStdout: (text) => { if (text.includes('\n')) { run.proc.kill('SIGKILL'); resolve(text); } },
    });
  });
  const line = JSON.parse((await got).split('\n')[0]);
  assert.deepEqual(line, { id: 3, type: 'config_changed', data_type: null, version: -1, own: false, created_at: '2026-12-05T00:00:00Z' });
});

test('watch: a stream silent for 50 s (heartbeats reset the count) is dead; it reconnects with Last-Event-ID', { timeout: 120000 }, async () => {
  const d = await loggedIn('idle');
  const reqs = [];
  let pinged = 0;
  routes = {
    'GET /api/sync/events/stream': (req, res) => {
      reqs.push({ t: Date.now(), lastEventId: req.headers['last-event-id'] });
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
      if (reqs.length === 1) {
        res.write(': connected\n\nid: 8\nevent: config_changed\ndata: {"id":8,"type":"config_changed","created_at":"2026-12-05T00:00:00Z"}\n\n');
        // one heartbeat after 10 s, then silence (the socket stays open)
        const t = setTimeout(() => { pinged = Date.now(); res.write(': ping\n\n'); }, 10000);
        res.on('close', () => clearTimeout(t));
        return undefined;
      }
      return res.end(`data: ${'x'.repeat(70 * 1024)}\n\n`);
    },
  };
  const r = await d.run(['--json', 'watch']);
  assert.equal(r.code, EXIT.ERROR, r.err);
  assert.equal(reqs.length, 2);
  assert.ok(pinged > 0, 'the heartbeat was sent');
  // 50 s after the heartbeat (not after the event), then retry: 3 s
  const gap = reqs[1].t - pinged;
  assert.ok(gap >= 53000 && gap < 56000, `dead 50 s after the last byte, then the 3 s retry; got ${gap} ms`);
  assert.equal(reqs[1].lastEventId, '8');
  assert.equal(JSON.parse(r.out.split('\n')[0]).id, 8);
});
