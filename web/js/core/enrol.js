// Enrolment (nt2sync/enrol.py): sync on for a vault made here (register its own salt, never
// a new one), off again, and a new device joining, which trusts nothing the server sends
// until the master password has derived the same key DID; the kit's MAC, the KDF floor and
// the key DID check all come before anything authenticated is sent.
import * as c from "./crypto.js";
import * as store from "./store.js";
import { Api, normalizeServer } from "./api.js";
import { Nt2Error } from "./errors.js";
import { fromHex, hex } from "./bytes.js";
import { checkAudience, connection, dropConnection, openSession, proof, useApi, call } from "./session.js";
import { syncNow } from "./sync.js";
import * as manifests from "./manifests.js";
import { isReserved } from "./reserved.js";
import * as vault from "./vault.js";

const lied = (m) => new Nt2Error("server_lied", m);

export async function enableSync(serverUrl, onProgress = null, { deviceName = null } = {}) {
  const v = vault.requireUnlocked();
  const server = normalizeServer(serverUrl);
  const api = new Api(server);
  await checkAudience(api);
  if (deviceName) v.st.deviceName = deviceName;
  await openSession(api, v.seed, v.keyDid, { persistToken: false });
  const body = {
    saltHex: v.rec.saltHex,
    kdf: v.rec.kdf,
    verifier: v.rec.verifier,
    publicKeys: { keyDid: v.keyDid, type: "Ed25519" },
    // This device holds the key, so its verifier is the one to keep (§4).
    proof: await proof(api, v.seed, v.keyDid, "register", v.keyDid),
  };
  await api.register(body);
  const escrow = await api.salt(v.keyDid);
  if (!escrow || escrow.saltHex !== v.rec.saltHex) throw lied("The server holds another salt for this vault than its own; nothing was changed.");
  const rec = { ...v.rec, serverUrl: server, syncEnabled: true };
  if (v.rec.serverUrl && v.rec.serverUrl !== server) {
    // another server: forget server versions, every live item is dirty again, and the old
    // server's manifests attest nothing here (this device's own is rebuilt as it pushes)
    const remove = manifests.reset();
    const rows = [];
    for (const row of v.rows.values()) {
      if (isReserved(row.id)) continue;
      if (row.deleted) remove.push(row.id);
      else rows.push({ ...row, version: 0, dirty: true });
    }
    v.st.watermark = 0;
    v.st.pendingBatch = null;
    v.st.token = api.token;
    await vault.persist({ rows, remove, rec });
  } else {
    v.st.token = api.token;
    v.st.tokenExpiresAt = null;
    await vault.persist({ rec });
  }
  useApi(api);
  return syncNow(onProgress);
}

export async function disableSync() {
  const v = vault.requireUnlocked();
  if (v.rec.serverUrl && v.st.token) {
    try {
      const a = connection();
      a.token = v.st.token;
      await a.endSession();
    } catch {
      // an ended or unreachable session is already what we want
    }
  }
  v.st.token = null;
  v.st.tokenExpiresAt = null;
  await vault.persist({ rec: { ...v.rec, syncEnabled: false } });
  dropConnection();
  return { syncEnabled: false, server: v.rec.serverUrl, serverDataKept: true };
}

export async function remoteStatus() {
  const remote = await call((a) => a.status());
  if (!remote || typeof remote !== "object") throw lied("The server's sync status is not an object.");
  if (!remote.registered) {
    throw new Nt2Error("password_changed", "The server has no vault for this key: the master password was probably changed on another device; adopt the new one.");
  }
  return remote;
}

// -- joining --------------------------------------------------------------------------------
const KIT_KEYS = ["server", "keyDid", "kdf", "saltHex", "mac"];

// A kit's shape only (its MAC needs the password): {server, keyDid, kdf, saltHex, mac}.
export function parseKit(text) {
  let kit = text;
  if (typeof text === "string") {
    try {
      kit = JSON.parse(text);
    } catch {
      throw new Nt2Error("kit_invalid", "This is not a setup kit (it is not the JSON that `nt2sync kit` writes).");
    }
  }
  if (!kit || typeof kit !== "object" || Array.isArray(kit)) throw new Nt2Error("kit_invalid", "This is not a setup kit.");
  for (const name of Object.keys(kit)) if (!KIT_KEYS.includes(name)) throw new Nt2Error("kit_invalid", "This setup kit has fields no kit has; it was altered.");
  if (typeof kit.mac !== "string") {
    throw new Nt2Error("kit_altered", "This kit has no integrity code (an older nt2sync made it): make a new one on a device that has the vault, or set up with the server and key DID.");
  }
  if (typeof kit.server !== "string" || typeof kit.keyDid !== "string" || !kit.keyDid.startsWith("did:key:z") || kit.keyDid.length > 64) {
    throw new Nt2Error("kit_invalid", "This setup kit is damaged (its server or key DID is missing).");
  }
  if (typeof kit.saltHex !== "string" || !/^(?:[0-9a-f]{2}){16,64}$/.test(kit.saltHex)) throw new Nt2Error("kit_invalid", "This setup kit is damaged (its salt).");
  return { server: kit.server, keyDid: kit.keyDid, kdf: kit.kdf, saltHex: kit.saltHex, mac: kit.mac };
}

