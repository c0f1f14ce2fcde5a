// An HTTP client for the API suite: base URL, cookie jar, bearer token and
// Origin handling, JSON helpers, and bookkeeping of every secret seen and of
// every response that breaks the rules common to all responses.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';

export const TYPES = ['history', 'environment', 'secret', 'collection', 'setting'];
export const TEMP_TOKEN_RE = /^flm_temp_[0-9a-f]{32}$/;
export const SESSION_TOKEN_RE = /^flm_sync_[0-9a-f]{32}$/;
export const USER_CODE_RE = /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/;
export const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
export const COOKIE_NAME = 'flm_session';

export function rand(n = 6) {
  return crypto.randomBytes(n).toString('hex');
}
export function uniqueEmail(prefix = 'user') {
  return `${prefix}-${rand()}@example.com`;
}
export function uniquePassword() {
  return `pw-${rand(12)}-Correct-Horse`;
}
export function b64(buf) {
  return Buffer.from(buf).toString('base64');
}
export function randomBytes(n) {
  return crypto.randomBytes(n);
}

function describeRes(res) {
  const body = res.text === undefined ? '' : res.text.slice(0, 600);
  return `${res.method} ${res.path} -> ${res.status} ${body}`;
}

/** Parses one Set-Cookie header into {name, value, attrs (lower-cased keys)}. */
export function parseSetCookie(sc) {
  const parts = sc.split(';').map((p) => p.trim());
  const [nv, ...rest] = parts;
  const eq = nv.indexOf('=');
  const cookie = { name: nv.slice(0, eq), value: nv.slice(eq + 1), attrs: {}, raw: sc };
  for (const a of rest) {
    if (!a) continue;
    const i = a.indexOf('=');
    if (i < 0) cookie.attrs[a.toLowerCase()] = true;
    else cookie.attrs[a.slice(0, i).toLowerCase()] = a.slice(i + 1);
  }
  return cookie;
}

export class Client {
  /**
   * srv: a Server. opts.bearer: a session token; opts.sendOrigin: send the
   * public Origin on state-changing requests (web clients do, like a
   * browser; default true).
   */
  constructor(srv, { bearer = null, sendOrigin = true, userAgent, jar = true } = {}) {
    this.srv = srv;
    this.jar = jar; // false: never keep cookies (an anonymous caller)
    this.bearer = bearer;
    this.sendOrigin = sendOrigin;
    this.userAgent = userAgent;
    this.cookies = new Map();
    if (bearer) srv.addSecret(bearer);
  }

  get base() { return this.srv.url; }

  cookieHeader() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /** A copy with the same cookies (another tab of the same browser). */
  clone() {
    const c = new Client(this.srv, { bearer: this.bearer, sendOrigin: this.sendOrigin, userAgent: this.userAgent });
    c.cookies = new Map(this.cookies);
    Object.assign(c, { user: this.user, email: this.email, password: this.password });
    return c;
  }

