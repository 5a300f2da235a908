'use strict';
// Raw HTTP against chatstore-server: authentication, the error envelope,
// statuses, the webhook header, list parameters, form and query encoding,
// size limits, routing, page URLs (DECISIONS.md "Reading pages"), and
// garbage on the socket.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { startServer, request, localPath, assertError, prng, BASE, ERROR_KEYS } = require('./server');

let srv;
// The tests of the server's own HTTP edge (raw bytes on the socket, Expect:
// 100-continue, oversized headers) talk to a chatstore-server directly.
// Under CHATSTORE_E2E_URL (a cluster behind a proxy) they get a server of
// their own with the same credentials, since a proxy in between answers
// some of those requests itself; otherwise edge is srv.
let edge;

before(async () => {
  srv = await startServer();
  edge = srv.external
    ? await startServer({ own: true, accountSid: srv.accountSid, authToken: srv.authToken })
    : srv;
});

after(async () => {
  if (edge && edge !== srv) await edge.stop();
  await srv.stop();
});

const post = (p, form, opts = {}) => request(srv, p, Object.assign({ method: 'POST', form }, opts));
const get = (p, opts = {}) => request(srv, p, opts);
const del = (p, opts = {}) => request(srv, p, Object.assign({ method: 'DELETE' }, opts));

async function mkService(name = 'svc') {
  const r = await post('/v2/Services', { FriendlyName: name });
  assert.equal(r.status, 201, r.text);
  return r.json;
}
async function mkChannel(is, form = {}) {
  const r = await post(`/v2/Services/${is}/Channels`, form);
  assert.equal(r.status, 201, r.text);
  return r.json;
}
async function mkMessages(is, ch, n, prefix = 'm') {
  const out = [];
  for (let i = 0; i < n; i++) {
    const r = await post(`/v2/Services/${is}/Channels/${ch}/Messages`, { Body: `${prefix}${i}` });
    assert.equal(r.status, 201, r.text);
    out.push(r.json);
  }
  return out;
}
async function count(is, ch) {
  const r = await get(`/v2/Services/${is}/Channels/${ch}`);
  assert.equal(r.status, 200, r.text);
  return r.json.messages_count;
}

/** Writes data on a fresh socket, collects what comes back until the server
 * closes, `until` (a RegExp) matches the output, or `wait` ms pass; then
 * closes. Never rejects. */
function rawExchange(data, wait = 400, until = null) {
  return new Promise((resolve) => {
    const s = net.connect(edge.port, '127.0.0.1');
    let out = Buffer.alloc(0);
    let done = false;
    const fin = (why) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ why, out: out.toString('latin1') });
    };
    const timer = setTimeout(() => fin('timeout'), wait);
    s.on('data', (d) => {
      out = Buffer.concat([out, d]);
      if (until && until.test(out.toString('latin1'))) fin('matched');
    });
    s.on('end', () => fin('end'));
    s.on('close', () => fin('close'));
    s.on('error', (e) => fin(`error ${e.code}`));
    s.write(data, () => {});
  });
}

/** Runs fns (returning promises) with at most k at a time. */
async function pool(fns, k = 16) {
  const results = [];
  let i = 0;
  const worker = async () => {
    while (i < fns.length) {
      const j = i++;
      results[j] = await fns[j]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(k, fns.length) }, worker));
  return results;
}

async function assertHealthy(what) {
  for (const s of new Set([srv, edge])) {
    const r = await request(s, '/v2/Services?PageSize=1');
    assert.equal(r.status, 200, `${what}: server no longer answers: ${r.text}`);
    assert.ok(s.alive(), `${what}: server died: ${JSON.stringify(s.exitInfo())}`);
  }
}

describe('authentication', () => {
  it('no credentials: 401 / 20003 with WWW-Authenticate', async () => {
    const r = await get('/v2/Services', { auth: false });
    assertError(assert, r, 401, 20003, 'no Authorization');
    assert.equal(r.headers['www-authenticate'], 'Basic realm="Twilio API"');
  });

  it('bad credentials: 401 / 20003 with WWW-Authenticate', async () => {
    const b64 = (s) => 'Basic ' + Buffer.from(s).toString('base64');
    const cases = {
      'wrong token': b64(`${srv.accountSid}:${srv.authToken}x`),
      'token prefix': b64(`${srv.accountSid}:${srv.authToken.slice(0, -1)}`),
      'empty token': b64(`${srv.accountSid}:`),
      'wrong account': b64(`AC${'0'.repeat(32)}:${srv.authToken}`),
      'upper-cased account': b64(`${srv.accountSid.toUpperCase()}:${srv.authToken}`),
      'no colon': b64(`${srv.accountSid}${srv.authToken}`),
      'swapped': b64(`${srv.authToken}:${srv.accountSid}`),
      'NUL after the account': b64(`${srv.accountSid}\0:${srv.authToken}`),
      'NUL and junk after the account': b64(`${srv.accountSid}\0junk:${srv.authToken}`),
      'NUL and junk after the token': b64(`${srv.accountSid}:${srv.authToken}\0junk`),
      'token with a trailing NUL': b64(`${srv.accountSid}:${srv.authToken}\0`),
      'not base64': 'Basic !!!not-base64!!!',
      'empty basic': 'Basic ',
      'bearer': `Bearer ${srv.authToken}`,
      'huge': 'Basic ' + 'QUFB'.repeat(4000),
    };
    for (const [what, auth] of Object.entries(cases)) {
      for (const [method, p] of [['GET', '/v2/Services'], ['POST', '/v2/Services'],
        ['DELETE', `/v2/Services/IS${'0'.repeat(32)}`], ['GET', '/v2/Nowhere']]) {
        const r = await request(srv, p, { method, auth, form: method === 'POST' ? { FriendlyName: 'x' } : undefined });
        assertError(assert, r, 401, 20003, `${what} ${method} ${p}`);
        assert.equal(r.headers['www-authenticate'], 'Basic realm="Twilio API"', what);
      }
    }
    const list = await get('/v2/Services');
    assert.ok(!list.json.services.some((s) => s.friendly_name === 'x'), 'a refused create went through');
  });

  it('good credentials: no WWW-Authenticate; the scheme name is case-insensitive', async () => {
    const r = await get('/v2/Services');
    assert.equal(r.status, 200);
    assert.equal(r.headers['www-authenticate'], undefined);
    const lower = await get('/v2/Services', { auth: srv.auth.replace('Basic', 'basic') });
    assert.equal(lower.status, 200, lower.text);
  });
});

describe('statuses and bodies', () => {
  it('201 create, 200 fetch/update/list, 204 delete with an empty body', async () => {
    const s = await post('/v2/Services', { FriendlyName: 'statuses' });
    assert.equal(s.status, 201);
    assert.match(s.headers['content-type'], /^application\/json/);
    const is = s.json.sid;
    const base = `/v2/Services/${is}`;
    assert.equal((await get(base)).status, 200);
    assert.equal((await post(base, { FriendlyName: 'renamed' })).status, 200);
    assert.equal((await get('/v2/Services')).status, 200);
    const c = await post(`${base}/Channels`, { UniqueName: 'st' });
    assert.equal(c.status, 201);
    assert.equal((await get(`${base}/Channels/st`)).status, 200);
    assert.equal((await post(`${base}/Channels/st`, { FriendlyName: 'x' })).status, 200);
    assert.equal((await get(`${base}/Channels`)).status, 200);
    const m = await post(`${base}/Channels/st/Messages`, { Body: 'hi' });
    assert.equal(m.status, 201);
    const mp = `${base}/Channels/st/Messages/${m.json.sid}`;
    assert.equal((await get(mp)).status, 200);
    assert.equal((await post(mp, { Body: 'edited' })).status, 200);
    assert.equal((await get(`${base}/Channels/st/Messages`)).status, 200);
    for (const p of [mp, `${base}/Channels/st`, base]) {
      const d = await del(p);
      assert.equal(d.status, 204, p);
      assert.equal(d.buf.length, 0, `${p}: 204 with a body`);
      assert.ok(d.headers['content-length'] === undefined || d.headers['content-length'] === '0');
      assert.equal(d.headers['content-type'], undefined);
      assertError(assert, await get(p), 404, 20404, `${p} after delete`);
    }
  });

  it('every error body is exactly {code, message, more_info, status}', async () => {
    const s = await mkService('envelope');
    const c = await mkChannel(s.sid, { UniqueName: 'env' });
    const base = `/v2/Services/${s.sid}/Channels/env`;
    const cases = [
      [get('/v2/Services', { auth: false }), 401, 20003],
      [get('/nowhere'), 404, 20404],
      [get(`${base}/Messages/IM${'0'.repeat(32)}`), 404, 20404],
      [request(srv, '/v2/Services', { method: 'PUT' }), 405, 20004],
      [post('/v2/Services', {}), 400, 20001],
      [post(`/v2/Services/${s.sid}/Channels`, { UniqueName: 'env' }), 409, 50307],
      [post(`${base}/Messages`, { Body: 'x'.repeat(32769) }), 400, 50504],
      [post(`${base}/Messages`, { Attributes: '{' }), 400, 50304],
      [post(`${base}/Messages`, 'Body=%zz'), 400, 20001],
      [get(`${base}/Messages?Order=up`), 400, 20001],
      [post(`${base}/Messages`, 'Body=' + 'a'.repeat(1 << 20)), 413, undefined],
      [post(`/v1/Services/${s.sid}/Media`, undefined, { body: 'x', headers: { 'Content-Type': 'bad' } }), 400, 50511],
    ];
    for (const [p, status, code] of cases) {
      const r = await p;
      assertError(assert, r, status, code, `case ${status}/${code}`);
      // Byte-level: the keys in that order, nothing else.
      assert.match(r.text, /^\{"code": \d+, "message": "(?:[^"\\]|\\.)*", "more_info": "[^"]+", "status": \d+\}$/, r.text);
    }
    assert.equal(await count(s.sid, c.sid), 0);
  });

  it('404 messages echo the path without /v2', async () => {
    const s = await mkService('echo');
    const ch = `CH${'a'.repeat(32)}`;
    const r = await get(`/v2/Services/${s.sid}/Channels/${ch}/Messages?PageSize=5`);
    assertError(assert, r, 404, 20404);
    assert.equal(r.json.message, `The requested resource /Services/${s.sid}/Channels/${ch}/Messages was not found`);
    const r2 = await get(`/v2/Services/${s.sid}/Channels/no%20such%2Froom`);
    assert.equal(r2.json.message, `The requested resource /Services/${s.sid}/Channels/no%20such%2Froom was not found`);
    const r3 = await get('/v2/Services/ISnope');
    assert.equal(r3.json.message, 'The requested resource /Services/ISnope was not found');
    const r4 = await get('/v3/Things');
    assert.equal(r4.json.message, 'The requested resource /v3/Things was not found');
    const r5 = await get(`/v1/Services/${s.sid}/Media/ME${'0'.repeat(32)}`);
    assert.equal(r5.json.message, `The requested resource /Services/${s.sid}/Media/ME${'0'.repeat(32)} was not found`);
  });

  it('404 echo stays valid UTF-8 JSON for raw non-UTF-8 path bytes', async () => {
    const cr = await request(edge, '/v2/Services', { method: 'POST', form: { FriendlyName: 'raw bytes' } });
    assert.equal(cr.status, 201, cr.text);
    const s = cr.json;
    const head = `GET /v2/Services/${s.sid}/Channels/x`;
    const req = Buffer.concat([Buffer.from(head), Buffer.from([0xff, 0xc3]), Buffer.from(
      ` HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: ${edge.auth}\r\n\r\n`)]);
    const r = await new Promise((resolve) => {
      const sock = net.connect(edge.port, '127.0.0.1');
      const chunks = [];
      sock.on('data', (d) => chunks.push(d));
      sock.on('close', () => resolve(Buffer.concat(chunks)));
      sock.write(req);
    });
    const body = r.subarray(r.indexOf('\r\n\r\n') + 4);
    assert.match(r.subarray(0, 20).toString(), /^HTTP\/1\.1 404/);
    const text = new TextDecoder('utf-8', { fatal: true }).decode(body); // throws on bad UTF-8
    const j = JSON.parse(text);
    assert.deepEqual(Object.keys(j), ERROR_KEYS);
    assert.equal(j.message, `The requested resource /Services/${s.sid}/Channels/x%FF%C3 was not found`);
  });
});

