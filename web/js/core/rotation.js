// Password change (nt2sync/rotation.py): the data key re-sealed under the new password and
// the key DID rotated on the server; recorded (seeds sealed) before the server hears of it,
// so an interrupted change is finished by the next call that talks to the server. And the
// adoption of a password changed on another device (nt2sync/unlock.py adopt_password).
import * as c from "./crypto.js";
import { Nt2Error } from "./errors.js";
import { b64url, fromHex } from "./bytes.js";
import { connection, openSession, proof, rotateMessage, setRotationFinisher, revokedError } from "./session.js";
import * as vault from "./vault.js";

export async function changePassword(oldPassword, newPassword, { iterations = null } = {}) {
  const v = vault.requireUnlocked();
  if (typeof newPassword !== "string" || !newPassword) throw new Nt2Error("empty_password", "The new master password must not be empty.");
  if (v.st.pendingRotation) throw new Nt2Error("rotation_pending", "A password change is still pending; sync first so that it finishes.");
  const saltBytes = fromHex(v.rec.saltHex);
  // the current password, checked locally against the verifier before anything changes
  const oldKek = await c.deriveKek(String(oldPassword ?? ""), saltBytes, c.checkKdf(v.rec.kdf));
  try {
    await c.openVerifier(oldKek, saltBytes, v.rec.verifier);
  } catch {
    throw new Nt2Error("wrong_password", "The current master password is wrong; nothing was changed.");
  }
  const current = c.checkKdf(v.rec.kdf);
  const target = iterations ?? current;
  if (target < current) throw new Nt2Error("weak_kdf", `The iterations can only go up (now ${current}).`);
  const kdf = c.kdfParams(target);
  const newKek = await c.deriveKek(newPassword, saltBytes, target);
  const { seed: newSeed, keyDid: newDid } = await c.keyDidFromKek(newKek);
  const verifier = await c.sealDataKey(newKek, saltBytes, v.keys.dataKey, { epoch: v.keys.epoch });
  if (!(v.rec.syncEnabled && v.rec.serverUrl)) {
    await vault.persist({ rec: { ...v.rec, keyDid: newDid, verifier, kdf } });
    v.seed = newSeed;
    v.keyDid = newDid;
    return newDid;
  }
  v.st.pendingRotation = {
    oldKeyDid: v.keyDid,
    newKeyDid: newDid,
    verifier,
    kdf,
    oldSeed: c.sealLocal(v.keys, "oldSeed", v.seed),
    newSeed: c.sealLocal(v.keys, "newSeed", newSeed),
  };
  // recorded before the server hears of it; the new verifier in clear so the new password unlocks
  await vault.persist({ rec: { ...v.rec, pendingVerifier: { verifier, kdf } } });
  await finishRotation();
  return newDid;
}

// Finish a recorded rotation (idempotent: also after a crash or a closed tab half-way).
export async function finishRotation() {
  const v = vault.requireUnlocked();
  const pending = v.st.pendingRotation;
  if (!pending) return;
  const oldSeed = c.openLocal(v.keys, "oldSeed", pending.oldSeed);
  const newSeed = c.openLocal(v.keys, "newSeed", pending.newSeed);
  const api = connection();
  api.token = null;
  const signature = b64url(await c.sign(newSeed, rotateMessage(api.audience, pending.oldKeyDid, pending.newKeyDid)));
  const body = {
    newKeyDid: pending.newKeyDid,
    signature,
    verifier: pending.verifier,
    publicKeys: { keyDid: pending.newKeyDid, type: "Ed25519" },
    kdf: pending.kdf,
  };
  try {
    await openSession(api, oldSeed, pending.oldKeyDid);
    body.proof = await proof(api, oldSeed, pending.oldKeyDid, "rotate", pending.newKeyDid);
    await api.rotate(body);
  } catch (err) {
    if (err.code === "device_revoked" || err.code === "session_revoked") throw revokedError();
    if (err.code !== "key_did_taken" && err.code !== "vault_not_found") throw err;
    // maybe the first attempt went through: does the new key own the vault?
    api.token = null;
    await openSession(api, newSeed, pending.newKeyDid, { persistToken: false });
    const status = await api.status();
    if (!status || !status.registered) throw new Nt2Error("rotation_failed", "The password change could not be finished: neither key owns the vault.");
  }
  v.st.pendingRotation = null;
  v.st.token = null;
  v.st.tokenExpiresAt = null;
  const rec = { ...v.rec, keyDid: pending.newKeyDid, verifier: pending.verifier, kdf: pending.kdf };
  delete rec.pendingVerifier;
  await vault.persist({ rec });
  v.seed = newSeed;
  v.keyDid = pending.newKeyDid;
  api.token = null;
  await openSession(api, newSeed, pending.newKeyDid);
}

