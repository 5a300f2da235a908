'use strict';
// A benchmark, not a test (it asserts nothing; timings never decide pass or
// fail): what a test suite pays for a chatstore-server per test file, and
// for a reset between tests.
//
//   CHATSTORE_SERVER_BIN=build/server/chatstore-server node tests/e2e/start-bench.js [runs]
//
// Start: from spawn() to the "listening on" line, and to the first answered
// request (GET /v2/Services on a new connection), for an empty store and for
// a --fixture file of 10^4 messages (written to a temporary directory), each
// `runs` times (default 30); min, median and p90 in ms.
// Reset: POST /_chatstore/reset on a keep-alive connection against a store
// holding the 10^4 messages, to empty (Fixture=false) and back to the
// fixture (a clear and a reload), beside GET /_chatstore/stats, the cost of
// the round trip itself; min and median in ms over `runs` pairs.
// Node built-ins only.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const BIN = process.env.CHATSTORE_SERVER_BIN;
if (!BIN || !fs.existsSync(BIN)) {
  console.error('set CHATSTORE_SERVER_BIN to the chatstore-server binary');
  process.exit(2);
}
const RUNS = Number(process.argv[2] || 30);
const ACCOUNT = 'AC' + 'be'.repeat(16);
const TOKEN = 'bench';
const AUTH = 'Basic ' + Buffer.from(`${ACCOUNT}:${TOKEN}`).toString('base64');
const ms = (a, b) => Number(b - a) / 1e6;

/** A fixture of n messages over `channels` channels, ~100-byte bodies. */
function writeFixture(file, n, channels) {
  const chans = [];
  for (let c = 0; c < channels; c++) {
    const messages = [];
    for (let i = c; i < n; i += channels) {
      messages.push({ from: `user${i % 37}`, body: `message ${i} `.padEnd(100, 'x'),
        date_created: new Date(Date.UTC(2020, 0, 1) + i * 1000).toISOString().replace('.000', '') });
    }
    chans.push({ unique_name: `c${c}`, messages });
  }
  fs.writeFileSync(file, JSON.stringify({ services: [{ friendly_name: 'bench', channels: chans }] }));
}

function get(port, p, agent, method = 'GET', body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method, agent,
      headers: Object.assign({ Authorization: AUTH }, body ? {
        'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(body),
      } : {}) }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${p}: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Starts the server; resolves {proc, port, listening, answered, loadLine}. */
function startTimed(extra) {
  const t0 = process.hrtime.bigint();
  const proc = spawn(BIN, ['--listen', '127.0.0.1:0', '--account-sid', ACCOUNT, '--auth-token', TOKEN,
    '--seed', '1', '--clock', '2020-01-01T00:00:00Z+1s', '--test-endpoints', ...extra],
  { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  return new Promise((resolve, reject) => {
    proc.on('error', reject);
    proc.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    proc.stdout.on('data', async (d) => {
      out += d;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)\n/.exec(out);
      if (!m || proc.listening) return;
      proc.listening = true;
      const t1 = process.hrtime.bigint();
      const port = Number(m[1]);
      await get(port, '/v2/Services', false);
      const t2 = process.hrtime.bigint();
      const f = /parsed in ([\d.]+) ms, loaded in ([\d.]+) ms/.exec(out);
      resolve({ proc, port, listening: ms(t0, t1), answered: ms(t0, t2),
        parse: f ? Number(f[1]) : null, load: f ? Number(f[2]) : null });
    });
  });
}

function stop(proc) {
  return new Promise((resolve) => {
    proc.removeAllListeners('exit');
    proc.on('exit', resolve);
    proc.kill('SIGTERM');
  });
}

function summary(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return `min ${s[0].toFixed(2)}  median ${q(0.5).toFixed(2)}  p90 ${q(0.9).toFixed(2)}`;
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatstore-startbench-'));
  try {
    const big = path.join(dir, 'fixture-10k.json');
    writeFixture(big, 10000, 10);
    console.log(`chatstore-server start and reset, ${RUNS} runs each; ${os.cpus().length} CPUs, ` +
      `node ${process.version}; times in ms`);
    console.log(`fixture: 10,000 messages in 10 channels, ${(fs.statSync(big).size / 1e6).toFixed(2)} MB of JSON`);
    for (const [name, extra] of [['empty store', []], ['10^4-message fixture', ['--fixture', big]]]) {
      const lis = [];
      const ans = [];
      const parses = [];
      const loads = [];
      for (let i = 0; i < RUNS; i++) {
        const s = await startTimed(extra);
        lis.push(s.listening);
        ans.push(s.answered);
        if (s.load !== null) {
          parses.push(s.parse);
          loads.push(s.load);
        }
        await stop(s.proc);
      }
      console.log(`start, ${name}:`);
      console.log(`  spawn -> "listening on"      ${summary(lis)}`);
      console.log(`  spawn -> first answer        ${summary(ans)}`);
      if (loads.length) {
        console.log(`  in it: parsing the JSON      ${summary(parses)}`);
        console.log(`  in it: loading into store    ${summary(loads)}`);
      }
    }
    const s = await startTimed(['--fixture', big]);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const rtt = [];
    const toEmpty = [];
    const reload = [];
    for (let i = 0; i < 5; i++) await get(s.port, '/_chatstore/stats', agent); // warm
    for (let i = 0; i < RUNS; i++) {
      let t = process.hrtime.bigint();
      await get(s.port, '/_chatstore/stats', agent);
      rtt.push(ms(t, process.hrtime.bigint()));
      t = process.hrtime.bigint();
      await get(s.port, '/_chatstore/reset', agent, 'POST', 'Fixture=false');
      toEmpty.push(ms(t, process.hrtime.bigint()));
      t = process.hrtime.bigint();
      await get(s.port, '/_chatstore/reset', agent, 'POST', 'Fixture=true');
      reload.push(ms(t, process.hrtime.bigint()));
    }
    agent.destroy();
    await stop(s.proc);
    console.log('reset, keep-alive round trips:');
    console.log(`  GET /_chatstore/stats (round trip)          ${summary(rtt)}`);
    console.log(`  reset of 10^4 messages to empty             ${summary(toEmpty)}`);
    console.log(`  reset to the 10^4-message fixture (reload)  ${summary(reload)}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
