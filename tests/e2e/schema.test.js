'use strict';
// Every response body chatstore-server produces here is validated against
// Twilio's OpenAPI description of Chat v2 (the operation's own response
// schema, found by method, path template and status), plus the key order of
// each object: the schema's property order, with the orders written below
// (the contract of docs/behaviour.md) winning for messages, their media object
// and page meta. Errors (no schema in the OpenAPI file) and media (MCS, not in
// Chat v2) use schemas written here from the reference (sections 1.5 and 7).
//
// The OpenAPI file (twilio_chat_v2.yaml) is found through --spec-dir=DIR,
// $CHATSTORE_SPEC_DIR or tests/data/openapi (see server.js).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { startServer, request, specDir, ERROR_KEYS } = require('./server'); // first: checks node_modules
const YAML = require('yaml');
const Ajv = require('ajv');

const SPEC_DIR = specDir();
const spec = YAML.parse(fs.readFileSync(path.join(SPEC_DIR, 'twilio_chat_v2.yaml'), 'utf8'));

// Key orders of the contract (docs/behaviour.md): messages, their media object
// (or null), and the meta object of list pages.
const MESSAGE_ORDER = ['sid', 'account_sid', 'attributes', 'service_sid', 'to', 'channel_sid',
  'date_created', 'date_updated', 'last_updated_by', 'was_edited', 'from', 'body', 'index', 'type',
  'media', 'url'];
const MEDIA_OBJECT_ORDER = ['sid', 'size', 'content_type', 'filename'];
const META_ORDER = ['page', 'page_size', 'first_page_url', 'previous_page_url', 'url',
  'next_page_url', 'key'];

// ---- OpenAPI 3.0 -> JSON Schema ---------------------------------------------

const ROOT_ID = 'https://chatstore.test/chat_v2.json';

/** Converts an OpenAPI 3.0 schema: nullable -> type arrays (and null in enums),
 * local $refs -> refs into ROOT_ID, format uri-map -> a map of URIs (or null),
 * vendor and example keys dropped. */
function convert(node) {
  if (Array.isArray(node)) return node.map(convert);
  if (!node || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (k.startsWith('x-') || k === 'example' || k === 'examples' || k === 'nullable') continue;
    if (k === '$ref') {
      const m = /^#\/components\/schemas\/(.+)$/.exec(v);
      assert.ok(m, `unexpected $ref ${v}`);
      out.$ref = `${ROOT_ID}#/definitions/${m[1]}`;
      continue;
    }
    if (k === 'format' && v === 'uri-map') {
      out.additionalProperties = { type: ['string', 'null'], format: 'uri' };
      continue;
    }
    out[k] = k === 'properties'
      ? Object.fromEntries(Object.entries(v).map(([p, s]) => [p, convert(s)]))
      : convert(v);
  }
  if (node.nullable === true) {
    if (out.$ref) return { anyOf: [{ $ref: out.$ref }, { type: 'null' }] };
    if (typeof out.type === 'string') out.type = [out.type, 'null'];
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
  }
  return out;
}

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;
function isDateTime(s) {
  // The form DECISIONS.md fixes for output: YYYY-MM-DDTHH:MM:SSZ, a real date.
  const m = DATE_TIME.exec(s);
  if (!m) return false;
  const d = new Date(s);
  return !Number.isNaN(d.getTime()) && d.toISOString() === `${s.slice(0, -1)}.000Z`;
}
function isUri(s) {
  try {
    const u = new URL(s);
    return u.protocol === 'https:' && u.href.length > 8 && !/\s/.test(s);
  } catch {
    return false;
  }
}

const ajv = new Ajv({ strict: true, allErrors: true, allowUnionTypes: true });
ajv.addFormat('date-time', { type: 'string', validate: isDateTime });
ajv.addFormat('uri', { type: 'string', validate: isUri });
ajv.addFormat('int64', { type: 'number', validate: Number.isSafeInteger });
ajv.addFormat('http-method', { type: 'string', validate: (s) => /^[A-Z]+$/.test(s) });
ajv.addSchema({ $id: ROOT_ID, definitions: convert(spec.components.schemas) });

