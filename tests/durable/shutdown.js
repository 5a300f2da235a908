'use strict';
// Clean shutdown (ctest server_durable_shutdown): in each --fsync mode
// (no, everysec, always), SIGTERM in the middle of concurrent creates,
// updates and deletes; the server must exit 0 after syncing, and after a
// restart every acknowledged change must be there (byte-identical JSON),
// with no torn record in the journal (chatstore-check).
const L = require('./lib');

const WORKERS = 8;

// acks: sid -> last acknowledged JSON (null: deleted); unsure: sids whose
// last request got no answer (the server may have applied it: a request in
// flight when the server stops is finished, but a keep-alive connection can
// carry one more that the server reads as it closes).
async function load(srv, base, acks, unsure, stopFlag, media) {
  const mine = [];
  let i = 0;
  while (!stopFlag.stop) {
    let r;
    let target = null;
    try {
      if (i % 10 === 3) {
        const bytes = Buffer.from(`bytes ${i} ${Math.random()}`.repeat(20));
        const svc = base.split('/')[3];
        r = await L.request(srv, `/v1/Services/${svc}/Media`, { method: 'POST', body: bytes,
          headers: { 'Content-Type': 'text/plain' } });
        if (r.status === 201) media.set(`/v1/Services/${svc}/Media/${r.json.sid}/Content`, bytes);
      } else if (mine.length > 5 && i % 4 === 1) {
        const sid = mine.shift();
        target = sid;
        r = await L.request(srv, `${base}/${sid}`, { method: 'DELETE' });
        if (r.status === 204) acks.set(sid, null);
      } else if (mine.length && i % 4 === 2) {
        const sid = mine[mine.length - 1];
        target = sid;
        r = await L.request(srv, `${base}/${sid}`, { method: 'POST', form: { Body: `edit ${i}` } });
        if (r.status === 200) acks.set(sid, r.text);
      } else {
        r = await L.request(srv, base, { method: 'POST', form: { Body: `msg ${i} ✓`, Attributes: `{"i": ${i}}` } });
        if (r.status === 201) {
          acks.set(r.json.sid, r.text);
          mine.push(r.json.sid);
        }
      }
    } catch {
      if (target) unsure.add(target);
      return; // the server stopped
    }
    L.expect([200, 201, 204].includes(r.status), `load: ${r.status} ${r.text.slice(0, 200)}`);
    i++;
  }
}

async function mode(root, fsync) {
  const dir = `${root}/${fsync}`;
  const args = ['--fsync', fsync, '--compact-min-bytes', '20000', '--compact-ratio', '0.5'];
  let srv = await L.startServer(dir, { args });
  const svc = (await L.request(srv, '/v2/Services', { method: 'POST', form: { FriendlyName: 's' } })).json.sid;
  const ch = (await L.request(srv, `/v2/Services/${svc}/Channels`, { method: 'POST', form: { UniqueName: 'c' } })).json.sid;
  const base = `/v2/Services/${svc}/Channels/${ch}/Messages`;
  const acks = new Map();
  const unsure = new Set();
  const flag = { stop: false };
  const media = new Map(); // content path -> bytes
  const work = Promise.all(Array.from({ length: WORKERS }, () => load(srv, base, acks, unsure, flag, media)));
  await L.sleep(700);
  const x = await srv.stop(); // SIGTERM while the load goes on
  flag.stop = true;
  await work;
  L.expect(x.code === 0, `${fsync}: SIGTERM exit ${JSON.stringify(x)}\n${srv.stderr()}`);
  L.expect(/journal synced/.test(srv.stderr()), `${fsync}: no "journal synced" on stderr:\n${srv.stderr()}`);
  const c = L.check(dir);
  L.expect(c.status === 0 && !/torn/.test(c.out), `${fsync}: chatstore-check ${c.status}\n${c.out}`);
  srv = await L.startServer(dir, { args });
  let bad = 0;
  for (const [sid, json] of acks) {
    if (unsure.has(sid)) continue;
    const r = await L.request(srv, `${base}/${sid}`);
    const ok = json === null ? r.status === 404 : r.status === 200 && r.text === json;
    if (!ok && bad++ < 5) L.fail(`${fsync}: ${sid}: ${r.status}, want ${json === null ? 'deleted' : json}`);
  }
  for (const [p, bytes] of media) {
    const r = await L.request(srv, p);
    if (!(r.status === 200 && r.buf.equals(bytes)) && bad++ < 5) L.fail(`${fsync}: media ${p}: ${r.status}`);
  }
  if (bad > 5) L.fail(`${fsync}: ${bad} acknowledged changes lost`);
  L.expect((await srv.stop()).code === 0, `${fsync}: second stop`);
  console.log(`--fsync ${fsync}: SIGTERM under load, exit 0; ${acks.size - unsure.size} acknowledged messages and ${media.size} media items, ${acks.size - unsure.size + media.size - bad} intact after restart (${unsure.size} left unanswered)`);
}

L.run('server_durable_shutdown', async () => {
  const root = L.tempDir('shutdown');
  for (const m of ['no', 'everysec', 'always']) await mode(root, m);
  if (!L.failureCount()) L.rmrf(root);
  else console.log(`kept: ${root}`);
});
