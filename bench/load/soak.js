'use strict';
// Load generator of bench/load/soak.sh: a steady mixed workload at a fixed
// request rate against a running chatstore-server, with the server's RSS,
// open file descriptors and CPU, and the latency of the requests, sampled
// per window. Node built-in modules only.
//
//   node soak.js ORIGIN ACCOUNT_SID AUTH_TOKEN SERVER_PID SECONDS RATE
//                WINDOW_SECONDS OUT.csv OUT-summary.txt [DATA_DIR]
//
// Open loop: request i is due at start + i / RATE whatever the replies do,
// and its latency counts from when it was due, not from when a socket was
// free to send it, so a stall of the server also counts for the requests it
// held back. (The second request of a two-step operation, the message that
// carries a just uploaded media item, counts from when the upload answered.)
//
// The mix, per request due: message create (a text body of 20-400
// characters), delete of a channel's oldest message, fetch, page of messages (asc or desc, PageSize 20 or 50,
// half of the time the next page of that channel's last page, by its page
// token), update (body or attributes), fetch of a deleted message (404
// expected), media upload (10-100 KiB, then a message with that MediaSid;
// the message is deleted later like any other), media content fetch, and now
// and then a channel created with a few messages and deleted again. Creates
// and deletes have the same weight and each channel's count stays between
// TARGET and TARGET + SLACK (a create above turns into a delete, a delete
// below into a create), so the store holds a steady number of messages
// while the oldest keep going. The second steps (the message of an upload,
// the content after its message, the churn channel's messages and delete)
// come on top of RATE, about 3 % more.
// Any reply other than the one expected (2xx; 404 for the deleted message)
// is an error, counted per window and listed by operation and status.
const http = require('http');
const fs = require('fs');

const [origin, account, token, pidArg, secsArg, rateArg, winArg, csvPath,
       summaryPath, dataDir] = process.argv.slice(2);
if (!summaryPath) {
    console.error('usage: node soak.js ORIGIN ACCOUNT_SID AUTH_TOKEN PID ' +
                  'SECONDS RATE WINDOW OUT.csv OUT-summary.txt [DATA_DIR]');
    process.exit(2);
}
const pid = Number(pidArg), secs = Number(secsArg), rate = Number(rateArg);
const win = Number(winArg);
const url = new URL(origin);
const auth = 'Basic ' + Buffer.from(account + ':' + token).toString('base64');
// Keep-alive connections used in turn (fifo), so none sits idle into the
// server's idle timeout (30 s) and meets its close while sending; one idle
// for 10 s anyway is closed by this side.
const agent = new http.Agent({ keepAlive: true, maxSockets: 8, scheduling: 'fifo',
                               timeout: 10000 });

// 8 channels, each between TARGET and TARGET + SLACK live messages
const SERVICES = 2, CHANNELS = 4, TARGET = 500, SLACK = 50;
// weights per request due (sum 100; SOAK_MEDIA_PCT=0: no media uploads,
// their share goes to channel fetches)
const MEDIA = process.env.SOAK_MEDIA_PCT !== undefined ? Number(process.env.SOAK_MEDIA_PCT) : 0.5;
const MIX = [
    ['create', 20], ['delete', 20], ['fetch', 20], ['page', 20], ['update', 10],
    ['fetch_deleted', 3], ['media', MEDIA], ['media_content', 1],
    ['channel_churn', 0.25], ['fetch_channel', 5.75 - MEDIA],
];

// Deterministic pseudo-random numbers (xorshift32): the same mix every run.
let seed = 0x9e3779b9;
function rnd() {
    seed ^= seed << 13; seed >>>= 0;
    seed ^= seed >>> 17;
    seed ^= seed << 5; seed >>>= 0;
    return seed / 4294967296;
}
const pick = (a) => a[Math.floor(rnd() * a.length)];
const words = ('lorem ipsum dolor sit amet consectetur adipiscing elit sed do ' +
    'eiusmod tempor incididunt ut labore et dolore magna aliqua é ü 你好 🎉').split(' ');
