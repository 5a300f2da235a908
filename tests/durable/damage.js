'use strict';
// Damaged data directories (ctest server_durable_damage):
// (a) the last journal file, whose last record was written after the last
//     sync (the server was killed), cut at every byte offset of that record:
//     the server starts, truncates the file to the last whole record and
//     warns naming the file and the bytes dropped (then appends the record
//     of the SID epoch every start begins); likewise when that record fails
//     its CRC; the zeros of preallocated space after it are the clean end
//     (no warning);
// (b) a byte flipped in the current snapshot: startup refuses, naming the
//     file and the offset (so does chatstore-check); --repair falls back to
//     the previous snapshot and its journal files, losing nothing; with no
//     previous snapshot --repair refuses too;
// (c) a byte flipped in a record of the last journal file below its synced
//     length: startup refuses naming file and offset; --repair keeps the
//     records before it and drops the rest (copied to damaged/);
// (d) writes failing (file size limit, as a full disk): the change is
//     refused with 503, nothing half-written stays in the journal, and the
//     server goes on serving;
// (e) journal file headers: a last journal file whose creation did not
//     finish (empty, or only zeros) is removed with a warning; a damaged
//     header stops startup naming the file (--repair sets the file aside);
//     a data directory of format 1 is refused, even with --repair.
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const L = require('./lib');

const QUIET = ['--compact-min-bytes', '1000000000'];

// The journal record op of cs_store_new_epoch (docs/journal.md).
const EPOCH_OP = 12;

async function post(srv, p, form) {
  const r = await L.request(srv, p, { method: 'POST', form });
  if (r.status !== 201) throw new Error(`POST ${p}: ${r.status} ${r.text}`);
  return r.json;
}

// A directory with a previous and a current snapshot, and a last journal
// file whose last three records are the creates of msgs.tail (a, b, c): a
// and b synced by a clean stop, c written by a server killed (SIGKILL)
// after it, so c lies past the synced length, followed by the zeros of the
// file's preallocated space.
async function build(dir) {
  let srv = await L.startServer(dir, { args: ['--fsync', 'no', '--compact-min-bytes', '3000', '--compact-ratio', '0.1'] });
  const svc = (await post(srv, '/v2/Services', { FriendlyName: 'damage' })).sid;
  const ch = (await post(srv, `/v2/Services/${svc}/Channels`, { UniqueName: 'room' })).sid;
  const base = `/v2/Services/${svc}/Channels/${ch}/Messages`;
  const early = [];
  for (let i = 0; i < 80; i++) {
    early.push((await post(srv, base, { Body: `early ${i}` })).sid);
    if (i % 20 === 19) await L.sleep(150); // let compactions run
  }
  await L.sleep(300);
  L.expect((await srv.stop()).code === 0, 'build: stop');
  const d = L.listDir(dir);
  L.expect(/previous snapshot-\d+/.test(d.manifest || ''), `build: no previous snapshot:\n${d.manifest}`);
  srv = await L.startServer(dir, { args: ['--fsync', 'no', ...QUIET] });
  const tail = [];
  for (const b of ['a', 'b']) tail.push((await post(srv, base, { Body: b })).sid);
  L.expect((await srv.stop()).code === 0, 'build: stop 2');
  srv = await L.startServer(dir, { args: ['--fsync', 'no', ...QUIET] });
  tail.push((await post(srv, base, { Body: 'c' })).sid);
  await srv.kill('SIGKILL');
  srv.agent.destroy();
  return { svc, ch, base, early, tail };
}

// Fetches each sid: { sid: status }.
async function statuses(srv, base, sids) {
  const out = {};
  for (const s of sids) out[s] = (await L.request(srv, `${base}/${s}`)).status;
  return out;
}

function flip(file, off) {
  const b = fs.readFileSync(file);
  b[off] ^= 0x10;
  fs.writeFileSync(file, b);
}

