'use strict';
// The server as operators run it: GET /healthz, GET /metrics (parsed with a
// real Prometheus text-format parser), --metrics-auth, --access-log and the
// Twilio-Request-Id header (docs/behaviour.md, section 12b).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const parsePrometheus = require('parse-prometheus-text-format');
const { startServer, request, assertError } = require('./server');

const MESSAGES = '/v2/Services/{ServiceSid}/Channels/{ChannelSid}/Messages';

/** GET /metrics (with the credentials unless auth is false), parsed. */
async function scrape(srv, auth) {
  const r = await request(srv, '/metrics', auth === false ? { auth: false } : {});
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  const families = parsePrometheus(r.text);
  const byName = new Map(families.map((f) => [f.name, f]));
  assert.equal(byName.size, families.length, 'each family once');
  byName.text = r.text;
  return byName;
}

/** The value of the sample of family name whose labels include labels
 * (0 when there is none: counters start absent). */
function sample(m, name, labels = {}) {
  const f = m.get(name);
  assert.ok(f, `family ${name} is exposed`);
  const hits = f.metrics.filter((s) => Object.entries(labels)
    .every(([k, v]) => (s.labels || {})[k] === v));
  assert.ok(hits.length <= 1, `${name} ${JSON.stringify(labels)}: one sample at most`);
  return hits.length ? Number(hits[0].value) : 0;
}

/** The histogram series of family name with these labels: { buckets: {le:
 * count}, sum, count }, or undefined when it has no sample yet. */
function histogram(m, name, labels) {
  const f = m.get(name);
  assert.ok(f, `family ${name} is exposed`);
  assert.equal(f.type, 'HISTOGRAM');
  // The parser flattens a histogram with labels into one sample, dropping
  // them; without the TYPE line it returns the _bucket, _sum and _count
  // series as untyped samples, labels kept.
  const untyped = parsePrometheus(m.text.split('\n')
    .filter((l) => l !== `# TYPE ${name} histogram`).join('\n'));
  const series = (suffix) => untyped.filter((u) => u.name === name + suffix)
    .flatMap((u) => u.metrics)
    .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  const count = series('_count');
  if (!count.length) return undefined;
  assert.equal(count.length, 1);
  const buckets = {};
  for (const b of series('_bucket')) {
    assert.ok(!(b.labels.le in buckets), 'each bucket once');
    buckets[b.labels.le] = b.value;
  }
  return { buckets, sum: series('_sum')[0].value, count: count[0].value };
}

async function mkChannel(srv) {
  const s = await request(srv, '/v2/Services', { method: 'POST', form: { FriendlyName: 'ops' } });
  assert.equal(s.status, 201, s.text);
  const c = await request(srv, `/v2/Services/${s.json.sid}/Channels`,
    { method: 'POST', form: { UniqueName: 'room' } });
  assert.equal(c.status, 201, c.text);
  return `/v2/Services/${s.json.sid}/Channels/room`;
}

/** logfmt as the access log writes it: space-separated key=value tokens. */
function parseLine(line) {
  const out = {};
  for (const tok of line.split(' ')) {
    const eq = tok.indexOf('=');
    assert.ok(eq > 0, `token ${tok} of ${line}`);
    const k = tok.slice(0, eq);
    assert.ok(!(k in out), `key ${k} once in ${line}`);
    out[k] = tok.slice(eq + 1);
  }
  return out;
}

function readLog(file) {
  const text = fs.readFileSync(file, 'utf8');
  assert.ok(text === '' || text.endsWith('\n'), 'whole lines');
  return text.split('\n').filter((l) => l).map(parseLine);
}

