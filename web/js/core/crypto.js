// The key hierarchy and envelopes of docs/CRYPTO.md (chalicelib/shared/crypto.py), on
// WebCrypto (PBKDF2, HKDF, HMAC, SHA-256, Ed25519) and the audited @noble/ciphers
// XChaCha20-Poly1305 (WebCrypto has none). Key epochs (re-key): epoch 0 is the original
// format; at epoch E ≥ 1 the verifier holds data key ‖ E (4 bytes, big-endian) and items
// and sealed deletions bind one more associated-data line, `epoch:<E>`.
import { xchacha20poly1305 } from "../../vendor/noble-ciphers.js";
import { Nt2Error } from "./errors.js";
import { b64url, base58, canonicalJson, concat, equalText, fromB64url, fromUtf8, hex, randomBytes, utf8 } from "./bytes.js";

export const KDF_ALGORITHM = "PBKDF2-SHA256";
export const MIN_ITERATIONS = 100_000;
export const MAX_ITERATIONS = 10_000_000;
export const DEFAULT_ITERATIONS = 100_000;
export const FORMAT_VERSION = 1;
export const NONCE_BYTES = 24;
export const KEY_BYTES = 32;
export const MIN_PADDED = 128;
export const ITEM_FIELDS = ["title", "body", "username", "url"];
export const KIT_FIELDS = ["server", "keyDid", "kdf", "saltHex"];

const INFO = {
  seed: "nt2-sync/v1/key-did-seed",
  verifier: "nt2-sync/v1/verifier-key",
  item: "nt2-sync/v1/item-key",
  attachment: "nt2-sync/v1/attachment-key",
  local: "nt2-sync/v1/local-secret-key",
  keyCheck: "nt2-sync/v1/key-check",
  kitMac: "nt2-sync/v1/kit-mac",
};

// Refusals, each with the code the facade reports.
export class CryptoError extends Nt2Error {}
export const tampered = (m = "ciphertext failed authentication") => new CryptoError("tampered", m);
export const unsupported = (m) => new CryptoError("unsupported_format", m);
export const weakKdf = (m) => new CryptoError("weak_kdf", m);
export const verifierMismatch = () => new CryptoError("verifier_mismatch", "the verifier does not open with this key");

const subtle = globalThis.crypto.subtle;

export function checkKdf(kdf) {
  if (!kdf || typeof kdf !== "object" || Array.isArray(kdf)) throw weakKdf("no KDF parameters");
  const { algorithm, iterations } = kdf;
  if (algorithm !== KDF_ALGORITHM) throw weakKdf(`the KDF algorithm is not ${KDF_ALGORITHM}`);
  if (!Number.isSafeInteger(iterations)) throw weakKdf("KDF iterations are not an integer");
  if (iterations < MIN_ITERATIONS) throw weakKdf(`${iterations} PBKDF2 iterations is below the minimum of ${MIN_ITERATIONS}`);
  if (iterations > MAX_ITERATIONS) throw weakKdf(`${iterations} PBKDF2 iterations is above the maximum of ${MAX_ITERATIONS}`);
  return iterations;
}

export function kdfParams(iterations = DEFAULT_ITERATIONS) {
  const params = { algorithm: KDF_ALGORITHM, iterations };
  checkKdf(params);
  return params;
}

export async function deriveKek(password, salt, iterations) {
  checkKdf({ algorithm: KDF_ALGORITHM, iterations });
  const base = await subtle.importKey("raw", utf8(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, base, 256);
  return new Uint8Array(bits);
}

// HKDF-SHA256 with no salt (RFC 5869: HashLen zeros, which WebCrypto takes as an empty salt).
export async function hkdf(ikm, info, length = KEY_BYTES) {
  const base = await subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const bits = await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info: utf8(info) }, base, length * 8);
  return new Uint8Array(bits);
}

export async function sha256(bytes) {
  return new Uint8Array(await subtle.digest("SHA-256", bytes));
}

export async function hmacSha256(key, data) {
  const k = await subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await subtle.sign("HMAC", k, data));
}

// -- Ed25519 and did:key ---------------------------------------------------------------------
const PKCS8_PREFIX = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);

async function signingKey(seed) {
  return subtle.importKey("pkcs8", concat(PKCS8_PREFIX, seed), { name: "Ed25519" }, true, ["sign"]);
}

export async function publicKeyOfSeed(seed) {
  const jwk = await subtle.exportKey("jwk", await signingKey(seed));
  return fromB64url(jwk.x);
}

