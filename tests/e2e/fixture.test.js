'use strict';
// chatstore-server as a test fixture: --seed, --clock, --fixture FILE and
// --test-endpoints (reset, clock, stats). The central test runs one scripted
// session (creates, updates, media, lists paged both ways, deletes, errors,
// the test endpoints) against two server processes started with the same
// flags and compares every response, status line, headers and body, byte for
// byte; no header is left out.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { startServer, request, assertError, REPO_DIR } = require('./server');

const FIXTURE = path.join(REPO_DIR, 'examples', 'fixture.json');
const ACCOUNT = 'AC' + 'f1'.repeat(16);
const TOKEN = 'fixture-token';
const SEEDED = ['--seed', '7', '--clock', '2020-01-01T00:00:00Z+1s', '--fixture', FIXTURE,
  '--test-endpoints'];

function start(extraArgs) {
  return startServer({ extraArgs, accountSid: ACCOUNT, authToken: TOKEN });
}

/** One request on its own connection (Connection: close): every byte of the
 * response as the server sent it. */
function raw(port, method, target, { auth, body, contentType } = {}) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks = [];
    let head = `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n`;
    if (auth) head += `Authorization: ${auth}\r\n`;
    const b = body === undefined ? null : Buffer.from(body);
    if (b) {
      head += `Content-Type: ${contentType || 'application/x-www-form-urlencoded'}\r\n` +
        `Content-Length: ${b.length}\r\n`;
    }
    head += '\r\n';
    s.setTimeout(10000, () => s.destroy(new Error(`timeout: ${method} ${target}`)));
    s.on('data', (c) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
    s.write(b ? Buffer.concat([Buffer.from(head), b]) : head);
  });
}

function parse(bytes) {
  const text = bytes.toString('utf8');
  const at = text.indexOf('\r\n\r\n');
  const head = text.slice(0, at);
  const body = text.slice(at + 4);
  let json;
  try { json = JSON.parse(body); } catch { json = undefined; }
  return { status: Number(head.split(' ')[1]), head, body, json };
}

const local = (url) => { const u = new URL(url); return u.pathname + u.search; };
const form = (o) => new URLSearchParams(o).toString();

/**
 * The scripted session. Each step's request may use SIDs and page URLs from
 * earlier answers (the same on both servers when they answer alike).
 * Returns [{ what, bytes }] in order.
 */
async function session(srv) {
  const out = [];
  const call = async (method, target, body, opts = {}) => {
    const bytes = await raw(srv.port, method, target, {
      auth: opts.auth === undefined ? srv.auth : opts.auth,
      body: body === undefined || typeof body === 'string' ? body : form(body),
      contentType: opts.contentType,
    });
    out.push({ what: `${method} ${target}`, bytes });
    return parse(bytes);
  };
  let r = await call('GET', '/v2/Services');
  const fixtureIs = r.json.services[0].sid;
  await call('GET', `/v2/Services/${fixtureIs}/Channels/general/Messages?Order=desc`);
  r = await call('POST', '/v2/Services', { FriendlyName: 'session' });
  const is = r.json.sid;
  await call('GET', `/v2/Services/${is}`);
  await call('POST', `/v2/Services/${is}`, { FriendlyName: 'session, renamed' });
  await call('POST', `/v2/Services/${is}/Channels`,
    { UniqueName: 'room', FriendlyName: 'Room', Attributes: '{"a": 1}', CreatedBy: 'alice' });
  await call('POST', `/v2/Services/${is}/Channels`, { UniqueName: 'secret', Type: 'private' });
  await call('POST', `/v2/Services/${is}/Channels`, { UniqueName: 'room' }); // 409
  const msgs = `/v2/Services/${is}/Channels/room/Messages`;
  const ims = [];
  for (let i = 0; i < 7; i++) {
    r = await call('POST', msgs, { Body: `message ${i}`, From: i % 2 ? 'bob' : 'alice' });
    ims.push(r.json.sid);
  }
  await call('POST', msgs, { Body: 'x', Attributes: '{bad' }); // 400 / 50304
  r = await call('POST', `/v1/Services/${is}/Media?Filename=note.txt`, 'hello bytes',
    { contentType: 'text/plain' });
  const me = r.json.sid;
  await call('POST', msgs, { MediaSid: me, From: 'carol' });
  await call('GET', `/v1/Services/${is}/Media/${me}/Content`);
  await call('POST', `${msgs}/${ims[1]}`, { Body: 'edited', LastUpdatedBy: 'bob' });
  await call('POST', `${msgs}/${ims[3]}`, {}); // no parameter: unchanged
  await call('DELETE', `${msgs}/${ims[2]}`);
  r = await call('GET', `${msgs}?PageSize=3`);
  while (r.json.meta.next_page_url) r = await call('GET', local(r.json.meta.next_page_url));
  while (r.json.meta.previous_page_url) r = await call('GET', local(r.json.meta.previous_page_url));
  r = await call('GET', `${msgs}?Order=desc&PageSize=4`);
  while (r.json.meta.next_page_url) r = await call('GET', local(r.json.meta.next_page_url));
  await call('GET', `/v2/Services/${is}/Channels?Type=public&Type=private&PageSize=1`);
  await call('GET', `${msgs}?PageToken=PTA0000000000000000ffffffffffffffff`); // 400
  await call('GET', `/v2/Services/${is}/Channels/nope`); // 404
  await call('DELETE', `/v2/Services/${is}/Channels`); // 405
  await call('GET', '/v2/Services', undefined,
    { auth: 'Basic ' + Buffer.from('AC00:wrong').toString('base64') }); // 401
  await call('POST', '/_chatstore/clock', { Now: '2021-06-01T12:00:00Z', Step: '1m' });
  await call('POST', msgs, { Body: 'after setting the clock' });
  await call('GET', '/_chatstore/clock');
  await call('DELETE', `/v2/Services/${is}/Channels/secret`);
  await call('DELETE', `/v2/Services/${fixtureIs}`);
  await call('GET', '/v2/Services');
  return out;
}