function text(min, max) {
    const n = min + Math.floor(rnd() * (max - min));
    const s = [];
    while (s.length < n) s.push(...pick(words), ' ');
    return s.slice(0, n).join(''); // n code points
}
const form = (o) => Object.entries(o)
    .map(([k, v]) => encodeURIComponent(k) + '=' + encodeURIComponent(v)).join('&');

function request(method, path, body, ctype) {
    return new Promise((resolve) => {
        const headers = { Authorization: auth };
        if (body !== undefined) {
            headers['Content-Type'] = ctype || 'application/x-www-form-urlencoded';
            headers['Content-Length'] = Buffer.byteLength(body);
        }
        const rq = http.request({ host: url.hostname, port: url.port, method, path,
                                  headers, agent }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode,
                                          body: Buffer.concat(chunks) }));
            res.on('error', (e) => resolve({ status: 0, code: e.code, body: Buffer.alloc(0) }));
        });
        rq.on('error', (e) => resolve({ status: 0, code: e.code, body: Buffer.alloc(0) }));
        if (body !== undefined) rq.write(body);
        rq.end();
    });
}
const json = (r) => { try { return JSON.parse(r.body.toString()); } catch { return null; } };
const pathOf = (u) => { const p = new URL(u); return p.pathname + p.search; };

// ---- state (from replies only) -------------------------------------------
const channels = []; // {svc, sid, live: [{sid, media}], next: path|null}
const deleted = [];  // ring of recently deleted message paths
const services = [];
let liveMessages = 0, mediaBytes = 0, mediaCount = 0;

// ---- measurements ----------------------------------------------------------
const now = () => Number(process.hrtime.bigint()) / 1e6; // ms
let winLat = [], winRt = [], winErr = 0, winSent = 0, winLag = 0;
const allLat = {};          // op -> latencies (ms)
const errors = {};          // "op status" -> count
let inFlight = 0, sentTotal = 0, doneTotal = 0, errTotal = 0;

function record(op, t0, ts, r, expect) {
    const t = now(), ms = t - t0;
    doneTotal++;
    winLat.push(ms);
    winRt.push(t - ts);
    (allLat[op] = allLat[op] || []).push(ms);
    const ok = expect ? r.status === expect : r.status >= 200 && r.status < 300;
    if (!ok) {
        winErr++; errTotal++;
        const k = op + ' ' + (r.status || r.code || 'no reply');
        errors[k] = (errors[k] || 0) + 1;
    }
    return ok;
}
async function call(op, t0, method, path, body, ctype, expect) {
    inFlight++;
    const ts = now();
    const r = await request(method, path, body, ctype);
    inFlight--;
    return record(op, t0, ts, r, expect) ? r : null;
}

const msgsPath = (c) => `/v2/Services/${c.svc}/Channels/${c.sid}/Messages`;

async function createMessage(c, t0, extra, op) {
    const r = await call(op || 'create', t0, 'POST', msgsPath(c),
                         form(Object.assign({ From: 'user' + Math.floor(rnd() * 50) }, extra)));
    const j = r && json(r);
    if (j && j.sid) {
        c.live.push({ sid: j.sid, media: !!j.media });
        liveMessages++;
    }
}
async function deleteOldest(c, t0) {
    const m = c.live.shift();
    if (!m) return;
    liveMessages--;
    const p = msgsPath(c) + '/' + m.sid;
    if (await call('delete', t0, 'DELETE', p)) {
        deleted.push(p);
        if (deleted.length > 256) deleted.shift();
    }
}
// a message far from the deletes (the newer half), so no delete races it
function recent(c) {
    if (c.live.length < 4) return null;
    const h = c.live.length >> 1;
    return c.live[h + Math.floor(rnd() * (c.live.length - h))];
}

