// Starting and stopping real flamingo-syncd processes for the API suite.
//
// Every test file starts its own server(s) on 127.0.0.1:0 with a fresh
// SQLite file in a fresh temp dir, or, with FLAMINGO_STORE=postgres (make
// api-pg, inside scripts/pg-test-cluster run), a fresh database created on
// the private PostgreSQL cluster (PG_TEST_CONNINFO). Readiness is awaited explicitly: the
// "listening on http://..." line on stderr, then GET /readyz == 200.
// stderr (the request log) is captured so tests can grep it and print it
// when a test fails.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test as nodeTest } from 'node:test';

export const BIN = process.env.FLAMINGO_SYNCD || path.resolve(
  path.dirname(new URL(import.meta.url).pathname), '../../../build/flamingo-syncd');

const LISTEN_RE = /listening on (http:\/\/[^\s]+)/;

// FLAMINGO_SYNCD_WRAP: a command prefix for the server (make valgrind sets
// "valgrind --error-exitcode=87 ..."). FLAMINGO_SLOW=1 stretches timeouts.
const WRAP = (process.env.FLAMINGO_SYNCD_WRAP || '').split(/\s+/).filter(Boolean);
export const SLOW = process.env.FLAMINGO_SLOW === '1' ? 10 : 1;

// The storage every server of this run uses: 'sqlite' or 'postgres'.
export const STORE = process.env.FLAMINGO_STORE === 'postgres' ? 'postgres' : 'sqlite';
const PG_BIN = process.env.PG_BIN || '/usr/lib/postgresql/15/bin';
const PG_CONNINFO = process.env.PG_TEST_CONNINFO || '';
if (STORE === 'postgres' && !PG_CONNINFO) {
  throw new Error('FLAMINGO_STORE=postgres needs PG_TEST_CONNINFO (run under scripts/pg-test-cluster run)');
}

/** Runs psql on database db of the test cluster (or of the cluster at
 * conninfo); returns stdout. */
export function psql(db, sql, conninfo = PG_CONNINFO) {
  const r = spawnSync(path.join(PG_BIN, 'psql'), ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1',
    '-d', `${conninfo} dbname=${db}`, '-c', sql], { encoding: 'utf8', timeout: 30000 });
  if (r.status !== 0) throw new Error(`psql ${db}: ${r.stderr || r.error}`);
  return r.stdout;
}

