// Authenticated vault state (docs/CRYPTO.md; a port of nt2sync/manifests.py): this device
// publishes a sealed manifest of the writes the server accepted from it (a root and the
// shards that changed, manifest-format.js), and checks every other device's: an item served
// below its highest attestation is refused on its own, and at the end of every complete
// pull what the server withheld, a fork, or a push it dropped is named, in the CLI's words.
//
// Where the CLI keeps SQLite tables, this keeps: the manifest rows themselves (other
// devices' as served and verified; this device's as last sealed, dirty while unsent: the
// outbox), a small sealed state in V.st.man (writes accepted but not yet sealed, roots
// known, pushes expected back), and an in-memory index opened from the rows at first use.
import * as c from "./crypto.js";
import * as f from "./manifest-format.js";
import { Nt2Error } from "./errors.js";
import { hex, randomBytes } from "./bytes.js";
import { checkPullPage } from "./pages.js";
import { call } from "./session.js";
import { isReserved } from "./reserved.js";
import { V, emitChange, onLock, persist } from "./vault.js";

const SHOWN = 5; // item ids named in one message
const SPOT_CHECKS = 4; // accepted writes asked for again after a push the watermark skips
const ROOTS_KEPT = 256; // roots remembered per device (fork checks look at recent ones)
const own = (id) => "#" + id; // keys of the state's maps: never a prototype's name

// -- the sealed state (V.st.man) -------------------------------------------------------------
function state() {
  if (!V.st.man) V.st.man = fresh();
  return V.st.man;
}

function fresh() {
  // pending: own writes accepted, not yet sealed: #id → [version, revision, deleted, digest, shard]
  // roots: #replica → [[counter, hash, version|null, watermark], …] ascending
  // echo: #id → version of an accepted push expected back in a pull
  return { pending: {}, dirty: [], root: false, outbox: [], echo: {}, roots: {} };
}

const rootsOf = (replica) => state().roots[own(replica)] ?? [];
const rootAt = (replica, counter) => rootsOf(replica).find((r) => r[0] === counter) ?? null;

function addRoot(replica, entry) {
  const list = rootsOf(replica).filter((r) => r[0] !== entry[0]);
  list.push(entry);
  list.sort((a, b) => a[0] - b[0]);
  state().roots[own(replica)] = list.slice(-ROOTS_KEPT);
}

function otherReplicas() {
  const me = V.st.replicaId;
  return Object.keys(state().roots)
    .map((k) => k.slice(1))
    .filter((r) => r !== me);
}

// -- the index of what every device attests ----------------------------------------------------
// byItem: id → Map(replica → [version, revision, deleted, digest, shard]);
// shards: "replica:shard" → {replica, part, counter, hash, ids}; latest: replica → root body + hash.
let index = null;
onLock(() => {
  index = null;
  check = null;
});

function tryOpen(keys, row) {
  try {
    return f.open(keys, row.id, row.ciphertext);
  } catch {
    return null;
  }
}

async function loaded(previousKeys = null) {
  if (index && index.v === V) return index;
  const idx = { v: V, byItem: new Map(), shards: new Map(), latest: new Map() };
  const rows = [...V.rows.values()].filter((r) => f.parseId(r.id) && !r.deleted && typeof r.ciphertext === "string");
  const hashes = await f.digests(rows.map((r) => r.ciphertext));
  rows.forEach((row, i) => {
    const [replica, part] = f.parseId(row.id);
    const body = tryOpen(V.keys, row) ?? (previousKeys ? tryOpen(previousKeys, row) : null);
    if (!body) return; // sealed under a key this vault no longer holds: attests nothing here
    if (part === f.ROOT) idx.latest.set(replica, { ...body, hash: hashes[i] });
    else putShard(idx, replica, part, body, hashes[i]);
  });
  index = idx;
  return idx;
}

