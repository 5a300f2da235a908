'use strict';
// chatstore-server as the Twilio Chat API of a node:test suite.
//
//   const cs = await startChatstore();      // a seeded server on a free port
//   const client = cs.client();             // the real twilio client, pointed at it
//   await cs.reset();                       // back to the fixture (beforeEach)
//   cs.golden('name');                      // this test's exchanges vs golden/name.txt
//   await cs.stop();
//
// The server binary is $CHATSTORE_SERVER_BIN, else chatstore-server on PATH.
// CHATSTORE_UPDATE_GOLDEN=1 rewrites the golden files instead of comparing.

const { spawn } = require('node:child_process');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const twilio = require('twilio');

const FIXTURE = path.join(__dirname, '..', 'fixture.json');
const GOLDEN = path.join(__dirname, 'golden');
const TOKEN = 'node-example-token';

// The client rewrites hosts when these are set; proxies stay out of loopback.
for (const v of ['TWILIO_EDGE', 'TWILIO_REGION', 'HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY',
  'https_proxy', 'ALL_PROXY', 'all_proxy']) delete process.env[v];

/** Sends the client's https://chat.twilio.com/... requests (first requests
 * and followed page URLs alike) to the local server, and records each
 * exchange with the response body as the server wrote it. */
class LocalRequestClient extends twilio.RequestClient {
  constructor(origin, exchanges) {
    super();
    this.origin = origin;
    this.exchanges = exchanges;
    this.axios.defaults.transformResponse = [(data) => data]; // raw text; the client parses it
  }

  async request(opts) {
    const u = new URL(opts.uri);
    const res = await super.request(Object.assign({}, opts, { uri: this.origin + u.pathname + u.search }));
    const query = new URLSearchParams(opts.params || {}).toString();
    this.exchanges.push({
      method: opts.method.toUpperCase(),
      target: u.pathname + (u.search || (query ? '?' : '')) + (u.search && query ? '&' : '') + query,
      data: new URLSearchParams(opts.data || {}).toString(),
      status: res.statusCode,
      body: res.body,
    });
    return res;
  }
}

function startChatstore({ seed = '42', clock = '2020-01-01T00:00:00Z+1s', fixture = FIXTURE } = {}) {
  const bin = process.env.CHATSTORE_SERVER_BIN || 'chatstore-server';
  const args = ['--listen', '127.0.0.1:0', '--auth-token', TOKEN, '--seed', seed, '--clock', clock,
    '--test-endpoints'];
  if (fixture) args.push('--fixture', fixture);
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`no start: ${out}${err}`)); }, 10000);
    proc.on('error', (e) => { clearTimeout(timer); reject(e); });
    exited.then((x) => { clearTimeout(timer); reject(new Error(`exited ${JSON.stringify(x)}: ${err}`)); });
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)\n/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      // --seed without --account-sid: the account SID comes from the seed
      const accountSid = /account sid (AC[0-9a-f]{32})\n/.exec(out)[1];
      const origin = m[1];
      const auth = 'Basic ' + Buffer.from(`${accountSid}:${TOKEN}`).toString('base64');
      const exchanges = [];
      const testEndpoint = async (method, p, form) => {
        const r = await fetch(origin + p, {
          method, headers: { Authorization: auth, 'Content-Type': 'application/x-www-form-urlencoded' },
          body: form ? new URLSearchParams(form).toString() : undefined,
        });
        assert.equal(r.status, 200, `${method} ${p}`);
        return r.json();
      };
      resolve({
        origin,
        accountSid,
        exchanges,
        client: () => twilio(accountSid, TOKEN, { httpClient: new LocalRequestClient(origin, exchanges) }),
        /** Back to the start: the fixture's data (fixture false: none), the
         * same SIDs, the clock at its start. Also forgets the exchanges. */
        reset: (withFixture = true) => {
          exchanges.length = 0;
          return testEndpoint('POST', '/_chatstore/reset', { Fixture: String(withFixture) });
        },
        stats: () => testEndpoint('GET', '/_chatstore/stats'),
        golden(name) {
          const got = exchanges.map((x) => `> ${x.method} ${x.target}\n` +
            (x.data ? `> ${x.data}\n` : '') + `< ${x.status}\n${x.body}\n\n`).join('');
          const file = path.join(GOLDEN, `${name}.txt`);
          if (process.env.CHATSTORE_UPDATE_GOLDEN === '1') {
            fs.mkdirSync(GOLDEN, { recursive: true });
            fs.writeFileSync(file, got);
            return;
          }
          assert.ok(fs.existsSync(file),
            `${file} is missing: run once with CHATSTORE_UPDATE_GOLDEN=1, review it, commit it`);
          assert.equal(got, fs.readFileSync(file, 'utf8'), `responses differ from ${file}`);
        },
        async stop() {
          proc.kill('SIGTERM');
          const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
          const x = await exited;
          clearTimeout(t);
          assert.equal(x.code, 0, `chatstore-server did not stop cleanly: ${err}`);
        },
      });
    });
  });
}

module.exports = { startChatstore };
