'use strict';
// Compaction beside live traffic (ctest server_durable_compact; also run in
// the ThreadSanitizer build by tests/run-all.sh).
//
// (a) For each of --fsync everysec and always: a tiny compaction threshold
//     and concurrent writers (message creates, updates, deletes, media
//     uploads, service create + delete) and readers (fetches, pages,
//     channel reads) for a few seconds. The run must produce several
//     compactions, each having rebuilt the live counts from the files, no
//     abandoned one and no sanitizer report (TSAN_OPTIONS makes a report
//     end the server with status 66); after SIGTERM (exit 0) and a restart
//     every acknowledged change is there, byte for byte.
// (b) Damage that compaction finds: a byte flipped in a record of the
//     journal file being written, before the rotation closes it. The next
//     compaction must name the file, the offset and the cause, abandon
//     (nothing deleted, the MANIFEST unchanged), and the server must go on
//     serving; a restart then stops at the same damage.
const fs = require('node:fs');
const path = require('node:path');
const L = require('./lib');

const SECONDS = Number(process.env.COMPACT_TEST_SECONDS || 4);
const WRITERS = 4;
const READERS = 2;
const TSAN = { TSAN_OPTIONS: 'halt_on_error=1 exitcode=66 second_deadlock_stack=1' };

function sanitizerReport(err) {
  return /ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error/.test(err);
}

async function post(srv, p, form) {
  const r = await L.request(srv, p, { method: 'POST', form });
  if (!L.expect(r.status === 201 || r.status === 200, `POST ${p}: ${r.status} ${r.text.slice(0, 200)}`)) {
    throw new Error('setup failed');
  }
  return r;
}

// acks: message path -> last acknowledged JSON (null: deleted); media:
// content path -> bytes.
async function writer(srv, w, base, svc, acks, media, until) {
  const mine = [];
  let i = 0;
  while (Date.now() < until) {
    i++;
    let r;
    if (i % 13 === 5) {
      const bytes = Buffer.from(`w${w} media ${i} `.repeat(1 + (i % 40)));
      r = await L.request(srv, `/v1/Services/${svc}/Media`, { method: 'POST', body: bytes,
        headers: { 'Content-Type': 'application/octet-stream' } });
      if (L.expect(r.status === 201, `upload: ${r.status} ${r.text.slice(0, 200)}`)) {
        media.set(`/v1/Services/${svc}/Media/${r.json.sid}/Content`, bytes);
      }
    } else if (i % 29 === 7) {
      // a service with media, deleted: its bytes go once the delete is synced
      const s = (await post(srv, '/v2/Services', { FriendlyName: `temp ${w}` })).json.sid;
      const u = await L.request(srv, `/v1/Services/${s}/Media`, { method: 'POST', body: Buffer.from('gone'),
        headers: { 'Content-Type': 'text/plain' } });
      L.expect(u.status === 201, `temp upload: ${u.status}`);
      r = await L.request(srv, `/v2/Services/${s}`, { method: 'DELETE' });
      L.expect(r.status === 204, `service delete: ${r.status}`);
      acks.set(`/v2/Services/${s}`, null);
    } else if (mine.length > 8 && i % 5 === 1) {
      const p = mine.splice(i % mine.length, 1)[0];
      r = await L.request(srv, p, { method: 'DELETE' });
      if (L.expect(r.status === 204, `delete: ${r.status} ${r.text.slice(0, 200)}`)) acks.set(p, null);
    } else if (mine.length && i % 5 === 2) {
      const p = mine[i % mine.length];
      r = await L.request(srv, p, { method: 'POST', form: { Body: `edit ${w}.${i} ✓`, Attributes: `{"e": ${i}}` } });
      if (L.expect(r.status === 200, `update: ${r.status} ${r.text.slice(0, 200)}`)) acks.set(p, r.text);
    } else {
      r = await L.request(srv, base, { method: 'POST', form: { Body: `msg ${w}.${i} ${'x'.repeat(i % 90)}`, From: `w${w}` } });
      if (L.expect(r.status === 201, `create: ${r.status} ${r.text.slice(0, 200)}`)) {
        const p = `${base}/${r.json.sid}`;
        acks.set(p, r.text);
        mine.push(p);
      }
    }
  }
  return i;
}

