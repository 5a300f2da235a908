'use strict';
// Post-event webhooks of chatstore-server (docs/behaviour.md, section 9a),
// received on loopback by a node HTTP server that checks every request with
// the twilio package's own validateRequest (and that a wrong token fails it).
// Run by ctest as server_webhooks: node --test tests/e2e/webhooks.js (its
// name keeps it out of server_e2e's *.test.js, so the two run in parallel).

for (const v of ['TWILIO_EDGE', 'TWILIO_REGION', 'HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY',
  'https_proxy', 'ALL_PROXY', 'all_proxy', 'NO_PROXY', 'no_proxy']) delete process.env[v];

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { startServer, request } = require('./server');
const twilio = require('twilio');

// ---- the receiver ----------------------------------------------------------

/** A webhook receiver on 127.0.0.1:0. Paths choose the answer:
 *   /ok/...          200
 *   /flaky/ID/...    503 to the first two requests of ID, then 200
 *   /status/N/...    N
 *   /sleep/MS/...    answers 200 after MS milliseconds
 *   /hold/...        answers 200 once release() is called
 * Every request is kept with its parameters (the form body of a POST, the
 * query of a GET), whether the signature validates with the token and with a
 * wrong one, and how many requests of its service were in flight. */
function startReceiver(token) {
  const got = [];
  const flaky = new Map();
  const inFlight = new Map();
  let held = [];
  let holding = true;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const url = `http://127.0.0.1:${server.address().port}${req.url}`;
      const u = new URL(url);
      const params = req.method === 'POST' ? Object.fromEntries(new URLSearchParams(body))
        : Object.fromEntries(u.searchParams);
      const sig = req.headers['x-twilio-signature'];
      const signed = req.method === 'POST' ? params : {};
      const rec = {
        method: req.method, url, path: u.pathname, body, params, headers: req.headers, at: Date.now(),
        valid: twilio.validateRequest(token, sig || '', url, signed),
        validWrongToken: twilio.validateRequest(`${token}x`, sig || '', url, signed),
      };
      const svc = params.InstanceSid;
      const n = (inFlight.get(svc) || 0) + 1;
      inFlight.set(svc, n);
      rec.concurrent = n;
      got.push(rec);
      const done = (status) => {
        inFlight.set(svc, inFlight.get(svc) - 1);
        res.writeHead(status, { 'Content-Type': 'text/plain' });
        res.end('ok');
      };
      const seg = u.pathname.split('/');
      if (seg[1] === 'flaky') {
        const k = (flaky.get(seg[2]) || 0) + 1;
        flaky.set(seg[2], k);
        setTimeout(() => done(k <= 2 ? 503 : 200), 5);
      } else if (seg[1] === 'status') {
        done(Number(seg[2]));
      } else if (seg[1] === 'sleep') {
        setTimeout(() => done(200), Number(seg[2]));
      } else if (seg[1] === 'hold' && holding) {
        held.push(() => done(200));
      } else {
        setTimeout(() => done(200), 2); // a little time, so overlaps would show
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: server.address().port,
        url: (p) => `http://127.0.0.1:${server.address().port}${p}`,
        got,
        of: (svc) => got.filter((r) => r.params.InstanceSid === svc),
        release() {
          holding = false;
          const h = held;
          held = [];
          for (const f of h) f();
        },
        close: () => new Promise((r) => {
          holding = false;
          for (const f of held) f();
          server.closeAllConnections();
          server.close(r);
        }),
      });
    });
  });
}