function putShard(idx, replica, part, body, hash) {
  const key = `${replica}:${part}`;
  const old = idx.shards.get(key);
  if (old) {
    for (const id of old.ids) {
      const by = idx.byItem.get(id);
      if (by) {
        by.delete(replica);
        if (!by.size) idx.byItem.delete(id);
      }
    }
  }
  const ids = [];
  for (const [id, version, revision, deleted, dig] of body.entries) {
    let by = idx.byItem.get(id);
    if (!by) idx.byItem.set(id, (by = new Map()));
    by.set(replica, [version, revision, deleted, dig, part]);
    ids.push(id);
  }
  idx.shards.set(key, { replica, part, counter: body.counter, hash, ids });
  return old ? old.ids : [];
}

// The highest attestation of each item that has one, by (revision, version); `staged`: the
// shards of the page being checked, which replace what their device's shard said before.
function attested(ids, staged = []) {
  const me = V.st.replicaId;
  const pending = state().pending;
  const wanted = new Set(ids);
  const fresh = new Set(staged.map((s) => `${s.body.replicaId}:${s.body.shard}`));
  const fromPage = new Map();
  for (const s of staged) {
    for (const e of s.body.entries) {
      if (!wanted.has(e[0])) continue;
      if (!fromPage.has(e[0])) fromPage.set(e[0], []);
      fromPage.get(e[0]).push([s.body.replicaId, e[1], e[2], e[3], e[4]]);
    }
  }
  const best = new Map();
  const consider = (id, replica, version, revision, deleted, dig) => {
    const have = best.get(id);
    if (!have || revision > have.revision || (revision === have.revision && version > have.version)) {
      best.set(id, { replica, version, revision, deleted: Boolean(deleted), digest: dig });
    }
  };
  for (const id of wanted) {
    const by = index.byItem.get(id);
    if (by) {
      for (const [replica, [version, revision, deleted, dig, part]] of by) {
        if (replica === me && pending[own(id)]) continue; // replaced by the write accepted since
        if (!fresh.has(`${replica}:${part}`)) consider(id, replica, version, revision, deleted, dig);
      }
    }
    const mine = pending[own(id)];
    if (mine) consider(id, me, mine[0], mine[1], mine[2], mine[3]);
    for (const e of fromPage.get(id) ?? []) consider(id, ...e);
  }
  return best;
}

// Why a served item is older than a manifest attests (null when it is not): the CLI's words.
async function stale(remote, revision, best) {
  if (!best) return null;
  const itemId = remote.id;
  const live = !remote.deleted;
  const by = `device ${best.replica}'s manifest`;
  if (revision < best.revision) {
    const what = best.deleted ? "its deletion at revision" : "revision";
    return `The server served item ${itemId} at revision ${revision}, but ${by} attests ${what} ${best.revision}; refusing it as a replay (the item stays as it was).`;
  }
  if (live && best.deleted && revision === best.revision) {
    return `The server served item ${itemId} as live, but ${by} attests its deletion; refusing it (the item stays as it was).`;
  }
  const sameWrite = revision === best.revision && remote.version <= best.version;
  if (live && !best.deleted && sameWrite && (await f.digest(String(remote.ciphertext ?? ""))) !== best.digest) {
    return `The server served item ${itemId} with content other than the revision ${revision} that ${by} attests; refusing it (the item stays as it was).`;
  }
  return null;
}

function holds(row, claim) {
  if (!row) return claim.deleted; // a purged tombstone: the item is rightly absent
  if (claim.deleted) return row.deleted || row.revision > claim.revision;
  return row.revision >= claim.revision;
}

function names(ids) {
  const more = ids.length > SHOWN ? ` and ${ids.length - SHOWN} more` : "";
  return ids.slice(0, SHOWN).join(", ") + more;
}

function some(messages) {
  if (messages.length <= SHOWN) return messages;
  return [...messages.slice(0, SHOWN), `… and ${messages.length - SHOWN} more items refused the same way.`];
}

function droppedNotice(ids) {
  const user = ids.filter((i) => !isReserved(i));
  return `The server accepted ${ids.length} change(s) from this device but never returned them (${names(user.length ? user : ids)}): it may have dropped them; they are still here. If this repeats, do not trust this server with your changes.`;
}

