// The dashboard's server side: redirects, the pages' security headers and
// CSP, static files with ETag / 304 and cache headers, no-store where it
// matters, 404s, path traversal, and the TURNSTILE_SCRIPT_URL setting.

import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { startServer, stopAll, test, runCli } from './lib/server.mjs';
import { Client, signup, rawRequest, expectError, expectNoStore } from './lib/client.mjs';
import { finalChecks } from './lib/checks.mjs';

let srv;
let anon;
let web;
const extra = [];
const DASHBOARD = ['/dashboard', '/dashboard/sync', '/dashboard/devices', '/dashboard/security'];
const PAGES = ['/login', '/sync/authorize', '/sync/complete', ...DASHBOARD];

before(async () => {
  srv = await startServer();
  anon = new Client(srv, { jar: false });
  web = await signup(srv);
});
after(stopAll);

const page = (c, path, opts = {}) => c.get(path, { expectNonJson: true, ...opts });

function csp(res) {
  const out = {};
  for (const part of (res.headers.get('content-security-policy') || '').split(';')) {
    const [name, ...vals] = part.trim().split(/\s+/);
    if (name) out[name.toLowerCase()] = vals;
  }
  return out;
}

function expectPageHeaders(res, what) {
  const d = csp(res);
  assert.deepEqual(d['default-src'], ["'none'"], `${what}: default-src`);
  assert.deepEqual(d['script-src'], ["'self'"], `${what}: script-src`);
  assert.deepEqual(d['style-src'], ["'self'"], `${what}: style-src`);
  assert.deepEqual(d['object-src'], ["'none'"], `${what}: object-src`);
  assert.deepEqual(d['base-uri'], ["'none'"], `${what}: base-uri`);
  assert.deepEqual(d['frame-ancestors'], ["'none'"], `${what}: frame-ancestors`);
  assert.equal(d['frame-src'], undefined, `${what}: no frame-src without Turnstile`);
  for (const v of Object.values(d).flat()) {
    assert.ok(!/unsafe-|^\*$|^https?:|^data:/.test(v), `${what}: CSP allows ${v}`);
  }
  assert.equal(res.headers.get('referrer-policy'), 'no-referrer', what);
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff', what);
  assert.equal(res.headers.get('x-frame-options'), 'DENY', what);
  expectNoStore(res);
}

test('/ redirects to /dashboard', async () => {
  const r = await page(anon, '/');
  assert.equal(r.status, 302);
  assert.equal(r.headers.get('location'), '/dashboard');
  expectPageHeaders(r, '/');
});

test('dashboard pages without a session answer 302 to /login?redirect=<path>', async () => {
  for (const p of DASHBOARD) {
    const r = await page(anon, p);
    assert.equal(r.status, 302, p);
    assert.equal(r.headers.get('location'), `/login?redirect=${p}`);
    expectPageHeaders(r, p);
  }
  // an ended or forged session is no session
  const forged = new Client(srv, { jar: false });
  forged.cookies.set('flm_session', 'flm_web_0123456789abcdef0123456789abcdef');
  assert.equal((await page(forged, '/dashboard')).status, 302);
  forged.cookies.set('flm_session', 'garbage');
  assert.equal((await page(forged, '/dashboard')).status, 302);
});

test('/sync/authorize without a session keeps its query through login', async () => {
  const r = await page(anon, '/sync/authorize?code=BCDF-GHJK');
  assert.equal(r.status, 302);
  assert.equal(r.headers.get('location'), '/login?redirect=/sync/authorize%3Fcode%3DBCDF-GHJK');
  assert.equal(new URL(r.headers.get('location'), srv.url).searchParams.get('redirect'), '/sync/authorize?code=BCDF-GHJK');
  // whatever the query holds comes back encoded, never as a header break
  const odd = await page(anon, '/sync/authorize?code=%0d%0aSet-Cookie:x&a=%25');
  assert.equal(odd.status, 302);
  assert.equal(new URL(odd.headers.get('location'), srv.url).searchParams.get('redirect'),
    '/sync/authorize?code=%0d%0aSet-Cookie:x&a=%25');
  assert.equal(odd.headers.get('set-cookie'), null);
});

test('with a session every page answers 200 HTML with the page headers; /login sends to the dashboard', async () => {
  for (const p of PAGES.filter((x) => x !== '/login')) {
    const r = await page(web, p);
    assert.equal(r.status, 200, `${p}: ${r.status}`);
    assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
    expectPageHeaders(r, p);
    assert.match(r.text, /^<!doctype html>/i);
  }
  const l = await page(web, '/login?redirect=/dashboard/devices');
  assert.equal(l.status, 302);
  assert.equal(l.headers.get('location'), '/dashboard');
  const pub = await page(anon, '/login');
  assert.equal(pub.status, 200);
  expectPageHeaders(pub, '/login');
  assert.equal((await page(anon, '/sync/complete')).status, 200);
});