export function encodeDidKey(publicKey) {
  if (publicKey.length !== 32) throw new Error("Ed25519 public keys are 32 bytes");
  return "did:key:z" + base58(concat(new Uint8Array([0xed, 0x01]), publicKey));
}

export async function keyDidOfSeed(seed) {
  return encodeDidKey(await publicKeyOfSeed(seed));
}

export async function sign(seed, message) {
  return new Uint8Array(await subtle.sign({ name: "Ed25519" }, await signingKey(seed), message));
}

export const keyDidSeed = (kek) => hkdf(kek, INFO.seed);

export async function keyDidFromKek(kek) {
  const seed = await keyDidSeed(kek);
  return { seed, keyDid: await keyDidOfSeed(seed) };
}

export async function keyCheck(dataKey) {
  return hex(await hkdf(dataKey, INFO.keyCheck, 16));
}

// -- envelopes -------------------------------------------------------------------------------
export function sealRaw(key, plaintext, aad, nonce = null) {
  nonce = nonce ?? randomBytes(NONCE_BYTES);
  if (nonce.length !== NONCE_BYTES) throw new Error("XChaCha20-Poly1305 nonces are 24 bytes");
  const body = xchacha20poly1305(key, nonce, aad).encrypt(plaintext);
  return concat(new Uint8Array([FORMAT_VERSION]), nonce, body);
}

export function openRaw(key, envelope, aad) {
  if (envelope.length < 1 + NONCE_BYTES + 16) throw tampered("ciphertext too short");
  if (envelope[0] !== FORMAT_VERSION) throw unsupported(`unknown ciphertext format version ${envelope[0]}`);
  try {
    return xchacha20poly1305(key, envelope.subarray(1, 1 + NONCE_BYTES), aad).decrypt(envelope.subarray(1 + NONCE_BYTES));
  } catch {
    throw tampered();
  }
}

// Newline-joined text: ids cannot contain a newline (PROTOCOL §2), the salt is hex.
export function aad(kind, salt, objectId, epoch = 0) {
  const lines = [`nt2-sync/v1/${kind}`, hex(salt), objectId, String(FORMAT_VERSION)];
  if (epoch > 0) lines.push(`epoch:${epoch}`);
  return utf8(lines.join("\n"));
}

function epochBytes(epoch) {
  return new Uint8Array([(epoch >>> 24) & 255, (epoch >>> 16) & 255, (epoch >>> 8) & 255, epoch & 255]);
}

// The verifier: the data key (‖ its epoch when ≥ 1) sealed under a key derived from the KEK.
export async function sealDataKey(kek, salt, dataKey, { epoch = 0, nonce = null } = {}) {
  const key = await hkdf(kek, INFO.verifier);
  const plaintext = epoch > 0 ? concat(dataKey, epochBytes(epoch)) : dataKey;
  return b64url(sealRaw(key, plaintext, aad("verifier", salt, "data-key"), nonce));
}

// {dataKey, epoch} inside a verifier, or verifier_mismatch.
export async function openVerifier(kek, salt, verifier) {
  let plain;
  try {
    plain = openRaw(await hkdf(kek, INFO.verifier), fromB64url(verifier), aad("verifier", salt, "data-key"));
  } catch {
    throw verifierMismatch();
  }
  if (plain.length === KEY_BYTES) return { dataKey: plain, epoch: 0 };
  if (plain.length === KEY_BYTES + 4) {
    const epoch = ((plain[32] << 24) >>> 0) + (plain[33] << 16) + (plain[34] << 8) + plain[35];
    if (epoch >= 1) return { dataKey: plain.slice(0, 32), epoch };
  }
  throw new CryptoError("verifier_mismatch", "the verifier does not hold a 32-byte key");
}

// The keys derived from a data key, made once per unlock (HKDF is async, sealing is not).
export async function vaultKeys(dataKey, salt, epoch = 0) {
  return {
    dataKey,
    salt,
    epoch,
    item: await hkdf(dataKey, INFO.item),
    attachment: await hkdf(dataKey, INFO.attachment),
    local: await hkdf(dataKey, INFO.local),
    keyCheck: await keyCheck(dataKey),
  };
}

export function padme(length) {
  if (length < 2) return length;
  const exponent = 31 - Math.clz32(length);
  const lowBits = exponent - (32 - Math.clz32(exponent));
  const mask = (1 << lowBits) - 1;
  return (length + mask) & ~mask;
}

export function padItemPlaintext(raw) {
  const target = padme(Math.max(raw.length, MIN_PADDED));
  const out = new Uint8Array(target).fill(0x20);
  out.set(raw);
  return out;
}

function isCount(v) {
  return Number.isSafeInteger(v) && v >= 0;
}