async function waitFor(what, cond, ms = 10000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const iso = (d) => d.replace(/Z$/, '.000Z');
const DATE_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/;

let srv;
let recv;
const HOOK = { 'X-Twilio-Webhook-Enabled': 'true' };

const post = (p, form, headers = {}) => request(srv, p, { method: 'POST', form, headers });
const del = (p, headers = {}) => request(srv, p, { method: 'DELETE', headers });
const get = (p) => request(srv, p);

/** A service whose post-event webhooks go to path on the receiver. */
async function hookedService(name, path, settings = {}, filters = 'all') {
  const s = await post('/v2/Services', { FriendlyName: name });
  assert.equal(s.status, 201, s.text);
  const f = new URLSearchParams(Object.assign({ PostWebhookUrl: recv.url(path) }, settings));
  const all = ['onMessageSent', 'onMediaMessageSent', 'onMessageUpdated', 'onMessageRemoved',
    'onChannelAdded', 'onChannelUpdated', 'onChannelDestroyed'];
  for (const e of filters === 'all' ? all : filters) f.append('WebhookFilters', e);
  const u = await post(`/v2/Services/${s.json.sid}`, f.toString());
  assert.equal(u.status, 200, u.text);
  return u.json;
}

function checkSigned(r) {
  assert.ok(r.valid, `signature refused by validateRequest: ${r.method} ${r.url} ${r.body}`);
  assert.equal(r.validWrongToken, false, 'a wrong token must not validate');
  assert.match(r.headers['x-twilio-signature'], /^[A-Za-z0-9+/]{27}=$/);
}

function msgParams(event, svc, m, extra = {}) {
  return Object.assign({
    EventType: event, AccountSid: srv.accountSid, InstanceSid: svc, ChannelSid: m.channel_sid,
    MessageSid: m.sid, Index: String(m.index), From: m.from, Body: m.body, Attributes: m.attributes,
    DateCreated: iso(m.date_created), Source: 'API', RetryCount: '0',
  }, extra);
}

function chanParams(event, svc, c, extra = {}) {
  const p = {
    EventType: event, AccountSid: srv.accountSid, InstanceSid: svc, ChannelSid: c.sid,
    ChannelType: c.type, Attributes: c.attributes, CreatedBy: c.created_by,
    DateCreated: iso(c.date_created), Source: 'API', RetryCount: '0',
  };
  if (c.friendly_name !== null) p.FriendlyName = c.friendly_name;
  if (c.unique_name !== null) p.UniqueName = c.unique_name;
  return Object.assign(p, extra);
}

/** Checks the varying date of a delete, then compares all parameters. */
function sameParams(got, want, dateKey) {
  const g = Object.assign({}, got);
  if (dateKey) {
    assert.match(g[dateKey], DATE_MS, dateKey);
    assert.ok(Math.abs(Date.parse(g[dateKey]) - Date.now()) < 60000, `${dateKey} is now`);
    delete g[dateKey];
  }
  assert.deepEqual(g, want);
}

before(async () => {
  // The auth token signs; the receiver learns it from the test.
  srv = await startServer({ extraArgs: ['--webhook-queue', '1000'] });
  recv = await startReceiver(srv.authToken);
});

after(async () => {
  await recv.close();
  await srv.stop();
});

describe('events and parameters', () => {
  it('POST: every event of channels and messages, with every parameter', async () => {
    const s = await hookedService('events', '/ok/events?env=test');
    const IS = s.sid;
    const C = `/v2/Services/${IS}/Channels`;
    const ch = await post(C, { FriendlyName: 'Room ✓', UniqueName: 'room a', Attributes: '{"a": [1]}',
      CreatedBy: 'zoe' }, HOOK);
    assert.equal(ch.status, 201, ch.text);
    const CH = ch.json.sid;
    const chu = await post(`${C}/${CH}`, { FriendlyName: 'Renamed' }, HOOK);
    const M = `${C}/${CH}/Messages`;
    const m1 = await post(M, { Body: 'Hello, world! ünï & = + %', From: 'alice',
      Attributes: '{"k": "v"}' }, HOOK);
    const m1u = await post(`${M}/${m1.json.sid}`, { Body: 'edited', LastUpdatedBy: 'bob' }, HOOK);
    const m1v = await post(`${M}/${m1.json.sid}`, { Attributes: '[]' }, HOOK);
    const media = await request(srv, `/v1/Services/${IS}/Media?Filename=a.png`, { method: 'POST',
      body: Buffer.from('0123456789'), headers: { 'Content-Type': 'image/png' } });
    const mm = await post(M, { MediaSid: media.json.sid }, HOOK);
    const md = await del(`${M}/${m1.json.sid}`, HOOK);
    assert.equal(md.status, 204);
    // A message deleted right after its create: its onMessageSent still has it all.
    const gone = await post(M, { Body: 'short-lived' }, HOOK);
    assert.equal((await del(`${M}/${gone.json.sid}`)).status, 204);
    const cd = await del(`${C}/${CH}`, HOOK);
    assert.equal(cd.status, 204);
    await waitFor('9 webhooks', () => recv.of(IS).length >= 9);
    await sleep(200);
    const g = recv.of(IS);
    assert.equal(g.length, 9, g.map((r) => r.params.EventType).join());
    for (const r of g) {
      checkSigned(r);
      assert.equal(r.method, 'POST');
      assert.equal(r.path, '/ok/events');
      assert.equal(r.url, recv.url('/ok/events?env=test'));
      assert.match(r.headers['content-type'], /^application\/x-www-form-urlencoded/);
      assert.equal(r.concurrent, 1, 'one at a time per service');
    }
    const p = g.map((r) => r.params);
    sameParams(p[0], chanParams('onChannelAdded', IS, ch.json));
    sameParams(p[1], chanParams('onChannelUpdated', IS, chu.json,
      { DateUpdated: iso(chu.json.date_updated) }));
    sameParams(p[2], msgParams('onMessageSent', IS, m1.json));
    sameParams(p[3], msgParams('onMessageUpdated', IS, m1u.json,
      { ModifiedBy: 'bob', DateUpdated: iso(m1u.json.date_updated) }));
    // The update without LastUpdatedBy: ModifiedBy is system (the stored
    // last_updated_by is still bob's).
    assert.equal(m1v.json.last_updated_by, 'bob');
    sameParams(p[4], msgParams('onMessageUpdated', IS, m1v.json,
      { ModifiedBy: 'system', DateUpdated: iso(m1v.json.date_updated) }));
    sameParams(p[5], msgParams('onMediaMessageSent', IS, mm.json, { MediaSid: media.json.sid,
      MediaContentType: 'image/png', MediaFilename: 'a.png', MediaSize: '10' }));
    assert.equal(p[5].Body, '');
    sameParams(p[6], msgParams('onMessageRemoved', IS, m1v.json, { RemovedBy: 'system' }),
      'DateRemoved');
    sameParams(p[7], msgParams('onMessageSent', IS, gone.json));
    // Deleting the channel: onChannelDestroyed only, not one per message.
    sameParams(p[8], chanParams('onChannelDestroyed', IS, chu.json), 'DateDestroyed');
  });

  it('GET: the parameters in the query string after the URL\'s own, no body, the URL signed', async () => {
    const s = await hookedService('get', '/ok/get?env=test&x=1', { WebhookMethod: 'GET' });
    const IS = s.sid;
    const ch = await post(`/v2/Services/${IS}/Channels`, {}, HOOK);
    const m = await post(`/v2/Services/${IS}/Channels/${ch.json.sid}/Messages`,
      { Body: 'a b&c=d/é', From: 'x y' }, HOOK);
    await waitFor('2 webhooks', () => recv.of(IS).length >= 2);
    const g = recv.of(IS);
    for (const r of g) {
      checkSigned(r);
      assert.equal(r.method, 'GET');
      assert.equal(r.body, '');
      assert.ok(r.url.startsWith(recv.url('/ok/get?env=test&x=1&')), r.url);
      assert.equal(r.params.env, 'test');
      delete r.params.env;
      delete r.params.x;
    }
    sameParams(g[0].params, chanParams('onChannelAdded', IS, ch.json));
    sameParams(g[1].params, msgParams('onMessageSent', IS, m.json));
    // A URL without a query gets one.
    const s2 = await hookedService('get 2', '/ok/get2', { WebhookMethod: 'GET' });
    await post(`/v2/Services/${s2.sid}/Channels`, {}, HOOK);
    await waitFor('1 webhook', () => recv.of(s2.sid).length >= 1);
    assert.ok(recv.of(s2.sid)[0].url.startsWith(recv.url('/ok/get2?EventType=onChannelAdded&')));
    checkSigned(recv.of(s2.sid)[0]);
  });
});

describe('when webhooks fire', () => {
  // A marker event that does fire, after the ones that must not: deliveries
  // of one service come in commit order, so anything fired before it would
  // have arrived first.
  let markers = 0;
  async function marker(IS, filtersToo) {
    const name = `marker ${++markers}`;
    if (filtersToo) {
      const u = await post(`/v2/Services/${IS}`, 'WebhookFilters=onChannelAdded');
      assert.equal(u.status, 200, u.text);
    }
    const ch = await post(`/v2/Services/${IS}/Channels`, { UniqueName: name }, HOOK);
    assert.equal(ch.status, 201, ch.text);
    await waitFor('the marker', () => recv.of(IS).some((r) => r.params.UniqueName === name));
    return recv.of(IS).filter((r) => !/^marker /.test(r.params.UniqueName || ''));
  }

  it('filters: null and empty fire nothing; a subset fires only its events', async () => {
    const nul = await hookedService('null filters', '/ok/f', {}, []);
    assert.equal(nul.webhook_filters, null);
    await post(`/v2/Services/${nul.sid}/Channels`, {}, HOOK);
    assert.deepEqual(await marker(nul.sid, true), []);
    const empty = await hookedService('empty filters', '/ok/f', {}, ['onChannelAdded']);
    assert.equal((await post(`/v2/Services/${empty.sid}`, 'WebhookFilters=')).json.webhook_filters, null);
    await post(`/v2/Services/${empty.sid}/Channels`, {}, HOOK);
    assert.deepEqual(await marker(empty.sid, true), []);
    const sub = await hookedService('subset', '/ok/f', {}, ['onMessageUpdated', 'onChannelAdded']);
    const ch = await post(`/v2/Services/${sub.sid}/Channels`, { UniqueName: 'c' });
    const M = `/v2/Services/${sub.sid}/Channels/c/Messages`;
    const m = await post(M, { Body: 'x' }, HOOK); // onMessageSent: not in the filters
    await post(`${M}/${m.json.sid}`, { Body: 'y' }, HOOK); // fires
    await del(`${M}/${m.json.sid}`, HOOK); // onMessageRemoved: not in the filters
    await del(`/v2/Services/${sub.sid}/Channels/${ch.json.sid}`, HOOK);
    const got = await marker(sub.sid, false);
    assert.deepEqual(got.map((r) => r.params.EventType), ['onMessageUpdated']);
    // Pre-event names in the filters never fire for REST calls.
    const pre = await hookedService('pre', '/ok/f', {}, ['onMessageSend', 'onChannelAdd']);
    await post(`/v2/Services/${pre.sid}/Channels`, {}, HOOK);
    assert.deepEqual(await marker(pre.sid, true), []);
  });

  it('the header: absent and false fire nothing, true in any case fires, a bad value is 400 and nothing', async () => {
    const s = await hookedService('header', '/ok/h', {}, ['onChannelAdded', 'onMessageSent']);
    const IS = s.sid;
    await post(`/v2/Services/${IS}/Channels`, { UniqueName: 'none' });
    await post(`/v2/Services/${IS}/Channels`, { UniqueName: 'false' }, { 'X-Twilio-Webhook-Enabled': 'false' });
    const bad = await post(`/v2/Services/${IS}/Channels`, { UniqueName: 'bad' },
      { 'X-Twilio-Webhook-Enabled': 'yes' });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.code, 20001);
    const up = await post(`/v2/Services/${IS}/Channels/none/Messages`, { Body: 'up' },
      { 'X-Twilio-Webhook-Enabled': 'TrUe' });
    assert.equal(up.status, 201);
    // A failed call fires nothing: a message too long.
    const big = await post(`/v2/Services/${IS}/Channels/none/Messages`, { Body: 'x'.repeat(40000) }, HOOK);
    assert.equal(big.status, 400);
    const got = await marker(IS, false);
    assert.deepEqual(got.map((r) => [r.params.EventType, r.params.Body]), [['onMessageSent', 'up']]);
    // No post_webhook_url: nothing, whatever the filters.
    const u = await post(`/v2/Services/${IS}`, 'PostWebhookUrl=');
    assert.equal(u.json.post_webhook_url, null);
    await post(`/v2/Services/${IS}/Channels`, { UniqueName: 'no url' }, HOOK);
    await post(`/v2/Services/${IS}`, { PostWebhookUrl: recv.url('/ok/h') });
    const after = await marker(IS, false);
    assert.ok(!after.some((r) => r.params.UniqueName === 'no url'));
  });
});