test('pages hold no inline script or style and load only same-origin files, all of which exist', async () => {
  const seen = new Set();
  for (const p of PAGES) {
    const r = await page(web.clone(), p === '/login' ? '/sync/complete' : p);
    const html = p === '/login' ? (await page(anon, '/login')).text : r.text;
    assert.ok(!/<script(?![^>]*\bsrc=)[^>]*>/i.test(html), `${p}: inline <script>`);
    assert.ok(!/\sstyle\s*=/i.test(html), `${p}: style attribute`);
    assert.ok(!/<style/i.test(html), `${p}: <style> element`);
    assert.ok(!/\son[a-z]+\s*=/i.test(html), `${p}: inline event handler`);
    for (const m of html.matchAll(/\s(?:src|href)="([^"#][^"]*)"/g)) {
      assert.ok(m[1].startsWith('/') && !m[1].startsWith('//'), `${p}: ${m[1]} is not same-origin`);
      if (m[1].startsWith('/static/')) seen.add(m[1]);
    }
  }
  assert.ok(seen.size >= 4, `static files referenced: ${[...seen]}`);
  for (const f of seen) assert.equal((await page(anon, f)).status, 200, f);
});

test('static files: content type, strong ETag, 304 on If-None-Match, no-cache', async () => {
  const types = { '/static/app.css': 'text/css; charset=utf-8', '/static/ui.js': 'text/javascript; charset=utf-8', '/static/icon.svg': 'image/svg+xml' };
  for (const [f, type] of Object.entries(types)) {
    const r = await page(anon, f);
    assert.equal(r.status, 200, f);
    assert.equal(r.headers.get('content-type'), type, f);
    const etag = r.headers.get('etag');
    assert.match(etag, /^"[0-9a-f]{32}"$/, `${f}: strong ETag`);
    assert.equal(r.headers.get('cache-control'), 'no-cache', f);
    assert.equal(csp(r)['default-src']?.[0], "'none'", `${f}: CSP`);
    for (const inm of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const n = await page(anon, f, { headers: { 'if-none-match': inm } });
      assert.equal(n.status, 304, `${f} If-None-Match: ${inm}`);
      assert.equal(n.buf.length, 0);
      assert.equal(n.headers.get('etag'), etag);
      assert.equal(n.headers.get('cache-control'), 'no-cache');
    }
    const miss = await page(anon, f, { headers: { 'if-none-match': '"0123"' } });
    assert.equal(miss.status, 200);
    assert.equal(miss.buf.length, r.buf.length);
  }
  const head = await anon.request('HEAD', '/static/app.css', { expectNonJson: true });
  assert.equal(head.status, 200);
  assert.equal(head.buf.length, 0);
  assert.ok(Number(head.headers.get('content-length')) > 1000);
});

test('unknown files and path tricks answer 404 and never leave the embedded set', async () => {
  for (const p of ['/static/nope.js', '/static/', '/static/app.css/x', '/static/..%2Flogin.html',
    '/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd', '/static/login.html', '/static/app.css%00.js', '/static/APP.CSS']) {
    const r = await page(anon, p);
    assert.equal(r.status, 404, `${p}: ${r.status}`);
    assert.ok(!r.text.includes('<!doctype'), `${p}: no page bytes`);
  }
  // fetch normalises dot segments (also %2e%2e); send them raw
  for (const target of ['/static/../x', '/static/../login.html', '/static/../../etc/passwd', '/static/%2e%2e',
    '/static/%2e%2e/dashboard.html', '/static/%2E%2E/%2e%2e/etc/passwd', '/static/.', '/static/./app.css/..']) {
    const r = await rawRequest(srv, [`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]);
    assert.equal(r.status, 404, `${target}: ${r.status} ${r.headers.location}`);
    assert.ok(!/root:|<!doctype/i.test(r.body.toString()), target);
  }
});

test('unknown paths: JSON 404 for /api/* and for non-browsers, the 404 page for browsers', async () => {
  const html = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };
  const p = await page(anon, '/no-such-page', { headers: html });
  assert.equal(p.status, 404);
  assert.equal(p.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.match(p.text, /Page not found/);
  expectPageHeaders(p, '404 page');
  expectError(await anon.get('/api/no-such', { headers: html }), 404, 'not_found');
  expectError(await anon.get('/no-such-page'), 404, 'not_found');
  // a page route with another method is a 405 like any route
  const post = await anon.post('/login', {});
  expectError(post, 405, 'method_not_allowed');
  assert.match(post.headers.get('allow'), /GET/);
});

test('TURNSTILE_SCRIPT_URL: checked at start-up; unused without a site key', async () => {
  for (const bad of ['ftp://x/api.js', 'https://a.example/x.js; script-src *', "https://a.example/'x'", 'https://a.example,b/x.js', 'https:///x.js']) {
    const r = runCli(['--listen', '127.0.0.1:0'], { TURNSTILE_SCRIPT_URL: bad });
    assert.equal(r.code, 2, `${bad}: ${r.stderr}`);
    assert.match(r.stderr, /TURNSTILE_SCRIPT_URL/);
  }
  const help = runCli(['--help']);
  assert.match(help.stdout, /TURNSTILE_SCRIPT_URL .*challenges\.cloudflare\.com\/turnstile\/v0\/api\.js/);
  const r = await anon.get('/api/info');
  assert.equal(r.data.turnstile_script_url, null);
  const s = await startServer({ env: { TURNSTILE_SITE_KEY: 'site-key-1', TURNSTILE_SCRIPT_URL: 'https://widgets.example:8443/v0/api.js?render=explicit' } });
  extra.push(s);
  const c = new Client(s, { jar: false });
  assert.equal((await c.get('/api/info')).data.turnstile_script_url, 'https://widgets.example:8443/v0/api.js?render=explicit');
  const d = csp(await c.get('/login', { expectNonJson: true }));
  assert.deepEqual(d['script-src'], ["'self'", 'https://widgets.example:8443']);
  assert.deepEqual(d['frame-src'], ['https://widgets.example:8443']);
  const dash = csp(await c.get('/sync/complete', { expectNonJson: true }));
  assert.deepEqual(dash['script-src'], ["'self'"]);
});

finalChecks(() => [srv, ...extra]);
