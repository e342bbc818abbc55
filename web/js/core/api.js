// PROTOCOL.md v1.2 over fetch (CORS): one method per route, errors as Nt2Error with the
// protocol's code and a sentence of ours (the server's own text is kept apart, cleaned).
import { Nt2Error, cleanText } from "./errors.js";
import { fromUtf8 } from "./bytes.js";

const MAX_RESPONSE_BYTES = 8 * 1024 * 1024; // a Lambda answers at most 6 MB
const MAX_RETRIES = 5;
const MAX_BACKOFF_MS = 30_000;
const MAX_DEVICE_PAGES = 100;

export function normalizeServer(url) {
  const text = String(url ?? "").trim().replace(/\/+$/, "");
  let parsed;
  try {
    parsed = new URL(text);
  } catch {
    parsed = null;
  }
  if (!parsed || !["http:", "https:"].includes(parsed.protocol) || !parsed.host) {
    throw new Nt2Error("bad_server_url", "The server must be an http(s) address such as https://sync.example.com.");
  }
  return text;
}

// Our sentence for each code a person can meet; anything else names the code only.
const SENTENCES = {
  unauthorized: "The server did not accept this device's session; sync again to sign in anew.",
  session_expired: "The session expired; sync again to sign in anew.",
  session_revoked: "This device was revoked from the vault's enrolled devices; sync is stopped here.",
  device_revoked: "This device was revoked from the vault's enrolled devices; sync is stopped here.",
  challenge_invalid: "The server refused the sign-in challenge; try again.",
  challenge_expired: "The sign-in took too long; try again.",
  invalid_signature: "The server did not accept this device's signature; check that the server address is right.",
  premium_required: "NT² Premium is required on this server to sync; see the Premium page.",
  vault_not_found: "The server has no vault for this key.",
  device_not_found: "The server knows no such device in this vault.",
  promo_not_found: "That promo code is unknown or expired.",
  already_redeemed: "This vault already redeemed that promo code.",
  promo_exhausted: "That promo code has no redemptions left.",
  salt_conflict: "The server holds this vault under another salt; nothing was changed.",
  kdf_conflict: "The server holds other key-derivation parameters for this vault; nothing was changed.",
  key_did_taken: "Another vault already uses that key.",
  key_did_retired: "That master password was used by this vault before and cannot be used again.",
  device_limit: "This vault has 100 enrolled devices; revoke one first.",
  proof_required: "The server asked for a fresh proof of the key; try again.",
  rate_limited: "The server is busy; try again in a minute.",
  unavailable: "The server is busy; try again in a minute.",
  resync_required: "The server asked for a full resync.",
  payload_too_large: "That is larger than the server accepts.",
  quota_exceeded: "The vault's storage quota on the server is full.",
  batch_mismatch: "The server holds another version of a pending push.",
  attachment_not_found: "The server holds no such attachment (it was removed, or its upload never finished).",
  attachment_mismatch: "The uploaded attachment did not arrive intact; try attaching the file again.",
};

