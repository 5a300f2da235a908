'use strict';
// cluster_compact: the stream compacts itself, and servers rebuilt from a
// compacted stream hold exactly the writer's store, media bytes included.
// One shard, sync, --replica-snapshot-records 40. Through HAProxy: a
// service, two channels, an upload, 300 messages (one with the upload),
// edits and deletes; then
// - the writer reports snapshots published (chatstore_replica_snapshots_total);
// - its follower, restarted with an empty memory, says it started from a
//   snapshot past the stream's first message (the history before it was
//   purged) and then lists every channel's messages page by page byte for
//   byte as the writer does, serves the upload's content, and a page token
//   the writer issued works on it;
// - the writer itself, SIGKILLed and restarted as a primary (same node),
//   rebuilds from the compacted stream to the same bytes and takes writes;
// - a service's directory entry deleted behind the writer's back (a
//   message published on the directory stream with the NATS protocol) is
//   put back by the restarted writer, which says so, at the list's end.
// Fails when nats-server or haproxy is missing.

const assert = require('node:assert/strict');
const { request, startCluster, waitFor, messagesPath, runTest } = require('./cluster');

const net = require('node:net');

const localPath = (url) => { const u = new URL(url); return u.pathname + u.search; };

/** Publishes one message with headers on a NATS subject, speaking the NATS
 * client protocol over a socket (CONNECT, HPUB, PING until PONG). */
