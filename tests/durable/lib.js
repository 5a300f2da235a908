'use strict';
// Harness of the durability tests of chatstore-server --data-dir (see
// README.md here): starts servers on a data directory (loopback, port 0),
// kills them, talks HTTP over keep-alive connections, runs chatstore-check.
// Node built-ins only (no npm packages). Every process started is killed
// when this process exits, however it exits.
//
// Environment (ctest sets both):
//   CHATSTORE_SERVER_BIN  the chatstore-server binary
//   CHATSTORE_CHECK_BIN   the chatstore-check binary

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const ACCOUNT = 'AC' + '0123456789abcdef'.repeat(2);
const TOKEN = 'durable-token';
const AUTH = 'Basic ' + Buffer.from(`${ACCOUNT}:${TOKEN}`).toString('base64');

function bin(name) {
  const b = process.env[name];
  if (!b || !fs.existsSync(b)) {
    throw new Error(`${name} is not set or does not exist: run through ctest (ctest -R server_durable)`);
  }
  return b;
}

const running = new Set();
process.on('exit', () => {
  for (const p of running) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    for (const p of running) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
    process.kill(process.pid, sig);
  });
}

/** A fresh temporary directory; removed by cleanup() unless keep. */
function tempDir(tag) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `chatstore-${tag}-`));
}

function rmrf(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * Starts chatstore-server on dataDir. opts: { args: [...], env: {...},
 * expectFail: true (resolves once it exits) }. Resolves to a server object:
 * { port, proc, stderr(), stdout(), exited (promise), exitInfo(), agent,
 *   kill(sig), stop() }.
 */
function startServer(dataDir, opts = {}) {
  const args = ['--listen', '127.0.0.1:0', '--account-sid', ACCOUNT, '--auth-token', TOKEN,
    '--data-dir', dataDir, '--threads', String(opts.threads || 4), ...(opts.args || [])];
  const env = Object.assign({}, process.env, opts.env || {});
  if (!opts.env || !('CHATSTORE_TEST_CRASH' in opts.env)) delete env.CHATSTORE_TEST_CRASH;
  const proc = spawn(bin('CHATSTORE_SERVER_BIN'), args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  running.add(proc);
  let out = '';
  let err = '';
  let exit = null;
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      running.delete(proc);
      exit = { code, signal };
      resolve(exit);
    });
  });
  proc.stderr.on('data', (d) => { err += d; });
  const srv = {
    proc,
    port: 0,
    stdout: () => out,
    stderr: () => err,
    exited,
    exitInfo: () => exit,
    agent: new http.Agent({ keepAlive: true, maxSockets: 64 }),
    kill(sig = 'SIGKILL') { if (!exit) proc.kill(sig); return exited; },
    /** SIGTERM; resolves to the exit info (SIGKILL after 20 s). */
    async stop() {
      if (exit) return exit;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 20000);
      const x = await exited;
      clearTimeout(t);
      srv.agent.destroy();
      return x;
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`chatstore-server did not start within 20 s\nstderr: ${err}`));
    }, 20000);
    exited.then((x) => {
      clearTimeout(timer);
      if (opts.expectFail) resolve(srv);
      else reject(new Error(`chatstore-server exited at startup (${JSON.stringify(x)})\nstderr: ${err}`));
    });
    // Ready once it listens (stdout) and has said what it recovered
    // (stderr, written before it listens; the two pipes are read
    // independently, so wait for both).
    const ready = () => {
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)\n/.exec(out);
      if (!m || srv.port || !/chatstore-server: (loaded|initialised) /.test(err)) return;
      clearTimeout(timer);
      srv.port = Number(m[1]);
      resolve(srv);
    };
    proc.stdout.on('data', (d) => { out += d; ready(); });
    proc.stderr.on('data', ready);
  });
}

/**
 * One request. opts: { method, form (object), body (Buffer), headers }.
 * Resolves to { status, text, buf, json }; rejects on a connection error
 * (err.refused: the connection was refused, so nothing was sent).
 */
