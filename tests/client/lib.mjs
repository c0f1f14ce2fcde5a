// Helpers for the CLI end-to-end suite: running build/flamingo-sync as a
// "device" with its own XDG_CONFIG_HOME, and logging it in the way a user
// would (the test plays the browser: it claims the printed user code with
// the web session cookie and the Origin header).

import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { makeTempDir } from '../api/lib/server.mjs';
import { expectOk } from '../api/lib/client.mjs';

export const CLI = process.env.FLAMINGO_SYNC_CLI || path.resolve(
  path.dirname(new URL(import.meta.url).pathname), '../../build/flamingo-sync');
export const KEYTOOL = process.env.FLS_KEYTOOL || path.resolve(
  path.dirname(new URL(import.meta.url).pathname), '../../build/tests/client/fls-keytool');

export const ROTATE = process.env.FLS_ROTATE || path.resolve(
  path.dirname(new URL(import.meta.url).pathname), '../../build/tests/client/fls-rotate');

export const EXIT = {
  OK: 0, ERROR: 1, USAGE: 2, AUTH: 3, CONFLICT: 4, CRYPTO: 5, NETWORK: 6,
  NOTFOUND: 7, LOGIN: 8, DISABLED: 9,
};

// Every CLI process still running: a failed test must not leave a `watch`
// behind (it retries for ever, and holds the test file open).
const running = new Set();

/** Kills every CLI process the suite started that is still running. */
export function killClis() {
  for (const p of running) p.kill('SIGKILL');
  running.clear();
}

export class Device {
  constructor(name) {
    this.name = name;
    this.home = makeTempDir(`flm-cli-${name}-`);
    this.xdg = path.join(this.home, 'config');
    this.passphrase = null;
  }

  get stateDir() { return path.join(this.xdg, 'flamingo-sync'); }
  get statePath() { return path.join(this.stateDir, 'state.json'); }
  state() { return JSON.parse(fs.readFileSync(this.statePath, 'utf8')); }

  env(extra = {}) {
    const env = {
      PATH: process.env.PATH, HOME: this.home, XDG_CONFIG_HOME: this.xdg,
      FLAMINGO_SYNC_NO_BROWSER: '1',
    };
    for (const k of ['ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS']) {
      if (process.env[k] !== undefined) env[k] = process.env[k];
    }
    if (this.passphrase !== null) env.FLAMINGO_SYNC_PASSPHRASE = this.passphrase;
    return { ...env, ...extra };
  }

  /** Starts the CLI; resolves {code, stdout (Buffer), out, err}. */
  spawn(args, { env = {}, onStdout } = {}) {
    const p = spawn(CLI, args, { env: this.env(env), stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(p);
    p.on('close', () => running.delete(p));
    const out = [];
    let err = '';
    p.stdout.on('data', (d) => { out.push(d); if (onStdout) onStdout(Buffer.concat(out).toString('utf8')); });
    p.stderr.setEncoding('utf8');
    p.stderr.on('data', (d) => { err += d; });
    const done = new Promise((resolve, reject) => {
      p.on('error', reject);
      p.on('close', (code, signal) => {
        const stdout = Buffer.concat(out);
        resolve({ code, signal, stdout, out: stdout.toString('utf8'), err });
      });
    });
    return { proc: p, done };
  }

  run(args, opts) { return this.spawn(args, opts).done; }

  async ok(args, opts) {
    const r = await this.run(args, opts);
    assert.equal(r.code, 0, `${this.name}: flamingo-sync ${args.join(' ')} -> ${r.code}\n${r.err}${r.out}`);
    return r;
  }

  /** Runs with --json and parses the one JSON line on stdout. */
  async json(args, opts) {
    const r = await this.run(['--json', ...args], opts);
    const line = r.out.trim().split('\n').pop();
    r.json = line ? JSON.parse(line) : undefined;
    return r;
  }

  /**
   * `flamingo-sync login`, with web (a signed-up cookie client) approving
   * the printed code the way the authorize page does.
   */
  async login(srv, web) {
    let claimed = null;
    const claim = new Promise((resolve, reject) => {
      const run = this.spawn(['--json', 'login', '--server', srv.url, '--no-browser',
        '--device-name', this.name], {
        onStdout: (text) => {
          if (claimed) return;
          const line = text.split('\n')[0];
          if (!text.includes('\n')) return;
          const first = JSON.parse(line);
          claimed = web.post('/api/sync/claim', { user_code: first.user_code })
            .then((res) => { expectOk(res); return first; }, reject);
        },
      });
      run.done.then(resolve, reject);
    });
    const r = await claim;
    assert.equal(r.code, 0, `${this.name} login -> ${r.code}\n${r.err}${r.out}`);
    const first = await claimed;
    assert.match(first.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    assert.equal(first.url, `${srv.url}/sync/authorize?code=${first.user_code}`);
    const last = JSON.parse(r.out.trim().split('\n').pop());
    assert.equal(last.ok, true);
    this.deviceId = last.device_id;
    return r;
  }
}

/** The keys fls-keytool derives from a passphrase and the stored key. */
export function deriveKeys(passphrase, kdf, wrappedKey) {
  const out = execFileSync(KEYTOOL, [JSON.stringify(kdf), wrappedKey], {
    env: { PATH: process.env.PATH, FLAMINGO_SYNC_PASSPHRASE: passphrase },
    encoding: 'utf8',
  });
  return JSON.parse(out);
}

/** Every textual form a secret could take in a file: raw, hex, base64. */
export function needleForms(buf) {
  const forms = [buf];
  const hex = buf.toString('hex');
  forms.push(Buffer.from(hex), Buffer.from(hex.toUpperCase()));
  const b64 = buf.toString('base64');
  forms.push(Buffer.from(b64), Buffer.from(b64.replace(/=+$/, '')),
    Buffer.from(buf.toString('base64url')));
  return forms;
}