const SID = (p) => ({ type: 'string', pattern: `^${p}[0-9a-f]{32}$` });
const ERROR_SCHEMA = {
  type: 'object',
  required: ERROR_KEYS,
  additionalProperties: false,
  properties: {
    code: { type: 'integer', minimum: 1 },
    message: { type: 'string', minLength: 1 },
    more_info: { type: 'string', format: 'uri', pattern: '^https://www\\.twilio\\.com/docs/errors/\\d+$' },
    status: { type: 'integer', minimum: 400, maximum: 599 },
  },
};
const MEDIA_KEYS = ['sid', 'account_sid', 'service_sid', 'date_created', 'date_updated', 'channel_sid',
  'message_sid', 'size', 'content_type', 'filename', 'author', 'url', 'links'];
const MEDIA_SCHEMA = {
  type: 'object',
  required: MEDIA_KEYS,
  additionalProperties: false,
  properties: {
    sid: SID('ME'), account_sid: SID('AC'), service_sid: SID('IS'),
    date_created: { type: 'string', format: 'date-time' }, date_updated: { type: 'string', format: 'date-time' },
    channel_sid: { anyOf: [SID('CH'), { type: 'null' }] }, message_sid: { anyOf: [SID('IM'), { type: 'null' }] },
    size: { type: 'integer', minimum: 0 }, content_type: { type: 'string', pattern: '^[^/]+/[^/]+' },
    filename: { type: ['string', 'null'] }, author: { type: 'string' },
    url: { type: 'string', format: 'uri' },
    links: { type: 'object', required: ['content'], properties: { content: { type: 'string', format: 'uri' } } },
  },
};
const validateError = ajv.compile(ERROR_SCHEMA);
const validateMedia = ajv.compile(MEDIA_SCHEMA);

// ---- the operations' response schemas ------------------------------------------

const TEMPLATES = Object.keys(spec.paths);
/** The spec's path template for a concrete /v2 path, e.g. /v2/Services/{Sid}. */
function templateOf(p) {
  const segs = p.split('?')[0].split('/');
  const hits = TEMPLATES.filter((t) => {
    const ts = t.split('/');
    return ts.length === segs.length && ts.every((x, i) => /^\{.+\}$/.test(x) || x === segs[i]);
  });
  assert.equal(hits.length, 1, `no single template for ${p}: ${hits}`);
  return hits[0];
}
const compiled = new Map();
/** The compiled response schema of (template, method, status); null when the
 * spec declares no content (204). */
function responseValidator(template, method, status) {
  const key = `${method} ${template} ${status}`;
  if (!compiled.has(key)) {
    const op = spec.paths[template][method.toLowerCase()];
    assert.ok(op, `spec has no ${method} ${template}`);
    const resp = op.responses[String(status)];
    assert.ok(resp, `spec has no ${status} for ${method} ${template}`);
    const content = resp.content && resp.content['application/json'];
    compiled.set(key, content ? ajv.compile(convert(content.schema)) : null);
  }
  return compiled.get(key);
}
const schemaProps = (name) => Object.keys(spec.components.schemas[name].properties);

// ---- validation of every response ---------------------------------------------

const seen = {}; // kind -> number of bodies validated
function tally(kind) { seen[kind] = (seen[kind] || 0) + 1; }

function checkKeys(obj, want, what) {
  assert.deepEqual(Object.keys(obj), want, `${what}: key order`);
}
function checkMessage(m, what) {
  checkKeys(m, MESSAGE_ORDER, `${what} message`);
  if (m.media !== null) checkKeys(m.media, MEDIA_OBJECT_ORDER, `${what} media object`);
  tally('message');
}
function checkChannel(c, what) {
  checkKeys(c, schemaProps('chat.v2.service.channel'), `${what} channel`);
  checkKeys(c.links, ['members', 'messages', 'invites', 'webhooks', 'last_message'], `${what} channel links`);
  tally('channel');
}
function checkService(s, what) {
  checkKeys(s, schemaProps('chat.v2.service'), `${what} service`);
  checkKeys(s.links, ['channels', 'users', 'roles', 'bindings'], `${what} service links`);
  tally('service');
}
const ITEM_CHECK = { messages: checkMessage, channels: checkChannel, services: checkService };