async function waitFor(cond, what, ms = 5000) {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('GET /healthz and GET /metrics', () => {
  let srv;
  before(async () => { srv = await startServer({ extraArgs: ['--media-cap', '12'] }); });
  after(async () => { await srv.stop(); });

  it('/healthz: 200 {"status": "ok"} without credentials; other methods 405 with Allow', async () => {
    const r = await request(srv, '/healthz', { auth: false });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { status: 'ok' });
    assert.match(String(r.headers['content-type']), /^application\/json/);
    const bad = await request(srv, '/healthz', { method: 'POST', auth: false, form: {} });
    assertError(assert, bad, 405, 20004);
    assert.equal(bad.headers.allow, 'GET');
    const m = await request(srv, '/metrics', { method: 'DELETE' });
    assertError(assert, m, 405, 20004);
    assert.equal(m.headers.allow, 'GET');
  });

  it('/metrics needs the credentials by default (401 / 20003)', async () => {
    const r = await request(srv, '/metrics', { auth: false });
    assertError(assert, r, 401, 20003);
    const w = await request(srv, '/metrics', { auth: `Basic ${Buffer.from(`${srv.accountSid}:wrong`).toString('base64')}` });
    assertError(assert, w, 401, 20003);
  });

  it('counts move with requests: by route template, method and status; store counts; histograms', async () => {
    const ch = await mkChannel(srv);
    const m0 = await scrape(srv);
    const key = { route: MESSAGES, method: 'POST', status: '201' };
    const before201 = sample(m0, 'chatstore_http_requests_total', key);
    const messages0 = sample(m0, 'chatstore_store_messages');
    const h0 = histogram(m0, 'chatstore_http_request_duration_seconds', { route: MESSAGES, method: 'POST' });
    const count0 = h0 ? Number(h0.count) : 0;
    const err0 = sample(m0, 'chatstore_http_error_replies_total', { status: '404', code: '20404' });
    const commits0 = sample(m0, 'chatstore_store_commits_total');
    for (let i = 0; i < 3; i++) {
      const r = await request(srv, `${ch}/Messages`, { method: 'POST', form: { Body: `m${i}` } });
      assert.equal(r.status, 201, r.text);
    }
    const nf = await request(srv, `${ch}/Messages/IM00000000000000000000000000000000`);
    assert.equal(nf.status, 404);
    const other = await request(srv, '/v2/Users');
    assert.equal(other.status, 404);
    const m1 = await scrape(srv);
    assert.equal(sample(m1, 'chatstore_http_requests_total', key) - before201, 3);
    assert.equal(sample(m1, 'chatstore_http_requests_total',
      { route: `${MESSAGES}/{Sid}`, method: 'GET', status: '404' }), 1);
    assert.equal(sample(m1, 'chatstore_http_requests_total',
      { route: 'other', method: 'GET', status: '404' }), 1);
    assert.equal(sample(m1, 'chatstore_http_error_replies_total', { status: '404', code: '20404' }) - err0, 2);
    assert.equal(sample(m1, 'chatstore_store_messages') - messages0, 3);
    assert.equal(sample(m1, 'chatstore_store_commits_total') - commits0, 3);
    assert.equal(sample(m1, 'chatstore_store_services'), 1);
    assert.equal(sample(m1, 'chatstore_store_channels'), 1);
    assert.ok(sample(m1, 'chatstore_store_bytes_allocated') > 0);
    // the scrape itself is a request in flight, on an open connection
    assert.ok(sample(m1, 'chatstore_http_requests_in_flight') >= 1);
    assert.ok(sample(m1, 'chatstore_http_connections_open') >= 1);
    assert.ok(sample(m1, 'chatstore_http_connections_total') >= 10);
    const h1 = histogram(m1, 'chatstore_http_request_duration_seconds', { route: MESSAGES, method: 'POST' });
    assert.equal(Number(h1.count) - count0, 3);
    const les = Object.keys(h1.buckets);
    assert.ok(les.includes('+Inf'));
    assert.equal(Number(h1.buckets['+Inf']), Number(h1.count));
    const finite = les.filter((l) => l !== '+Inf').sort((a, b) => Number(a) - Number(b));
    for (let i = 1; i < finite.length; i++) {
      assert.ok(Number(h1.buckets[finite[i]]) >= Number(h1.buckets[finite[i - 1]]), 'cumulative');
    }
    assert.ok(Number(h1.sum) > 0 && Number(h1.sum) < 60 * Number(h1.count));
    for (const n of ['chatstore_webhooks_queued_total', 'chatstore_webhooks_delivered_total',
      'chatstore_webhooks_dropped_total']) assert.equal(sample(m1, n), 0);
    assert.equal(m1.has('chatstore_journal_written_bytes_total'), false, 'no journal without --data-dir');
  });

  it('media bytes held and quota refusals by Twilio code (413 / 50512)', async () => {
    const ch = await mkChannel(srv);
    const is = ch.split('/')[3];
    const m0 = await scrape(srv);
    assert.equal(sample(m0, 'chatstore_media_bytes_limit'), 12);
    const used0 = sample(m0, 'chatstore_media_bytes');
    const refused0 = sample(m0, 'chatstore_quota_refusals_total', { code: '50512' });
    const up = (n) => request(srv, `/v1/Services/${is}/Media`,
      { method: 'POST', body: Buffer.alloc(n, 1), headers: { 'Content-Type': 'image/png' } });
    assert.equal((await up(8)).status, 201);
    assertError(assert, await up(8), 413, 50512);
    const m1 = await scrape(srv);
    assert.equal(sample(m1, 'chatstore_media_bytes') - used0, 8);
    assert.equal(sample(m1, 'chatstore_quota_refusals_total', { code: '50512' }) - refused0, 1);
    assert.equal(sample(m1, 'chatstore_store_media'), 1);
  });

  it('Twilio-Request-Id: RQ and 32 hex digits, different on every reply (401 and /healthz too)', async () => {
    const seen = new Set();
    for (const r of [await request(srv, '/healthz', { auth: false }),
      await request(srv, '/v2/Services', { auth: false }),
      await request(srv, '/v2/Services'), await request(srv, '/v2/Services')]) {
      const id = r.headers['twilio-request-id'];
      assert.match(String(id), /^RQ[0-9a-f]{32}$/);
      assert.ok(!seen.has(id));
      seen.add(id);
    }
  });
});

