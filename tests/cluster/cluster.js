'use strict';
// Test harness of a chatstore cluster on loopback (node built-ins only): three
// nats-server processes as one JetStream cluster, a primary and a follower
// chatstore-server per shard, and HAProxy in front, configured by
// deploy/haproxy-config.sh (the routing rule of docs/replication.md). Every
// port is a free loopback port picked at start; a process keeps its port
// when it is restarted, so HAProxy's configuration stays true. Single
// processes can be killed (any signal), restarted, promoted, and read
// (/replica, /metrics). Every wait is bounded; every process started here
// is killed when this process exits, however it exits.
//
// Environment: CHATSTORE_SERVER_BIN (the chatstore-server binary, set by
// ctest). nats-server and haproxy come from PATH: when either is missing,
// startCluster throws (the tests fail, they never skip).

const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const REPO_DIR = path.resolve(__dirname, '..', '..');
const HOST = '127.0.0.1';

// Every process still running when this process goes away is killed.
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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves true once fn() resolves truthy, false after ms. */
async function waitFor(fn, ms, step = 50) {
  const end = Date.now() + ms;
  for (;;) {
    try { if (await fn()) return true; } catch { /* not yet */ }
    if (Date.now() >= end) return false;
    await sleep(step);
  }
}

function which(cmd) {
  for (const d of (process.env.PATH || '').split(path.delimiter)) {
    const f = path.join(d, cmd);
    try { fs.accessSync(f, fs.constants.X_OK); return f; } catch { /* next */ }
  }
  return null;
}

function serverBin() {
  const bin = process.env.CHATSTORE_SERVER_BIN;
  if (!bin) throw new Error('CHATSTORE_SERVER_BIN is not set: run through ctest or export it');
  if (!fs.existsSync(bin)) throw new Error(`CHATSTORE_SERVER_BIN=${bin} does not exist`);
  return bin;
}

/** n distinct free loopback ports (held together while picked). */
async function freePorts(n) {
  const socks = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      await new Promise((res, rej) => { s.once('error', rej); s.listen(0, HOST, res); });
      socks.push(s);
    }
    return socks.map((s) => s.address().port);
  } finally {
    await Promise.all(socks.map((s) => new Promise((r) => s.close(r))));
  }
}

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 64 });

/**
 * One HTTP request. target: { port, auth } (the cluster or one server).
 * opts: { method, form (object), body, headers, auth (false | string),
 *         timeout (ms, default 5000), agent (default keep-alive) }.
 * Resolves { status, headers, text, json }; rejects on a network error
 * or the timeout.
 */