/** Sends a request and validates the reply against the spec, whatever it is. */
async function call(srv, method, p, opts = {}) {
  const r = await request(srv, p, Object.assign({ method }, opts));
  const what = `${method} ${p} -> ${r.status}`;
  if (r.status >= 400) {
    assert.ok(validateError(r.json), `${what}: ${ajv.errorsText(validateError.errors)} ${r.text}`);
    checkKeys(r.json, ERROR_KEYS, what);
    assert.equal(r.json.status, r.status, what);
    tally('error');
    return r;
  }
  if (p.startsWith('/v1/')) {
    assert.ok(validateMedia(r.json), `${what}: ${ajv.errorsText(validateMedia.errors)}`);
    checkKeys(r.json, MEDIA_KEYS, what);
    tally('media');
    return r;
  }
  const template = templateOf(p);
  const v = responseValidator(template, method, r.status);
  if (v === null) {
    assert.equal(r.buf.length, 0, `${what}: the spec declares no content`);
    tally('empty');
    return r;
  }
  assert.match(String(r.headers['content-type']), /^application\/json/, what);
  assert.ok(v(r.json), `${what}: ${ajv.errorsText(v.errors)}\n${r.text.slice(0, 2000)}`);
  if (r.json.meta) {
    const key = r.json.meta.key;
    assert.deepEqual(Object.keys(r.json).sort(), [key, 'meta'].sort(), `${what}: page keys`);
    checkKeys(r.json.meta, META_ORDER, `${what} meta`);
    // Every property the list schema names is there.
    const listProps = Object.keys(spec.paths[template].get.responses['200'].content['application/json'].schema.properties.meta.properties);
    assert.deepEqual([...listProps].sort(), [...META_ORDER].sort(), 'list schema meta properties');
    r.json[key].forEach((item, i) => ITEM_CHECK[key](item, `${what} [${i}]`));
    tally(`page of ${key}`);
  } else if (r.json.sid.startsWith('IM')) {
    checkMessage(r.json, what);
  } else if (r.json.sid.startsWith('CH')) {
    checkChannel(r.json, what);
  } else {
    checkService(r.json, what);
  }
  return r;
}

let srv;
before(async () => {
  srv = await startServer();
});
after(async () => {
  await srv.stop();
});

