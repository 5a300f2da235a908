'use strict';
// cluster_failover: a 2-shard cluster in sync mode, concurrent creates into
// channels of services on both shards through HAProxy. Shard 0's primary is
// SIGKILLed, its follower promoted through POST /replica/promote. Checks:
// - every acknowledged create (2xx) of shard 0 is on the new primary,
//   fetched through HAProxy byte for byte as the create's reply, and none
//   twice;
// - SIDs and a page token taken before the kill still work after;
// - shard 1 never failed a create;
// - the new primary reports itself primary with a higher term, and its
//   replica metrics are there.
// Prints the time writes to shard 0 were unavailable (first failed create
// to the first one acknowledged after it) and the follower lag; timings
// are reported, never asserted. Fails when nats-server or haproxy is
// missing.

const assert = require('node:assert/strict');
const { createLoad, outcome, request, sleep, startCluster, waitFor, messagesPath, runTest } = require('./cluster');

const localPath = (url) => { const u = new URL(url); return u.pathname + u.search; };

async function main() {
  const c = await startCluster({ shards: 2, replication: 'sync' });
  let stopped = false;
  try {
    const s0 = await c.serviceOn(0, 'failover 0');
    const s1 = await c.serviceOn(1, 'failover 1');
    const ch0 = [await messagesPath(c, s0.sid), await messagesPath(c, s0.sid)];
    const ch1 = [await messagesPath(c, s1.sid)];

    // A list page and its next link, taken before the kill.
    for (let i = 0; i < 25; i++) {
      const r = await request(c, ch0[0], { method: 'POST', form: { Body: `before ${i}` } });
      assert.equal(r.status, 201, r.text);
    }
    const p0 = await request(c, `${ch0[0]}?PageSize=10`);
    assert.equal(p0.status, 200, p0.text);
    const next = p0.json.meta.next_page_url;
    assert.ok(next && /PageToken=/.test(next), `no next link: ${p0.text}`);
    assert.ok(next.startsWith(c.origin), `next link not on the cluster's URL: ${next}`);
    const p1 = await request(c, localPath(next));
    assert.equal(p1.status, 200, p1.text);

    const before = await c.replica('s0b');
    assert.equal(before.role, 'follower', JSON.stringify(before));

    const load0 = createLoad(c, ch0, { workers: 8, tag: 's0' });
    const load1 = createLoad(c, ch1, { workers: 2, tag: 's1' });
    await sleep(1500);
    let lagSample = null;
    try { lagSample = await c.replica('s0b'); } catch (e) { lagSample = { error: e.message }; }

    const tKill = Date.now();
    c.server('s0a').kill('SIGKILL');
    await c.server('s0a').waitExit(5000);
    // The operator's move: promote the follower (it answers once it has
    // applied everything it can read).
    let promoted;
    const okPromote = await waitFor(async () => {
      promoted = await c.promote('s0b');
      return promoted.status === 200;
    }, 20000, 200);
    assert.ok(okPromote, `promote: ${promoted && promoted.status} ${promoted && promoted.text}`);
    const tPromoted = Date.now();
    assert.equal(promoted.json.role, 'primary', promoted.text);
    assert.ok(promoted.json.term > before.term, `term ${before.term} -> ${promoted.json.term}`);
    await c.waitRouted(0, 's0b', 5000);
    const tRouted = Date.now();
    // Load goes on until shard 0 has acknowledged creates again for a while.
    const acked = () => load0.attempts.some((a) => a.sent > tRouted && a.status === 201);
    assert.ok(await waitFor(acked, 10000), 'no create acknowledged on shard 0 after the promotion');
    await sleep(1000);
    await load0.stop();
    await load1.stop();

    const o0 = outcome(load0.attempts);
    const o1 = outcome(load1.attempts);
    const firstFail = o0.failed.reduce((m, a) => (m === null || a.sent < m.sent ? a : m), null);
    // Unavailable: from the first failed create's start to the first
    // acknowledgement of a create sent after that failure was seen.
    const firstOkAfter = firstFail && o0.ok.filter((a) => a.sent >= firstFail.done)
      .reduce((m, a) => (m === null || a.done < m.done ? a : m), null);
    const unavailable = firstFail && firstOkAfter ? firstOkAfter.done - firstFail.sent : 0;
    // And the longest time shard 0 acknowledged nothing (failed or not).
    const dones = o0.ok.map((a) => a.done).sort((x, y) => x - y);
    let gap = 0;
    for (let i = 1; i < dones.length; i++) gap = Math.max(gap, dones[i] - dones[i - 1]);
    console.log(`# shard 0: ${o0.ok.length} creates acknowledged, ${o0.failed.length} failed ` +
      `(statuses ${JSON.stringify(countBy(o0.failed, (a) => a.status || a.error))})`);
    console.log(`# shard 1: ${o1.ok.length} acknowledged, ${o1.failed.length} failed`);
    console.log(`# writes to shard 0 unavailable for ${unavailable} ms (first failure to the first ` +
      `acknowledgement after it); longest time without an acknowledgement ${gap} ms; ` +
      `kill -> promoted ${tPromoted - tKill} ms, -> routed ${tRouted - tKill} ms`);
    console.log(`# follower s0b under load before the kill: ${JSON.stringify(lagSample)}`);

    assert.ok(o0.ok.length > 0 && o1.ok.length > 0, 'no load went through');
    assert.deepEqual(o1.failed.map((a) => `${a.status} ${a.error || a.text}`), [],
      'shard 1 failed creates while shard 0 failed over');
    // A failure must be a refusal or a lost connection, never a bad request.
    for (const a of o0.failed) {
      assert.ok(a.status === 0 || a.status >= 500, `unexpected failure ${a.status} ${a.text}`);
    }

    // Every acknowledged create, on the new primary, as it was acknowledged.
    const seen = new Set();
    for (const a of o0.ok) {
      const m = JSON.parse(a.text);
      assert.ok(!seen.has(m.sid), `SID ${m.sid} acknowledged twice`);
      seen.add(m.sid);
      const r = await request(c, localPath(m.url));
      assert.equal(r.status, 200, `acknowledged ${m.sid} (${a.body}) missing after failover: ${r.text}`);
      assert.equal(r.text, a.text, `acknowledged ${m.sid} differs after failover`);
    }
    // No acknowledged body twice in its channel (creates are not replayed).
    for (const ch of ch0) {
      const bodies = new Map();
      let url = `${ch}?PageSize=1000`;
      while (url) {
        const r = await request(c, url);
        assert.equal(r.status, 200, r.text);
        for (const m of r.json.messages) bodies.set(m.body, (bodies.get(m.body) || 0) + 1);
        url = r.json.meta.next_page_url && localPath(r.json.meta.next_page_url);
      }
      for (const a of o0.ok.filter((x) => x.channel === ch)) {
        assert.equal(bodies.get(a.body), 1, `${a.body} appears ${bodies.get(a.body) || 0} times`);
      }
    }

    // SIDs and the page token of before the kill.
    const f0 = await request(c, `/v2/Services/${s0.sid}`);
    assert.equal(f0.status, 200, f0.text);
    assert.equal(f0.json.sid, s0.sid);
    const p1After = await request(c, localPath(next));
    assert.equal(p1After.status, 200, `page token of before the kill: ${p1After.text}`);
    assert.deepEqual(p1After.json.messages, p1.json.messages);
    const p2 = p1After.json.meta.next_page_url;
    assert.ok(p2, 'page 1 lost its next link');
    const p2r = await request(c, localPath(p2));
    assert.equal(p2r.status, 200, p2r.text);

    // The new primary's state and metrics.
    const st = await c.replica('s0b');
    assert.equal(st.role, 'primary', JSON.stringify(st));
    const m = await c.metrics('s0b');
    for (const k of ['chatstore_replica_role', 'chatstore_replica_lag_records',
      'chatstore_replica_lag_seconds', 'chatstore_replica_published_records_total',
      'chatstore_replica_stream_seq']) {
      assert.ok(Object.keys(m).some((n) => n === k || n.startsWith(`${k}{`)), `metric ${k} missing`);
    }
    const st1 = await c.replica('s1b');
    console.log(`# shard 1 follower after the load: ${JSON.stringify(st1)}`);
    for (const p of [...c.nats, c.server('s0b'), c.server('s1a'), c.server('s1b'), c.haproxy]) {
      assert.ok(p.alive(), `${p.name} died: ${JSON.stringify(p.exit)}\n${p.tail()}`);
    }
    stopped = true;
    await c.stopChecked();
    console.log('# cluster_failover passed');
  } catch (e) {
    for (const p of c.all()) console.log(p.tail(1200));
    throw e;
  } finally {
    if (!stopped) await c.stop();
  }
}

function countBy(xs, f) {
  const out = {};
  for (const x of xs) { const k = String(f(x)).slice(0, 60); out[k] = (out[k] || 0) + 1; }
  return out;
}

runTest('cluster_failover', main, 150000);