async function tornTail(root, src, m) {
  const { journals } = L.listDir(src);
  const last = journals[journals.length - 1];
  const srcFile = path.join(src, last);
  const fr = L.frames(srcFile);
  const f = fr[fr.length - 1];
  const d = L.syncedLength(srcFile);
  L.expect(d === f.off, `${last}: synced length ${d}, the last record (c) starts at ${f.off}`);
  const size = fs.statSync(srcFile).size;
  L.expect(size > f.end, `${last}: ${size} bytes, no preallocated space after its last record at ${f.end}`);
  // The zeros after c: the clean end, no warning, cut off at startup.
  {
    const dir = path.join(root, 'zeros');
    L.copyDir(src, dir);
    const c = L.check(dir);
    L.expect(c.status === 0 && /zeros +\d+ byte/.test(c.out) && !/warning/.test(c.out),
      `zeros: chatstore-check exit ${c.status}\n${c.out}`);
    const srv = await L.startServer(dir, { args: ['--fsync', 'no', ...QUIET] });
    L.expect(!/warning/.test(srv.stderr()), `zeros: unexpected warning:\n${srv.stderr()}`);
    const st = await statuses(srv, m.base, m.tail);
    L.expect(m.tail.every((t) => st[t] === 200), `zeros: tail messages ${JSON.stringify(st)}`);
    L.expect((await srv.stop()).code === 0, 'zeros: stop');
    // Cut to its last record: c, then the record of the SID epoch that
    // every start begins (op 12).
    const after = L.frames(path.join(dir, last));
    const e = after[after.length - 1];
    L.expect(after.length >= 2 && after[after.length - 2].off === f.off && e.op === EPOCH_OP &&
      fs.statSync(path.join(dir, last)).size === e.end, `zeros: file not cut to c and the epoch record`);
    L.rmrf(dir);
  }
  // A copy without the zeros, to cut.
  const trimmed = path.join(root, 'trimmed');
  L.copyDir(src, trimmed);
  fs.truncateSync(path.join(trimmed, last), f.end);
  const bytes = fs.readFileSync(path.join(trimmed, last));
  let n = 0;
  // Every cut inside the last frame; the cut at its start removes it whole
  // (nothing torn: no warning). The bytes dropped are those of the cut
  // record up to its last non-zero byte (zeros are unwritten space).
  for (let cut = f.off; cut < f.end; cut++) {
    const dir = path.join(root, `cut-${cut}`);
    L.copyDir(trimmed, dir);
    fs.truncateSync(path.join(dir, last), cut);
    let dataEnd = cut;
    while (dataEnd > f.off && bytes[dataEnd - 1] === 0) dataEnd--;
    const c = L.check(dir);
    L.expect(c.status === 0, `cut ${cut}: chatstore-check exit ${c.status}\n${c.out}`);
    const srv = await L.startServer(dir, { args: ['--fsync', 'no', ...QUIET] });
    const err = srv.stderr();
    if (dataEnd > f.off) {
      const want = new RegExp(`warning: ${dir}/${last}: .* at offset ${f.off} \\(synced length ${d}\\): truncated to the last whole record, dropped ${dataEnd - f.off} bytes`);
      L.expect(want.test(err), `cut ${cut}: no warning naming ${last} and ${dataEnd - f.off} bytes:\n${err}`);
    } else {
      L.expect(!/warning/.test(err), `cut ${cut}: unexpected warning:\n${err}`);
    }
    const st = await statuses(srv, m.base, m.tail);
    L.expect(st[m.tail[0]] === 200 && st[m.tail[1]] === 200 && st[m.tail[2]] === 404,
      `cut ${cut}: tail messages ${JSON.stringify(st)}`);
    L.expect((await srv.stop()).code === 0, `cut ${cut}: stop`);
    // Truncated to the last whole record; then the start appended its
    // new-epoch record (a 62-byte record of op 12, docs/journal.md).
    const after = fs.readFileSync(path.join(dir, last));
    L.expect(after.length === f.off + 4 + 62 && after.readUInt32LE(f.off) === 62 && after[f.off + 5] === 12,
      `cut ${cut}: file not truncated to ${f.off} (then the epoch record): ${after.length} bytes`);
    L.rmrf(dir);
    n++;
  }
  // The final record whole but failing its CRC (past the synced length: a
  // torn end, not damage).
  {
    const dir = path.join(root, 'crc');
    L.copyDir(trimmed, dir);
    flip(path.join(dir, last), f.off + 4 + 20);
    const srv = await L.startServer(dir, { args: ['--fsync', 'no', ...QUIET] });
    L.expect(new RegExp(`warning: .*fails its checksum at offset ${f.off} \\(synced length ${d}\\)`).test(srv.stderr()) &&
      srv.stderr().includes(`${dir}/${last}`), `crc: no warning:\n${srv.stderr()}`);
    const st = await statuses(srv, m.base, m.tail);
    L.expect(st[m.tail[1]] === 200 && st[m.tail[2]] === 404, `crc: ${JSON.stringify(st)}`);
    L.expect((await srv.stop()).code === 0, 'crc: stop');
    L.rmrf(dir);
  }
  L.rmrf(trimmed);
  console.log(`(a) torn tail: ${last} (synced up to its last record) cut at each of the ${n} offsets of that record, and that record failing its CRC: recovered with warnings; the zeros of its preallocated space after it: the clean end, no warning`);
}