function assertSameBytes(a, b, what) {
  assert.equal(a.length, b.length, `${what}: sessions of different lengths`);
  for (let i = 0; i < a.length; i++) {
    assert.equal(a[i].what, b[i].what, `${what}: step ${i} asked differently`);
    if (!a[i].bytes.equals(b[i].bytes)) {
      assert.fail(`${what}: step ${i} (${a[i].what}) differs:\n--- first\n` +
        `${a[i].bytes.toString('utf8')}\n--- second\n${b[i].bytes.toString('utf8')}`);
    }
  }
}

describe('determinism across processes', () => {
  let a;
  let b;
  let first;
  before(async () => {
    [a, b] = await Promise.all([start(SEEDED), start(SEEDED)]);
  });
  after(async () => {
    await Promise.all([a.stop(), b.stop()]);
  });

  it('two servers with the same --seed, --clock and --fixture answer a session byte for byte alike', async () => {
    first = await session(a);
    const second = await session(b);
    assertSameBytes(first, second, 'server A vs server B');
    // The session is what it claims: every kind of answer, and the Date
    // header is the fixed clock's (nothing left out of the comparison).
    const statuses = new Set(first.map((s) => parse(s.bytes).status));
    for (const st of [200, 201, 204, 400, 401, 404, 405, 409]) {
      assert.ok(statuses.has(st), `the session has no ${st} answer`);
    }
    assert.ok(first.length >= 40, `only ${first.length} steps`);
    for (const s of first) {
      assert.match(parse(s.bytes).head, /\r\nDate: (Wed, 01 Jan 2020|Tue, 01 Jun 2021) \d\d:\d\d:\d\d GMT/,
        s.what);
    }
  });

  it('after POST /_chatstore/reset the same session gives the same bytes again', async () => {
    assert.ok(first, 'the previous test ran');
    const r = parse(await raw(a.port, 'POST', '/_chatstore/reset', { auth: a.auth }));
    assert.equal(r.status, 200, r.body);
    const again = await session(a);
    assertSameBytes(first, again, 'first run vs run after reset');
  });

  it('control: without --seed the same session differs between two servers', async () => {
    const flags = SEEDED.slice(2); // --clock, --fixture, --test-endpoints
    const [c, d] = await Promise.all([start(flags), start(flags)]);
    try {
      const x = await session(c);
      const y = await session(d);
      assert.ok(x.some((s, i) => !s.bytes.equals(y[i].bytes)), 'unseeded servers answered alike');
    } finally {
      await Promise.all([c.stop(), d.stop()]);
    }
  });
});

