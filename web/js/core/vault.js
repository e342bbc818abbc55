// The local vault held in memory while unlocked: its clear record, its sealed device state,
// its item rows (a write-through mirror of IndexedDB) and the keys. Every change goes to
// IndexedDB in one transaction with the sealed state, so a crash keeps a consistent vault.
import * as store from "./store.js";
import * as c from "./crypto.js";
import { Nt2Error } from "./errors.js";
import { fromHex, hex, randomBytes } from "./bytes.js";
import { CONTENT_FIELDS } from "./merge.js";
import { isReserved } from "./reserved.js";

export const SCHEMA = 1;
export let V = null; // {rec, st, keys, seed, keyDid, rows: Map, plain: Map}
let lockQueue = Promise.resolve();
const changeListeners = new Set();
const lockListeners = new Set();

export const now = () => Date.now();
export const newReplicaId = () => "r-" + hex(randomBytes(8));
export const newItemId = () => crypto.randomUUID();

export function onChange(cb) {
  changeListeners.add(cb);
  return () => changeListeners.delete(cb);
}
export function emitChange(what) {
  for (const cb of changeListeners) {
    try {
      cb(what);
    } catch (err) {
      console.error(err);
    }
  }
}
export function onLock(cb) {
  lockListeners.add(cb);
  return () => lockListeners.delete(cb);
}

// One writer at a time: in this tab (a queue) and across tabs of the origin (Web Locks).
// Once it holds the lock, a writer first takes in what another tab wrote meanwhile: its own
// copy in memory would otherwise write a stale device state (watermark, manifest numbers,
// pending batch) over the newer one.
export function exclusive(fn) {
  const locked = async () => {
    await catchUp();
    return fn();
  };
  const run = () => (navigator.locks ? navigator.locks.request("nt2-vault", locked) : locked());
  const result = lockQueue.then(run, run);
  lockQueue = result.catch(() => {});
  return result;
}

export function requireUnlocked() {
  if (!V) throw new Nt2Error("locked", "The vault is locked; unlock it with the master password.");
  return V;
}

export const salt = () => fromHex(requireUnlocked().rec.saltHex);

// -- rows -----------------------------------------------------------------------------------
function encodeRow(keys, row) {
  const s = { v: row.version, d: row.dirty, x: row.deleted, r: row.revision, f: row.revFloor, u: row.updatedAt };
  return { id: row.id, ct: row.ciphertext, s: c.sealLocalJson(keys, "row/" + row.id, s) };
}

function decodeRow(keys, stored) {
  let s;
  try {
    s = c.openLocalJson(keys, "row/" + stored.id, stored.s);
  } catch {
    throw new Nt2Error("local_damaged", `The local copy of item ${stored.id} is damaged.`);
  }
  return { id: stored.id, ciphertext: stored.ct ?? null, version: s.v, dirty: s.d, deleted: s.x, revision: s.r, revFloor: s.f, updatedAt: s.u };
}

export function sealState(keys, st) {
  return c.sealLocalJson(keys, "state", st);
}

// What this tab's keys rest on, as it last read or wrote the record: another tab's password
// change, re-key or adoption changes it, and this tab's stale keys must not overwrite that.
const keyBasis = (rec) => JSON.stringify([rec?.keyCheck, rec?.verifier, rec?.keyDid, rec?.pendingVerifier ?? null]);
let basis = null;

// Persist rows (and the sealed state, always) in one IndexedDB transaction.
export async function persist({ rows = [], remove = [], clearItems = false, rec = null } = {}) {
  const v = requireUnlocked();
  // stamp: which write this is, so another tab of this vault knows its copy is stale
  const record = { ...(rec ?? v.rec), state: sealState(v.keys, v.st), stamp: hex(randomBytes(8)) };
  const expect = basis;
  basis = keyBasis(record); // set now: a write issued before this one completes expects it
  const guard = expect === null ? null : (stored) => keyBasis(stored) === expect;
  try {
    await store.commit({ rows: rows.map((r) => encodeRow(v.keys, r)), remove, clearItems, meta: record, guard });
  } catch (err) {
    if (basis === keyBasis(record)) basis = expect;
    if (err.code === "vault_changed" && V === v) lock(); // unlocked again, it reads what the other tab wrote
    throw err;
  }
  v.rec = record;
  announce(record.stamp);
  if (clearItems) {
    v.rows.clear();
    v.plain.clear();
  }
  for (const id of remove) {
    v.rows.delete(id);
    v.plain.delete(id);
  }
  for (const r of rows) {
    v.rows.set(r.id, r);
    v.plain.delete(r.id);
  }
}

export async function setState(patch) {
  Object.assign(requireUnlocked().st, patch);
  await persist();
}

