'use strict';
// Crash rounds against chatstore-server --data-dir (ctest server_durable_crash).
//
// Each round restarts the server on the same data directory, checks that
// the state is exactly what the clients were told, then runs concurrent
// creates, updates and deletes of messages, channel updates, media uploads
// (and messages using them), page listings and service create/delete, and
// kills the server with SIGKILL at a random moment, or lets the test-only
// CHATSTORE_TEST_CRASH hook kill it at one step of a compaction (every step
// is used). Then:
// - chatstore-check must accept the directory as it is (exit 0);
// - with --fsync always, every acknowledged change must be there: each
//   acknowledged message fetched is byte-identical to the JSON of its last
//   acknowledged create or update, acknowledged deletes stay deleted, media
//   bytes are identical, channels carry their acknowledged names;
// - a change whose request got no answer is either wholly applied or not
//   at all (an update's body and attributes together, a create with exactly
//   the fields sent; no other message appears);
// - page tokens and SIDs issued before the crash still work;
// - with --fsync everysec (the last rounds) the acknowledged changes that
//   are missing are counted and printed instead (a process crash keeps the
//   page cache, so 0 is expected; only a machine crash can lose them);
// - a SID acknowledged and then lost (a message, service or media item
//   whose create a power loss took) is never issued again: the server
//   starts a new SID epoch at every start, so the creates after the
//   restart, which reuse the lost messages' indices, get other SIDs.
//
// Environment: DURABLE_ROUNDS (rounds with --fsync always, default 24),
// DURABLE_SEED (default: time-based; printed, to reproduce a run).
const fs = require('node:fs');
const path = require('node:path');
const L = require('./lib');

const ROUNDS = Number(process.env.DURABLE_ROUNDS || 24);
const EVERYSEC_ROUNDS = Number(process.env.DURABLE_EVERYSEC_ROUNDS || 4);
const WORKERS = 6;
const POINTS = ['rotated', 'rebuilt', 'snapshot-written', 'snapshot-renamed', 'snapshot-done',
  'manifest-written', 'manifest-renamed', 'manifest-synced', 'deleted-snapshot',
  'deleted-journal', 'done'];
const SERVER_ARGS = ['--compact-min-bytes', '16384', '--compact-ratio', '0.25'];
const SEED = Number(process.env.DURABLE_SEED || (Date.now() % 1000000007));
const rnd = L.prng(SEED);
const pick = (a) => a[Math.floor(rnd() * a.length)];
const STOP = new Error('server gone');

const PIECES = ['hello', 'wörld', '😀', '"quoted"', 'a&b=c+d', '%20', '\n', ' ', 'Ω', 'tab\t', '<b>', 'x'];
function text(max) {
  let s = '';
  const n = Math.floor(rnd() * max);
  for (let i = 0; i < n; i++) s += pick(PIECES);
  return s;
}

// ---- the model: what the clients were told ---------------------------------

const model = {
  service: null,
  channels: [],             // { sid, uniq, friendly, attrs, uncertain: form|null }
  msgs: new Map(),          // sid -> { sid, ch, json, deleted, uncertain, owner }
  media: new Map(),         // sid -> { sid, svc, bytes, ct, filename, gone }
  services: new Map(),      // extra services: sid -> { deleted, uncertain }
  tokens: [],               // { path, ch }: next-page paths issued
  uncertainCreates: [],     // { ch, form }
};

let acked = 0;   // acknowledged changes, all rounds
let verified = 0; // acknowledged states checked after a restart
// SIDs acknowledged, then lost with the journal's tail in a power loss;
// every SID acknowledged afterwards is checked against them.
const lostSids = new Set();
let reissueChecked = 0;
function fresh(sid, what) {
  if (!lostSids.size) return;
  reissueChecked++;
  L.expect(!lostSids.has(sid), `${what} ${sid}: acknowledged, lost in a power loss, and now issued again`);
}

function msgPath(chSid, sid) {
  return `/v2/Services/${model.service}/Channels/${chSid}/Messages${sid ? '/' + sid : ''}`;
}