const isCount = (v, low = 0) => Number.isSafeInteger(v) && v >= low;

// -- pushes of this device's items -------------------------------------------------------------
// After an item batch's results, before its persist: {id, version, row (the stored row when
// unchanged since it was sent, else null), ciphertext} of each accepted write: attest it in
// this device's next shard, and (echo) expect it back in the next pull.
export async function noteAccepted(accepted, { echo }) {
  const st = state();
  if (echo) for (const a of accepted) st.echo[own(a.id)] = a.version;
  const rows = accepted.filter((a) => a.row && !isReserved(a.id));
  if (!rows.length) return;
  await loaded();
  const [parts, dig] = await Promise.all([f.shardsOf(rows.map((a) => a.id)), f.digests(rows.map((a) => a.ciphertext))]);
  rows.forEach((a, i) => {
    st.pending[own(a.id)] = [a.version, revisionOf(a.row), a.row.deleted ? 1 : 0, dig[i], parts[i]];
  });
}

// The revision a write carried: a deletion's is in its sealed record (a tombstone row keeps
// the last live revision).
function revisionOf(row) {
  if (!row.deleted || !row.ciphertext) return row.revision;
  try {
    return c.openDeletion(V.keys, row.id, row.ciphertext).revision;
  } catch {
    return row.revision;
  }
}

// A push conflict's current item below its attestation: refused, the whole batch unapplied.
export async function refuseStaleCurrents(items, results, checked) {
  await loaded();
  const currents = results.map((r) => (r && r.status === "conflict" && r.current && typeof r.current === "object" ? r.current : null));
  const best = attested(currents.filter(Boolean).map((cur) => cur.id));
  for (let i = 0; i < items.length; i++) {
    const current = currents[i];
    if (!current || !checked[i]) continue;
    const refusal = await stale(current, checked[i].revision, best.get(items[i].id));
    if (refusal) throw new Nt2Error("rollback", `${refusal} Nothing was changed locally.`);
  }
}

// After a push whose versions the watermark skipped (nothing else was written since): ask
// for a few of them (all, up to four) one by one; each must come back at its version, or
// have been overwritten since. Catches a server that answered "accepted" and stored nothing.
export async function spotCheck(accepted, summary) {
  const picked = [...accepted];
  while (picked.length > SPOT_CHECKS) {
    const r = randomBytes(4);
    picked.splice((((r[0] << 24) | (r[1] << 16) | (r[2] << 8) | r[3]) >>> 0) % picked.length, 1);
  }
  const dropped = [];
  for (const [itemId, version] of picked) {
    const page = await call((a) => a.pull(version - 1, 1));
    const { items } = checkPullPage(page, version - 1, 1);
    const first = items[0] ?? null;
    if (!first || (first.version === version && first.id !== itemId)) dropped.push(itemId);
  }
  if (dropped.length) summary.notices.push(droppedNotice(dropped));
}

// -- pulls -------------------------------------------------------------------------------------
let check = null; // the pull under way: what it learnt, checked when it ends

export function beginPull() {
  check = { first: V.st.watermark === 0, before: new Map(), touched: new Set(), refused: new Map(), roots: new Set(), alarms: [] };
  return check;
}

function current() {
  return check ?? beginPull();
}