async function op(name, t0) {
    const c = pick(channels);
    switch (name) {
    case 'create':
        if (c.live.length >= TARGET + SLACK) return deleteOldest(c, t0);
        return createMessage(c, t0, { Body: text(20, 400) });
    case 'delete':
        if (c.live.length <= TARGET) return createMessage(c, t0, { Body: text(20, 400) });
        return deleteOldest(c, t0);
    case 'fetch': {
        const m = recent(c);
        if (!m) return createMessage(c, t0, { Body: text(20, 400) });
        return call('fetch', t0, 'GET', msgsPath(c) + '/' + m.sid);
    }
    case 'page': {
        let p = c.next;
        if (!p || rnd() < 0.5)
            p = msgsPath(c) + `?PageSize=${rnd() < 0.5 ? 20 : 50}` +
                (rnd() < 0.5 ? '&Order=desc' : '');
        c.next = null;
        const r = await call(p.includes('PageToken') ? 'page_next' : 'page', t0, 'GET', p);
        const j = r && json(r);
        if (j && j.meta && j.meta.next_page_url) c.next = pathOf(j.meta.next_page_url);
        return;
    }
    case 'update': {
        const m = recent(c);
        if (!m) return createMessage(c, t0, { Body: text(20, 400) });
        const f = m.media || rnd() < 0.3
            ? { Attributes: JSON.stringify({ n: Math.floor(rnd() * 1e6), tag: text(5, 30) }) }
            : { Body: text(20, 400) };
        return call('update', t0, 'POST', msgsPath(c) + '/' + m.sid, form(f));
    }
    case 'fetch_deleted':
        if (!deleted.length) return call('fetch_channel', t0, 'GET', `/v2/Services/${c.svc}/Channels/${c.sid}`);
        return call('fetch_deleted', t0, 'GET', pick(deleted), undefined, undefined, 404);
    case 'media': {
        const n = 10240 + Math.floor(rnd() * (90 * 1024));
        const body = Buffer.alloc(n, Math.floor(rnd() * 256));
        const r = await call('media_upload', t0, 'POST',
                             `/v1/Services/${c.svc}/Media?Filename=soak.png`, body, 'image/png');
        const j = r && json(r);
        if (!j || !j.sid) return;
        mediaBytes += n; mediaCount++;
        return createMessage(c, now(), { MediaSid: j.sid }, 'create_media');
    }
    case 'media_content': {
        const m = c.live.slice(c.live.length >> 1).find((x) => x.media);
        if (!m) return call('fetch_channel', t0, 'GET', `/v2/Services/${c.svc}/Channels/${c.sid}`);
        const r = await call('fetch', t0, 'GET', msgsPath(c) + '/' + m.sid);
        const j = r && json(r);
        if (j && j.media)
            await call('media_content', now(), 'GET',
                       `/v1/Services/${c.svc}/Media/${j.media.sid}/Content`);
        return;
    }
    case 'channel_churn': {
        const svc = pick(services);
        const r = await call('channel_create', t0, 'POST', `/v2/Services/${svc}/Channels`,
                             form({ FriendlyName: 'churn ' + text(5, 20) }));
        const j = r && json(r);
        if (!j || !j.sid) return;
        const t = { svc, sid: j.sid, live: [] };
        for (let i = 0; i < 5; i++) await createMessage(t, now(), { Body: text(20, 400) });
        await new Promise((res) => setTimeout(res, 2000));
        await call('channel_delete', now(), 'DELETE', `/v2/Services/${svc}/Channels/${t.sid}`);
        liveMessages -= t.live.length;
        return;
    }
    default:
        return call('fetch_channel', t0, 'GET', `/v2/Services/${c.svc}/Channels/${c.sid}`);
    }
}