// One request of a worker: returns the response, or throws STOP once the
// server is gone (recording what the lost request might have done).
async function call(srv, p, opts, onUnknown) {
  try {
    return await L.request(srv, p, opts);
  } catch (e) {
    if (!e.refused && onUnknown) onUnknown();
    throw STOP;
  }
}

async function opCreate(srv, w, extra) {
  const form = Object.assign({ Body: text(12), From: `user${w.id}`,
    Attributes: JSON.stringify({ w: w.id, n: Math.floor(rnd() * 1e6), t: text(3) }) }, extra || {});
  if (extra && extra.MediaSid) delete form.Body;
  const ch = w.ch;
  const r = await call(srv, msgPath(ch.sid), { method: 'POST', form },
    () => model.uncertainCreates.push({ ch: ch.sid, form }));
  if (!L.expect(r.status === 201, `create: ${r.status} ${r.text.slice(0, 200)}`)) return;
  fresh(r.json.sid, 'message');
  model.msgs.set(r.json.sid, { sid: r.json.sid, ch: ch.sid, json: r.text, deleted: false,
    uncertain: null, owner: w.id, history: [r.text] });
  // a media item lives as long as its message (behaviour.md MD6)
  if (form.MediaSid && model.media.has(form.MediaSid)) model.media.get(form.MediaSid).msg = r.json.sid;
  w.mine.push(r.json.sid);
  acked++;
}

async function opUpdate(srv, w) {
  const sid = pick(w.mine);
  const m = model.msgs.get(sid);
  if (m.json.includes('"type": "media"')) return; // a media body cannot change
  const form = { Body: text(12), Attributes: JSON.stringify({ edited: text(4) }) };
  const r = await call(srv, msgPath(m.ch, sid), { method: 'POST', form },
    () => { m.uncertain = { kind: 'update', form }; });
  if (!L.expect(r.status === 200, `update: ${r.status} ${r.text.slice(0, 200)}`)) return;
  m.json = r.text;
  m.history.push(r.text);
  acked++;
}

async function opDelete(srv, w) {
  const i = Math.floor(rnd() * w.mine.length);
  const sid = w.mine[i];
  const m = model.msgs.get(sid);
  w.mine.splice(i, 1); // not used again by this worker, whatever the outcome
  const r = await call(srv, msgPath(m.ch, sid), { method: 'DELETE' },
    () => { m.uncertain = { kind: 'delete' }; });
  if (!L.expect(r.status === 204, `delete: ${r.status} ${r.text.slice(0, 200)}`)) return;
  m.deleted = true;
  acked++;
}

async function upload(srv, svc) {
  const n = 1 + Math.floor(rnd() * 3000);
  const bytes = Buffer.alloc(n);
  for (let i = 0; i < n; i++) bytes[i] = Math.floor(rnd() * 256);
  const filename = `f${Math.floor(rnd() * 1e6)}.bin`;
  const r = await call(srv, `/v1/Services/${svc}/Media?Filename=${filename}`,
    { method: 'POST', body: bytes, headers: { 'Content-Type': 'application/octet-stream' } });
  if (!L.expect(r.status === 201, `upload: ${r.status} ${r.text.slice(0, 200)}`)) return null;
  fresh(r.json.sid, 'media');
  model.media.set(r.json.sid, { sid: r.json.sid, svc, bytes, filename, gone: false });
  acked++;
  return r.json.sid;
}

async function opMedia(srv, w) {
  const me = await upload(srv, model.service);
  if (me) await opCreate(srv, w, { MediaSid: me });
}

async function opChannel(srv, w) {
  const ch = w.ch;
  const form = { FriendlyName: `room ${text(4)}`, Attributes: JSON.stringify({ topic: text(3) }) };
  const r = await call(srv, `/v2/Services/${model.service}/Channels/${ch.sid}`, { method: 'POST', form },
    () => { ch.uncertain = form; });
  if (!L.expect(r.status === 200, `channel update: ${r.status} ${r.text.slice(0, 200)}`)) return;
  ch.friendly = r.json.friendly_name;
  ch.attrs = r.json.attributes;
  ch.history.push(`${ch.friendly}\u0000${ch.attrs}`);
  if (ch.history.length > 50) ch.history.shift();
  acked++;
}

