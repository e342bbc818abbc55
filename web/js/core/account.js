// The vault's account on the server: enrolled devices (§7) and NT² Premium (§9).
import { Nt2Error, cleanText } from "./errors.js";
import { call, proof } from "./session.js";
import * as vault from "./vault.js";

const REPLICA = /^[A-Za-z0-9._-]{1,64}$/;

function checkReplica(id) {
  if (typeof id !== "string" || !REPLICA.test(id) || id === "." || id === "..") throw new Nt2Error("bad_device", "That is not a device id.");
}

const time = (v) => (Number.isSafeInteger(v) ? v : null);

export async function listDevices() {
  const rows = await call((a) => a.devices());
  const own = vault.requireUnlocked().st.replicaId;
  return rows
    .filter((d) => typeof d.replicaId === "string")
    .map((d) => ({
      deviceId: cleanText(d.replicaId, 64),
      name: d.name === null || d.name === undefined ? null : cleanText(d.name, 64),
      current: d.replicaId === own,
      lastSeenAt: time(d.lastSeenAt),
      enrolledAt: time(d.enrolledAt),
      revoked: d.revokedAt !== null && d.revokedAt !== undefined,
    }));
}

export async function renameDevice(deviceId, name) {
  checkReplica(deviceId);
  const text = String(name ?? "").trim();
  if (!text || text.length > 64 || /[\u0000-\u001f\u007f-\u009f]/.test(text)) throw new Nt2Error("bad_name", "A device name is 1 to 64 printable characters.");
  await call((a) => a.renameDevice(deviceId, text));
}

export async function revokeDevice(deviceId) {
  checkReplica(deviceId);
  const v = vault.requireUnlocked();
  await call(async (a) => a.revokeDevice(deviceId, await proof(a, v.seed, v.keyDid, "revoke", deviceId)));
}

function premiumObject(p) {
  if (!p || typeof p !== "object") throw new Nt2Error("server_lied", "The server's Premium status is not an object.");
  const sources = ["subscription", "promo", "dev", null];
  return {
    required: p.required === true,
    active: p.active === true,
    source: sources.includes(p.source ?? null) ? (p.source ?? null) : null,
    expiresAt: time(p.expiresAt),
  };
}

export async function premiumStatus() {
  return premiumObject(await call((a) => a.premium()));
}

export async function redeemPromo(code) {
  const text = String(code ?? "").trim();
  if (!text) throw new Nt2Error("bad_code", "Enter a promo code.");
  return premiumObject(await call((a) => a.redeem(text)));
}

export function isHttps(url) {
  if (typeof url !== "string" || /[\u0000-\u0020\u007f-\u009f]/.test(url)) return false;
  try {
    const u = new URL(url);
    return u.protocol === "https:" && Boolean(u.hostname);
  } catch {
    return false;
  }
}

export async function checkoutUrl() {
  const answer = await call((a) => a.checkout());
  const url = answer && typeof answer === "object" ? answer.url : null;
  if (!isHttps(url)) throw new Nt2Error("untrusted_link", "The server's checkout link is not an https:// address; not showing it.");
  return url;
}
