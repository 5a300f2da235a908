'use strict';
// The real twilio npm client (v6) against chatstore-server, through every
// operation of Services, Channels and Messages, paging, errors and media.
// A custom httpClient rewrites the absolute https://chat.twilio.com URIs
// (first requests and followed page URLs) to the local server (reference §10).

// Keep the client's host rewriting and proxies out of the way.
for (const v of ['TWILIO_EDGE', 'TWILIO_REGION', 'HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY',
  'https_proxy', 'ALL_PROXY', 'all_proxy']) delete process.env[v];

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, request, BASE, assertError } = require('./server');
const twilio = require('twilio');

class LocalRequestClient extends twilio.RequestClient {
  constructor(origin, log) {
    super();
    this.origin = origin;
    this.log = log;
  }

  request(opts) {
    const u = new URL(opts.uri); // percent-encodes what the path needs
    const local = this.origin + u.pathname + u.search;
    this.log.push({ method: opts.method, uri: opts.uri, local, headers: opts.headers,
      data: opts.data, params: opts.params });
    return super.request(Object.assign({}, opts, { uri: local }));
  }
}

const HEX32 = /^[0-9a-f]{32}$/;
const sidRe = (p) => new RegExp(`^${p}[0-9a-f]{32}$`);

let srv;
let log;
let client;
let chat;

/** Asserts the promise rejects with a RestException of that status and code. */
async function rejectsRest(promise, status, code, what) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof twilio.RestException, `${what}: not a RestException: ${e && e.stack}`);
    assert.equal(e.status, status, `${what}: ${e.message}`);
    assert.equal(e.code, code, `${what}: ${e.message}`);
    assert.equal(e.moreInfo, `https://www.twilio.com/docs/errors/${code}`, what);
    assert.equal(typeof e.message, 'string');
    return true;
  }, what);
}

/** Uploads bytes to the media endpoint with fetch(). */
async function upload(serviceSid, bytes, contentType, filename) {
  const q = filename === undefined ? '' : `?Filename=${encodeURIComponent(filename)}`;
  return fetch(`${srv.origin}/v1/Services/${serviceSid}/Media${q}`, {
    method: 'POST',
    headers: { Authorization: srv.auth, 'Content-Type': contentType },
    body: bytes,
  });
}

before(async () => {
  srv = await startServer();
  log = [];
  client = twilio(srv.accountSid, srv.authToken, { httpClient: new LocalRequestClient(srv.origin, log) });
  chat = client.chat.v2;
});

after(async () => {
  await srv.stop();
});

describe('services', () => {
  let svc;

  it('create returns a full service', async () => {
    svc = await chat.services.create({ friendlyName: 'client svc' });
    assert.match(svc.sid, sidRe('IS'));
    assert.equal(svc.accountSid, srv.accountSid);
    assert.equal(svc.friendlyName, 'client svc');
    assert.ok(svc.dateCreated instanceof Date && !Number.isNaN(svc.dateCreated.getTime()));
    assert.equal(svc.dateUpdated.getTime(), svc.dateCreated.getTime());
    assert.match(svc.defaultServiceRoleSid, sidRe('RL'));
    assert.match(svc.defaultChannelRoleSid, sidRe('RL'));
    assert.match(svc.defaultChannelCreatorRoleSid, sidRe('RL'));
    assert.equal(svc.readStatusEnabled, true);
    assert.equal(svc.reachabilityEnabled, false);
    assert.equal(svc.typingIndicatorTimeout, 5);
    assert.deepEqual(svc.limits, { user_channels: 250, channel_members: 100 });
    assert.deepEqual(svc.media, {
      compatibility_message: 'Media messages are not supported by your client', size_limit_mb: 150,
    });
    assert.equal(svc.url, `${BASE}/v2/Services/${svc.sid}`);
    assert.deepEqual(svc.links, {
      channels: `${svc.url}/Channels`, users: `${svc.url}/Users`, roles: `${svc.url}/Roles`,
      bindings: `${svc.url}/Bindings`,
    });
    const last = log[log.length - 1];
    assert.equal(last.method, 'post');
    assert.equal(last.uri, `${BASE}/v2/Services`);
  });

  it('fetch returns the same service', async () => {
    const f = await chat.services(svc.sid).fetch();
    assert.deepEqual(f.toJSON(), svc.toJSON());
  });

  it('fetch accepts an upper-case SID', async () => {
    const up = 'IS' + svc.sid.slice(2).toUpperCase();
    const f = await chat.services(up).fetch();
    assert.equal(f.sid, svc.sid);
  });

  it('list returns services in creation order, across pages', async () => {
    const more = [];
    for (let i = 0; i < 4; i++) more.push(await chat.services.create({ friendlyName: `list ${i}` }));
    const all = await chat.services.list();
    const sids = all.map((s) => s.sid);
    const mine = [svc.sid, ...more.map((s) => s.sid)];
    assert.deepEqual(sids.filter((s) => mine.includes(s)), mine);
    const paged = await chat.services.list({ pageSize: 2 });
    assert.deepEqual(paged.map((s) => s.sid), sids);
    const limited = await chat.services.list({ limit: 3 });
    assert.deepEqual(limited.map((s) => s.sid), sids.slice(0, 3));
    for (const s of more) assert.equal(await chat.services(s.sid).remove(), true);
  });

  it('update changes the friendly name', async () => {
    const u = await chat.services(svc.sid).update({ friendlyName: 'renamed ✓' });
    assert.equal(u.sid, svc.sid);
    assert.equal(u.friendlyName, 'renamed ✓');
    assert.ok(u.dateUpdated.getTime() >= svc.dateCreated.getTime());
    assert.equal((await chat.services(svc.sid).fetch()).friendlyName, 'renamed ✓');
  });

  it('remove deletes the service and everything under it', async () => {
    const ch = await chat.services(svc.sid).channels.create({ uniqueName: 'doomed' });
    const m = await chat.services(svc.sid).channels(ch.sid).messages.create({ body: 'x' });
    assert.equal(await chat.services(svc.sid).remove(), true);
    await rejectsRest(chat.services(svc.sid).fetch(), 404, 20404, 'fetch removed service');
    await rejectsRest(chat.services(svc.sid).channels('doomed').fetch(), 404, 20404, 'channel');
    await rejectsRest(chat.services(svc.sid).channels(ch.sid).messages(m.sid).fetch(), 404,
      20404, 'message');
    await rejectsRest(chat.services(svc.sid).remove(), 404, 20404, 'remove twice');
    const all = await chat.services.list();
    assert.ok(!all.some((s) => s.sid === svc.sid));
  });
});