async function opPage(srv, w) {
  const r = await call(srv, msgPath(w.ch.sid) + '?PageSize=3');
  if (!L.expect(r.status === 200, `list: ${r.status}`)) return;
  const next = r.json.meta.next_page_url;
  if (next) {
    model.tokens.push({ path: L.localPath(next), ch: w.ch.sid });
    if (model.tokens.length > 24) model.tokens.shift();
  }
}

async function opService(srv) {
  let sid = null;
  const r = await call(srv, '/v2/Services', { method: 'POST', form: { FriendlyName: 'temp' } });
  if (!L.expect(r.status === 201, `service create: ${r.status}`)) return;
  sid = r.json.sid;
  fresh(sid, 'service');
  const s = { deleted: false, uncertain: false };
  model.services.set(sid, s);
  acked++;
  await upload(srv, sid);
  const d = await call(srv, `/v2/Services/${sid}`, { method: 'DELETE' }, () => { s.uncertain = true; });
  if (!L.expect(d.status === 204, `service delete: ${d.status}`)) return;
  s.deleted = true;
  for (const m of model.media.values()) if (m.svc === sid) m.gone = true;
  acked++;
}

async function worker(srv, w) {
  try {
    for (;;) {
      const x = rnd();
      if (w.mine.length > 40 || (x < 0.12 && w.mine.length)) await opDelete(srv, w);
      else if (x < 0.30 && w.mine.length) await opUpdate(srv, w);
      else if (x < 0.36) await opMedia(srv, w);
      else if (x < 0.40) await opChannel(srv, w);
      else if (x < 0.44) await opPage(srv, w);
      else if (x < 0.45) await opService(srv);
      else await opCreate(srv, w);
    }
  } catch (e) {
    if (e !== STOP) throw e;
  }
}

// ---- verification after a restart --------------------------------------------

function sameCreate(json, form) {
  if (json.from !== form.From || json.attributes !== form.Attributes) return false;
  if (form.MediaSid) return !!json.media && json.media.sid === form.MediaSid;
  return json.body === form.Body;
}

async function listAll(srv, chSid) {
  const items = [];
  let p = msgPath(chSid) + '?PageSize=1000';
  while (p) {
    const r = await L.request(srv, p);
    if (!L.expect(r.status === 200, `list ${chSid}: ${r.status}`)) break;
    items.push(...r.json.messages);
    p = r.json.meta.next_page_url ? L.localPath(r.json.meta.next_page_url) : null;
  }
  return items;
}