async function reader(srv, base, chPath, acks, until) {
  let n = 0;
  while (Date.now() < until) {
    n++;
    const keys = [...acks.keys()].filter((k) => k.includes('/Messages/'));
    if (n % 3 === 0 && keys.length) {
      const p = keys[(n * 7919) % keys.length];
      const r = await L.request(srv, p);
      L.expect(r.status === 200 || r.status === 404, `read ${p}: ${r.status}`);
    } else if (n % 3 === 1) {
      const r = await L.request(srv, `${base}?PageSize=20&Order=${n % 2 ? 'desc' : 'asc'}`);
      L.expect(r.status === 200 && Array.isArray(r.json.messages), `page: ${r.status}`);
    } else {
      const r = await L.request(srv, chPath);
      L.expect(r.status === 200, `channel: ${r.status}`);
    }
  }
  return n;
}

async function traffic(root, fsync) {
  const dir = path.join(root, fsync);
  const args = ['--fsync', fsync, '--compact-min-bytes', '16384', '--compact-ratio', '0.25'];
  let srv = await L.startServer(dir, { args, env: TSAN });
  const svc = (await post(srv, '/v2/Services', { FriendlyName: 'compact' })).json.sid;
  const chPath = `/v2/Services/${svc}/Channels/${(await post(srv, `/v2/Services/${svc}/Channels`, { UniqueName: 'room' })).json.sid}`;
  const base = `${chPath}/Messages`;
  const acks = new Map();
  const media = new Map();
  const until = Date.now() + SECONDS * 1000;
  let counts;
  try {
    counts = await Promise.all([
      ...Array.from({ length: WRITERS }, (_, w) => writer(srv, w, base, svc, acks, media, until)),
      ...Array.from({ length: READERS }, () => reader(srv, base, chPath, acks, until)),
    ]);
  } catch (e) { // the server went away (a sanitizer report ends it)
    await L.sleep(500);
    const x = await srv.kill('SIGKILL');
    L.fail(`${fsync}: ${e.message}; server ended ${JSON.stringify(x)}:\n${srv.stderr().slice(-6000)}`);
    return;
  }
  const x = await srv.stop();
  const err = srv.stderr();
  const done = (err.match(/compaction: snapshot-\d+ .*the files rebuild the live counts/g) || []).length;
  L.expect(!sanitizerReport(err), `${fsync}: sanitizer report:\n${err}`);
  L.expect(x.code === 0, `${fsync}: SIGTERM: ${JSON.stringify(x)}\n${err.slice(-3000)}`);
  L.expect(done >= 3, `${fsync}: ${done} compactions, expected several:\n${err.slice(-3000)}`);
  L.expect(!/ABANDONED|FATAL|cannot/.test(err), `${fsync}: a compaction failed:\n${err}`);
  const waits = [...err.matchAll(/changes waited ([\d.]+) ms for the rotation/g)].map((m) => Number(m[1]));
  const c = L.check(dir);
  L.expect(c.status === 0, `${fsync}: chatstore-check ${c.status}\n${c.out}`);

  // Everything acknowledged is there after a restart.
  srv = await L.startServer(dir, { args, env: TSAN });
  let bad = 0;
  let live = 0;
  for (const [p, json] of acks) {
    const r = await L.request(srv, p);
    const ok = json === null ? r.status === 404 : r.status === 200 && r.text === json;
    if (json !== null) live++;
    if (!ok && bad++ < 5) L.fail(`${fsync}: ${p}: ${r.status} ${r.text.slice(0, 300)}\n   want ${json === null ? 'deleted' : json}`);
  }
  for (const [p, bytes] of media) {
    const r = await L.request(srv, p);
    if (!(r.status === 200 && r.buf.equals(bytes)) && bad++ < 5) L.fail(`${fsync}: ${p}: ${r.status}, ${r.buf.length} bytes`);
  }
  let listed = 0;
  for (let p = `${base}?PageSize=1000`; p;) {
    const r = await L.request(srv, p);
    if (!L.expect(r.status === 200, `${fsync}: list ${r.status}`)) break;
    listed += r.json.messages.length;
    p = r.json.meta.next_page_url ? L.localPath(r.json.meta.next_page_url) : null;
  }
  L.expect(listed === live, `${fsync}: ${listed} messages listed, ${live} acknowledged`);
  const y = await srv.stop();
  L.expect(y.code === 0 && !sanitizerReport(srv.stderr()), `${fsync}: restart: ${JSON.stringify(y)}\n${srv.stderr()}`);
  const writes = counts.slice(0, WRITERS).reduce((a, b) => a + b, 0);
  const reads = counts.slice(WRITERS).reduce((a, b) => a + b, 0);
  console.log(`(a) ${fsync}: ${writes} writes and ${reads} reads in ${SECONDS} s beside ${done} compactions ` +
    `(changes waited at most ${waits.length ? Math.max(...waits).toFixed(2) : '?'} ms for a rotation); ` +
    `all ${acks.size} acknowledged changes and ${media.size} media recovered`);
}

