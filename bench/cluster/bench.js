'use strict';
// Message creates through HAProxy into a replicated cluster (1 and 2 shards,
// --replication sync and async) against a single in-memory chatstore-server
// (no replication, no proxy) in the same run, with wrk; the followers' lag
// under that load (their GET /replica, polled every 200 ms), how long they
// take to catch up once the load stops, and a failover's unavailability
// (tests/cluster/failover.js). Run it through bench/cluster/bench.sh.
//
// Environment: CHATSTORE_SERVER_BIN; BENCH_SECONDS (8), BENCH_CONNS (32),
// BENCH_THREADS (2), BENCH_ROUNDS (1: rows in rotating order, each keeps
// its fastest round), OUT (the Markdown file written).

const { execFile, spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Proc, freePorts, request, sleep, startCluster } = require('../../tests/cluster/cluster');

const ROOT = path.resolve(__dirname, '..', '..');
const SECS = Number(process.env.BENCH_SECONDS || 8);
const CONNS = Number(process.env.BENCH_CONNS || 32);
const THREADS = Number(process.env.BENCH_THREADS || 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS || 1);
const OUT = process.env.OUT || path.join(ROOT, 'bench', 'results', 'cluster.md');

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'chatstore-cluster-bench-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));

function wrk(origin, auth, paths) {
  const lua = path.join(work, `post-${crypto.randomBytes(4).toString('hex')}.lua`);
  fs.writeFileSync(lua, [
    '-- POST a message to each path in turn (form-encoded, Basic auth)',
    'wrk.method = "POST"',
    'wrk.body = "Body=Hello%2C+world%21&From=loadtest"',
    'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"',
    `wrk.headers["Authorization"] = "${auth}"`,
    `local paths = { ${paths.map((p) => `"${p}"`).join(', ')} }`,
    'local i = 0',
    'request = function()',
    '  i = i + 1',
    '  return wrk.format(nil, paths[(i % #paths) + 1])',
    'end',
    '',
  ].join('\n'));
  return new Promise((resolve, reject) => {
    execFile('wrk', [`-t${THREADS}`, `-c${CONNS}`, `-d${SECS}s`, '--latency', '-s', lua, origin],
      { timeout: (SECS + 30) * 1000 }, (err, stdout) => {
        if (err) return reject(err);
        const num = (re) => { const m = re.exec(stdout); return m ? m[1] : 'n/a'; };
        const errs = [...stdout.matchAll(/Non-2xx or 3xx responses: (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0) +
          (/Socket errors/.test(stdout) ? 1 : 0);
        resolve({
          rps: Number(num(/Requests\/sec:\s+([\d.]+)/)),
          p50: num(/^\s+50%\s+(\S+)/m),
          p99: num(/^\s+99%\s+(\S+)/m),
          errors: errs,
          raw: stdout,
        });
      });
  });
}

async function single() {
  const [port] = await freePorts(1);
  const ac = 'AC' + crypto.randomBytes(16).toString('hex');
  const tok = crypto.randomBytes(16).toString('hex');
  const p = new Proc('single', process.env.CHATSTORE_SERVER_BIN, [
    '--listen', `127.0.0.1:${port}`, '--account-sid', ac, '--auth-token', tok]).start();
  try {
    await p.waitOutput(/listening on/, 10000);
    const t = { port, auth: 'Basic ' + Buffer.from(`${ac}:${tok}`).toString('base64') };
    const s = await request(t, '/v2/Services', { method: 'POST', form: { FriendlyName: 'load' } });
    const c = await request(t, `/v2/Services/${s.json.sid}/Channels`, { method: 'POST', form: { UniqueName: 'room' } });
    if (c.status !== 201) throw new Error(`single: ${c.text}`);
    const r = await wrk(`http://127.0.0.1:${port}`, t.auth, [`/v2/Services/${s.json.sid}/Channels/room/Messages`]);
    return Object.assign(r, { lag: '', catchup: '', batch: '' });
  } finally {
    await p.stop();
  }
}

// A cluster start that fails is retried (twice at most) and reported in
// the results: this is a benchmark, the tests are where a start must work.
const startFailures = [];
async function startRetried(opts) {
  for (let i = 0; ; i++) {
    try {
      return await startCluster(opts);
    } catch (e) {
      const why = e.message.split('\n').filter((l) => /chatstore-server:|within/.test(l)).slice(0, 2).join(' / ');
      startFailures.push(why);
      console.error(`cluster start failed (${why}); ${i < 2 ? 'retrying' : 'giving up'}`);
      if (i >= 2) throw e;
    }
  }
}

async function cluster(shards, mode, extraArgs = []) {
  const c = await startRetried({ shards, replication: mode, extraArgs });
  try {
    const paths = [];
    for (let k = 0; k < shards; k++) {
      const s = await c.serviceOn(k, `load ${k}`);
      const ch = await request(c, `/v2/Services/${s.sid}/Channels`, { method: 'POST', form: { UniqueName: 'room' } });
      if (ch.status !== 201) throw new Error(ch.text);
      paths.push(`/v2/Services/${s.sid}/Channels/room/Messages`);
    }
    // Followers' lag while wrk runs.
    let polling = true;
    let maxRecords = 0;
    let maxSeconds = 0;
    const poll = (async () => {
      while (polling) {
        for (let k = 0; k < shards; k++) {
          try {
            const f = await c.replica(`s${k}b`);
            maxRecords = Math.max(maxRecords, f.lag_records);
            maxSeconds = Math.max(maxSeconds, f.lag_seconds);
          } catch { /* counted as no sample */ }
        }
        await sleep(200);
      }
    })();
    const before = [];
    for (let k = 0; k < shards; k++) before.push(await c.replica(`s${k}a`));
    const r = await wrk(c.origin, c.auth, paths);
    const tEnd = Date.now();
    let msgs = 0;
    let recs = 0;
    for (let k = 0; k < shards; k++) {
      const a = await c.replica(`s${k}a`);
      msgs += a.stream_seq - before[k].stream_seq;
      recs += a.commits - before[k].commits;
    }
    // Catch-up: every follower has applied its primary's whole stream.
    let caught = 0;
    for (let k = 0; k < shards; k++) {
      const pri = await c.replica(`s${k}a`);
      for (;;) {
        const f = await c.replica(`s${k}b`);
        if (f.applied_seq >= pri.stream_seq) break;
        if (Date.now() - tEnd > 30000) throw new Error(`follower of shard ${k} did not catch up in 30 s`);
        await sleep(10);
      }
      caught = Math.max(caught, Date.now() - tEnd);
    }
    polling = false;
    await poll;
    return Object.assign(r, {
      lag: `${maxRecords} records, ${(maxSeconds * 1000).toFixed(0)} ms`,
      catchup: `${caught} ms`,
      batch: msgs > 0 ? (recs / msgs).toFixed(2) : 'n/a',
    });
  } finally {
    await c.stop();
  }
}

function failover() {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [path.join(ROOT, 'tests', 'cluster', 'failover.js')],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.on('exit', (code) => resolve({ code, lines: out.split('\n').filter((l) => l.startsWith('# ')) }));
  });
}

