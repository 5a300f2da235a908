'use strict';
// Slow and idle clients on loopback, shared by the server_slow test
// (tests/e2e/slow.js) and its benchmark (bench/load/slow.sh): connections
// that send nothing, headers a byte at a time, or a body that never ends,
// each from its own 127.0.0.x address so that the per-address limit of the
// well-behaved clients on 127.0.0.1 is not the attackers'.

const http = require('node:http');
const net = require('node:net');
const fs = require('node:fs');

/** One attacking connection. kind: 'idle' | 'header-drip' | 'body-drip'.
 * Resolves (never rejects) when it is closed, to { kind, from, openedAt,
 * closedAt, bytes, refused } (refused: closed before any byte was sent back
 * and within `refuseMs` of opening). */
function attacker(port, from, kind, auth, dripMs = 250) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: from });
    const rec = { kind, from, openedAt: 0, closedAt: 0, bytes: 0, reply: '' };
    let timer = null;
    const req = kind === 'header-drip'
      ? `POST /v2/Services HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nX-Pad: ${'p'.repeat(10000)}`
      : 'F'.repeat(100000);
    let i = 0;
    const drip = () => {
      if (i < req.length) {
        s.write(req[i++]);
        rec.bytes++;
      }
    };
    s.on('connect', () => {
      rec.openedAt = Date.now();
      if (kind === 'body-drip') {
        s.write(`POST /v2/Services HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\n` +
          'Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nFriendlyName=');
      }
      if (kind !== 'idle') timer = setInterval(drip, dripMs);
    });
    s.on('data', (d) => { rec.reply += d.toString('latin1'); });
    const done = () => {
      if (rec.closedAt) return;
      rec.closedAt = Date.now();
      if (!rec.openedAt) rec.openedAt = rec.closedAt;
      clearInterval(timer);
      s.destroy();
      resolve(rec);
    };
    s.on('close', done);
    s.on('error', done);
    rec.close = done;
  });
}

/** Opens n attackers over the addresses 127.0.0.{first..first+addrs-1},
 * kinds in turn. Returns { conns: [promise], all: Promise of records }. */
function attack(port, auth, { n, first = 2, addrs = 8, kinds = ['idle', 'header-drip', 'body-drip'], dripMs } = {}) {
  const conns = [];
  for (let i = 0; i < n; i++) {
    conns.push(attacker(port, `127.0.0.${first + (i % addrs)}`, kinds[i % kinds.length], auth, dripMs));
  }
  return { conns, all: Promise.all(conns) };
}

/** The server's resident set in bytes (Linux /proc). */
function rss(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}

/** A well-behaved client on a keep-alive agent: creates a message and
 * reads the newest page, checking both answers, until stop() is true.
 * Resolves to { latencies: [ms], errors: [string], requests }. */
async function goodClient(srv, is, ch, stop, agent) {
  const latencies = [];
  const errors = [];
  const call = (method, p, body) => new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const headers = { Authorization: srv.auth };
    if (body) {
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      headers['Content-Length'] = Buffer.byteLength(body);
    }
    const r = http.request({ host: '127.0.0.1', port: srv.port, method, path: p, headers, agent }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        resolve({ status: res.statusCode, text });
      });
    });
    r.setTimeout(10000, () => r.destroy(new Error('timeout')));
    r.on('error', (e) => resolve({ status: 0, text: String(e) }));
    r.end(body);
  });
  let k = 0;
  while (!stop()) {
    const text = `good ${k++} ${Math.random()}`;
    const c = await call('POST', `/v2/Services/${is}/Channels/${ch}/Messages`,
      new URLSearchParams({ Body: text }).toString());
    let ok = c.status === 201;
    try { ok = ok && JSON.parse(c.text).body === text; } catch { ok = false; }
    if (!ok) errors.push(`create: ${c.status} ${c.text.slice(0, 120)}`);
    const l = await call('GET', `/v2/Services/${is}/Channels/${ch}/Messages?Order=desc&PageSize=5`);
    try {
      const j = JSON.parse(l.text);
      if (l.status !== 200 || !j.messages.some((m) => m.body === text)) {
        errors.push(`list: ${l.status} misses "${text}"`);
      }
    } catch {
      errors.push(`list: ${l.status} ${l.text.slice(0, 120)}`);
    }
  }
  return { latencies, errors, requests: latencies.length };
}

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

module.exports = { attack, attacker, goodClient, percentile, rss };