describe('--metrics-auth', () => {
  it('off: GET /metrics answers without credentials (the API still needs them)', async () => {
    const srv = await startServer({ extraArgs: ['--metrics-auth', 'off'] });
    try {
      const m = await scrape(srv, false);
      assert.ok(m.has('chatstore_http_requests_total'));
      assertError(assert, await request(srv, '/v2/Services', { auth: false }), 401, 20003);
    } finally {
      await srv.stop();
    }
  });

  for (const args of [['--metrics-auth', 'maybe'], ['--metrics-auth'], ['--access-log', '']]) {
    it(`${JSON.stringify(args)}: usage, exit status 2`, async () => {
      const proc = spawn(process.env.CHATSTORE_SERVER_BIN, ['--listen', '127.0.0.1:0', ...args],
        { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      proc.stderr.on('data', (d) => { err += d; });
      const code = await new Promise((resolve) => proc.on('exit', resolve));
      assert.equal(code, 2);
      assert.match(err, /usage: chatstore-server/);
    });
  }
});

describe('--access-log', () => {
  let dir;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatstore-accesslog-')); });
  after(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  it('one logfmt line per reply: time, client, id, method, route, status, bytes, duration', async () => {
    const file = path.join(dir, 'access.log');
    const srv = await startServer({ extraArgs: ['--access-log', file] });
    const t0 = Date.now();
    const sent = []; // [method, route, reply]
    try {
      const svc = await request(srv, '/v2/Services', { method: 'POST', form: { FriendlyName: 'log' } });
      sent.push(['POST', '/v2/Services', svc]);
      const ch = `/v2/Services/${svc.json.sid}/Channels/room`;
      const cases = [
        [`/v2/Services/${svc.json.sid}/Channels`, { method: 'POST', form: { UniqueName: 'room' } },
          '/v2/Services/{ServiceSid}/Channels'],
        [`${ch}/Messages`, { method: 'POST', form: { Body: 'hello' } }, MESSAGES],
        [`${ch}/Messages/IM00000000000000000000000000000000`, {}, `${MESSAGES}/{Sid}`],
        ['/v2/Services', { auth: false }, '/v2/Services'],
        ['/healthz', { auth: false }, '/healthz'],
        ['/nowhere/at/all', {}, 'other'],
        [`${ch}/Messages/IM00000000000000000000000000000000`, { method: 'DELETE' }, `${MESSAGES}/{Sid}`],
      ];
      for (const [p, opts, route] of cases) {
        sent.push([opts.method || 'GET', route, await request(srv, p, opts)]);
      }
    } finally {
      await srv.stop(); // writes out what is buffered
    }
    const lines = readLog(file);
    assert.equal(lines.length, sent.length);
    const byId = new Map(lines.map((l) => [l.id, l]));
    assert.equal(byId.size, lines.length, 'ids differ');
    for (const [method, route, r] of sent) {
      const id = r.headers['twilio-request-id'];
      const l = byId.get(id);
      assert.ok(l, `a line for ${method} ${route} (${id})`);
      assert.deepEqual(Object.keys(l), ['time', 'client', 'id', 'method', 'route', 'status',
        'bytes', 'duration']);
      assert.match(l.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      const t = Date.parse(l.time);
      assert.ok(t >= t0 - 1000 && t <= Date.now() + 1000, l.time);
      assert.equal(l.client, '127.0.0.1');
      assert.match(l.id, /^RQ[0-9a-f]{32}$/);
      assert.equal(l.method, method);
      assert.equal(l.route, route);
      assert.equal(Number(l.status), r.status);
      assert.equal(Number(l.bytes), r.buf.length);
      assert.match(l.duration, /^\d+\.\d{6}$/);
      assert.ok(Number(l.duration) < 10);
    }
  });

  it('a line reaches the file within about a second, without a stop', async () => {
    const file = path.join(dir, 'live.log');
    const srv = await startServer({ extraArgs: ['--access-log', file] });
    try {
      const r = await request(srv, '/v2/Services');
      const id = r.headers['twilio-request-id'];
      await waitFor(() => fs.readFileSync(file, 'utf8').includes(`id=${id} `), 'the line', 5000);
    } finally {
      await srv.stop();
    }
  });

  it('a method the path does not take is logged as sent (PATCH: 405)', async () => {
    const file = path.join(dir, 'odd.log');
    const srv = await startServer({ extraArgs: ['--access-log', file] });
    try {
      const r = await request(srv, '/v2/Services', { method: 'PATCH' });
      assert.equal(r.status, 405);
    } finally {
      await srv.stop();
    }
    const [l] = readLog(file);
    assert.equal(l.method, 'PATCH');
    assert.equal(l.route, '/v2/Services');
    assert.equal(l.status, '405');
  });

  it('SIGHUP reopens the file: lines after it go to the new file', async () => {
    const file = path.join(dir, 'rotated.log');
    const srv = await startServer({ extraArgs: ['--access-log', file] });
    try {
      assert.equal((await request(srv, '/healthz', { auth: false })).status, 200);
      fs.renameSync(file, `${file}.1`);
      assert.equal((await request(srv, '/v2/Services')).status, 200); // still the old file
      srv.proc.kill('SIGHUP');
      await waitFor(() => fs.existsSync(file), 'the reopened file');
      assert.equal((await request(srv, '/v2/Services', { method: 'POST', form: { FriendlyName: 'x' } })).status, 201);
      assert.ok(srv.alive(), 'SIGHUP does not stop the server');
    } finally {
      await srv.stop();
    }
    assert.deepEqual(readLog(`${file}.1`).map((l) => l.route).sort(), ['/healthz', '/v2/Services']);
    const after = readLog(file);
    assert.deepEqual(after.map((l) => [l.method, l.route, l.status]), [['POST', '/v2/Services', '201']]);
  });

  it('- writes the lines to standard output', async () => {
    const srv = await startServer({ extraArgs: ['--access-log', '-'] });
    let r;
    try {
      r = await request(srv, '/v2/Services');
      await waitFor(() => /route=\/v2\/Services status=200/.test(srv.output().stdout), 'the stdout line');
    } finally {
      await srv.stop();
    }
    const line = srv.output().stdout.split('\n').find((l) => l.startsWith('time='));
    assert.equal(parseLine(line).id, r.headers['twilio-request-id']);
  });
});

describe('with --data-dir', () => {
  let dir;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatstore-ops-')); });
  after(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  it('journal figures move with changes', async () => {
    const srv = await startServer({ extraArgs: ['--data-dir', path.join(dir, 'd1'), '--fsync', 'always'] });
    try {
      const m0 = await scrape(srv);
      const w0 = sample(m0, 'chatstore_journal_written_bytes_total');
      const s0 = sample(m0, 'chatstore_journal_syncs_total');
      await mkChannel(srv);
      const m1 = await scrape(srv);
      assert.ok(sample(m1, 'chatstore_journal_written_bytes_total') > w0);
      // --fsync always: each change is synced before its reply
      assert.equal(sample(m1, 'chatstore_journal_synced_bytes_total'),
        sample(m1, 'chatstore_journal_written_bytes_total'));
      assert.ok(sample(m1, 'chatstore_journal_syncs_total') >= s0 + 1);
    } finally {
      await srv.stop();
    }
  });

  it('/healthz answers 503 {"status": "stopping"} during a graceful stop', async () => {
    const srv = await startServer({ extraArgs: ['--data-dir', path.join(dir, 'd2')] });
    // A request in flight (its body not sent yet) holds the stop open; an
    // idle keep-alive connection then asks /healthz.
    const hold = net.connect(srv.port, '127.0.0.1');
    const probe = net.connect(srv.port, '127.0.0.1');
    await Promise.all([hold, probe].map((s) => new Promise((r) => s.once('connect', r))));
    hold.write(`POST /v2/Services HTTP/1.1\r\nHost: x\r\nAuthorization: ${srv.auth}\r\n` +
      'Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 14\r\n\r\n');
    let probeOut = '';
    probe.on('data', (d) => { probeOut += d; });
    let holdOut = '';
    hold.on('data', (d) => { holdOut += d; });
    probe.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => /\r\n\r\n\{"status": "ok"\}/.test(probeOut), 'the first probe');
    await new Promise((r) => setTimeout(r, 100)); // the held request has begun
    probeOut = '';
    srv.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    probe.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => /\{"status": "stopping"\}/.test(probeOut), 'the 503 probe');
    assert.match(probeOut, /^HTTP\/1\.1 503 /);
    assert.match(probeOut, /\r\nConnection: close\r\n/i);
    hold.write('FriendlyName=x');
    await waitFor(() => /^HTTP\/1\.1 201 /.test(holdOut), 'the held request\'s reply');
    hold.destroy();
    probe.destroy();
    await waitFor(() => !srv.alive(), 'the stop');
    assert.equal(srv.exitInfo().code, 0);
  });
});

describe('the test fixture', () => {
  it('with --seed, replies carry no Twilio-Request-Id (FX1: byte-identical replies)', async () => {
    const srv = await startServer({ extraArgs: ['--seed', '7'] });
    try {
      const r = await request(srv, '/v2/Services');
      assert.equal(r.status, 200);
      assert.equal(r.headers['twilio-request-id'], undefined);
      assert.equal((await request(srv, '/healthz', { auth: false })).headers['twilio-request-id'], undefined);
    } finally {
      await srv.stop();
    }
  });
});