function request(srv, p, opts = {}) {
  const method = opts.method || 'GET';
  const headers = Object.assign({ Authorization: AUTH }, opts.headers || {});
  let body = opts.body;
  if (opts.form) {
    body = Buffer.from(new URLSearchParams(opts.form).toString());
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
  }
  if (body !== undefined) headers['Content-Length'] = body.length;
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: srv.port, method, path: p, headers, agent: srv.agent,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const buf = Buffer.concat(chunks);
        const text = buf.toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, text, buf, json });
      });
      res.on('error', reject);
    });
    req.on('error', (e) => {
      e.refused = e.code === 'ECONNREFUSED';
      reject(e);
    });
    req.setTimeout(30000, () => req.destroy(new Error(`timeout: ${method} ${p}`)));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** Runs chatstore-check DIR: { status, out }. */
function check(dir) {
  const r = spawnSync(bin('CHATSTORE_CHECK_BIN'), [dir], { encoding: 'utf8', timeout: 60000 });
  return { status: r.status, out: (r.stdout || '') + (r.stderr || '') };
}

/** The local path of an absolute https://chat.twilio.com/... URL. */
function localPath(url) {
  const u = new URL(url);
  return u.pathname + u.search;
}

/** Small deterministic PRNG (mulberry32). */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A journal file's header takes its first 4096 bytes (docs/persistence.md). */
const JOURNAL_HEADER = 4096;

/**
 * The journal frames of a file: [{ off, len, end }], after its header (stops
 * at a torn end, or at the zeros of preallocated space).
 */
function frames(file) {
  const b = fs.readFileSync(file);
  const out = [];
  if (b.length < JOURNAL_HEADER || b.toString('latin1', 0, 8) !== 'CSJOURNL') return out;
  let off = JOURNAL_HEADER;
  while (off + 4 <= b.length) {
    const len = b.readUInt32LE(off);
    if (len === 0 || off + 4 + len > b.length) break;
    out.push({ off, len, end: off + 4 + len, op: b[off + 5] });
    off += 4 + len;
  }
  return out;
}

/**
 * The synced length D a journal file's header records (the valid one of
 * its two slots with the higher generation; CRCs not checked here).
 */
function syncedLength(file) {
  const b = fs.readFileSync(file).subarray(0, JOURNAL_HEADER);
  let best = null;
  for (const at of [512, 1024]) {
    const gen = b.readBigUInt64LE(at);
    if (Number(gen & 1n) !== (at === 512 ? 0 : 1)) continue;
    if (best === null || gen > best.gen) best = { gen, d: Number(b.readBigUInt64LE(at + 8)) };
  }
  return best ? best.d : null;
}

/** Files of a data directory by kind: { journals: [names in seq order], snapshots, manifest }. */
function listDir(dir) {
  const names = fs.readdirSync(dir);
  const num = (n, pre) => Number(n.slice(pre.length));
  const journals = names.filter((n) => /^journal-\d+$/.test(n))
    .sort((a, b) => num(a, 'journal-') - num(b, 'journal-'));
  const snapshots = names.filter((n) => /^snapshot-\d+$/.test(n))
    .sort((a, b) => num(a, 'snapshot-') - num(b, 'snapshot-'));
  const manifest = fs.existsSync(path.join(dir, 'MANIFEST'))
    ? fs.readFileSync(path.join(dir, 'MANIFEST'), 'utf8') : null;
  return { journals, snapshots, manifest };
}

/** Copies a directory tree. */
function copyDir(from, to) {
  fs.cpSync(from, to, { recursive: true });
}

let failures = 0;
/** Records a failed expectation (the test goes on, and fails at the end). */
function fail(msg) {
  failures++;
  console.log(`not ok: ${msg}`);
  if (failures > 50) throw new Error('too many failures');
}
function expect(cond, msg) {
  if (!cond) fail(msg);
  return !!cond;
}
function failureCount() { return failures; }

/** Runs main, prints the verdict, sets the exit status. */
function run(name, main) {
  const t0 = Date.now();
  main().then(() => {
    const s = ((Date.now() - t0) / 1000).toFixed(1);
    if (failures) {
      console.log(`${name}: FAILED (${failures} failure(s)) in ${s} s`);
      process.exitCode = 1;
    } else {
      console.log(`${name}: passed in ${s} s`);
    }
  }, (e) => {
    console.log(`${name}: FAILED: ${e && e.stack ? e.stack : e}`);
    process.exitCode = 1;
  }).finally(() => {
    for (const p of running) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
  });
}

module.exports = {
  ACCOUNT, AUTH, JOURNAL_HEADER, TOKEN, check, copyDir, expect, fail, failureCount, frames,
  listDir, localPath, prng, request, rmrf, run, sleep, startServer, syncedLength, tempDir,
};
