'use strict';
// cluster_fence: a deposed primary never acknowledges a write.
// 1. Shard 0: the primary is SIGKILLed and its follower promoted; the old
//    primary restarted as a primary (same --node) exits with status 4 and
//    prints "fenced: shard 0's writer is node s0b ..."; restarted with
//    --follow it runs, catches up with the new primary, and HAProxy keeps
//    sending shard 0's traffic to s0b.
// 2. Shard 1: the primary is SIGSTOPped (a write sent to it directly waits
//    in its socket), its follower promoted and written to; then the old
//    primary is SIGCONTed: the pending write and every later write sent to
//    it directly get 503 / 20503 naming the fence, its /replica says
//    fenced, its /healthz/writer is 503, and no write it refused is in the
//    new primary's store.
// Fails when nats-server or haproxy is missing.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const { request, sleep, startCluster, waitFor, messagesPath, runTest } = require('./cluster');

async function promote(c, node) {
  let r;
  const ok = await waitFor(async () => { r = await c.promote(node); return r.status === 200; }, 20000, 200);
  assert.ok(ok, `promote ${node}: ${r && r.status} ${r && r.text}`);
  assert.equal(r.json.role, 'primary', r.text);
  return r.json;
}

async function main() {
  const c = await startCluster({ shards: 2, replication: 'sync' });
  let stopped = false;
  try {
    // ---- 1. restart of a deposed primary as a primary ---------------------
    const s0 = await c.serviceOn(0, 'fence 0');
    const ch0 = await messagesPath(c, s0.sid);
    for (let i = 0; i < 5; i++) {
      assert.equal((await request(c, ch0, { method: 'POST', form: { Body: `a${i}` } })).status, 201);
    }
    const s0a = c.server('s0a');
    s0a.kill('SIGKILL');
    await s0a.waitExit(5000);
    const p = await promote(c, 's0b');
    await c.waitRouted(0, 's0b', 5000);
    assert.equal((await request(c, ch0, { method: 'POST', form: { Body: 'after' } })).status, 201);

    const x = await c.runToExit(s0a, { follow: false, ms: 20000 });
    assert.equal(x.code, 4, `restarted old primary: ${JSON.stringify(x)}\n${x.output}`);
    assert.match(x.output, /fenced: shard 0's writer is node s0b \(term \d+\), not s0a: start it with --follow/);
    console.log(`# restarted as a primary: exit ${x.code}: ${x.output.trim().split('\n').pop()}`);

    await c.startServer(s0a, { follow: true });
    const st = await c.replica('s0b');
    const caught = await waitFor(async () => {
      const f = await c.replica('s0a');
      return f.role === 'follower' && f.applied_seq === (await c.replica('s0b')).stream_seq;
    }, 10000, 100);
    assert.ok(caught, `s0a as follower did not catch up: ${JSON.stringify(await c.replica('s0a'))} vs ${JSON.stringify(st)}`);
    // A follower refuses writes sent to it directly.
    const fw = await request(s0a, ch0, { method: 'POST', form: { Body: 'to the follower' } });
    assert.equal(fw.status, 503, fw.text);
    assert.equal(fw.json.code, 20503, fw.text);
    assert.match(fw.json.message, /follower of shard 0/);
    await sleep(600); // three health checks
    await c.waitRouted(0, 's0b', 2000);
    assert.equal(p.term, (await c.replica('s0b')).term);

    // ---- 2. a primary paused while its follower is promoted ---------------
    const s1 = await c.serviceOn(1, 'fence 1');
    const ch1 = await messagesPath(c, s1.sid);
    for (let i = 0; i < 5; i++) {
      assert.equal((await request(c, ch1, { method: 'POST', form: { Body: `b${i}` } })).status, 201);
    }
    const s1a = c.server('s1a');
    s1a.kill('SIGSTOP');
    // kill() only queues the signal: wait until every thread of s1a is
    // stopped, or a loaded machine lets the next request through first
    // (then it is acknowledged before the promotion, legitimately).
    const stopped1 = await waitFor(() => {
      const dir = `/proc/${s1a.pid}/task`;
      return fs.readdirSync(dir).every((t) => {
        const st = fs.readFileSync(`${dir}/${t}/stat`, 'utf8');
        return st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) === 'T';
      });
    }, 5000, 10);
    assert.ok(stopped1, 's1a did not stop on SIGSTOP');
    // Sent before the promotion, answered only after it.
    const pending = request(s1a, ch1, { method: 'POST', form: { Body: 'pending on the paused primary' }, timeout: 30000 })
      .catch((e) => ({ status: 0, text: e.message }));
    await sleep(200);
    await promote(c, 's1b');
    await c.waitRouted(1, 's1b', 5000);
    const w = await request(c, ch1, { method: 'POST', form: { Body: 'on the new primary' } });
    assert.equal(w.status, 201, w.text);
    s1a.kill('SIGCONT');

    const refused = [];
    const pr = await pending;
    refused.push(['pending', pr]);
    for (let i = 0; i < 5; i++) {
      const r = await request(s1a, ch1, { method: 'POST', form: { Body: `after SIGCONT ${i}` } });
      refused.push([`after SIGCONT ${i}`, r]);
    }
    for (const [what, r] of refused) {
      assert.ok(!(r.status >= 200 && r.status < 300), `${what}: a deposed primary acknowledged a write: ${r.text}`);
    }
    // Once it has seen the fence, it says so.
    const last = refused[refused.length - 1][1];
    assert.equal(last.status, 503, last.text);
    assert.equal(last.json.code, 20503, last.text);
    assert.match(last.json.message, /^This server is fenced: it is no longer the writer of shard 1: /);
    const rs = await c.replica('s1a');
    assert.equal(rs.role, 'fenced', JSON.stringify(rs));
    const hw = await request(s1a, '/healthz/writer', { auth: false });
    assert.equal(hw.status, 503, hw.text);
    assert.match(s1a.log, /fenced/);
    console.log(`# paused primary after SIGCONT: ${refused.map(([, r]) => r.status).join(' ')}; ` +
      `${last.json.message}`);

    // None of the refused writes is on the new primary.
    const bodies = new Set();
    const l = await request(c, `${ch1}?PageSize=1000`);
    assert.equal(l.status, 200, l.text);
    for (const m of l.json.messages) bodies.add(m.body);
    for (const [what] of refused) {
      const b = what === 'pending' ? 'pending on the paused primary' : what;
      assert.ok(!bodies.has(b), `refused write "${b}" is on the new primary`);
    }
    assert.ok(bodies.has('on the new primary'));
    for (let i = 0; i < 5; i++) assert.ok(bodies.has(`b${i}`), `b${i} lost`);
    await c.waitRouted(1, 's1b', 2000);
    stopped = true;
    await c.stopChecked();
    console.log('# cluster_fence passed');
  } catch (e) {
    for (const p of c.all()) console.log(p.tail(1200));
    throw e;
  } finally {
    if (!stopped) await c.stop();
  }
}

runTest('cluster_fence', main, 150000);