// ---- sampling -----------------------------------------------------------------
function procSample() {
    const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = Number((st.match(/VmRSS:\s+(\d+)/) || [0, 0])[1]);
    const fds = fs.readdirSync(`/proc/${pid}/fd`).length;
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuTicks = Number(f[11]) + Number(f[12]); // utime + stime
    let dirBytes = 0, compactions = 0;
    if (dataDir) {
        for (const e of fs.readdirSync(dataDir, { recursive: true })) {
            try { const s = fs.statSync(dataDir + '/' + e); if (s.isFile()) dirBytes += s.size; } catch {}
        }
        // compactions the server has logged so far (soak.sh's SOAK_SERVER_LOG)
        try {
            const log = fs.readFileSync(process.env.SOAK_SERVER_LOG || '', 'utf8');
            compactions = (log.match(/^chatstore-server: compaction: snapshot-/gm) || []).length;
        } catch {}
    }
    // the whole machine (shared): 1-minute load average, busy and steal ticks
    const load1 = Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
    const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = cpu[3] + cpu[4], all = cpu.reduce((a, b) => a + b, 0);
    return { rss, fds, cpuTicks, dirBytes, compactions, load1, idle, all, steal: cpu[7] || 0 };
}
function pct(sorted, p) {
    if (!sorted.length) return 0;
    return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * p / 100) - 1)];
}
const TICK = 100; // clock ticks per second (USER_HZ)
const rows = [];
const header = 't_s,rss_kib,fds,cpu_pct,sent,done,errors,p50_ms,p99_ms,max_ms,late_max_ms,' +
    'reply_p50_ms,reply_p99_ms,' +
    'in_flight,live_messages,media_uploaded_kib,machine_load1,machine_busy_pct,machine_steal_pct' +
    (dataDir ? ',data_dir_kib,compactions' : '');
fs.writeFileSync(csvPath, header + '\n');

async function main() {
    // setup: services, channels, then fill every channel to TARGET messages
    // (not timed; the samples start with a full store)
    for (let s = 0; s < SERVICES; s++) {
        const r = await request('POST', '/v2/Services', form({ FriendlyName: 'soak ' + s }));
        const j = json(r);
        if (!j || !j.sid) throw new Error('service create: ' + r.status + ' ' + r.body);
        services.push(j.sid);
        for (let k = 0; k < CHANNELS; k++) {
            const rc = await request('POST', `/v2/Services/${j.sid}/Channels`,
                                     form({ UniqueName: 'room' + k }));
            const jc = json(rc);
            if (!jc || !jc.sid) throw new Error('channel create: ' + rc.status + ' ' + rc.body);
            channels.push({ svc: j.sid, sid: jc.sid, live: [], next: null });
        }
    }
    await Promise.all(channels.map(async (c) => {
        while (c.live.length < TARGET) {
            const r = await request('POST', msgsPath(c), form({ From: 'fill', Body: text(20, 400) }));
            const j = json(r);
            if (!j || !j.sid) throw new Error('fill: ' + r.status + ' ' + r.body);
            c.live.push({ sid: j.sid, media: false });
            liveMessages++;
        }
    }));

    const total = MIX.reduce((a, [, w]) => a + w, 0);
    const choose = () => {
        let x = rnd() * total;
        for (const [n, w] of MIX) { if ((x -= w) < 0) return n; }
        return MIX[0][0];
    };
    const start = now();
    let due = 0; // requests issued so far
    let prev = procSample(), prevT = start;
    const sample = () => {
        const t = now();
        const s = procSample();
        const lat = winLat.sort((a, b) => a - b);
        const rt = winRt.sort((a, b) => a - b);
        const cpu = (s.cpuTicks - prev.cpuTicks) / TICK / ((t - prevT) / 1000) * 100;
        const all = Math.max(1, s.all - prev.all);
        const busy = 100 * (1 - (s.idle - prev.idle) / all), steal = 100 * (s.steal - prev.steal) / all;
        const row = {
            t: (t - start) / 1000, rss: s.rss, fds: s.fds, cpu, sent: winSent,
            done: lat.length, err: winErr, p50: pct(lat, 50), p99: pct(lat, 99),
            max: lat.length ? lat[lat.length - 1] : 0, lag: winLag,
            rt50: pct(rt, 50), rt99: pct(rt, 99), inFlight, live: liveMessages,
            media: Math.round(mediaBytes / 1024), load1: s.load1, busy, steal, dir: Math.round(s.dirBytes / 1024), compactions: s.compactions,
        };
        rows.push(row);
        fs.appendFileSync(csvPath, [row.t.toFixed(1), row.rss, row.fds, row.cpu.toFixed(1),
            row.sent, row.done, row.err, row.p50.toFixed(3), row.p99.toFixed(3),
            row.max.toFixed(3), row.lag.toFixed(3), row.rt50.toFixed(3),
            row.rt99.toFixed(3), row.inFlight, row.live, row.media, row.load1,
            row.busy.toFixed(0), row.steal.toFixed(1)]
            .concat(dataDir ? [row.dir, row.compactions] : []).join(',') + '\n');
        winLat = []; winRt = []; winErr = 0; winSent = 0; winLag = 0; prev = s; prevT = t;
    };
    sample(); // t = 0: the full store before the mixed load
    const sampler = setInterval(sample, win * 1000);
    await new Promise((resolve) => {
        const tick = () => {
            const t = now();
            const end = Math.min(t, start + secs * 1000);
            while (start + (due * 1000) / rate <= end) {
                const t0 = start + (due * 1000) / rate;
                due++; sentTotal++; winSent++;
                winLag = Math.max(winLag, t - t0); // this process late
                op(choose(), t0);
            }
            if (t >= start + secs * 1000) resolve();
            else setTimeout(tick, Math.max(1, Math.floor(start + (due * 1000) / rate - now())));
        };
        tick();
    });
    // let the requests in flight finish (bounded), then the last sample
    const stopAt = now() + 10000;
    while (inFlight > 0 && now() < stopAt) await new Promise((r) => setTimeout(r, 20));
    clearInterval(sampler);
    sample();
    agent.destroy();
    summarize();
}