function request(target, p, opts = {}) {
  const method = opts.method || 'GET';
  const headers = Object.assign({}, opts.headers || {});
  if (opts.auth !== false) headers.Authorization = opts.auth || target.auth;
  let body = opts.body;
  if (opts.form !== undefined) {
    body = new URLSearchParams(opts.form).toString();
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
  }
  if (body !== undefined) headers['Content-Length'] = Buffer.byteLength(body);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: HOST, port: target.port, method, path: p, headers,
      agent: opts.agent === undefined ? keepAlive : opts.agent,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(opts.timeout || 5000, () => req.destroy(new Error(`timeout: ${method} ${p}`)));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** A child process we own: output kept (last 256 KiB), exit awaited. */
class Proc {
  constructor(name, cmd, args, opts = {}) {
    this.name = name;
    this.cmd = cmd;
    this.args = args;
    this.cwd = opts.cwd;
    this.log = ''; // every run's output, appended
    this.proc = null;
    this.exit = null;
  }

  start(args = this.args) {
    if (this.proc && !this.exit) throw new Error(`${this.name} is already running`);
    this.args = args;
    this.exit = null;
    this.out = '';
    const p = spawn(this.cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: this.cwd });
    this.proc = p;
    running.add(p);
    const add = (d) => {
      this.out += d;
      this.log += d;
      if (this.log.length > 262144) this.log = this.log.slice(-262144);
    };
    p.stdout.on('data', add);
    p.stderr.on('data', add);
    this.exited = new Promise((resolve) => {
      p.on('exit', (code, signal) => {
        running.delete(p);
        if (this.proc === p) this.exit = { code, signal };
        resolve({ code, signal });
      });
    });
    p.on('error', (e) => { add(`spawn error: ${e.message}\n`); });
    return this;
  }

  get pid() { return this.proc ? this.proc.pid : null; }
  alive() { return this.proc !== null && this.exit === null; }

  kill(sig = 'SIGKILL') {
    if (this.alive()) this.proc.kill(sig);
  }

  /** SIGTERM, SIGKILL after ms; resolves the exit. */
  async stop(ms = 5000) {
    if (!this.alive()) return this.exit;
    this.proc.kill('SIGCONT'); // a stopped process cannot act on SIGTERM
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.kill('SIGKILL'), ms);
    const x = await this.exited;
    clearTimeout(t);
    return x;
  }

  /** Resolves the exit within ms, else rejects. */
  async waitExit(ms) {
    let t;
    const timeout = new Promise((_, rej) => {
      t = setTimeout(() => rej(new Error(`${this.name} did not exit within ${ms} ms\n${this.tail()}`)), ms);
    });
    try { return await Promise.race([this.exited, timeout]); } finally { clearTimeout(t); }
  }

  /** Resolves once the output of this run matches re, else rejects. */
  async waitOutput(re, ms) {
    const ok = await waitFor(() => re.test(this.out) || this.exit !== null, ms, 20);
    if (!re.test(this.out)) {
      throw new Error(`${this.name}: no ${re} within ${ms} ms` +
        `${this.exit ? ` (exited ${JSON.stringify(this.exit)})` : ok ? '' : ' (timeout)'}\n${this.tail()}`);
    }
  }

  tail(n = 2000) { return `--- ${this.name} output (last ${n} chars):\n${this.log.slice(-n)}`; }
}

/**
 * Starts a cluster. opts:
 *   shards       1.. (default 2)
 *   replication  'sync' (default) | 'async'
 *   baseUrl      --base-url of every server: 'proxy' (default: HAProxy's
 *                URL), or a URL (e.g. 'https://chat.twilio.com', the
 *                default of a single server, which the e2e tests expect)
 *   extraArgs    more flags for every chatstore-server
 *   natsReplicas --nats-replicas (default 3)
 * Resolves the cluster object (see the methods below).
 */