// Open and check the manifest items of a page before anything of it is stored: returns the
// staged roots and shards for storePage. A manifest that does not open is ignored, as if
// withheld (which the server can always do), and named.
export async function takePage(items) {
  await loaded();
  const pull = current();
  const me = V.st.replicaId;
  const man = { roots: [], shards: [] };
  for (const remote of items) {
    const parsed = f.parseId(remote.id);
    if (!parsed) continue; // not a manifest (a user item, or a reserved id this client does not use)
    const [replica, part] = parsed;
    let body;
    try {
      if (remote.deleted || typeof remote.ciphertext !== "string") throw c.tampered("a manifest is never deleted");
      body = await f.openChecked(V.keys, remote.id, remote.ciphertext);
    } catch (err) {
      if (!(err instanceof c.CryptoError)) throw err;
      pull.alarms.push(
        `The server sent device ${replica}'s manifest (${remote.id}) altered, from another vault or under an older key; it was ignored, and what it attests is not verified.`,
      );
      continue;
    }
    const hash = await f.digest(remote.ciphertext);
    if (replica === me) {
      if (part === f.ROOT) checkOwnRoot(pull, body, hash);
      continue; // this device's own entries are already here
    }
    if (part === f.ROOT) {
      const root = takeRoot(pull, me, body, hash);
      if (root) man.roots.push({ body, hash, remote });
    } else {
      const old = index.shards.get(`${replica}:${part}`);
      if (!old || body.counter > old.counter) man.shards.push({ body, hash, remote });
    }
  }
  return man;
}

function checkOwnRoot(pull, body, hash) {
  const kept = rootsOf(body.replicaId);
  const row = rootAt(body.replicaId, body.counter);
  if (!row && kept.length >= ROOTS_KEPT && body.counter < kept[0][0]) return; // older than remembered
  if (!row || row[1] !== hash) {
    pull.alarms.push(
      `The server holds a manifest of this device (number ${body.counter}) that this device did not write: another device is using this vault file's identity (a copied vault file), or this vault was restored from an older copy. Stop using one of the copies, and join again on it with \`nt2sync join\`.`,
    );
  }
}

function takeRoot(pull, me, body, hash) {
  const { replicaId: replica, counter } = body;
  const list = rootsOf(replica);
  const last = list.length ? list[list.length - 1] : null;
  const fork = (why) =>
    `Your devices were shown different versions of the vault (a fork): device ${replica}'s manifest ${why}. The server is withholding or replaying changes; compare \`nt2sync vault fingerprint\` on your devices and do not trust this server until they agree.`;
  if (last) {
    if (counter < last[0]) {
      pull.alarms.push(`The server replayed an older manifest of device ${replica} (number ${counter}; this device has seen ${last[0]}); it was ignored.`);
      return false;
    }
    if (counter === last[0]) {
      if (last[1] !== hash) pull.alarms.push(fork(`number ${counter} exists in two versions`));
      return false;
    }
    if (counter === last[0] + 1 && body.prev !== last[1]) pull.alarms.push(fork(`number ${counter} does not follow ${last[0]}`));
  }
  for (const [other, [k, claimed]] of Object.entries(body.seen)) {
    const row = rootAt(other, k);
    if (row && row[1] !== claimed) {
      const whose = other === me ? "this device's" : `device ${other}'s`;
      pull.alarms.push(fork(`saw ${whose} manifest ${k} in another version`));
    }
  }
  const mine = Object.hasOwn(body.seen, me) ? body.seen[me][0] : 0;
  let passed = null;
  for (const [k, , version] of rootsOf(me)) if (version !== null && version <= body.watermark) passed = passed === null ? k : Math.max(passed, k);
  if (passed !== null && mine < passed) {
    pull.alarms.push(
      `The server hid this device's changes from device ${replica}: its view of the vault (at watermark ${body.watermark}) passed this device's manifest ${passed} without receiving it (it saw ${mine || "none"}). Your devices were shown different versions of the vault (a fork); do not trust this server until \`nt2sync vault fingerprint\` agrees on both.`,
    );
  }
  pull.roots.add(replica);
  return true;
}

// The page's items (not manifests) whose opened revision is below their attestation: each
// refused on its own (checked[i] = null), named at the end of the pull.
export async function refuseStale(items, checked, man) {
  const pull = current();
  const open = items.map((r, i) => (checked[i] && !isReserved(r.id) ? i : -1)).filter((i) => i >= 0);
  if (!open.length) return;
  const best = attested(
    open.map((i) => items[i].id),
    man.shards,
  );
  for (const i of open) {
    const refusal = await stale(items[i], checked[i].revision, best.get(items[i].id));
    if (refusal) {
      pull.refused.set(items[i].id, refusal);
      checked[i] = null;
    }
  }
}

