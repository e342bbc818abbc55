// The manifest format (docs/CRYPTO.md, "Authenticated vault state"; nt2sync/manifests.py):
// ids, associated data, the sealed envelope and the shape check, byte for byte as the CLI.
// A root is `nt2.manifest:<replica>:root`, a shard `nt2.manifest:<replica>:<2 hex>` (the
// first byte of sha256 of the item id); both are ordinary sealed items under the item key.
import * as c from "./crypto.js";
import { b64url, canonicalJson, fromB64url, fromUtf8, hex, utf8 } from "./bytes.js";
import { isReserved } from "./reserved.js";

export const PREFIX = "nt2.manifest:";
export const ROOT = "root";
export const SHARD_CAP = 240 * 1024; // plaintext bytes: a sealed shard stays under the 256 KiB item limit
const MAX_INT = Number.MAX_SAFE_INTEGER; // the CLI's bound is 2^63−1; no version or revision comes near either

export const rootId = (replica) => `${PREFIX}${replica}:${ROOT}`;
export const shardId = (replica, shard) => `${PREFIX}${replica}:${shard}`;
const isShard = (part) => typeof part === "string" && /^[0-9a-f]{2}$/.test(part);
const isHex64 = (v) => typeof v === "string" && /^[0-9a-f]{64}$/.test(v);
const isInt = (v, low = 0) => Number.isSafeInteger(v) && v >= low && v <= MAX_INT;

// [replica, "root" or a shard] of a manifest id; null for any other id.
export function parseId(id) {
  if (typeof id !== "string" || !id.startsWith(PREFIX)) return null;
  const rest = id.slice(PREFIX.length);
  const cut = rest.lastIndexOf(":");
  if (cut <= 0) return null;
  const part = rest.slice(cut + 1);
  if (part !== ROOT && !isShard(part)) return null;
  return [rest.slice(0, cut), part];
}

export async function sha256Hex(text) {
  return hex(await c.sha256(utf8(text)));
}

// sha256 (hex) of a ciphertext as sent (its base64url text's ASCII bytes).
export const digest = (ciphertext) => sha256Hex(ciphertext);

// The shard of an item: the first byte of sha256(UTF-8 id), two lower-case hex digits.
export async function shardOf(itemId) {
  return hex((await c.sha256(utf8(itemId))).subarray(0, 1));
}

// Many at once: WebCrypto digests run concurrently, which a 10 000-item push needs.
export const shardsOf = (ids) => Promise.all(ids.map(shardOf));
export const digests = (texts) => Promise.all(texts.map(digest));

// The associated data: `nt2-sync/v1/manifest / salt hex / id / 1` (+ `epoch:<E>` at a key
// epoch ≥ 1, as items; the CLI seals its manifests without it today).
export const manifestAad = (salt, objectId, epoch = 0) => c.aad("manifest", salt, objectId, epoch);

export const plaintextSize = (body) => utf8(canonicalJson(body)).length;

// The item envelope (0x01 ‖ nonce ‖ XChaCha20-Poly1305) of the body's canonical JSON, not
// padded, under the item key (manifests are items).
export function seal(keys, objectId, body, { nonce = null, epoch = 0 } = {}) {
  return b64url(c.sealRaw(keys.item, utf8(canonicalJson(body)), manifestAad(keys.salt, objectId, epoch), nonce));
}

// The checked body of a manifest item, or a CryptoError (tampered / unsupported_format).
export function open(keys, objectId, ciphertext, { epoch = 0 } = {}) {
  let envelope;
  try {
    envelope = fromB64url(String(ciphertext ?? ""));
  } catch {
    throw c.tampered("manifest is not base64url");
  }
  if (envelope.length < 1 + c.NONCE_BYTES + 16 || envelope[0] !== c.FORMAT_VERSION) throw c.tampered("manifest envelope is malformed");
  const raw = c.openRaw(keys.item, envelope, manifestAad(keys.salt, objectId, epoch));
  let data;
  try {
    data = JSON.parse(fromUtf8(raw));
  } catch {
    throw c.unsupported("manifest is not JSON");
  }
  const parsed = parseId(objectId);
  if (!parsed) throw c.unsupported("not a manifest id");
  return validate(data, parsed[0], parsed[1]);
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

// nt2sync/manifests.py's _validate; the shard rule (each entry in its own shard) is checked
// by `open`'s caller, where sha256 (async) is at hand: see checkShardEntries.
export function validate(data, replica, part) {
  const bad = () => c.unsupported("unknown manifest format");
  if (!isObject(data) || data.v !== c.FORMAT_VERSION) throw bad();
  if (data.replicaId !== replica || !isInt(data.counter, 1)) throw bad();
  let ok;
  if (part === ROOT) {
    const { shards, seen } = data;
    ok =
      data.kind === ROOT &&
      isInt(data.watermark) &&
      (data.prev === "" || isHex64(data.prev)) &&
      isObject(shards) &&
      Object.entries(shards).every(([k, v]) => isShard(k) && isHex64(v)) &&
      isObject(seen) &&
      Object.values(seen).every((v) => Array.isArray(v) && v.length === 2 && isInt(v[0], 1) && isHex64(v[1]));
  } else {
    const { entries } = data;
    ok =
      data.kind === "shard" &&
      data.shard === part &&
      Array.isArray(entries) &&
      entries.every(
        (e) =>
          Array.isArray(e) &&
          e.length === 5 &&
          typeof e[0] === "string" &&
          !isReserved(e[0]) &&
          isInt(e[1], 1) &&
          isInt(e[2]) &&
          (e[3] === 0 || e[3] === 1) &&
          isHex64(e[4]),
      );
  }
  if (!ok) throw bad();
  return data;
}

// Every entry of a shard belongs to it (sha256 of its id starts with the shard's byte).
export async function checkShardEntries(body) {
  if (body.kind !== "shard") return body;
  const parts = await shardsOf(body.entries.map((e) => e[0]));
  if (parts.some((p) => p !== body.shard)) throw c.unsupported("unknown manifest format");
  return body;
}

// open + the shard rule: what a page's manifest goes through.
export async function openChecked(keys, objectId, ciphertext) {
  return checkShardEntries(open(keys, objectId, ciphertext));
}