function natsPublish(port, subject, hdrs, payload = '') {
  const h = `NATS/1.0\r\n${Object.entries(hdrs).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  const hl = Buffer.byteLength(h);
  const tl = hl + Buffer.byteLength(payload);
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    s.setTimeout(5000, () => s.destroy(new Error('NATS publish timeout')));
    s.on('data', (d) => {
      buf += d;
      if (buf.includes('PONG')) { s.end(); resolve(); }
      if (buf.includes('-ERR')) { s.destroy(); reject(new Error(buf)); }
    });
    s.on('error', reject);
    s.on('connect', () => s.write('CONNECT {"verbose":false,"headers":true,"no_responders":true}\r\n' +
      `HPUB ${subject} ${hl} ${tl}\r\n${h}${payload}\r\nPING\r\n`));
  });
}

/** The SIDs of GET /v2/Services, in order (every page). */
async function serviceSids(target) {
  const out = [];
  let p = '/v2/Services?PageSize=50';
  while (p) {
    const r = await request(target, p);
    assert.equal(r.status, 200, r.text);
    for (const x of r.json.services) out.push(x.sid);
    p = r.json.meta.next_page_url ? localPath(r.json.meta.next_page_url) : null;
  }
  return out;
}

/** Every page of a message list on one target, as raw texts. */
async function pages(target, path) {
  const out = [];
  let p = `${path}?PageSize=50`;
  while (p) {
    const r = await request(target, p);
    assert.equal(r.status, 200, `${p}: ${r.text}`);
    out.push(r.text);
    p = r.json.meta.next_page_url ? localPath(r.json.meta.next_page_url) : null;
  }
  return out;
}

async function main() {
  const c = await startCluster({
    shards: 1, replication: 'sync', extraArgs: ['--replica-snapshot-records', '40'],
  });
  let stopped = false;
  try {
    const svc = await c.serviceOn(0, 'compaction');
    const chans = [await messagesPath(c, svc.sid), await messagesPath(c, svc.sid)];
    const content = 'bytes of an upload that must survive compaction';
    const up = await request(c, `/v1/Services/${svc.sid}/Media`, {
      method: 'POST', body: content, headers: { 'Content-Type': 'text/plain' },
    });
    assert.equal(up.status, 201, up.text);
    const sids = [];
    for (let i = 0; i < 300; i++) {
      const form = { Body: `message ${i}`, From: `user${i % 7}` };
      if (i === 150) form.MediaSid = up.json.sid;
      const r = await request(c, chans[i % 2], { method: 'POST', form });
      assert.equal(r.status, 201, r.text);
      sids.push([chans[i % 2], r.json.sid]);
    }
    for (let i = 0; i < 300; i += 17) {
      const [ch, sid] = sids[i];
      const r = await request(c, `${ch}/${sid}`, { method: 'POST', form: { Body: `edited ${i}` } });
      assert.equal(r.status, 200, r.text);
    }
    for (let i = 5; i < 300; i += 23) {
      const [ch, sid] = sids[i];
      assert.equal((await request(c, `${ch}/${sid}`, { method: 'DELETE' })).status, 204);
    }
    const m = await c.metrics('s0a');
    assert.ok(m.chatstore_replica_snapshots_total >= 5, `snapshots: ${m.chatstore_replica_snapshots_total}`);

    const want = [];
    for (const ch of chans) want.push(await pages(c, ch));
    const first = await request(c, `${chans[0]}?PageSize=20`);
    const token = localPath(first.json.meta.next_page_url);
    const tokenPage = (await request(c, token)).text;

    // The follower, rebuilt from the compacted stream.
    const s0b = c.server('s0b');
    s0b.kill('SIGKILL');
    await s0b.waitExit(5000);
    await c.startServer(s0b, { follow: true });
    const fm = /from its snapshot at message (\d+)/.exec(s0b.out);
    assert.ok(fm, s0b.out);
    assert.ok(Number(fm[1]) > 1, `the follower started from message ${fm[1]}: nothing was purged`);
    const head = (await c.replica('s0a')).stream_seq;
    assert.ok(await waitFor(async () => (await c.replica('s0b')).applied_seq >= head, 10000, 50),
      `follower behind: ${JSON.stringify(await c.replica('s0b'))}`);
    for (let k = 0; k < chans.length; k++) {
      assert.deepEqual(await pages(s0b, chans[k]), want[k], `channel ${k} differs on the rebuilt follower`);
    }
    const mc = await request(s0b, `/v1/Services/${svc.sid}/Media/${up.json.sid}/Content`);
    assert.equal(mc.status, 200, mc.text);
    assert.equal(mc.text, content);
    assert.equal((await request(s0b, token)).text, tokenPage);
    console.log(`# follower rebuilt from the snapshot at stream message ${fm[1]} ` +
      `(${m.chatstore_replica_snapshots_total} snapshots published)`);

    // A directory entry lost (as when a writer dies between a service
    // change's record and its entry): removed from the directory stream
    // behind the writer's back, then put again by the restarted writer.
    const other = await c.serviceOn(0, 'lost entry');
    assert.ok((await serviceSids(c)).includes(other.sid));
    await natsPublish(c.nats[0].port, 'chatstore.dir',
      { 'Chatstore-Op': 'del', 'Chatstore-Shard': '0', 'Chatstore-Sid': other.sid });
    // (PONG means the NATS server read the message; the stream stores it
    // through its Raft group a moment later)
    assert.ok(await waitFor(async () => !(await serviceSids(c)).includes(other.sid), 5000, 50),
      'the entry was not removed');

    // The writer, restarted on its own lease, rebuilds from the stream too.
    const s0a = c.server('s0a');
    s0a.kill('SIGKILL');
    await s0a.waitExit(5000);
    await c.startServer(s0a, { follow: false });
    await c.waitRouted(0, 's0a', 5000);
    for (let k = 0; k < chans.length; k++) {
      assert.deepEqual(await pages(c, chans[k]), want[k], `channel ${k} differs on the restarted writer`);
    }
    const mc2 = await request(c, `/v1/Services/${svc.sid}/Media/${up.json.sid}/Content`);
    assert.equal(mc2.text, content);
    const after = await request(c, chans[0], { method: 'POST', form: { Body: 'after the restart' } });
    assert.equal(after.status, 201, after.text);
    const listed = await serviceSids(c);
    assert.equal(listed[listed.length - 1], other.sid, `the lost entry is not back at the end: ${listed}`);
    assert.equal(listed.filter((x) => x === svc.sid).length, 1);
    assert.match(s0a.out, /the directory missed changes of this shard: 1 put, 0 deleted again/);

    stopped = true;
    await c.stopChecked();
    console.log('# cluster_compact passed');
  } catch (e) {
    for (const p of c.all()) console.log(p.tail(1200));
    throw e;
  } finally {
    if (!stopped) await c.stop();
  }
}

runTest('cluster_compact', main, 150000);
