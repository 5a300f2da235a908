'use strict';
// Quotas (--max-services, --max-channels, --max-messages, --max-memory) and
// the media lifecycle (bytes freed with their message or channel, --media-ttl
// expiry, in memory and with --data-dir). docs/behaviour.md QT1, SR22-SR24.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const twilio = require('twilio');
const { startServer, request, assertError } = require('./server');

class LocalRequestClient extends twilio.RequestClient {
  constructor(origin) {
    super();
    this.origin = origin;
  }

  request(opts) {
    const u = new URL(opts.uri);
    return super.request(Object.assign({}, opts, { uri: this.origin + u.pathname + u.search }));
  }
}

const post = (srv, p, form) => request(srv, p, { method: 'POST', form });
const del = (srv, p) => request(srv, p, { method: 'DELETE' });
const upload = (srv, is, n, fill = 7) => request(srv, `/v1/Services/${is}/Media?Filename=b.bin`,
  { method: 'POST', body: Buffer.alloc(n, fill), headers: { 'Content-Type': 'application/octet-stream' } });
const content = (srv, is, me) => request(srv, `/v1/Services/${is}/Media/${me}/Content`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function serviceAndChannel(srv, name = 'general') {
  const s = await post(srv, '/v2/Services', { FriendlyName: 'quota' });
  assert.equal(s.status, 201, s.text);
  const c = await post(srv, `/v2/Services/${s.json.sid}/Channels`, { UniqueName: name });
  assert.equal(c.status, 201, c.text);
  return s.json.sid;
}

/** A message carrying a new upload of n bytes: { me, im }. */
async function mediaMessage(srv, is, n, channel = 'general') {
  const u = await upload(srv, is, n);
  assert.equal(u.status, 201, u.text);
  const m = await post(srv, `/v2/Services/${is}/Channels/${channel}/Messages`, { MediaSid: u.json.sid });
  assert.equal(m.status, 201, m.text);
  return { me: u.json.sid, im: m.json.sid };
}

describe('quotas', () => {
  it('count quotas: 403 / 20403 with the quota named; a delete makes room', async () => {
    const srv = await startServer({ extraArgs: ['--max-services', '2', '--max-channels', '2',
      '--max-messages', '3'] });
    try {
      const is = await serviceAndChannel(srv);
      assert.equal((await post(srv, '/v2/Services', { FriendlyName: 'two' })).status, 201);
      const s3 = await post(srv, '/v2/Services', { FriendlyName: 'three' });
      assertError(assert, s3, 403, 20403, 'third service');
      assert.match(s3.json.message, /Service quota/);
      // The call's own checks come first.
      assertError(assert, await post(srv, '/v2/Services', { FriendlyName: '' }), 400, 20001, 'no name');
      assert.equal((await post(srv, `/v2/Services/${is}/Channels`, { UniqueName: 'two' })).status, 201);
      const c3 = await post(srv, `/v2/Services/${is}/Channels`, { UniqueName: 'three' });
      assertError(assert, c3, 403, 20403, 'third channel');
      assert.match(c3.json.message, /Channel quota/);
      assertError(assert, await post(srv, `/v2/Services/${is}/Channels`, { UniqueName: 'two' }),
        409, 50307, 'taken name before the quota');
      const msgs = [];
      for (let i = 0; i < 3; i++) {
        const m = await post(srv, `/v2/Services/${is}/Channels/general/Messages`, { Body: `m${i}` });
        assert.equal(m.status, 201, m.text);
        msgs.push(m.json.sid);
      }
      const m4 = await post(srv, `/v2/Services/${is}/Channels/two/Messages`, { Body: 'm3' });
      assertError(assert, m4, 403, 20403, 'fourth message, other channel');
      assert.match(m4.json.message, /Message quota/);
      // Reads and updates work at the quota; a delete makes room.
      const list = await request(srv, `/v2/Services/${is}/Channels/general/Messages`);
      assert.equal(list.json.messages.length, 3);
      assert.equal((await post(srv, `/v2/Services/${is}/Channels/general/Messages/${msgs[0]}`,
        { Body: 'edited' })).status, 200);
      assert.equal((await del(srv, `/v2/Services/${is}/Channels/general/Messages/${msgs[1]}`)).status, 204);
      assert.equal((await post(srv, `/v2/Services/${is}/Channels/two/Messages`, { Body: 'm3' })).status, 201);
      // The twilio client sees a RestException with the status and code.
      const client = twilio(srv.accountSid, srv.authToken, { httpClient: new LocalRequestClient(srv.origin) });
      await assert.rejects(client.chat.v2.services.create({ friendlyName: 'x' }),
        (e) => e.status === 403 && e.code === 20403);
    } finally {
      await srv.stop();
    }
  });

  it('--max-memory: store and media bytes share one budget; 403 / 20403; deletes make room', async () => {
    const srv = await startServer({ extraArgs: ['--max-memory', '400000'] });
    try {
      const is = await serviceAndChannel(srv);
      const held = [];
      let refused = null;
      for (let i = 0; i < 20 && !refused; i++) {
        const u = await upload(srv, is, 60000);
        if (u.status !== 201) {
          refused = u;
          break;
        }
        const m = await post(srv, `/v2/Services/${is}/Channels/general/Messages`, { MediaSid: u.json.sid });
        assert.equal(m.status, 201, m.text);
        held.push(m.json.sid);
      }
      assert.ok(refused, 'the memory quota never refused an upload');
      assertError(assert, refused, 403, 20403, 'upload past --max-memory');
      assert.match(refused.json.message, /Memory quota/);
      assert.ok(held.length >= 4 && held.length <= 6, `uploads that fitted: ${held.length}`);
      // What is left of the budget also bounds the store's own bytes.
      const big = 'x'.repeat(30000);
      let bodyRefused = null;
      for (let i = 0; i < 20 && !bodyRefused; i++) {
        const m = await post(srv, `/v2/Services/${is}/Channels/general/Messages`, { Body: big });
        if (m.status !== 201) bodyRefused = m;
      }
      assert.ok(bodyRefused, 'the store never hit what the media left');
      assertError(assert, bodyRefused, 403, 20403, 'message past --max-memory');
      // Reads work; deleting a media message frees its bytes for an upload.
      assert.equal((await request(srv, `/v2/Services/${is}/Channels/general/Messages?PageSize=5`)).status, 200);
      assert.equal((await del(srv, `/v2/Services/${is}/Channels/general/Messages/${held[0]}`)).status, 204);
      assert.equal((await del(srv, `/v2/Services/${is}/Channels/general/Messages/${held[1]}`)).status, 204);
      const again = await upload(srv, is, 60000);
      assert.equal(again.status, 201, `deleted media still count: ${again.text}`);
    } finally {
      await srv.stop();
    }
  });
});

describe('media lifecycle', () => {
  it('bytes of a deleted message or channel are freed: an upload that only fits after the delete', async () => {
    const srv = await startServer({ extraArgs: ['--media-cap', '10000'] });
    try {
      const is = await serviceAndChannel(srv);
      const a = await mediaMessage(srv, is, 6000);
      assert.equal((await content(srv, is, a.me)).buf.length, 6000);
      assertError(assert, await upload(srv, is, 6000), 413, 50512, 'cap full');
      assert.equal((await del(srv, `/v2/Services/${is}/Channels/general/Messages/${a.im}`)).status, 204);
      assertError(assert, await content(srv, is, a.me), 404, 20404, 'content of a deleted message');
      assertError(assert, await request(srv, `/v1/Services/${is}/Media/${a.me}`), 404, 20404,
        'metadata of a deleted message');
      // The media SID is gone with its message.
      assertError(assert, await post(srv, `/v2/Services/${is}/Channels/general/Messages`,
        { MediaSid: a.me }), 400, 50507, 'MediaSid of a deleted message');
      // With a channel: its messages' media go too.
      assert.equal((await post(srv, `/v2/Services/${is}/Channels`, { UniqueName: 'other' })).status, 201);
      const b = await mediaMessage(srv, is, 6000, 'other');
      assertError(assert, await upload(srv, is, 6000), 413, 50512, 'cap full again');
      assert.equal((await del(srv, `/v2/Services/${is}/Channels/other`)).status, 204);
      assertError(assert, await content(srv, is, b.me), 404, 20404, 'content of a deleted channel');
      const c = await upload(srv, is, 6000);
      assert.equal(c.status, 201, `bytes of a deleted channel still count: ${c.text}`);
      assert.deepEqual((await content(srv, is, c.json.sid)).buf, Buffer.alloc(6000, 7));
    } finally {
      await srv.stop();
    }
  });

  it('an upload never attached expires after --media-ttl (fixture clock); attached ones stay', async () => {
    const srv = await startServer({ extraArgs: ['--clock', '2020-01-01T00:00:00Z', '--test-endpoints',
      '--media-ttl', '60', '--media-cap', '10000'] });
    try {
      const is = await serviceAndChannel(srv);
      const lone = await upload(srv, is, 6000);
      assert.equal(lone.status, 201);
      const used = await mediaMessage(srv, is, 3000);
      // 59 s later it still lives and still counts.
      assert.equal((await post(srv, '/_chatstore/clock', { Now: '2020-01-01T00:00:59Z' })).status, 200);
      assertError(assert, await upload(srv, is, 6000), 413, 50512, 'before the ttl');
      assert.equal((await content(srv, is, lone.json.sid)).status, 200);
      // At 60 s it expires: the next upload fits in its room.
      assert.equal((await post(srv, '/_chatstore/clock', { Now: '2020-01-01T00:01:00Z' })).status, 200);
      const next = await upload(srv, is, 6000);
      assert.equal(next.status, 201, `the expired upload still counts: ${next.text}`);
      assertError(assert, await request(srv, `/v1/Services/${is}/Media/${lone.json.sid}`), 404, 20404,
        'expired metadata');
      assertError(assert, await content(srv, is, lone.json.sid), 404, 20404, 'expired content');
      assert.equal((await content(srv, is, used.me)).buf.length, 3000);
    } finally {
      await srv.stop();
    }
  });

  it('with --data-dir, expiry and deletes remove the files, and a restart keeps them gone', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatstore-quota-'));
    const args = ['--data-dir', dir, '--fsync', 'always', '--media-ttl', '1'];
    try {
      let srv = await startServer({ extraArgs: args });
      const { accountSid, authToken } = srv;
      let is, lone, used, kept;
      try {
        is = await serviceAndChannel(srv);
        lone = (await upload(srv, is, 100, 1)).json.sid;
        used = await mediaMessage(srv, is, 200);
        const files = () => fs.readdirSync(path.join(dir, 'media', is)).sort();
        assert.deepEqual(files(), [lone, used.me].sort());
        await sleep(1200); // past the 1 s ttl of the store's (real) clock
        // the next upload sweeps first; the attached item stays
        kept = (await upload(srv, is, 300, 3)).json.sid;
        assert.ok(kept);
        await post(srv, `/v2/Services/${is}/Channels/general/Messages`, { MediaSid: kept });
        assertError(assert, await content(srv, is, lone), 404, 20404, 'expired');
        assert.deepEqual(files(), [used.me, kept].sort());
        assert.equal((await del(srv, `/v2/Services/${is}/Channels/general/Messages/${used.im}`)).status, 204);
        assert.deepEqual(files(), [kept]);
      } finally {
        await srv.stop();
      }
      srv = await startServer({ extraArgs: args, accountSid, authToken });
      try {
        assertError(assert, await request(srv, `/v1/Services/${is}/Media/${lone}`), 404, 20404, 'after restart');
        assertError(assert, await request(srv, `/v1/Services/${is}/Media/${used.me}`), 404, 20404,
          'deleted message after restart');
        assert.deepEqual((await content(srv, is, kept)).buf, Buffer.alloc(300, 3));
        assert.deepEqual(fs.readdirSync(path.join(dir, 'media', is)), [kept]);
      } finally {
        await srv.stop();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