  /**
   * opts: json (object → JSON body), body (string|Buffer), contentType,
   * headers, origin (string | null = omit; default: the public origin on
   * mutations when sendOrigin), auth (false = send neither cookie nor
   * bearer), timeoutMs.
   */
  async request(method, path, opts = {}) {
    const headers = {};
    let body;
    if (opts.json !== undefined) {
      body = JSON.stringify(opts.json);
      headers['content-type'] = 'application/json';
    } else if (opts.body !== undefined) {
      body = opts.body;
    }
    if (opts.contentType !== undefined) {
      if (opts.contentType === null) delete headers['content-type'];
      else headers['content-type'] = opts.contentType;
    }
    if (opts.auth !== false) {
      if (this.bearer) headers.authorization = `Bearer ${this.bearer}`;
      if (this.cookies.size) headers.cookie = this.cookieHeader();
    }
    const mutation = !['GET', 'HEAD', 'OPTIONS'].includes(method);
    if (opts.origin !== undefined) {
      if (opts.origin !== null) headers.origin = opts.origin;
    } else if (mutation && this.sendOrigin) {
      headers.origin = this.srv.origin;
    }
    if (this.userAgent) headers['user-agent'] = this.userAgent;
    Object.assign(headers, opts.headers || {});
    for (const [k, v] of Object.entries(headers)) if (v === null || v === undefined) delete headers[k];

    const url = this.base + path;
    const r = await fetch(url, {
      method, headers, body, redirect: 'manual',
      signal: AbortSignal.timeout(opts.timeoutMs ?? 30000),
    });
    const buf = Buffer.from(await r.arrayBuffer());
    const res = {
      method, path, status: r.status, headers: r.headers, buf,
      text: buf.toString('utf8'), json: undefined,
      setCookies: r.headers.getSetCookie().map(parseSetCookie),
    };
    const ct = r.headers.get('content-type') || '';
    if (/json/i.test(ct)) {
      try { res.json = JSON.parse(res.text); } catch { res.json = undefined; }
    }
    res.data = res.json?.data;
    res.error = res.json?.error;
    res.message = res.json?.message;
    res.describe = () => describeRes(res);

    for (const c of res.setCookies) {
      this.srv.addSecret(c.value);
      const maxAge = c.attrs['max-age'];
      const expired = (maxAge !== undefined && Number(maxAge) <= 0) ||
        (c.attrs.expires && Date.parse(c.attrs.expires) < Date.now()) || c.value === '';
      if (expired) this.cookies.delete(c.name);
      else if (this.jar) this.cookies.set(c.name, c.value);
    }
    if (res.data && typeof res.data === 'object') {
      for (const k of ['session_token', 'temp_token']) {
        if (typeof res.data[k] === 'string') this.srv.addSecret(res.data[k]);
      }
    }
    if (!opts.noCommonChecks) checkCommonRules(this.srv, res, opts);
    return res;
  }

  get(path, opts) { return this.request('GET', path, opts); }
  post(path, json, opts = {}) { return this.request('POST', path, json === undefined ? opts : { ...opts, json }); }
  put(path, json, opts = {}) { return this.request('PUT', path, json === undefined ? opts : { ...opts, json }); }
  patch(path, json, opts = {}) { return this.request('PATCH', path, json === undefined ? opts : { ...opts, json }); }
  del(path, opts) { return this.request('DELETE', path, opts); }
}

/**
 * Rules every response follows (recorded, asserted by a test at the end of
 * each file, so one header bug does not mask every other result).
 */
function checkCommonRules(srv, res, opts) {
  srv.responses++;
  const v = (msg) => srv.violations.push(`${res.method} ${res.path} -> ${res.status}: ${msg}`);
  const h = res.headers;
  if ((h.get('x-content-type-options') || '').toLowerCase() !== 'nosniff') v('no X-Content-Type-Options: nosniff');
  if (!h.get('x-request-id')) v('no X-Request-Id');
  if (res.status >= 500 && res.status !== 503) v(`server error: ${res.text.slice(0, 200)}`);
  const isApi = res.path.startsWith('/api/');
  if (isApi) {
    if (h.get('access-control-allow-origin') !== '*') v(`Access-Control-Allow-Origin is ${h.get('access-control-allow-origin')}`);
    if (h.get('access-control-allow-credentials') !== null) v('Access-Control-Allow-Credentials present');
  }
  const ct = h.get('content-type') || '';
  const bodyless = res.status === 204 || res.status === 304 || res.method === 'HEAD';
  if (/json/i.test(ct)) {
    if (ct.replace(/\s+/g, '').toLowerCase() !== 'application/json;charset=utf-8') v(`Content-Type is "${ct}"`);
    const j = res.json;
    if (!j || typeof j !== 'object' || Array.isArray(j)) {
      v('JSON body is not an object');
    } else if (j.success === true) {
      if (!('data' in j)) v('success envelope without data');
      if (res.status >= 400) v('success:true on an error status');
    } else if (j.success === false) {
      if (typeof j.error !== 'string' || !/^[a-z][a-z0-9_]*$/.test(j.error)) v(`bad error code ${JSON.stringify(j.error)}`);
      if (typeof j.message !== 'string' || !j.message) v('error envelope without message');
      if (res.status < 400) v('success:false on a non-error status');
    } else {
      v('envelope without boolean success');
    }
  } else if (isApi && !bodyless && !opts.expectNonJson) {
    v(`non-JSON Content-Type "${ct}" on an API response`);
  }
}