export function serverError(status, code, serverMessage, retryAfter = null) {
  const safe = typeof code === "string" && /^[a-z][a-z0-9_]{0,63}$/.test(code) ? code : "http_error";
  const message = SENTENCES[safe] ?? `The server refused the request (HTTP ${status}, ${safe}).`;
  const err = new Nt2Error(safe, message, { status });
  err.serverMessage = cleanText(serverMessage);
  err.retryAfter = retryAfter;
  return err;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Api {
  constructor(server) {
    this.audience = normalizeServer(server);
    this.token = null;
  }

  async request(method, path, { json = undefined, params = null, auth = true, retry = true } = {}) {
    let url = `${this.audience}/api${path}`;
    if (params) {
      const query = new URLSearchParams();
      for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined) query.set(k, String(v));
      const q = query.toString();
      if (q) url += "?" + q;
    }
    const headers = {};
    if (json !== undefined) headers["Content-Type"] = "application/json";
    if (auth && this.token) headers.Authorization = `Bearer ${this.token}`;
    for (let attempt = 1; ; attempt++) {
      let response;
      try {
        response = await fetch(url, { method, headers, body: json === undefined ? undefined : JSON.stringify(json), credentials: "omit", redirect: "error" });
      } catch (err) {
        if (retry && attempt < 3) {
          await sleep(200 * 2 ** attempt);
          continue;
        }
        throw new Nt2Error("network", `Cannot reach the sync server at ${this.audience}.`, { cause: err });
      }
      if ((response.status === 429 || response.status === 503) && attempt < MAX_RETRIES) {
        const wait = Number(response.headers.get("Retry-After"));
        const ms = Number.isFinite(wait) && wait >= 0 ? wait * 1000 : 1000 * 2 ** attempt;
        // A long Retry-After ("not configured here", an hour) is an answer, not a hiccup.
        if (ms <= MAX_BACKOFF_MS) {
          await sleep(ms);
          continue;
        }
      }
      return this.#parse(response, method, path);
    }
  }

  async #parse(response, method, path) {
    if (response.status === 204) return null;
    const declared = Number(response.headers.get("Content-Length"));
    if (declared > MAX_RESPONSE_BYTES) throw new Nt2Error("bad_response", "The server's answer is larger than any honest answer; nothing was changed.");
    const raw = new Uint8Array(await response.arrayBuffer());
    if (raw.length > MAX_RESPONSE_BYTES) throw new Nt2Error("bad_response", "The server's answer is larger than any honest answer; nothing was changed.");
    let body = null;
    try {
      body = JSON.parse(fromUtf8(raw));
    } catch {
      body = null;
    }
    if (response.ok) {
      if (body === null) throw new Nt2Error("bad_response", "The server answered with no JSON (is it an NT² sync server speaking protocol 1.2?).");
      return body;
    }
    const retryAfter = Number(response.headers.get("Retry-After")) || null;
    if (body && typeof body === "object" && typeof body.code === "string") {
      throw serverError(response.status, body.code, body.message, retryAfter);
    }
    throw new Nt2Error("http_error", `The server answered HTTP ${response.status} to ${method} ${path} (is it an NT² sync server speaking protocol 1.2?).`, { status: response.status });
  }

  health() {
    return this.request("GET", "/health", { auth: false });
  }
  challenge(keyDid) {
    return this.request("POST", "/auth/challenge", { json: { keyDid }, auth: false });
  }
  openSession(keyDid, replicaId, nonce, signature, deviceName) {
    const body = { keyDid, replicaId, nonce, signature };
    if (deviceName) body.deviceName = deviceName;
    return this.request("POST", "/auth/session", { json: body, auth: false, retry: false });
  }
  endSession() {
    return this.request("DELETE", "/auth/session");
  }
  bootstrap(keyDid) {
    return this.request("GET", "/vault/bootstrap", { params: { keyDid }, auth: false });
  }
  register(body) {
    return this.request("POST", "/vault/register", { json: body });
  }
  salt(keyDid) {
    return this.request("GET", "/salt", { params: { keyDid } });
  }
  rotate(body) {
    return this.request("POST", "/vault/rotate", { json: body, retry: false });
  }
  push(batchId, items) {
    return this.request("POST", "/sync/push", { json: { batchId, items } });
  }
  pull(since, limit) {
    return this.request("GET", "/sync/pull", { params: { since, limit } });
  }
  status() {
    return this.request("GET", "/sync/status");
  }
  renameDevice(replicaId, name) {
    return this.request("PATCH", `/devices/${encodeURIComponent(replicaId)}`, { json: { name } });
  }
  revokeDevice(replicaId, proof) {
    return this.request("POST", `/devices/${encodeURIComponent(replicaId)}/revoke`, { json: { proof }, retry: false });
  }
  premium() {
    return this.request("GET", "/premium");
  }
  redeem(code) {
    return this.request("POST", "/premium/redeem", { json: { code } });
  }
  checkout() {
    return this.request("POST", "/premium/checkout");
  }
  liveTicket() {
    return this.request("POST", "/live/ticket");
  }
  attachmentUpload(attachmentId, size, sha256) {
    return this.request("POST", `/attachments/${encodeURIComponent(attachmentId)}/upload`, { json: { size, sha256 } });
  }
  attachmentCommit(attachmentId) {
    return this.request("POST", `/attachments/${encodeURIComponent(attachmentId)}/commit`);
  }
  attachmentDownload(attachmentId) {
    return this.request("GET", `/attachments/${encodeURIComponent(attachmentId)}/download`);
  }
  attachmentDelete(attachmentId) {
    return this.request("DELETE", `/attachments/${encodeURIComponent(attachmentId)}`);
  }

  // Every page of the device list; a cursor that repeats or a list that does not end is refused.
  async devices() {
    const out = [];
    const seen = new Set();
    let cursor = null;
    for (let page = 0; page < MAX_DEVICE_PAGES; page++) {
      const answer = await this.request("GET", "/devices", { params: cursor ? { cursor } : null });
      const rows = answer && typeof answer === "object" ? answer.devices : null;
      if (!Array.isArray(rows) || !rows.every((r) => r && typeof r === "object")) break;
      out.push(...rows);
      cursor = answer.cursor;
      if (!cursor) return out;
      if (typeof cursor !== "string" || seen.has(cursor)) break;
      seen.add(cursor);
    }
    throw new Nt2Error("server_lied", "The server's device list does not end; nothing was changed.");
  }
}