// An item of this pull is about to be applied: its row as it was (put back should the
// manifest that attests it arrive later in the pull).
export function noteBefore(itemId, local) {
  const pull = current();
  if (!pull.before.has(itemId)) pull.before.set(itemId, local ?? null);
}

const manifestRow = (id, version, ciphertext, dirty) => ({ id, version, dirty, deleted: false, ciphertext, revision: 0, revFloor: 0, updatedAt: 0 });

// Before the page's persist: the staged manifests (their rows to store, returned), the
// echoes the page brought, and (applied) another device's change: the next root attests it.
export function storePage(man, items, applied) {
  const pull = current();
  const st = state();
  const rows = [];
  for (const { body, hash, remote } of man.roots) {
    addRoot(body.replicaId, [body.counter, hash, remote.version, body.watermark]);
    index.latest.set(body.replicaId, { ...body, hash });
    rows.push(manifestRow(remote.id, remote.version, remote.ciphertext, false));
  }
  for (const { body, hash, remote } of man.shards) {
    for (const id of putShard(index, body.replicaId, body.shard, body, hash)) pull.touched.add(id);
    for (const e of body.entries) pull.touched.add(e[0]);
    rows.push(manifestRow(remote.id, remote.version, remote.ciphertext, false));
  }
  for (const r of items) {
    const want = st.echo[own(r.id)];
    if (want !== undefined && want <= r.version) delete st.echo[own(r.id)];
  }
  if (applied) st.root = true;
  return rows;
}

// After a complete pull: refuse what came in below its attestation (put back as it was),
// name what was withheld or never came back, and tell of any fork. Notices go to summary.
export async function endPull(watermark, summary) {
  const pull = current();
  check = null;
  await loaded();
  const ids = [...new Set([...pull.touched, ...pull.before.keys()])].sort();
  const best = attested(ids);
  const withheld = [];
  const restore = [];
  const remove = [];
  for (const itemId of ids) {
    const claim = best.get(itemId);
    const row = V.rows.get(itemId) ?? null;
    if (!claim || pull.refused.has(itemId) || holds(row, claim)) continue;
    if (pull.before.has(itemId)) {
      // served in this pull below its attestation
      const served = { id: itemId, deleted: row ? row.deleted : true, version: row ? row.version : 0, ciphertext: (row && row.ciphertext) || "" };
      pull.refused.set(itemId, (await stale(served, row ? row.revision : 0, claim)) ?? `The server served item ${itemId} older than a manifest attests; refusing it.`);
      const before = pull.before.get(itemId);
      if (before) restore.push(before);
      else remove.push(itemId); // it came only from this refused answer
    } else withheld.push(itemId);
  }
  const notices = summary.notices;
  notices.push(...pull.alarms);
  notices.push(...some([...pull.refused.values()]));
  if (withheld.length) {
    notices.push(
      `The server withheld ${withheld.length} change(s) that your other devices made (${names(withheld)}): their manifests attest them, but this device's pull passed them without receiving them. Your devices may have been shown different versions of the vault (a fork); compare \`nt2sync vault fingerprint\` on them.`,
    );
  }
  if (pull.first) {
    const unattested = [...pull.before.keys()].filter((i) => !best.has(i) && !pull.refused.has(i));
    if (unattested.length) {
      notices.push(
        `${unattested.length} item(s) could not be verified against any device's manifest (${names(unattested)}): written by a device that has not published one yet (an older nt2sync, or an edit in flight); they were accepted as served.`,
      );
    }
  }
  const st = state();
  const dropped = Object.entries(st.echo)
    .filter(([, v]) => v <= watermark)
    .map(([k]) => k.slice(1))
    .sort();
  if (dropped.length) {
    notices.push(droppedNotice(dropped));
    for (const id of dropped) delete st.echo[own(id)];
  }
  if (restore.length || remove.length || dropped.length) await persist({ rows: restore, remove });
  if (restore.length || remove.length) emitChange({ local: false, ids: [...restore.map((r) => r.id), ...remove] });
  for (const replica of pull.roots) {
    const missing = shardsBehind(replica);
    if (missing.length) {
      notices.push(`The server withheld part of device ${replica}'s manifest (shard(s) ${missing.slice(0, SHOWN).join(", ")}); items it attests there could not be verified.`);
    }
  }
}