// Returns the acknowledged changes found missing (everysec counts them;
// always fails on them).
async function verify(srv, strict, round) {
  let lost = 0;
  const kinds = {};
  const lose = (kind, what) => {
    lost++;
    kinds[kind] = (kinds[kind] || 0) + 1;
    if (strict) L.fail(`round ${round}: acknowledged ${what}`);
  };
  // Messages. Strict (always): the last acknowledged state, or for an
  // unanswered request that request's whole effect. Otherwise lost changes
  // may bring back an earlier acknowledged state (whole) or remove a
  // message whose create was lost; anything else is half-applied.
  const dropMine = (m) => {
    const w = WORKERS_STATE.find((x) => x.id === m.owner);
    w.mine = w.mine.filter((x) => x !== m.sid);
  };
  for (const m of model.msgs.values()) {
    if (m.gone) continue;
    const r = await L.request(srv, msgPath(m.ch, m.sid));
    const u = m.uncertain;
    m.uncertain = null;
    const want = m.deleted ? null : m.json; // the last acknowledged state
    const got = r.status === 200 ? r.text : r.status === 404 ? null : undefined;
    const appliedUpdate = u && u.kind === 'update' && r.status === 200 &&
      r.json.body === u.form.Body && r.json.attributes === u.form.Attributes &&
      r.json.was_edited === true;
    if (!u) verified++;
    if (got === want) {
      // as acknowledged (or the unanswered request did not happen)
    } else if (u && u.kind === 'delete' && got === null) {
      m.deleted = true;
    } else if (appliedUpdate) {
      m.json = got;
      m.history.push(got);
    } else if (!strict && got === null) {
      lose('create', `message ${m.sid} is missing`);
      lostSids.add(m.sid); // acknowledged (not deleted: want was not null), its create lost
      m.deleted = true;
      dropMine(m);
    } else if (!strict && got && m.history.includes(got)) {
      lose(m.deleted ? 'delete' : 'update', `message ${m.sid} is back to an earlier state`);
      if (m.deleted) m.deleted = false; // (not the worker's any more)
      m.json = got;
    } else if (strict && !u) {
      lose(m.deleted ? 'delete' : want === null ? 'create' : 'update',
        `message ${m.sid}: ${r.status}\n   got  ${r.text}\n   want ${want}`);
    } else {
      L.fail(`round ${round}: message ${m.sid} after ${u ? `an unanswered ${u.kind}` : 'a crash'} ` +
        `is in no state it was ever in (half-applied?): ${r.status} ${r.text}\n   last acknowledged ${want}`);
    }
    if (m.deleted) m.gone = true; // not fetched again
  }
  // Messages nobody was told about: only unanswered creates, whole.
  const byCh = new Map();
  for (const c of model.uncertainCreates) {
    if (!byCh.has(c.ch)) byCh.set(c.ch, []);
    byCh.get(c.ch).push(c);
  }
  for (const ch of model.channels) {
    const items = await listAll(srv, ch.sid);
    const pending = byCh.get(ch.sid) || [];
    for (const it of items) {
      const m = model.msgs.get(it.sid);
      if (m && !m.deleted) continue;
      if (m && m.deleted) {
        L.fail(`round ${round}: deleted message ${it.sid} is listed`);
        continue;
      }
      const k = pending.findIndex((c) => sameCreate(it, c.form));
      if (!L.expect(k >= 0, `round ${round}: message ${it.sid} that no request created (or half-applied): ${JSON.stringify(it)}`)) continue;
      pending.splice(k, 1);
      const r = await L.request(srv, msgPath(ch.sid, it.sid));
      const owner = WORKERS_STATE.find((w) => w.ch.sid === ch.sid);
      model.msgs.set(it.sid, { sid: it.sid, ch: ch.sid, json: r.text, deleted: false,
        uncertain: null, owner: owner.id, history: [r.text] });
      owner.mine.push(it.sid);
      if (it.media && model.media.has(it.media.sid)) model.media.get(it.media.sid).msg = it.sid;
    }
    const present = [...model.msgs.values()].filter((m) => m.ch === ch.sid && !m.deleted).length;
    L.expect(items.length === present, `round ${round}: channel ${ch.sid} lists ${items.length} messages, the model has ${present}`);
    // the channel itself
    const r = await L.request(srv, `/v2/Services/${model.service}/Channels/${ch.sid}`);
    if (L.expect(r.status === 200, `round ${round}: channel ${ch.sid}: ${r.status}`)) {
      const u = ch.uncertain;
      ch.uncertain = null;
      if (u && r.json.friendly_name === u.FriendlyName && r.json.attributes === u.Attributes) {
        ch.friendly = r.json.friendly_name;
        ch.attrs = r.json.attributes;
      } else if (r.json.friendly_name !== ch.friendly || r.json.attributes !== ch.attrs) {
        // Lost updates bring back an earlier acknowledged state, whole.
        const earlier = ch.history.includes(`${r.json.friendly_name}\u0000${r.json.attributes}`);
        if (u && strict || !earlier) L.fail(`round ${round}: channel ${ch.sid} half-updated: ${r.text}`);
        else lose('channel update', `channel update of ${ch.sid} is lost: ${r.text}`);
        ch.friendly = r.json.friendly_name;
        ch.attrs = r.json.attributes;
      }
      verified++;
    }
  }
  model.uncertainCreates = [];
  // Services first: an unanswered service delete decides about its media.
  for (const [sid, s] of model.services) {
    const r = await L.request(srv, `/v2/Services/${sid}`);
    if (s.uncertain && !s.deleted) {
      if (r.status === 404) s.deleted = true;
      s.uncertain = false;
      if (s.deleted) for (const m of model.media.values()) if (m.svc === sid) m.gone = true;
      continue;
    }
    verified++;
    if (s.deleted && r.status === 200 && !strict) { // a lost delete: back, with its media
      lose('service delete', `delete of service ${sid}`);
      s.deleted = false;
      for (const m of model.media.values()) if (m.svc === sid) m.gone = false;
    } else if (s.deleted) L.expect(r.status === 404, `round ${round}: deleted service ${sid}: ${r.status}`);
    else if (r.status !== 200) {
      lose('service create', `service ${sid} is missing`);
      if (!strict) {
        model.services.delete(sid);
        lostSids.add(sid);
      }
    }
  }
  // Media bytes and metadata.
  for (const m of model.media.values()) {
    const base = `/v1/Services/${m.svc}/Media/${m.sid}`;
    const c = await L.request(srv, base + '/Content');
    verified++;
    // its message's state is settled above (a lost delete brings both back;
    // a lost create leaves the item unattached, and present)
    if (m.msg && lostSids.has(m.msg)) m.msg = null;
    const withMsg = m.msg && model.msgs.has(m.msg) && model.msgs.get(m.msg).deleted;
    if (withMsg && !m.gone && !strict && c.status === 200) {
      // A power loss that took both the create and the delete of its
      // message (the message reads as deleted either way) leaves the
      // upload, synced before them, unattached: present, bytes intact.
      m.msg = null;
    } else if (m.gone || withMsg) {
      L.expect(c.status === 404, `round ${round}: media ${m.sid} of a deleted ${m.gone ? 'service' : 'message'}: ${c.status}`);
      continue;
    }
    if (c.status !== 200 || !c.buf.equals(m.bytes)) {
      lose('media upload', `media ${m.sid}: ${c.status}, ${c.buf.length} bytes, want ${m.bytes.length}`);
      if (!strict) {
        model.media.delete(m.sid); // counted once
        if (c.status === 404) lostSids.add(m.sid);
      }
      continue;
    }
    const r = await L.request(srv, base);
    L.expect(r.status === 200 && r.json.size === m.bytes.length && r.json.filename === m.filename,
      `round ${round}: media ${m.sid} metadata: ${r.text}`);
  }
  // Page tokens issued before the crash: still valid, and list only live
  // messages.
  for (const t of model.tokens) {
    const r = await L.request(srv, t.path);
    verified++;
    if (!L.expect(r.status === 200, `round ${round}: page token ${t.path}: ${r.status} ${r.text.slice(0, 200)}`)) continue;
    for (const it of r.json.messages) {
      const m = model.msgs.get(it.sid);
      L.expect(m && !m.deleted && JSON.stringify(it) === JSON.stringify(JSON.parse(m.json)),
        `round ${round}: page ${t.path} lists ${it.sid} as ${JSON.stringify(it).slice(0, 200)}`);
    }
  }
  if (lost && !strict) {
    console.log(`  lost: ${Object.entries(kinds).map(([k, n]) => `${n} ${k}${n > 1 ? 's' : ''}`).join(', ')}`);
  }
  return lost;
}