// ---- assertions -----------------------------------------------------------

/** Asserts a success envelope with the given status; returns data. */
export function expectOk(res, status = 200) {
  assert.equal(res.status, status, `expected ${status}: ${res.describe()}`);
  assert.ok(res.json && res.json.success === true, `expected success envelope: ${res.describe()}`);
  assert.ok('data' in res.json, `no data: ${res.describe()}`);
  return res.data;
}

/** Asserts an error envelope with the given status and code. */
export function expectError(res, status, code) {
  assert.equal(res.status, status, `expected ${status} ${code}: ${res.describe()}`);
  assert.ok(res.json, `expected a JSON error body: ${res.describe()}`);
  assert.equal(res.json.success, false, `expected success:false: ${res.describe()}`);
  assert.equal(res.json.error, code, `expected error ${code}: ${res.describe()}`);
  assert.equal(typeof res.json.message, 'string', `no message: ${res.describe()}`);
  return res.json;
}

/** 400 invalid_request whose message names the field. */
export function expectInvalid(res, field) {
  const j = expectError(res, 400, 'invalid_request');
  if (field) {
    assert.ok(j.message.includes(field), `message should name "${field}": ${res.describe()}`);
  }
  return j;
}

/** Retry-After: a positive integer number of seconds. */
export function expectRetryAfter(res) {
  const ra = res.headers.get('retry-after');
  assert.ok(ra !== null, `no Retry-After: ${res.describe()}`);
  assert.match(ra, /^\d+$/, `Retry-After not an integer: ${ra}`);
  assert.ok(Number(ra) >= 1, `Retry-After < 1: ${ra}`);
  return Number(ra);
}

export function expectNoStore(res) {
  const cc = (res.headers.get('cache-control') || '').toLowerCase();
  assert.ok(cc.split(',').map((s) => s.trim()).includes('no-store'),
    `expected Cache-Control: no-store, got "${cc}": ${res.method} ${res.path} -> ${res.status}`);
}

export function expectTimestamp(s, what = 'timestamp') {
  assert.equal(typeof s, 'string', `${what} should be a string, got ${JSON.stringify(s)}`);
  assert.match(s, RFC3339_RE, `${what} should be RFC 3339 UTC`);
  assert.ok(!Number.isNaN(Date.parse(s)), `${what} should parse`);
}

/** Asserts user is {id, email, created_at}. */
export function expectUser(user, email) {
  assert.ok(user && typeof user === 'object', `user: ${JSON.stringify(user)}`);
  assert.ok(typeof user.id === 'string' || typeof user.id === 'number', 'user.id');
  assert.notEqual(String(user.id), '');
  if (email !== undefined) assert.equal(user.email, email);
  expectTimestamp(user.created_at, 'user.created_at');
  assert.equal(user.password, undefined);
  assert.equal(user.password_hash, undefined);
}

// ---- flows -------------------------------------------------------------

/** Signs a user up; returns a logged-in web client (cookie) with .user, .email, .password. */
export async function signup(srv, { email = uniqueEmail(), password = uniquePassword(), turnstile_token, userAgent } = {}) {
  srv.addSecret(password);
  const c = new Client(srv, { userAgent });
  const body = { email, password };
  if (turnstile_token !== undefined) body.turnstile_token = turnstile_token;
  const res = await c.post('/api/auth/signup', body);
  const data = expectOk(res, 201);
  assert.ok(c.cookies.get(COOKIE_NAME), `signup set no ${COOKIE_NAME} cookie: ${res.setCookies.map((x) => x.raw)}`);
  c.user = data.user;
  c.email = email.toLowerCase();
  c.password = password;
  return c;
}