// Theil-Sen slope of y against t (per second): the median of the slopes
// between every two windows, so a few windows hit by a stall of the shared
// machine do not tilt it
function slope(rs, key) {
    const v = [];
    for (let i = 0; i < rs.length; i++)
        for (let j = i + 1; j < rs.length; j++)
            if (rs[j].t > rs[i].t) v.push((rs[j][key] - rs[i][key]) / (rs[j].t - rs[i].t));
    v.sort((a, b) => a - b);
    return v.length ? v[v.length >> 1] : 0;
}
function summarize() {
    const out = [];
    const say = (s) => { out.push(s); console.log(s); };
    const body = rows.slice(1); // windows of the mixed load
    const half = body.filter((r) => r.t >= secs / 2);
    const span = half.length > 1 ? (half[half.length - 1].t - half[0].t) / 60 : 0; // minutes
    const med = (k) => { const v = half.map((r) => r[k]).sort((a, b) => a - b); return v.length ? v[v.length >> 1] : 0; };
    const rssS = slope(half, 'rss') * 60 / 1024;  // MiB per minute
    const fdS = slope(half, 'fds') * 60;          // fds per minute
    const p99S = slope(half, 'p99') * 60;         // ms per minute
    const mib = (k) => (k / 1024).toFixed(1);
    const first = body[0] || rows[0], last = rows[rows.length - 1];
    // flat: what the slope adds over the second half stays within a
    // tolerance; only growth fails the run (a series that falls is reported)
    // p99: stalls of the shared machine only add, in bursts, and tilt any
    // fit; a server that slows down lifts its quiet windows too. So p99's
    // verdict compares its floor (the lower quartile of the windows' p99)
    // of the second half against the first; the slope is printed alone.
    const q25 = (rs) => { const v = rs.map((r) => r.p99).sort((a, b) => a - b); return v.length ? v[Math.floor(v.length / 4)] : 0; };
    const floor1 = q25(body.filter((r) => r.t < secs / 2)), floor2 = q25(half);
    const tol = { rss: Math.max(1, 0.02 * med('rss') / 1024), fds: 0.99,
                  p99: Math.max(1, 0.25 * floor1) };
    const rssFlat = rssS * span <= tol.rss, fdFlat = fdS * span <= tol.fds;
    const p99Flat = floor2 - floor1 <= tol.p99;
    const word = (flat, s, k) => !flat ? 'GROWS' : s * span < -tol[k] ? 'falls' : 'flat';
    say(`soak: ${secs} s at ${rate} requests/s, ${sentTotal} requests, ${doneTotal} answered, ` +
        `${errTotal} errors; windows of ${win} s; verdicts over the second half (${half.length} windows)`);
    say(`RSS: ${mib(rows[0].rss)} MiB with the store filled, ${mib(first.rss)} MiB after the first window, ` +
        `${mib(last.rss)} MiB at the end (max ${mib(Math.max(...rows.map((r) => r.rss)))}); ` +
        `slope ${rssS.toFixed(3)} MiB/min: ${word(rssFlat, rssS, 'rss')}`);
    say(`fds: ${rows[0].fds} at the start, ${last.fds} at the end (min ${Math.min(...body.map((r) => r.fds))}, ` +
        `max ${Math.max(...body.map((r) => r.fds))}); slope ${fdS.toFixed(3)} per min: ${word(fdFlat, fdS, 'fds')}`);
    say(`p99: floor (lower quartile of the windows) ${floor1.toFixed(2)} ms in the first half, ` +
        `${floor2.toFixed(2)} ms in the second: ${!p99Flat ? 'GROWS' : floor1 - floor2 > tol.p99 ? 'falls' : 'flat'}; ` +
        `second half: median ${med('p99').toFixed(2)} ms, max ${Math.max(...half.map((r) => r.p99)).toFixed(2)} ms, ` +
        `slope ${p99S.toFixed(3)} ms/min; reply time alone (sent to answered) ` +
        `p99 median ${med('rt99').toFixed(2)} ms, p50 median ${med('rt50').toFixed(2)} ms`);
    say(`generator: sent requests up to ${Math.max(...body.map((r) => r.lag)).toFixed(1)} ms after they were due ` +
        `(median of the windows' worst ${med('lag').toFixed(1)} ms; counted in the latencies)`);
    say(`server CPU: median ${med('cpu').toFixed(0)} % of one core; the machine's load average ` +
        `${Math.min(...body.map((r) => r.load1))}-${Math.max(...body.map((r) => r.load1))} on ${require('os').cpus().length} CPUs, ` +
        `busy ${med('busy').toFixed(0)} % (median window);`);
    say(`at the end: live messages ${last.live}; ` +
        `media uploaded ${mediaCount} items, ${(mediaBytes / 1048576).toFixed(1)} MiB` +
        (dataDir ? `; data directory ${mib(rows[0].dir)} MiB at the start, ${mib(last.dir)} MiB at the end` : ''));
    const errs = Object.entries(errors).map(([k, v]) => `${k}: ${v}`).join(', ');
    say(`errors: ${errTotal}${errs ? ' (' + errs + ')' : ''}`);
    say('latency by operation, whole run (ms):');
    say('| operation | requests | p50 | p99 | max |');
    say('|---|---:|---:|---:|---:|');
    for (const [k, v] of Object.entries(allLat).sort()) {
        v.sort((a, b) => a - b);
        say(`| ${k} | ${v.length} | ${pct(v, 50).toFixed(2)} | ${pct(v, 99).toFixed(2)} | ${v[v.length - 1].toFixed(2)} |`);
    }
    fs.writeFileSync(summaryPath, out.join('\n') + '\n');
    process.exitCode = errTotal || !rssFlat || !fdFlat || !p99Flat ? 1 : 0;
}

main().catch((e) => { console.error('soak:', e.message); process.exit(2); });
