'use strict';
// cluster_nats_loss: a 2-shard cluster in sync mode, streams with three
// replicas, under create load on both shards; one of the three NATS servers
// is SIGKILLed. Writes go on: every create gets a 2xx within a bounded
// retry window (failed attempts are counted and reported, not hidden), and
// every acknowledged create is there afterwards, fetched byte for byte.
// The killed NATS server then comes back, and writes still go through.
// Fails when nats-server or haproxy is missing.

const assert = require('node:assert/strict');
const { createLoad, outcome, request, sleep, startCluster, waitFor, messagesPath, runTest } = require('./cluster');

const RETRY_MS = 15000;
const localPath = (url) => { const u = new URL(url); return u.pathname + u.search; };

async function main() {
  const c = await startCluster({ shards: 2, replication: 'sync' });
  let stopped = false;
  try {
    const s0 = await c.serviceOn(0, 'nats loss 0');
    const s1 = await c.serviceOn(1, 'nats loss 1');
    const chans = [await messagesPath(c, s0.sid), await messagesPath(c, s1.sid)];
    const load = createLoad(c, chans, { workers: 8, retryMs: RETRY_MS, tag: 'n', timeout: 10000 });
    await sleep(1500);
    const tKill = Date.now();
    // The server the most chatstore servers are connected to would be the
    // harshest; any one of three must do. n0 is the first of every --nats.
    c.nats[0].kill('SIGKILL');
    await c.nats[0].waitExit(5000);
    // Writes go on: creates sent after the kill are acknowledged (bounded
    // wait; how long the shards stalled is reported below, not asserted).
    const sentAfter = () => load.attempts.filter((a) => a.sent > tKill && a.status === 201).length;
    const goesOn = await waitFor(() => sentAfter() >= 100, 30000);
    await sleep(1000);
    await load.stop();
    assert.ok(goesOn, `only ${sentAfter()} creates sent after the NATS server's death were acknowledged in 30 s`);

    // Each create's attempts, by body: the last one decides.
    const byBody = new Map();
    for (const a of load.attempts) {
      if (!byBody.has(a.body)) byBody.set(a.body, []);
      byBody.get(a.body).push(a);
    }
    const { ok, failed } = outcome(load.attempts);
    const never = [...byBody.values()].filter((as) => !as.some((a) => a.status >= 200 && a.status < 300));
    const afterKill = ok.filter((a) => a.sent > tKill);
    let longest = 0;
    for (const as of byBody.values()) {
      if (as.length > 1) longest = Math.max(longest, as[as.length - 1].done - as[0].sent);
    }
    // The longest time without any acknowledgement, and the slowest create.
    const dones = ok.map((a) => a.done).sort((x, y) => x - y);
    let gap = 0;
    for (let i = 1; i < dones.length; i++) gap = Math.max(gap, dones[i] - dones[i - 1]);
    const slowest = ok.reduce((m, a) => Math.max(m, a.done - a.sent), 0);
    console.log(`# ${byBody.size} creates, ${ok.length} acknowledged (${afterKill.length} after the kill), ` +
      `${failed.length} failed attempts (${[...new Set(failed.map((a) => a.status || a.error))].join(', ') || 'none'}), ` +
      `longest retried create ${longest} ms, slowest attempt ${slowest} ms, longest time without an ` +
      `acknowledgement ${gap} ms`);
    assert.deepEqual(never.map((as) => `${as[0].body}: ${as.map((a) => a.status || a.error).join(' ')}`), [],
      `creates that never got a 2xx within ${RETRY_MS} ms`);
    assert.ok(afterKill.length > 0, 'no create acknowledged after the NATS server was killed');
    for (const a of failed) {
      assert.ok(a.status === 0 || a.status >= 500, `unexpected failure ${a.status} ${a.text}`);
    }

    // Every acknowledged create is there, as acknowledged.
    for (const a of ok) {
      const m = JSON.parse(a.text);
      const r = await request(c, localPath(m.url));
      assert.equal(r.status, 200, `acknowledged ${m.sid} missing: ${r.text}`);
      assert.equal(r.text, a.text, `acknowledged ${m.sid} differs`);
    }
    // The followers have it too: each reaches its primary's stream sequence.
    for (const k of [0, 1]) {
      const pri = await c.replica(`s${k}a`);
      let f;
      const t0 = Date.now();
      while (Date.now() - t0 < 10000) {
        f = await c.replica(`s${k}b`);
        if (f.applied_seq >= pri.stream_seq) break;
        await sleep(100);
      }
      assert.ok(f.applied_seq >= pri.stream_seq, `follower of shard ${k} behind: ${JSON.stringify(f)} vs ${JSON.stringify(pri)}`);
    }

    // The NATS server comes back; writes still go through.
    c.nats[0].start();
    await c.waitNatsReady(30000);
    for (const ch of chans) {
      const r = await request(c, ch, { method: 'POST', form: { Body: 'after the return' }, timeout: 10000 });
      assert.equal(r.status, 201, r.text);
    }
    for (const p of [...c.servers.flat(), c.haproxy]) {
      assert.ok(p.alive(), `${p.name} died: ${JSON.stringify(p.exit)}\n${p.tail()}`);
    }
    stopped = true;
    await c.stopChecked();
    console.log('# cluster_nats_loss passed');
  } catch (e) {
    for (const p of c.all()) console.log(p.tail(1200));
    throw e;
  } finally {
    if (!stopped) await c.stop();
  }
}

runTest('cluster_nats_loss', main, 150000);
