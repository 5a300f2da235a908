#!/usr/bin/env python3
"""Writes the hand-made seed inputs of fuzz/corpus/<name>/seed-* for the
json, utf8, time, sid and token harnesses (the ops seeds are inputs the
fuzzer found, kept for the coverage they reach; see fuzz/README.md).

Usage: fuzz/make_seeds.py   (rewrites the seed-* files, leaves others alone)
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(name, seeds):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.startswith("seed-"):
            os.remove(os.path.join(d, f))
    for i, s in enumerate(seeds):
        if isinstance(s, str):
            s = s.encode("utf-8")
        with open(os.path.join(d, "seed-%02d" % i), "wb") as f:
            f.write(s)


json_seeds = [
    "{}", "[]", "0", "-0.5e+10", "1E400", '"a\\u00e9\\ud800\\n"', "true",
    "false", "null", ' \t\r\n{"a": [1, 2.0, -3e-2, {"b": null}]} ',
    '{"k":"\u00e9\u20ac\U0001F600"}', "[1,]", "{\"a\"}", "01", "1.", ".5",
    "-", "[", "]", "{\"a\":1,}", "\"\\x\"", "\"\x01\"", "tru", "nul",
    "[1] [2]", b'"\xff"', b'"\xed\xa0\x80"', b'"\xc0\x80"', b"\xef\xbb\xbf{}",
    "[" * 70 + "]" * 70,             # deeper than the 64-level test ring
    "[" * 130 + "{}" + "]" * 130,
    '{"a":' * 70 + "1" + "}" * 70,
    "[" * 200 + "]" * 199,           # one bracket short
    ("[{" * 40) + '"x":1' + ("}]" * 40),
    "[" * 300 + "]" * 300,           # beyond the reference's depth cap
]

utf8_seeds = [
    "", "plain ascii, more than eight bytes", "\u00e9", "\u20ac", "\U0001F600",
    "\x00\x00\x00\x00\x00\x00\x00\x00\x00", "abcdefg\u00e9", "\U0010FFFF",
    b"\xc2", b"\xe2\x82", b"\xf0\x9f\x98", b"\xc0\x80", b"\xc1\xbf",
    b"\xe0\x80\x80", b"\xe0\x9f\xbf", b"\xed\xa0\x80", b"\xed\xbf\xbf",
    b"\xf0\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xff",
    b"\x80", b"abcdefgh\x80", "a" * 31 + "\u00e9",
    "\u00e9" * 9, "z" * 33,
]

time_seeds = [
    "2016-03-24T20:37:57Z", "1970-01-01T00:00:00z", "2000-02-29T12:00:00+14",
    "2021-06-01T12:00:00.123456789+02:00", "1999-12-31t23:59:59-0530",
    "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "0000-12-31T23:30:00-01:00",
    "0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01",
    "2020-02-30T00:00:00Z", "2019-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
    "2016-03-24T20:37:60Z", "2016-03-24T24:00:00Z", "2016-13-01T00:00:00Z",
    "2016-03-24 20:37:57Z", "2016-03-24T20:37:57", "2016-03-24T20:37:57.Z",
    "2016-03-24T20:37:57+24:00", "2016-03-24T20:37:57+01:60",
    "2016-03-24T20:37:57+1", "2016-03-24T20:37:57+01:0",
    struct.pack("<q", 0) + b"2016", struct.pack("<q", 253402300799),
    struct.pack("<q", -62135596800), struct.pack("<q", -1),
    struct.pack("<q", 2**63 - 1),
]

HEX = "0123456789abcdef0123456789ABCDEF"
sid_seeds = [
    b"\x00IS" + HEX.encode(), b"\x01CH" + HEX.lower().encode(),
    b"\x02im" + HEX.encode(), b"\x03Me" + HEX.encode(),
    b"\x04AC" + HEX[:31].encode(), b"\x05RL" + HEX.encode() + b"0",
    b"\x00IS" + HEX[:31].encode() + b"g", b"\x01CX" + HEX.encode(),
    b"\x06zz" + HEX.encode(), b"\x07@[" + HEX.encode(),
    b"\x07`{" + HEX.encode(), b"\x00IS" + b"\x00" * 32,
]

# token: [list + 8 * order][mode][token index][position][value] rest...
token_seeds = []
for lst in range(8):
    for order in range(3):
        token_seeds.append(bytes([lst + 8 * order, 5, lst * 7 + order]))
token_seeds += [
    bytes([3, 1, 4, 10, 0x20]), bytes([3, 2, 4, 20]), bytes([3, 3, 4, 35]) + b"x",
    bytes([3, 4, 4, 5]), bytes([3, 6, 4]), bytes([0, 0]) + b"PTA" + b"0" * 32,
    bytes([16, 0]) + b"PTD" + b"f" * 32, bytes([1, 0]),
]

write("json", json_seeds)
write("utf8", utf8_seeds)
write("time", time_seeds)
write("sid", sid_seeds)
write("token", token_seeds)