async function snapshotDamage(root, src, m) {
  const { manifest } = L.listDir(src);
  const cur = /snapshot (snapshot-\d+)/.exec(manifest)[1];
  const prev = /previous (snapshot-\d+)/.exec(manifest)[1];
  const size = fs.statSync(path.join(src, cur)).size;
  // Offsets across the image: the header, blocks, the end.
  const offs = [0, 9, 40, 130, Math.floor(size / 3), Math.floor(size / 2), size - 20, size - 1];
  for (const off of offs) {
    const dir = path.join(root, `snap-${off}`);
    L.copyDir(src, dir);
    flip(path.join(dir, cur), off);
    const c = L.check(dir);
    L.expect(c.status === 1 && new RegExp(`${cur}: damaged at offset \\d+: `).test(c.out),
      `snapshot flip at ${off}: chatstore-check exit ${c.status}\n${c.out}`);
    if (off !== offs[4] && off !== 0) {
      L.rmrf(dir);
      continue;
    }
    // The server refuses ...
    const bad = await L.startServer(dir, { args: ['--fsync', 'no', ...QUIET], expectFail: true });
    const x = await bad.exited;
    const m1 = new RegExp(`${dir}/${cur}: damaged at offset (\\d+): (.+)`).exec(bad.stderr());
    L.expect(x.code !== 0 && m1 && Number(m1[1]) <= size,
      `snapshot flip at ${off}: startup did not refuse naming file and offset (${JSON.stringify(x)}):\n${bad.stderr()}`);
    L.expect(/--repair to fall back to/.test(bad.stderr()), `snapshot flip: no --repair hint:\n${bad.stderr()}`);
    // ... --repair falls back to the previous snapshot and loses nothing.
    const srv = await L.startServer(dir, { args: ['--fsync', 'no', '--repair', ...QUIET] });
    L.expect(srv.stderr().includes(`repair: fell back to ${prev}`), `repair: ${srv.stderr()}`);
    const st = await statuses(srv, m.base, [...m.early, ...m.tail]);
    const missing = Object.entries(st).filter(([, v]) => v !== 200);
    L.expect(!missing.length, `repair after snapshot damage lost ${missing.length} messages`);
    L.expect((await srv.stop()).code === 0, 'repair: stop');
    L.expect(fs.readdirSync(path.join(dir, 'damaged')).some((n) => n.startsWith(cur)),
      'repair: the damaged snapshot is not in damaged/');
    const c2 = L.check(dir);
    L.expect(c2.status === 0, `after repair: chatstore-check exit ${c2.status}\n${c2.out}`);
    if (m1) console.log(`(b) snapshot byte ${off} flipped: refused ("${cur}: damaged at offset ${m1[1]}: ${m1[2]}"); --repair fell back to ${prev}, ${Object.keys(st).length} messages intact`);
    L.rmrf(dir);
  }
  // Only snapshot-0, damaged: nothing to fall back to.
  const dir = path.join(root, 'snap0');
  let srv = await L.startServer(dir, { args: ['--fsync', 'no', ...QUIET] });
  await post(srv, '/v2/Services', { FriendlyName: 'x' });
  await srv.stop();
  flip(path.join(dir, 'snapshot-0'), 50);
  srv = await L.startServer(dir, { args: ['--fsync', 'no', '--repair', ...QUIET], expectFail: true });
  const x = await srv.exited;
  L.expect(x.code !== 0 && /cannot be repaired/.test(srv.stderr()),
    `damaged snapshot-0 with --repair: ${JSON.stringify(x)}\n${srv.stderr()}`);
  L.rmrf(dir);
}