describe('channels', () => {
  let svc;
  let priv;
  let pub;
  let odd;
  const ODD_NAME = 'salle de réunion ☕ 2';

  before(async () => {
    svc = await chat.services.create({ friendlyName: 'channels' });
  });

  it('create private with uniqueName, friendlyName, attributes', async () => {
    const attrs = JSON.stringify({ topic: 'ops', n: [1, 2.5e3], nested: { ok: true } });
    priv = await chat.services(svc.sid).channels.create({
      uniqueName: 'ops-room', friendlyName: 'Ops room', type: 'private', attributes: attrs,
      xTwilioWebhookEnabled: 'true',
    });
    assert.match(priv.sid, sidRe('CH'));
    assert.equal(priv.accountSid, srv.accountSid);
    assert.equal(priv.serviceSid, svc.sid);
    assert.equal(priv.uniqueName, 'ops-room');
    assert.equal(priv.friendlyName, 'Ops room');
    assert.equal(priv.type, 'private');
    assert.equal(priv.attributes, attrs);
    assert.equal(priv.createdBy, 'system');
    assert.equal(priv.membersCount, 0);
    assert.equal(priv.messagesCount, 0);
    assert.equal(priv.url, `${BASE}/v2/Services/${svc.sid}/Channels/${priv.sid}`);
    assert.deepEqual(priv.links, {
      members: `${priv.url}/Members`, messages: `${priv.url}/Messages`,
      invites: `${priv.url}/Invites`, webhooks: `${priv.url}/Webhooks`, last_message: null,
    });
    assert.equal(log[log.length - 1].headers['X-Twilio-Webhook-Enabled'], 'true');
  });

  it('create public (the default type) with defaults', async () => {
    pub = await chat.services(svc.sid).channels.create({ friendlyName: 'Lobby' });
    assert.equal(pub.type, 'public');
    assert.equal(pub.uniqueName, null);
    assert.equal(pub.attributes, '{}');
    const pub2 = await chat.services(svc.sid).channels.create({ type: 'public', uniqueName: 'pub-2',
      createdBy: 'alice', dateCreated: new Date(Date.UTC(2019, 5, 1, 12, 0, 0)) });
    assert.equal(pub2.type, 'public');
    assert.equal(pub2.createdBy, 'alice');
    assert.equal(pub2.dateCreated.toISOString(), '2019-06-01T12:00:00.000Z');
    assert.equal(pub2.dateUpdated.toISOString(), '2019-06-01T12:00:00.000Z');
  });

  it('fetch by SID and by unique name', async () => {
    const a = await chat.services(svc.sid).channels(priv.sid).fetch();
    const b = await chat.services(svc.sid).channels('ops-room').fetch();
    assert.deepEqual(a.toJSON(), priv.toJSON());
    assert.deepEqual(b.toJSON(), priv.toJSON());
    assert.equal(b.url, priv.url); // always the SID, never the unique name
  });

  it('unique name with a space and non-ASCII characters', async () => {
    odd = await chat.services(svc.sid).channels.create({ uniqueName: ODD_NAME, type: 'private' });
    assert.equal(odd.uniqueName, ODD_NAME);
    const f = await chat.services(svc.sid).channels(ODD_NAME).fetch();
    assert.equal(f.sid, odd.sid);
    const req = log[log.length - 1];
    // The client (or Node's URL) percent-encodes the name; the server decodes the segment.
    assert.equal(decodeURI(req.uri), `${BASE}/v2/Services/${svc.sid}/Channels/${ODD_NAME}`);
    assert.ok(req.local.endsWith(`/Channels/${encodeURI(ODD_NAME)}`), req.local);
    assert.ok(req.local.includes('%20') && req.local.includes('%C3%A9') &&
      req.local.includes('%E2%98%95'), req.local);
    const m = await chat.services(svc.sid).channels(ODD_NAME).messages.create({ body: 'café' });
    assert.equal(m.channelSid, odd.sid);
    assert.equal(m.to, odd.sid);
    assert.equal(m.url, `${odd.url}/Messages/${m.sid}`);
    const list = await chat.services(svc.sid).channels(ODD_NAME).messages.list();
    assert.deepEqual(list.map((x) => x.sid), [m.sid]);
    // Similar names do not match: matching is byte-exact.
    await rejectsRest(chat.services(svc.sid).channels(ODD_NAME.toUpperCase()).fetch(), 404, 20404,
      'upper-cased unique name');
    await rejectsRest(chat.services(svc.sid).channels(ODD_NAME.normalize('NFD')).fetch(), 404,
      20404, 'NFD unique name');
  });

  it('list without type gives public channels only, in creation order', async () => {
    const l = await chat.services(svc.sid).channels.list();
    assert.ok(l.length >= 2);
    assert.ok(l.every((c) => c.type === 'public'), JSON.stringify(l.map((c) => c.type)));
    assert.equal(l[0].sid, pub.sid);
    assert.ok(!l.some((c) => c.sid === priv.sid || c.sid === odd.sid));
  });

  it('list with a type filter (one and both)', async () => {
    const p = await chat.services(svc.sid).channels.list({ type: 'private' });
    assert.deepEqual(p.map((c) => c.sid), [priv.sid, odd.sid]);
    const both = await chat.services(svc.sid).channels.list({ type: ['public', 'private'] });
    const all = (await chat.services(svc.sid).channels.list({ type: ['private', 'public'] }));
    assert.equal(both.length, 4);
    assert.deepEqual(both.map((c) => c.sid), all.map((c) => c.sid));
    assert.deepEqual(both.map((c) => c.sid).filter((s) => s === priv.sid || s === pub.sid),
      [priv.sid, pub.sid]); // creation order
    const paged = await chat.services(svc.sid).channels.list({ type: ['public', 'private'], pageSize: 1 });
    assert.deepEqual(paged.map((c) => c.sid), both.map((c) => c.sid));
    const q = log[log.length - 1].local;
    assert.ok(q.includes('Type=public&Type=private&PageSize=1&Page=') , q);
  });

  it('update names, attributes and dates; type stays', async () => {
    const u = await chat.services(svc.sid).channels('ops-room').update({
      friendlyName: 'Ops (renamed)', uniqueName: 'ops-2', attributes: '{"v":2}',
      dateUpdated: new Date(Date.UTC(2030, 0, 1)), xTwilioWebhookEnabled: 'false',
    });
    assert.equal(u.sid, priv.sid);
    assert.equal(u.friendlyName, 'Ops (renamed)');
    assert.equal(u.uniqueName, 'ops-2');
    assert.equal(u.attributes, '{"v":2}');
    assert.equal(u.type, 'private');
    assert.equal(u.dateUpdated.toISOString(), '2030-01-01T00:00:00.000Z');
    assert.equal(u.dateCreated.getTime(), priv.dateCreated.getTime());
    await rejectsRest(chat.services(svc.sid).channels('ops-room').fetch(), 404, 20404, 'old name');
    assert.equal((await chat.services(svc.sid).channels('ops-2').fetch()).sid, priv.sid);
    // Nothing given: unchanged.
    const same = await chat.services(svc.sid).channels(priv.sid).update({});
    assert.deepEqual(same.toJSON(), u.toJSON());
  });

  it('duplicate unique name: 409 / 50307, and nothing changes', async () => {
    await rejectsRest(chat.services(svc.sid).channels.create({ uniqueName: 'ops-2' }), 409, 50307,
      'create duplicate');
    await rejectsRest(chat.services(svc.sid).channels(pub.sid).update({ uniqueName: 'ops-2' }), 409,
      50307, 'rename onto an existing name');
    assert.equal((await chat.services(svc.sid).channels(pub.sid).fetch()).uniqueName, null);
    const all = await chat.services(svc.sid).channels.list({ type: ['public', 'private'] });
    assert.equal(all.length, 4);
  });

  it('unique name that looks like a channel SID: 400 / 50306', async () => {
    await rejectsRest(chat.services(svc.sid).channels.create({ uniqueName: 'CH' + 'a'.repeat(32) }),
      400, 50306, 'SID-like unique name');
  });

  it('remove by unique name and by SID', async () => {
    const m = await chat.services(svc.sid).channels('ops-2').messages.create({ body: 'bye' });
    assert.equal(await chat.services(svc.sid).channels('ops-2').remove(), true);
    await rejectsRest(chat.services(svc.sid).channels(priv.sid).fetch(), 404, 20404, 'removed');
    await rejectsRest(chat.services(svc.sid).channels(priv.sid).messages(m.sid).fetch(), 404,
      20404, 'message of a removed channel');
    await rejectsRest(chat.services(svc.sid).channels(priv.sid).messages.list(), 404, 20404,
      'list of a removed channel');
    assert.equal(await chat.services(svc.sid).channels(pub.sid).remove(), true);
    await rejectsRest(chat.services(svc.sid).channels(pub.sid).remove(), 404, 20404, 'twice');
    // The name is free again.
    const again = await chat.services(svc.sid).channels.create({ uniqueName: 'ops-2' });
    assert.notEqual(again.sid, priv.sid);
  });
});

