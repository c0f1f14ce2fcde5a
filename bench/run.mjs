// make bench: flamingo-syncd against the ceiling of this machine, in one
// run. Starts an optimised server on a fresh SQLite file (production
// durability: WAL, synchronous=FULL), seeds accounts, devices and blobs,
// and drives it with wrk; in the same run and with the same wrk settings,
// the references: nginx answering the same JSON from memory, a bare Node.js
// http server doing the same, and the raw durable write rate of SQLite.
// Cases are interleaved round by round and medians reported. The durable
// writes run twice on SQLite: with group commit as configured by default,
// and with WRITE_BATCH_MAX=1 (each write its own commit) as the reference
// for it. Then 10,000
// concurrent event streams: idle RSS and CPU, and the delay from a PUT's
// answer to its event at every stream of that user.
//
// Writes bench/results/latest.md and prints it.
//   node bench/run.mjs [--rounds N] [--seconds S] [--streams N]
//
// Figures: requests/s and latency from wrk; CPU per request from the
// server's utime+stime in /proc over the run divided by its requests (on
// two cores wrk competes with the server, so the rate is noisy and the CPU
// per request is the steadier figure).

import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const BIN = process.env.BENCH_SERVER || path.join(ROOT, 'build/bench/flamingo-syncd');
const RAW = process.env.BENCH_RAW_STORE || path.join(ROOT, 'build/bench/raw_store');
const LUA = path.join(ROOT, 'bench/wrk/request.lua');
const OUT = path.join(ROOT, 'bench/results/latest.md');

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const ROUNDS = arg('rounds', 3);
const SECONDS = arg('seconds', 5);
const STREAMS = arg('streams', 10000);
const CONNS = 64;
const THREADS = 2;
// Set by scripts/pg-test-cluster run (make bench): the server cases run a
// second time on PostgreSQL.
const PG = process.env.PG_TEST_CONNINFO || '';
const PG_BIN = process.env.PG_BIN || '/usr/lib/postgresql/15/bin';
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'flm-bench-'));
const children = new Set();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN; };
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.ceil(p / 100 * s.length) - 1)] : NaN; };

function cleanup() {
  for (const c of children) {
    // nginx's workers too: killing its master alone leaves them running
    for (const pid of childPids(c.pid)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
  if (!process.env.BENCH_KEEP) { try { fs.rmSync(tmp, { recursive: true, force: true }); } catch { /* ignore */ } }
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

// ---- processes and /proc ----------------------------------------------------

function cpuTicks(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime, stime
}
function rssKb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}
/** Private (Private_Clean + Private_Dirty) and proportional set size, kB. */
function privateKb(pid) {
  const t = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const g = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(t)?.[1] ?? NaN);
  return { priv: g('Private_Clean') + g('Private_Dirty'), pss: g('Pss') };
}
function childPids(pid) {
  const r = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map(Number);
}

function startProc(cmd, args, env = {}, logName = null) {
  const log = logName ? fs.openSync(path.join(tmp, logName), 'w') : 'ignore';
  const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', log] });
  children.add(p);
  p.on('exit', () => children.delete(p));
  return p;
}

async function waitHttp(url, ms = 10000) {
  const t0 = Date.now();
  for (;;) {
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      if (r.status === 200) return;
    } catch { /* not yet */ }
    if (Date.now() - t0 > ms) throw new Error(`${url} never answered 200`);
    await sleep(1);
  }
}

function firstLine(p, re) {
  return new Promise((resolve, reject) => {
    let buf = '';
    p.stdout.on('data', (d) => {
      buf += d;
      const m = re.exec(buf);
      if (m) resolve(m);
    });
    p.on('exit', (c) => reject(new Error(`exited ${c} before printing ${re}`)));
  });
}

// ---- the server ---------------------------------------------------------------

