// A second, independent implementation of the client's data format
// (docs/CRYPTO.md) in JavaScript: HKDF-SHA256 through WebCrypto, and
// XChaCha20-Poly1305 from HChaCha20 (draft-irtf-cfrg-xchacha, written out
// here) plus Node's ChaCha20-Poly1305. The end-to-end suite uses it to show
// that another implementation reads what the CLI writes and the reverse.

import crypto from 'node:crypto';

const SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574];

function rotl(v, c) { return ((v << c) | (v >>> (32 - c))) >>> 0; }

function hchacha20(key, nonce16) {
  const s = new Uint32Array(16);
  s.set(SIGMA, 0);
  for (let i = 0; i < 8; i++) s[4 + i] = key.readUInt32LE(4 * i);
  for (let i = 0; i < 4; i++) s[12 + i] = nonce16.readUInt32LE(4 * i);
  const qr = (a, b, c, d) => {
    s[a] = (s[a] + s[b]) >>> 0; s[d] = rotl(s[d] ^ s[a], 16);
    s[c] = (s[c] + s[d]) >>> 0; s[b] = rotl(s[b] ^ s[c], 12);
    s[a] = (s[a] + s[b]) >>> 0; s[d] = rotl(s[d] ^ s[a], 8);
    s[c] = (s[c] + s[d]) >>> 0; s[b] = rotl(s[b] ^ s[c], 7);
  };
  for (let i = 0; i < 10; i++) {
    qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15);
    qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14);
  }
  const out = Buffer.alloc(32);
  [0, 1, 2, 3, 12, 13, 14, 15].forEach((w, i) => out.writeUInt32LE(s[w], 4 * i));
  return out;
}

function subkeyAndNonce(key, nonce24) {
  return [hchacha20(key, nonce24.subarray(0, 16)),
    Buffer.concat([Buffer.alloc(4), nonce24.subarray(16, 24)])];
}

/** The per-type key, through WebCrypto's HKDF. */
export async function typeKey(master, type) {
  const ikm = await crypto.subtle.importKey('raw', master, 'HKDF', false, ['deriveBits']);
  const bits = await crypto.subtle.deriveBits({
    name: 'HKDF', hash: 'SHA-256',
    salt: new TextEncoder().encode('flamingo-sync/v1'),
    info: new TextEncoder().encode(`data:${type}`),
  }, ikm, 256);
  return Buffer.from(bits);
}

/** Opens an envelope; throws when it does not authenticate. */
export async function openEnvelope(master, type, env) {
  if (env.length < 48 || env[0] !== 0x46 || env[1] !== 0x53 || env[2] !== 1 || env[3] !== 2) {
    throw new Error('not a v1 XChaCha20-Poly1305 envelope');
  }
  const header = env.subarray(0, 8);
  const [sub, nonce] = subkeyAndNonce(await typeKey(master, type), env.subarray(8, 32));
  const d = crypto.createDecipheriv('chacha20-poly1305', sub, nonce, { authTagLength: 16 });
  d.setAAD(Buffer.concat([header, Buffer.from(type)]), { plaintextLength: env.length - 48 });
  d.setAuthTag(env.subarray(env.length - 16));
  return Buffer.concat([d.update(env.subarray(32, env.length - 16)), d.final()]);
}

/** Seals plaintext for type under key version kv with a random nonce. */
export async function sealEnvelope(master, type, kv, plaintext) {
  const header = Buffer.from([0x46, 0x53, 1, 2, 0, 0, 0, 0]);
  header.writeUInt32BE(kv, 4);
  const nonce24 = crypto.randomBytes(24);
  const [sub, nonce] = subkeyAndNonce(await typeKey(master, type), nonce24);
  const c = crypto.createCipheriv('chacha20-poly1305', sub, nonce, { authTagLength: 16 });
  c.setAAD(Buffer.concat([header, Buffer.from(type)]), { plaintextLength: plaintext.length });
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([header, nonce24, ct, c.getAuthTag()]);
}
