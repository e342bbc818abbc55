// Password change (nt2sync/rotation.py): the data key re-sealed under the new password and
// the key DID rotated on the server; recorded (seeds sealed) before the server hears of it,
// so an interrupted change is finished by the next call that talks to the server. A re-key
// (nt2sync/rekey.py) rotates the same way with a verifier that seals a new data key and epoch;
// once the server agrees, every row is re-sealed under it and pushed, and the old key is kept
// only until a sync leaves nothing under it. And the adoption of a password (or re-key)
// changed on another device (nt2sync/unlock.py adopt_password).
import * as c from "./crypto.js";
import { Nt2Error } from "./errors.js";
import { b64url, fromHex, randomBytes } from "./bytes.js";
import { connection, openSession, proof, rotateMessage, setRotationFinisher, revokedError } from "./session.js";
import * as vault from "./vault.js";
import * as rekey from "./rekey.js";
import { dirtyRows, setRekeyFinisher, syncOnce } from "./sync.js";
import * as manifests from "./manifests.js";

const MAX_ROUNDS = 8; // syncs before giving up on a server that keeps serving old-key items

// This device's own manifests are republished after its data key changed (a re-key made
// here, or adopted): manifests sealed under the old key no longer open anywhere. Its own
// manifest rows are still under the old key (reserved rows are never re-sealed): after a
// reload they open only with the retired key.
export async function afterKeyChange() {
  const v = vault.requireUnlocked();
  await manifests.republishAll({ previousKeys: v.retired?.[0] ?? null });
}