describe('messages', () => {
  let svc;
  let ch;
  let first;

  before(async () => {
    svc = await chat.services.create({ friendlyName: 'messages' });
    ch = await chat.services(svc.sid).channels.create({ uniqueName: 'general', type: 'public' });
  });

  it('create with every parameter', async () => {
    const attrs = JSON.stringify({ importance: 'high', list: [1, null, 'x'], s: 'ü "q"' });
    const when = new Date(Date.UTC(2020, 0, 2, 3, 4, 5, 678));
    first = await chat.services(svc.sid).channels('general').messages.create({
      body: 'Hello, world! 👋', from: 'alice', attributes: attrs, dateCreated: when,
      lastUpdatedBy: 'bob', xTwilioWebhookEnabled: 'true',
    });
    const req = log[log.length - 1];
    assert.equal(req.headers['X-Twilio-Webhook-Enabled'], 'true');
    assert.equal(req.data.DateCreated, '2020-01-02T03:04:05Z');
    assert.match(first.sid, sidRe('IM'));
    assert.equal(first.accountSid, srv.accountSid);
    assert.equal(first.serviceSid, svc.sid);
    assert.equal(first.channelSid, ch.sid); // the SID, though addressed by unique name
    assert.equal(first.to, ch.sid);
    assert.equal(first.attributes, attrs);
    assert.equal(first.dateCreated.toISOString(), '2020-01-02T03:04:05.000Z');
    assert.equal(first.dateUpdated.toISOString(), '2020-01-02T03:04:05.000Z');
    assert.equal(first.lastUpdatedBy, 'bob');
    assert.equal(first.wasEdited, false);
    assert.equal(first.from, 'alice');
    assert.equal(first.body, 'Hello, world! 👋');
    assert.equal(first.index, 0);
    assert.equal(first.type, 'text');
    assert.equal(first.media, null);
    assert.equal(first.url, `${BASE}/v2/Services/${svc.sid}/Channels/${ch.sid}/Messages/${first.sid}`);
  });

  it('create with defaults', async () => {
    const m = await chat.services(svc.sid).channels(ch.sid).messages.create({ body: 'plain' });
    assert.equal(m.from, 'system');
    assert.equal(m.attributes, '{}');
    assert.equal(m.lastUpdatedBy, null);
    assert.equal(m.wasEdited, false);
    assert.equal(m.index, 1);
    assert.equal(m.type, 'text');
    assert.equal(m.dateUpdated.getTime(), m.dateCreated.getTime());
    assert.ok(Math.abs(m.dateCreated.getTime() - Date.now()) < 120000, m.dateCreated.toISOString());
    const empty = await chat.services(svc.sid).channels(ch.sid).messages.create({});
    assert.equal(empty.body, '');
    assert.equal(empty.index, 2);
    const emptyStr = await chat.services(svc.sid).channels(ch.sid).messages.create({ body: '' });
    assert.equal(emptyStr.body, '');
  });

  it('body is returned verbatim (escapes, controls, astral, no normalisation)', async () => {
    const body = 'q"uo\\te\n\t\r\u0001\u001f\u007f é vs e\u0301 \u2028 \uD83D\uDE00 </script>';
    const m = await chat.services(svc.sid).channels(ch.sid).messages.create({ body });
    assert.equal(m.body, body);
    assert.equal((await chat.services(svc.sid).channels(ch.sid).messages(m.sid).fetch()).body, body);
  });

  it('fetch returns what create returned', async () => {
    const f = await chat.services(svc.sid).channels(ch.sid).messages(first.sid).fetch();
    assert.deepEqual(f.toJSON(), first.toJSON());
    const g = await chat.services(svc.sid).channels('general').messages(first.sid).fetch();
    assert.deepEqual(g.toJSON(), first.toJSON());
  });

  it('the channel counts messages and links the last one', async () => {
    const c = await chat.services(svc.sid).channels(ch.sid).fetch();
    const all = await chat.services(svc.sid).channels(ch.sid).messages.list();
    assert.equal(c.messagesCount, all.length);
    assert.equal(c.links.last_message, all[all.length - 1].url);
  });

  it('update sets was_edited, body, attributes, lastUpdatedBy, from, dates', async () => {
    const u = await chat.services(svc.sid).channels(ch.sid).messages(first.sid).update({
      body: 'edited', attributes: '{ "foo": "bar" }', lastUpdatedBy: 'carol', from: 'dave',
      dateUpdated: new Date(Date.UTC(2021, 1, 3, 4, 5, 6)), xTwilioWebhookEnabled: 'true',
    });
    assert.equal(log[log.length - 1].headers['X-Twilio-Webhook-Enabled'], 'true');
    assert.equal(u.sid, first.sid);
    assert.equal(u.body, 'edited');
    assert.equal(u.attributes, '{ "foo": "bar" }');
    assert.equal(u.lastUpdatedBy, 'carol');
    assert.equal(u.from, 'dave');
    assert.equal(u.wasEdited, true);
    assert.equal(u.index, 0);
    assert.equal(u.dateCreated.toISOString(), '2020-01-02T03:04:05.000Z');
    assert.equal(u.dateUpdated.toISOString(), '2021-02-03T04:05:06.000Z');
    const f = await chat.services(svc.sid).channels('general').messages(first.sid).fetch();
    assert.deepEqual(f.toJSON(), u.toJSON());
  });

  it('update with no parameter returns the message unchanged', async () => {
    const m = await chat.services(svc.sid).channels(ch.sid).messages.create({ body: 'untouched' });
    const u = await chat.services(svc.sid).channels(ch.sid).messages(m.sid).update({});
    assert.deepEqual(u.toJSON(), m.toJSON());
    assert.equal(u.wasEdited, false);
  });

  it('update without a date sets date_updated to now', async () => {
    const m = await chat.services(svc.sid).channels(ch.sid).messages.create({
      body: 'old', dateCreated: new Date(Date.UTC(2001, 0, 1)),
    });
    const u = await chat.services(svc.sid).channels(ch.sid).messages(m.sid).update({ body: 'new' });
    assert.equal(u.dateCreated.toISOString(), '2001-01-01T00:00:00.000Z');
    assert.ok(Math.abs(u.dateUpdated.getTime() - Date.now()) < 120000, u.dateUpdated.toISOString());
    assert.equal(u.wasEdited, true);
  });

  it('remove: 204, gone, count drops, index never reused', async () => {
    const before = await chat.services(svc.sid).channels(ch.sid).fetch();
    const m = await chat.services(svc.sid).channels(ch.sid).messages.create({ body: 'temp' });
    assert.equal(await chat.services(svc.sid).channels('general').messages(m.sid).remove({
      xTwilioWebhookEnabled: 'false' }), true);
    await rejectsRest(chat.services(svc.sid).channels(ch.sid).messages(m.sid).fetch(), 404, 20404,
      'removed message');
    await rejectsRest(chat.services(svc.sid).channels(ch.sid).messages(m.sid).remove(), 404, 20404,
      'removed twice');
    const after = await chat.services(svc.sid).channels(ch.sid).fetch();
    assert.equal(after.messagesCount, before.messagesCount);
    const next = await chat.services(svc.sid).channels(ch.sid).messages.create({ body: 'next' });
    assert.equal(next.index, m.index + 1);
  });

  it('a message addressed under another channel is missing', async () => {
    const other = await chat.services(svc.sid).channels.create({ uniqueName: 'other' });
    await rejectsRest(chat.services(svc.sid).channels(other.sid).messages(first.sid).fetch(), 404,
      20404, 'wrong channel');
    await rejectsRest(chat.services(svc.sid).channels(other.sid).messages(first.sid).update({ body: 'x' }),
      404, 20404, 'update under wrong channel');
    await rejectsRest(chat.services(svc.sid).channels(other.sid).messages(first.sid).remove(), 404,
      20404, 'remove under wrong channel');
    assert.equal((await chat.services(svc.sid).channels(ch.sid).messages(first.sid).fetch()).body,
      'edited');
  });
});