// -- create, unlock, lock --------------------------------------------------------------------
export async function exists() {
  return (await store.readMeta()) !== null;
}

export async function createRecord({ password = null, kek = null, saltBytes, kdf, keyDid, verifier, dataKey, epoch, st, extra = {} }) {
  const keys = await c.vaultKeys(dataKey, saltBytes, epoch);
  const rec = {
    schema: SCHEMA,
    saltHex: hex(saltBytes),
    kdf,
    keyDid,
    verifier,
    keyCheck: keys.keyCheck,
    serverUrl: null,
    syncEnabled: false,
    createdAt: now(),
    ...extra,
  };
  return { rec, keys };
}

export async function createVault(password, { iterations = c.DEFAULT_ITERATIONS, deviceName = null } = {}) {
  if (typeof password !== "string" || !password) throw new Nt2Error("empty_password", "The master password must not be empty.");
  if (await exists()) throw new Nt2Error("vault_exists", "This browser already holds a vault; unlock it instead.");
  const saltBytes = randomBytes(16);
  const dataKey = randomBytes(32);
  const kek = await c.deriveKek(password, saltBytes, iterations);
  const { seed, keyDid } = await c.keyDidFromKek(kek);
  const verifier = await c.sealDataKey(kek, saltBytes, dataKey);
  const { rec, keys } = await createRecord({ saltBytes, kdf: c.kdfParams(iterations), keyDid, verifier, dataKey, epoch: 0 });
  await install(rec, keys, seed, keyDid, freshState(deviceName));
}

export function freshState(deviceName = null) {
  return { replicaId: newReplicaId(), watermark: 0, lastSyncAt: null, token: null, tokenExpiresAt: null, deviceName, pendingRotation: null, pendingBatch: null };
}

// Make (rec, keys) the unlocked vault, stored with no items.
export async function install(rec, keys, seed, keyDid, st) {
  V = { rec, st, keys, seed, keyDid, rows: new Map(), plain: new Map(), retired: [], rekeying: false };
  basis = null; // a new vault replaces whatever was stored
  await persist({ clearItems: true });
}

export async function unlock(password) {
  const rec = await store.readMeta();
  if (!rec) throw new Nt2Error("no_vault", "There is no vault in this browser yet; create one or set up this device.");
  const saltBytes = fromHex(rec.saltHex);
  let opened = null;
  let kek = null;
  try {
    kek = await c.deriveKek(password, saltBytes, c.checkKdf(rec.kdf));
    opened = await c.openVerifier(kek, saltBytes, rec.verifier);
  } catch (err) {
    if (err.code !== "verifier_mismatch") throw err;
  }
  let pendingOpen = false;
  if (!opened && rec.pendingVerifier) {
    // a password change recorded here but not yet confirmed by the server
    kek = await c.deriveKek(password, saltBytes, c.checkKdf(rec.pendingVerifier.kdf));
    try {
      opened = await c.openVerifier(kek, saltBytes, rec.pendingVerifier.verifier);
      pendingOpen = true;
    } catch {
      opened = null;
    }
  }
  if (!opened) {
    const hint = rec.syncEnabled ? " If it was changed on another device, use “adopt the new password”." : "";
    throw new Nt2Error("wrong_password", "The master password is wrong for this vault." + hint);
  }
  let keys = await c.vaultKeys(opened.dataKey, saltBytes, opened.epoch);
  const rekeyed = rec.pendingVerifier?.retired;
  if (pendingOpen && rekeyed && keys.keyCheck !== rec.keyCheck) {
    // the new password of a re-key the server has not confirmed: keep using the old key
    const old = c.openLocal(keys, `rekey/retired/${rekeyed.epoch}`, rekeyed.key);
    keys = await c.vaultKeys(old, saltBytes, rekeyed.epoch);
  }
  if (keys.keyCheck !== rec.keyCheck && !pendingOpen) throw new Nt2Error("wrong_password", "The master password opens a different vault's key.");
  let st;
  try {
    st = c.openLocalJson(keys, "state", rec.state);
  } catch {
    throw new Nt2Error("local_damaged", "This browser's copy of the vault is damaged (its device state does not open).");
  }
  let { seed, keyDid } = await c.keyDidFromKek(kek);
  if (st.pendingRotation && pendingOpen) {
    // keep using the current (old) key until the server agrees
    seed = c.openLocal(keys, "oldSeed", st.pendingRotation.oldSeed);
    keyDid = st.pendingRotation.oldKeyDid;
  }
  const stored = await store.readAllRows();
  const rows = new Map();
  for (const s of stored) rows.set(s.id, decodeRow(keys, s));
  V = { rec, st, keys, seed, keyDid, rows, plain: new Map(), ...(await retiredKeys(keys, st)) };
  tabs(); // from now on, hear the other tabs' writes
  basis = keyBasis(rec);
  return V;
}

