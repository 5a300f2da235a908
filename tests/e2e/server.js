'use strict';
// Shared harness of the end-to-end tests: spawns chatstore-server on port 0,
// parses the port it prints, stops it with SIGTERM after the tests, and
// offers raw HTTP helpers. Each *.test.js file runs in its own process (node
// --test) and starts its own server, so files never share state.
//
// Environment:
//   CHATSTORE_SERVER_BIN  path of the chatstore-server binary (set by ctest)
//   CHATSTORE_SPEC_DIR    directory holding twilio_chat_v2.yaml, Twilio's
//                         OpenAPI file (optional; also --spec-dir=DIR on the
//                         command line, else tests/data/openapi)
//   CHATSTORE_E2E_URL, CHATSTORE_E2E_ACCOUNT_SID, CHATSTORE_E2E_AUTH_TOKEN
//                         (optional, together) an already running server or
//                         cluster (e.g. HAProxy in front of the shards,
//                         tests/cluster/e2e.js): startServer() without
//                         arguments returns it instead of spawning one.
//                         Servers started with flags or credentials of their
//                         own, and those of tests about the server's own HTTP
//                         edge ({ own: true }), are still spawned.

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const E2E_DIR = __dirname;
const REPO_DIR = path.resolve(E2E_DIR, '..', '..');

// Fail loudly (every test file requires this module) when the npm packages
// are missing, instead of half the suite running.
for (const dep of ['twilio', 'ajv', 'yaml', 'parse-prometheus-text-format']) {
  if (!fs.existsSync(path.join(E2E_DIR, 'node_modules', dep, 'package.json'))) {
    throw new Error(`tests/e2e/node_modules/${dep} is missing: run npm ci in tests/e2e ` +
      `(cd ${E2E_DIR} && npm ci)`);
  }
}

/** The spec directory: --spec-dir=DIR / --spec-dir DIR, $CHATSTORE_SPEC_DIR,
 * else the repo's tests/data/openapi. Throws when the OpenAPI file is not there. */
function specDir() {
  let dir;
  const argv = process.argv;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith('--spec-dir=')) dir = argv[i].slice('--spec-dir='.length);
    else if (argv[i] === '--spec-dir' && i + 1 < argv.length) dir = argv[i + 1];
  }
  if (!dir && process.env.CHATSTORE_SPEC_DIR) dir = process.env.CHATSTORE_SPEC_DIR;
  if (!dir) dir = path.resolve(REPO_DIR, 'tests', 'data', 'openapi');
  dir = path.resolve(dir);
  const f = path.join(dir, 'twilio_chat_v2.yaml');
  if (!fs.existsSync(f)) {
    throw new Error(`spec not found: ${f} (give --spec-dir=DIR or CHATSTORE_SPEC_DIR; ` +
      'the repository keeps it in tests/data/openapi)');
  }
  return dir;
}

// Servers still running when this process goes away (a crash, an uncaught
// exception, the runner's timeout) are killed, so none is left orphaned.
const running = new Set();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    for (const p of running) p.kill('SIGKILL');
    process.kill(process.pid, sig); // the default action, now that the handler is gone
  });
}

function serverBin() {
  const bin = process.env.CHATSTORE_SERVER_BIN;
  if (!bin) {
    throw new Error('CHATSTORE_SERVER_BIN is not set: run these tests through ctest ' +
      '(ctest -R server_e2e) or export CHATSTORE_SERVER_BIN=/path/to/chatstore-server');
  }
  if (!fs.existsSync(bin)) throw new Error(`CHATSTORE_SERVER_BIN=${bin} does not exist`);
  return bin;
}

/** The server named by CHATSTORE_E2E_URL (and its credentials), or null. */
function externalServer() {
  const url = process.env.CHATSTORE_E2E_URL;
  if (!url) return null;
  const accountSid = process.env.CHATSTORE_E2E_ACCOUNT_SID;
  const authToken = process.env.CHATSTORE_E2E_AUTH_TOKEN;
  if (!accountSid || !authToken) {
    throw new Error('CHATSTORE_E2E_URL needs CHATSTORE_E2E_ACCOUNT_SID and CHATSTORE_E2E_AUTH_TOKEN');
  }
  const u = new URL(url);
  if (u.protocol !== 'http:' || u.pathname !== '/' || u.search) {
    throw new Error(`CHATSTORE_E2E_URL=${url}: give http://HOST:PORT`);
  }
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return {
    origin: u.origin,
    host,
    port: Number(u.port || 80),
    pid: null,
    accountSid,
    authToken,
    auth: 'Basic ' + Buffer.from(`${accountSid}:${authToken}`).toString('base64'),
    proc: null,
    external: true,
    output: () => ({ stdout: '', stderr: '' }),
    alive: () => true,
    exitInfo: () => null,
    /** Not ours to stop: whoever started it checks and stops it. */
    async stop() {},
  };
}

/**
 * Starts a server with fresh random credentials. Resolves to
 * { origin, host, port, accountSid, authToken, auth, proc, pid, stop(), alive(), output() }.
 * extraArgs go to the command line (e.g. ['--media-cap', '1000']); listen is
 * --listen's value (default 127.0.0.1:0). Under CHATSTORE_E2E_URL, a call
 * without any of these (and without own: true) returns that server instead.
 */