export async function changePassword(oldPassword, newPassword, { rekey: rekeying = true, iterations = null } = {}) {
  let v = vault.requireUnlocked();
  if (typeof newPassword !== "string" || !newPassword) throw new Nt2Error("empty_password", "The new master password must not be empty.");
  if (v.st.pendingRekey) await finishRekey(); // an interrupted re-key is finished first
  if (v.st.pendingRotation) throw new Nt2Error("rotation_pending", "A password change is still pending; sync first so that it finishes.");
  v = vault.requireUnlocked();
  const saltBytes = fromHex(v.rec.saltHex);
  // the current password, checked locally against the verifier before anything changes
  const oldKek = await c.deriveKek(String(oldPassword ?? ""), saltBytes, c.checkKdf(v.rec.kdf));
  try {
    await c.openVerifier(oldKek, saltBytes, v.rec.verifier);
  } catch {
    throw new Nt2Error("wrong_password", "The current master password is wrong; nothing was changed.");
  }
  if (rekeying) rekey.refuseLegacyAttachments();
  const current = c.checkKdf(v.rec.kdf);
  const target = iterations ?? current;
  if (target < current) throw new Nt2Error("weak_kdf", `The iterations can only go up (now ${current}).`);
  const kdf = c.kdfParams(target);
  const newKek = await c.deriveKek(newPassword, saltBytes, target);
  const { seed: newSeed, keyDid: newDid } = await c.keyDidFromKek(newKek);
  if (rekeying) return startRekey(v, newKek, newSeed, newDid, kdf);
  const verifier = await c.sealDataKey(newKek, saltBytes, v.keys.dataKey, { epoch: v.keys.epoch });
  if (!(v.rec.syncEnabled && v.rec.serverUrl)) {
    await vault.persist({ rec: { ...v.rec, keyDid: newDid, verifier, kdf } });
    vault.replaceSeed(v, newSeed);
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

// A new random data key K' and epoch E+1, the verifier sealing K' ‖ E+1 under the new KEK.
// Recorded in one write before the server hears of it: K' sealed under the old key (in the
// sealed state), the old key sealed under K' (in the clear record, so the new password can
// unlock before the server agrees); then finished as any interrupted re-key is.
async function startRekey(v, newKek, newSeed, newDid, kdf) {
  const saltBytes = fromHex(v.rec.saltHex);
  const old = v.keys;
  const epoch = old.epoch + 1;
  const newKey = randomBytes(c.KEY_BYTES);
  const next = await c.vaultKeys(newKey, saltBytes, epoch);
  const verifier = await c.sealDataKey(newKek, saltBytes, newKey, { epoch });
  const retired = { epoch: old.epoch, key: c.sealLocal(next, `rekey/retired/${old.epoch}`, old.dataKey) };
  if (!(v.rec.syncEnabled && v.rec.serverUrl)) {
    // nothing to tell a server: the switch and every row re-sealed in one transaction
    switchKeys(v, next, old);
    v.st.retiredKey = null;
    const rows = rekey.resealForRekey();
    v.rekeying = false;
    vault.replaceSeed(v, newSeed);
    v.keyDid = newDid;
    await vault.persist({ rows: rekey.allRowsWith(rows), rec: { ...v.rec, keyDid: newDid, verifier, kdf, keyCheck: next.keyCheck } });
    await afterKeyChange(); // the old key still held: this device's manifest rows open with it
    vault.forgetRetired(v);
    return newDid;
  }
  v.st.pendingRekey = { epoch, oldEpoch: old.epoch, newKeyCheck: next.keyCheck, next: c.sealLocal(old, `rekey/next/${epoch}`, newKey) };
  v.st.pendingRotation = {
    oldKeyDid: v.keyDid,
    newKeyDid: newDid,
    verifier,
    kdf,
    oldSeed: c.sealLocal(old, "oldSeed", v.seed),
    newSeed: c.sealLocal(old, "newSeed", newSeed),
  };
  await vault.persist({ rec: { ...v.rec, pendingVerifier: { verifier, kdf, retired } } });
  try {
    await finishRekey();
  } catch (err) {
    if (err.code !== "network") throw err;
    throw new Nt2Error("rekey_pending", "The new master password is set on this device, but the server could not be reached: the re-key finishes at the next sync.", { cause: err });
  }
  return newDid;
}

function switchKeys(v, next, old) {
  v.keys = next;
  vault.forgetRetired(v, [old]); // an older epoch's key (from an adoption): nothing is under it now
  v.rekeying = true;
}

// Finish a recorded re-key (idempotent, also after a closed tab): rotate, re-seal every row
// not under the new key, sync until a whole sync leaves nothing under the old key and nothing
// unpushed, then forget the old key. Pulled items another device wrote under the old key are
// accepted here only because they are re-sealed before this ends.
export async function finishRekey(onProgress = null) {
  let v = vault.requireUnlocked();
  let summary = { pushed: 0, pulled: 0, conflicts: 0, notices: [] };
  if (!v.st.pendingRekey) return summary;
  if (v.st.pendingRotation) await finishRotation();
  v = vault.requireUnlocked();
  let synced = false;
  for (let round = 0; ; round++) {
    if (round >= MAX_ROUNDS) throw new Nt2Error("rekey_unfinished", "The re-key is not finished: the server keeps serving items under the old key. Sync again to finish it.");
    const changed = rekey.resealForRekey();
    if (changed.length) await vault.persist({ rows: changed });
    if (!v.rec.syncEnabled) break; // sync stopped meanwhile (revoked): the local vault is all under the new key
    if (synced && changed.length === 0 && dirtyRows(1).length === 0) break;
    const one = await syncOnce(onProgress);
    summary = { pushed: summary.pushed + one.pushed, pulled: summary.pulled + one.pulled, conflicts: summary.conflicts + one.conflicts, notices: one.notices };
    synced = true;
  }
  v.st.pendingRekey = null;
  vault.forgetRetired(v);
  v.rekeying = false;
  await vault.persist();
  vault.emitChange({ local: false, ids: [] });
  return summary;
}

setRekeyFinisher(finishRekey);

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
  const recorded = v.st.pendingRekey;
  let rows = [];
  if (recorded && recorded.next) {
    // the server holds the re-key's verifier: the new key becomes current (the old one held,
    // sealed under it, until the re-key is done) and every row is re-sealed under it, in the
    // same write, so the stored vault never mixes a key with rows it does not open
    const old = v.keys;
    const next = await c.vaultKeys(c.openLocal(old, `rekey/next/${recorded.epoch}`, recorded.next), old.salt, recorded.epoch);
    v.st.pendingRekey = { epoch: recorded.epoch, oldEpoch: old.epoch, retired: { epoch: old.epoch, key: c.sealLocal(next, `rekey/retired/${old.epoch}`, old.dataKey) } };
    v.st.retiredKey = null;
    switchKeys(v, next, old);
    rows = rekey.allRowsWith(rekey.resealForRekey());
    rec.keyCheck = next.keyCheck;
  }
  delete rec.pendingVerifier;
  await vault.persist({ rows, rec });
  vault.replaceSeed(v, newSeed);
  oldSeed.fill(0);
  v.keyDid = pending.newKeyDid;
  api.token = null;
  await openSession(api, newSeed, pending.newKeyDid);
  if (recorded) await afterKeyChange();
}

setRotationFinisher(finishRotation);

// The person says the password was changed on another device: derive with this vault's
// parameters (or a new kit's, never lower) and adopt only if the server's bootstrap for the
// derived key DID announces exactly those, this vault's salt, and a verifier that opens to
// this vault's data key. Nothing is stored otherwise.
export async function adoptPassword(newPassword, { kitKdf = null } = {}) {
  const v = vault.requireUnlocked();
  if (!(v.rec.syncEnabled && v.rec.serverUrl)) throw new Nt2Error("sync_off", "Cloud sync is not enabled for this vault: there is nothing to adopt.");
  if (v.st.pendingRotation || v.st.pendingRekey) {
    throw new Nt2Error("rotation_pending", "A password change made here is not finished; sync first so that it finishes, then adopt.");
  }
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
  if (boot.saltHex !== v.rec.saltHex) throw lied("The server names another salt for this vault than the one it was made with; refusing to use it.");
  let announced;
  try {
    announced = c.checkKdf(boot.kdf);
  } catch (err) {
    throw new Nt2Error("weak_kdf", `The server offered weak key-derivation parameters (${err.message}); refusing to use them.`);
  }
  if (announced !== iterations) {
    throw new Nt2Error("weak_kdf", "The server announces other key-derivation parameters than the ones this password was derived with; refusing them (nothing was stored).");
  }
  // only text is a verifier: anything else would be stored as served and open nowhere
  const served = typeof boot.verifier === "string" ? boot.verifier : "";
  let opened;
  try {
    opened = await c.openVerifier(kek, saltBytes, served);
  } catch {
    throw lied("The server's verifier does not open with this password although the key DID matches: the server sent a wrong verifier.");
  }
  if ((await c.keyCheck(opened.dataKey)) !== v.rec.keyCheck) {
    if (opened.epoch <= v.keys.epoch) throw lied("The server's verifier holds another data key of an epoch that is not newer than this vault's; refusing it.");
    return adoptRekey(v, opened, { seed, keyDid, verifier: served, kdf: c.kdfParams(iterations) });
  }
  if (opened.epoch !== v.keys.epoch) throw lied("The server's verifier holds this vault's data key with another epoch; refusing it.");
  v.st.token = null;
  v.st.tokenExpiresAt = null;
  await vault.persist({ rec: { ...v.rec, keyDid, verifier: served, kdf: c.kdfParams(iterations) } });
  vault.replaceSeed(v, seed);
  v.keyDid = keyDid;
  api.token = null;
  return { keyDid, rekeyed: false, notices: [] };
}

// Another device re-keyed the vault (a new data key of a later epoch): everything held here,
// unpushed edits included, is re-sealed in place under the new key with the keys this unlocked
// device holds (the CLI asks for the previous password only because it holds no unlocked
// state); the previous key is kept, sealed, to recognise items still under it, never to accept
// them. The recorded push batch is dropped (its ciphertexts are under the old key; the rows
// stay dirty). Then a sync, so this device's edits reach the others under the new key.
async function adoptRekey(v, opened, { seed, keyDid, verifier, kdf }) {
  const old = v.keys;
  const next = await c.vaultKeys(opened.dataKey, old.salt, opened.epoch);
  const rows = rekey.allRowsWith(rekey.resealForAdoption([old, ...(v.retired ?? [])], next));
  v.keys = next;
  vault.forgetRetired(v, [old]); // every row is re-sealed: an older epoch's key opens nothing here
  v.rekeying = false;
  vault.replaceSeed(v, seed);
  v.keyDid = keyDid;
  Object.assign(v.st, { retiredKey: rekey.retiredRecord(next, old), pendingBatch: null, token: null, tokenExpiresAt: null });
  await vault.persist({ rows, rec: { ...v.rec, keyDid, verifier, kdf, keyCheck: next.keyCheck } });
  connection().token = null;
  vault.emitChange({ local: false, ids: [] });
  let notices;
  try {
    await afterKeyChange(); // the adoption is stored: an unreachable server leaves only sending to do
    notices = (await syncOnce()).notices;
  } catch (err) {
    if (err.code !== "network") throw err;
    notices = ["The server could not be reached; this device's edits are sent at the next sync."];
  }
  return { keyDid, rekeyed: true, notices };
}

