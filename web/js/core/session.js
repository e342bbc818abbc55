// Proving this device holds the vault's key (PROTOCOL §3): sessions, fresh proofs, and the
// one place where an authenticated call is renewed or mapped to a fatal refusal.
import * as c from "./crypto.js";
import { Api } from "./api.js";
import { Nt2Error } from "./errors.js";
import { b64url, utf8 } from "./bytes.js";
import { V, requireUnlocked, setState, now, persist } from "./vault.js";

const SESSION_MARGIN_MS = 120_000;

export const sessionMessage = (audience, keyDid, replicaId, nonce) => utf8(["nt2-sync/v1/session", audience, keyDid, replicaId, nonce].join("\n"));
export const rotateMessage = (audience, oldKeyDid, newKeyDid) => utf8(["nt2-sync/v1/rotate", audience, oldKeyDid, newKeyDid].join("\n"));
export const confirmMessage = (audience, keyDid, action, target, nonce) => utf8(["nt2-sync/v1/confirm", audience, keyDid, action, target, nonce].join("\n"));

let api = null;
let serverOverride = null; // talk to a server without enabling sync (Premium before the first sync)
let rotationFinisher = null; // set by rotation.js (no import cycle)

export function setRotationFinisher(fn) {
  rotationFinisher = fn;
}

export function connection() {
  const v = requireUnlocked();
  const server = v.rec.serverUrl ?? serverOverride;
  if (!server) throw new Nt2Error("sync_off", "Cloud sync is not enabled for this vault.");
  if (!api || api.audience !== server) api = new Api(server);
  return api;
}

export function useApi(a) {
  api = a;
}

// For this page's life, talk to `server` though sync is off (a session, not persisted).
export async function useServer(server) {
  const v = requireUnlocked();
  const a = new Api(server);
  if (v.rec.serverUrl) {
    if (v.rec.serverUrl !== a.audience) throw new Nt2Error("other_server", `This vault syncs with ${v.rec.serverUrl}, not ${a.audience}.`);
    return;
  }
  if (api && api.audience === a.audience && api.token) return;
  await checkAudience(a);
  serverOverride = a.audience;
  api = a;
  await openSession(a, v.seed, v.keyDid, { persistToken: false });
}

export function dropConnection() {
  api = null;
  serverOverride = null;
}

function nonceOf(answer) {
  if (!answer || typeof answer.nonce !== "string") throw new Nt2Error("server_lied", "The server answered the sign-in challenge without a nonce.");
  return answer.nonce;
}

// Refuse a server URL that is not the API's public URL (the audience it verifies against).
export async function checkAudience(a) {
  const health = await a.health();
  const audience = health && typeof health === "object" ? health.audience : null;
  if (audience !== a.audience) {
    throw new Nt2Error("audience_mismatch", `The server says its public address is not ${a.audience}; use exactly its public address.`);
  }
}

export function revokedError() {
  return new Nt2Error("device_revoked", "This device was revoked from the vault's enrolled devices; sync is stopped here.");
}

async function stopRevoked() {
  if (V) {
    V.rec = { ...V.rec, syncEnabled: false };
    V.st.token = null;
    V.st.tokenExpiresAt = null;
    await persist();
  }
  return revokedError();
}

// Sign a fresh challenge and open a session; kept (sealed) when it is the vault's own key.
export async function openSession(a, seed, keyDid, { persistToken = true } = {}) {
  const v = requireUnlocked();
  const nonce = nonceOf(await a.challenge(keyDid));
  const signature = b64url(await c.sign(seed, sessionMessage(a.audience, keyDid, v.st.replicaId, nonce)));
  let session;
  try {
    session = await a.openSession(keyDid, v.st.replicaId, nonce, signature, v.st.deviceName);
  } catch (err) {
    if (err.code === "device_revoked") throw await stopRevoked();
    throw err;
  }
  if (!session || typeof session.token !== "string") throw new Nt2Error("server_lied", "The server opened a session without a token.");
  a.token = session.token;
  if (persistToken && keyDid === v.rec.keyDid) await setState({ token: session.token, tokenExpiresAt: Number(session.expiresAt) || null });
  return session;
}

export async function proof(a, seed, keyDid, action, target) {
  const nonce = nonceOf(await a.challenge(keyDid));
  const signature = b64url(await c.sign(seed, confirmMessage(a.audience, keyDid, action, target, nonce)));
  return { nonce, signature };
}

export async function ensureSession() {
  const v = requireUnlocked();
  const a = connection();
  if (v.st.pendingRotation && rotationFinisher) await rotationFinisher();
  if (a.token === null) {
    if (v.st.token && (v.st.tokenExpiresAt ?? 0) > now() + SESSION_MARGIN_MS) a.token = v.st.token;
    else await openSession(a, V.seed, V.keyDid);
  }
  return a;
}

// One authenticated request; an expired session is renewed once; fatal codes are mapped.
export async function call(fn) {
  const a = await ensureSession();
  try {
    return await fn(a);
  } catch (err) {
    if (err.status === 401 && (err.code === "session_expired" || err.code === "unauthorized")) {
      await openSession(a, V.seed, V.keyDid);
      try {
        return await fn(a);
      } catch (again) {
        throw await mapFatal(again);
      }
    }
    throw await mapFatal(err);
  }
}

async function mapFatal(err) {
  if (err.code === "session_revoked" || err.code === "device_revoked") return stopRevoked();
  if (err.code === "vault_not_found" && V && V.rec.syncEnabled) {
    return new Nt2Error("password_changed", "The master password was changed on another device; adopt the new master password to keep syncing.");
  }
  return err;
}