// -- the attachment storage (presigned S3 URLs, another origin than the API) ---------------------
function storageUrl(url) {
  let parsed = null;
  try {
    parsed = new URL(String(url));
  } catch {
    parsed = null;
  }
  if (!parsed || !["http:", "https:"].includes(parsed.protocol)) throw new Nt2Error("server_lied", "The server's attachment address is not an http(s) URL; nothing was sent.");
  return parsed.href;
}

// PUT with exactly the headers the server returned (they are signed). 412: an earlier PUT of
// this object landed (If-None-Match: *), so the commit that follows verifies it.
export async function putBlob(url, headers, bytes) {
  const target = storageUrl(url);
  const sent = {};
  for (const [name, value] of Object.entries(headers && typeof headers === "object" ? headers : {})) {
    if (typeof value === "string") sent[name] = value;
  }
  for (let attempt = 1; ; attempt++) {
    let response;
    try {
      response = await fetch(target, { method: "PUT", headers: sent, body: bytes, credentials: "omit", redirect: "error" });
    } catch (err) {
      if (attempt < 3) {
        await sleep(200 * 2 ** attempt);
        continue;
      }
      throw new Nt2Error("network", "Cannot reach the attachment storage; try again.", { cause: err });
    }
    if (response.ok || response.status === 412) return;
    throw new Nt2Error("storage_error", `The attachment storage refused the upload (HTTP ${response.status}); try again.`, { status: response.status });
  }
}

// GET at most `maxBytes` (an honest blob is never longer than its reference allows).
// no-store: a removed file's ciphertext should not linger in the browser's disk cache, and
// each open checks what the storage holds now (a plain GET has no preflight to lose).
export async function getBlob(url, maxBytes) {
  const target = storageUrl(url);
  let response;
  try {
    response = await fetch(target, { credentials: "omit", redirect: "error", cache: "no-store" });
  } catch (err) {
    throw new Nt2Error("network", "Cannot reach the attachment storage; try again.", { cause: err });
  }
  if (!response.ok) throw new Nt2Error("storage_error", `The attachment storage refused the download (HTTP ${response.status}); try again.`, { status: response.status });
  const tooLong = () => new Nt2Error("tampered_attachment", "The attachment the server sent is longer than the file it stands for; refusing it.");
  if (Number(response.headers.get("Content-Length")) > maxBytes) throw tooLong();
  const reader = response.body.getReader();
  const parts = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel();
      throw tooLong();
    }
    parts.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