describe('X-Twilio-Webhook-Enabled', () => {
  let s;
  let c;
  let m;
  before(async () => {
    s = await mkService('webhook');
    c = await mkChannel(s.sid, { UniqueName: 'wh' });
    [m] = await mkMessages(s.sid, c.sid, 1);
  });
  const hdr = (v) => ({ headers: { 'X-Twilio-Webhook-Enabled': v } });

  it('true / false in any letter case are accepted on create, update, delete', async () => {
    for (const v of ['true', 'false', 'TRUE', 'False', 'tRuE']) {
      const mc = await post(`/v2/Services/${s.sid}/Channels/wh/Messages`, { Body: v }, hdr(v));
      assert.equal(mc.status, 201, `${v}: ${mc.text}`);
      const mu = await post(`/v2/Services/${s.sid}/Channels/wh/Messages/${mc.json.sid}`, { Body: 'u' }, hdr(v));
      assert.equal(mu.status, 200, mu.text);
      const md = await del(`/v2/Services/${s.sid}/Channels/wh/Messages/${mc.json.sid}`, hdr(v));
      assert.equal(md.status, 204, md.text);
      const cc = await post(`/v2/Services/${s.sid}/Channels`, {}, hdr(v));
      assert.equal(cc.status, 201, cc.text);
      assert.equal((await post(`/v2/Services/${s.sid}/Channels/${cc.json.sid}`, { FriendlyName: 'f' }, hdr(v))).status, 200);
      assert.equal((await del(`/v2/Services/${s.sid}/Channels/${cc.json.sid}`, hdr(v))).status, 204);
    }
  });

  it('any other value: 400 / 20001 and nothing changes', async () => {
    for (const v of ['yes', '1', '0', '', 'truee', 'tru', 'true,false', 'null', 'on']) {
      const before = await get(`/v2/Services/${s.sid}/Channels/wh`);
      const chans = (await get(`/v2/Services/${s.sid}/Channels?Type=public&Type=private`)).json.channels.length;
      assertError(assert, await post(`/v2/Services/${s.sid}/Channels/wh/Messages`, { Body: 'x' }, hdr(v)), 400, 20001, `create ${v}`);
      assertError(assert, await post(`/v2/Services/${s.sid}/Channels/wh/Messages/${m.sid}`, { Body: 'x' }, hdr(v)), 400, 20001, `update ${v}`);
      assertError(assert, await del(`/v2/Services/${s.sid}/Channels/wh/Messages/${m.sid}`, hdr(v)), 400, 20001, `delete ${v}`);
      assertError(assert, await post(`/v2/Services/${s.sid}/Channels`, { UniqueName: 'new' }, hdr(v)), 400, 20001, `channel create ${v}`);
      assertError(assert, await post(`/v2/Services/${s.sid}/Channels/wh`, { FriendlyName: 'x' }, hdr(v)), 400, 20001, `channel update ${v}`);
      assertError(assert, await del(`/v2/Services/${s.sid}/Channels/wh`, hdr(v)), 400, 20001, `channel delete ${v}`);
      const after = await get(`/v2/Services/${s.sid}/Channels/wh`);
      assert.deepEqual(after.json, before.json, v);
      const msg = await get(`/v2/Services/${s.sid}/Channels/wh/Messages/${m.sid}`);
      assert.equal(msg.json.body, 'm0');
      assert.equal(msg.json.was_edited, false);
      assert.equal((await get(`/v2/Services/${s.sid}/Channels?Type=public&Type=private`)).json.channels.length, chans);
    }
  });

  it('is ignored on reads', async () => {
    assert.equal((await get(`/v2/Services/${s.sid}/Channels/wh/Messages`, hdr('bogus'))).status, 200);
    assert.equal((await get(`/v2/Services/${s.sid}/Channels/wh`, hdr('bogus'))).status, 200);
  });
});