async function journalDamage(root, src, m) {
  const { journals } = L.listDir(src);
  const last = journals[journals.length - 1];
  // (the records of the SID epochs that starts began are left out)
  const fr = L.frames(path.join(src, last)).filter((x) => x.op !== EPOCH_OP);
  L.expect(fr.length >= 3, `${last} has ${fr.length} records`);
  // The record of tail[0] (third from the end): a body byte, then its
  // length field.
  const f = fr[fr.length - 3];
  for (const [what, off] of [['payload', f.off + 4 + 30], ['length', f.off + 1]]) {
    const dir = path.join(root, `journal-${what}`);
    L.copyDir(src, dir);
    flip(path.join(dir, last), off);
    const c = L.check(dir);
    L.expect(c.status === 1 && c.out.includes(`${last}: damaged at offset ${f.off}`),
      `journal ${what} flip: chatstore-check exit ${c.status}\n${c.out}`);
    const bad = await L.startServer(dir, { args: ['--fsync', 'no', ...QUIET], expectFail: true });
    const x = await bad.exited;
    const re = new RegExp(`${dir}/${last}: damaged at offset ${f.off}: (.+)`);
    const m1 = re.exec(bad.stderr());
    L.expect(x.code !== 0 && m1, `journal ${what} flip: startup did not refuse naming ${last} and offset ${f.off}:\n${bad.stderr()}`);
    const srv = await L.startServer(dir, { args: ['--fsync', 'no', '--repair', ...QUIET] });
    const rep = /repair: kept (\S+) up to offset (\d+)/.exec(srv.stderr());
    L.expect(rep && Number(rep[2]) === f.off, `journal ${what}: repair message:\n${srv.stderr()}`);
    const st = await statuses(srv, m.base, [...m.early, ...m.tail]);
    const early = m.early.filter((s) => st[s] === 200).length;
    L.expect(early === m.early.length && st[m.tail[0]] === 404 && st[m.tail[1]] === 404 && st[m.tail[2]] === 404,
      `journal ${what}: after repair ${early} of ${m.early.length} early messages, tail ${JSON.stringify(m.tail.map((s) => st[s]))}`);
    // New changes continue the repaired journal.
    const again = await post(srv, m.base, { Body: 'after repair' });
    L.expect((await srv.stop()).code === 0, 'stop after repair');
    const srv2 = await L.startServer(dir, { args: ['--fsync', 'no', ...QUIET] });
    L.expect((await L.request(srv2, `${m.base}/${again.sid}`)).status === 200, 'message after repair lost');
    await srv2.stop();
    const c2 = L.check(dir);
    L.expect(c2.status === 0, `journal ${what}: chatstore-check after repair: ${c2.status}\n${c2.out}`);
    if (m1) console.log(`(c) journal ${what} byte flipped: refused ("${last}: damaged at offset ${f.off}: ${m1[1]}"); --repair kept the records before it`);
    L.rmrf(dir);
  }
}