/** A new, empty database on the test cluster; returns its name. */
export function createPgDatabase() {
  const name = `flm_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  psql('postgres', `CREATE DATABASE ${name}`);
  return name;
}

/** The DATABASE_URL of a database on the test cluster. */
export function pgUrl(name) {
  return `${PG_CONNINFO} dbname=${name}`;
}

/**
 * Files holding the server's stored bytes, for tests that scan them
 * (e.g. for secrets): the SQLite files of its dir, or on PostgreSQL a
 * fresh pg_dump of its database written into its dir.
 */
export function databaseFiles(srv) {
  if (STORE === 'sqlite') return fs.readdirSync(srv.dir).map((f) => path.join(srv.dir, f));
  const out = path.join(srv.dir, 'pg_dump.sql');
  const r = spawnSync(path.join(PG_BIN, 'pg_dump'), ['--no-owner', '-d', pgUrl(srv.pgdb), '-f', out],
    { encoding: 'utf8', timeout: 60000 });
  if (r.status !== 0) throw new Error(`pg_dump: ${r.stderr || r.error}`);
  return [out];
}

// Every server and temp dir this test-file process created.
const live = new Set();
const stoppedByTerm = new Set();
const tempDirs = new Set();

// Only the variables a server needs: no settings leak in from the caller.
function baseEnv() {
  const env = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'ASAN_OPTIONS',
    'UBSAN_OPTIONS', 'LSAN_OPTIONS', 'LD_LIBRARY_PATH']) {
    if (process.env[k] !== undefined) env[k] = process.env[k];
  }
  return env;
}

export function makeTempDir(prefix = 'flm-api-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until fn() (sync or async) is truthy, polling; throws after ms. */
export async function until(fn, ms = 5000 * SLOW, what = 'condition') {
  const t0 = Date.now();
  for (;;) {
    if (await fn()) return;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** One value of the server's /metrics (NaN when absent); name may carry
 * labels, e.g. flamingo_pruned_rows_total{table="audit"}. */
export async function metric(srv, name) {
  const r = await fetch(`${srv.url}/metrics`);
  const esc = name.replace(/[{}]/g, (c) => `\\${c}`);
  const m = new RegExp(`^${esc} (\\d+)$`, 'm').exec(await r.text());
  return m ? Number(m[1]) : NaN;
}

/** Runs SQL on the server's database, SQLite file or PostgreSQL; the
 * output, trimmed. */
export function sql(srv, query) {
  if (srv.pgdb) return psql(srv.pgdb, query).trim();
  const r = spawnSync('sqlite3', [srv.db, query], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sqlite3 failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** Runs the binary to completion (for --help, --version, bad settings). */
export function runCli(args, env = {}, { timeout = 15000 } = {}) {
  const r = spawnSync(BIN, args, {
    env: { ...baseEnv(), ...env }, encoding: 'utf8', timeout,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout || '', stderr: r.stderr || '', error: r.error };
}

export class Server {
  constructor({ env, dir, db, pgdb }) {
    this.env = env;
    this.dir = dir;
    this.db = db;             // the SQLite file, or the PostgreSQL DATABASE_URL
    this.pgdb = pgdb;         // the PostgreSQL database name (postgres only)
    this.url = null;          // e.g. http://127.0.0.1:41234
    this.origin = null;       // scheme://host:port of the public URL
    this.stderr = '';
    this.stdout = '';
    this.proc = null;
    this.exit = null;         // {code, signal} once exited
    this.exited = null;       // promise of {code, signal}
    // Every secret a client of this server saw (tokens, cookie values,
    // passwords): none may appear in the request log.
    this.secrets = new Set();
    // Violations of the rules every response must follow (see client.mjs).
    this.violations = [];
    this.responses = 0;
  }

  addSecret(s) {
    if (typeof s === 'string' && s.length >= 8) this.secrets.add(s);
  }

  /** Lines of stderr written so far. */
  logLines() {
    return this.stderr.split('\n').filter((l) => l.length > 0);
  }

  /** Waits until a stderr line matches re (a request is logged after it is answered). */
  async waitForLog(re, timeoutMs = 3000) {
    const t0 = Date.now();
    for (;;) {
      const line = this.logLines().find((l) => re.test(l));
      if (line) return line;
      if (Date.now() - t0 > timeoutMs) return null;
      await sleep(25);
    }
  }

  /** Sends a signal and waits for the exit. */
  async stop({ signal = 'SIGTERM', timeoutMs = 10000 } = {}) {
    if (!this.proc || this.exit) return this.exit;
    if (signal === 'SIGTERM') stoppedByTerm.add(this);
    this.proc.kill(signal);
    const t = setTimeout(() => { try { this.proc.kill('SIGKILL'); } catch { /* gone */ } }, timeoutMs);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }
}

/**
 * Starts a server. env: extra settings. dir: reuse a temp dir and its
 * database (for restarts, or several instances on one PostgreSQL
 * database: the dir names it in its file "pgdb"). database: a
 * DATABASE_URL to use as is. Resolves once /readyz answers 200.
 */
export async function startServer({ env = {}, dir, args = [], database, timeoutMs = 20000 * SLOW } = {}) {
  if (!fs.existsSync(BIN)) {
    throw new Error(`server binary not found: ${BIN} (set FLAMINGO_SYNCD)`);
  }
  dir = dir || makeTempDir();
  let db;
  let pgdb;
  if (database) {
    db = database;            // a DATABASE_URL of the test's own choosing
  } else if (STORE === 'postgres') {
    const f = path.join(dir, 'pgdb');
    if (fs.existsSync(f)) pgdb = fs.readFileSync(f, 'utf8').trim();
    else fs.writeFileSync(f, (pgdb = createPgDatabase()));
    db = pgUrl(pgdb);
  } else {
    db = path.join(dir, 'sync.db');
  }
  const srv = new Server({ env, dir, db, pgdb });
  const argv = [...WRAP.slice(1), BIN, '--listen', '127.0.0.1:0', '--database',
    database || STORE === 'postgres' ? db : `sqlite:${db}`, ...args];
  const proc = spawn(WRAP.length ? WRAP[0] : BIN, WRAP.length ? argv : argv.slice(1), {
    env: { ...baseEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  srv.proc = proc;
  live.add(srv);
  srv.exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      srv.exit = { code, signal };
      live.delete(srv);
      resolve(srv.exit);
    });
  });
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (d) => { srv.stdout += d; });

  const listening = new Promise((resolve, reject) => {
    let buf = '';
    proc.stderr.on('data', (d) => {
      srv.stderr += d;
      buf += d;
      const m = LISTEN_RE.exec(buf);
      if (m) { buf = ''; resolve(m[1]); }
    });
    proc.on('error', reject);
    srv.exited.then((e) => reject(new Error(
      `server exited before listening (${JSON.stringify(e)}); stderr:\n${srv.stderr}`)));
  });
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(
      `server did not print "listening on" within ${timeoutMs} ms; stderr:\n${srv.stderr}`)), timeoutMs);
  });
  try {
    const url = await Promise.race([listening, timeout]);
    srv.url = url.replace(/\/+$/, '');
    // The public URL defaults to the bound address; tests may set PUBLIC_URL.
    srv.publicUrl = (env.PUBLIC_URL || srv.url).replace(/\/+$/, '');
    srv.origin = new URL(srv.publicUrl).origin;
    // Readiness: /readyz must answer 200.
    const t0 = Date.now();
    for (;;) {
      try {
        const r = await fetch(`${srv.url}/readyz`);
        await r.arrayBuffer();
        if (r.status === 200) break;
      } catch { /* not yet */ }
      if (Date.now() - t0 > timeoutMs) throw new Error(`/readyz never answered 200; stderr:\n${srv.stderr}`);
      if (srv.exit) throw new Error(`server exited; stderr:\n${srv.stderr}`);
      await sleep(20);
    }
  } catch (e) {
    try { proc.kill('SIGKILL'); } catch { /* gone */ }
    throw e;
  } finally {
    clearTimeout(timer);
  }
  return srv;
}

/** Waits until srv reports at least n suspended long-polls (its /metrics):
 * the explicit sign that a long-poll is parked and can be woken. */
export async function waitForLongPolls(srv, n, timeoutMs = 5000 * SLOW) {
  const t0 = Date.now();
  for (;;) {
    const r = await fetch(`${srv.url}/metrics`);
    const m = /^flamingo_longpoll_waiting (\d+)$/m.exec(await r.text());
    if (m && Number(m[1]) >= n) return;
    if (Date.now() - t0 > timeoutMs) throw new Error(`${srv.url}: fewer than ${n} long-poll(s) waiting`);
    await sleep(20);
  }
}

/**
 * Stops every server this process started and removes the temp dirs. With
 * FLAMINGO_SYNCD_EXPECT_CLEAN_EXIT=1 (sanitizer runs), every server stopped
 * with SIGTERM must have exited 0; otherwise this throws (failing the file)
 * with the tail of its stderr.
 */
export async function stopAll() {
  await Promise.all([...live].map((s) => s.stop({ signal: 'SIGTERM', timeoutMs: 5000 * SLOW })));
  for (const d of tempDirs) {
    try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* ignore */ }
  }
  tempDirs.clear();
  if (process.env.FLAMINGO_SYNCD_EXPECT_CLEAN_EXIT === '1') {
    const bad = [...stoppedByTerm].filter((s) => !s.exit || s.exit.code !== 0);
    stoppedByTerm.clear();
    if (bad.length) {
      throw new Error(bad.map((s) => `server ${s.url} exited ${JSON.stringify(s.exit)} after SIGTERM; stderr tail:\n${s.stderr.slice(-3000)}`).join('\n'));
    }
  }
}

process.on('exit', () => {
  for (const s of live) { try { s.proc.kill('SIGKILL'); } catch { /* gone */ } }
  for (const d of tempDirs) { try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* ignore */ } }
});

/**
 * node:test's test(), but a failure prints the stderr that the live servers
 * wrote while the test ran (the request log), to make it debuggable.
 */
export function test(name, opts, fn) {
  if (typeof opts === 'function') { fn = opts; opts = {}; }
  return nodeTest(name, opts, async (t) => {
    const marks = new Map([...live].map((s) => [s, s.stderr.length]));
    try {
      return await fn(t);
    } catch (e) {
      const parts = [];
      for (const s of new Set([...marks.keys(), ...live])) {
        const from = marks.get(s) ?? 0;
        const lines = s.stderr.slice(from).split('\n');
        const tail = lines.slice(-80).join('\n');
        parts.push(`--- server ${s.url} stderr during "${name}"${lines.length > 80 ? ' (last 80 lines)' : ''}:\n${tail}`);
      }
      if (parts.length) console.error(parts.join('\n'));
      throw e;
    }
  });
}