describe('order, retries, timeouts', () => {
  it('per service in commit order, one at a time, under concurrent creates on several channels', async () => {
    const s = await hookedService('order', '/ok/order', {}, ['onMessageSent']);
    const IS = s.sid;
    const chans = [];
    for (let i = 0; i < 4; i++) chans.push((await post(`/v2/Services/${IS}/Channels`, {})).json.sid);
    const N = 25;
    const made = await Promise.all(chans.flatMap((c) => Array.from({ length: N },
      (_, k) => post(`/v2/Services/${IS}/Channels/${c}/Messages`, { Body: `m${k}` }, HOOK))));
    for (const r of made) assert.equal(r.status, 201, r.text);
    await waitFor(`${4 * N} webhooks`, () => recv.of(IS).length >= 4 * N, 20000);
    const g = recv.of(IS);
    assert.equal(g.length, 4 * N);
    const seen = new Map(chans.map((c) => [c, []]));
    for (const r of g) {
      checkSigned(r);
      assert.equal(r.concurrent, 1, 'one delivery of a service at a time');
      seen.get(r.params.ChannelSid).push(Number(r.params.Index));
    }
    // Each channel's indices arrive in commit order: 0, 1, ..., N-1.
    for (const [c, idx] of seen) assert.deepEqual(idx, Array.from({ length: N }, (_, k) => k), c);
    // And every REST answer matches the webhook of its message.
    const bySid = new Map(g.map((r) => [r.params.MessageSid, r.params]));
    for (const r of made) assert.equal(bySid.get(r.json.sid).Body, r.json.body);
  });

  it('503 twice then 200: three attempts, RetryCount 0, 1, 2, after 1 s and 2 s', async () => {
    const s = await hookedService('retry', '/flaky/r1', { PostWebhookRetryCount: '2' }, ['onChannelAdded']);
    const t0 = Date.now();
    const ch = await post(`/v2/Services/${s.sid}/Channels`, {}, HOOK);
    assert.ok(Date.now() - t0 < 1000, 'the REST reply does not wait');
    await waitFor('3 attempts', () => recv.of(s.sid).length >= 3, 10000);
    await sleep(300);
    const g = recv.of(s.sid);
    assert.equal(g.length, 3);
    assert.deepEqual(g.map((r) => r.params.RetryCount), ['0', '1', '2']);
    for (const r of g) {
      checkSigned(r);
      assert.equal(r.params.ChannelSid, ch.json.sid);
    }
    const gap1 = g[1].at - g[0].at;
    const gap2 = g[2].at - g[1].at;
    assert.ok(gap1 >= 900 && gap1 < 1900, `first retry after ${gap1} ms`);
    assert.ok(gap2 >= 1900 && gap2 < 3500, `second retry after ${gap2} ms`);
    // Retries stop at the count: 503 twice with PostWebhookRetryCount 1.
    const s1 = await hookedService('retry 1', '/flaky/r2', { PostWebhookRetryCount: '1' }, ['onChannelAdded']);
    await post(`/v2/Services/${s1.sid}/Channels`, {}, HOOK);
    await waitFor('2 attempts', () => recv.of(s1.sid).length >= 2, 10000);
    await post(`/v2/Services/${s1.sid}/Channels`, { UniqueName: 'next' }, HOOK); // the flaky id answers 200 now
    await waitFor('the next one', () => recv.of(s1.sid).length >= 3, 10000);
    assert.deepEqual(recv.of(s1.sid).map((r) => r.params.RetryCount), ['0', '1', '0']);
    assert.match(srv.output().stderr, new RegExp(`webhook onChannelAdded ${s1.sid} POST \\S+ -> 503 attempts 2 `));
  });

  it('500 and 404 are not retried; 429 and 504 are', async () => {
    for (const [code, attempts] of [[500, 1], [404, 1], [429, 2], [504, 2]]) {
      const s = await hookedService(`status ${code}`, `/status/${code}`, { PostWebhookRetryCount: '1' },
        ['onChannelAdded']);
      await post(`/v2/Services/${s.sid}/Channels`, {}, HOOK);
      await waitFor(`${attempts} attempts`, () => recv.of(s.sid).length >= attempts, 5000);
      await sleep(attempts === 1 ? 1500 : 300); // a retry would come after 1 s
      assert.equal(recv.of(s.sid).length, attempts, `status ${code}`);
      assert.match(srv.output().stderr,
        new RegExp(`webhook onChannelAdded ${s.sid} POST \\S+ -> ${code} attempts ${attempts} `));
    }
  });

  it('a receiver that answers after 5 s: the attempt fails at 5 s, the next delivery follows', async () => {
    const s = await hookedService('slow', '/sleep/6500', {}, ['onChannelAdded']);
    const t0 = Date.now();
    await post(`/v2/Services/${s.sid}/Channels`, { UniqueName: 'slow' }, HOOK);
    const ch2 = await post(`/v2/Services/${s.sid}/Channels`, { UniqueName: 'after' }, HOOK);
    assert.equal(ch2.status, 201);
    assert.ok(Date.now() - t0 < 1000, 'REST replies do not wait for the receiver');
    await waitFor('the second delivery', () => recv.of(s.sid).length >= 2, 9000);
    const g = recv.of(s.sid);
    assert.deepEqual(g.map((r) => r.params.UniqueName), ['slow', 'after']);
    const gap = g[1].at - g[0].at;
    assert.ok(gap >= 4800 && gap < 6400, `the next delivery ${gap} ms after the first`);
    await waitFor('the log line', () => new RegExp(`webhook onChannelAdded ${s.sid} POST \\S+ -> error \\(`)
      .test(srv.output().stderr), 3000);
  });

  it('a receiver that is down: connection refused, retried, logged; the API answers', async () => {
    const dead = http.createServer();
    await new Promise((r) => dead.listen(0, '127.0.0.1', r));
    const port = dead.address().port;
    await new Promise((r) => dead.close(r));
    const s = await post('/v2/Services', { FriendlyName: 'down' });
    const IS = s.json.sid;
    await post(`/v2/Services/${IS}`, `PostWebhookUrl=http%3A%2F%2F127.0.0.1%3A${port}%2Fhook` +
      '&WebhookFilters=onChannelAdded&PostWebhookRetryCount=1');
    const t0 = Date.now();
    for (let i = 0; i < 5; i++) assert.equal((await post(`/v2/Services/${IS}/Channels`, {}, HOOK)).status, 201);
    assert.ok(Date.now() - t0 < 1000, 'REST replies do not wait');
    await waitFor('5 failed deliveries in the log', () => (srv.output().stderr.match(
      new RegExp(`webhook onChannelAdded ${IS} POST http://127\\.0\\.0\\.1:${port}/hook -> error \\([^)]*\\) attempts 2 `, 'g'))
      || []).length === 5, 15000);
  });
});