// The file size limit makes the journal's writes fail as a full disk would.
async function writeErrors(root) {
  const dir = path.join(root, 'full');
  let srv = await L.startServer(dir, { args: ['--fsync', 'no', ...QUIET] });
  const svc = (await post(srv, '/v2/Services', { FriendlyName: 'full' })).sid;
  const ch = (await post(srv, `/v2/Services/${svc}/Channels`, { UniqueName: 'room' })).sid;
  await srv.stop();
  const base = `/v2/Services/${svc}/Channels/${ch}/Messages`;
  // sh: ignore SIGXFSZ (so write() fails with EFBIG), limit files to 64 KiB.
  const proc = spawn('sh', ['-c', 'trap "" XFSZ; ulimit -f 128; exec "$@"', 'sh', process.env.CHATSTORE_SERVER_BIN,
    '--listen', '127.0.0.1:0', '--account-sid', L.ACCOUNT, '--auth-token', L.TOKEN, '--data-dir', dir,
    '--fsync', 'always', '--compact-min-bytes', '8000', '--compact-ratio', '0.1'],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no start')), 20000);
    proc.stdout.on('data', (d) => { out += d; if (/listening on/.test(out)) { clearTimeout(t); resolve(); } });
  });
  const port = Number(/127\.0\.0\.1:(\d+)/.exec(out)[1]);
  srv = { port, agent: new (require('node:http').Agent)({ keepAlive: true }) };
  const ok = [];
  let refused = 0;
  const body = 'x'.repeat(2000);
  // Compaction runs on its own thread: on a loaded machine it may lag the
  // requests, so the test waits for each outcome it needs (bounded) rather
  // than betting on the timing.
  const waitFor = async (re, ms) => {
    for (const t0 = Date.now(); !re.test(err) && Date.now() - t0 < ms;) await new Promise((r) => setTimeout(r, 50));
  };
  // Compactions succeed while the snapshot is under the limit, then
  // writing it fails (and the journal keeps everything); then the journal
  // file itself reaches the limit.
  for (let i = 0; i < 200 && refused < 5; i++) {
    if (i === 8) await waitFor(/compaction: snapshot-\d+ /, 15000); // 16 KB journaled: past 8000 bytes
    const r = await L.request(srv, base, { method: 'POST', form: { Body: `${i} ${body}` } });
    if (r.status === 201) ok.push(r.json.sid);
    else {
      L.expect(r.status === 503 && r.json && r.json.status === 503, `full: ${r.status} ${r.text}`);
      refused++;
    }
  }
  const up = await L.request(srv, `/v1/Services/${svc}/Media`, { method: 'POST', body: Buffer.alloc(100000, 7),
    headers: { 'Content-Type': 'image/png' } });
  L.expect(up.status === 503, `full: media upload ${up.status} ${up.text.slice(0, 200)}`);
  L.expect(refused >= 5 && ok.length > 10, `full: ${ok.length} accepted, ${refused} refused`);
  const rd = await L.request(srv, `${base}/${ok[0]}`);
  L.expect(rd.status === 200, 'full: reads still served');
  srv.agent.destroy();
  await waitFor(/compaction: cannot write .*snapshot-\d+\.tmp/, 15000);
  proc.kill('SIGTERM');
  const x = await exited;
  L.expect(x.code === 0, `full: SIGTERM: ${JSON.stringify(x)}\n${err}`);
  L.expect(/compaction: snapshot-\d+ /.test(err) &&
    /compaction: cannot write .*snapshot-\d+\.tmp\.[\d.]+: File too large; the journal keeps everything/.test(err),
    `full: expected compactions to succeed, then fail:\n${err}`);
  L.expect(!fs.readdirSync(dir).some((n) => n.includes('.tmp')), 'full: a failed snapshot left its .tmp file');
  const c = L.check(dir);
  L.expect(c.status === 0 && !/torn/.test(c.out), `full: chatstore-check ${c.status}\n${c.out}`);
  srv = await L.startServer(dir, { args: ['--fsync', 'no', ...QUIET] });
  const st = await statuses(srv, base, ok);
  L.expect(Object.values(st).every((v) => v === 200), 'full: an accepted message is missing');
  const list = await L.request(srv, `${base}?PageSize=1000`);
  L.expect(list.json.messages.length === ok.length, `full: ${list.json.messages.length} listed, ${ok.length} accepted`);
  await srv.stop();
  console.log(`(d) writes failing (EFBIG): compactions failed and were retried, ${refused} creates and a media upload refused with 503, ${ok.length} accepted all recovered, no partial record left`);
  L.rmrf(dir);
}

