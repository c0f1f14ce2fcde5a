#!/usr/bin/env python3
"""Writes the hand-written seed corpora of the fuzz targets:

    tests/fuzz/gen_seeds.py        (from the repository root)

Each seed is tests/fuzz/corpus/<target>/seed-<name>. Other files there
(regress-*: minimised reproducers of fixed bugs) are left alone. Request
seeds use the placeholders of fuzz_request.c; their Content-Length counts
the placeholders at their expanded, fixed lengths.
"""
import base64
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

# Expanded lengths of the placeholders (see fuzz_request.c).
EXPANDED = {
    "@BEARER@": 41, "@COOKIE@": 40, "@EMAIL@": 31, "@PASSWORD@": 20,
    "@CODE@": 9, "@TEMP@": 41, "@DEVICE@": 36, "@KEYVER@": 10,
    "@REUSED@": 41,
}


def body_len(body: bytes) -> int:
    n = len(body)
    for ph, size in EXPANDED.items():
        n += body.count(ph.encode()) * (size - len(ph))
    return n


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


BEARER = "Authorization: Bearer @BEARER@"
COOKIE = "Cookie: flm_session=@COOKIE@"
ORIGIN = "Origin: @ORIGIN@"
JSON = "Content-Type: application/json"


def req(method, path, headers=(), body=None, version="HTTP/1.1",
        length=True) -> bytes:
    lines = [f"{method} {path} {version}", "Host: fuzz"]
    lines += list(headers)
    raw = b""
    if body is not None:
        raw = body.encode() if isinstance(body, str) else body
        if length:
            lines.append(f"Content-Length: {body_len(raw)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + raw


def bearer(method, path, body=None, extra=()):
    hs = [BEARER] + list(extra)
    if body is not None:
        hs.append(JSON)
    return req(method, path, hs, body)


def cookie(method, path, body=None, extra=(), origin=True):
    hs = [COOKIE] + ([ORIGIN] if origin else []) + list(extra)
    if body is not None:
        hs.append(JSON)
    return req(method, path, hs, body)


def anon(method, path, body=None, extra=()):
    hs = list(extra) + ([JSON] if body is not None else [])
    return req(method, path, hs, body)


WRAPPED = b64(bytes(range(48)))
KDF = '{"name":"argon2id","salt":"AAAAAAAAAAAAAAAAAAAAAA==","t":3,' \
      '"m":65536,"p":1}'
BLOB = b64(b"\x01\x02ciphertext\xff" * 3)

REQUEST = {
    # accounts
    "signup": anon("POST", "/api/auth/signup",
                   '{"email":"Seed.User@Example.com","password":'
                   '"correct horse battery"}')
    + anon("POST", "/api/auth/signup",
           '{"email":"no-at-sign","password":"short"}'),
    "signup-bad-fields": anon("POST", "/api/auth/signup",
                              '{"email":1,"password":null,"extra":true}')
    + anon("POST", "/api/auth/signup",
           '{"email":"a@b.c","password":"12345678","email":"dup"}'),
    "login": anon("POST", "/api/auth/login",
                  '{"email":"@EMAIL@","password":"@PASSWORD@"}'),
    "login-wrong": anon("POST", "/api/auth/login",
                        '{"email":"@EMAIL@","password":"wrong password"}')
    + anon("POST", "/api/auth/login",
           '{"email":"nobody@example.com","password":"x"}'),
    "logout": cookie("POST", "/api/auth/logout", "{}"),
    "session": cookie("GET", "/api/auth/session", origin=False)
    + req("GET", "/api/auth/session",
          ["Cookie: flm_session=flm_web_0123456789abcdef0123456789abcdef"]),
    "password-change": cookie(
        "PUT", "/api/auth/password",
        '{"current_password":"@PASSWORD@","new_password":"new password 1"}'),
    "password-wrong": cookie(
        "PUT", "/api/auth/password",
        '{"current_password":"not it","new_password":"short"}')
    + cookie("PUT", "/api/auth/password",
             '{"current_password":"not it at all","new_password":'
             '"long enough"}'),
    "csrf": cookie("POST", "/api/sync/claim", '{"user_code":"@CODE@"}',
                   origin=False)
    + req("POST", "/api/sync/claim",
          [COOKIE, "Origin: http://evil.example", JSON],
          '{"user_code":"@CODE@"}')
    + req("POST", "/api/sync/claim",
          [COOKIE, "Sec-Fetch-Site: same-origin", "Content-Type: text/plain"],
          '{"user_code":"@CODE@"}'),
    "turnstile": anon("POST", "/api/auth/verify-turnstile",
                      '{"token":"XXXX.DUMMY.TOKEN.XXXX"}')
    + anon("POST", "/api/auth/verify-turnstile", '{"token":""}'),

    # device authorisation
    "init": anon("POST", "/api/sync/init",
                 '{"device_name":"Laptop \\u00e9","platform":"linux",'
                 '"app_version":"1.2.3"}')
    + anon("POST", "/api/sync/init", '{"device_name":"bad\\u0001name"}')
    + anon("POST", "/api/sync/init"),
    "request": cookie("GET", "/api/sync/request?code=@CODE@", origin=False)
    + cookie("GET", "/api/sync/request?code=bcdf-ghjk", origin=False)
    + cookie("GET", "/api/sync/request", origin=False),
    "claim-code": cookie("POST", "/api/sync/claim",
                         '{"user_code":"@CODE@"}')
    + cookie("POST", "/api/sync/claim", '{"user_code":"@CODE@"}'),
    "claim-temp": bearer("POST", "/api/sync/claim",
                         '{"temp_token":"@TEMP@"}')
    + bearer("POST", "/api/sync/claim",
             '{"temp_token":"flm_temp_zz","user_code":"AAAA"}'),
    "deny": cookie("POST", "/api/sync/deny", '{"user_code":"@CODE@"}')
    + anon("POST", "/api/sync/token", '{"temp_token":"@TEMP@"}'),
    "token-poll": anon("POST", "/api/sync/token", '{"temp_token":"@TEMP@"}')
    + anon("POST", "/api/sync/token", '{"temp_token":"@TEMP@"}'),
    "token-exchange": cookie("POST", "/api/sync/claim",
                             '{"user_code":"@CODE@"}')
    + anon("POST", "/api/sync/token", '{"temp_token":"@TEMP@"}')
    + anon("POST", "/api/sync/token", '{"temp_token":"@TEMP@"}'),
    "token-bad": anon("POST", "/api/sync/token",
                      '{"temp_token":"flm_temp_0123456789abcdef0123456789abcdeF"}')
    + anon("POST", "/api/sync/token", '{"temp_token":'
           '"flm_temp_00000000000000000000000000000000"}'),
    "rotate": bearer("POST", "/api/sync/rotate", "{}")
    + bearer("GET", "/api/sync/config"),
    "token-reuse": req("GET", "/api/sync/config",
                       ["Authorization: Bearer @REUSED@"])
    + req("POST", "/api/sync/rotate",
          ["Authorization: Bearer @REUSED@", JSON], "{}"),
    "revoke": bearer("POST", "/api/sync/revoke", "{}")
    + bearer("GET", "/api/sync/config"),

    # configuration
    "config": bearer("GET", "/api/sync/config")
    + bearer("PUT", "/api/sync/config",
             '{"history":true,"secret":false,"setting":null}')
    + bearer("PUT", "/api/sync/config", '{}')
    + bearer("PUT", "/api/sync/config", '{"secret":true}'),
    "config-type": bearer("GET", "/api/sync/config/data-type/collection")
    + cookie("PUT", "/api/sync/config/data-type/environment",
             '{"enabled":true}')
    + bearer("PUT", "/api/sync/config/data-type/nope", '{"enabled":1}'),

    # master key
    "key-get": bearer("GET", "/api/sync/key")
    + cookie("GET", "/api/sync/key", origin=False),
    "key-put": bearer("PUT", "/api/sync/key",
                      f'{{"wrapped_key":"{WRAPPED}","kdf":{KDF}}}')
    + bearer("PUT", "/api/sync/key",
             f'{{"wrapped_key":"{WRAPPED}","kdf":{{}},'
             f'"expected_version":0}}'),
    "key-put-bad": bearer("PUT", "/api/sync/key",
                          f'{{"wrapped_key":"{b64(bytes(32))}","kdf":{{}}}}')
    + bearer("PUT", "/api/sync/key",
             '{"wrapped_key":"not base64!","kdf":{"a":[1,2,{"b":null}]}}'),
    "key-rotate": bearer(
        "POST", "/api/sync/key/rotate",
        f'{{"wrapped_key":"{WRAPPED}","kdf":{KDF},'
        '"expected_version":@KEYVER@,"items":['
        + ",".join(f'{{"type":"{t}","encrypted_data":"{BLOB}"}}'
                   for t in ("history", "environment", "secret",
                             "collection", "setting")) + ']}')
    + bearer("POST", "/api/sync/key/rotate",
             f'{{"wrapped_key":"{WRAPPED}","kdf":{{}},'
             '"expected_version":@KEYVER@,"items":[]}')
,
    "key-rotate-bad": bearer(
        "POST", "/api/sync/key/rotate",
        f'{{"wrapped_key":"{WRAPPED}","kdf":{{}},'
        '"expected_version":@KEYVER@,'
        f'"items":[{{"type":"history","encrypted_data":"{BLOB}"}},'
        f'{{"type":"history","encrypted_data":""}}]}}')
    + bearer("POST", "/api/sync/key/rotate",
             f'{{"wrapped_key":"{WRAPPED}","kdf":{{}},"expected_version":0,'
             '"items":[{"type":"nope","encrypted_data":"AA=="},1,{}]}'),

    # encrypted data
    "data-list": bearer("GET", "/api/sync/data")
    + bearer("GET", "/api/sync/data?include=data")
    + bearer("GET", "/api/sync/data?include=all"),
    "data-get": bearer("GET", "/api/sync/data/history")
    + bearer("GET", "/api/sync/data/history",
             extra=['If-None-Match: "1", "2", "3"'])
    + bearer("GET", "/api/sync/data/secret",
             extra=["Accept: application/octet-stream"])
    + bearer("HEAD", "/api/sync/data/setting"),
    "data-put": bearer("PUT", "/api/sync/data/history",
                       f'{{"encrypted_data":"{BLOB}","key_version":1}}')
    + bearer("PUT", "/api/sync/data/history?base_version=1",
             f'{{"encrypted_data":"{BLOB}","base_version":2}}',
             extra=['If-Match: "2"']),
    "data-put-raw": req("PUT", "/api/sync/data/collection?key_version=1",
                        [BEARER, "Content-Type: application/octet-stream",
                         'If-Match: "0"'], b"\x00\x01raw ciphertext\xff")
    + req("PUT", "/api/sync/data/collection",
          [BEARER, "Content-Type: application/octet-stream"], b""),
    "data-put-bad": bearer("PUT", "/api/sync/data/history",
                           '{"encrypted_data":"QUJD","key_version":-1}')
    + bearer("PUT", "/api/sync/data/history",
             '{"encrypted_data":"QUJ=","base_version":"1"}')
    + req("PUT", "/api/sync/data/history", [BEARER,
          "Content-Type: text/plain"], "QUJD"),
    "data-delete": bearer("DELETE", "/api/sync/data/environment")
    + bearer("DELETE", "/api/sync/data/secret", extra=["If-Match: 99"]),
    "revisions": bearer("GET", "/api/sync/data/history/revisions")
    + bearer("GET", "/api/sync/data/history/revisions/1")
    + bearer("GET", "/api/sync/data/history/revisions/0x1"),

    # events, devices, audit
    "events": bearer("GET", "/api/sync/events?after=0&wait=0")
    + bearer("GET", "/api/sync/events?after=-1"),
    "events-stream": bearer("GET", "/api/sync/events/stream",
                            extra=["Last-Event-ID: 1"])
    + cookie("GET", "/api/sync/events/stream?after=0", origin=False)
    + bearer("GET", "/api/sync/events/stream", extra=["Last-Event-ID: x"]),
    "devices": bearer("GET", "/api/devices")
    + cookie("DELETE", "/api/devices/@DEVICE@")
    + bearer("DELETE", "/api/devices/00000000-0000-4000-8000-000000000000"),
    "audit": cookie("GET", "/api/audit?limit=5", origin=False)
    + bearer("GET", "/api/audit?limit=201&before=1"),

    # operations and HTTP edges
    "ops": anon("GET", "/api/info") + anon("GET", "/healthz")
    + anon("GET", "/readyz")
    + req("GET", "/metrics", ["Authorization: Bearer fuzz-metrics-token"])
    + req("GET", "/metrics", ["Authorization: Bearer x"]),
    "forwarded": req("POST", "/api/sync/init",
                     ["X-Forwarded-For: 203.0.113.7, 127.0.0.1", JSON,
                      "User-Agent: Flamingo/1.0 (fuzz)"], "{}")
    + req("GET", "/api/devices", [BEARER,
          "X-Forwarded-For: 2001:db8::1,::1, 127.0.0.1"])
    + req("GET", "/healthz", ["X-Forwarded-For: not-an-ip, 10.0.0.1"]),
    "preflight": req("OPTIONS", "/api/sync/data/history",
                     ["Origin: http://other.example",
                      "Access-Control-Request-Method: PUT"])
    + anon("OPTIONS", "/healthz"),
    "not-found": anon("GET", "/api/nope") + anon("PATCH", "/api/sync/key")
    + anon("BREW", "/api/sync/key"),
    "too-large": req("POST", "/api/auth/login",
                     [JSON, "Content-Length: 99999999"], b"{}", length=False)
    + req("GET", "/healthz", ["Content-Length: 2"], b"{}", length=False),
    "long-url": anon("GET", "/api/sync/data/" + "a" * 2100),
    "chunked": req("POST", "/api/sync/init",
                   [JSON, "Transfer-Encoding: chunked"],
                   b'5\r\n{"dev\r\n14\r\nice_name":"chunked"}\r\n0\r\n\r\n',
                   length=False),
    "http10": req("GET", "/api/sync/config", [BEARER], version="HTTP/1.0")
    + b"GET /healthz\r\n\r\n",
    "expect-continue": req("PUT", "/api/sync/data/setting",
                           [BEARER, JSON, "Expect: 100-continue"],
                           f'{{"encrypted_data":"{BLOB}"}}'),
    "deep-json": bearer("PUT", "/api/sync/config",
                        '{"history":' + "[" * 20 + "]" * 20 + "}"),
    "bad-bearer": req("GET", "/api/sync/config",
                      ["Authorization: Basic Zm9vOmJhcg=="])
    + req("GET", "/api/sync/config",
          ["Authorization: Bearer flm_sync_0123456789abcdef0123456789abcdef"])
    + req("GET", "/api/sync/config", ["Authorization: bearer @COOKIE@"]),
}

JSON_SEEDS = {
    "signup": '{"email":"User@Example.COM","password":"correct horse"}',
    "signup-turnstile": '{"email":"a@b.co","password":"12345678",'
                        '"turnstile_token":"tok"}',
    "login": '{"email":"x","password":"y"}',
    "password": '{"current_password":"old","new_password":"new password"}',
    "init": '{"device_name":"Laptop \\u00e9\\ud83d\\ude00","platform":'
            '"linux","app_version":null}',
    "claim-code": '{"user_code":"bcdf-ghjk"}',
    "claim-temp": '{"temp_token":"flm_temp_0123456789abcdef0123456789abcdef"}',
    "data": f'{{"encrypted_data":"{BLOB}","key_version":1,'
            '"base_version":9007199254740992}',
    "data-bad": '{"encrypted_data":"QUJ","key_version":1000000001,'
                '"base_version":-1}',
    "key": f'{{"wrapped_key":"{WRAPPED}","kdf":{KDF},"expected_version":0}}',
    "rotate": f'{{"wrapped_key":"{WRAPPED}","kdf":{{}},"expected_version":1,'
              f'"items":[{{"type":"history","encrypted_data":"{BLOB}"}},'
              '{"type":"setting","encrypted_data":"AA=="}]}',
    "config": '{"history":true,"environment":false,"secret":null,'
              '"collection":true,"setting":false}',
    "enabled": '{"enabled":false}',
    "mixed": '{"s":"abc","i":-3,"b":true,"o":{"k":"v"},"a":[1,2],"r":""}',
    "unknown-field": '{"email":"a@b.c","password":"12345678","admin":true}',
    "duplicate": '{"email":"a@b.c","email":"c@d.e"}',
    "not-object": '["email","password"]',
    "numbers": '{"i":1e3,"key_version":1.0,"base_version":'
               '99999999999999999999}',
    "escapes": '{"r":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00ff"}',
    "nul": '{"r":"a\\u0000b"}',
    "empty": '{}',
    "deep": '{"o":' + '{"a":' * 30 + '1' + '}' * 30 + '}',
    "long-string": '{"email":"' + "a" * 250 + '@b.co","password":"' +
                   "p" * 1025 + '"}',
    "bad-utf8": b'{"r":"\xc3\x28\xff"}',
    "email-edge": '{"email":"@a.b","password":"x","r":"a@b.","s":"a@.b"}',
}

B64_SEEDS = {
    "empty": b"",
    "one": b"QQ==",
    "two": b"QUI=",
    "three": b"QUJD",
    "long": base64.b64encode(bytes(range(256))),
    "bad-padding": b"QQ=",
    "inner-padding": b"QQ==QUJD",
    "trailing-bits": b"QR==",
    "url-alphabet": b"-_-_",
    "whitespace": b"QUJD\nQUJD",
    "high-bytes": b"QU\xc3\xa9",
    "nul": b"QU\x00D",
    "plus-slash": b"+/+/",
    "binary": bytes([0, 1, 2, 0xff, 0xfe, 0x80, 0x7f]),
}

TOKEN_SEEDS = {
    "sync": b"flm_sync_0123456789abcdef0123456789abcdef",
    "temp": b"flm_temp_fedcba9876543210fedcba9876543210",
    "web": b"flm_web_00000000000000000000000000000000",
    "upper-hex": b"flm_sync_0123456789ABCDEF0123456789ABCDEF",
    "short": b"flm_sync_0123",
    "code": b"BCDF-GHJK",
    "code-lower": b"bcdfghjk",
    "code-bad": b"BCDA-GHJK",
    "code-dash": b"BCD-FGHJK",
    "uuid": b"123e4567-e89b-42d3-a456-426614174000",
    "uuid-upper": b"123E4567-E89B-42D3-A456-426614174000",
    "log-path": b"/api/sync/request?code=BCDF-GHJK&token=abc&x=1",
    "log-bearer": b"/x/flm_sync_0123456789abcdef0123456789abcdef/y "
                  b"FLM_TEMP_0123456789abcdef0123456789abcdef;z",
    "log-controls": b"a\x01b\x7f\"c\\d\x1b[31m",
    "log-query": b"?session_token=0123456789abcdef0123456789abcdef"
                 b"&temp_token=flm_temp_0123456789abcdef0123456789abcdef",
}


def write(target, seeds):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    for name in os.listdir(d):
        if name.startswith("seed-"):
            os.unlink(os.path.join(d, name))
    for name, data in seeds.items():
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(data)
    print(f"{target}: {len(seeds)} seeds", file=sys.stderr)


write("fuzz_request", REQUEST)
write("fuzz_json", JSON_SEEDS)
write("fuzz_b64", B64_SEEDS)
write("fuzz_token", TOKEN_SEEDS)

# fuzz_envelope: byte 0 = type (low 3 bits) | demand key version 1 (bit 3);
# then the envelope. The vectors are those of docs/CRYPTO.md.
V1 = bytes.fromhex(
    "4653010200000001404142434445464748494a4b4c4d4e4f5051525354555657"
    "3323876967df2ae6a5cc9b28fd31717a3fe4386c15a7a0f54504bba1202c0483"
    "75376ad3fad13c2aeb32eb")
V2 = bytes.fromhex(
    "4653010201020304808182838485868788898a8b8c8d8e8f9091929394959697"
    "63199b60b7158acba6eb1e4f51026c47")
ENVELOPE_SEEDS = {
    "vector1-secret": bytes([2]) + V1,
    "vector1-secret-kv1": bytes([2 | 8]) + V1,
    "vector1-wrong-type": bytes([0]) + V1,
    "vector2-history": bytes([0]) + V2,
    "vector2-history-kv1": bytes([8]) + V2,
    "flipped-tag": bytes([2]) + V1[:-1] + bytes([V1[-1] ^ 1]),
    "aes-gcm-id": bytes([2]) + V1[:3] + b"\x01" + V1[4:],
    "format-2": bytes([2]) + V1[:2] + b"\x02" + V1[3:],
    "kv-zero": bytes([0]) + V2[:4] + b"\0\0\0\0" + V2[8:],
    "header-only": bytes([2]) + V1[:32],
    "short": bytes([2]) + V1[:47],
    "bad-type": bytes([7]) + V1,
    "empty": b"\x01",
    "text": b"\x03hello, world",
}

KDF_SALT = '"oKGio6SlpqeoqaqrrK2urw=="'


def kdf(t="2", m="65536", p="1", alg='"argon2id"', version="19",
        salt=KDF_SALT, extra=""):
    return ('{"alg":%s,"version":%s,"t":%s,"m":%s,"p":%s,"salt":%s%s}'
            % (alg, version, t, m, p, salt, extra))


KDF_SEEDS = {
    "vector": kdf(),
    "default": kdf(t="3"),
    "reordered": '{"salt":%s,"p":1,"m":65536,"t":3,"version":19,'
                 '"alg":"argon2id"}' % KDF_SALT,
    "max": kdf(t="16", m="1048576"),
    "weak-t": kdf(t="1"),
    "weak-m": kdf(m="65535"),
    "huge-m": kdf(m="104857600"),
    "huge-t": kdf(t="4294967296"),
    "int64-max": kdf(m="9223372036854775807"),
    "negative": kdf(t="-1"),
    "float": kdf(t="2.0"),
    "string-t": kdf(t='"2"'),
    "p4": kdf(p="4"),
    "argon2i": kdf(alg='"argon2i"'),
    "version16": kdf(version="16"),
    "short-salt": kdf(salt='"oKGio6SlpqeoqaqrrK2u"'),
    "extra-member": kdf(extra=',"x":1'),
    "duplicate": '{"t":2,"t":2,"alg":"argon2id","version":19,"m":65536,'
                 '"p":1}',
    "missing-salt": '{"alg":"argon2id","version":19,"t":2,"m":65536,"p":1}',
    "array": "[]",
    "nested": '{"alg":{"alg":{}}}',
    "padded": kdf() + " " * 1100,
}

write("fuzz_envelope", ENVELOPE_SEEDS)
write("fuzz_kdf", KDF_SEEDS)

# fuzz_answer: bytes 0-1 = HTTP status selector (100 + n % 500), byte 2 =
# Retry-After; then the body.
def answer(status, body):
    n = status - 100
    return bytes([n >> 8, n & 0xff, 0]) + body.encode()


LONG = "\u00e9" * 300
ANSWER_SEEDS = {
    "ok": answer(200, '{"success":true,"data":{"version":1}}'),
    "ok-no-data": answer(200, '{"success":true}'),
    "ok-on-404": answer(404, '{"success":true,"data":{}}'),
    "conflict": answer(409, '{"success":false,"error":"conflict","message":'
                       '"stale","data":{"type":"history","version":3}}'),
    "slow-down": answer(400, '{"success":false,"error":"slow_down",'
                        '"message":"x","data":{"interval":7}}'),
    "slow-down-huge": answer(400, '{"success":false,"error":"slow_down",'
                             '"message":"x","data":{"interval":99999}}'),
    "unauthorized-html": answer(401, "<html>no</html>"),
    "escape-message": answer(500, '{"success":false,"error":"internal_error",'
                             '"message":"\\u001b[31mred\\u0007"}'),
    "long-utf8-message": answer(500, '{"success":false,"error":"x",'
                                '"message":"' + LONG + '"}'),
    "long-code": answer(400, '{"success":false,"error":"' + "c" * 200 +
                        '\u00e9","message":"m"}'),
    "not-json": answer(502, "bad gateway"),
    "empty": answer(204, ""),
    "array": answer(200, "[1,2,3]"),
    "dup-keys": answer(200, '{"success":true,"success":false,"data":{}}'),
}

write("fuzz_answer", ANSWER_SEEDS)


# fuzz_sse: bytes 0-1 = split point selector (n % (len + 1)); then the
# event stream as the server sends it.
def sse(split, text):
    return bytes([split >> 8, split & 0xff]) + text


SSE_EVENT = (b'id: 7\nevent: data_updated\ndata: {"id":7,"type":'
             b'"data_updated","data_type":"history","version":3,'
             b'"origin_device_id":"d1","created_at":"2026-12-05T00:00:00Z"}'
             b'\n\n')
SSE_SEEDS = {
    "open": sse(5, b"retry: 3000\n: connected\n\n"),
    "event": sse(20, SSE_EVENT),
    "ping": sse(3, b": ping\n\n"),
    "revoked": sse(30, b'id: 9\nevent: device_revoked\ndata: {"id":9,'
                   b'"type":"device_revoked","device_id":"d2"}\n\n'),
    "resync": sse(12, b'event: resync\ndata: {"next":42}\n\n'),
    "crlf": sse(9, SSE_EVENT.replace(b"\n", b"\r\n")),
    "cr": sse(9, SSE_EVENT.replace(b"\n", b"\r")),
    "multiline": sse(7, b"data: a\ndata:b\ndata\ndata:  c\n\n"),
    "id-only": sse(4, b"id: 5\n\nid\n\ndata: x\n\n"),
    "bom": sse(1, b"\xef\xbb\xbfdata: x\n\n"),
    "retry-bad": sse(2, b"retry: 1e3\nretry: -1\nretry: 99999999999\n"),
    "long-line": sse(100, b"data: " + b"x" * (64 * 1024) + b"\n\n"),
    "long-id": sse(3, b"id: " + b"1" * 80 + b"\n\n"),
}

write("fuzz_sse", SSE_SEEDS)
