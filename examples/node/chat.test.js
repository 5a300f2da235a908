'use strict';
// The twilio client (Node) against chatstore-server: Services, Channels and
// Messages through every operation, paging both ways, errors, and whole
// responses compared with golden files. Every test starts from the example
// fixture (../fixture.json) with the clock at 2020-01-01T00:00:00Z, stepping
// one second per change, so SIDs and dates are the same in every run.

const { describe, it, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const twilio = require('twilio');
const { startChatstore } = require('./chatstore');

let cs;
let chat;

before(async () => {
  cs = await startChatstore();
  chat = cs.client().chat.v2;
});
after(async () => { await cs.stop(); });
beforeEach(async () => { await cs.reset(); });

/** The fixture's first service ("support"). */
async function fixtureService() {
  return (await chat.services.list())[0];
}

async function rejectsRest(promise, status, code) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof twilio.RestException, String(e));
    assert.equal(e.status, status, e.message);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

describe('chatstore-server from node:test', () => {
  it('starts from the fixture', async () => {
    const st = await cs.stats();
    assert.deepEqual([st.services, st.channels, st.messages, st.media], [2, 2, 6, 2]);
    assert.deepEqual(st.clock, { now: '2020-01-01T00:00:00Z', step_seconds: 1, fixed: true });
    assert.deepEqual((await chat.services.list()).map((s) => s.friendlyName), ['support', 'empty service']);
  });

  it('services', async () => {
    const svc = await chat.services.create({ friendlyName: 'node' });
    assert.match(svc.sid, /^IS[0-9a-f]{32}$/);
    assert.equal(svc.dateCreated.toISOString(), '2020-01-01T00:00:00.000Z');
    assert.equal((await chat.services(svc.sid).fetch()).sid, svc.sid);
    const renamed = await chat.services(svc.sid).update({ friendlyName: 'node, renamed' });
    // one step per change: the create at 00:00:00, the update at 00:00:01
    assert.equal(renamed.dateUpdated.toISOString(), '2020-01-01T00:00:01.000Z');
    assert.deepEqual((await chat.services.list({ pageSize: 2 })).map((s) => s.friendlyName),
      ['support', 'empty service', 'node, renamed']);
    assert.equal(await chat.services(svc.sid).remove(), true);
    await rejectsRest(chat.services(svc.sid).fetch(), 404, 20404);
    cs.golden('services');
  });

  it('channels', async () => {
    const channels = chat.services((await fixtureService()).sid).channels;
    const room = await channels.create({ uniqueName: 'room', friendlyName: 'Room',
      attributes: JSON.stringify({ topic: 'tests' }), createdBy: 'js' });
    await channels.create({ uniqueName: 'vault', type: 'private' });
    assert.equal(room.type, 'public');
    assert.equal((await channels('room').fetch()).sid, room.sid);
    assert.equal((await channels('room').update({ friendlyName: 'The room' })).friendlyName, 'The room');
    assert.deepEqual((await channels.list()).map((c) => c.uniqueName), ['general', 'room']);
    assert.deepEqual((await channels.list({ type: ['public', 'private'], pageSize: 1 }))
      .map((c) => c.uniqueName), ['general', 'escalations', 'room', 'vault']);
    assert.equal(await channels('vault').remove(), true);
    cs.golden('channels');
  });

  it('messages: create, fetch, update, delete', async () => {
    const messages = chat.services((await fixtureService()).sid).channels('general').messages;
    const m = await messages.create({ body: 'Hello from Node', from: 'js',
      attributes: JSON.stringify({ lang: 'js' }) });
    assert.equal(m.index, 4);
    assert.equal(m.wasEdited, false);
    assert.equal((await messages(m.sid).fetch()).body, 'Hello from Node');
    const imported = await messages.create({ body: 'an old one', dateCreated: new Date('2015-05-05T00:00:00Z') });
    assert.equal(imported.dateCreated.toISOString(), '2015-05-05T00:00:00.000Z');
    const edited = await messages(m.sid).update({ body: 'Hello again', lastUpdatedBy: 'js' });
    assert.equal(edited.wasEdited, true);
    assert.equal(await messages(m.sid).remove(), true);
    assert.deepEqual((await messages.list()).map((x) => x.index), [0, 1, 2, 3, 5]);
    cs.golden('messages');
  });

  it('message pages both ways', async () => {
    const messages = chat.services((await fixtureService()).sid).channels('general').messages;
    for (let i = 0; i < 7; i++) await messages.create({ body: `m${i}` });
    // 11 messages: pages of 3, forwards then backwards
    let page = await messages.page({ pageSize: 3 });
    const forward = [page.instances.map((m) => m.index)];
    while (page.nextPageUrl) {
      page = await page.nextPage();
      forward.push(page.instances.map((m) => m.index));
    }
    assert.deepEqual(forward, [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10]]);
    const backward = [];
    while (page.previousPageUrl) {
      page = await page.previousPage();
      backward.push(page.instances.map((m) => m.index));
    }
    assert.deepEqual(backward, [[6, 7, 8], [3, 4, 5], [0, 1, 2]]);
    const desc = await messages.list({ order: 'desc', pageSize: 4 });
    assert.deepEqual(desc.map((m) => m.index), [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    const seen = [];
    await messages.each({ pageSize: 5, limit: 7 }, (m) => { seen.push(m.index); });
    assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6]);
    const second = await page.nextPage();
    const again = await messages.getPage(second.nextPageUrl);
    assert.deepEqual(again.instances.map((m) => m.index), [6, 7, 8]);
    cs.golden('pages');
  });

  it('errors are RestExceptions with the status and code', async () => {
    const s = chat.services((await fixtureService()).sid);
    await rejectsRest(s.channels('nope').fetch(), 404, 20404);
    await rejectsRest(s.channels('nope').messages.list(), 404, 20404);
    await rejectsRest(s.channels.create({ uniqueName: 'general' }), 409, 50307);
    await rejectsRest(s.channels('general').messages.create({ attributes: '{bad' }), 400, 50304);
    await rejectsRest(s.channels('general').messages.create({ body: 'x'.repeat(32769) }), 400, 50504);
    await rejectsRest(s.channels.create({ type: 'secret' }), 400, 20001);
    cs.golden('errors');
  });

  it('the fixture data', async () => {
    const general = chat.services((await fixtureService()).sid).channels('general');
    const msgs = await general.messages.list();
    assert.deepEqual(msgs.map((m) => m.from), ['alice', 'bob', 'alice', 'bob']);
    assert.equal(msgs[2].wasEdited, true);
    assert.equal(msgs[3].type, 'media');
    assert.equal(msgs[3].media.filename, 'receipt.txt');
    cs.golden('fixture');
  });

  it('changes do not leak between tests (1)', async () => {
    await chat.services.create({ friendlyName: 'leak?' });
    assert.equal((await chat.services.list()).length, 3);
  });

  it('changes do not leak between tests (2)', async () => {
    assert.deepEqual((await chat.services.list()).map((s) => s.friendlyName), ['support', 'empty service']);
  });

  it('a reset gives the same SIDs again; Fixture=false an empty store', async () => {
    const first = await chat.services.create({ friendlyName: 'again' });
    await cs.reset();
    const second = await chat.services.create({ friendlyName: 'again' });
    assert.equal(second.sid, first.sid);
    assert.equal(second.dateCreated.getTime(), first.dateCreated.getTime());
    await cs.reset(false);
    assert.deepEqual(await chat.services.list(), []);
  });
});