// ---- rounds -------------------------------------------------------------------

const WORKERS_STATE = [];
const crashesEverysec = [];
const recoveries = [];

function recoveryLine(srv) {
  const m = /loaded (snapshot-\d+) \(seq (\d+)\) in ([\d.]+) s; replayed (\d+) records.* in ([\d.]+) s/.exec(srv.stderr());
  if (!m) return null;
  return { snap: m[1], seq: Number(m[2]), load: Number(m[3]), records: Number(m[4]), replay: Number(m[5]) };
}

async function setup(dir) {
  const srv = await L.startServer(dir, { args: ['--fsync', 'always', ...SERVER_ARGS] });
  const s = await L.request(srv, '/v2/Services', { method: 'POST', form: { FriendlyName: 'durable' } });
  model.service = s.json.sid;
  for (let i = 0; i < WORKERS; i++) {
    const r = await L.request(srv, `/v2/Services/${model.service}/Channels`, { method: 'POST',
      form: { UniqueName: `w${i}`, FriendlyName: `room ${i}`, Attributes: '{}' } });
    const ch = { sid: r.json.sid, uniq: `w${i}`, friendly: r.json.friendly_name,
      attrs: r.json.attributes, uncertain: null,
      history: [`${r.json.friendly_name}\u0000${r.json.attributes}`] };
    model.channels.push(ch);
    WORKERS_STATE.push({ id: i, ch, mine: [] });
  }
  await srv.kill('SIGKILL');
}

