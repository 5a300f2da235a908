'use strict';
// Slow and idle clients (ctest server_slow; named without .test.js so that
// it runs on its own: it waits for the server's timeouts). Hundreds of
// connections on loopback that send nothing, headers a byte at a time or a
// body that never ends, while well-behaved clients keep being answered
// correctly; the slow ones are closed after --timeout, the per-address
// limit refuses the excess, and the server's memory stays bounded.
// Latencies are measured by bench/load/slow.sh, not asserted here.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const net = require('node:net');
const { startServer, request } = require('./server');
const { attack, attacker, goodClient, rss } = require('./attack');

const TIMEOUT_S = 2;
const PER_IP = 40;
// The RSS bounds are for a plain build. Under ThreadSanitizer every byte
// the server touches has shadow memory beside it (tests/CMakeLists.txt
// sets CHATSTORE_TEST_RSS_SCALE there); ASan's build keeps its quarantine
// small instead.
const RSS_SCALE = Number(process.env.CHATSTORE_TEST_RSS_SCALE || 1);

describe('slow and idle clients', () => {
  let srv;
  let is;
  let chs;
  before(async () => {
    srv = await startServer({
      extraArgs: ['--timeout', String(TIMEOUT_S), '--max-connections', '1000',
        '--max-connections-per-ip', String(PER_IP)],
    });
    is = (await request(srv, '/v2/Services', { method: 'POST', form: { FriendlyName: 'slow' } })).json.sid;
    // a channel each for the well-behaved clients: each checks its own newest messages
    chs = [];
    for (let i = 0; i < 4; i++) {
      chs.push((await request(srv, `/v2/Services/${is}/Channels`, { method: 'POST', form: { UniqueName: `c${i}` } })).json.sid);
    }
  });
  after(async () => { await srv.stop(); });

  it('hundreds of idle and slow-drip connections: good clients answered, slow ones closed after --timeout, memory bounded', async () => {
    // Warm up, then the baseline.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    let stop = false;
    await goodClient(srv, is, chs[0], (() => { let n = 0; return () => n++ > 20; })(), agent);
    const rss0 = rss(srv.pid);

    // 8 addresses x 40 connections = 320: within the per-address limit each.
    const n = 8 * PER_IP;
    const t0 = Date.now();
    const { all } = attack(srv.port, srv.auth, { n, addrs: 8 });
    let peak = rss0;
    const sampler = setInterval(() => { peak = Math.max(peak, rss(srv.pid)); }, 100);
    // Well-behaved clients throughout (4 in parallel, keep-alive).
    const goods = Promise.all(chs.map((ch) => goodClient(srv, is, ch, () => stop, agent)));
    const recs = await all;
    const closedBy = Date.now() - t0;
    stop = true;
    const results = await goods;
    clearInterval(sampler);
    agent.destroy();

    // Good clients: every answer correct, and plenty of them.
    const errors = results.flatMap((r) => r.errors);
    const requests = results.reduce((a, r) => a + r.requests, 0);
    assert.deepEqual(errors.slice(0, 5), [], `${errors.length} wrong answers of ${requests}`);
    assert.ok(requests >= 100, `only ${requests} good requests answered during the attack`);

    // Slow connections: all closed by the server after --timeout, not before
    // (the drips never go idle: libmicrohttpd's inactivity timeout alone would not).
    assert.equal(recs.length, n);
    for (const r of recs) {
      const life = r.closedAt - r.openedAt;
      assert.ok(life >= TIMEOUT_S * 1000 - 300, `${r.kind} from ${r.from} closed after ${life} ms`);
      assert.ok(life <= TIMEOUT_S * 1000 + 2500, `${r.kind} from ${r.from} open for ${life} ms`);
      assert.equal(r.reply, '', `${r.kind}: no reply expected, got ${r.reply.slice(0, 60)}`);
    }
    const drips = recs.filter((r) => r.kind !== 'idle');
    assert.ok(drips.every((r) => r.bytes >= 4), 'the drips kept sending until closed');
    assert.ok(closedBy < TIMEOUT_S * 1000 + 5000, `the last closed after ${closedBy} ms`);

    // Memory: no body kept, no per-connection growth beyond the fixed pools.
    const growth = (peak - rss0) / (1 << 20);
    assert.ok(growth < 48 * RSS_SCALE, `RSS grew by ${growth.toFixed(1)} MiB (from ${(rss0 / (1 << 20)).toFixed(1)} MiB)`);
  });

  it('the per-address limit refuses the excess at once, and other addresses are unaffected', async () => {
    const excess = 25;
    const t0 = Date.now();
    const conns = Array.from({ length: PER_IP + excess },
      () => attacker(srv.port, '127.0.0.10', 'idle', srv.auth));
    // Meanwhile another address is served.
    const r = await request(srv, '/v2/Services');
    assert.equal(r.status, 200);
    const recs = await Promise.all(conns);
    const early = recs.filter((x) => x.closedAt - t0 < TIMEOUT_S * 1000 - 500);
    const late = recs.filter((x) => x.closedAt - t0 >= TIMEOUT_S * 1000 - 500);
    assert.equal(early.length, excess, `refused at once: ${early.length}, kept until the timeout: ${late.length}`);
    assert.equal(late.length, PER_IP);
  });

  it('--max-connections: at most that many are served at a time; the rest wait their turn', async () => {
    const small = await startServer({ extraArgs: ['--timeout', String(TIMEOUT_S), '--max-connections', '10',
      '--max-connections-per-ip', '0'] });
    try {
      const t0 = Date.now();
      const conns = Array.from({ length: 25 }, (_, i) => attacker(small.port, `127.0.0.${2 + (i % 8)}`, 'idle', small.auth));
      const recs = await Promise.all(conns);
      const waves = [0, 0, 0, 0, 0];
      for (const r of recs) waves[Math.min(4, Math.floor((r.closedAt - t0) / (TIMEOUT_S * 1000 + 150)))]++;
      // Accepted only as others close: 10 (or fewer) per --timeout.
      assert.ok(waves[0] >= 1 && waves[0] <= 10, `waves ${waves}`);
      assert.ok(waves[0] + waves[1] <= 20, `waves ${waves}`);
      assert.ok(waves[2] + waves[3] + waves[4] >= 5, `waves ${waves}`);
      assert.equal((await request(small, '/v2/Services')).status, 200);
    } finally {
      await small.stop();
    }
  });

  it('unauthenticated bodies streamed at full speed are dropped, not kept', async () => {
    const rss0 = rss(srv.pid);
    let peak = rss0;
    const sampler = setInterval(() => { peak = Math.max(peak, rss(srv.pid)); }, 50);
    const one = () => new Promise((resolve) => {
      const s = net.connect(srv.port, '127.0.0.1');
      const piece = Buffer.concat([Buffer.from('40000\r\n'), Buffer.alloc(0x40000, 0x62), Buffer.from('\r\n')]);
      let sent = 0;
      let closed = false;
      s.on('close', () => { closed = true; resolve(sent); });
      s.on('error', () => {});
      const pump = () => {
        while (!closed && sent < (64 << 20)) {
          sent += 0x40000;
          if (!s.write(piece)) return s.once('drain', pump);
        }
        if (!closed) s.end('0\r\n\r\n');
      };
      s.write('POST /v2/Services HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
      pump();
    });
    const sent = await Promise.all(Array.from({ length: 8 }, one));
    clearInterval(sampler);
    for (const b of sent) assert.ok(b < 64 << 20, `the server read all ${b} bytes`);
    const growth = (peak - rss0) / (1 << 20);
    assert.ok(growth < 24 * RSS_SCALE, `8 x 16+ MiB dropped, yet RSS grew by ${growth.toFixed(1)} MiB`);
    assert.equal((await request(srv, '/v2/Services')).status, 200);
  });
});