export async function checkKit(kit, password) {
  let iterations;
  try {
    iterations = c.checkKdf(kit.kdf);
  } catch (err) {
    throw new Nt2Error("weak_kdf", `This kit names weak key-derivation parameters (${err.message}); refusing it, nothing was sent.`);
  }
  const seed = await c.keyDidSeed(await c.deriveKek(password, fromHex(kit.saltHex), iterations));
  if (!(await c.kitMacOk(seed, kit))) {
    throw new Nt2Error("kit_altered", "This kit does not match the master password: either the password is wrong or the kit was altered (its server, key or KDF); nothing was sent.");
  }
}

export async function joinFromKit(kit, password, onProgress = null, opts = {}) {
  kit = parseKit(kit);
  if (await vault.exists()) throw new Nt2Error("vault_exists", "This browser already holds a vault; setting up needs a browser profile without one.");
  await checkKit(kit, password);
  return join(kit.server, kit.keyDid, password, onProgress, { kitSaltHex: kit.saltHex, kitKdf: kit.kdf, ...opts });
}

export async function joinFromServer(server, keyDid, password, onProgress = null, opts = {}) {
  return join(server, keyDid, password, onProgress, opts);
}

async function join(server, keyDid, password, onProgress, { kitSaltHex = null, kitKdf = null, deviceName = null } = {}) {
  if (await vault.exists()) throw new Nt2Error("vault_exists", "This browser already holds a vault; setting up needs a browser profile without one.");
  if (typeof keyDid !== "string" || !keyDid.startsWith("did:key:z") || keyDid.length > 64) throw new Nt2Error("bad_key_did", "The key DID must look like did:key:z6Mk….");
  const api = new Api(server);
  await checkAudience(api);
  let boot;
  try {
    boot = await api.bootstrap(keyDid);
  } catch (err) {
    if (err.code === "vault_not_found") throw new Nt2Error("vault_not_found", "The server has no vault for this key DID.");
    throw err;
  }
  if (!boot || typeof boot !== "object") throw lied("The server's bootstrap answer is not an object; nothing was sent.");
  if (boot.keyDid !== keyDid) throw lied("The server answered for another key DID than asked; nothing was sent.");
  let iterations;
  try {
    iterations = c.checkKdf(boot.kdf);
  } catch (err) {
    throw new Nt2Error("weak_kdf", `The server offered weak key-derivation parameters (${err.message}); refusing to use them, nothing was sent.`);
  }
  if (kitKdf !== null && iterations !== c.checkKdf(kitKdf)) throw new Nt2Error("weak_kdf", "The server's key-derivation parameters differ from the kit's; refusing them, nothing was sent.");
  let saltBytes;
  try {
    saltBytes = fromHex(String(boot.saltHex));
    if (saltBytes.length < 16 || saltBytes.length > 64) throw new Error("length");
  } catch {
    throw lied("The server sent a malformed salt; refusing it, nothing was sent.");
  }
  if (kitSaltHex !== null && hex(saltBytes) !== kitSaltHex) throw lied("The server sent another salt than the one in your kit; refusing it, nothing was sent.");
  const kek = await c.deriveKek(password, saltBytes, iterations);
  const { seed, keyDid: derived } = await c.keyDidFromKek(kek);
  if (derived !== keyDid) throw new Nt2Error("wrong_password", "The master password is wrong for this vault (it does not derive its key DID); nothing was sent.");
  let opened;
  try {
    opened = await c.openVerifier(kek, saltBytes, String(boot.verifier ?? ""));
  } catch {
    throw lied("The server's verifier does not open with the right master password: the server sent a wrong verifier; nothing was saved.");
  }
  const keys = await c.vaultKeys(opened.dataKey, saltBytes, opened.epoch);
  const rec = {
    schema: vault.SCHEMA,
    saltHex: hex(saltBytes),
    kdf: c.kdfParams(iterations),
    keyDid,
    verifier: String(boot.verifier),
    keyCheck: keys.keyCheck,
    serverUrl: api.audience,
    syncEnabled: true,
    createdAt: vault.now(),
  };
  await vault.install(rec, keys, seed, keyDid, vault.freshState(deviceName));
  useApi(api);
  try {
    // The first pull checks what the manifests attest as the CLI's join does: an item served
    // older than attested is refused, and the items no manifest attests are named (notices).
    return await syncNow(onProgress);
  } catch (err) {
    vault.lock();
    await store.wipe(); // a refused first pull leaves nothing behind
    dropConnection();
    throw err;
  }
}