async function damage(root) {
  const dir = path.join(root, 'damage');
  const args = ['--fsync', 'always', '--compact-min-bytes', '60000', '--compact-ratio', '0'];
  let srv = await L.startServer(dir, { args, env: TSAN });
  const svc = (await post(srv, '/v2/Services', { FriendlyName: 'damage' })).json.sid;
  const ch = (await post(srv, `/v2/Services/${svc}/Channels`, { UniqueName: 'room' })).json.sid;
  const base = `/v2/Services/${svc}/Channels/${ch}/Messages`;
  const sids = [];
  for (let i = 0; i < 60; i++) sids.push((await post(srv, base, { Body: `before ${i} ${'y'.repeat(200)}` })).json.sid);
  // Still below the threshold: one journal file, not compacted yet.
  let d = L.listDir(dir);
  L.expect(d.journals.length === 1 && !/compaction: snapshot/.test(srv.stderr()), `damage: setup compacted already: ${d.journals}`);
  const jname = d.journals[0];
  const file = path.join(dir, jname);
  const fr = L.frames(file);
  const bad = fr[Math.floor(fr.length / 2)];
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, bad.off + 4 + 30);
  b[0] ^= 0x20;
  fs.writeSync(fd, b, 0, 1, bad.off + 4 + 30);
  fs.closeSync(fd);
  const manifest = d.manifest;
  // Over the threshold: a compaction rotates and rebuilds, and finds it.
  let found = null;
  for (let i = 0; i < 400 && !found; i++) {
    await post(srv, base, { Body: `after ${i} ${'z'.repeat(400)}` });
    if (i % 20 === 19) await L.sleep(100);
    found = /compaction: ABANDONED/.test(srv.stderr()) ? true : null;
  }
  for (let i = 0; i < 100 && !found; i++) {
    await L.sleep(100);
    found = /compaction: ABANDONED/.test(srv.stderr()) ? true : null;
  }
  const err = srv.stderr();
  const want = `compaction: ${dir}/${jname}: damaged at offset ${bad.off}: record of ${bad.len} bytes fails its checksum`;
  L.expect(err.includes(want), `damage: expected "${want}":\n${err}`);
  L.expect(found, `damage: no abandoned compaction:\n${err}`);
  L.expect(!/compaction: snapshot-/.test(err), `damage: a compaction went through:\n${err}`);
  // Still serving, nothing deleted, the MANIFEST as it was.
  const r = await L.request(srv, base, { method: 'POST', form: { Body: 'still here' } });
  L.expect(r.status === 201, `damage: create after: ${r.status}`);
  const g = await L.request(srv, `${base}/${sids[0]}`);
  L.expect(g.status === 200, `damage: read after: ${g.status}`);
  d = L.listDir(dir);
  L.expect(d.journals.includes(jname) && d.manifest === manifest && d.snapshots.length === 1,
    `damage: files changed: ${JSON.stringify(d)}`);
  L.expect(!fs.readdirSync(dir).some((n) => n.includes('.tmp')), 'damage: a .tmp file was left');
  const x = await srv.stop();
  L.expect(x.code === 0 && !sanitizerReport(srv.stderr()), `damage: SIGTERM: ${JSON.stringify(x)}\n${srv.stderr()}`);
  // A restart stops at the same place.
  srv = await L.startServer(dir, { args, env: TSAN, expectFail: true });
  await srv.exited;
  L.expect(srv.stderr().includes(`${jname}: damaged at offset ${bad.off}`), `damage: restart:\n${srv.stderr()}`);
  console.log(`(b) a flipped byte in ${jname} at offset ${bad.off}: the compaction said "${want.replace(dir + '/', '')}", ` +
    'abandoned, deleted nothing, the server kept serving; the restart refuses at the same record');
}

L.run('server_durable_compact', async () => {
  const root = L.tempDir('compact');
  await traffic(root, 'everysec');
  await traffic(root, 'always');
  await damage(root);
  if (!L.failureCount()) L.rmrf(root);
  else console.log(`kept: ${root}`);
});