/** Logs in; returns a new web client. */
export async function login(srv, email, password, { userAgent } = {}) {
  srv.addSecret(password);
  const c = new Client(srv, { userAgent });
  const res = await c.post('/api/auth/login', { email, password });
  const data = expectOk(res);
  assert.ok(c.cookies.get(COOKIE_NAME), 'login set no cookie');
  c.user = data.user;
  c.email = email.toLowerCase();
  c.password = password;
  return c;
}

/** Signup; the cookie client. (Alias kept for readability in tests.) */
export const signupAndLogin = signup;

/** POST /api/sync/init from an anonymous client; returns {anon, data}. */
export async function initDevice(srv, body = { device_name: `dev-${rand(3)}`, platform: 'linux', app_version: '1.2.3' }) {
  const anon = new Client(srv, { sendOrigin: false });
  const res = await anon.post('/api/sync/init', body);
  const data = expectOk(res, 201);
  return { anon, data, res };
}

/**
 * init → claim (by the web client, with the user code) → token.
 * Returns a bearer client with .token, .deviceId, .user, .deviceName.
 */
export async function deviceLogin(web, { device_name = `dev-${rand(3)}`, platform = 'linux', app_version = '1.2.3', userAgent } = {}) {
  const srv = web.srv;
  const { anon, data: init } = await initDevice(srv, { device_name, platform, app_version });
  const claim = await web.post('/api/sync/claim', { user_code: init.user_code });
  const claimed = expectOk(claim);
  const tok = await anon.post('/api/sync/token', { temp_token: init.temp_token });
  const t = expectOk(tok);
  assert.match(t.session_token, SESSION_TOKEN_RE);
  const dev = new Client(srv, { bearer: t.session_token, sendOrigin: false, userAgent });
  dev.token = t.session_token;
  dev.deviceId = t.device_id;
  dev.claimedDevice = claimed.device;
  dev.user = t.user;
  dev.deviceName = device_name;
  dev.web = web;
  return dev;
}

// ---- raw HTTP (for what fetch cannot do) -----------------------------------

/**
 * Sends raw bytes over a fresh TCP connection (chunks: Buffer|string, or
 * {delayMs} to pause, or {fn} to run a function between chunks). Reads until
 * the server closes or a full response with Content-Length arrived.
 * Resolves {status, headers, body, raw, closed}.
 */
export function rawRequest(srv, chunks, { timeoutMs = 10000, waitClose = false } = {}) {
  const u = new URL(srv.url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port), u.hostname);
    let data = Buffer.alloc(0);
    let done = false;
    let closed = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(parseRaw(data, closed));
    };
    const timer = setTimeout(() => {
      if (data.length) finish();
      else { done = true; sock.destroy(); reject(new Error(`raw request: no answer within ${timeoutMs} ms`)); }
    }, timeoutMs);
    sock.on('data', (d) => {
      data = Buffer.concat([data, d]);
      if (!waitClose) {
        const p = parseRaw(data, false);
        if (p.complete) finish();
      }
    });
    sock.on('end', () => { closed = true; finish(); });
    sock.on('close', () => { closed = true; finish(); });
    sock.on('error', (e) => {
      if (data.length) { closed = true; finish(); } else if (!done) { done = true; clearTimeout(timer); reject(e); }
    });
    sock.on('connect', async () => {
      for (const c of chunks) {
        if (done) return;
        if (c && c.delayMs !== undefined) await new Promise((r) => setTimeout(r, c.delayMs));
        else if (c && typeof c.fn === 'function') await c.fn();
        else sock.write(c);
      }
    });
  });
}