function checkStamp(data, what) {
  for (const name of ["updatedAt", "revision"]) {
    if (!isCount(data[name])) throw unsupported(`${what} field ${name} is not a non-negative integer`);
  }
  if (typeof data.replicaId !== "string") throw unsupported(`${what} field replicaId is not text`);
}

export function validateItemPlaintext(data) {
  if (!data || typeof data !== "object" || Array.isArray(data) || data.v !== FORMAT_VERSION) throw unsupported("unknown item format");
  for (const name of ITEM_FIELDS) if (typeof data[name] !== "string") throw unsupported(`item field ${name} is not text`);
  checkStamp(data, "item");
  if (data.attachments === undefined) data.attachments = [];
  const atts = data.attachments;
  if (!Array.isArray(atts) || !atts.every((a) => a && typeof a === "object" && !Array.isArray(a) && typeof a.id === "string")) {
    throw unsupported("item attachments are malformed");
  }
  return data;
}

function parseJson(raw, what) {
  try {
    return JSON.parse(fromUtf8(raw));
  } catch {
    throw unsupported(`${what} is not JSON`);
  }
}

function openJson(keys, ciphertext, associated, what) {
  let envelope;
  try {
    envelope = fromB64url(ciphertext);
  } catch {
    throw tampered(`${what} is not base64url`);
  }
  return parseJson(openRaw(keys.item, envelope, associated), what);
}

export function encryptItem(keys, itemId, plaintext, nonce = null) {
  const data = validateItemPlaintext({ v: FORMAT_VERSION, ...plaintext });
  const padded = padItemPlaintext(utf8(canonicalJson(data)));
  return b64url(sealRaw(keys.item, padded, aad("item", keys.salt, itemId, keys.epoch), nonce));
}

export function decryptItem(keys, itemId, ciphertext) {
  return validateItemPlaintext(openJson(keys, ciphertext, aad("item", keys.salt, itemId, keys.epoch), "item plaintext"));
}

export function validateDeletion(data) {
  if (!data || typeof data !== "object" || data.v !== FORMAT_VERSION || data.deleted !== true) throw unsupported("unknown deletion record format");
  checkStamp(data, "deletion");
  return data;
}

export function sealDeletion(keys, itemId, record, nonce = null) {
  const data = validateDeletion({ v: FORMAT_VERSION, deleted: true, ...record });
  return b64url(sealRaw(keys.item, utf8(canonicalJson(data)), aad("deletion", keys.salt, itemId, keys.epoch), nonce));
}

export function openDeletion(keys, itemId, ciphertext) {
  return validateDeletion(openJson(keys, ciphertext ?? "", aad("deletion", keys.salt, itemId, keys.epoch), "deletion record"));
}

// Local-only secrets (a pending rotation's seeds, the device's sealed state, a backup's
// payload) under HKDF(data key, local-secret-key); never bound to an epoch (as the CLI).
export function sealLocal(keys, name, secret) {
  return b64url(sealRaw(keys.local, secret, aad("local", keys.salt, name)));
}

export function openLocal(keys, name, sealed) {
  return openRaw(keys.local, fromB64url(sealed), aad("local", keys.salt, name));
}

export function sealLocalJson(keys, name, value) {
  return sealLocal(keys, name, utf8(JSON.stringify(value)));
}

export function openLocalJson(keys, name, sealed) {
  return JSON.parse(fromUtf8(openLocal(keys, name, sealed)));
}

// -- attachments (opening only: the web client keeps references, not files) ---------------
export function decryptAttachment(keys, attachmentId, blob, fileKey = null) {
  const key = fileKey ?? keys.attachment;
  let padded;
  try {
    padded = openRaw(key, blob, aad("attachment-padded", keys.salt, attachmentId));
  } catch (err) {
    if (err.code !== "tampered") throw err;
    return openRaw(key, blob, aad("attachment", keys.salt, attachmentId));
  }
  let end = padded.length;
  while (end > 0 && padded[end - 1] === 0) end--;
  if (end === 0 || padded[end - 1] !== 0x80) throw tampered("attachment padding is malformed");
  return padded.slice(0, end - 1);
}

// -- the setup kit's MAC ----------------------------------------------------------------------
export async function kitMac(seed, kit) {
  const fields = {};
  for (const name of KIT_FIELDS) fields[name] = kit[name] ?? null;
  const key = await hkdf(seed, INFO.kitMac);
  return b64url(await hmacSha256(key, utf8(canonicalJson(fields))));
}

export async function kitMacOk(seed, kit) {
  return typeof kit.mac === "string" && equalText(kit.mac, await kitMac(seed, kit));
}