describe('list parameters', () => {
  let s;
  let c;
  let other;
  before(async () => {
    s = await mkService('params');
    c = await mkChannel(s.sid, { UniqueName: 'p' });
    other = await mkChannel(s.sid, { UniqueName: 'q' });
    await mkMessages(s.sid, c.sid, 7);
    await mkMessages(s.sid, other.sid, 7);
  });
  const msgs = () => `/v2/Services/${s.sid}/Channels/p/Messages`;

  it('bad Order: 400 / 20001', async () => {
    for (const o of ['ASC', 'Desc', '', 'up', 'asc%20', 'descending', 'asc,desc']) {
      assertError(assert, await get(`${msgs()}?Order=${o}`), 400, 20001, `Order=${o}`);
    }
    assert.equal((await get(`${msgs()}?Order=asc`)).status, 200);
    assert.equal((await get(`${msgs()}?Order=desc`)).status, 200);
  });

  it('bad PageSize / Page: 400 / 20001', async () => {
    for (const q of ['PageSize=0', 'PageSize=-1', 'PageSize=abc', 'PageSize=', 'PageSize',
      'PageSize=1.5', 'PageSize=%2B5', 'PageSize=%205', 'PageSize=0x10', 'PageSize=5abc',
      'Page=-1', 'Page=abc', 'Page=', 'Page=1e3', 'Page=99999999999999999999']) {
      for (const p of [msgs(), `/v2/Services/${s.sid}/Channels`, '/v2/Services']) {
        assertError(assert, await get(`${p}?${q}`), 400, 20001, `${p}?${q}`);
      }
    }
  });

  it('PageSize above 1000 is clamped to 1000', async () => {
    for (const [q, want] of [['5000', 1000], ['1000', 1000], ['1001', 1000], ['999', 999],
      ['99999999999999999999999', 1000], ['007', 7]]) {
      for (const p of [msgs(), `/v2/Services/${s.sid}/Channels`, '/v2/Services']) {
        const r = await get(`${p}?PageSize=${q}`);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.meta.page_size, want, `${p}?PageSize=${q}`);
        assert.ok(r.json.meta.url.includes(`PageSize=${want}&`), r.json.meta.url);
      }
    }
  });

  it('forged or foreign PageToken: 400 / 20001', async () => {
    const p0 = (await get(`${msgs()}?PageSize=2`)).json;
    const tok = new URL(p0.meta.next_page_url).searchParams.get('PageToken');
    assert.match(tok, /^PT[A-Za-z0-9]+$/);
    const flip = (t, i) => t.slice(0, i) + (t[i] === '0' ? '1' : '0') + t.slice(i + 1);
    const desc = (await get(`${msgs()}?PageSize=2&Order=desc`)).json;
    const descTok = new URL(desc.meta.next_page_url).searchParams.get('PageToken');
    const otherTok = new URL((await get(`/v2/Services/${s.sid}/Channels/q/Messages?PageSize=2`)).json
      .meta.next_page_url).searchParams.get('PageToken');
    const forged = ['garbage', '', 'PT', 'PT2', 'PT0', 'PA' + tok.slice(2), flip(tok, tok.length - 1),
      flip(tok, 10), tok.toUpperCase(), tok + '0', tok.slice(0, -1), ' ' + tok, descTok, otherTok];
    for (const t of forged) {
      assertError(assert, await get(`${msgs()}?PageSize=2&PageToken=${encodeURIComponent(t)}`), 400,
        20001, `token ${t}`);
    }
    // A desc token is valid only with Order=desc, a channel's token only on that channel.
    assert.equal((await get(`${msgs()}?Order=desc&PageSize=2&PageToken=${descTok}`)).status, 200);
    assert.equal((await get(`/v2/Services/${s.sid}/Channels/q/Messages?PageSize=2&PageToken=${otherTok}`)).status, 200);
    // Channel and service list tokens are not interchangeable with message tokens.
    await mkChannel(s.sid, {});
    const chTok = new URL((await get(`/v2/Services/${s.sid}/Channels?PageSize=1`)).json.meta.next_page_url)
      .searchParams.get('PageToken');
    assertError(assert, await get(`${msgs()}?PageToken=${chTok}`), 400, 20001, 'channel token on messages');
    assertError(assert, await get(`/v2/Services?PageToken=${chTok}`), 400, 20001, 'channel token on services');
    assertError(assert, await get(`/v2/Services/${s.sid}/Channels?PageToken=${tok}`), 400, 20001, 'message token on channels');
    assertError(assert, await get(`/v2/Services/${s.sid}/Channels?PageToken=garbage`), 400, 20001, 'channels');
    assertError(assert, await get('/v2/Services?PageToken=garbage'), 400, 20001, 'services');
  });

  it('a token from another server (store) is refused', async () => {
    const p0 = (await get(`${msgs()}?PageSize=2`)).json;
    const tok = new URL(p0.meta.next_page_url).searchParams.get('PageToken');
    const srv2 = await startServer({ accountSid: srv.accountSid, authToken: srv.authToken });
    try {
      const s2 = (await request(srv2, '/v2/Services', { method: 'POST', form: { FriendlyName: 'x' } })).json;
      const c2 = (await request(srv2, `/v2/Services/${s2.sid}/Channels`, { method: 'POST', form: {} })).json;
      for (let i = 0; i < 5; i++) {
        await request(srv2, `/v2/Services/${s2.sid}/Channels/${c2.sid}/Messages`, { method: 'POST', form: { Body: 'x' } });
      }
      const r = await request(srv2, `/v2/Services/${s2.sid}/Channels/${c2.sid}/Messages?PageSize=2&PageToken=${tok}`);
      assertError(assert, r, 400, 20001, 'foreign store token');
    } finally {
      await srv2.stop();
    }
  });

  it('Type filter on channels: values, repeats, bad values', async () => {
    const s2 = await mkService('types');
    const a = await mkChannel(s2.sid, { Type: 'private' });
    const b = await mkChannel(s2.sid, { Type: 'public' });
    const chans = (q) => get(`/v2/Services/${s2.sid}/Channels${q}`).then((r) => r.json.channels.map((x) => x.sid));
    assert.deepEqual(await chans(''), [b.sid]);
    assert.deepEqual(await chans('?Type=private'), [a.sid]);
    assert.deepEqual(await chans('?Type=public'), [b.sid]);
    assert.deepEqual(await chans('?Type=private&Type=public'), [a.sid, b.sid]);
    assert.deepEqual(await chans('?Type=public&Type=public'), [b.sid]);
    for (const t of ['Public', 'secret', '']) {
      assertError(assert, await get(`/v2/Services/${s2.sid}/Channels?Type=${t}`), 400, 20001, `Type=${t}`);
    }
    assertError(assert, await post(`/v2/Services/${s2.sid}/Channels`, { Type: 'PRIVATE' }), 400, 20001, 'create Type');
  });
});

describe('form and query encoding', () => {
  let s;
  let c;
  before(async () => {
    s = await mkService('forms');
    c = await mkChannel(s.sid, { UniqueName: 'f' });
  });
  const msgs = () => `/v2/Services/${s.sid}/Channels/f/Messages`;

  it('malformed form encoding: 400 / 20001, nothing stored', async () => {
    for (const body of ['Body=%zz', 'Body=%', 'Body=%4', 'Body=ok%G0', '%zz=1', 'Body=x&From=%',
      'From=a&Body=%%']) {
      assertError(assert, await post(msgs(), body), 400, 20001, body);
    }
    assertError(assert, await post('/v2/Services', 'FriendlyName=%E'), 400, 20001, 'service');
    assertError(assert, await post(`/v2/Services/${s.sid}/Channels`, 'UniqueName=a%'), 400, 20001, 'channel');
    assert.equal(await count(s.sid, c.sid), 0);
  });

  it('invalid UTF-8 in a parameter: 400 / 20001', async () => {
    for (const body of ['Body=%FF', 'Body=%C3', 'From=%ED%A0%80', 'Body=%C0%AF', 'LastUpdatedBy=%F8%88%80%80%80']) {
      assertError(assert, await post(msgs(), body), 400, 20001, body);
    }
    assert.equal(await count(s.sid, c.sid), 0);
  });

  it('decoding: + is a space, %2B a plus, %00 a NUL, unknown fields ignored', async () => {
    const r = await post(msgs(), 'Body=a+b%2Bc%00d%26e%3Df&Unknown=1&&From=x%20y');
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.body, 'a b+c\u0000d&e=f');
    assert.equal(r.json.from, 'x y');
    assert.match(r.text, /"body": "a b\+c\\u0000d&e=f"/);
    const f = await post(`${msgs()}/${r.json.sid}`, 'Nothing=1');
    assert.equal(f.status, 200);
    assert.equal(f.json.was_edited, false); // unknown fields are not parameters
  });

  it('malformed query encoding: 400 / 20001 (not silently dropped)', async () => {
    for (const q of ['PageSize=%zz', 'PageToken=%', 'Order=%4', '%zz=1', 'Page=1&PageToken=%G1']) {
      assertError(assert, await get(`${msgs()}?${q}`), 400, 20001, q);
    }
    const r = await get(`${msgs()}?PageSize=%35`); // %35 is '5'
    assert.equal(r.status, 200);
    assert.equal(r.json.meta.page_size, 5);
  });
});

describe('request size', () => {
  it('a request body over 1 MiB: 413, and the server still answers', async () => {
    const s = await mkService('size');
    const c = await mkChannel(s.sid, {});
    const p = `/v2/Services/${s.sid}/Channels/${c.sid}/Messages`;
    const over = 'Body=' + 'a'.repeat((1 << 20) - 4); // 1 MiB + 1
    assert.equal(over.length, (1 << 20) + 1);
    const r = await post(p, over);
    assertError(assert, r, 413, undefined, 'Content-Length body');
    const r2 = await post(p, over, { chunked: true });
    assertError(assert, r2, 413, undefined, 'chunked body');
    const r3 = await post(p, 'Body=' + 'b'.repeat(4 << 20), { chunked: true });
    assertError(assert, r3, 413, undefined, '4 MiB chunked');
    // Exactly 1 MiB is read and handled (here: the body limit).
    const exact = over.slice(0, 1 << 20);
    assertError(assert, await post(p, exact), 400, 50504, 'exactly 1 MiB');
    assertError(assert, await post(p, exact, { chunked: true }), 400, 50504, 'exactly 1 MiB chunked');
    assert.equal(await count(s.sid, c.sid), 0);
    const ok = await post(p, { Body: 'still here' });
    assert.equal(ok.status, 201);
    await assertHealthy('after 413');
  });

  it('Expect: 100-continue with a Content-Length over the limit: 413 at once, no body read', async () => {
    const head = (auth) => `POST /v2/Services HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\n` +
      'Expect: 100-continue\r\nContent-Length: 99999999999\r\n\r\n';
    const t0 = Date.now();
    const r = await rawExchange(head(srv.auth), 5000);
    assert.match(r.out, /^HTTP\/1\.1 413 /, r.out.slice(0, 80)); // no "100 Continue" first
    assert.notEqual(r.why, 'timeout');
    assert.ok(Date.now() - t0 < 4000);
    const body = JSON.parse(r.out.slice(r.out.indexOf('\r\n\r\n') + 4));
    assert.deepEqual(Object.keys(body), ERROR_KEYS);
    assert.equal(body.status, 413);
    // Authentication still comes first.
    const u = await rawExchange(head('Basic eDp5'), 5000);
    assert.match(u.out, /^HTTP\/1\.1 401 /, u.out.slice(0, 80));
    // Within the limit, the client is told to go on.
    const ok = await rawExchange(`POST /v2/Services HTTP/1.1\r\nHost: x\r\nAuthorization: ${srv.auth}\r\n` +
      'Expect: 100-continue\r\nContent-Length: 14\r\n\r\n', 5000, /\r\n\r\n/);
    assert.match(ok.out, /^HTTP\/1\.1 100 Continue\r\n/, ok.out.slice(0, 80));
    await assertHealthy('after a huge Content-Length');
  });
});