async function startCluster(opts = {}) {
  const shards = opts.shards || 2;
  const mode = opts.replication || 'sync';
  const natsReplicas = opts.natsReplicas || 3;
  for (const cmd of ['nats-server', 'haproxy']) {
    if (!which(cmd)) throw new Error(`${cmd} is not installed (the cluster tests need it: apt-get install nats-server haproxy)`);
  }
  const bin = serverBin();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatstore-cluster-'));
  const ports = await freePorts(1 + 9 + 2 * shards);
  const c = new Cluster(dir, mode);
  c.port = ports[0];
  c.origin = `http://${HOST}:${c.port}`;
  c.accountSid = 'AC' + crypto.randomBytes(16).toString('hex');
  c.authToken = crypto.randomBytes(16).toString('hex');
  c.auth = 'Basic ' + Buffer.from(`${c.accountSid}:${c.authToken}`).toString('base64');
  c.host = HOST;
  c.baseUrl = !opts.baseUrl || opts.baseUrl === 'proxy' ? c.origin : opts.baseUrl;
  try {
    // NATS: three servers, routes to each other, JetStream each.
    const client = ports.slice(1, 4);
    const route = ports.slice(4, 7);
    const mon = ports.slice(7, 10);
    const routes = route.map((p) => `nats-route://${HOST}:${p}`).join(', ');
    for (let i = 0; i < 3; i++) {
      const d = path.join(dir, `nats${i}`);
      fs.mkdirSync(path.join(d, 'js'), { recursive: true });
      fs.writeFileSync(path.join(d, 'nats.conf'), [
        `server_name: n${i}`,
        `listen: ${HOST}:${client[i]}`,
        `http: ${HOST}:${mon[i]}`,
        'max_payload: 8MB',
        `jetstream { store_dir: "${path.join(d, 'js')}" }`,
        `cluster { name: chatstore, listen: ${HOST}:${route[i]}, routes: [ ${routes} ] }`,
        '',
      ].join('\n'));
      const p = new Proc(`nats n${i}`, 'nats-server', ['-c', path.join(d, 'nats.conf')]);
      p.port = client[i];
      p.monitorPort = mon[i];
      c.nats.push(p.start());
    }
    c.natsUrls = client.map((p) => `nats://${HOST}:${p}`).join(',');
    await c.waitNatsReady(30000);

    // chatstore servers: each shard's primary, then its follower.
    for (let k = 0; k < shards; k++) {
      const pair = [];
      for (const [j, letter] of [[0, 'a'], [1, 'b']]) {
        const node = `s${k}${letter}`;
        const p = new Proc(node, bin, []);
        p.node = node;
        p.shard = k;
        p.port = ports[10 + 2 * k + j];
        p.auth = c.auth;
        p.flags = [
          '--listen', `${HOST}:${p.port}`, '--account-sid', c.accountSid,
          '--auth-token', c.authToken, '--base-url', c.baseUrl,
          '--max-connections-per-ip', '0',
          '--nats', c.natsUrls, '--nats-replicas', String(natsReplicas),
          '--replication', mode, '--shard', String(k), '--node', node,
          ...(opts.extraArgs || []),
        ];
        pair.push(p);
      }
      c.servers.push(pair);
      await c.startServer(pair[0], { follow: false });
      await c.startServer(pair[1], { follow: true });
    }

    // HAProxy.
    const specs = c.servers.map((pair) => pair.map((s) => `${s.node}=${HOST}:${s.port}`).join(','));
    execFileSync(path.join(REPO_DIR, 'deploy', 'haproxy-config.sh'),
      [path.join(dir, 'haproxy'), `${HOST}:${c.port}`, ...specs], { stdio: ['ignore', 'ignore', 'pipe'] });
    c.statsSocket = path.join(dir, 'haproxy', 'haproxy.sock');
    c.haproxy = new Proc('haproxy', 'haproxy', ['-f', path.join(dir, 'haproxy', 'haproxy.cfg'), '-db']).start();
    for (let k = 0; k < shards; k++) await c.waitRouted(k, `s${k}a`, 10000);
    return c;
  } catch (e) {
    const tails = c.all().map((p) => p.tail(1500)).join('\n');
    await c.stop();
    e.message += `\n${tails}`;
    throw e;
  }
}

class Cluster {
  constructor(dir, mode) {
    this.dir = dir;
    this.mode = mode;
    this.nats = [];
    this.servers = []; // [shard][0: sKa, 1: sKb]
    this.haproxy = null;
  }

  all() { return [...this.nats, ...this.servers.flat(), ...(this.haproxy ? [this.haproxy] : [])]; }

  /** The server named node (e.g. 's0a'). */
  server(node) {
    const s = this.servers.flat().find((x) => x.node === node);
    if (!s) throw new Error(`no server ${node}`);
    return s;
  }

  /** Every NATS server's /healthz answers ok (JetStream current). */
  async waitNatsReady(ms) {
    const up = this.nats.filter((p) => p.alive());
    const ok = await waitFor(async () => {
      for (const p of up) {
        const r = await request({ port: p.monitorPort }, '/healthz', { auth: false, timeout: 1000, agent: false });
        if (r.status !== 200) return false;
      }
      return true;
    }, ms, 100);
    if (!ok) throw new Error(`JetStream not ready within ${ms} ms\n${up.map((p) => p.tail(800)).join('\n')}`);
  }