describe('--fixture', () => {
  let srv;
  let file;
  before(async () => {
    file = JSON.parse(fs.readFileSync(FIXTURE, 'utf8'));
    srv = await start(['--seed', '7', '--clock', '2020-01-01T00:00:00Z', '--fixture', FIXTURE]);
  });
  after(async () => { await srv.stop(); });

  it('loads every service, channel and message of the file with the fields it gives', async () => {
    const svcs = (await request(srv, '/v2/Services')).json.services;
    assert.equal(svcs.length, file.services.length);
    for (const [i, fs_] of file.services.entries()) {
      const s = svcs[i];
      assert.equal(s.friendly_name, fs_.friendly_name);
      // no date: the clock's
      assert.equal(s.date_created, fs_.date_created || '2020-01-01T00:00:00Z');
      assert.equal(s.date_updated, s.date_created);
      const chans = (await request(srv,
        `/v2/Services/${s.sid}/Channels?Type=public&Type=private`)).json.channels;
      assert.equal(chans.length, (fs_.channels || []).length);
      for (const [j, fc] of (fs_.channels || []).entries()) {
        const c = chans[j];
        assert.equal(c.unique_name, fc.unique_name ?? null);
        assert.equal(c.friendly_name, fc.friendly_name ?? null);
        assert.equal(c.type, fc.type || 'public');
        assert.equal(c.created_by, fc.created_by || 'system');
        assert.equal(c.date_created, fc.date_created);
        assert.equal(c.date_updated, fc.date_updated || fc.date_created);
        if (typeof fc.attributes === 'object') assert.deepEqual(JSON.parse(c.attributes), fc.attributes);
        else assert.equal(c.attributes, fc.attributes ?? '{}');
        assert.equal(c.messages_count, fc.messages.length);
        const ms = (await request(srv, `${local(c.links.messages)}?PageSize=100`)).json.messages;
        assert.equal(ms.length, fc.messages.length);
        for (const [k, fm] of fc.messages.entries()) {
          const m = ms[k];
          const edits = fm.edits || [];
          const last = Object.assign({}, fm, ...edits);
          const what = `${c.unique_name} message ${k}`;
          assert.equal(m.index, k, what);
          assert.equal(m.body, last.body ?? '', what);
          assert.equal(m.from, fm.from || 'system', what);
          assert.equal(m.date_created, fm.date_created, what);
          assert.equal(m.date_updated, last.date_updated || fm.date_created, what);
          assert.equal(m.last_updated_by, last.last_updated_by ?? null, what);
          assert.equal(m.was_edited, edits.length > 0, what);
          if (typeof fm.attributes === 'object') assert.deepEqual(JSON.parse(m.attributes), fm.attributes);
          else assert.equal(m.attributes, fm.attributes ?? '{}', what);
          if (!fm.media) {
            assert.equal(m.media, null, what);
            continue;
          }
          assert.equal(m.type, 'media', what);
          assert.equal(m.media.content_type, fm.media.content_type, what);
          assert.equal(m.media.filename, fm.media.filename ?? null, what);
          const content = `/v1/Services/${s.sid}/Media/${m.media.sid}/Content`;
          const got = await request(srv, content);
          if (fm.media.content !== undefined) {
            assert.equal(m.media.size, Buffer.byteLength(fm.media.content), what);
            assert.equal(got.status, 200, what);
            assert.equal(got.text, fm.media.content, what);
            assert.equal(got.headers['content-type'], fm.media.content_type, what);
          } else {
            assert.equal(m.media.size, fm.media.size, what);
            assertError(assert, got, 404, 20404, what);
          }
          const meta = (await request(srv, `/v1/Services/${s.sid}/Media/${m.media.sid}`)).json;
          assert.equal(meta.date_created, fm.date_created, `${what}: media date`);
          assert.equal(meta.message_sid, m.sid, what);
        }
      }
    }
  });

  it('the startup line counts what was loaded', () => {
    assert.match(srv.output().stdout,
      /fixture .*fixture\.json: 2 service\(s\), 2 channel\(s\), 6 message\(s\), 2 media item\(s\); parsed in [\d.]+ ms, loaded in [\d.]+ ms\n/);
  });

  it('the same file and seed give the same SIDs in another process; another seed other SIDs', async () => {
    const sids = async (s) => (await request(s, '/v2/Services')).json.services.map((x) => x.sid);
    const mine = await sids(srv);
    const same = await start(['--seed', '7', '--fixture', FIXTURE]);
    const other = await start(['--seed', '8', '--fixture', FIXTURE]);
    try {
      assert.deepEqual(await sids(same), mine);
      const o = await sids(other);
      assert.equal(o.length, mine.length);
      assert.notEqual(o[0], mine[0]);
    } finally {
      await Promise.all([same.stop(), other.stop()]);
    }
  });
});