async function headers(root, src, m) {
  const { journals } = L.listDir(src);
  const last = journals[journals.length - 1];
  const next = Number(last.slice(8)) + L.frames(path.join(src, last)).length;
  for (const [what, bytes] of [['empty', 0], ['zeros', 3 * 4096]]) {
    const dir = path.join(root, `unborn-${what}`);
    L.copyDir(src, dir);
    fs.writeFileSync(path.join(dir, `journal-${next}`), Buffer.alloc(bytes));
    const c = L.check(dir);
    L.expect(c.status === 0 && /creation did not finish/.test(c.out), `unborn ${what}: chatstore-check exit ${c.status}\n${c.out}`);
    const srv = await L.startServer(dir, { args: ['--fsync', 'no', ...QUIET] });
    L.expect(new RegExp(`warning: ${dir}/journal-${next}: .*creation did not finish: removed`).test(srv.stderr()),
      `unborn ${what}: no warning:\n${srv.stderr()}`);
    const st = await statuses(srv, m.base, m.tail);
    L.expect(m.tail.every((t) => st[t] === 200), `unborn ${what}: tail ${JSON.stringify(st)}`);
    const again = await post(srv, m.base, { Body: 'after' });
    L.expect((await srv.stop()).code === 0, `unborn ${what}: stop`);
    const c2 = L.check(dir);
    L.expect(c2.status === 0 && c2.out.includes(`seq ${next + 1}:`), `unborn ${what}: check after\n${c2.out}`);
    L.expect(again.sid && !fs.existsSync(path.join(dir, `journal-${next}`)), `unborn ${what}: files ${fs.readdirSync(dir)}`);
    L.rmrf(dir);
  }
  {
    const dir = path.join(root, 'header');
    L.copyDir(src, dir);
    flip(path.join(dir, last), 20); // its first seq
    const c = L.check(dir);
    L.expect(c.status === 1 && c.out.includes(`${last}: damaged at offset 0: header fails its checksum`),
      `header flip: chatstore-check exit ${c.status}\n${c.out}`);
    const bad = await L.startServer(dir, { args: ['--fsync', 'no', ...QUIET], expectFail: true });
    const x = await bad.exited;
    L.expect(x.code !== 0 && bad.stderr().includes(`${dir}/${last}: damaged at offset 0: header fails its checksum`) &&
      /--repair to set this file aside/.test(bad.stderr()), `header flip: startup did not refuse:\n${bad.stderr()}`);
    const srv = await L.startServer(dir, { args: ['--fsync', 'no', '--repair', ...QUIET] });
    L.expect(srv.stderr().includes(`repair: moved ${last} to damaged/`), `header flip: repair:\n${srv.stderr()}`);
    const st = await statuses(srv, m.base, m.tail);
    L.expect(m.tail.every((t) => st[t] === 404), `header flip: tail ${JSON.stringify(st)}`);
    await post(srv, m.base, { Body: 'after repair' });
    L.expect((await srv.stop()).code === 0, 'header flip: stop');
    const c2 = L.check(dir);
    L.expect(c2.status === 0, `header flip: chatstore-check after repair: ${c2.status}\n${c2.out}`);
    L.rmrf(dir);
  }
  {
    const dir = path.join(root, 'format1');
    L.copyDir(src, dir);
    const mf = path.join(dir, 'MANIFEST');
    fs.writeFileSync(mf, fs.readFileSync(mf, 'utf8').replace('chatstore data directory 2', 'chatstore data directory 1'));
    const c = L.check(dir);
    L.expect(c.status === 1 && /format 1/.test(c.out), `format 1: chatstore-check exit ${c.status}\n${c.out}`);
    for (const extra of [[], ['--repair']]) {
      const bad = await L.startServer(dir, { args: ['--fsync', 'no', ...extra, ...QUIET], expectFail: true });
      const x = await bad.exited;
      L.expect(x.code !== 0 && /MANIFEST: data directory format 1/.test(bad.stderr()),
        `format 1 ${extra.join(' ')}: startup did not refuse:\n${bad.stderr()}`);
    }
    L.expect(L.listDir(dir).journals.length === journals.length && !fs.existsSync(path.join(dir, 'damaged')),
      'format 1: files changed');
    L.rmrf(dir);
  }
  console.log('(e) headers: unfinished last journal files removed with a warning; a damaged header refused (--repair set the file aside); format 1 refused, even with --repair');
}

L.run('server_durable_damage', async () => {
  const root = L.tempDir('damage');
  const src = path.join(root, 'src');
  const m = await build(src);
  await tornTail(root, src, m);
  await snapshotDamage(root, src, m);
  await journalDamage(root, src, m);
  await writeErrors(root);
  await headers(root, src, m);
  if (!L.failureCount()) L.rmrf(root);
  else console.log(`kept: ${root}`);
});