// A power loss after the SIGKILL: the journal keeps what the server knew to
// be synced (CHATSTORE_TEST_SYNCED, test-only: a file and an offset), and
// of what came after, in the file it names, any mix of pages: the server
// writes through a shared mapping, whose dirty pages reach the disk in any
// order, so each 4 KiB page past the offset is either kept as the page
// cache had it or back to zeros (the preallocated space it was). Later
// files (created after the last sync) are emptied. Returns the bytes
// dropped (non-zero bytes zeroed or cut).
function powerCut(dir, syncedFile) {
  const t = fs.readFileSync(syncedFile, 'utf8').trim().split(/\s+/);
  L.expect(t.length === 2 && /^journal-\d+$/.test(t[0]), `synced note: ${t.join(' ')}`);
  const first = Number(t[0].slice(8));
  const off = Number(t[1]);
  L.expect(off >= L.JOURNAL_HEADER, `synced note: offset ${off} is inside the header`);
  let dropped = 0;
  const nonZero = (b, from, to) => {
    let n = 0;
    for (let i = from; i < to; i++) if (b[i]) n++;
    return n;
  };
  for (const j of L.listDir(dir).journals) {
    const f = path.join(dir, j);
    const seq = Number(j.slice(8));
    if (seq < first) continue;
    const b = fs.readFileSync(f);
    if (seq > first) {
      dropped += nonZero(b, 0, b.length);
      fs.truncateSync(f, 0);
      continue;
    }
    for (let pg = Math.floor(off / 4096) * 4096; pg < b.length; pg += 4096) {
      if (rnd() < 0.5) continue; // this page reached the disk
      const from = Math.max(pg, off);
      const to = Math.min(pg + 4096, b.length);
      dropped += nonZero(b, from, to);
      b.fill(0, from, to);
    }
    fs.writeFileSync(f, b);
  }
  return dropped;
}

let lastCrash = { mode: 'always', what: 'setup' }; // what the next restart recovers from