/** Runs the server expecting it to stop at startup: { code, stdout, stderr }. */
function runToExit(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.env.CHATSTORE_SERVER_BIN,
      ['--listen', '127.0.0.1:0', '--account-sid', ACCOUNT, '--auth-token', TOKEN, ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`still running: ${stdout}`)); }, 10000);
    p.on('error', (e) => { clearTimeout(t); reject(e); });
    p.on('exit', (code) => { clearTimeout(t); resolve({ code, stdout, stderr }); });
  });
}

describe('a bad fixture stops startup', () => {
  let dir;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatstore-fixture-')); });
  after(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  const svc = (channels) => JSON.stringify({ services: [{ friendly_name: 's', channels }] });
  const chan = (messages, extra = {}) => Object.assign({ unique_name: 'c', messages }, extra);
  const cases = [
    ['JSON syntax', '{"services": [}', /: line 1, column \d+: /],
    ['a duplicate key', '{"services": [], "services": []}', /duplicate object key/],
    ['not an object', '[]', /: \$: must be an object/],
    ['an unknown key', JSON.stringify({ services: [{ friendly_name: 'a', channel: [] }] }),
      /: \$\.services\[0\]: unknown key "channel" \(known: friendly_name, date_created, channels\)/],
    ['a wrong type', JSON.stringify({ services: [{ friendly_name: 5 }] }),
      /: \$\.services\[0\]\.friendly_name: must be a string/],
    ['channels not an array', JSON.stringify({ services: [{ friendly_name: 'a', channels: {} }] }),
      /: \$\.services\[0\]\.channels: must be an array/],
    ['a service without a name', JSON.stringify({ services: [{}] }),
      /: \$\.services\[0\]: 400 \/ 20001 FRIENDLY_NAME_MISSING: /],
    ['a bad service date', JSON.stringify({ services: [{ friendly_name: 'a', date_created: 'soon' }] }),
      /: \$\.services\[0\]\.date_created: 400 \/ 50308 BAD_DATE_CREATED: /],
    ['a bad channel type', svc([chan([], { type: 'secret' })]),
      /: \$\.services\[0\]\.channels\[0\]: 400 \/ 20001 BAD_CHANNEL_TYPE: /],
    ['a taken unique name', svc([chan([]), chan([])]),
      /: \$\.services\[0\]\.channels\[1\]: 409 \/ 50307 UNIQUE_NAME_EXISTS: /],
    ['bad message attributes', svc([chan([{ body: 'ok' }, { attributes: '{bad' }])]),
      /: \$\.services\[0\]\.channels\[0\]\.messages\[1\]: 400 \/ 50304 ATTRIBUTES_INVALID: /],
    ['a body over the limit', svc([chan([{ body: 'x'.repeat(32769) }])]),
      /\.messages\[0\]: 400 \/ 50504 BODY_TOO_LONG: /],
    ['a bad message date', svc([chan([{ date_updated: '2020-02-30T00:00:00Z' }])]),
      /\.messages\[0\]: 400 \/ 50309 BAD_DATE_UPDATED: /],
    ['an empty edit', svc([chan([{ body: 'a', edits: [{}] }])]),
      /\.messages\[0\]\.edits\[0\]: an edit needs at least one field/],
    ['an edit over a limit', svc([chan([{ body: 'a', edits: [{ from: 'x'.repeat(257) }] }])]),
      /\.messages\[0\]\.edits\[0\]: 400 \/ 50310 FROM_TOO_LONG: /],
    ['a media size that is not the content\'s', svc([chan([{ media: { content_type: 'text/plain', content: 'hello', size: 3 } }])]),
      /\.messages\[0\]\.media\.size: 3, but content has 5 bytes/],
    ['media without size or content', svc([chan([{ media: { content_type: 'text/plain' } }])]),
      /\.messages\[0\]\.media: needs size or content/],
    ['a bad media content type', svc([chan([{ media: { content_type: 'text', size: 1 } }])]),
      /\.messages\[0\]\.media: 400 \/ 50511 BAD_MEDIA_CONTENT_TYPE: /],
  ];
  for (const [what, text, re] of cases) {
    it(`${what}: exit 1, the place and the error on stderr`, async () => {
      const f = path.join(dir, `${what.replace(/\W+/g, '-')}.json`);
      fs.writeFileSync(f, text);
      const r = await runToExit(['--seed', '1', '--fixture', f]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^chatstore-server: --fixture ${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), r.stderr);
      assert.match(r.stderr, re);
      assert.doesNotMatch(r.stdout, /listening on/);
    });
  }

  it('media content over --media-cap: exit 1', async () => {
    const f = path.join(dir, 'cap.json');
    fs.writeFileSync(f, svc([chan([{ media: { content_type: 'text/plain', content: 'x'.repeat(100) } }])]));
    const r = await runToExit(['--media-cap', '50', '--fixture', f]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /\.messages\[0\]\.media\.content: does not fit in --media-cap/);
  });

  it('a missing file: exit 1 naming it', async () => {
    const r = await runToExit(['--fixture', path.join(dir, 'nope.json')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--fixture .*nope\.json: unable to open/);
  });
});

describe('flags', () => {
  for (const args of [['--seed'], ['--seed', 'x'], ['--seed', '-1'], ['--seed', '18446744073709551616'],
    ['--clock', 'yesterday'], ['--clock', '2020-13-01T00:00:00Z'],
    ['--clock', '2020-01-01T00:00:00Z+5x'], ['--clock', '2020-01-01T00:00:00Z+s'],
    ['--fixture', '']]) {
    it(`${args.join(' ')}: usage, exit 2`, async () => {
      const r = await runToExit(args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /usage: chatstore-server/);
    });
  }

  for (const flag of [['--seed', '1'], ['--clock', '2020-01-01T00:00:00Z'], ['--test-endpoints'],
    ['--fixture', FIXTURE]]) {
    it(`${flag[0]} with --data-dir is refused: exit 2`, async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatstore-fixture-dd-'));
      try {
        const r = await runToExit([...flag, '--data-dir', dir]);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /are for in-memory test servers: not with --data-dir/);
        assert.deepEqual(fs.readdirSync(dir), [], 'nothing written to the data directory');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('--seed without --account-sid: the account SID comes from the seed, printed', async () => {
    const env = Object.assign({}, process.env);
    delete env.CHATSTORE_ACCOUNT_SID;
    delete env.CHATSTORE_AUTH_TOKEN;
    const run = (seed) => new Promise((resolve, reject) => {
      const p = spawn(process.env.CHATSTORE_SERVER_BIN, ['--listen', '127.0.0.1:0', '--seed', seed],
        { stdio: ['ignore', 'pipe', 'pipe'], env });
      let out = '';
      const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(out)); }, 10000);
      p.stdout.on('data', (d) => {
        out += d;
        if (/listening on/.test(out)) p.kill('SIGTERM');
      });
      p.on('exit', () => { clearTimeout(t); resolve(out); });
    });
    const sidOf = (out) => (/account sid (AC[0-9a-f]{32})\n/.exec(out) || [])[1];
    const [x, y, z] = [sidOf(await run('3')), sidOf(await run('3')), sidOf(await run('4'))];
    assert.ok(x, 'printed');
    assert.equal(x, y);
    assert.notEqual(x, z);
  });
});

describe('test endpoints', () => {
  it('are 404 / 20404 without --test-endpoints (with --seed and --clock too)', async () => {
    const plain = await start([]);
    const seeded = await start(['--seed', '1', '--clock', '2020-01-01T00:00:00Z']);
    try {
      for (const srv of [plain, seeded]) {
        for (const [m, p] of [['POST', '/_chatstore/reset'], ['GET', '/_chatstore/clock'],
          ['POST', '/_chatstore/clock'], ['GET', '/_chatstore/stats']]) {
          assertError(assert, await request(srv, p, { method: m }), 404, 20404, `${m} ${p}`);
        }
      }
    } finally {
      await Promise.all([plain.stop(), seeded.stop()]);
    }
  });

  describe('with --test-endpoints', () => {
    let srv;
    before(async () => {
      srv = await start(['--seed', '5', '--clock', '2020-01-01T00:00:00Z+10s', '--fixture', FIXTURE,
        '--test-endpoints', '--media-cap', '100']);
    });
    after(async () => { await srv.stop(); });
    const post = (p, f) => request(srv, p, { method: 'POST', form: f });
    const clock = async () => (await request(srv, '/_chatstore/clock')).json;

    it('need the credentials; other methods 405 with Allow; other paths 404', async () => {
      assertError(assert, await request(srv, '/_chatstore/stats', { auth: false }), 401, 20003);
      for (const [m, p, allow] of [['GET', '/_chatstore/reset', 'POST'],
        ['DELETE', '/_chatstore/clock', 'GET, POST'], ['POST', '/_chatstore/stats', 'GET']]) {
        const r = await request(srv, p, { method: m });
        assertError(assert, r, 405, 20004, `${m} ${p}`);
        assert.equal(r.headers.allow, allow);
      }
      for (const p of ['/_chatstore', '/_chatstore/nope', '/_chatstore/stats/x', '/_Chatstore/stats']) {
        assertError(assert, await request(srv, p), 404, 20404, p);
      }
    });

    it('stats: the counts of the store, the seed and the clock, in this key order', async () => {
      await post('/_chatstore/reset');
      const r = await request(srv, '/_chatstore/stats');
      assert.equal(r.status, 200);
      assert.deepEqual(Object.keys(r.json), ['services', 'channels', 'messages', 'media',
        'identities', 'commits', 'bytes_allocated', 'seed', 'clock']);
      assert.deepEqual([r.json.services, r.json.channels, r.json.messages, r.json.media],
        [2, 2, 6, 2]);
      assert.equal(r.json.seed, '5');
      assert.deepEqual(r.json.clock, { now: '2020-01-01T00:00:00Z', step_seconds: 10, fixed: true });
      const svc = (await request(srv, '/v2/Services')).json.services[1].sid;
      await post(`/v2/Services/${svc}/Channels`, { UniqueName: 'x' });
      const after1 = (await request(srv, '/_chatstore/stats')).json;
      assert.equal(after1.channels, 3);
      assert.equal(after1.commits, r.json.commits + 1);
    });

    it('the clock steps once per committed change: not for reads, failures or no-op updates', async () => {
      await post('/_chatstore/reset');
      const a = await post('/v2/Services', { FriendlyName: 'a' });
      assert.equal(a.json.date_created, '2020-01-01T00:00:00Z');
      assert.equal(a.headers.date, 'Wed, 01 Jan 2020 00:00:00 GMT');
      assert.equal((await clock()).now, '2020-01-01T00:00:10Z');
      await request(srv, '/v2/Services');
      assertError(assert, await post('/v2/Services', {}), 400, 20001);
      await post(`/v2/Services/${a.json.sid}`, {}); // no FriendlyName: nothing changes
      const b = await post('/v2/Services', { FriendlyName: 'b' });
      assert.equal(b.json.date_created, '2020-01-01T00:00:10Z');
      assert.equal(b.headers.date, 'Wed, 01 Jan 2020 00:00:10 GMT');
      const u = await post(`/v2/Services/${a.json.sid}`, { FriendlyName: 'a2' });
      assert.equal(u.json.date_updated, '2020-01-01T00:00:20Z');
      assert.equal(u.json.date_created, '2020-01-01T00:00:00Z');
    });

    it('POST /_chatstore/clock sets the time (and the step); reset goes back to --clock', async () => {
      let r = await post('/_chatstore/clock', { Now: '2030-05-06T07:08:09+02:00', Step: '0' });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json, { now: '2030-05-06T05:08:09Z', step_seconds: 0, fixed: true });
      const x = await post('/v2/Services', { FriendlyName: 'x' });
      const y = await post('/v2/Services', { FriendlyName: 'y' });
      assert.equal(x.json.date_created, '2030-05-06T05:08:09Z');
      assert.equal(y.json.date_created, '2030-05-06T05:08:09Z');
      r = await post('/_chatstore/clock', { Now: '2030-01-01T00:00:00Z' }); // step kept
      assert.equal(r.json.step_seconds, 0);
      r = await post('/_chatstore/clock', { Now: '2030-01-01T00:00:00Z', Step: '2h' });
      assert.equal(r.json.step_seconds, 7200);
      await post('/_chatstore/reset');
      assert.deepEqual(await clock(), { now: '2020-01-01T00:00:00Z', step_seconds: 10, fixed: true });
      for (const [f, what] of [[{}, 'no Now'], [{ Now: 'tomorrow' }, 'bad Now'],
        [{ Now: '2020-01-01T00:00:00Z', Step: '1w' }, 'bad Step'],
        [{ Now: '2020-01-01T00:00:00Z', Step: '-1s' }, 'negative Step']]) {
        assertError(assert, await post('/_chatstore/clock', f), 400, 20001, what);
      }
      assert.equal((await clock()).now, '2020-01-01T00:00:00Z', 'refused: unchanged');
    });

    it('reset: back to the fixture with the same SIDs; Fixture=false: empty, generators at the seed', async () => {
      const before1 = (await request(srv, '/v2/Services')).text;
      const svcs = JSON.parse(before1).services;
      await post(`/v2/Services/${svcs[0].sid}`, { FriendlyName: 'changed' });
      await request(srv, `/v2/Services/${svcs[1].sid}`, { method: 'DELETE' });
      let r = await post('/_chatstore/reset');
      assert.equal(r.status, 200, r.text);
      assert.equal((await request(srv, '/v2/Services')).text, before1);
      r = await post('/_chatstore/reset', { Fixture: 'false' });
      assert.deepEqual([r.json.services, r.json.channels, r.json.messages, r.json.media,
        r.json.identities], [0, 0, 0, 0, 0]);
      assert.deepEqual((await request(srv, '/v2/Services')).json.services, []);
      const n = await post('/v2/Services', { FriendlyName: 'first again' });
      assert.equal(n.json.sid, svcs[0].sid, 'the first SID the seed gives');
      assert.equal(n.json.date_created, '2020-01-01T00:00:00Z');
      assertError(assert, await post('/_chatstore/reset', { Fixture: 'no' }), 400, 20001);
      await post('/_chatstore/reset');
    });

    it('reset frees the media bytes of what it removes', async () => {
      // --media-cap 100; the fixture's media content takes 16 bytes
      await post('/_chatstore/reset');
      const is = (await request(srv, '/v2/Services')).json.services[1].sid;
      const up = () => fetch(`${srv.origin}/v1/Services/${is}/Media`, {
        method: 'POST', headers: { Authorization: srv.auth, 'Content-Type': 'text/plain' },
        body: 'x'.repeat(80) });
      assert.equal((await up()).status, 201);
      assert.equal((await up()).status, 413, 'the cap holds');
      await post('/_chatstore/reset');
      assert.equal((await up()).status, 201, 'room again after the reset');
      await post('/_chatstore/reset', { Fixture: 'false' });
      await post('/_chatstore/reset');
      assert.equal((await up()).status, 201);
      await post('/_chatstore/reset');
    });

    it('a reset while creates run: none sees the store half reset (no 404)', async () => {
      const svc = (await request(srv, '/v2/Services')).json.services[0].sid;
      const msgs = `/v2/Services/${svc}/Channels/general/Messages`;
      const work = [];
      for (let i = 0; i < 200; i++) {
        work.push(i % 50 === 0 ? post('/_chatstore/reset') : post(msgs, { Body: `m${i}` }));
      }
      const rs = await Promise.all(work);
      // a create lands wholly before or after a reset: 201, never 404 (the
      // fixture's channel is back before the reset releases the lock)
      for (const r of rs) assert.ok(r.status === 200 || r.status === 201, r.text);
      assert.equal(rs.filter((r) => r.status === 200).length, 4);
      await post('/_chatstore/reset');
      const st = (await request(srv, '/_chatstore/stats')).json;
      assert.equal(st.messages, 6);
    });
  });

  it('without --clock: the real time until the clock is set, and again after a reset', async () => {
    const srv = await start(['--test-endpoints']);
    try {
      const c = (await request(srv, '/_chatstore/clock')).json;
      assert.equal(c.fixed, false);
      assert.ok(Math.abs(Date.parse(c.now) - Date.now()) < 120000, c.now);
      const r = await request(srv, '/_chatstore/clock', { method: 'POST', form: { Now: '1999-12-31T23:59:59Z' } });
      assert.deepEqual(r.json, { now: '1999-12-31T23:59:59Z', step_seconds: 0, fixed: true });
      const s = await request(srv, '/v2/Services', { method: 'POST', form: { FriendlyName: 'y2k' } });
      assert.equal(s.json.date_created, '1999-12-31T23:59:59Z');
      assert.equal(s.headers.date, 'Fri, 31 Dec 1999 23:59:59 GMT');
      const st = (await request(srv, '/_chatstore/stats')).json;
      assert.equal(st.seed, null);
      await request(srv, '/_chatstore/reset', { method: 'POST' });
      assert.equal((await request(srv, '/_chatstore/clock')).json.fixed, false);
    } finally {
      await srv.stop();
    }
  });
});