function startServer({ extraArgs = [], accountSid, authToken, listen = '127.0.0.1:0',
  own = false } = {}) {
  if (!own && extraArgs.length === 0 && !accountSid && !authToken && listen === '127.0.0.1:0') {
    const ext = externalServer();
    if (ext) return Promise.resolve(ext);
  }
  const bin = serverBin();
  accountSid = accountSid || 'AC' + crypto.randomBytes(16).toString('hex');
  authToken = authToken || crypto.randomBytes(16).toString('hex');
  const args = ['--listen', listen, '--account-sid', accountSid,
    '--auth-token', authToken, ...extraArgs];
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  let stdout = '';
  let stderr = '';
  let exit = null; // {code, signal} once exited
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      running.delete(proc);
      exit = { code, signal };
      resolve(exit);
    });
  });
  proc.stderr.on('data', (d) => { stderr += d; });

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`chatstore-server did not print its port within 10 s\n` +
        `stdout: ${stdout}\nstderr: ${stderr}`));
    }, 10000);
    proc.on('error', (e) => { clearTimeout(timer); reject(e); });
    exited.then((x) => {
      clearTimeout(timer);
      reject(new Error(`chatstore-server exited early (${JSON.stringify(x)})\n` +
        `stdout: ${stdout}\nstderr: ${stderr}`));
    });
    proc.stdout.on('data', (d) => {
      stdout += d;
      const m = /listening on (http:\/\/(\[[0-9a-f:.]+\]|[0-9.]+):(\d+))\n/.exec(stdout);
      if (!m) return;
      clearTimeout(timer);
      const port = Number(m[3]);
      const srv = {
        origin: m[1],
        host: m[2].replace(/^\[|\]$/g, ''), // connectable: 0.0.0.0 and :: as loopback
        port,
        pid: proc.pid,
        accountSid,
        authToken,
        auth: 'Basic ' + Buffer.from(`${accountSid}:${authToken}`).toString('base64'),
        proc,
        output: () => ({ stdout, stderr }),
        alive: () => exit === null,
        exitInfo: () => exit,
        /** SIGTERM, then checks the server had not died before and exits 0. */
        async stop() {
          if (exit) {
            throw new Error(`chatstore-server died during the tests: ${JSON.stringify(exit)}\n` +
              `stderr: ${stderr}`);
          }
          proc.kill('SIGTERM');
          const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
          const x = await exited;
          clearTimeout(t);
          if (x.code !== 0) {
            throw new Error(`chatstore-server did not stop cleanly: ${JSON.stringify(x)}\n` +
              `stderr: ${stderr}`);
          }
        },
      };
      resolve(srv);
    });
  });
}

/**
 * One raw HTTP request (node:http, no keep-alive, the path sent verbatim).
 * opts: { method, headers, form (object or string), body (Buffer|string),
 *         auth (false: no Authorization; string: the header value),
 *         chunked (true: no Content-Length) }
 * Resolves to { status, headers, text, buf, json } (json undefined when the
 * body is not JSON).
 */
function request(srv, pathAndQuery, opts = {}) {
  const method = opts.method || 'GET';
  const headers = Object.assign({}, opts.headers || {});
  if (opts.auth !== false) headers.Authorization = opts.auth || srv.auth;
  let body = opts.body;
  if (opts.form !== undefined) {
    body = typeof opts.form === 'string' ? opts.form : new URLSearchParams(opts.form).toString();
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
    }
  }
  if (body !== undefined && !opts.chunked) headers['Content-Length'] = Buffer.byteLength(body);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: connectHost(srv), port: srv.port, method, path: pathAndQuery, headers, agent: false,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const buf = Buffer.concat(chunks);
        const text = buf.toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, buf, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(20000, () => req.destroy(new Error(`timeout: ${method} ${pathAndQuery}`)));
    if (body !== undefined) {
      if (opts.chunked) {
        // Several chunks, so the server sees a streamed body.
        const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
        for (let i = 0; i < b.length; i += 65536) req.write(b.subarray(i, i + 65536));
      } else {
        req.write(body);
      }
    }
    req.end();
  });
}

/** Where to connect to reach srv (a wildcard listener through loopback). */
function connectHost(srv) {
  if (!srv.host || srv.host === '0.0.0.0') return '127.0.0.1';
  return srv.host === '::' ? '::1' : srv.host;
}

/** The local form of an absolute https://chat.twilio.com/... URL. */
function localPath(url) {
  const u = new URL(url);
  return u.pathname + u.search;
}

const ERROR_KEYS = ['code', 'message', 'more_info', 'status'];

/** Asserts r is a Twilio error reply with the given HTTP status and code. */
function assertError(assert, r, status, code, what = '') {
  const ctx = `${what} -> ${r.status} ${r.text.length > 400 ? `${r.text.slice(0, 400)}...` : r.text}`;
  assert.equal(r.status, status, ctx);
  assert.match(String(r.headers['content-type']), /^application\/json/, ctx);
  assert.ok(r.json && typeof r.json === 'object', ctx);
  assert.deepEqual(Object.keys(r.json), ERROR_KEYS, ctx);
  assert.equal(r.json.status, r.status, ctx);
  if (code !== undefined) assert.equal(r.json.code, code, ctx);
  assert.ok(Number.isInteger(r.json.code), ctx);
  assert.equal(typeof r.json.message, 'string', ctx);
  assert.ok(r.json.message.length > 0, ctx);
  assert.equal(r.json.more_info, `https://www.twilio.com/docs/errors/${r.json.code}`, ctx);
}

/** Small deterministic PRNG (mulberry32) for reproducible garbage. */
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

const BASE = 'https://chat.twilio.com';

module.exports = {
  BASE, E2E_DIR, ERROR_KEYS, REPO_DIR, assertError, connectHost, localPath, prng, request,
  serverBin, specDir, startServer,
};