async function round(dir, i, mode, point, power) {
  const args = ['--fsync', mode, ...SERVER_ARGS];
  // Recover, check, then load.
  const c = L.check(dir);
  L.expect(c.status === 0, `round ${i}: chatstore-check before restart: exit ${c.status}\n${c.out}`);
  const t0 = Date.now();
  const synced = path.join(path.dirname(dir), 'synced'); // beside the data directory
  const env = Object.assign(point ? { CHATSTORE_TEST_CRASH: `${point}:2` } : {},
    power ? { CHATSTORE_TEST_SYNCED: synced } : {});
  const srv = await L.startServer(dir, { args, env });
  const startMs = Date.now() - t0;
  const rec = recoveryLine(srv);
  L.expect(rec, `round ${i}: no recovery line on stderr:\n${srv.stderr()}`);
  if (rec) recoveries.push(Object.assign({ startMs }, rec));
  const crashed = lastCrash;
  const lost = await verify(srv, crashed.mode === 'always', i);
  if (crashed.mode !== 'always') crashed.lost = lost;
  const before = acked;
  const stopAt = point ? 6000 : 150 + Math.floor(rnd() * 900);
  const work = Promise.all(WORKERS_STATE.map((w) => worker(srv, w)));
  const timer = setTimeout(() => srv.kill('SIGKILL'), stopAt);
  const x = await srv.exited;
  clearTimeout(timer);
  await work;
  srv.agent.destroy();
  let how = point ? (/test crash at/.test(srv.stderr()) ? `crashed itself at ${point}` : `SIGKILL (${point} not reached)`)
    : `SIGKILL after ${stopAt} ms`;
  if (power) how += `, power loss: ${powerCut(dir, synced)} unsynced journal bytes dropped`;
  lastCrash = { mode, what: `round ${i}` };
  if (mode !== 'always') crashesEverysec.push(lastCrash);
  L.expect(x.signal === 'SIGKILL', `round ${i}: server ended with ${JSON.stringify(x)}\n${srv.stderr()}`);
  if (/FATAL|Sanitizer|runtime error/.test(srv.stderr())) L.fail(`round ${i}: server stderr:\n${srv.stderr()}`);
  console.log(`round ${i} (${mode}): recovered ${rec ? `${rec.snap} + ${rec.records} records in ${startMs} ms` : '?'}` +
    `${crashed.mode === 'always' ? '' : ` (${crashed.what}'s crash lost ${lost} acknowledged changes)`}; ` +
    `${acked - before} changes acknowledged, ${how}`);
  return { lost, reached: point ? /test crash at/.test(srv.stderr()) : null };
}

L.run('server_durable_crash', async () => {
  const root = L.tempDir('crash');
  const dir = path.join(root, 'data');
  console.log(`seed ${SEED} (DURABLE_SEED to repeat), data directory ${dir}`);
  await setup(dir);
  // Every compaction step once, spread over the rounds; the other rounds
  // kill at a random moment.
  const plan = [];
  for (let i = 0; i < ROUNDS; i++) plan.push(i < POINTS.length ? POINTS[i] : null);
  for (let i = plan.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [plan[i], plan[j]] = [plan[j], plan[i]];
  }
  const notReached = [];
  for (let i = 0; i < ROUNDS; i++) {
    const r = await round(dir, i + 1, 'always', plan[i], i % 2 === 1);
    if (plan[i] && !r.reached) notReached.push(plan[i]);
  }
  for (let i = 0; i < EVERYSEC_ROUNDS; i++) await round(dir, ROUNDS + i + 1, 'everysec', null, true);
  // A last clean start and stop.
  const srv = await L.startServer(dir, { args: ['--fsync', 'always', ...SERVER_ARGS] });
  const lost = await verify(srv, lastCrash.mode === 'always', 'final');
  if (lastCrash.mode !== 'always') lastCrash.lost = lost;
  const losses = crashesEverysec.map((c) => c.lost);
  const x = await srv.stop();
  L.expect(x.code === 0, `final SIGTERM: ${JSON.stringify(x)}`);
  const c = L.check(dir);
  L.expect(c.status === 0, `final chatstore-check: exit ${c.status}\n${c.out}`);
  L.expect(notReached.length <= 2, `compaction steps never reached: ${notReached.join(', ')}`);
  const worst = recoveries.reduce((a, b) => (b.startMs > a.startMs ? b : a), recoveries[0]);
  const planned = plan.filter((x) => x).length;
  console.log(`summary: ${ROUNDS} rounds with --fsync always (${planned - notReached.length} of ${POINTS.length} compaction steps crashed at` +
    `${notReached.length ? `; not reached: ${notReached.join(', ')}` : ''}), ${EVERYSEC_ROUNDS} with everysec; ` +
    `${acked} changes acknowledged, ${verified} acknowledged states verified after restarts; ` +
    `everysec rounds (SIGKILL + power loss) lost [${losses.join(', ')}] acknowledged changes, ` +
    `${lostSids.size} acknowledged SIDs among them, none issued again in ${reissueChecked} creates after; slowest restart ${worst ? `${worst.startMs} ms (${worst.snap} + ${worst.records} records)` : '-'}`);
  if (!L.failureCount()) L.rmrf(root);
  else console.log(`data directory kept: ${dir}`);
});