describe('paging through messages', () => {
  let svc;
  let ch;
  const N = 23;
  let created = [];

  before(async () => {
    svc = await chat.services.create({ friendlyName: 'paging' });
    ch = await chat.services(svc.sid).channels.create({ uniqueName: 'pages' });
    created = [];
    for (let i = 0; i < N; i++) {
      created.push(await chat.services(svc.sid).channels(ch.sid).messages.create({ body: `m${i}` }));
    }
  });

  const pagesRequested = (from) => log.slice(from).filter((r) => r.method === 'get');

  it('list({pageSize: 5}) yields all 23 in index order over 5 pages', async () => {
    const mark = log.length;
    const all = await chat.services(svc.sid).channels(ch.sid).messages.list({ pageSize: 5 });
    assert.deepEqual(all.map((m) => m.index), created.map((m) => m.index));
    assert.deepEqual(all.map((m) => m.body), created.map((m) => m.body));
    const reqs = pagesRequested(mark);
    assert.equal(reqs.length, 5);
    assert.deepEqual(reqs[0].params, { PageSize: 5 });
    for (let i = 1; i < reqs.length; i++) {
      // Followed verbatim: the absolute next_page_url of the previous page.
      assert.ok(reqs[i].uri.startsWith(`${BASE}/v2/Services/${svc.sid}/Channels/${ch.sid}/Messages?PageSize=5&Page=${i}&PageToken=`), reqs[i].uri);
    }
  });

  it("list({pageSize: 5, order: 'desc'}) yields all 23 reversed", async () => {
    const mark = log.length;
    const all = await chat.services(svc.sid).channels('pages').messages.list({ pageSize: 5, order: 'desc' });
    assert.deepEqual(all.map((m) => m.sid), created.map((m) => m.sid).reverse());
    const reqs = pagesRequested(mark);
    assert.equal(reqs.length, 5);
    for (let i = 1; i < reqs.length; i++) {
      assert.ok(reqs[i].uri.includes(`/Messages?Order=desc&PageSize=5&Page=${i}&PageToken=`), reqs[i].uri);
    }
  });

  it('list with limit (PageSize = limit) and with limit plus pageSize', async () => {
    const mark = log.length;
    const seven = await chat.services(svc.sid).channels(ch.sid).messages.list({ limit: 7 });
    assert.deepEqual(seven.map((m) => m.index), [0, 1, 2, 3, 4, 5, 6]);
    assert.deepEqual(pagesRequested(mark)[0].params, { PageSize: 7 });
    const sevenDesc = await chat.services(svc.sid).channels(ch.sid).messages.list({
      limit: 7, pageSize: 3, order: 'desc' });
    assert.deepEqual(sevenDesc.map((m) => m.index), [22, 21, 20, 19, 18, 17, 16]);
    const big = await chat.services(svc.sid).channels(ch.sid).messages.list({ limit: 5000 });
    assert.equal(big.length, N); // PageSize=5000 is clamped, not refused
  });

  it('default page size and page size 1', async () => {
    const all = await chat.services(svc.sid).channels(ch.sid).messages.list();
    assert.equal(all.length, N);
    const ones = await chat.services(svc.sid).channels(ch.sid).messages.list({ pageSize: 1, order: 'desc' });
    assert.deepEqual(ones.map((m) => m.index), created.map((m) => m.index).reverse());
  });

  it('each() visits every message in order and calls done', async () => {
    const seen = [];
    let doneArg = 'not called';
    await chat.services(svc.sid).channels(ch.sid).messages.each({
      pageSize: 4, done: (e) => { doneArg = e; },
    }, (m) => { seen.push(m.index); });
    assert.deepEqual(seen, created.map((m) => m.index));
    assert.equal(doneArg, undefined);
    const desc = [];
    await chat.services(svc.sid).channels(ch.sid).messages.each({ pageSize: 6, order: 'desc' },
      (m) => { desc.push(m.index); });
    assert.deepEqual(desc, created.map((m) => m.index).reverse());
    // Stopping early through the done callback given to the item callback.
    const early = [];
    await chat.services(svc.sid).channels(ch.sid).messages.each({ pageSize: 5 }, (m, done) => {
      early.push(m.index);
      if (early.length === 8) done();
    });
    assert.deepEqual(early, [0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('page() / nextPage() / previousPage() walk both ways (asc)', async () => {
    const msgs = chat.services(svc.sid).channels(ch.sid).messages;
    const p0 = await msgs.page({ pageSize: 5 });
    assert.deepEqual(p0.instances.map((m) => m.index), [0, 1, 2, 3, 4]);
    assert.equal(p0.previousPageUrl, undefined);
    assert.equal(p0.previousPage(), undefined);
    const pages = [p0];
    let p = p0;
    while (p.nextPageUrl) {
      p = await p.nextPage();
      pages.push(p);
    }
    assert.equal(pages.length, 5);
    assert.deepEqual(pages.flatMap((x) => x.instances.map((m) => m.index)), created.map((m) => m.index));
    assert.deepEqual(p.instances.map((m) => m.index), [20, 21, 22]);
    assert.equal(p.nextPage(), undefined);
    // Back from the last page to the first.
    let back = p;
    const seen = [];
    for (let i = pages.length - 2; i >= 0; i--) {
      back = await back.previousPage();
      assert.deepEqual(back.instances.map((m) => m.sid), pages[i].instances.map((m) => m.sid),
        `previous page ${i}`);
      seen.push(i);
    }
    assert.equal(back.previousPageUrl, undefined);
    // previous then next returns to the same place.
    const p2 = await (await pages[1].nextPage()).previousPage();
    assert.deepEqual(p2.instances.map((m) => m.index), [5, 6, 7, 8, 9]);
    const p3 = await p2.nextPage();
    assert.deepEqual(p3.instances.map((m) => m.index), [10, 11, 12, 13, 14]);
  });

  it('page() / nextPage() / previousPage() walk both ways (desc)', async () => {
    const msgs = chat.services(svc.sid).channels(ch.sid).messages;
    const p0 = await msgs.page({ pageSize: 10, order: 'desc' });
    assert.deepEqual(p0.instances.map((m) => m.index), [22, 21, 20, 19, 18, 17, 16, 15, 14, 13]);
    const p1 = await p0.nextPage();
    assert.deepEqual(p1.instances.map((m) => m.index), [12, 11, 10, 9, 8, 7, 6, 5, 4, 3]);
    const p2 = await p1.nextPage();
    assert.deepEqual(p2.instances.map((m) => m.index), [2, 1, 0]);
    assert.equal(p2.nextPageUrl, undefined);
    const b1 = await p2.previousPage();
    assert.deepEqual(b1.instances.map((m) => m.sid), p1.instances.map((m) => m.sid));
    const b0 = await b1.previousPage();
    assert.deepEqual(b0.instances.map((m) => m.sid), p0.instances.map((m) => m.sid));
    assert.equal(b0.previousPageUrl, undefined);
  });

  it('a page that is exactly full has no next page', async () => {
    const p = await chat.services(svc.sid).channels(ch.sid).messages.page({ pageSize: N });
    assert.equal(p.instances.length, N);
    assert.equal(p.nextPageUrl, undefined);
    const q = await chat.services(svc.sid).channels(ch.sid).messages.page({ pageSize: 20 });
    const r = await q.nextPage();
    assert.equal(r.instances.length, 3);
    assert.equal(r.nextPageUrl, undefined);
  });

  it('getPage(next_page_url) follows an absolute URL verbatim', async () => {
    const msgs = chat.services(svc.sid).channels(ch.sid).messages;
    const p0 = await msgs.page({ pageSize: 8, order: 'desc' });
    const url = p0.nextPageUrl;
    assert.ok(url.startsWith(`${BASE}/v2/`), url);
    const p1 = await msgs.getPage(url);
    assert.deepEqual(p1.instances.map((m) => m.index), [14, 13, 12, 11, 10, 9, 8, 7]);
    assert.equal(log[log.length - 1].uri, url);
  });

  it('page tokens stay exact while messages come and go (keyset)', async () => {
    const msgs = chat.services(svc.sid).channels(ch.sid).messages;
    const p0 = await msgs.page({ pageSize: 5 });
    // Delete an item of the next page and append one at the end.
    await chat.services(svc.sid).channels(ch.sid).messages(created[6].sid).remove();
    const extra = await msgs.create({ body: 'late' });
    assert.equal(extra.index, N);
    const p1 = await p0.nextPage();
    assert.deepEqual(p1.instances.map((m) => m.index), [5, 7, 8, 9, 10]);
    const all = await msgs.list({ pageSize: 5 });
    assert.deepEqual(all.map((m) => m.index),
      [...created.map((m) => m.index).filter((i) => i !== 6), N]);
    const desc = await msgs.list({ pageSize: 5, order: 'desc' });
    assert.deepEqual(desc.map((m) => m.index), all.map((m) => m.index).reverse());
  });

  it('an empty channel lists nothing', async () => {
    const empty = await chat.services(svc.sid).channels.create({});
    const l = await chat.services(svc.sid).channels(empty.sid).messages.list({ pageSize: 5 });
    assert.deepEqual(l, []);
    const p = await chat.services(svc.sid).channels(empty.sid).messages.page({ order: 'desc' });
    assert.deepEqual(p.instances, []);
    assert.equal(p.nextPageUrl, undefined);
  });
});

describe('errors through the client', () => {
  let svc;
  let ch;

  before(async () => {
    svc = await chat.services.create({ friendlyName: 'errors' });
    ch = await chat.services(svc.sid).channels.create({ uniqueName: 'err' });
  });

  it('404 / 20404 for a missing service, channel or message', async () => {
    const missingCh = 'CH' + 'f'.repeat(32);
    await assert.rejects(chat.services(svc.sid).channels(missingCh).fetch(), (e) => {
      assert.ok(e instanceof twilio.RestException);
      assert.equal(e.status, 404);
      assert.equal(e.code, 20404);
      assert.equal(e.message,
        `The requested resource /Services/${svc.sid}/Channels/${missingCh} was not found`);
      return true;
    });
    await rejectsRest(chat.services(svc.sid).channels('no-such-name').fetch(), 404, 20404, 'name');
    await rejectsRest(chat.services(svc.sid).channels(missingCh).messages.create({ body: 'x' }), 404,
      20404, 'create into a missing channel');
    await rejectsRest(chat.services(svc.sid).channels(missingCh).update({ friendlyName: 'x' }), 404,
      20404, 'update a missing channel');
    await rejectsRest(chat.services(svc.sid).channels(missingCh).remove(), 404, 20404, 'remove');
    await rejectsRest(chat.services('IS' + '0'.repeat(32)).fetch(), 404, 20404, 'service');
    await rejectsRest(chat.services('IS' + '0'.repeat(32)).channels.list(), 404, 20404, 'list');
    await rejectsRest(chat.services('undefined').fetch(), 404, 20404, 'malformed service SID');
    await rejectsRest(chat.services(svc.sid).channels(ch.sid).messages('IM' + '1'.repeat(32)).fetch(),
      404, 20404, 'message');
    await rejectsRest(chat.services(svc.sid).channels(ch.sid).messages('IMnope').fetch(), 404, 20404,
      'malformed message SID');
  });

  it('400 / 50504 for an oversize body (32768 bytes is the limit)', async () => {
    const msgs = chat.services(svc.sid).channels(ch.sid).messages;
    await rejectsRest(msgs.create({ body: 'x'.repeat(32769) }), 400, 50504, 'ASCII 32769');
    await rejectsRest(msgs.create({ body: 'é'.repeat(16384) + 'a' }), 400, 50504, 'UTF-8 32769 B');
    const ok = await msgs.create({ body: 'é'.repeat(16384) });
    assert.equal(ok.body.length, 16384);
    const ok2 = await msgs.create({ body: 'y'.repeat(32768) });
    await rejectsRest(msgs(ok2.sid).update({ body: 'z'.repeat(32769) }), 400, 50504, 'update');
    assert.equal((await msgs(ok2.sid).fetch()).body, 'y'.repeat(32768));
  });

  it('409 / 50307 for a duplicate unique name', async () => {
    await rejectsRest(chat.services(svc.sid).channels.create({ uniqueName: 'err' }), 409, 50307, 'dup');
  });

  it('401 / 20003 with a wrong token or account', async () => {
    const badLog = [];
    const bad = twilio(srv.accountSid, srv.authToken + 'x',
      { httpClient: new LocalRequestClient(srv.origin, badLog) });
    await rejectsRest(bad.chat.v2.services.list(), 401, 20003, 'list with a wrong token');
    await rejectsRest(bad.chat.v2.services(svc.sid).fetch(), 401, 20003, 'fetch with a wrong token');
    await rejectsRest(bad.chat.v2.services.create({ friendlyName: 'x' }), 401, 20003, 'create');
    const other = twilio('AC' + '0'.repeat(32), srv.authToken,
      { httpClient: new LocalRequestClient(srv.origin, badLog) });
    await rejectsRest(other.chat.v2.services(svc.sid).channels(ch.sid).messages.list(), 401, 20003,
      'wrong account');
  });

  it('400 with the specific codes for invalid parameters', async () => {
    const msgs = chat.services(svc.sid).channels(ch.sid).messages;
    const before = await chat.services(svc.sid).channels(ch.sid).fetch();
    await rejectsRest(msgs.create({ body: 'x', attributes: '{bad json' }), 400, 50304, 'attributes');
    await rejectsRest(msgs.create({ body: 'x', attributes: '' }), 400, 50304, 'empty attributes');
    await rejectsRest(msgs.create({ body: 'x', dateCreated: 'yesterday' }), 400, 50308, 'DateCreated');
    await rejectsRest(msgs.create({ body: 'x', dateUpdated: '2020-13-01T00:00:00Z' }), 400, 50309,
      'DateUpdated');
    await rejectsRest(msgs.create({ body: 'x', from: 'f'.repeat(257) }), 400, 50310, 'From');
    await rejectsRest(msgs.create({ body: 'x', lastUpdatedBy: 'l'.repeat(257) }), 400, 50505,
      'LastUpdatedBy');
    await rejectsRest(msgs.create({ body: 'x', xTwilioWebhookEnabled: 'yes' }), 400, 20001, 'header');
    await rejectsRest(chat.services(svc.sid).channels.create({ type: 'secret' }), 400, 20001, 'Type');
    await rejectsRest(msgs.list({ order: 'sideways' }), 400, 20001, 'Order');
    const after = await chat.services(svc.sid).channels(ch.sid).fetch();
    assert.equal(after.messagesCount, before.messagesCount); // failed calls change nothing
    // Accepted date forms: fractional seconds and offsets, normalised to UTC.
    const m = await msgs.create({ body: 'x', dateCreated: '2020-01-02T05:04:05.999+02:00' });
    assert.equal(m.dateCreated.toISOString(), '2020-01-02T03:04:05.000Z');
  });
});

describe('media', () => {
  let svc;
  let ch;
  let media;
  // A PNG signature, then bytes covering every value (NUL, 0x80..0xff, CR LF).
  const bytes = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7 + (i >> 8)) & 0xff)),
  ]);

  before(async () => {
    svc = await chat.services.create({ friendlyName: 'media' });
    ch = await chat.services(svc.sid).channels.create({ uniqueName: 'pics' });
  });

  it('upload raw bytes: 201 with a ME SID and the metadata', async () => {
    const res = await upload(svc.sid, bytes, 'image/png', 'cat.png');
    assert.equal(res.status, 201);
    assert.match(res.headers.get('content-type'), /^application\/json/);
    media = await res.json();
    assert.match(media.sid, sidRe('ME'));
    assert.equal(media.account_sid, srv.accountSid);
    assert.equal(media.service_sid, svc.sid);
    assert.equal(media.size, bytes.length);
    assert.equal(media.content_type, 'image/png');
    assert.equal(media.filename, 'cat.png');
    assert.equal(media.channel_sid, null);
    assert.equal(media.message_sid, null);
    assert.equal(media.url, `${BASE}/v1/Services/${svc.sid}/Media/${media.sid}`);
  });

  it('create a message with mediaSid: type media and the media object', async () => {
    const m = await chat.services(svc.sid).channels('pics').messages.create({
      mediaSid: media.sid, from: 'alice' });
    assert.equal(m.type, 'media');
    assert.deepEqual(m.media, { sid: media.sid, size: bytes.length, content_type: 'image/png',
      filename: 'cat.png' });
    assert.deepEqual(Object.keys(m.media), ['sid', 'size', 'content_type', 'filename']);
    assert.equal(m.body, '');
    const f = await chat.services(svc.sid).channels(ch.sid).messages(m.sid).fetch();
    assert.deepEqual(f.media, m.media);
    const listed = await chat.services(svc.sid).channels(ch.sid).messages.list();
    assert.deepEqual(listed.find((x) => x.sid === m.sid).media, m.media);
    // Media metadata now names the message.
    const meta = await (await fetch(`${srv.origin}/v1/Services/${svc.sid}/Media/${media.sid}`,
      { headers: { Authorization: srv.auth } })).json();
    assert.equal(meta.message_sid, m.sid);
    assert.equal(meta.channel_sid, ch.sid);
    // The body of a media message cannot change.
    await rejectsRest(chat.services(svc.sid).channels(ch.sid).messages(m.sid).update({ body: 'x' }),
      400, 50509, 'media body update');
    const u = await chat.services(svc.sid).channels(ch.sid).messages(m.sid).update({ attributes: '{"a":1}' });
    assert.equal(u.type, 'media');
    assert.equal(u.attributes, '{"a":1}');
  });

  it('attaching the same media again: 400 / 50508; after its message\'s delete it is gone: 50507', async () => {
    const msgs = chat.services(svc.sid).channels(ch.sid).messages;
    await rejectsRest(msgs.create({ mediaSid: media.sid }), 400, 50508, 'reattach');
    const extra = await (await upload(svc.sid, Buffer.from('extra'), 'text/plain', 'e.txt')).json();
    const m = await msgs.create({ mediaSid: extra.sid });
    await rejectsRest(msgs.create({ mediaSid: extra.sid }), 400, 50508, 'reattach');
    await msgs(m.sid).remove();
    await rejectsRest(msgs.create({ mediaSid: extra.sid }), 400, 50507, 'reattach after delete');
    const meta = await fetch(`${srv.origin}/v1/Services/${svc.sid}/Media/${extra.sid}`,
      { headers: { Authorization: srv.auth } });
    assert.equal(meta.status, 404);
  });

  it('media with a body; unknown, foreign and malformed media SIDs', async () => {
    const res = await upload(svc.sid, Buffer.from('%PDF-1.4\n'), 'application/pdf', 'doc.pdf');
    const pdf = await res.json();
    const msgs = chat.services(svc.sid).channels(ch.sid).messages;
    const m = await msgs.create({ mediaSid: pdf.sid, body: 'see attached' });
    assert.equal(m.type, 'media');
    assert.equal(m.body, 'see attached');
    await rejectsRest(msgs.create({ mediaSid: 'ME' + '0'.repeat(32) }), 400, 50507, 'unknown');
    await rejectsRest(msgs.create({ mediaSid: 'MEnot-a-sid' }), 400, 50510, 'malformed');
    await rejectsRest(msgs.create({ mediaSid: 'IM' + '0'.repeat(32) }), 400, 50510, 'wrong prefix');
    const other = await chat.services.create({ friendlyName: 'media 2' });
    const foreign = await (await upload(other.sid, Buffer.from('x'), 'text/plain', 'x.txt')).json();
    await rejectsRest(msgs.create({ mediaSid: foreign.sid }), 400, 50507, 'media of another service');
  });

  it('GET metadata and /Content return the metadata and the exact bytes', async () => {
    const meta = await fetch(`${srv.origin}/v1/Services/${svc.sid}/Media/${media.sid}`,
      { headers: { Authorization: srv.auth } });
    assert.equal(meta.status, 200);
    const j = await meta.json();
    assert.equal(j.sid, media.sid);
    assert.equal(j.size, bytes.length);
    assert.equal(j.content_type, 'image/png');
    assert.equal(j.filename, 'cat.png');
    assert.equal(j.links.content, `${j.url}/Content`);
    const content = await fetch(`${srv.origin}/v1/Services/${svc.sid}/Media/${media.sid}/Content`,
      { headers: { Authorization: srv.auth } });
    assert.equal(content.status, 200);
    assert.equal(content.headers.get('content-type'), 'image/png');
    const got = Buffer.from(await content.arrayBuffer());
    assert.equal(got.length, bytes.length);
    assert.ok(got.equals(bytes), 'bytes differ');
  });

  it('upload variants: no filename, empty body, bad content type, missing service', async () => {
    const noName = await upload(svc.sid, Buffer.from('abc'), 'text/plain');
    assert.equal(noName.status, 201);
    const j = await noName.json();
    assert.equal(j.filename, null);
    const m = await chat.services(svc.sid).channels(ch.sid).messages.create({ mediaSid: j.sid });
    assert.deepEqual(m.media, { sid: j.sid, size: 3, content_type: 'text/plain', filename: null });
    const empty = await upload(svc.sid, Buffer.alloc(0), 'application/octet-stream', 'empty.bin');
    assert.equal(empty.status, 201);
    const e = await empty.json();
    assert.equal(e.size, 0);
    const ec = await fetch(`${srv.origin}/v1/Services/${svc.sid}/Media/${e.sid}/Content`,
      { headers: { Authorization: srv.auth } });
    assert.equal(ec.status, 200);
    assert.equal((await ec.arrayBuffer()).byteLength, 0);
    const bad = await upload(svc.sid, Buffer.from('abc'), 'nonsense', 'x');
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).code, 50511);
    const missing = await upload('IS' + '0'.repeat(32), Buffer.from('abc'), 'text/plain', 'x');
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).code, 20404);
    const unauth = await fetch(`${srv.origin}/v1/Services/${svc.sid}/Media`, {
      method: 'POST', headers: { 'Content-Type': 'image/png' }, body: bytes });
    assert.equal(unauth.status, 401);
    const nf = await request(srv, `/v1/Services/${svc.sid}/Media/ME${'0'.repeat(32)}/Content`);
    assertError(assert, nf, 404, 20404, 'missing media content');
  });

  it('the media byte cap: full is 413 / 50512; refusals and deleted services free their bytes', async () => {
    const small = await startServer({ extraArgs: ['--media-cap', '4096'] });
    try {
      const c = twilio(small.accountSid, small.authToken, { httpClient: new LocalRequestClient(small.origin, []) });
      const up = (is, n, ct = 'application/octet-stream') => request(small, `/v1/Services/${is}/Media?Filename=b.bin`,
        { method: 'POST', body: Buffer.alloc(n, 7), headers: { 'Content-Type': ct } });
      const s1 = await c.chat.v2.services.create({ friendlyName: 'cap 1' });
      assert.equal((await up(s1.sid, 3000)).status, 201);
      assertError(assert, await up(s1.sid, 3000), 413, 50512, 'over the cap');
      // Refused uploads give their reservation back.
      for (let i = 0; i < 5; i++) assertError(assert, await up(s1.sid, 1000, 'bad'), 400, 50511, 'bad type');
      assert.equal((await up(s1.sid, 1000)).status, 201);
      // Deleting the service frees its media bytes.
      assert.equal(await c.chat.v2.services(s1.sid).remove(), true);
      const s2 = await c.chat.v2.services.create({ friendlyName: 'cap 2' });
      const again = await up(s2.sid, 4000);
      assert.equal(again.status, 201, `bytes of a deleted service still count: ${again.text}`);
      const content = await request(small, `/v1/Services/${s2.sid}/Media/${again.json.sid}/Content`);
      assert.equal(content.buf.length, 4000);
    } finally {
      await small.stop();
    }
  });
});