(async () => {
  const rows = [
    ['single chatstore-server, in memory, no proxy', () => single()],
    ['1 shard, sync, through HAProxy', () => cluster(1, 'sync')],
    ['1 shard, async, through HAProxy', () => cluster(1, 'async')],
    ['2 shards, sync, through HAProxy', () => cluster(2, 'sync')],
    ['2 shards, async, through HAProxy', () => cluster(2, 'async')],
  ];
  const best = new Map();
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < rows.length; i++) {
      const [name, run] = rows[(i + round) % rows.length];
      const r = await run();
      console.error(`${name}: ${r.rps} req/s, p50 ${r.p50}, p99 ${r.p99}, errors ${r.errors}` +
        `${r.lag ? `, ${r.batch} records per stream message, follower lag max ${r.lag}, caught up ${r.catchup} after` : ''}`);
      if (!best.has(name) || r.rps > best.get(name).rps) best.set(name, r);
    }
  }
  const load0 = os.loadavg()[0];
  const fo = await failover();
  const base = best.get(rows[0][0]).rps;
  const lines = [
    `Message creates, wrk -t${THREADS} -c${CONNS} -d${SECS}s on loopback, best of ${ROUNDS} round(s) per row ` +
      '(rows in rotating order). Cluster: three nats-server (JetStream, streams with 3 replicas), a primary and ' +
      'a follower per shard, HAProxy in front; with 2 shards the load alternates between a channel on each shard. ' +
      `Machine: ${os.cpus().length} CPUs shared with other work (load average ${load0.toFixed(1)} at the ` +
      'end of the rows), so compare ratios within this run.' +
      (process.env.LABEL ? ` Server: ${process.env.LABEL}.` : ''),
    '',
    '| setup | requests/s | / single | p50 | p99 | errors | records per stream message | follower lag under load (max) | follower caught up after the load |',
    '|---|---:|---:|---:|---:|---:|---:|---|---:|',
  ];
  for (const [name] of rows) {
    const r = best.get(name);
    lines.push(`| ${name} | ${r.rps} | ${(r.rps / base).toFixed(2)} | ${r.p50} | ${r.p99} | ${r.errors} | ${r.batch || '-'} | ${r.lag || '-'} | ${r.catchup || '-'} |`);
  }
  if (startFailures.length) {
    lines.push('', `Cluster starts that failed and were retried: ${startFailures.length}`);
    for (const w of startFailures) lines.push(`    ${w}`);
  }
  lines.push('', `Failover (tests/cluster/failover.js, exit ${fo.code}): SIGKILL of shard 0's primary under 8 ` +
    'concurrent creators, POST /replica/promote to its follower:', '');
  for (const l of fo.lines) lines.push(`    ${l.slice(2)}`);
  lines.push('');
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, lines.join('\n'));
  console.log(lines.join('\n'));
})().catch((e) => {
  console.error(`bench failed: ${e.stack}`);
  process.exit(1);
});