describe('the schemas themselves', () => {
  it("the contract's key orders agree with the schema fields", () => {
    assert.deepEqual(MESSAGE_ORDER.slice(0, 3), ['sid', 'account_sid', 'attributes']);
    assert.deepEqual([...MESSAGE_ORDER].sort(), [...schemaProps('chat.v2.service.channel.message')].sort());
    assert.deepEqual(META_ORDER, ['page', 'page_size', 'first_page_url', 'previous_page_url', 'url',
      'next_page_url', 'key']);
    assert.deepEqual(MEDIA_OBJECT_ORDER, ['sid', 'size', 'content_type', 'filename']);
  });

  it("the spec's own list examples validate (the conversion is sound)", () => {
    for (const t of ['/v2/Services', '/v2/Services/{ServiceSid}/Channels',
      '/v2/Services/{ServiceSid}/Channels/{ChannelSid}/Messages']) {
      const content = spec.paths[t].get.responses['200'].content['application/json'];
      const v = responseValidator(t, 'GET', 200);
      const examples = Object.values(content.examples || {});
      assert.ok(examples.length > 0, t);
      for (const ex of examples) assert.ok(v(ex.value), `${t}: ${ajv.errorsText(v.errors)}`);
    }
  });

  it('the validators reject wrong bodies (they are not vacuous)', () => {
    const msgV = responseValidator('/v2/Services/{ServiceSid}/Channels/{ChannelSid}/Messages/{Sid}', 'GET', 200);
    const chV = responseValidator('/v2/Services/{ServiceSid}/Channels/{Sid}', 'GET', 200);
    const listV = responseValidator('/v2/Services/{ServiceSid}/Channels/{ChannelSid}/Messages', 'GET', 200);
    const ex = spec.paths['/v2/Services/{ServiceSid}/Channels/{ChannelSid}/Messages'].get.responses['200']
      .content['application/json'].examples.readFull.value;
    const good = ex.messages[0];
    assert.ok(msgV(good));
    assert.ok(msgV({ ...good, last_updated_by: null, attributes: null, body: null }), 'nullable fields');
    const bad = [
      { ...good, sid: 'XX' + good.sid.slice(2) },
      { ...good, sid: good.sid + 'a' },
      { ...good, date_created: '2016-03-24 20:37:57' },
      { ...good, date_created: '2016-02-30T20:37:57Z' },
      { ...good, date_updated: '2016-03-24T20:37:57.123Z' },
      { ...good, index: null },
      { ...good, index: '0' },
      { ...good, was_edited: 'false' },
      { ...good, url: 'not a url' },
      { ...good, channel_sid: 'general' },
    ];
    for (const b of bad) assert.equal(msgV(b), false, JSON.stringify(b));
    const chEx = spec.paths['/v2/Services/{ServiceSid}/Channels/{Sid}'].get.responses['200']
      .content['application/json'].examples;
    const ch = Object.values(chEx)[0].value;
    assert.ok(chV(ch), ajv.errorsText(chV.errors));
    assert.equal(chV({ ...ch, type: 'secret' }), false);
    assert.equal(chV({ ...ch, type: null }), false);
    assert.equal(chV({ ...ch, links: { ...ch.links, messages: 'relative/path' } }), false);
    assert.equal(chV({ ...ch, members_count: null }), false);
    assert.equal(listV({ ...ex, meta: { ...ex.meta, page: 'zero' } }), false);
    assert.equal(listV({ ...ex, meta: { ...ex.meta, next_page_url: 'nope' } }), false);
    assert.equal(listV({ ...ex, messages: [{ ...good, sid: 5 }] }), false);
    assert.equal(validateError({ code: 20404, message: 'x', more_info: 'https://www.twilio.com/docs/errors/20404' }), false);
    assert.equal(validateError({ code: 20404, message: 'x', more_info: 'https://www.twilio.com/docs/errors/20404', status: 404, extra: 1 }), false);
  });
});

