'use strict';
// Latency of well-behaved clients while hundreds of idle and slow-drip
// connections hold the server (bench/load/slow.sh runs this). Phases of
// `secs` seconds each: no attack, then the attack (connections from
// 127.0.0.2..9 that send nothing, drip headers or never finish a body,
// held below --timeout so that they stay open the whole phase). 4 clients
// on a keep-alive agent create a message and read a page, in turn.
//
//   node bench/load/slow.js SERVER_BIN [secs] [attackers]
const http = require('node:http');
const path = require('node:path');
const e2e = path.join(__dirname, '..', '..', 'tests', 'e2e');
const { attack, goodClient, percentile, rss } = require(path.join(e2e, 'attack.js'));

const [bin, secsArg, nArg] = process.argv.slice(2);
process.env.CHATSTORE_SERVER_BIN = path.resolve(bin);
const { startServer, request } = require(path.join(e2e, 'server.js'));
const secs = Number(secsArg || 10);
const n = Number(nArg || 600);

async function phase(srv, is, chs) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const end = Date.now() + secs * 1000;
  const res = await Promise.all(chs.map((ch) => goodClient(srv, is, ch, () => Date.now() > end, agent)));
  agent.destroy();
  const lat = res.flatMap((r) => r.latencies).sort((a, b) => a - b);
  return {
    requests: lat.length, rps: lat.length / secs, errors: res.reduce((a, r) => a + r.errors.length, 0),
    p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat[lat.length - 1],
  };
}

(async () => {
  // --timeout above the phase: the attackers stay for all of it.
  const srv = await startServer({ extraArgs: ['--timeout', String(secs + 20)] });
  const is = (await request(srv, '/v2/Services', { method: 'POST', form: { FriendlyName: 'b' } })).json.sid;
  const chs = [];
  for (let i = 0; i < 4; i++) {
    chs.push((await request(srv, `/v2/Services/${is}/Channels`, { method: 'POST', form: { UniqueName: `c${i}` } })).json.sid);
  }
  const rss0 = rss(srv.pid);
  const quiet = await phase(srv, is, chs);
  const rss1 = rss(srv.pid);
  const { conns, all } = attack(srv.port, srv.auth, { n, addrs: 8, dripMs: 1000 });
  let closed = 0;
  for (const c of conns) c.then(() => { closed++; });
  await new Promise((r) => setTimeout(r, 1000)); // all connected
  const rssA = rss(srv.pid);
  const loud = await phase(srv, is, chs);
  const rssB = rss(srv.pid);
  const closedDuring = closed;
  await srv.stop().catch(() => {});
  await all;
  const mib = (b) => (b / (1 << 20)).toFixed(1);
  const row = (name, p) => `| ${name} | ${p.requests} | ${p.rps.toFixed(0)} | ${p.p50.toFixed(2)} | ${p.p99.toFixed(2)} | ${p.max.toFixed(2)} | ${p.errors} |`;
  console.log(`${n} attackers (idle, header drip and body drip at 1 byte/s, from 8 addresses), ${secs} s per phase, 4 keep-alive clients (create + page of 5, checked)`);
  console.log('');
  console.log('| phase | requests | req/s | p50 ms | p99 ms | max ms | wrong answers |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  console.log(row('no attack', quiet));
  console.log(row(`${n} slow connections`, loud));
  console.log('');
  console.log(`p99 during / p99 before: ${(loud.p99 / quiet.p99).toFixed(2)}; target p99 during < 20 ms: ${loud.p99 < 20 ? 'met' : 'missed'}`);
  console.log(`attackers closed before the end of the phase: ${closedDuring} of ${n}`);
  console.log(`server RSS: ${mib(rss0)} MiB at start, ${mib(rss1)} after the quiet phase, ${mib(rssA)} with the attackers connected, ${mib(rssB)} at the end`);
})();
