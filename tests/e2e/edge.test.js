'use strict';
// The server's HTTP edge: authentication decided from the headers (the body
// of a refused request never kept, never waited for when the client asks
// first), the body limits (--max-body, --media-cap), --listen on IPv4 and
// IPv6 with its errors, and malformed HTTP on a raw socket.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { startServer, request, assertError, serverBin, ERROR_KEYS } = require('./server');

/** Writes data (a string, Buffer or array of them written in turn) on a
 * fresh socket and collects what comes back until the server closes, `until`
 * matches, or `wait` ms pass. Resolves to { why, out, ms }. */
function raw(srv, data, wait = 3000, until = null, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const s = net.connect(srv.port, host);
    let out = Buffer.alloc(0);
    let done = false;
    const t0 = Date.now();
    const fin = (why) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ why, out: out.toString('latin1'), ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => fin('timeout'), wait);
    s.on('data', (d) => {
      out = Buffer.concat([out, d]);
      if (until && until.test(out.toString('latin1'))) fin('matched');
    });
    s.on('end', () => fin('end'));
    s.on('close', () => fin('close'));
    s.on('error', (e) => fin(`error ${e.code}`));
    for (const d of [].concat(data)) s.write(d, () => {});
  });
}

/** The statuses of the responses in out, in order. */
const statuses = (out) => [...out.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));

/** The JSON body of the first response in out. */
function firstBody(out) {
  const h = out.indexOf('\r\n\r\n');
  const len = Number(/\r\nContent-Length: (\d+)/i.exec(out.slice(0, h))[1]);
  return JSON.parse(out.slice(h + 4, h + 4 + len));
}

/** Streams a chunked body of `chunk`-byte pieces until the server closes the
 * connection or `max` bytes went out. Resolves to { sent, out, why }. */
function streamChunked(srv, head, max, chunk = 256 * 1024) {
  return new Promise((resolve) => {
    const s = net.connect(srv.port, '127.0.0.1');
    const piece = Buffer.concat([Buffer.from(`${chunk.toString(16)}\r\n`),
      Buffer.alloc(chunk, 0x61), Buffer.from('\r\n')]);
    let sent = 0;
    let out = '';
    let done = false;
    const fin = (why) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ sent, out, why });
    };
    const timer = setTimeout(() => fin('timeout'), 30000);
    s.on('data', (d) => { out += d.toString('latin1'); });
    s.on('close', () => fin('close'));
    s.on('error', (e) => fin(`error ${e.code}`));
    const pump = () => {
      while (!done && sent < max) {
        sent += chunk;
        if (!s.write(piece)) return s.once('drain', pump);
      }
      if (!done) s.end('0\r\n\r\n');
    };
    s.write(head);
    pump();
  });
}

async function assertHealthy(srv, what) {
  const r = await request(srv, '/v2/Services');
  assert.equal(r.status, 200, `${what}: ${r.text}`);
  assert.ok(srv.alive(), `${what}: the server died`);
}