function shardsBehind(replica) {
  const root = index.latest.get(replica);
  if (!root) return [];
  return Object.entries(root.shards)
    .filter(([s, h]) => index.shards.get(`${replica}:${s}`)?.hash !== h)
    .map(([s]) => s)
    .sort();
}

// -- publishing this device's manifest ---------------------------------------------------------
// At the end of a sync: when the server accepted this device's writes (their shards and a
// root) or its pull applied another device's change (a root only). A pull that brought only
// manifests publishes nothing. Returns the manifest items pushed.
export async function publish() {
  await loaded();
  const st = state();
  if (!st.outbox.length) {
    const dirty = new Set(st.dirty);
    for (const p of Object.values(st.pending)) dirty.add(p[4]);
    if (!dirty.size && !st.root) return 0;
    await build([...dirty].sort());
  }
  return pushOutbox();
}

// Seal the changed shards and a new root, stored (dirty: the outbox) before they are sent:
// a retry resends these exact bytes, so a root number never exists in two versions.
async function build(dirty) {
  const me = V.st.replicaId;
  const st = state();
  const mine = rootsOf(me);
  const last = mine.length ? mine[mine.length - 1] : null;
  const counter = (last ? last[0] : 0) + 1;
  const shards = { ...(index.latest.get(me)?.shards ?? {}) };
  const byShard = new Map();
  for (const [k, p] of Object.entries(st.pending)) {
    if (!byShard.has(p[4])) byShard.set(p[4], []);
    byShard.get(p[4]).push([k.slice(1), p]);
  }
  const out = [];
  const sealed = [];
  for (const part of dirty) {
    const entries = new Map();
    for (const id of index.shards.get(`${me}:${part}`)?.ids ?? []) {
      const e = index.byItem.get(id)?.get(me);
      if (e) entries.set(id, [id, e[0], e[1], e[2], e[3]]);
    }
    for (const [id, p] of byShard.get(part) ?? []) entries.set(id, [id, p[0], p[1], p[2], p[3]]);
    if (!entries.size) continue;
    const list = [...entries.values()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const body = { v: 1, kind: "shard", replicaId: me, shard: part, counter, entries: list };
    const id = f.shardId(me, part);
    if (f.plaintextSize(body) > f.SHARD_CAP) throw new Nt2Error("manifest_full", "This vault has too many items for its manifest; update the app.");
    const ciphertext = f.seal(V.keys, id, body);
    sealed.push({ part, body, id, ciphertext });
  }
  const hashes = await f.digests(sealed.map((s) => s.ciphertext));
  sealed.forEach((s, i) => {
    shards[s.part] = hashes[i];
    putShard(index, me, s.part, s.body, hashes[i]);
    out.push([s.id, s.ciphertext]);
  });
  const seen = Object.fromEntries(
    otherReplicas().map((r) => {
      const list = rootsOf(r);
      const top = list[list.length - 1];
      return [r, [top[0], top[1]]];
    }),
  );
  const root = { v: 1, kind: f.ROOT, replicaId: me, counter, watermark: V.st.watermark, prev: last ? last[1] : "", shards, seen };
  const rootCt = f.seal(V.keys, f.rootId(me), root);
  const rootHash = await f.digest(rootCt);
  out.push([f.rootId(me), rootCt]); // last: a root never names a shard not yet stored
  addRoot(me, [counter, rootHash, null, V.st.watermark]);
  index.latest.set(me, { ...root, hash: rootHash });
  st.outbox = out.map(([id]) => id);
  st.pending = {};
  st.dirty = [];
  st.root = false;
  await persist({ rows: out.map(([id, ct]) => manifestRow(id, V.rows.get(id)?.version ?? 0, ct, true)) });
}

async function pushOutbox() {
  const st = state();
  const me = V.st.replicaId;
  for (let round = 0; round < 3; round++) {
    const rows = st.outbox.map((id) => V.rows.get(id)).filter(Boolean);
    if (!rows.length) {
      st.outbox = [];
      return 0;
    }
    const items = rows.map((r) => ({ id: r.id, baseVersion: r.version, deleted: false, ciphertext: r.ciphertext }));
    const hashes = await f.digests(items.map((i) => i.ciphertext));
    const batchId = "m-" + hex(randomBytes(16));
    const response = await call((a) => a.push(batchId, items));
    const results = response && typeof response === "object" ? response.results : null;
    if (!Array.isArray(results) || results.length !== items.length) {
      throw new Nt2Error("server_lied", "The server answered a push with the wrong number of results; nothing was changed.");
    }
    const accepted = (r) => r && typeof r === "object" && r.status === "accepted" && isCount(r.version, 1);
    const ours = results
      .filter(accepted)
      .map((r) => r.version)
      .sort((a, b) => a - b);
    const mark = V.st.watermark;
    const head = response.watermark;
    // Nothing but this push since the watermark: its versions are ours, so the watermark
    // moves past them (a manifest coming back changes nothing; an honest sync ends at the head).
    const skip = ours.length > 0 && ours.every((v, i) => v === mark + 1 + i) && head === ours[ours.length - 1];
    let redo = false;
    const stored = [];
    items.forEach((sent, i) => {
      const result = results[i];
      const row = V.rows.get(sent.id);
      if (accepted(result)) {
        stored.push({ ...row, version: result.version, dirty: false });
        if (!skip) st.echo[own(sent.id)] = result.version;
        if (sent.id === f.rootId(me)) {
          const entry = rootsOf(me).find((r) => r[1] === hashes[i]);
          if (entry) entry[2] = result.version;
        }
        st.outbox = st.outbox.filter((id) => id !== sent.id);
        return;
      }
      const cur = result && typeof result === "object" ? result.current : null;
      const now = cur && typeof cur === "object" && isCount(cur.version, 1) ? cur.version : 0;
      stored.push({ ...row, version: now }); // written elsewhere (a lost answer): rebase on it
      redo = true;
    });
    if (skip) V.st.watermark = head;
    await persist({ rows: stored });
    if (!redo) return items.length;
  }
  throw new Nt2Error("manifest_refused", "The server keeps refusing this device's manifest; try the sync again.");
}

// Reseal every shard of this device's manifest and a root under the current keys (after a
// re-key: manifests sealed under the old data key no longer open on the other devices), and
// publish them when sync is on. `previousKeys`: the keys the old manifest rows open with, if
// the index was not opened before the keys changed.
export async function republishAll({ previousKeys = null, publishNow = true } = {}) {
  await loaded(previousKeys);
  const me = V.st.replicaId;
  const st = state();
  // Roots sealed under the old key open nowhere any more, so no device can claim to have
  // seen them: only this device's roots from now on count in the "hid this device's changes"
  // check (the republished shards attest every item again under the new key).
  for (const r of rootsOf(me)) r[2] = null;
  const parts = new Set(st.dirty);
  for (const s of index.shards.values()) if (s.replica === me) parts.add(s.part);
  st.dirty = [...parts].sort();
  st.root = true;
  await persist();
  if (!publishNow || !V.rec.syncEnabled) return 0;
  let pushed = await publish(); // an outbox sealed before: sent first
  if (st.root) pushed += await publish();
  return pushed;
}

// Sync moved to another server: nothing of the old one counts. Returns the manifest rows'
// ids, for the caller's persist to remove.
export function reset() {
  V.st.man = fresh();
  index = null;
  check = null;
  return [...V.rows.keys()].filter((id) => isReserved(id));
}

// How many items some manifest attests at a later state than this device holds.
export async function unverified() {
  await loaded();
  const ids = [...index.byItem.keys()];
  const best = attested(ids);
  return ids.filter((i) => !holds(V.rows.get(i) ?? null, best.get(i))).length;
}