describe('the twilio client making the REST calls', () => {
  it('xTwilioWebhookEnabled: \'true\' fires the same webhooks; settings through services().update()', async () => {
    class Local extends twilio.RequestClient {
      request(opts) {
        const u = new URL(opts.uri);
        return super.request(Object.assign({}, opts, { uri: srv.origin + u.pathname + u.search }));
      }
    }
    const client = twilio(srv.accountSid, srv.authToken, { httpClient: new Local() });
    const chat = client.chat.v2;
    const svc = await chat.services.create({ friendlyName: 'client' });
    const upd = await chat.services(svc.sid).update({
      postWebhookUrl: recv.url('/ok/client'), webhookMethod: 'POST', postWebhookRetryCount: 1,
      webhookFilters: ['onMessageSent', 'onMessageUpdated', 'onMessageRemoved', 'onChannelAdded',
        'onChannelUpdated', 'onChannelDestroyed'],
    });
    assert.equal(upd.postWebhookUrl, recv.url('/ok/client'));
    assert.deepEqual(upd.webhookFilters, ['onMessageSent', 'onMessageUpdated', 'onMessageRemoved',
      'onChannelAdded', 'onChannelUpdated', 'onChannelDestroyed']);
    assert.equal(upd.postWebhookRetryCount, 1);
    const T = { xTwilioWebhookEnabled: 'true' };
    const ch = await chat.services(svc.sid).channels.create(Object.assign({ uniqueName: 'cl' }, T));
    await chat.services(svc.sid).channels(ch.sid).update(Object.assign({ friendlyName: 'Cl' }, T));
    const m = await chat.services(svc.sid).channels('cl').messages.create(Object.assign({ body: 'hi', from: 'ann' }, T));
    await chat.services(svc.sid).channels('cl').messages(m.sid).update(Object.assign({ body: 'ho', lastUpdatedBy: 'ann' }, T));
    await chat.services(svc.sid).channels('cl').messages(m.sid).remove(T);
    await chat.services(svc.sid).channels(ch.sid).remove(T);
    // Without the header: nothing.
    await chat.services(svc.sid).channels.create({ uniqueName: 'quiet' });
    const marker = await chat.services(svc.sid).channels.create(Object.assign({ uniqueName: 'end' }, T));
    await waitFor('the marker', () => recv.of(svc.sid).some((r) => r.params.ChannelSid === marker.sid));
    const g = recv.of(svc.sid);
    for (const r of g) checkSigned(r);
    assert.deepEqual(g.map((r) => r.params.EventType), ['onChannelAdded', 'onChannelUpdated', 'onMessageSent',
      'onMessageUpdated', 'onMessageRemoved', 'onChannelDestroyed', 'onChannelAdded']);
    assert.equal(g[2].params.MessageSid, m.sid);
    assert.equal(g[2].params.From, 'ann');
    assert.equal(g[3].params.ModifiedBy, 'ann');
    assert.equal(g[3].params.Body, 'ho');
  });
});