describe('authentication comes from the headers', () => {
  let srv;
  before(async () => { srv = await startServer(); });
  after(async () => { await srv.stop(); });
  const head = (auth, extra) => `POST /v2/Services HTTP/1.1\r\nHost: x\r\n` +
    (auth ? `Authorization: ${auth}\r\n` : '') + extra + '\r\n';

  it('Expect: 100-continue without valid credentials: 401 at once, the body never asked for', async () => {
    for (const auth of [null, 'Basic eDp5', 'Bearer abc']) {
      for (const len of ['14', '99999999999']) {
        const r = await raw(srv, head(auth, `Expect: 100-continue\r\nContent-Length: ${len}\r\n`), 5000);
        assert.deepEqual(statuses(r.out), [401], `${auth} ${len}: ${r.out.slice(0, 80)}`);
        assert.notEqual(r.why, 'timeout', 'the connection closes after the early reply');
        const b = firstBody(r.out);
        assert.deepEqual(Object.keys(b), ERROR_KEYS);
        assert.equal(b.code, 20003);
        assert.match(r.out, /\r\nWWW-Authenticate: Basic realm="Twilio API"\r\n/i);
      }
    }
    // Chunked with Expect: the same.
    const c = await raw(srv, head(null, 'Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n'), 5000);
    assert.deepEqual(statuses(c.out), [401]);
    // With valid credentials and a body within the limit the client is told to go on.
    const ok = await raw(srv, head(srv.auth, 'Expect: 100-continue\r\nContent-Length: 14\r\n'), 5000, /\r\n\r\n/);
    assert.match(ok.out, /^HTTP\/1\.1 100 Continue\r\n/);
  });

  it('a Content-Length past what is ever drained: 401 at once without waiting for the body', async () => {
    // No Expect: the client would send 10^11 bytes; the server does not wait for them.
    const r = await raw(srv, head(null, 'Content-Length: 99999999999\r\n') + 'FriendlyName=x', 5000);
    assert.deepEqual(statuses(r.out), [401], r.out.slice(0, 80));
    assert.notEqual(r.why, 'timeout');
    assert.ok(r.ms < 2000, `${r.ms} ms`);
  });

  it('a refused body within the drain is read and dropped: the 401 follows it and the connection stays usable', async () => {
    const body = 'FriendlyName=' + 'x'.repeat(3 << 20); // over --max-body too: 401 first
    const second = `GET /v2/Services HTTP/1.1\r\nHost: x\r\nAuthorization: ${srv.auth}\r\n\r\n`;
    const r = await raw(srv, [head(null, `Content-Length: ${body.length}\r\n`), body, second], 10000,
      /"key": "services"\}\}$/);
    assert.deepEqual(statuses(r.out), [401, 200], r.out.slice(0, 200));
    assert.equal(r.why, 'matched');
    // Chunked, unauthenticated, 4 MiB: dropped as it comes, then 401.
    const c = await streamChunked(srv, head(null, 'Transfer-Encoding: chunked\r\n'), 4 << 20);
    assert.deepEqual(statuses(c.out), [401], c.out.slice(0, 80));
  });

  it('a refused chunked body that goes on past 16 MiB: the connection is closed', async () => {
    for (const auth of [null, srv.auth]) { // 401, and 413 (over --max-body)
      const c = await streamChunked(srv, head(auth, 'Transfer-Encoding: chunked\r\n'), 200 << 20);
      assert.ok(c.why === 'close' || c.why.startsWith('error'), c.why);
      assert.ok(c.sent < 64 << 20, `the server read ${c.sent} bytes before closing`);
      assert.ok(c.sent >= 16 << 20, `closed after ${c.sent} bytes: before the drain was used`);
    }
    await assertHealthy(srv, 'after long refused bodies');
  });

  it('node http client: 401 over a body of any size, 413 only with valid credentials', async () => {
    const p = '/v2/Services';
    for (const size of [0, 100, (1 << 20) + 1, 5 << 20]) {
      const form = 'FriendlyName=' + 'a'.repeat(size);
      assertError(assert, await request(srv, p, { method: 'POST', form, auth: false }), 401, 20003, `${size} no auth`);
      assertError(assert, await request(srv, p, { method: 'POST', form, auth: 'Basic eDp5' }), 401, 20003, `${size} bad auth`);
      assertError(assert, await request(srv, p, { method: 'POST', form, auth: false, chunked: true }), 401, 20003, `${size} chunked`);
    }
    assertError(assert, await request(srv, p, { method: 'POST', form: 'FriendlyName=' + 'a'.repeat(5 << 20) }), 413, 20001, 'authorized, 5 MiB');
  });

  it('curl: 401 and 413 over large bodies, with and without Expect: 100-continue', async () => {
    const curl = spawnSync('curl', ['--version']);
    assert.equal(curl.status, 0, 'curl is needed by this test (Debian package curl)');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cs-edge-'));
    try {
      const f = path.join(dir, 'body');
      fs.writeFileSync(f, 'FriendlyName=' + 'a'.repeat(3 << 20));
      const run = (user, expect) => new Promise((resolve) => {
        const args = ['-s', '-o', '-', '-w', '\n%{http_code}', '-u', user, '--data-binary', `@${f}`,
          '-H', 'Content-Type: application/x-www-form-urlencoded', `http://127.0.0.1:${srv.port}/v2/Services`];
        if (!expect) args.push('-H', 'Expect:'); // curl sends Expect: 100-continue above 1 MiB
        const p = spawn('curl', args);
        let out = '';
        p.stdout.on('data', (d) => { out += d; });
        p.on('close', (code) => resolve({ code, out }));
      });
      for (const expect of [true, false]) {
        const bad = await run(`${srv.accountSid}:wrong`, expect);
        assert.equal(bad.code, 0, `curl exit ${bad.code}`);
        assert.match(bad.out, /\n401$/, `expect ${expect}: ${bad.out.slice(-200)}`);
        assert.equal(JSON.parse(bad.out.replace(/\n401$/, '')).code, 20003);
        const big = await run(`${srv.accountSid}:${srv.authToken}`, expect);
        assert.match(big.out, /\n413$/, `expect ${expect}: ${big.out.slice(-200)}`);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('body limits: --max-body for forms, --media-cap for media uploads', () => {
  let srv;
  before(async () => { srv = await startServer({ extraArgs: ['--max-body', '100', '--media-cap', '5000'] }); });
  after(async () => { await srv.stop(); });

  it('a form body over --max-body is 413, at the limit it is handled, by Content-Length or chunked', async () => {
    const atLimit = 'FriendlyName=' + 'a'.repeat(100 - 13);
    assert.equal(atLimit.length, 100);
    for (const chunked of [false, true]) {
      const ok = await request(srv, '/v2/Services', { method: 'POST', form: atLimit, chunked });
      assert.equal(ok.status, 201, ok.text);
      assertError(assert, await request(srv, '/v2/Services', { method: 'POST', form: atLimit + 'a', chunked }),
        413, 20001, `101 bytes, chunked ${chunked}`);
    }
  });

  it('a media upload is held to --media-cap, not --max-body', async () => {
    const s = await request(srv, '/v2/Services', { method: 'POST', form: { FriendlyName: 'm' } });
    const up = (n, chunked) => request(srv, `/v1/Services/${s.json.sid}/Media`,
      { method: 'POST', body: Buffer.alloc(n, 1), chunked, headers: { 'Content-Type': 'image/png' } });
    for (const chunked of [false, true]) {
      const r = await up(2000, chunked);
      assert.equal(r.status, 201, r.text);
      assert.equal(r.json.size, 2000);
      assertError(assert, await up(5001, chunked), 413, 20001, `over the media cap, chunked ${chunked}`);
    }
    // Other /v1 paths are not uploads: --max-body holds there (413 before the 404).
    assertError(assert, await request(srv, `/v1/Services/${s.json.sid}/Media/x`,
      { method: 'POST', body: Buffer.alloc(2000, 1) }), 413, 20001, 'not the upload route');
  });
});

describe('Keep-Alive: the idle limit announced', () => {
  let srv;
  before(async () => { srv = await startServer({ extraArgs: ['--timeout', '2'] }); });
  after(async () => { await srv.stop(); });

  it('replies carry Keep-Alive: timeout=--timeout; a kept-alive client idle past it is served on its next request', async () => {
    const r = await request(srv, '/v2/Services');
    assert.equal(r.status, 200);
    assert.equal(r.headers['keep-alive'], 'timeout=2');
    // node's agent closes an idle socket a second before the hint, so the
    // request after the idle period goes out on a new connection, not into
    // the server closing the old one.
    const http = require('node:http');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = () => new Promise((resolve, reject) => {
      const q = http.request({ host: '127.0.0.1', port: srv.port, path: '/v2/Services', agent,
        headers: { Authorization: srv.auth } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
      q.on('error', reject);
      q.end();
    });
    try {
      for (const idle of [0, 1500, 2100]) {
        await new Promise((res) => setTimeout(res, idle));
        assert.equal(await get(), 200, `after ${idle} ms idle`);
      }
    } finally { agent.destroy(); }
  });
});

describe('--listen', () => {
  it('IPv6 loopback: [::1]:0 answers over IPv6, and prints a bracketed origin', async () => {
    const srv = await startServer({ listen: '[::1]:0' });
    try {
      assert.match(srv.origin, /^http:\/\/\[::1\]:\d+$/);
      assert.equal(srv.host, '::1');
      const r = await request(srv, '/v2/Services', { method: 'POST', form: { FriendlyName: 'v6' } });
      assert.equal(r.status, 201, r.text);
      // IPv6 only: nothing on the IPv4 loopback at that port.
      const v4 = await raw(srv, 'GET / HTTP/1.1\r\n\r\n', 2000);
      assert.match(v4.why, /^error (ECONNREFUSED|ECONNRESET)$/, v4.why);
    } finally {
      await srv.stop();
    }
  });

  it('IPv4 wildcard 0.0.0.0, and --host / --port', async () => {
    const srv = await startServer({ listen: '0.0.0.0:0' });
    try {
      assert.match(srv.origin, /^http:\/\/0\.0\.0\.0:\d+$/);
      assert.equal((await request(srv, '/v2/Services')).status, 200);
    } finally {
      await srv.stop();
    }
    const v6 = await startServer({ extraArgs: ['--host', '::1', '--port', '0'] });
    try {
      assert.match(v6.origin, /^http:\/\/\[::1\]:\d+$/);
      assert.equal((await request(v6, '/v2/Services')).status, 200);
    } finally {
      await v6.stop();
    }
  });

  const runBin = (args) => spawnSync(serverBin(), ['--auth-token', 't', ...args],
    { encoding: 'utf8', timeout: 10000 });

  it('an address in use: a clear message and exit status 1', async () => {
    for (const listen of ['127.0.0.1:0', '[::1]:0']) {
      const srv = await startServer({ listen });
      try {
        const hostPart = listen.replace(/:0$/, '');
        const r = runBin(['--listen', `${hostPart}:${srv.port}`]);
        assert.equal(r.status, 1, r.stderr);
        assert.equal(r.stderr.trim(),
          `chatstore-server: cannot listen on ${hostPart}:${srv.port}: address already in use`);
        assert.doesNotMatch(r.stdout, /listening on/);
        await assertHealthy(srv, 'the first server');
      } finally {
        await srv.stop();
      }
    }
  });

  it('an invalid address: a clear message and exit status 2 (1 when the machine lacks it)', () => {
    for (const [arg, msg] of [
      ['1.2.3:80', /1\.2\.3 is not a numeric IPv4 address/],
      ['localhost:80', /localhost is not a numeric IPv4 address/],
      ['::1:80', /an IPv6 address goes in brackets/],
      ['[::1]80', /expected \[IPv6\]:PORT/],
      ['[1.2.3.4]:80', /1\.2\.3\.4 is not a numeric IPv6 address/],
      ['127.0.0.1:65536', /the port must be 0 to 65535/],
      ['127.0.0.1:', /the port must be 0 to 65535/],
      ['127.0.0.1', /expected HOST:PORT/],
    ]) {
      const r = runBin(['--listen', arg]);
      assert.equal(r.status, 2, `${arg}: ${r.stderr}`);
      assert.match(r.stderr, msg, arg);
    }
    const h = runBin(['--host', 'example.org']);
    assert.equal(h.status, 2);
    assert.match(h.stderr, /--host example\.org: not a numeric IPv4 or IPv6 address/);
    // Numeric but not this machine's (TEST-NET-1, RFC 5737).
    const r = runBin(['--listen', '192.0.2.1:8080']);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /cannot listen on 192\.0\.2\.1:8080: address not available on this machine/);
  });
});

describe('malformed HTTP on a raw socket', () => {
  let srv;
  before(async () => { srv = await startServer({ extraArgs: ['--timeout', '2'] }); });
  after(async () => { await srv.stop(); });
  const A = () => `Authorization: ${srv.auth}\r\n`;
  const form = 'Content-Type: application/x-www-form-urlencoded\r\n';

  // Each answered with a 4xx, or closed (within the 2 s --timeout plus slack).
  const cases = () => [
    ['oversized header', `GET /v2/Services HTTP/1.1\r\nHost: x\r\n${A()}X-Big: ${'a'.repeat(200000)}\r\n\r\n`, [431]],
    ['oversized request line', `GET /v2/Services?x=${'a'.repeat(300000)} HTTP/1.1\r\nHost: x\r\n${A()}\r\n`, [414]],
    ['20000 headers', `GET /v2/Services HTTP/1.1\r\nHost: x\r\n${A()}` +
      Array.from({ length: 20000 }, (_, i) => `X-H${i}: v`).join('\r\n') + '\r\n\r\n', [431]],
    ['chunk size not hex', `POST /v2/Services HTTP/1.1\r\nHost: x\r\n${A()}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`, [400]],
    ['chunk size overflows', `POST /v2/Services HTTP/1.1\r\nHost: x\r\n${A()}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n`, [413]],
    ['chunk without its CRLF', `POST /v2/Services HTTP/1.1\r\nHost: x\r\n${A()}Transfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n`, [400]],
    ['chunked and Content-Length', `POST /v2/Services HTTP/1.1\r\nHost: x\r\n${A()}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n`, [400]],
    ['bad percent-encoding in the path', `GET /v2/Services/%zz HTTP/1.1\r\nHost: x\r\n${A()}\r\n`, [404]],
    ['bad percent-encoding in the query', `GET /v2/Services?PageSize=%z HTTP/1.1\r\nHost: x\r\n${A()}\r\n`, [400]],
    ['bad percent-encoding in the form', `POST /v2/Services HTTP/1.1\r\nHost: x\r\n${A()}${form}Content-Length: 14\r\n\r\nFriendlyName=%`, [400]],
    ['NUL in the path', `GET /v2/Serv\0ices HTTP/1.1\r\nHost: x\r\n${A()}\r\n`, [404]],
    ['NUL inside the credentials', `GET /v2/Services HTTP/1.1\r\nHost: x\r\nAuthorization: ${srv.auth.slice(0, 12)}\0${srv.auth.slice(12)}\r\n\r\n`, [401]],
    ['conflicting Content-Length', `POST /v2/Services HTTP/1.1\r\nHost: x\r\n${A()}${form}Content-Length: 14\r\nContent-Length: 3\r\n\r\nFriendlyName=x`, [400]],
    ['negative Content-Length', `POST /v2/Services HTTP/1.1\r\nHost: x\r\n${A()}Content-Length: -5\r\n\r\nFriendlyName=x`, [400]],
    ['Content-Length beyond 64 bits', `POST /v2/Services HTTP/1.1\r\nHost: x\r\n${A()}Content-Length: 99999999999999999999999999\r\n\r\n`, [413]],
    ['absurd Content-Length', `POST /v2/Services HTTP/1.1\r\nHost: x\r\n${A()}Content-Length: 999999999999999\r\n\r\nFriendlyName=x`, [413]],
    ['HTTP/9.9', 'GET /v2/Services HTTP/9.9\r\nHost: x\r\n\r\n', [505]],
    ['binary garbage (a TLS hello)', Buffer.from('160301020001000001fc0303aabbccdd', 'hex'), []],
    ['half a request line', 'GET /v2/Serv', []],
  ];

  it('each is answered with a 4xx or closed, and the server goes on', async () => {
    const all = cases();
    const results = await Promise.all(all.map(([, data]) => raw(srv, data, 6000)));
    for (const [i, [what, , want]] of all.entries()) {
      const r = results[i];
      assert.notEqual(r.why, 'timeout', `${what}: still open after 6 s (--timeout 2)`);
      const st = statuses(r.out);
      assert.deepEqual(st.slice(0, 1), want, `${what}: ${JSON.stringify(r.out.slice(0, 120))}`);
      if (st.length) assert.ok(st.every((x) => x >= 400 && x < 500 || x === 505), `${what}: ${st}`);
      // Replies of the server's own (not libmicrohttpd's) are Twilio errors.
      if (st.length && /application\/json/.test(r.out)) {
        assert.deepEqual(Object.keys(firstBody(r.out)), ERROR_KEYS, what);
      }
    }
    await assertHealthy(srv, 'after malformed requests');
  });

  it('pipelined: good requests answered in order, then garbage closes the connection', async () => {
    const good = `GET /v2/Services HTTP/1.1\r\nHost: x\r\n${A()}\r\n`;
    const r = await raw(srv, good + good + '\x01\x02 garbage\r\n\r\n' + good, 6000);
    assert.notEqual(r.why, 'timeout');
    const st = statuses(r.out);
    assert.deepEqual(st.slice(0, 2), [200, 200], r.out.slice(0, 100));
    assert.ok(st.length === 2 || (st.length === 3 && st[2] >= 400 && st[2] < 500), `${st}`);
    // The same garbage in bulk, many times over, at once.
    const rnd = crypto.randomBytes(64 * 1024);
    await Promise.all(Array.from({ length: 40 }, (_, i) =>
      raw(srv, [good, rnd.subarray(i * 1000, i * 1000 + 20000)], 6000)));
    await assertHealthy(srv, 'after pipelined garbage');
  });

  it('duplicate but equal Content-Length headers: taken as one', async () => {
    const r = await raw(srv, `POST /v2/Services HTTP/1.1\r\nHost: x\r\n${A()}${form}Content-Length: 14\r\n` +
      'Content-Length: 14\r\nConnection: close\r\n\r\nFriendlyName=d', 6000);
    assert.deepEqual(statuses(r.out), [201], r.out.slice(0, 100));
  });
});