setRotationFinisher(finishRotation);

// The person says the password was changed on another device: derive with this vault's
// parameters (or a new kit's, never lower) and adopt only if the server's bootstrap for the
// derived key DID announces exactly those, this vault's salt, and a verifier that opens to
// this vault's data key. Nothing is stored otherwise.
export async function adoptPassword(newPassword, { kitKdf = null } = {}) {
  const v = vault.requireUnlocked();
  if (!(v.rec.syncEnabled && v.rec.serverUrl)) throw new Nt2Error("sync_off", "Cloud sync is not enabled for this vault: there is nothing to adopt.");
  let iterations = c.checkKdf(v.rec.kdf);
  if (kitKdf !== null) {
    const offered = c.checkKdf(kitKdf);
    if (offered < iterations) throw new Nt2Error("weak_kdf", "The kit lowers the key-derivation iterations; refusing it.");
    iterations = offered;
  }
  const saltBytes = fromHex(v.rec.saltHex);
  const kek = await c.deriveKek(String(newPassword ?? ""), saltBytes, iterations);
  let same = true;
  try {
    await c.openVerifier(kek, saltBytes, v.rec.verifier);
  } catch {
    same = false;
  }
  if (same) throw new Nt2Error("same_password", "That is this vault's current master password: nothing to adopt.");
  const { seed, keyDid } = await c.keyDidFromKek(kek);
  const api = connection();
  let boot;
  try {
    boot = await api.bootstrap(keyDid);
  } catch (err) {
    if (err.code === "vault_not_found") {
      throw new Nt2Error("wrong_password", "The server has no vault for this password: it is not the new master password (or the new kit's parameters are needed).");
    }
    throw err;
  }
  const lied = (m) => new Nt2Error("server_lied", m);
  if (!boot || boot.keyDid !== keyDid) throw lied("The server answered for another key DID than asked; refusing it.");
  if (boot.saltHex !== v.rec.saltHex) throw lied("The server names another salt for this vault than the one it was made with; refusing it.");
  let announced;
  try {
    announced = c.checkKdf(boot.kdf);
  } catch {
    throw new Nt2Error("weak_kdf", "The server offered weak key-derivation parameters; refusing them (nothing was stored).");
  }
  if (announced !== iterations) {
    throw new Nt2Error("weak_kdf", "The server announces other key-derivation parameters than the ones this password was derived with; refusing them (nothing was stored).");
  }
  let opened;
  try {
    opened = await c.openVerifier(kek, saltBytes, String(boot.verifier ?? ""));
  } catch {
    throw lied("The server's verifier does not open with this password although the key DID matches: the server sent a wrong verifier.");
  }
  if ((await c.keyCheck(opened.dataKey)) !== v.rec.keyCheck || opened.epoch !== v.keys.epoch) {
    throw lied("The server's verifier holds another data key than this vault's; refusing it.");
  }
  v.st.token = null;
  v.st.tokenExpiresAt = null;
  await vault.persist({ rec: { ...v.rec, keyDid, verifier: boot.verifier, kdf: c.kdfParams(iterations) } });
  v.seed = seed;
  v.keyDid = keyDid;
  api.token = null;
  return keyDid;
}