describe('the bounded queue', () => {
  it('a stalled receiver: the oldest pending deliveries are dropped and counted; the API does not slow', async () => {
    const small = await startServer({ extraArgs: ['--webhook-queue', '3'] });
    try {
      const p2 = (p, form, headers = {}) => request(small, p, { method: 'POST', form, headers });
      const s = await p2('/v2/Services', { FriendlyName: 'bounded' });
      const IS = s.json.sid;
      await p2(`/v2/Services/${IS}`, `PostWebhookUrl=${encodeURIComponent(recv.url('/hold/q'))}&WebhookFilters=onMessageSent`);
      await p2(`/v2/Services/${IS}/Channels`, { UniqueName: 'q' });
      const times = [];
      for (let i = 0; i < 10; i++) {
        const t = Date.now();
        const r = await p2(`/v2/Services/${IS}/Channels/q/Messages`, { Body: `m${i}` }, HOOK);
        times.push(Date.now() - t);
        assert.equal(r.status, 201);
        if (i === 0) await waitFor('the first delivery held', () => recv.of(IS).length === 1);
      }
      assert.ok(Math.max(...times) < 500, `REST latencies ${times}`);
      // One held, three pending (the newest), six dropped (the oldest pending).
      await waitFor('6 drop lines', () => (small.output().stderr.match(/-> dropped \(queue full\)/g) || []).length === 6);
      recv.release();
      await waitFor('4 deliveries', () => recv.of(IS).length >= 4);
      await sleep(200);
      assert.deepEqual(recv.of(IS).map((r) => r.params.Body), ['m0', 'm7', 'm8', 'm9']);
    } finally {
      await small.stop();
    }
    assert.match(small.output().stderr, /webhooks: 10 queued, 4 delivered, 0 failed, 6 dropped, 4 attempts/);
  });
});

