#!/usr/bin/env python3
"""Independent computation of the test vectors in docs/CRYPTO.md.

Uses Python's `cryptography` package (HKDF-SHA256, ChaCha20-Poly1305,
Argon2id) and a from-the-RFC HChaCha20, so the vectors do not come from the
C code they check. Run: python3 tests/client/gen_vectors.py
"""
import base64
import struct
import unicodedata

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TYPES = ["history", "environment", "secret", "collection", "setting"]


def rotl(v, c):
    return ((v << c) & 0xffffffff) | (v >> (32 - c))


def qr(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = rotl(s[b] ^ s[c], 7)


def hchacha20(key, nonce16):
    """draft-irtf-cfrg-xchacha section 2.2."""
    s = list(struct.unpack("<4I", b"expand 32-byte k")) + \
        list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))
    for _ in range(10):
        qr(s, 0, 4, 8, 12); qr(s, 1, 5, 9, 13); qr(s, 2, 6, 10, 14); qr(s, 3, 7, 11, 15)
        qr(s, 0, 5, 10, 15); qr(s, 1, 6, 11, 12); qr(s, 2, 7, 8, 13); qr(s, 3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def xchacha20poly1305_encrypt(key, nonce24, pt, ad):
    sub = hchacha20(key, nonce24[:16])
    return ChaCha20Poly1305(sub).encrypt(b"\0\0\0\0" + nonce24[16:], pt, ad)


def type_key(master, t):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"flamingo-sync/v1",
                info=b"data:" + t.encode()).derive(master)


def envelope(master, t, kv, nonce, pt):
    header = b"FS\x01\x02" + struct.pack(">I", kv)
    return header + nonce + xchacha20poly1305_encrypt(
        type_key(master, t), nonce, pt, header + t.encode())


def main():
    master = bytes(range(32))
    print("master key:", master.hex())
    for t in TYPES:
        print(f"type key {t}:", type_key(master, t).hex())
    v1 = envelope(master, "secret", 1, bytes(range(0x40, 0x58)),
                  b'{"api_key":"flamingo-test"}')
    print("envelope 1 (secret, kv 1):", v1.hex())
    v2 = envelope(master, "history", 0x01020304, bytes(range(0x80, 0x98)), b"")
    print("envelope 2 (history, kv 0x01020304, empty):", v2.hex())

    pw = b"correct horse battery staple"
    salt = bytes(range(0xa0, 0xb0))
    t, m, p = 2, 65536, 1
    wk = Argon2id(salt=salt, length=32, iterations=t, lanes=p,
                  memory_cost=m).derive(pw)
    print("wrapping key:", wk.hex())
    ad = b"FSKW\x01\x13" + struct.pack(">III", t, m, p) + salt
    nonce = bytes(range(24))
    wrapped = nonce + xchacha20poly1305_encrypt(wk, nonce, master, ad)
    print("wrapped key hex:", wrapped.hex())
    print("wrapped key b64:", base64.b64encode(wrapped).decode())
    print("kdf json:", '{"alg":"argon2id","version":19,"t":2,"m":65536,"p":1,'
          f'"salt":"{base64.b64encode(salt).decode()}"}}')

    # a passphrase in two Unicode forms: hashed in NFC, one key
    for form in ["P\u00e4ssw\u00f6rd caf\u00e9 \u212bngstr\u00f6m",
                 "Pa\u0308sswo\u0308rd cafe\u0301 \u00c5ngstro\u0308m"]:
        nfc = unicodedata.normalize("NFC", form).encode()
        k = Argon2id(salt=salt, length=32, iterations=t, lanes=p,
                     memory_cost=m).derive(nfc)
        print("passphrase", form.encode().hex(), "-> NFC", nfc.hex(),
              "-> wrapping key", k.hex())


if __name__ == "__main__":
    main()
