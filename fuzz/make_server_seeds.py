#!/usr/bin/env python3
"""Writes the seed inputs of fuzz/corpus/server/seed-*: request sequences a
Twilio client makes (create a service, a channel, messages; list them a page
at a time following the PageToken; upload media and send it; update; delete),
the test endpoints, and refused requests (credentials, limits, headers),
encoded in the input format of fuzz_server.c. Keep the two in step: when the
harness's decoder changes, change the encoder here and rewrite the seeds.

Usage: fuzz/make_server_seeds.py   (rewrites the seed-* files, leaves others
alone)
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))

GET, POST, DELETE = 0, 1, 2
PUT = 45  # 45 % 16 >= 13: methods[3 + 45 % 5]

# path fragments (fuzz_server.c, build_path)
V2, V1, CHANNELS, MESSAGES, MEDIA, CONTENT = 0, 1, 2, 3, 4, 5
IS, CH, IM, ME, UNIQUE, RAW = 6, 8, 9, 10, 11, 12
TEST, RESET, CLOCK, STATS = 13, 14, 15, 16
SID_FRAGS = (IS, CH, IM, ME)
KIND = {IS: 0, CH: 1, IM: 2, ME: 3}
FORM_KEYS = ["FriendlyName", "UniqueName", "Attributes", "Type", "DateCreated",
             "DateUpdated", "CreatedBy", "From", "Body", "MediaSid",
             "LastUpdatedBy", "PreWebhookUrl", "PostWebhookUrl",
             "WebhookMethod", "WebhookFilters", "PreWebhookRetryCount",
             "PostWebhookRetryCount", "Now", "Step", "Fixture"]
FORM_VALUES = ["hello", "", '{"a": [1, 2.5e3, null]}', "{bad", "public",
               "private", "2020-01-01T00:00:00Z", "2016-03-24T20:37:57.000Z",
               "9999-12-31T23:59:59Z", "not a date", "alice",
               "caf\u00e9 \U0001F600", None, "true", "false",
               "https://example.com/hook", "POST", "GET", "onMessageSent",
               "onChannelAdded", "3", "-1", "5m", "1d", "x"]
UNIQUE_NAMES = ["general", "room/1", "CH0123456789abcdef0123456789abcdef",
                "caf\u00e9", "a b", "%", ""]
QUERY_KEYS = ["PageSize", "Page", "PageToken", "Order", "Type", "Filename"]
QUERY_VALUES = ["0", "1", "2", "3", "50", "1000", "-1", "asc", "desc",
                "public", "private", "x.png", "", "01",
                "9999999999999999999999"]
CONTENT_TYPES = ["application/x-www-form-urlencoded", "image/png",
                 "application/json", "text/plain; charset=utf-8", ""]
# Authorization kinds (build_auth)
AUTH_OK, AUTH_NONE, AUTH_WRONG_TOKEN, AUTH_OTHER_ACCOUNT, AUTH_CASE = 0, 1, 2, 3, 4
AUTH_NUL = 5


def path(*frags):
    """Fragments; a SID fragment takes (frag, pick) or uses pick 0."""
    out = []
    for f in frags:
        if isinstance(f, tuple):
            out.append(f)
        elif f in SID_FRAGS or f == UNIQUE:
            out.append((f, 0))
        else:
            out.append((f,))
    b = bytes([len(out) - 1])
    for f in out:
        if f[0] == RAW:
            b += bytes([RAW, len(f[1])]) + f[1]
        else:
            b += bytes(f)
    return b


def sid(n=0, mangle=0):
    return n * 8 + mangle


def query(*kvs, raw=None):
    """(key index, value): value a QUERY_VALUES string, ('token', i) or
    None (no '=')."""
    if raw is not None:
        return bytes([3, len(raw)]) + raw
    if not kvs:
        return bytes([0])
    b = bytes([1 + 4 * (len(kvs) - 1)])
    for k, v in kvs:
        if v is None:
            b += bytes([k | 0x80, 0])
        elif isinstance(v, tuple):
            b += bytes([k, 4 * v[1]])
        else:
            b += bytes([k, 2 + 4 * QUERY_VALUES.index(v)])
    return b


def form(*fields):
    """(key name, value): value a FORM_VALUES string, ('sid', kind, pick),
    ('unique', name), ('long', n, ascii) or ('raw', bytes). Returns (encoded
    input, body bytes as the harness builds them)."""
    b = bytes([1, len(fields)])
    for k, v in fields:
        ki = FORM_KEYS.index(k)
        if isinstance(v, tuple) and v[0] == "sid":
            b += bytes([ki, 1 + 8 * v[1], v[2]])
        elif isinstance(v, tuple) and v[0] == "unique":
            b += bytes([ki, 2 + 8 * UNIQUE_NAMES.index(v[1])])
        elif isinstance(v, tuple) and v[0] == "long":
            b += bytes([ki, 3 + (8 if v[2] else 0), v[1] // 8])
        elif isinstance(v, tuple) and v[0] == "raw":
            b += bytes([ki, 0, len(v[1])]) + v[1]
        else:
            b += bytes([ki, 4 + 8 * FORM_VALUES.index(v)])
    return b


def raw_body(data):
    return bytes([2, len(data)]) + data


def repeated(pattern, total):
    """pattern repeated to total bytes (total % 8 < 4 goes in the mode)."""
    extra = total % 8
    assert 1 <= len(pattern) <= 8
    return bytes([3 + 4 * extra, len(pattern) - 1]) + pattern + bytes([total // 8])


NO_BODY = bytes([0])


def request(method, p, q=None, body=NO_BODY, auth=AUTH_OK, ctype=None,
            clen=None, webhook=None, expect=None, chunked=False, auth_extra=b""):
    flags = 0
    tail = b""
    if ctype is not None:
        flags |= 1
        tail += bytes([ctype])
    if clen is not None:
        flags |= 2
        tail += bytes([clen])
    if webhook is not None:
        flags |= 4
        tail += bytes([webhook])
    if expect is not None:
        flags |= 8
        tail += bytes([0 if expect else 2])
    if chunked:
        flags |= 16
    return (bytes([method]) + p + (q if q is not None else query()) +
            bytes([flags, auth]) + auth_extra + body + tail)


def svc_create(name="hello"):
    return request(POST, path(V2), body=form(("FriendlyName", name)), ctype=0)


def chan_create(*fields):
    return request(POST, path(V2, IS, CHANNELS), body=form(*fields), ctype=0)


def msg_create(*fields, ch=(CH, 0)):
    return request(POST, path(V2, IS, CHANNELS, ch, MESSAGES),
                   body=form(*fields), ctype=0)


seeds = {}

# A client's session: service, channel, three messages, pages, update,
# fetch, deletes.
seeds["session"] = b"".join([
    svc_create(),
    chan_create(("FriendlyName", "hello"), ("UniqueName", ("unique", "general")),
                ("Attributes", '{"a": [1, 2.5e3, null]}'), ("Type", "private")),
    msg_create(("Body", "hello"), ("From", "alice")),
    msg_create(("Body", "caf\u00e9 \U0001F600"), ("Attributes", '{"a": [1, 2.5e3, null]}')),
    msg_create(("Body", "x"), ("DateCreated", "2016-03-24T20:37:57.000Z")),
    request(GET, path(V2, IS, CHANNELS, CH, MESSAGES), query((0, "1"))),
    request(GET, path(V2, IS, CHANNELS, CH, MESSAGES), query((0, "1"), (2, ("token", 0)))),
    request(GET, path(V2, IS, CHANNELS, CH, MESSAGES), query((3, "desc"), (0, "2"))),
    request(POST, path(V2, IS, CHANNELS, CH, MESSAGES, (IM, sid(1))),
            body=form(("Body", "true"), ("LastUpdatedBy", "alice")), ctype=0),
    request(GET, path(V2, IS, CHANNELS, CH, MESSAGES, (IM, sid(1)))),
    request(DELETE, path(V2, IS, CHANNELS, CH, MESSAGES, (IM, sid(0)))),
    request(GET, path(V2, IS, CHANNELS), query((4, "private"))),
    request(DELETE, path(V2, IS, CHANNELS, CH)),
    request(DELETE, path(V2, IS)),
    request(GET, path(V2)),
])

# Channels addressed by unique name, in other letter cases, updated.
seeds["channels"] = b"".join([
    svc_create(),
    chan_create(("FriendlyName", "x"), ("UniqueName", ("unique", "room/1")),
                ("CreatedBy", "alice")),
    chan_create(("FriendlyName", "hello"), ("Type", "public")),
    request(GET, path(V2, IS, CHANNELS, (UNIQUE, 1))),
    request(GET, path(V2, IS, CHANNELS, (CH, sid(0, 5)))),
    request(POST, path(V2, IS, CHANNELS, (UNIQUE, 1)),
            body=form(("FriendlyName", "alice"), ("Attributes", "{bad")), ctype=0),
    request(POST, path(V2, IS, CHANNELS, (CH, sid(1))),
            body=form(("UniqueName", ("unique", "general")),
                      ("DateUpdated", "2020-01-01T00:00:00Z")), ctype=0,
            webhook=0),
    request(GET, path(V2, IS, CHANNELS), query((0, "1"))),
    request(GET, path(V2, IS, CHANNELS), query((0, "1"), (2, ("token", 0)))),
    request(DELETE, path(V2, IS, CHANNELS, (UNIQUE, 0)), webhook=1),
])

# Media: upload (Filename in the query), metadata, content, a message
# carrying it, the media in use.
seeds["media"] = b"".join([
    svc_create(),
    chan_create(("FriendlyName", "hello")),
    request(POST, path(V1, IS, MEDIA), query((5, "x.png")),
            body=raw_body(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), ctype=1, clen=0),
    request(GET, path(V1, IS, MEDIA, ME)),
    request(GET, path(V1, IS, MEDIA, ME, CONTENT)),
    msg_create(("MediaSid", ("sid", 3, 0)), ("From", "alice")),
    request(GET, path(V2, IS, CHANNELS, CH, MESSAGES)),
    msg_create(("MediaSid", ("sid", 3, 0))),
    request(POST, path(V1, IS, MEDIA), body=repeated(b"ab", 1600), ctype=1),
    request(DELETE, path(V2, IS)),
    request(GET, path(V1, IS, MEDIA, ME, CONTENT)),
])

# Service settings (webhooks), lists with every parameter.
seeds["service"] = b"".join([
    svc_create(),
    svc_create("caf\u00e9 \U0001F600"),
    request(POST, path(V2, IS), body=form(
        ("PostWebhookUrl", "https://example.com/hook"), ("WebhookMethod", "GET"),
        ("WebhookFilters", "onMessageSent"), ("WebhookFilters", "onChannelAdded"),
        ("PostWebhookRetryCount", "3")), ctype=0),
    request(GET, path(V2), query((0, "1"), (3, "desc"))),
    request(GET, path(V2), query((0, "1"), (2, ("token", 0)))),
    request(GET, path(V2), query((1, "1"), (0, "1"))),
    request(GET, path(V2), query((0, "0"))),
    request(GET, path(V2), query((3, "x.png"))),
    request(GET, path(V2), query(raw=b"PageSize=%zz")),
])

# The test endpoints: clock, stats, reset.
seeds["fixture"] = b"".join([
    request(POST, path(TEST, CLOCK), body=form(("Now", "2020-01-01T00:00:00Z"),
                                                ("Step", "5m")), ctype=0),
    request(GET, path(TEST, CLOCK)),
    svc_create(),
    request(GET, path(TEST, STATS)),
    request(POST, path(TEST, RESET), body=form(("Fixture", "false")), ctype=0),
    svc_create(),
    request(POST, path(TEST, CLOCK), body=form(("Now", "not a date")), ctype=0),
    request(DELETE, path(TEST, RESET)),
])

# Refused: credentials, limits, headers, routes, methods.
seeds["refused"] = b"".join([
    request(POST, path(V2), body=form(("FriendlyName", "hello")), auth=AUTH_NONE),
    request(POST, path(V2), body=form(("FriendlyName", "hello")),
            auth=AUTH_WRONG_TOKEN, clen=0),
    request(GET, path(V2), auth=AUTH_OTHER_ACCOUNT),
    request(GET, path(V2), auth=AUTH_NUL),
    request(GET, path(V2), auth=AUTH_CASE),
    request(POST, path(V2), body=repeated(b"a=b&", 700), expect=True,
            clen=0),
    request(POST, path(V2), body=repeated(b"a", 700), chunked=True),
    request(POST, path(V2), body=raw_body(b"FriendlyName=%zz"), ctype=0),
    request(POST, path(V2), body=form(("FriendlyName", "hello")), clen=0x80 | 2),
    request(PUT, path(V2)),
    request(DELETE, path(V2)),
    request(GET, path(V2, (RAW, b"/x%00y\xff"))),
    request(GET, path(V1, IS, MEDIA)),
    request(GET, path((RAW, b"/v2/Services/a/b/c/d/e/f/g/h/i"))),
])

# A body in chunks (flags bits 5-7: how many cuts, then where).
def chunked_create():
    r = svc_create()
    # set three cuts in the flags byte and append the cut sizes
    # (the flags byte follows method, path and query)
    p = path(V2)
    i = 1 + len(p) + 1
    assert r[i] == 1  # Content-Type only
    return r[:i] + bytes([r[i] | (3 << 5)]) + r[i + 1:] + bytes([3, 0, 5])

seeds["chunks"] = chunked_create() + request(GET, path(V2))


def main():
    d = os.path.join(HERE, "corpus", "server")
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.startswith("seed-"):
            os.remove(os.path.join(d, f))
    for name, data in seeds.items():
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