// The previous epoch's keys this device holds (web/js/core/rekey.js): while a re-key is being
// finished here (st.pendingRekey, once the server has the new verifier), or after adopting
// one made elsewhere (st.retiredKey), to recognise items still under the old key.
async function retiredKeys(keys, st) {
  const rekey = st.pendingRekey;
  const held = rekey?.retired ?? st.retiredKey ?? null;
  // accepted from the server only once the new key is current here (the rotation is done)
  const rekeying = Boolean(rekey?.retired);
  if (!held) return { retired: [], rekeying };
  const name = rekey?.retired ? `rekey/retired/${held.epoch}` : `retired/${held.epoch}`;
  const old = c.openLocal(keys, name, held.key);
  return { retired: [await c.vaultKeys(old, keys.salt, held.epoch)], rekeying };
}

// -- other tabs of this vault --------------------------------------------------------------
let channel = null;
let channelName = null;
let catchUpQueued = false;

function tabs() {
  if (typeof BroadcastChannel === "undefined") return null;
  const name = "nt2-tabs:" + store.databaseName();
  if (channel && channelName === name) return channel;
  if (channel) channel.close();
  channel = new BroadcastChannel(name);
  channelName = name;
  channel.onmessage = () => {
    // another tab wrote: take it in at the next free moment (one catch-up for a burst)
    if (!V || catchUpQueued) return;
    catchUpQueued = true;
    exclusive(async () => {}).then(
      () => emitChange({ local: false, ids: [], otherTab: true }),
      (err) => {
        if (!(err instanceof Nt2Error)) console.error(err); // else: locked, the lock listeners said so
      },
    );
  };
  return channel;
}

function announce(stamp) {
  tabs()?.postMessage(stamp);
}

// Make the copy in memory the stored one if another tab wrote since this tab last did. The
// same keys open it, unless the other tab changed the password or the key: then this tab
// locks and says so (its keys are not the vault's any more).
async function catchUp() {
  catchUpQueued = false;
  tabs();
  if (!V) return;
  const rec = await store.readMeta();
  if (!V || (rec && rec.stamp === V.rec.stamp)) return;
  const same = rec && rec.keyDid === V.rec.keyDid && rec.keyCheck === V.rec.keyCheck && rec.verifier === V.rec.verifier;
  if (!same) {
    lock();
    throw new Nt2Error("vault_changed", rec ? "The vault's master password or key was changed in another tab; unlock it again." : "The vault was removed in another tab.");
  }
  let st;
  try {
    st = c.openLocalJson(V.keys, "state", rec.state);
  } catch {
    lock();
    throw new Nt2Error("vault_changed", "The vault was changed in another tab; unlock it again.");
  }
  const rows = new Map();
  for (const s of await store.readAllRows()) rows.set(s.id, decodeRow(V.keys, s));
  for (const k of V.retired ?? []) wipeKeys(k);
  // a new object: what other modules derived from the old one (the manifests' index) is rebuilt
  V = { ...V, rec, st, rows, plain: new Map(), ...(await retiredKeys(V.keys, st)) };
  basis = keyBasis(rec);
}

// Zero a key set's secrets (not its salt, which the next key set shares).
export function wipeKeys(k) {
  for (const part of [k.dataKey, k.item, k.local, k.attachment]) part.fill(0);
}

// The retired keys forgotten (a re-key finished, or replaced by newer ones): wiped, or they
// would stay in memory after the vault is locked.
export function forgetRetired(v, keep = []) {
  for (const k of v.retired ?? []) if (!keep.includes(k)) wipeKeys(k);
  v.retired = keep;
}

// The key DID's signing seed replaced (a password changed or adopted): the old one wiped.
export function replaceSeed(v, seed) {
  if (v.seed && v.seed !== seed) v.seed.fill(0);
  v.seed = seed;
}

export function lock() {
  if (!V) return;
  wipeKeys(V.keys);
  for (const k of V.retired ?? []) wipeKeys(k);
  V.seed.fill(0);
  V = null;
  for (const cb of lockListeners) {
    try {
      cb();
    } catch (err) {
      console.error(err);
    }
  }
}

export function setUnlocked(v) {
  V = v;
}

// -- items -----------------------------------------------------------------------------------
export function plaintextOf(row) {
  const v = requireUnlocked();
  const cached = v.plain.get(row.id);
  if (cached && cached.ct === row.ciphertext) return cached.plain;
  let plain = null;
  for (const keys of [v.keys, ...(v.retired ?? [])]) {
    // a retired key: a row pulled under the old key while a re-key is finished here
    try {
      plain = c.decryptItem(keys, row.id, row.ciphertext);
      break;
    } catch {
      continue;
    }
  }
  if (plain === null) throw new Nt2Error("local_damaged", `The local copy of item ${row.id} is damaged.`);
  v.plain.set(row.id, { ct: row.ciphertext, plain });
  return plain;
}