describe('--demo WEBHOOK_URL', () => {
  it('configures the demo service with the URL and every event, and says so', async () => {
    const d = await startServer({ extraArgs: ['--demo', recv.url('/ok/demo')] });
    try {
      const out = d.output().stdout;
      const m = /demo service (IS[0-9a-f]{32}), channel (CH[0-9a-f]{32})/.exec(out);
      assert.ok(m, out);
      assert.match(out, new RegExp(`demo webhooks: every event of the demo service goes to ${recv.url('/ok/demo').replace(/[.?]/g, '\\$&')}`));
      assert.match(out, /X-Twilio-Webhook-Enabled: true/);
      const svc = await request(d, `/v2/Services/${m[1]}`);
      assert.equal(svc.json.post_webhook_url, recv.url('/ok/demo'));
      assert.equal(svc.json.webhook_filters.length, 23);
      const r = await request(d, `/v2/Services/${m[1]}/Channels/general/Messages`,
        { method: 'POST', form: { Body: 'demo' }, headers: HOOK });
      assert.equal(r.status, 201);
      await waitFor('the demo webhook', () => recv.of(m[1]).length >= 1);
      const w = recv.of(m[1])[0];
      assert.ok(twilio.validateRequest(d.authToken, w.headers['x-twilio-signature'], w.url, w.params));
      assert.equal(w.params.EventType, 'onMessageSent');
    } finally {
      await d.stop();
    }
    // A bad URL is refused at start.
    await assert.rejects(startServer({ extraArgs: ['--demo', 'ftp://x'] }), /exited early/);
  });
});