function parseRaw(data, closed) {
  const sep = data.indexOf('\r\n\r\n');
  if (sep < 0) return { complete: false, status: 0, headers: {}, body: Buffer.alloc(0), raw: data, closed };
  const head = data.subarray(0, sep).toString('latin1').split('\r\n');
  const status = Number(head[0].split(' ')[1]);
  const headers = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  let body = data.subarray(sep + 4);
  let complete = false;
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    complete = body.length >= n;
    body = body.subarray(0, n);
  } else if ((headers['transfer-encoding'] || '').toLowerCase() === 'chunked') {
    const dec = dechunk(body);
    complete = dec !== null;
    if (dec) body = dec;
  } else {
    complete = closed;
  }
  let json;
  try { json = JSON.parse(body.toString('utf8')); } catch { /* not JSON */ }
  return { complete, status, headers, body, json, raw: data, closed };
}

function dechunk(buf) {
  const out = [];
  let i = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', i);
    if (eol < 0) return null;
    const n = parseInt(buf.subarray(i, eol).toString('latin1'), 16);
    if (Number.isNaN(n)) return null;
    if (n === 0) return Buffer.concat(out);
    if (buf.length < eol + 2 + n + 2) return null;
    out.push(buf.subarray(eol + 2, eol + 2 + n));
    i = eol + 2 + n + 2;
  }
}

// ---- Server-Sent Events --------------------------------------------------

/**
 * Opens /api/sync/events/stream with the client's credentials. Returns
 * {res, events (array, grows), comments, next(pred, ms), ended (promise), close()}.
 */
export async function openStream(client, { lastEventId, path = '/api/sync/events/stream' } = {}) {
  const ac = new AbortController();
  const headers = { accept: 'text/event-stream' };
  if (client.bearer) headers.authorization = `Bearer ${client.bearer}`;
  if (client.cookies.size) headers.cookie = client.cookieHeader();
  if (lastEventId !== undefined) headers['last-event-id'] = String(lastEventId);
  const res = await fetch(client.base + path, { headers, signal: ac.signal });
  const st = { res, events: [], comments: [], endedFlag: false, waiters: [] };
  const notify = () => { for (const w of st.waiters.slice()) w(); };
  st.ended = (async () => {
    if (!res.body) return;
    const dec = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body) {
        buf += dec.decode(chunk, { stream: true });
        let idx;
        while ((idx = buf.search(/\r?\n\r?\n/)) >= 0) {
          const block = buf.slice(0, idx);
          buf = buf.slice(idx).replace(/^\r?\n\r?\n/, '');
          const ev = { id: undefined, event: undefined, data: [] };
          let isEvent = false;
          for (const line of block.split(/\r?\n/)) {
            if (line.startsWith(':')) { st.comments.push(line); continue; }
            const i = line.indexOf(':');
            const field = i < 0 ? line : line.slice(0, i);
            let value = i < 0 ? '' : line.slice(i + 1);
            if (value.startsWith(' ')) value = value.slice(1);
            if (field === 'id') { ev.id = value; isEvent = true; }
            else if (field === 'event') { ev.event = value; isEvent = true; }
            else if (field === 'data') { ev.data.push(value); isEvent = true; }
          }
          if (isEvent) {
            ev.raw = ev.data.join('\n');
            try { ev.json = JSON.parse(ev.raw); } catch { ev.json = undefined; }
            st.events.push(ev);
          }
          notify();
        }
      }
    } catch { /* aborted */ }
    st.endedFlag = true;
    notify();
  })();
  st.close = () => ac.abort();
  /** Waits for an event satisfying pred; resolves it or null on timeout. */
  st.waitFor = (pred, ms = 3000) => new Promise((resolve) => {
    const check = () => {
      const e = st.events.find(pred);
      if (e) { cleanup(); resolve(e); return true; }
      if (st.endedFlag) { cleanup(); resolve(null); return true; }
      return false;
    };
    const timer = setTimeout(() => { cleanup(); resolve(null); }, ms);
    const w = () => check();
    const cleanup = () => { clearTimeout(timer); st.waiters = st.waiters.filter((x) => x !== w); };
    st.waiters.push(w);
    check();
  });
  return st;
}