// A local edit: new revision (above anything seen), dirty, the same server version.
export function localEdit(itemId, plaintext, previous) {
  const v = requireUnlocked();
  const floor = previous ? previous.revFloor : 0;
  const revision = Math.max(previous ? previous.revision : 0, floor) + 1;
  const data = { ...plaintext, revision };
  return {
    id: itemId,
    version: previous ? previous.version : 0,
    dirty: true,
    deleted: false,
    ciphertext: c.encryptItem(v.keys, itemId, data),
    revision,
    revFloor: floor,
    updatedAt: data.updatedAt,
  };
}

export function listItems() {
  const v = requireUnlocked();
  const out = [];
  for (const row of v.rows.values()) {
    if (row.deleted || isReserved(row.id)) continue;
    const p = plaintextOf(row);
    out.push({ id: row.id, title: p.title, username: p.username, url: p.url, body: p.body, updatedAt: p.updatedAt, revision: p.revision, synced: !row.dirty });
  }
  out.sort((a, b) => a.updatedAt - b.updatedAt || (a.id < b.id ? -1 : 1));
  return out;
}

function checkText(fields) {
  for (const name of CONTENT_FIELDS) {
    if (fields[name] !== undefined && fields[name] !== null && typeof fields[name] !== "string") {
      throw new Nt2Error("bad_item", `The item's ${name} must be text.`);
    }
  }
}

export function saveItem(fields) {
  return exclusive(async () => {
    const v = requireUnlocked();
    checkText(fields);
    if (fields.id !== undefined && fields.id !== null) {
      const id = String(fields.id);
      const row = v.rows.get(id);
      if (!row || row.deleted || isReserved(id)) throw new Nt2Error("no_item", "That item no longer exists (it was deleted, perhaps on another device).");
      const plain = { ...plaintextOf(row) };
      for (const name of CONTENT_FIELDS) if (typeof fields[name] === "string") plain[name] = fields[name];
      plain.updatedAt = Math.max(now(), plain.updatedAt + 1);
      plain.replicaId = v.st.replicaId;
      delete plain.v;
      await persist({ rows: [localEdit(id, plain, row)] });
      emitChange({ local: true, ids: [id] });
      return id;
    }
    const id = newItemId();
    const plain = { title: "", body: "", username: "", url: "" };
    for (const name of CONTENT_FIELDS) if (typeof fields[name] === "string") plain[name] = fields[name];
    Object.assign(plain, { updatedAt: now(), replicaId: v.st.replicaId, attachments: [] });
    await persist({ rows: [localEdit(id, plain, null)] });
    emitChange({ local: true, ids: [id] });
    return id;
  });
}

// Many new items in one transaction (the benchmark, imports).
export function addItemsBulk(entries) {
  return exclusive(async () => {
    const v = requireUnlocked();
    const rows = entries.map((e) => {
      const plain = { title: "", body: "", username: "", url: "" };
      for (const name of CONTENT_FIELDS) if (typeof e[name] === "string") plain[name] = e[name];
      Object.assign(plain, { updatedAt: now(), replicaId: v.st.replicaId, attachments: [] });
      return localEdit(newItemId(), plain, null);
    });
    await persist({ rows });
    emitChange({ local: true, ids: rows.map((r) => r.id) });
    return rows.map((r) => r.id);
  });
}

export function deleteItem(itemId) {
  return exclusive(async () => {
    const v = requireUnlocked();
    const row = v.rows.get(itemId);
    if (!row || row.deleted || isReserved(itemId)) throw new Nt2Error("no_item", "That item no longer exists (it was deleted, perhaps on another device).");
    const revision = Math.max(row.revision, row.revFloor) + 1;
    const record = { revision, updatedAt: now(), replicaId: v.st.replicaId };
    // Sealed (v1.2 §5): other devices accept the deletion only because it opens with the key.
    const tomb = { ...row, deleted: true, dirty: true, ciphertext: c.sealDeletion(v.keys, itemId, record) };
    await persist({ rows: [tomb] });
    emitChange({ local: true, ids: [itemId] });
  });
}

export function counts() {
  const v = requireUnlocked();
  let live = 0;
  let dirty = 0;
  let manifests = 0; // other devices' manifests held here: live items on the server, not a person's
  for (const r of v.rows.values()) {
    if (!r.deleted && isReserved(r.id)) manifests++;
    else if (!r.deleted) live++;
    if (r.dirty) dirty++;
  }
  return { live, dirty, manifests };
}