describe('routing', () => {
  let s;
  let c;
  let m;
  before(async () => {
    s = await mkService('routing');
    c = await mkChannel(s.sid, { UniqueName: 'r' });
    [m] = await mkMessages(s.sid, c.sid, 1);
  });

  it('unknown paths: 404 / 20404', async () => {
    const IS = s.sid;
    const paths = ['/', '/v2', '/v3/Services', '/v2/services', '/v2/SERVICES', '/v2/Services2',
      `/v2/Services/${IS}/Users`, `/v2/Services/${IS}/Roles`, `/v2/Services/${IS}/Channels/r/Members`,
      `/v2/Services/${IS}/Channels/r/Invites`, `/v2/Services/${IS}/Channels/r/Webhooks`,
      `/v2/Services/${IS}/Channels/r/messages`, `/v2/Services/${IS}/Channels/r/Messages/${m.sid}/Extra`,
      `/v2/Services/${IS}/Channels/r/Messages/${m.sid}/a/b/c/d/e/f/g/h/i`, `/v2/Services/${IS}/channels`,
      `/v2/Services/%zz`, `/v1/Services/${IS}/Other`, `/v1/Services/${IS}/Media/ME${'0'.repeat(32)}/Other`,
      `/v1/Services/${IS}/Media/ME${'0'.repeat(32)}`, '/v1', '/favicon.ico',
      `/v2/Services/${IS}/Channels/r/Messages/${m.sid.toUpperCase()}x`];
    for (const p of paths) assertError(assert, await get(p), 404, 20404, p);
    for (const p of paths.slice(0, 8)) assertError(assert, await post(p, { FriendlyName: 'x' }), 404, 20404, `POST ${p}`);
  });

  it('wrong methods: 405 with Allow', async () => {
    const IS = s.sid;
    const cases = [
      ['PUT', '/v2/Services', 'GET, POST'], ['DELETE', '/v2/Services', 'GET, POST'],
      ['PATCH', `/v2/Services/${IS}`, 'GET, POST, DELETE'], ['PUT', `/v2/Services/${IS}`, 'GET, POST, DELETE'],
      ['DELETE', `/v2/Services/${IS}/Channels`, 'GET, POST'], ['OPTIONS', `/v2/Services/${IS}/Channels/r`, 'GET, POST, DELETE'],
      ['DELETE', `/v2/Services/${IS}/Channels/r/Messages`, 'GET, POST'],
      ['PUT', `/v2/Services/${IS}/Channels/r/Messages/${m.sid}`, 'GET, POST, DELETE'],
      ['GET', `/v1/Services/${IS}/Media`, 'POST'], ['DELETE', `/v1/Services/${IS}/Media`, 'POST'],
      ['POST', `/v1/Services/${IS}/Media/ME${'0'.repeat(32)}`, 'GET'],
      ['DELETE', `/v1/Services/${IS}/Media/ME${'0'.repeat(32)}/Content`, 'GET'],
      ['FOO', '/v2/Services', 'GET, POST'],
    ];
    for (const [method, p, allow] of cases) {
      const r = await request(srv, p, { method });
      assertError(assert, r, 405, 20004, `${method} ${p}`);
      assert.equal(r.headers.allow, allow, `${method} ${p}`);
    }
    const h = await request(srv, '/v2/Services', { method: 'HEAD' });
    assert.equal(h.status, 405);
    assert.equal(h.buf.length, 0);
    // Nothing was deleted.
    assert.equal((await get(`/v2/Services/${IS}/Channels/r/Messages/${m.sid}`)).status, 200);
  });

  it('a unique name containing %2F is one path segment', async () => {
    const ch = await mkChannel(s.sid, { UniqueName: 'a/b' });
    assert.equal(ch.unique_name, 'a/b');
    for (const seg of ['a%2Fb', 'a%2fb']) {
      const r = await get(`/v2/Services/${s.sid}/Channels/${seg}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.sid, ch.sid);
      assert.equal(r.json.url, `${BASE}/v2/Services/${s.sid}/Channels/${ch.sid}`);
    }
    assertError(assert, await get(`/v2/Services/${s.sid}/Channels/a/b`), 404, 20404, 'unencoded slash');
    const mm = await post(`/v2/Services/${s.sid}/Channels/a%2Fb/Messages`, { Body: 'slash' });
    assert.equal(mm.status, 201, mm.text);
    assert.equal(mm.json.channel_sid, ch.sid);
    const got = await get(`/v2/Services/${s.sid}/Channels/a%2Fb/Messages/${mm.json.sid}`);
    assert.equal(got.json.body, 'slash');
    assert.equal((await get(`/v2/Services/${s.sid}/Channels/a%2Fb/Messages`)).json.messages.length, 1);
    // Other reserved characters travel encoded, and '+' in a path is a plus.
    for (const name of ['x y', 'x+y', 'q?r', 'h#i', 'p%q', 'a&b=c', 'ünï', '..', '.']) {
      const cc = await mkChannel(s.sid, { UniqueName: name });
      const r = await get(`/v2/Services/${s.sid}/Channels/${encodeURIComponent(name)}`);
      assert.equal(r.status, 200, `${name}: ${r.text}`);
      assert.equal(r.json.sid, cc.sid, name);
    }
    const plus = await get(`/v2/Services/${s.sid}/Channels/x+y`);
    assert.equal(plus.json.unique_name, 'x+y');
    assertError(assert, await get(`/v2/Services/${s.sid}/Channels/a%2`), 404, 20404, 'bad escape in path');
  });

  it('SIDs in paths match case-insensitively; URLs are lower-case', async () => {
    const up = (sid) => sid.slice(0, 2) + sid.slice(2).toUpperCase();
    const r = await get(`/v2/Services/${up(s.sid)}/Channels/${up(c.sid)}/Messages/${up(m.sid)}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.sid, m.sid);
    assert.equal(r.json.url, `${BASE}/v2/Services/${s.sid}/Channels/${c.sid}/Messages/${m.sid}`);
  });
});

describe('page URLs', () => {
  let s;
  let c;
  let msgs;
  const N = 12;
  before(async () => {
    s = await mkService('meta');
    c = await mkChannel(s.sid, { UniqueName: 'meta' });
    msgs = await mkMessages(s.sid, c.sid, N);
  });
  const list = () => `${BASE}/v2/Services/${s.sid}/Channels/${c.sid}/Messages`;

  it('meta of a first page, in key order, URLs on SIDs', async () => {
    const r = await get(`/v2/Services/${s.sid}/Channels/meta/Messages?PageSize=5`);
    assert.equal(r.status, 200);
    const meta = r.json.meta;
    assert.deepEqual(Object.keys(meta), ['page', 'page_size', 'first_page_url', 'previous_page_url',
      'url', 'next_page_url', 'key']);
    assert.equal(meta.page, 0);
    assert.equal(meta.page_size, 5);
    assert.equal(meta.key, 'messages');
    assert.equal(meta.first_page_url, `${list()}?PageSize=5&Page=0`);
    assert.equal(meta.url, `${list()}?PageSize=5&Page=0`);
    assert.equal(meta.previous_page_url, null);
    assert.match(meta.next_page_url, new RegExp(`^${list().replace(/[.?]/g, '\\$&')}\\?PageSize=5&Page=1&PageToken=[^&]+$`));
    assert.deepEqual(r.json.messages.map((x) => x.index), [0, 1, 2, 3, 4]);
    const d = await get(`/v2/Services/${s.sid}/Channels/meta/Messages`);
    assert.equal(d.json.meta.first_page_url, `${list()}?PageSize=50&Page=0`);
    assert.equal(d.json.meta.next_page_url, null);
  });

  it('following next_page_url verbatim walks all pages; previous walks back', async () => {
    for (const order of ['', 'Order=asc&', 'Order=desc&']) {
      const desc = order === 'Order=desc&';
      let url = `${list()}?${order}PageSize=5&Page=0`;
      const pages = [];
      for (;;) {
        const r = await get(localPath(url));
        assert.equal(r.status, 200, r.text);
        const meta = r.json.meta;
        assert.equal(meta.url, url, 'url is the requested page');
        assert.equal(meta.page, pages.length);
        assert.equal(meta.first_page_url, `${list()}?${order}PageSize=5&Page=0`);
        if (pages.length === 0) assert.equal(meta.previous_page_url, null);
        else assert.ok(meta.previous_page_url.startsWith(`${list()}?${order}PageSize=5&Page=${pages.length - 1}&PageToken=`), meta.previous_page_url);
        pages.push(r.json);
        if (!meta.next_page_url) break;
        assert.ok(meta.next_page_url.startsWith(`${list()}?${order}PageSize=5&Page=${pages.length}&PageToken=`), meta.next_page_url);
        url = meta.next_page_url;
      }
      assert.equal(pages.length, 3);
      const idx = pages.flatMap((p) => p.messages.map((x) => x.index));
      const want = msgs.map((x) => x.index);
      assert.deepEqual(idx, desc ? want.reverse() : want);
      // And back.
      let back = pages[pages.length - 1];
      for (let i = pages.length - 2; i >= 0; i--) {
        const r = await get(localPath(back.meta.previous_page_url));
        assert.equal(r.json.meta.page, i);
        assert.deepEqual(r.json.messages.map((x) => x.sid), pages[i].messages.map((x) => x.sid));
        back = r.json;
      }
      assert.equal(back.meta.previous_page_url, null);
    }
  });

  it('query parameters come in the order Order, PageSize, Page, PageToken', async () => {
    const p0 = (await get(`/v2/Services/${s.sid}/Channels/${c.sid}/Messages?Order=desc&PageSize=4`)).json;
    const tok = new URL(p0.meta.next_page_url).searchParams.get('PageToken');
    const r = await get(`/v2/Services/${s.sid}/Channels/${c.sid}/Messages?PageToken=${tok}&Page=1&PageSize=4&Order=desc`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.meta.url, `${list()}?Order=desc&PageSize=4&Page=1&PageToken=${tok}`);
    assert.equal(r.json.meta.first_page_url, `${list()}?Order=desc&PageSize=4&Page=0`);
    assert.ok(r.json.meta.next_page_url.startsWith(`${list()}?Order=desc&PageSize=4&Page=2&PageToken=`));
    assert.ok(r.json.meta.previous_page_url.startsWith(`${list()}?Order=desc&PageSize=4&Page=0&PageToken=`));
    assert.deepEqual(r.json.messages.map((x) => x.index), [7, 6, 5, 4]);
  });

  it('Page is echoed; next carries Page=n+1, previous Page=n-1', async () => {
    const p0 = (await get(`/v2/Services/${s.sid}/Channels/${c.sid}/Messages?PageSize=3`)).json;
    const tok = new URL(p0.meta.next_page_url).searchParams.get('PageToken');
    const r = (await get(`/v2/Services/${s.sid}/Channels/${c.sid}/Messages?PageSize=3&Page=41&PageToken=${tok}`)).json;
    assert.equal(r.meta.page, 41);
    assert.ok(r.meta.next_page_url.includes('&Page=42&PageToken='), r.meta.next_page_url);
    assert.ok(r.meta.previous_page_url.includes('&Page=40&PageToken='), r.meta.previous_page_url);
    assert.deepEqual(r.messages.map((x) => x.index), [3, 4, 5]);
    const back = (await get(localPath(r.meta.previous_page_url))).json;
    assert.deepEqual(back.messages.map((x) => x.index), [0, 1, 2]);
  });

  it('a last page that is exactly full has no next_page_url', async () => {
    const a = (await get(`/v2/Services/${s.sid}/Channels/${c.sid}/Messages?PageSize=6`)).json;
    const b = (await get(localPath(a.meta.next_page_url))).json;
    assert.equal(b.messages.length, 6);
    assert.equal(b.meta.next_page_url, null);
    const whole = (await get(`/v2/Services/${s.sid}/Channels/${c.sid}/Messages?PageSize=${N}&Order=desc`)).json;
    assert.equal(whole.messages.length, N);
    assert.equal(whole.meta.next_page_url, null);
  });

  it('an empty list: [] and no links', async () => {
    const e = await mkChannel(s.sid, {});
    const r = (await get(`/v2/Services/${s.sid}/Channels/${e.sid}/Messages?Order=desc`)).json;
    assert.deepEqual(r.messages, []);
    assert.equal(r.meta.next_page_url, null);
    assert.equal(r.meta.previous_page_url, null);
    assert.equal(r.meta.first_page_url, `${BASE}/v2/Services/${s.sid}/Channels/${e.sid}/Messages?Order=desc&PageSize=50&Page=0`);
  });

  it('a next link stays exact when messages come and go', async () => {
    const ch = await mkChannel(s.sid, {});
    const ms = await mkMessages(s.sid, ch.sid, 6);
    const p0 = (await get(`/v2/Services/${s.sid}/Channels/${ch.sid}/Messages?PageSize=3`)).json;
    assert.equal(p0.meta.next_page_url !== null, true);
    await del(`/v2/Services/${s.sid}/Channels/${ch.sid}/Messages/${ms[3].sid}`);
    await del(`/v2/Services/${s.sid}/Channels/${ch.sid}/Messages/${ms[2].sid}`);
    await mkMessages(s.sid, ch.sid, 1, 'late');
    const p1 = (await get(localPath(p0.meta.next_page_url))).json;
    assert.deepEqual(p1.messages.map((x) => x.index), [4, 5, 6]);
    // Everything after the next link deleted: an empty page, no next.
    const p0b = (await get(`/v2/Services/${s.sid}/Channels/${ch.sid}/Messages?PageSize=2`)).json;
    for (const x of p1.messages) await del(`/v2/Services/${s.sid}/Channels/${ch.sid}/Messages/${x.sid}`);
    const p1b = (await get(localPath(p0b.meta.next_page_url))).json;
    assert.deepEqual(p1b.messages, []);
    assert.equal(p1b.meta.next_page_url, null);
  });

  it('channel and service lists: filters first, keys, links', async () => {
    const s2 = await mkService('meta lists');
    for (let i = 0; i < 3; i++) await mkChannel(s2.sid, { Type: i % 2 ? 'private' : 'public' });
    const base = `${BASE}/v2/Services/${s2.sid}/Channels`;
    const r = (await get(`/v2/Services/${s2.sid}/Channels?PageSize=2&Type=private&Type=public`)).json;
    assert.deepEqual(Object.keys(r), ['channels', 'meta']);
    assert.equal(r.meta.key, 'channels');
    assert.equal(r.meta.first_page_url, `${base}?Type=public&Type=private&PageSize=2&Page=0`);
    assert.ok(r.meta.next_page_url.startsWith(`${base}?Type=public&Type=private&PageSize=2&Page=1&PageToken=`));
    const r2 = (await get(localPath(r.meta.next_page_url))).json;
    assert.equal(r2.channels.length, 1);
    assert.equal(r2.meta.next_page_url, null);
    const d = (await get(`/v2/Services/${s2.sid}/Channels`)).json;
    assert.equal(d.meta.url, `${base}?PageSize=50&Page=0`);
    assert.equal(d.channels.length, 2);
    const sv = (await get('/v2/Services?PageSize=1')).json;
    assert.deepEqual(Object.keys(sv), ['services', 'meta']);
    assert.equal(sv.meta.key, 'services');
    assert.equal(sv.meta.first_page_url, `${BASE}/v2/Services?PageSize=1&Page=0`);
    let url = sv.meta.next_page_url;
    const seen = [sv.services[0].sid];
    while (url) {
      const p = (await get(localPath(url))).json;
      seen.push(...p.services.map((x) => x.sid));
      url = p.meta.next_page_url;
    }
    const all = (await get('/v2/Services?PageSize=1000')).json.services.map((x) => x.sid);
    assert.deepEqual(seen, all);
  });
});

describe('store rules over HTTP', () => {
  let s;
  let c;
  let M;
  before(async () => {
    s = await mkService('rules');
    c = await mkChannel(s.sid, { UniqueName: 'rules' });
    M = `/v2/Services/${s.sid}/Channels/rules/Messages`;
  });

  it('size limits: attributes 16384 bytes, names and identities 256 code points', async () => {
    const str = (n) => `"${'a'.repeat(n - 2)}"`; // a JSON string of n bytes
    assert.equal((await post(M, { Attributes: str(16384) })).status, 201);
    assertError(assert, await post(M, { Attributes: str(16385) }), 400, 50303, 'attributes 16385');
    assert.equal((await post(M, { From: 'é'.repeat(256), LastUpdatedBy: '☕'.repeat(256) })).status, 201);
    assertError(assert, await post(M, { From: 'é'.repeat(257) }), 400, 50310, 'From 257');
    assertError(assert, await post(M, { LastUpdatedBy: 'x'.repeat(257) }), 400, 50505, 'LastUpdatedBy 257');
    assert.equal((await post(`/v2/Services/${s.sid}/Channels`, { UniqueName: '☕'.repeat(256), FriendlyName: 'ü'.repeat(256) })).status, 201);
    assertError(assert, await post(`/v2/Services/${s.sid}/Channels`, { UniqueName: '☕'.repeat(257) }), 400, 50004, 'unique 257');
    assertError(assert, await post(`/v2/Services/${s.sid}/Channels`, { FriendlyName: 'a'.repeat(257) }), 400, 50003, 'friendly 257');
    assertError(assert, await post(`/v2/Services/${s.sid}/Channels`, { CreatedBy: 'a'.repeat(257) }), 400, 50207, 'CreatedBy 257');
    assertError(assert, await post(`/v2/Services/${s.sid}`, { FriendlyName: '' }), 400, 20001, 'empty service name');
  });

  it('deeply nested attributes are accepted verbatim (no recursion limit)', async () => {
    const deep = '['.repeat(8000) + ']'.repeat(8000);
    const r = await post(M, { Attributes: deep });
    assert.equal(r.status, 201, r.text.slice(0, 200));
    assert.ok(r.json.attributes === deep, 'deep array attributes changed');
    const obj = '{"a":'.repeat(2500) + '1' + '}'.repeat(2500);
    const ro = await post(M, { Attributes: obj });
    assert.equal(ro.status, 201, ro.text.slice(0, 200));
    assert.ok(ro.json.attributes === obj, 'deep object attributes changed');
    assertError(assert, await post(M, { Attributes: '['.repeat(8000) + ']'.repeat(7999) }), 400, 50304, 'unbalanced');
    for (const bad of ['{"a":1,}', "{'a':1}", '01', 'NaN', '"\u0001"', '[1 2]', '{"a" 1}', 'tru', '"\\x"']) {
      assertError(assert, await post(M, { Attributes: bad }), 400, 50304, bad);
    }
    for (const ok of ['0', '-1.5e-300', '"é"', 'null', ' [ ] ', '{"a":{"b":[true,false,null]}}', '1e999']) {
      assert.equal((await post(M, { Attributes: ok })).json.attributes, ok);
    }
    await assertHealthy('deep attributes');
  });

  it('links.last_message follows the last message, null when none is left', async () => {
    const ch = await mkChannel(s.sid, {});
    const P = `/v2/Services/${s.sid}/Channels/${ch.sid}`;
    const [a, b] = await mkMessages(s.sid, ch.sid, 2);
    assert.equal((await get(P)).json.links.last_message, b.url);
    await del(`${P}/Messages/${b.sid}`);
    const after1 = (await get(P)).json;
    assert.equal(after1.links.last_message, a.url);
    assert.equal(after1.messages_count, 1);
    await del(`${P}/Messages/${a.sid}`);
    const after2 = (await get(P)).json;
    assert.equal(after2.links.last_message, null);
    assert.equal(after2.messages_count, 0);
    const [n] = await mkMessages(s.sid, ch.sid, 1);
    assert.equal(n.index, 2); // indices are never given again
  });

  it('an update clearing UniqueName frees the name', async () => {
    const ch = await mkChannel(s.sid, { UniqueName: 'to-clear' });
    const r = await post(`/v2/Services/${s.sid}/Channels/to-clear`, { UniqueName: '' });
    assert.equal(r.status, 200);
    assert.equal(r.json.unique_name, null);
    assertError(assert, await get(`/v2/Services/${s.sid}/Channels/to-clear`), 404, 20404, 'cleared name');
    assert.notEqual((await mkChannel(s.sid, { UniqueName: 'to-clear' })).sid, ch.sid);
  });

  it('dates: offsets and fractions normalised to UTC; impossible dates refused', async () => {
    for (const [inp, out] of [['2020-02-29T00:00:00Z', '2020-02-29T00:00:00Z'],
      ['2020-01-02T03:04:05.123456789-05:30', '2020-01-02T08:34:05Z'],
      ['2020-01-02T03:04:05+02:00', '2020-01-02T01:04:05Z'], ['1999-12-31T23:59:59Z', '1999-12-31T23:59:59Z']]) {
      const r = await post(M, { DateCreated: inp });
      assert.equal(r.status, 201, `${inp}: ${r.text}`);
      assert.equal(r.json.date_created, out, inp);
      assert.equal(r.json.date_updated, out, inp);
    }
    for (const bad of ['2021-02-29T00:00:00Z', '2020-13-01T00:00:00Z', '2020-01-02T24:00:00Z',
      '2020-01-02', '2020-01-02T03:04Z', 'yesterday', '', '2020-01-02T03:04:05+24:00']) {
      assertError(assert, await post(M, { DateCreated: bad }), 400, 50308, `DateCreated ${bad}`);
      assertError(assert, await post(M, { DateUpdated: bad }), 400, 50309, `DateUpdated ${bad}`);
    }
  });

  it('a next link with a huge Page stays followable', async () => {
    await mkMessages(s.sid, c.sid, 4, 'big');
    let url = `${M}?PageSize=1&Page=9007199254740990`;
    for (let i = 0; i < 3; i++) {
      const r = await get(url);
      assert.equal(r.status, 200, `${url}: ${r.text}`);
      url = localPath(r.json.meta.next_page_url);
    }
  });
});

describe('concurrency', () => {
  it('parallel creates in one channel get distinct consecutive indices', async () => {
    const s = await mkService('parallel');
    const c = await mkChannel(s.sid, {});
    const p = `/v2/Services/${s.sid}/Channels/${c.sid}/Messages`;
    const K = 120;
    const rs = await pool(Array.from({ length: K }, (_, i) => () => post(p, { Body: `p${i}` })), 32);
    assert.ok(rs.every((r) => r.status === 201));
    const idx = rs.map((r) => r.json.index).sort((a, b) => a - b);
    assert.deepEqual(idx, Array.from({ length: K }, (_, i) => i));
    assert.equal(await count(s.sid, c.sid), K);
    const listed = (await get(`${p}?PageSize=1000`)).json.messages;
    assert.deepEqual(listed.map((x) => x.index), idx);
    // Mixed readers and writers.
    const mixed = await pool(Array.from({ length: 90 }, (_, i) => () => (i % 3 === 0
      ? del(`${p}/${rs[i].json.sid}`) : i % 3 === 1 ? get(`${p}?PageSize=7&Order=desc`) : post(`${p}/${rs[i].json.sid}`, { Body: 'u' }))), 24);
    assert.ok(mixed.every((r) => [200, 204].includes(r.status)), mixed.map((r) => r.status).join());
    assert.equal(await count(s.sid, c.sid), K - 30);
  });
});

describe('error precedence', () => {
  const IS0 = `IS${'0'.repeat(32)}`;
  const over = 'Body=' + 'a'.repeat((1 << 20) - 4); // 1 MiB + 1
  let s;
  let c;
  before(async () => {
    s = await mkService('precedence');
    c = await mkChannel(s.sid, { UniqueName: 'prec' });
  });
  const msgs = () => `/v2/Services/${s.sid}/Channels/prec/Messages`;
  const QUERY = 'Malformed query string';
  const FORM = 'Malformed form-encoded body';

  it('server: 401, then 413, then query, then form, then route, then resource, then parameters', async () => {
    // Body size before the query, the form, the route and the method.
    for (const [method, p] of [['POST', '/v2/Nowhere'], ['PUT', '/v2/Services'],
      ['POST', '/v2/Services?PageSize=%zz'], ['POST', `/v2/Services/${IS0}/Channels`],
      ['DELETE', `/v2/Services/${IS0}`]]) {
      assertError(assert, await request(srv, p, { method, form: over }), 413, 20001, `${method} ${p}`);
    }
    // Authentication before the body size.
    assertError(assert, await request(srv, '/v2/Nowhere', { method: 'POST', form: over, auth: false }), 401, 20003, 'no auth');
    // Query encoding before form encoding.
    let r = await post('/v2/Services?PageSize=%zz', 'FriendlyName=%zz');
    assertError(assert, r, 400, 20001, 'query and form');
    assert.equal(r.json.message, QUERY);
    // Both before the route, the method and the resource.
    for (const [method, p, body, message] of [
      ['GET', '/v2/Nowhere?x=%zz', undefined, QUERY],
      ['POST', '/v2/Nowhere', 'a=%zz', FORM],
      ['PUT', '/v2/Services', 'a=%zz', FORM],
      ['DELETE', '/v2/Services?x=%4', undefined, QUERY],
      ['GET', `/v2/Services/${IS0}/Channels?PageSize=%zz`, undefined, QUERY],
      ['POST', `/v2/Services/${IS0}/Channels`, 'FriendlyName=%zz', FORM],
      ['POST', `/v2/Services/${s.sid}/Channels/nowhere/Messages/IM${'0'.repeat(32)}`, 'Body=%', FORM],
    ]) {
      r = await request(srv, p, { method, form: body });
      assertError(assert, r, 400, 20001, `${method} ${p}`);
      assert.equal(r.json.message, message, `${method} ${p}`);
    }
    // The route (405) before the resource (404).
    for (const [method, p] of [['DELETE', `/v2/Services/${IS0}/Channels`], ['PUT', `/v2/Services/${IS0}`],
      ['DELETE', `/v2/Services/${IS0}/Channels/x/Messages`], ['GET', `/v1/Services/${IS0}/Media`]]) {
      assertError(assert, await request(srv, p, { method }), 405, 20004, `${method} ${p}`);
    }
    // The resource (404) before the parameters.
    const bad = { Body: 'x'.repeat(32769), Attributes: '{', DateCreated: 'no' };
    const hdr = { headers: { 'X-Twilio-Webhook-Enabled': 'maybe' } };
    for (const [method, p, form] of [
      ['POST', `/v2/Services/${s.sid}/Channels/nowhere/Messages`, bad],
      ['POST', `${msgs()}/IM${'0'.repeat(32)}`, bad],
      ['DELETE', `${msgs()}/IM${'0'.repeat(32)}`, undefined],
      ['POST', `/v2/Services/${IS0}/Channels`, { Type: 'secret', FriendlyName: 'x'.repeat(257) }],
      ['POST', `/v2/Services/${s.sid}/Channels/nowhere`, { Attributes: '{' }],
      ['DELETE', `/v2/Services/${s.sid}/Channels/nowhere`, undefined],
      ['GET', `/v2/Services/${s.sid}/Channels/nowhere/Messages?Order=up&PageSize=0`, undefined],
      ['GET', `/v2/Services/${IS0}/Channels?Type=secret&PageSize=0`, undefined],
      ['POST', `/v2/Services/${IS0}`, { FriendlyName: '' }],
    ]) {
      assertError(assert, await request(srv, p, Object.assign({ method, form }, hdr)), 404, 20404, `${method} ${p}`);
    }
    r = await request(srv, `/v1/Services/${IS0}/Media?Filename=%FF`, { method: 'POST', body: 'abc', headers: { 'Content-Type': 'bad' } });
    assertError(assert, r, 404, 20404, 'media: missing service');
    assert.equal(await count(s.sid, c.sid), 0);
  });

  it('message, channel and list parameters: the documented first error wins', async () => {
    const hdr = { headers: { 'X-Twilio-Webhook-Enabled': 'maybe' } };
    const cases = [
      // Messages: header, Body, Attributes, From, LastUpdatedBy, DateCreated, DateUpdated, MediaSid.
      [msgs(), { Body: 'x'.repeat(32769), Attributes: '{' }, hdr, 400, 20001, 'X-Twilio-Webhook-Enabled must be true or false'],
      [msgs(), { Body: 'x'.repeat(32769), Attributes: '{' }, {}, 400, 50504],
      [msgs(), { Body: '%FF', Attributes: '{' }, {}, 400, 20001, 'Parameter is not valid UTF-8', 'Body=%FF&Attributes=%7B'],
      [msgs(), { Attributes: '{', From: 'f'.repeat(257) }, {}, 400, 50304],
      [msgs(), { From: 'f'.repeat(257), LastUpdatedBy: 'l'.repeat(257) }, {}, 400, 50310],
      [msgs(), { LastUpdatedBy: 'l'.repeat(257), DateCreated: 'no' }, {}, 400, 50505],
      [msgs(), { DateCreated: 'no', DateUpdated: 'no' }, {}, 400, 50308],
      [msgs(), { DateUpdated: 'no', MediaSid: 'ME1' }, {}, 400, 50309],
      [msgs(), { MediaSid: `ME${'0'.repeat(32)}`, Body: 'ok' }, {}, 400, 50507],
      // Channels: header, FriendlyName, UniqueName, Attributes, CreatedBy, Type, dates, then 409.
      [`/v2/Services/${s.sid}/Channels`, { FriendlyName: 'n'.repeat(257), UniqueName: 'prec' }, hdr, 400, 20001, 'X-Twilio-Webhook-Enabled must be true or false'],
      [`/v2/Services/${s.sid}/Channels`, { FriendlyName: 'n'.repeat(257), UniqueName: 'u'.repeat(257) }, {}, 400, 50003],
      [`/v2/Services/${s.sid}/Channels`, { UniqueName: 'u'.repeat(257), Attributes: '{' }, {}, 400, 50004],
      [`/v2/Services/${s.sid}/Channels`, { UniqueName: `CH${'a'.repeat(32)}`, Attributes: '{' }, {}, 400, 50306],
      [`/v2/Services/${s.sid}/Channels`, { Attributes: '{', CreatedBy: 'c'.repeat(257) }, {}, 400, 50304],
      [`/v2/Services/${s.sid}/Channels`, { CreatedBy: 'c'.repeat(257), Type: 'secret' }, {}, 400, 50207],
      [`/v2/Services/${s.sid}/Channels`, { Type: 'secret', DateCreated: 'no', UniqueName: 'prec' }, {}, 400, 20001, 'Type must be public or private'],
      [`/v2/Services/${s.sid}/Channels`, { DateCreated: 'no', DateUpdated: 'no' }, {}, 400, 50308],
      [`/v2/Services/${s.sid}/Channels`, { DateUpdated: 'no', UniqueName: 'prec' }, {}, 400, 50309],
    ];
    for (const [p, form, opts, status, code, message, raw] of cases) {
      const r = await post(p, raw || form, opts);
      assertError(assert, r, status, code, `${p} ${JSON.stringify(form).slice(0, 80)}`);
      if (message) assert.equal(r.json.message, message, JSON.stringify(form).slice(0, 80));
    }
    // Lists: Type or Order, then PageSize, Page, PageToken.
    const lists = [
      [`${msgs()}?PageToken=PTx&Page=x&PageSize=0&Order=up`, 'Order must be asc or desc'],
      [`/v2/Services/${s.sid}/Channels?PageToken=PTx&Page=x&PageSize=0&Type=secret`, 'Type must be public or private'],
      [`${msgs()}?PageToken=PTx&Page=x&PageSize=0`, 'PageSize must be a positive integer'],
      ['/v2/Services?PageToken=PTx&Page=x&PageSize=0', 'PageSize must be a positive integer'],
      [`${msgs()}?PageToken=PTx&Page=x`, 'Page must be a non-negative integer'],
      [`${msgs()}?PageToken=PTx`, 'Invalid PageToken'],
    ];
    for (const [p, message] of lists) {
      const r = await get(p);
      assertError(assert, r, 400, 20001, p);
      assert.equal(r.json.message, message, p);
    }
    assert.equal(await count(s.sid, c.sid), 0);
    const chans = (await get(`/v2/Services/${s.sid}/Channels?Type=public&Type=private`)).json.channels;
    assert.deepEqual(chans.map((x) => x.unique_name), ['prec']);
  });
});

describe('services over HTTP', () => {
  it('update sets FriendlyName and the webhook settings, and ignores every other parameter', async () => {
    const s = await mkService('only the name');
    const p = `/v2/Services/${s.sid}`;
    const others = {
      ReachabilityEnabled: 'true', ReadStatusEnabled: 'false',
      TypingIndicatorTimeout: '9', ConsumptionReportInterval: '3',
      'Notifications.NewMessage.Enabled': 'true', 'Notifications.LogEnabled': 'true',
      'Media.CompatibilityMessage': 'changed', 'Limits.ChannelMembers': '5', 'Limits.UserChannels': '7',
      DefaultServiceRoleSid: `RL${'1'.repeat(32)}`, DefaultChannelRoleSid: `RL${'2'.repeat(32)}`,
      DefaultChannelCreatorRoleSid: `RL${'3'.repeat(32)}`, AccountSid: `AC${'4'.repeat(32)}`, Sid: `IS${'5'.repeat(32)}`,
    };
    // Only other parameters: nothing changes, date_updated included.
    const same = await post(p, others, { headers: { 'X-Twilio-Webhook-Enabled': 'true' } });
    assert.equal(same.status, 200, same.text);
    assert.equal(same.text, (await get(p)).text);
    assert.deepEqual(same.json, s);
    // With FriendlyName and the webhook settings: only those and date_updated differ.
    const hooks = new URLSearchParams(Object.assign({ FriendlyName: 'renamed' }, others, {
      PreWebhookUrl: 'https://example.com/pre', PostWebhookUrl: 'https://example.com/post?a=1',
      WebhookMethod: 'GET', PreWebhookRetryCount: '3', PostWebhookRetryCount: '2',
    }));
    hooks.append('WebhookFilters', 'onMessageSent');
    hooks.append('WebhookFilters', 'onChannelDestroyed');
    const r = await post(p, hooks.toString());
    assert.equal(r.status, 200, r.text);
    const want = Object.assign({}, s, {
      friendly_name: 'renamed', date_updated: r.json.date_updated,
      pre_webhook_url: 'https://example.com/pre', post_webhook_url: 'https://example.com/post?a=1',
      webhook_method: 'GET', webhook_filters: ['onMessageSent', 'onChannelDestroyed'],
      pre_webhook_retry_count: 3, post_webhook_retry_count: 2,
    });
    assert.deepEqual(r.json, want);
    assert.equal((await get(p)).text, r.text);
    // Bad settings: 400 / 20001, nothing changes.
    for (const bad of [{ PostWebhookUrl: 'ftp://x' }, { PreWebhookUrl: 'relative/path' },
      { WebhookMethod: 'get' }, { WebhookFilters: 'onMessageSend ' }, { PostWebhookRetryCount: '4' },
      { PreWebhookRetryCount: '' }, { WebhookMethod: '' }]) {
      const b = await post(p, bad);
      assert.equal(b.status, 400, JSON.stringify(bad));
      assert.equal(b.json.code, 20001);
      assert.equal((await get(p)).text, r.text);
    }
    // Empty values: URLs and filters back to null.
    const cleared = await post(p, 'PreWebhookUrl=&PostWebhookUrl=&WebhookFilters=');
    assert.equal(cleared.status, 200, cleared.text);
    assert.equal(cleared.json.pre_webhook_url, null);
    assert.equal(cleared.json.post_webhook_url, null);
    assert.equal(cleared.json.webhook_filters, null);
    assert.equal(cleared.json.webhook_method, 'GET');
  });
});

describe('media uploads over HTTP', () => {
  let s;
  before(async () => {
    s = await mkService('media fields');
  });
  const up = (q, body, headers) => request(srv, `/v1/Services/${s.sid}/Media${q}`, { method: 'POST', body, headers });

  it('author is sender, date_updated is date_created, an empty Filename is kept, no Content-Type is 50511', async () => {
    const a = await up('?Filename=', Buffer.from('abc'), { 'Content-Type': 'text/plain' });
    assert.equal(a.status, 201, a.text);
    assert.equal(a.json.filename, '');
    assert.match(a.text, /"filename": "", "author": "sender", /);
    assert.equal(a.json.author, 'sender');
    assert.equal(a.json.date_updated, a.json.date_created);
    const m = await get(`/v1/Services/${s.sid}/Media/${a.json.sid}`);
    assert.equal(m.text, a.text);
    const b = await up('?Filename=b.txt', Buffer.from('xyz'), { 'Content-Type': 'text/plain' });
    assert.equal(b.json.author, 'sender');
    assert.equal(b.json.filename, 'b.txt');
    assert.equal(b.json.date_updated, b.json.date_created);
    // Attaching it to a message changes neither.
    const ch = await mkChannel(s.sid, {});
    const msg = await post(`/v2/Services/${s.sid}/Channels/${ch.sid}/Messages`, { MediaSid: b.json.sid });
    assert.equal(msg.status, 201, msg.text);
    const after = (await get(`/v1/Services/${s.sid}/Media/${b.json.sid}`)).json;
    assert.equal(after.author, 'sender');
    assert.equal(after.date_updated, after.date_created);
    assert.equal(after.message_sid, msg.json.sid);
    // No Content-Type header at all.
    const none = await up('?Filename=x', Buffer.from('abc'), {});
    assertError(assert, none, 400, 50511, 'no Content-Type');
  });
});

describe('the media byte cap', () => {
  let small;
  before(async () => {
    small = await startServer({ extraArgs: ['--media-cap', '1000'] });
  });
  after(async () => {
    await small.stop();
  });
  const up = (is, n, ct = 'application/octet-stream', chunked = false) => request(small, `/v1/Services/${is}/Media`,
    { method: 'POST', body: Buffer.alloc(n, 1), headers: { 'Content-Type': ct }, chunked });

  it('one upload larger than --media-cap: 413 / 20001; one that does not fit what is left: 413 / 50512 before the service lookup', async () => {
    const sv = await request(small, '/v2/Services', { method: 'POST', form: { FriendlyName: 'cap' } });
    assert.equal(sv.status, 201, sv.text);
    const is = sv.json.sid;
    const IS0 = `IS${'0'.repeat(32)}`;
    for (const chunked of [false, true]) {
      assertError(assert, await up(is, 1001, undefined, chunked), 413, 20001, `over the cap, chunked ${chunked}`);
      assertError(assert, await up(IS0, 1001, undefined, chunked), 413, 20001, `over the cap, missing service, chunked ${chunked}`);
    }
    assert.equal((await up(is, 600)).status, 201);
    // 600 + 600 > 1000: full, before the service and the content type are looked at.
    assertError(assert, await up(is, 600), 413, 50512, 'full');
    assertError(assert, await up(IS0, 600), 413, 50512, 'full, missing service');
    assertError(assert, await up(is, 600, 'bad'), 413, 50512, 'full, bad content type');
    // What still fits is stored.
    assert.equal((await up(is, 400)).status, 201);
  });
});

describe('repeated parameters', () => {
  let s;
  let c;
  before(async () => {
    s = await mkService('repeats');
    c = await mkChannel(s.sid, { UniqueName: 'rep' });
  });
  const msgs = () => `/v2/Services/${s.sid}/Channels/rep/Messages`;

  it('a repeated form or query parameter: the first value wins', async () => {
    const m = await post(msgs(), 'Body=first&From=alice&Body=second&From=bob&Attributes=%7B%7D&Attributes=%7B');
    assert.equal(m.status, 201, m.text);
    assert.equal(m.json.body, 'first');
    assert.equal(m.json.from, 'alice');
    const u = await post(`${msgs()}/${m.json.sid}`, 'Body=one&Body=two&DateUpdated=2020-01-01T00:00:00Z&DateUpdated=no');
    assert.equal(u.status, 200, u.text);
    assert.equal(u.json.body, 'one');
    assert.equal(u.json.date_updated, '2020-01-01T00:00:00Z');
    const sv = await post('/v2/Services', 'FriendlyName=a&FriendlyName=');
    assert.equal(sv.status, 201, sv.text);
    assert.equal(sv.json.friendly_name, 'a');
    const ch = await post(`/v2/Services/${s.sid}/Channels`, 'Type=private&Type=public&UniqueName=x1&UniqueName=x2');
    assert.equal(ch.status, 201, ch.text);
    assert.equal(ch.json.type, 'private');
    assert.equal(ch.json.unique_name, 'x1');
    await mkMessages(s.sid, c.sid, 4);
    let r = await get(`${msgs()}?PageSize=2&PageSize=3`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.meta.page_size, 2);
    assert.equal(r.json.messages.length, 2);
    r = await get(`${msgs()}?Order=desc&Order=bogus`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.messages.map((x) => x.index), [4, 3, 2, 1, 0]);
    r = await get(`${msgs()}?Page=x&Page=1&PageSize=1`);
    assertError(assert, r, 400, 20001, 'first Page is bad');
    const me = await request(srv, `/v1/Services/${s.sid}/Media?Filename=a.txt&Filename=b.txt`,
      { method: 'POST', body: 'x', headers: { 'Content-Type': 'text/plain' } });
    assert.equal(me.status, 201, me.text);
    assert.equal(me.json.filename, 'a.txt');
  });

  it('Type: up to 8 values are read; more is 400 / 20001', async () => {
    const chans = `/v2/Services/${s.sid}/Channels`;
    const types = (list) => list.map((t) => `Type=${t}`).join('&');
    // The 8th value counts.
    let r = await get(`${chans}?${types([...Array(7).fill('public'), 'private'])}`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.channels.map((x) => x.unique_name), ['rep', 'x1']);
    assert.match(r.json.meta.url, /\?Type=public&Type=private&PageSize=50&Page=0$/);
    // A 9th is refused, whatever the values, rather than dropped.
    for (const list of [Array(9).fill('public'), [...Array(8).fill('public'), 'private'], Array(20).fill('private')]) {
      r = await get(`${chans}?${types(list)}`);
      assertError(assert, r, 400, 20001, `${list.length} Type values`);
      assert.equal(r.json.message, 'Type may be given at most 8 times');
    }
    // A missing service is still 404 first; 9 values on a message list are ignored like any unknown field.
    assertError(assert, await get(`/v2/Services/IS${'0'.repeat(32)}/Channels?${types(Array(9).fill('public'))}`), 404, 20404, 'missing service');
    r = await get(`${msgs()}?${types(Array(9).fill('public'))}`);
    assert.equal(r.status, 200, r.text);
    // Create reads only the first Type.
    const ch = await post(chans, `${types(['public', ...Array(9).fill('private')])}&UniqueName=many`);
    assert.equal(ch.status, 201, ch.text);
    assert.equal(ch.json.type, 'public');
  });
});

describe('garbage on the socket', () => {
  const okReq = () => `POST /v2/Services HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${srv.auth}\r\n` +
    'Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 14\r\n\r\nFriendlyName=g';

  it('random bytes', async () => {
    const rnd = prng(20240601);
    const jobs = [];
    for (let i = 0; i < 60; i++) {
      const n = 1 + Math.floor(rnd() * 6000);
      const b = Buffer.alloc(n);
      for (let j = 0; j < n; j++) b[j] = Math.floor(rnd() * 256);
      if (i % 4 === 1) b.write('GET /v2/Services HTTP/1.1\r\n'); // plausible start
      if (i % 4 === 2) b.write(`POST /v2/Services HTTP/1.1\r\nAuthorization: ${srv.auth}\r\nContent-Length: 5\r\n\r\n`);
      jobs.push(() => rawExchange(b, 300));
    }
    await pool(jobs, 20);
    await assertHealthy('random bytes');
  });

  it('mutated valid requests', async () => {
    const rnd = prng(77);
    const base = Buffer.from(okReq());
    const jobs = [];
    for (let i = 0; i < 150; i++) {
      const b = Buffer.from(base);
      const flips = 1 + Math.floor(rnd() * 4);
      for (let f = 0; f < flips; f++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      jobs.push(() => rawExchange(b, 250));
    }
    await pool(jobs, 25);
    await assertHealthy('mutated requests');
  });

  it('truncated requests', async () => {
    const full = okReq();
    const jobs = [];
    for (let cut = 0; cut < full.length; cut += 3) jobs.push(() => rawExchange(full.slice(0, cut), 150));
    jobs.push(() => rawExchange(`POST /v2/Services HTTP/1.1\r\nAuthorization: ${srv.auth}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nFrie`, 150));
    await pool(jobs, 25);
    await assertHealthy('truncated requests');
  });

  it('huge headers, huge URLs, many headers', async () => {
    const a = `Authorization: ${srv.auth}\r\nConnection: close\r\n`;
    const [big, many, url, auth] = await Promise.all([
      rawExchange(`GET /v2/Services HTTP/1.1\r\nHost: x\r\n${a}X-Big: ${'a'.repeat(200000)}\r\n\r\n`, 3000),
      rawExchange(`GET /v2/Services HTTP/1.1\r\nHost: x\r\n${a}` +
        Array.from({ length: 20000 }, (_, i) => `X-H${i}: v`).join('\r\n') + '\r\n\r\n', 3000),
      rawExchange(`GET /v2/Services?x=${'a'.repeat(300000)} HTTP/1.1\r\nHost: x\r\n${a}\r\n`, 3000),
      rawExchange(`GET /v2/Services HTTP/1.1\r\nHost: x\r\nConnection: close\r\n` +
        `Authorization: Basic ${'QUJD'.repeat(6000)}\r\n\r\n`, 3000),
    ]);
    // Refused with a 4xx (431 / 414 from libmicrohttpd) or a closed connection.
    for (const r of [big, many, url]) {
      assert.ok(/^HTTP\/1\.1 4\d\d /.test(r.out) || r.out === '', r.out.slice(0, 60));
      assert.notEqual(r.why, 'timeout');
    }
    assert.match(auth.out, /^HTTP\/1\.1 401 /);
    await assertHealthy('huge headers');
  });

  it('protocol oddities', async () => {
    const a = `Authorization: ${srv.auth}\r\n`;
    const odd = [
      'GET /v2/Services HTTP/9.9\r\nHost: x\r\n\r\n',
      `POST /v2/Services HTTP/1.1\r\nHost: x\r\n${a}Content-Length: -5\r\n\r\nFriendlyName=x`,
      `POST /v2/Services HTTP/1.1\r\nHost: x\r\n${a}Content-Length: 14\r\nContent-Length: 3\r\n\r\nFriendlyName=x`,
      `POST /v2/Services HTTP/1.1\r\nHost: x\r\n${a}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`,
      `POST /v2/Services HTTP/1.1\r\nHost: x\r\n${a}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n`,
      `POST /v2/Services HTTP/1.1\r\nHost: x\r\n${a}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n`,
      `GET /v2/Serv\0ices HTTP/1.1\r\nHost: x\r\n${a}\r\n`,
      `GET  /v2/Services  HTTP/1.1\r\n${a}\r\n`,
      `GET /v2/Services HTTP/1.1\n${a.trim()}\n\n`,
      `GET\r\n\r\n`, '\r\n\r\n\r\n', 'HTTP/1.1 200 OK\r\n\r\n',
      `GET http://evil/v2/Services HTTP/1.1\r\nHost: x\r\n${a}\r\n`,
      `GET * HTTP/1.1\r\nHost: x\r\n${a}\r\n`,
      `CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\n${a}\r\n`,
      `GET /v2/Services HTTP/1.1\r\nHost: x\r\n${a}Expect: 100-continue\r\nContent-Length: 5\r\n\r\n`,
      `GET /v2/Services HTTP/1.1\r\nHost: x\r\n${a} folded: header\r\n\r\n`,
      `GET /v2/Services HTTP/1.1\r\nHost: x\r\n${a}\r\n`.repeat(50), // pipelined
    ];
    await pool(odd.map((d) => () => rawExchange(d, 400)), 10);
    await assertHealthy('protocol oddities');
  });

  it('many idle and half-open connections', async () => {
    const socks = await Promise.all(Array.from({ length: 200 }, () => new Promise((resolve) => {
      const so = net.connect(edge.port, '127.0.0.1', () => resolve(so));
      so.on('error', () => resolve(so));
    })));
    for (const [i, so] of socks.entries()) if (i % 2) so.write('GET /v2/Services HTTP/1.1\r\n');
    await assertHealthy('with 200 idle connections');
    for (const so of socks) so.destroy();
    await assertHealthy('after idle connections');
  });
});