  /** (Re)starts server s as a primary or a follower on its port; resolves
   * once it listens. */
  async startServer(s, { follow = false, ms = 20000 } = {}) {
    s.start([...s.flags, ...(follow ? ['--follow'] : [])]);
    await s.waitOutput(/listening on http:\/\//, ms);
  }

  /** Starts server s expecting it to exit (e.g. a fenced primary):
   * resolves { code, signal, output }. */
  async runToExit(s, { follow = false, ms = 20000 } = {}) {
    s.start([...s.flags, ...(follow ? ['--follow'] : [])]);
    const x = await s.waitExit(ms);
    return Object.assign({ output: s.out }, x);
  }

  /** GET /replica of one server (its JSON), or throws. */
  async replica(node) {
    const r = await request(this.server(node), '/replica', { timeout: 3000 });
    if (r.status !== 200 || !r.json) throw new Error(`GET /replica on ${node}: ${r.status} ${r.text}`);
    return r.json;
  }

  /** POST /replica/promote to one server: the reply ({ status, json, text }). */
  promote(node, ms = 15000) {
    return request(this.server(node), '/replica/promote', { method: 'POST', timeout: ms });
  }

  /** GET /metrics of one server, as { name: value } of the unlabelled
   * samples (labelled ones keep their labels in the name). */
  async metrics(node) {
    const r = await request(this.server(node), '/metrics', { timeout: 3000 });
    if (r.status !== 200) throw new Error(`GET /metrics on ${node}: ${r.status} ${r.text}`);
    const out = {};
    for (const line of r.text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const m = /^(\S+)\s+(\S+)/.exec(line);
      if (m) out[m[1]] = Number(m[2]);
    }
    return out;
  }

  /** HAProxy's view: { backend: { server: 'UP' | 'DOWN' | ... } }. */
  async haproxyState() {
    const csv = await new Promise((resolve, reject) => {
      const s = net.connect(this.statsSocket);
      let out = '';
      s.setTimeout(2000, () => s.destroy(new Error('stats socket timeout')));
      s.on('connect', () => s.end('show stat\n'));
      s.on('data', (d) => { out += d; });
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });
    const lines = csv.split('\n');
    const head = lines[0].replace(/^# /, '').split(',');
    const [px, sv, st] = ['pxname', 'svname', 'status'].map((h) => head.indexOf(h));
    const out = {};
    for (const l of lines.slice(1)) {
      const f = l.split(',');
      if (f.length < head.length || f[sv] === 'FRONTEND' || f[sv] === 'BACKEND') continue;
      (out[f[px]] = out[f[px]] || {})[f[sv]] = f[st];
    }
    return out;
  }

  /** Resolves once HAProxy sends shard k's traffic to node alone (node UP,
   * the shard's other server DOWN); throws after ms. */
  async waitRouted(k, node, ms = 10000) {
    let last;
    const ok = await waitFor(async () => {
      last = await this.haproxyState();
      const b = last[`shard${k}`] || {};
      return Object.entries(b).every(([n, st]) => (n === node ? st === 'UP' : st.startsWith('DOWN')));
    }, ms, 50);
    if (!ok) throw new Error(`HAProxy did not route shard ${k} to ${node} alone within ${ms} ms: ${JSON.stringify(last)}`);
  }

  /** Creates a service on shard k through HAProxy (creates go round robin:
   * repeats, deleting the ones that land elsewhere). Resolves its JSON. */
  async serviceOn(k, name = 'svc') {
    const tag = `IS${k.toString(16).padStart(2, '0')}`;
    for (let i = 0; i < 64; i++) {
      const r = await request(this, '/v2/Services', { method: 'POST', form: { FriendlyName: name } });
      if (r.status !== 201) throw new Error(`create service: ${r.status} ${r.text}`);
      // Every service SID names the shard that made it (SD9, RP7).
      const digits = r.json.sid.slice(2, 4);
      if (!/^[0-9a-f]{2}$/.test(digits) || parseInt(digits, 16) >= this.servers.length) {
        throw new Error(`service SID ${r.json.sid} names no shard of this cluster`);
      }
      if (r.json.sid.slice(0, 4).toUpperCase() === tag) return r.json;
      await request(this, `/v2/Services/${r.json.sid}`, { method: 'DELETE' });
    }
    throw new Error(`no service landed on shard ${k} in 64 creates`);
  }

  /** Stops everything (HAProxy, the chatstore servers, NATS) and removes the
   * state directory unless keep. */
  async stop({ keep = false } = {}) {
    if (this.haproxy) await this.haproxy.stop(3000);
    const running = this.servers.flat().filter((x) => x.alive());
    const exits = await Promise.all(running.map((x) => x.stop(5000)));
    await Promise.all(this.nats.map((n) => n.stop(5000)));
    if (!keep) fs.rmSync(this.dir, { recursive: true, force: true });
    return running.map((x, i) => ({ name: x.name, exit: exits[i], tail: x.tail(1500) }));
  }

  /** stop(), then throws unless every chatstore-server still running was
   * stopped cleanly by its SIGTERM (exit 0: no crash, and under ASan no
   * leak report, at shutdown). */
  async stopChecked() {
    const bad = (await this.stop()).filter((x) => x.exit.code !== 0);
    if (bad.length) {
      throw new Error(`not stopped cleanly: ${bad.map((x) => `${x.name} ${JSON.stringify(x.exit)}\n${x.tail}`).join('\n')}`);
    }
  }
}

/**
 * Create load: `workers` loops, each POSTing messages to its channel path
 * (channels[i % channels.length]) through target until stop() is called.
 * With retryMs, a create that fails is retried (same body) until it gets a
 * 2xx or retryMs pass since its first attempt. Every attempt is recorded:
 * { channel, body, sent, done, status (0: network error), text, error, try }.
 * Returns { attempts, stop() (resolves once every worker is done) }.
 */
function createLoad(target, channels, { workers = 8, retryMs = 0, tag = 'm', timeout = 5000 } = {}) {
  const attempts = [];
  let stopping = false;
  let n = 0;
  const worker = async (w) => {
    const ch = channels[w % channels.length];
    while (!stopping) {
      const body = `${tag}-${w}-${n++}-${crypto.randomBytes(4).toString('hex')}`;
      const first = Date.now();
      for (let tr = 0; ; tr++) {
        const a = { channel: ch, body, sent: Date.now(), done: 0, status: 0, text: '', error: null, try: tr };
        try {
          const r = await request(target, ch, { method: 'POST', form: { Body: body }, timeout });
          a.status = r.status;
          a.text = r.text;
        } catch (e) {
          a.error = e.message;
        }
        a.done = Date.now();
        attempts.push(a);
        const ok = a.status >= 200 && a.status < 300;
        if (ok || !retryMs || Date.now() - first > retryMs) break;
        await sleep(50);
      }
      if (!retryMs && attempts[attempts.length - 1].status === 0) await sleep(20);
    }
  };
  const all = Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
  return {
    attempts,
    async stop() { stopping = true; await all; },
  };
}

/** Splits attempts into acknowledged (2xx) and failed. */
function outcome(attempts) {
  const ok = attempts.filter((a) => a.status >= 200 && a.status < 300);
  const failed = attempts.filter((a) => !(a.status >= 200 && a.status < 300));
  return { ok, failed };
}

/** Creates a channel in service sid through the cluster; resolves the path
 * of its message list. */
async function messagesPath(c, sid) {
  const r = await request(c, `/v2/Services/${sid}/Channels`, { method: 'POST', form: {} });
  if (r.status !== 201) throw new Error(`create channel: ${r.status} ${r.text}`);
  return `/v2/Services/${sid}/Channels/${r.json.sid}/Messages`;
}

/** Runs a test's main(): exit 1 when it throws or takes longer than ms. */
function runTest(name, main, ms = 150000) {
  const deadline = setTimeout(() => {
    console.log(`# ${name}: no result within ${ms / 1000} s`);
    process.exit(1);
  }, ms);
  main().then(() => { clearTimeout(deadline); }, (e) => {
    console.log(`# ${name} FAILED: ${e.stack}`);
    process.exit(1);
  });
}

module.exports = {
  HOST, Proc, createLoad, freePorts, messagesPath, outcome, request, runTest, sleep,
  startCluster, waitFor,
};