describe('every response validates', () => {
  let IS;
  let CH;
  const msgs = () => `/v2/Services/${IS}/Channels/${CH}/Messages`;

  it('services: create, fetch, update, list, delete', async () => {
    const s = await call(srv, 'POST', '/v2/Services', { form: { FriendlyName: 'schema ✓' } });
    assert.equal(s.status, 201);
    IS = s.json.sid;
    await call(srv, 'GET', `/v2/Services/${IS}`);
    await call(srv, 'POST', `/v2/Services/${IS}`, { form: { FriendlyName: 'renamed' } });
    await call(srv, 'POST', `/v2/Services/${IS}`, { form: {} });
    // Every webhook setting set, then back to null (filters as a list).
    const hooked = await call(srv, 'POST', `/v2/Services/${IS}`, {
      form: 'PreWebhookUrl=https%3A%2F%2Fexample.com%2Fpre&PostWebhookUrl=http%3A%2F%2F127.0.0.1%3A9%2Fpost' +
        '&WebhookMethod=POST&WebhookFilters=onMessageSent&WebhookFilters=onChannelAdded' +
        '&PreWebhookRetryCount=1&PostWebhookRetryCount=3' });
    assert.deepEqual(hooked.json.webhook_filters, ['onMessageSent', 'onChannelAdded']);
    await call(srv, 'POST', `/v2/Services/${IS}`, { form: 'PreWebhookUrl=&PostWebhookUrl=&WebhookFilters=' });
    const extra = [];
    for (let i = 0; i < 3; i++) extra.push((await call(srv, 'POST', '/v2/Services', { form: { FriendlyName: `s${i}` } })).json.sid);
    let p = (await call(srv, 'GET', '/v2/Services?PageSize=2')).json;
    while (p.meta.next_page_url) p = (await call(srv, 'GET', new URL(p.meta.next_page_url).pathname + new URL(p.meta.next_page_url).search)).json;
    await call(srv, 'GET', '/v2/Services');
    for (const sid of extra) assert.equal((await call(srv, 'DELETE', `/v2/Services/${sid}`)).status, 204);
  });

  it('channels: public, private, names, attributes, last_message, list pages', async () => {
    const c = await call(srv, 'POST', `/v2/Services/${IS}/Channels`, {
      form: { UniqueName: 'schema room', FriendlyName: 'Schema room', Attributes: '{"a": [1, 2]}', Type: 'private', CreatedBy: 'zoe' } });
    CH = c.json.sid;
    await call(srv, 'POST', `/v2/Services/${IS}/Channels`, { form: {} });
    await call(srv, 'POST', `/v2/Services/${IS}/Channels`, { form: { Type: 'public', FriendlyName: 'ünïcode "quoted"',
      DateCreated: '2015-12-16T22:18:37Z', DateUpdated: '2015-12-16T22:18:38Z' } });
    await call(srv, 'GET', `/v2/Services/${IS}/Channels/${CH}`);
    await call(srv, 'GET', `/v2/Services/${IS}/Channels/schema%20room`);
    await call(srv, 'POST', `/v2/Services/${IS}/Channels/${CH}`, { form: { FriendlyName: '', UniqueName: 'renamed' } });
    await call(srv, 'POST', `/v2/Services/${IS}/Channels/${CH}`, { form: { UniqueName: 'schema room' } });
    for (const q of ['', '?Type=private', '?Type=public&Type=private&PageSize=1', '?PageSize=1&Page=3']) {
      let p = (await call(srv, 'GET', `/v2/Services/${IS}/Channels${q}`)).json;
      while (p.meta.next_page_url) {
        const u = new URL(p.meta.next_page_url);
        p = (await call(srv, 'GET', u.pathname + u.search)).json;
      }
    }
    const gone = await call(srv, 'POST', `/v2/Services/${IS}/Channels`, { form: {} });
    await call(srv, 'DELETE', `/v2/Services/${IS}/Channels/${gone.json.sid}`);
  });

  it('messages: text, edited, imported, unicode, controls, media', async () => {
    const bodies = ['Hello', '', 'quote " backslash \\ slash / tab \t nl \n nul \u0000 del \u007f',
      '\u2028\u2029 \uD83D\uDE00 é e\u0301', 'x'.repeat(32768)];
    for (const b of bodies) await call(srv, 'POST', msgs(), { form: { Body: b } });
    await call(srv, 'POST', msgs(), { form: { Body: 'full', From: 'alice', Attributes: '{ "foo": "bar" }',
      DateCreated: '2016-03-24T20:37:57Z', DateUpdated: '2016-03-24T20:37:58Z', LastUpdatedBy: 'bob' } });
    await call(srv, 'POST', msgs(), { form: { Attributes: '[1,2,{"deep":[[[]]]}]', DateCreated: '1970-01-01T00:00:00Z' } });
    const m = await call(srv, 'POST', msgs(), { form: { Body: 'to edit' } });
    await call(srv, 'POST', `${msgs()}/${m.json.sid}`, { form: { Body: 'edited', LastUpdatedBy: 'carol' } });
    await call(srv, 'POST', `${msgs()}/${m.json.sid}`, { form: {} });
    await call(srv, 'GET', `${msgs()}/${m.json.sid}`);
    await call(srv, 'GET', `/v2/Services/${IS}/Channels/schema%20room/Messages/${m.json.sid}`);
    // Media.
    const up = await call(srv, 'POST', `/v1/Services/${IS}/Media?Filename=hello.pdf`, {
      body: Buffer.from('%PDF-1.4 fake'), headers: { 'Content-Type': 'application/pdf' } });
    assert.equal(up.status, 201);
    const mm = await call(srv, 'POST', msgs(), { form: { MediaSid: up.json.sid } });
    assert.equal(mm.json.type, 'media');
    assert.notEqual(mm.json.media, null);
    await call(srv, 'GET', `/v1/Services/${IS}/Media/${up.json.sid}`);
    const up2 = await call(srv, 'POST', `/v1/Services/${IS}/Media`, {
      body: Buffer.from('x'), headers: { 'Content-Type': 'text/plain' } });
    await call(srv, 'POST', msgs(), { form: { MediaSid: up2.json.sid, Body: 'with text' } });
    // Channel now has messages: last_message is a URL.
    const ch = await call(srv, 'GET', `/v2/Services/${IS}/Channels/${CH}`);
    assert.match(ch.json.links.last_message, /^https:\/\/.*\/Messages\/IM[0-9a-f]{32}$/);
    // Pages in both orders, every page.
    for (const q of ['', '?PageSize=3', '?Order=desc&PageSize=4', '?Order=asc&PageSize=1000', '?PageSize=5000']) {
      let p = (await call(srv, 'GET', `${msgs()}${q}`)).json;
      let guard = 0;
      while (p.meta.next_page_url && guard++ < 50) {
        const u = new URL(p.meta.next_page_url);
        p = (await call(srv, 'GET', u.pathname + u.search)).json;
      }
      while (p.meta.previous_page_url && guard++ < 100) {
        const u = new URL(p.meta.previous_page_url);
        p = (await call(srv, 'GET', u.pathname + u.search)).json;
      }
    }
    const empty = await call(srv, 'POST', `/v2/Services/${IS}/Channels`, { form: {} });
    await call(srv, 'GET', `/v2/Services/${IS}/Channels/${empty.json.sid}/Messages`);
    await call(srv, 'DELETE', `${msgs()}/${m.json.sid}`);
  });

  it('errors', async () => {
    const cases = [
      ['GET', '/v2/Services', { auth: false }],
      ['GET', `/v2/Services/IS${'0'.repeat(32)}`],
      ['GET', `${msgs()}/IM${'0'.repeat(32)}`],
      ['POST', '/v2/Services', { form: {} }],
      ['POST', `/v2/Services/${IS}/Channels`, { form: { UniqueName: 'schema room' } }],
      ['POST', `/v2/Services/${IS}/Channels`, { form: { UniqueName: `CH${'1'.repeat(32)}` } }],
      ['POST', msgs(), { form: { Body: 'x'.repeat(32769) } }],
      ['POST', msgs(), { form: { Attributes: 'nope' } }],
      ['POST', msgs(), { form: { DateCreated: 'yesterday' } }],
      ['POST', msgs(), { form: { MediaSid: 'bad' } }],
      ['POST', msgs(), { form: { MediaSid: `ME${'0'.repeat(32)}` } }],
      ['POST', msgs(), { form: { Body: 'x' }, headers: { 'X-Twilio-Webhook-Enabled': 'maybe' } }],
      ['GET', `${msgs()}?Order=sideways`],
      ['GET', `${msgs()}?PageSize=0`],
      ['GET', `${msgs()}?PageToken=forged`],
      ['POST', msgs(), { form: 'Body=%zz' }],
      ['PUT', '/v2/Services'],
      ['GET', '/nowhere'],
      ['POST', msgs(), { form: 'Body=' + 'a'.repeat(1 << 20) }],
      ['POST', `/v1/Services/${IS}/Media`, { body: 'x', headers: { 'Content-Type': 'nonsense' } }],
    ];
    for (const [method, p, opts] of cases) {
      const r = await call(srv, method, p, opts);
      assert.ok(r.status >= 400, `${method} ${p}: ${r.status}`);
    }
  });

  it('covered every kind', () => {
    if (process.env.E2E_DEBUG) console.log(JSON.stringify(seen));
    for (const kind of ['service', 'channel', 'message', 'page of services', 'page of channels',
      'page of messages', 'error', 'media', 'empty']) {
      assert.ok((seen[kind] || 0) >= 2, `${kind}: ${seen[kind] || 0} bodies validated`);
    }
    assert.ok(seen.message >= 50, `messages validated: ${seen.message}`);
  });
});
