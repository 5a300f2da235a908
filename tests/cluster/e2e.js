'use strict';
// cluster_e2e: the end-to-end suites that take an external server
// (tests/e2e/client.test.js, http.test.js, schema.test.js) run through
// HAProxy against a 2-shard cluster in sync mode, each file against a fresh
// cluster (they assume an empty store). Their servers keep the default
// --base-url (https://chat.twilio.com), which the suites' URL checks expect.
// Tests that need flags of their own, or the server's own HTTP edge, still
// spawn a server of their own (tests/e2e/server.js). Fails when nats-server
// or haproxy is missing.
// Usage: node tests/cluster/e2e.js [FILE.test.js ...]

const { spawn } = require('node:child_process');
const path = require('node:path');
const { startCluster } = require('./cluster');

const E2E_DIR = path.resolve(__dirname, '..', 'e2e');
const FILES = ['client.test.js', 'http.test.js', 'schema.test.js'];
const FILE_TIMEOUT_MS = 240000;

function runFile(file, c) {
  return new Promise((resolve) => {
    const env = Object.assign({}, process.env, {
      CHATSTORE_E2E_URL: c.origin,
      CHATSTORE_E2E_ACCOUNT_SID: c.accountSid,
      CHATSTORE_E2E_AUTH_TOKEN: c.authToken,
    });
    const p = spawn(process.execPath, ['--test', '--test-reporter=tap', path.join(E2E_DIR, file)],
      { env, stdio: ['ignore', 'inherit', 'inherit'] });
    const t = setTimeout(() => {
      console.log(`# ${file}: no result within ${FILE_TIMEOUT_MS} ms, killed`);
      p.kill('SIGKILL');
    }, FILE_TIMEOUT_MS);
    p.on('exit', (code, signal) => { clearTimeout(t); resolve({ code, signal }); });
  });
}

(async () => {
  const files = process.argv.slice(2).length ? process.argv.slice(2) : FILES;
  const failed = [];
  for (const f of files) {
    const t0 = Date.now();
    const c = await startCluster({ shards: 2, replication: 'sync', baseUrl: 'https://chat.twilio.com' });
    console.log(`# ${f} against ${c.origin} (2 shards, sync; cluster up in ${Date.now() - t0} ms)`);
    let x;
    try {
      x = await runFile(f, c);
      // Every server of the cluster still runs: none crashed under the suite.
      for (const p of c.all()) {
        if (!p.alive()) {
          failed.push(`${f}: ${p.name} died (${JSON.stringify(p.exit)})`);
          console.log(p.tail());
        }
      }
    } finally {
      // Each server still running stops cleanly (exit 0).
      for (const y of await c.stop()) {
        if (y.exit.code !== 0) failed.push(`${f}: ${y.name} stopped with ${JSON.stringify(y.exit)}\n${y.tail}`);
      }
    }
    if (x.code !== 0) failed.push(`${f}: exit ${JSON.stringify(x)}`);
  }
  if (failed.length) {
    console.log(`# cluster_e2e FAILED:\n#   ${failed.join('\n#   ')}`);
    process.exit(1);
  }
  console.log(`# cluster_e2e: ${files.length} files passed through HAProxy`);
})().catch((e) => {
  console.log(`# cluster_e2e FAILED: ${e.stack}`);
  process.exit(1);
});