/** A fresh database: a SQLite file, or a new database on the cluster. */
function freshDatabase(port, pg) {
  if (!pg) return `sqlite:${path.join(tmp, `sync-${port}.db`)}`;
  const name = `bench_${port}`;
  const r = spawnSync(path.join(PG_BIN, 'psql'), ['-X', '-q', '-d', `${PG} dbname=postgres`,
    '-c', `CREATE DATABASE ${name}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`CREATE DATABASE: ${r.stderr}`);
  return `${PG} dbname=${name}`;
}

async function startServer(extraEnv = {}, { pg = false } = {}) {
  const port = await freePort();
  const db = freshDatabase(port, pg);
  const env = {
    LISTEN: `127.0.0.1:${port}`, DATABASE_URL: db,
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    // the references keep no access log either
    LOG_REQUESTS: 'false',
    // the benchmark makes its own traffic: limits meant for abuse are off
    RATE_SIGNUP: '0/3600', RATE_INIT: '0/600', HASH_THREADS: '2',
    // wrk's 64 connections and the seeding client's come from one address
    MAX_CONNECTIONS_PER_IP: '1024',
    ...extraEnv,
  };
  const t0 = process.hrtime.bigint();
  const p = startProc(BIN, [], env, `server-${port}.log`);
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}/readyz`);
  const readyMs = Number(process.hrtime.bigint() - t0) / 1e6;
  return { p, url, port, db, readyMs };
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function api(url, method, p, body, headers = {}) {
  const r = await fetch(url + p, {
    method, headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  const json = text ? JSON.parse(text) : {};
  if (!json.success) throw new Error(`${method} ${p} -> ${r.status} ${text.slice(0, 200)}`);
  return { data: json.data, res: r };
}

/** An account with one device session; returns {bearer, cookie}. */
async function account(url, i) {
  const email = `bench${i}-${crypto.randomBytes(3).toString('hex')}@example.com`;
  const { res } = await api(url, 'POST', '/api/auth/signup', { email, password: 'bench-password-1' });
  const cookie = res.headers.getSetCookie()[0].split(';')[0];
  const origin = new URL(url).origin;
  const { data: init } = await api(url, 'POST', '/api/sync/init', { device_name: `bench-${i}`, platform: 'linux' });
  await api(url, 'POST', '/api/sync/claim', { user_code: init.user_code }, { cookie, origin });
  const { data: tok } = await api(url, 'POST', '/api/sync/token', { temp_token: init.temp_token });
  return { bearer: tok.session_token, cookie };
}

// ---- wrk ----------------------------------------------------------------------

function wrk(url, { method = 'GET', p = '/', token = '', bodyFile = '', contentType = 'application/json' } = {}) {
  const r = spawnSync('wrk', ['-t', String(THREADS), '-c', String(CONNS), '-d', `${SECONDS}s`,
    '--timeout', '10s', '-s', LUA, url + p], {
    encoding: 'utf8',
    env: { ...process.env, BENCH_METHOD: method, BENCH_PATH: p, BENCH_TOKEN: token, BENCH_BODY_FILE: bodyFile, BENCH_CONTENT_TYPE: contentType },
  });
  const m = /BENCH (\d+) ([\d.]+) (\d+) (\d+) (\d+) (\d+)/.exec(r.stdout);
  if (!m) throw new Error(`wrk failed: ${r.stdout}${r.stderr}`);
  const [, n, secs, p50, p99, sockErr, non2xx] = m.map(Number);
  if (sockErr > 0 || non2xx > 0) throw new Error(`${method} ${p}: ${non2xx} non-2xx answers, ${sockErr} socket errors`);
  return { n, rps: n / secs, p50, p99 };
}

/** Runs wrk against pids, measuring their CPU and RSS. */
function measure(pids, url, opts) {
  const c0 = pids.reduce((a, pid) => a + cpuTicks(pid), 0);
  const w = wrk(url, opts);
  const c1 = pids.reduce((a, pid) => a + cpuTicks(pid), 0);
  const rss = pids.reduce((a, pid) => a + rssKb(pid), 0);
  return { ...w, cpuUs: ((c1 - c0) / CLK_TCK) * 1e6 / w.n, rssKb: rss };
}

function rawStore(bytes) {
  const db = path.join(tmp, `raw-${crypto.randomBytes(4).toString('hex')}.db`);
  const r = spawnSync(RAW, [db, String(bytes), String(SECONDS)], { encoding: 'utf8' });
  const m = /^(\d+) ([\d.]+) ([\d.]+)/.exec(r.stdout);
  if (!m) throw new Error(`raw_store failed: ${r.stdout}${r.stderr}`);
  return { rps: Number(m[1]) / Number(m[2]), cpuUs: Number(m[3]) * 1e6 / Number(m[1]) };
}

// ---- event streams ----------------------------------------------------------

/**
 * Opens n streams over the accounts (n / accounts each) with raw sockets,
 * measures idle RSS and CPU, then for `writes` PUTs the delay from the
 * PUT's answer to its event at every stream of that account.
 */
async function streamsBench(n, perUser, extraEnv = {}) {
  const users = Math.ceil(n / perUser);
  const srv = await startServer({
    STREAMS_MAX: String(n), STREAMS_PER_USER: String(perUser),
    MAX_CONNECTIONS: String(n + 200), MAX_CONNECTIONS_PER_IP: String(n + 200),
    ...extraEnv,
  });
  const pid = srv.p.pid;
  const accounts = [];
  for (let i = 0; i < users; i += 10) {
    accounts.push(...await Promise.all(Array.from({ length: Math.min(10, users - i) }, (_, j) => account(srv.url, i + j))));
  }
  const rssBefore = rssKb(pid);
  const socks = [];
  const seen = new Map(); // event id -> [arrival ms]
  const open = (acc) => new Promise((resolve, reject) => {
    const s = net.connect(srv.port, '127.0.0.1');
    let buf = '';
    let ok = false;
    s.setEncoding('utf8');
    s.on('connect', () => s.write(`GET /api/sync/events/stream HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer ${acc.bearer}\r\n\r\n`));
    s.on('data', (d) => {
      const t = performance.now();
      buf += d;
      if (!ok && buf.includes(': connected')) { ok = true; resolve(s); }
      let m;
      const re = /id: (\d+)\nevent: data_updated/g;
      while ((m = re.exec(buf)) !== null) {
        const id = Number(m[1]);
        if (!seen.has(id)) seen.set(id, []);
        seen.get(id).push(t);
      }
      const cut = buf.lastIndexOf('\n\n');
      if (cut >= 0) buf = buf.slice(cut + 2);
    });
    s.on('error', reject);
    s.on('close', () => { if (!ok) reject(new Error('stream closed')); });
  });
  for (let i = 0; i < n; i += 500) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 500); j++) batch.push(open(accounts[j % users]));
    socks.push(...await Promise.all(batch));
  }
  // idle: heartbeats only
  await sleep(2000);
  const idleSecs = 20;
  const c0 = cpuTicks(pid);
  await sleep(idleSecs * 1000);
  const idleCpuPct = ((cpuTicks(pid) - c0) / CLK_TCK) / idleSecs * 100;
  const rssIdle = rssKb(pid);
  // writes: each by another account; delay at each of its streams
  const delays = [];
  const blob = crypto.randomBytes(4096).toString('base64');
  for (let w = 0; w < 30; w++) {
    const acc = accounts[(w * 7) % users];
    const before = new Set(seen.keys());
    await api(srv.url, 'PUT', '/api/sync/data/history', { encrypted_data: blob },
      { authorization: `Bearer ${acc.bearer}` });
    const tAnswer = performance.now();
    const t0 = Date.now();
    for (;;) {
      // one write at a time: its event is the one id not seen before
      const id = [...seen.keys()].find((k) => !before.has(k));
      if (id !== undefined && seen.get(id).length >= perUser) {
        for (const t of seen.get(id)) delays.push(Math.max(0, t - tAnswer));
        break;
      }
      if (Date.now() - t0 > 10000) throw new Error('an event did not reach every stream of its account');
      await sleep(1);
    }
    await sleep(50);
  }
  for (const s of socks) s.destroy();
  srv.p.kill('SIGTERM');
  await new Promise((r) => srv.p.on('exit', r));
  return {
    n, users, perUser, rssBeforeKb: rssBefore, rssIdleKb: rssIdle, idleCpuPct,
    p50: pct(delays, 50), p99: pct(delays, 99), samples: delays.length,
  };
}

// ---- the run --------------------------------------------------------------------

async function main() {
  for (const f of [BIN, RAW]) if (!fs.existsSync(f)) throw new Error(`missing ${f}: run make bench`);
  const started = new Date().toISOString();
  // start-up and idle figures, median of 5 fresh starts
  const ready = [];
  const idle = [];
  const idlePriv = [];
  const idlePss = [];
  for (let i = 0; i < 5; i++) {
    const s = await startServer();
    ready.push(s.readyMs);
    await sleep(200);
    idle.push(rssKb(s.p.pid));
    const pv = privateKb(s.p.pid);
    idlePriv.push(pv.priv);
    idlePss.push(pv.pss);
    s.p.kill('SIGTERM');
    await new Promise((r) => s.p.on('exit', r));
  }

  const blob4k = crypto.randomBytes(4096).toString('base64');
  const blob64k = crypto.randomBytes(65536).toString('base64');
  /** A server with 20 accounts, each with a device and five 4 KiB blobs. */
  const seeded = async (pg, env = {}) => {
    const srv = await startServer(env, { pg });
    const accounts = [];
    for (let i = 0; i < 20; i += 10) {
      accounts.push(...await Promise.all(Array.from({ length: 10 }, (_, j) => account(srv.url, i + j))));
    }
    for (const a of accounts) {
      for (const t of ['history', 'environment', 'secret', 'collection', 'setting']) {
        await api(srv.url, 'PUT', `/api/sync/data/${t}`, { encrypted_data: blob4k }, { authorization: `Bearer ${a.bearer}` });
      }
    }
    return { srv, accounts };
  };
  const { srv, accounts } = await seeded(false);
  // the same server with group commit off, for the durable writes
  const single = await seeded(false, { WRITE_BATCH_MAX: '1' });
  const pgSeed = PG ? await seeded(true) : null;
  const dev = accounts[0];
  // the answer the references repeat: the very bytes of the GET
  const getRes = await fetch(`${srv.url}/api/sync/data/history`, { headers: { authorization: `Bearer ${dev.bearer}` } });
  const getBody = Buffer.from(await getRes.arrayBuffer());
  const bodyFile = path.join(tmp, 'get-body.json');
  fs.writeFileSync(bodyFile, getBody);
  const put4k = path.join(tmp, 'put-4k.json');
  const put64k = path.join(tmp, 'put-64k.json');
  const initBody = path.join(tmp, 'init.json');
  fs.writeFileSync(put4k, JSON.stringify({ encrypted_data: blob4k }));
  fs.writeFileSync(put64k, JSON.stringify({ encrypted_data: blob64k }));
  const put4kRaw = path.join(tmp, 'put-4k.bin');
  fs.writeFileSync(put4kRaw, Buffer.from(blob4k, 'base64'));
  fs.writeFileSync(initBody, JSON.stringify({ device_name: 'bench', platform: 'linux' }));

  // references
  const nginxPort = await freePort();
  const ngDir = path.join(tmp, 'nginx');
  fs.mkdirSync(ngDir);
  // nginx's workers drop root: they must be able to read the body
  fs.chmodSync(tmp, 0o755);
  fs.chmodSync(ngDir, 0o755);
  // nginx's configuration takes no string over 4 KiB, so the body is a
  // file, held open and in the page cache (open_file_cache, sendfile)
  fs.writeFileSync(path.join(ngDir, 'body.json'), getBody);
  fs.writeFileSync(path.join(ngDir, 'nginx.conf'), `worker_processes ${THREADS};
daemon off;
pid ${ngDir}/nginx.pid;
error_log ${ngDir}/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${ngDir}; proxy_temp_path ${ngDir}; fastcgi_temp_path ${ngDir};
  uwsgi_temp_path ${ngDir}; scgi_temp_path ${ngDir};
  keepalive_requests 1000000;
  sendfile on;
  open_file_cache max=16 inactive=3600s;
  open_file_cache_valid 3600s;
  server {
    listen 127.0.0.1:${nginxPort};
    root ${ngDir};
    location / { default_type "application/json; charset=utf-8"; try_files /body.json =404; }
  }
}
`);
  const ng = startProc('nginx', ['-p', ngDir, '-c', path.join(ngDir, 'nginx.conf')], {}, 'nginx.log');
  const ngUrl = `http://127.0.0.1:${nginxPort}`;
  await waitHttp(ngUrl);
  const ngPids = [ng.pid, ...childPids(ng.pid)];
  const nodeRef = startProc(process.execPath, [path.join(ROOT, 'bench/node-ref.mjs'), bodyFile], {}, 'node-ref.log');
  const [, nodePort] = await firstLine(nodeRef, /listening (\d+)/);
  const nodeUrl = `http://127.0.0.1:${nodePort}`;
  await waitHttp(nodeUrl);

  /** The server's cases, on one seeded server (keys prefixed). */
  function serverCases({ srv: s, accounts: acc }, prefix, suffix, writesOnly = false) {
    const pid = s.p.pid;
    return [
      { key: `${prefix}get`, label: `GET /api/sync/data/history (4 KiB blob, bearer)${suffix}`, run: () => measure([pid], s.url, { p: '/api/sync/data/history', token: acc[0].bearer }) },
      { key: `${prefix}config`, label: `GET /api/sync/config (bearer)${suffix}`, run: () => measure([pid], s.url, { p: '/api/sync/config', token: acc[0].bearer }) },
      { key: `${prefix}put4k`, label: `PUT /api/sync/data/history 4 KiB, durable${suffix}`, write: true, run: () => measure([pid], s.url, { method: 'PUT', p: '/api/sync/data/history', token: acc[1].bearer, bodyFile: put4k }) },
      { key: `${prefix}put4kraw`, label: `PUT /api/sync/data/history 4 KiB as application/octet-stream, durable${suffix}`, write: true, run: () => measure([pid], s.url, { method: 'PUT', p: '/api/sync/data/history', token: acc[3].bearer, bodyFile: put4kRaw, contentType: 'application/octet-stream' }) },
      { key: `${prefix}put64k`, label: `PUT /api/sync/data/history 64 KiB, durable${suffix}`, write: true, run: () => measure([pid], s.url, { method: 'PUT', p: '/api/sync/data/history', token: acc[2].bearer, bodyFile: put64k }) },
      { key: `${prefix}init`, label: `POST /api/sync/init (device flow), durable${suffix}`, write: true, run: () => measure([pid], s.url, { method: 'POST', p: '/api/sync/init', bodyFile: initBody }) },
    ].filter((c) => !writesOnly || c.key.startsWith(`${prefix}put`));
  }
  /** Writing transactions per durable commit, from /metrics. */
  async function perCommit(s) {
    // a kept-alive socket of the seeding may have timed out meanwhile
    const get1 = async () => (await fetch(`${s.url}/metrics`)).text();
    const text = await get1().catch(get1);
    const get = (name) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
    return { txs: get('flamingo_store_write_transactions_total'), commits: get('flamingo_store_commits_total') };
  }
  const spid = srv.p.pid;
  const cases = [
    { key: 'nginx', label: 'nginx, same JSON from memory (ceiling)', run: () => measure(ngPids, ngUrl) },
    { key: 'node', label: 'bare Node.js http, same JSON from memory', run: () => measure([nodeRef.pid], nodeUrl) },
    ...serverCases({ srv, accounts }, '', ''),
    ...serverCases(single, 'b1', ' (WRITE_BATCH_MAX=1)', true),
    ...(pgSeed ? serverCases(pgSeed, 'pg', ' (PostgreSQL)') : []),
    { key: 'raw4k', label: 'raw SQLite upsert 4 KiB, WAL + synchronous=FULL', run: () => rawStore(4096) },
    { key: 'raw64k', label: 'raw SQLite upsert 64 KiB, WAL + synchronous=FULL', run: () => rawStore(65536) },
  ];
  const results = Object.fromEntries(cases.map((c) => [c.key, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of cases) {
      process.stderr.write(`round ${r + 1}/${ROUNDS}: ${c.key}\n`);
      results[c.key].push(c.run());
    }
  }
  const med = {};
  for (const c of cases) {
    const xs = results[c.key];
    med[c.key] = Object.fromEntries(['rps', 'p50', 'p99', 'cpuUs', 'rssKb'].map((k) => [k, median(xs.map((x) => x[k]).filter((v) => v !== undefined))]));
  }
  const hwm = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${spid}/status`, 'utf8'))?.[1];
  const grouped = await perCommit(srv);
  const ungrouped = await perCommit(single.srv);
  for (const p of [srv.p, single.srv.p, pgSeed?.srv.p, ng, nodeRef].filter(Boolean)) {
    const gone = new Promise((resolve) => p.on('exit', resolve));
    p.kill('SIGTERM');
    await gone;
  }

  // with the default connection memory, and with the smaller one that
  // docs/OPERATIONS.md suggests for servers that mostly hold streams
  const sse = [];
  for (const mem of STREAMS > 0 ? [null, 8192] : []) {
    process.stderr.write(`streams: ${STREAMS}, CONNECTION_MEMORY_BYTES ${mem ?? 'default'}\n`);
    const r = await streamsBench(STREAMS, 50, mem ? { CONNECTION_MEMORY_BYTES: String(mem) } : {});
    sse.push({ ...r, mem: mem ? `${mem / 1024} KiB` : 'default (16 KiB)' });
  }

  // ---- the report ----
  const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '–');
  const ms = (us) => (Number.isFinite(us) ? (us / 1000).toFixed(2) : '–');
  const lines = [];
  lines.push('# Benchmark results', '');
  lines.push(`Run ${started} on ${os.cpus().length} × ${os.cpus()[0]?.model?.trim()}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}.`);
  lines.push(`wrk -t${THREADS} -c${CONNS} -d${SECONDS}s on loopback; ${ROUNDS} rounds, every case once per round (interleaved), medians shown.`);
  if (PG) lines.push('PostgreSQL cases: a private PostgreSQL 15 cluster on the same machine with fsync=on and full_page_writes=on; the server sets synchronous_commit=on. Their CPU per request is flamingo-syncd\'s alone (PostgreSQL\'s own processes not counted), and their "rate vs raw store" compares with the raw SQLite rate.');
  lines.push('The server runs with its production durability (SQLite WAL, synchronous=FULL), request logging off (as nginx here), rate limits and the per-IP connection limit off (all load comes from one address).', '');
  lines.push('| case | req/s | p50 ms | p99 ms | CPU µs/req | RSS MB | rate vs nginx | rate vs Node.js | CPU vs nginx | CPU vs Node.js | rate vs raw store |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const c of cases) {
    const m = med[c.key];
    const raw = c.key.endsWith('put64k') ? med.raw64k.rps : med.raw4k.rps;
    const isRaw = c.key.startsWith('raw');
    lines.push(`| ${c.label} | ${f(m.rps)} | ${isRaw ? '–' : ms(m.p50)} | ${isRaw ? '–' : ms(m.p99)} | ${f(m.cpuUs, 1)} | ${isRaw ? '–' : f(m.rssKb / 1024, 1)} | ${isRaw ? '–' : f(m.rps / med.nginx.rps * 100) + ' %'} | ${isRaw ? '–' : f(m.rps / med.node.rps * 100) + ' %'} | ${isRaw ? '–' : f(m.cpuUs / med.nginx.cpuUs, 2) + '×'} | ${isRaw ? '–' : f(m.cpuUs / med.node.cpuUs, 2) + '×'} | ${c.write ? f(m.rps / raw * 100) + ' %' : '–'} |`);
  }
  lines.push('');
  lines.push(`- Start to \`/readyz\` 200: median ${f(median(ready), 1)} ms of 5 starts (${ready.map((x) => x.toFixed(1)).join(', ')}).`);
  lines.push(`- Idle RSS after start: median ${f(median(idle) / 1024, 1)} MB, of which the process's own (private) memory is ${f(median(idlePriv) / 1024, 1)} MB and the rest shared library pages (PSS ${f(median(idlePss) / 1024, 1)} MB); peak RSS over the whole load run: ${f(Number(hwm) / 1024, 1)} MB.`);
  lines.push(`- SQLite writing transactions per durable commit over the whole run (seeding included; \`/metrics\`): ${f(grouped.txs / grouped.commits, 2)} with the default WRITE_BATCH_MAX (${grouped.txs} transactions, ${grouped.commits} commits), ${f(ungrouped.txs / ungrouped.commits, 2)} with WRITE_BATCH_MAX=1 (${ungrouped.txs}, ${ungrouped.commits}).`);
  lines.push(`- Each round per case: ${SECONDS} s; all rounds: ${Object.entries(results).map(([k, v]) => `${k} ${v.map((x) => f(x.rps)).join('/')}`).join('; ')} req/s.`);
  if (sse.length) {
    const s0 = sse[0];
    lines.push('', '## Event streams', '');
    lines.push(`${s0.n} concurrent streams (${s0.users} accounts × ${s0.perUser} streams each, raw sockets from one Node.js process), heartbeat every 15 s; once with the default \`CONNECTION_MEMORY_BYTES\` (16 KiB) and once with 8 KiB.`, '');
    lines.push(`| figure | ${sse.map((x) => x.mem).join(' | ')} |`, `|---|${sse.map(() => '---:').join('|')}|`);
    const row = (label, fn) => lines.push(`| ${label} | ${sse.map(fn).join(' | ')} |`);
    row('server RSS before the streams (accounts seeded)', (x) => `${f(x.rssBeforeKb / 1024, 1)} MB`);
    row(`server RSS with ${s0.n} idle streams`, (x) => `${f(x.rssIdleKb / 1024, 1)} MB`);
    row('RSS per stream', (x) => `${f((x.rssIdleKb - x.rssBeforeKb) / x.n, 1)} KB`);
    row('server CPU while idle (20 s, heartbeats only)', (x) => `${f(x.idleCpuPct, 2)} % of one core`);
    row('PUT answer → event at every stream of that account, p50', (x) => `${f(x.p50, 2)} ms`);
    row('same, p99', (x) => `${f(x.p99, 2)} ms`);
    row('samples', (x) => `${x.samples} (30 PUTs × ${x.perUser} streams)`);
  }
  lines.push('');
  const text = lines.join('\n');
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  const notes = fs.existsSync(OUT) ? (/\n## Analysis\n[\s\S]*$/.exec(fs.readFileSync(OUT, 'utf8'))?.[0] ?? '') : '';
  fs.writeFileSync(OUT, text + notes);
  console.log(text);
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
