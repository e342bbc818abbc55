// Push and pull (PROTOCOL §5), as nt2sync/sync.py: dirty items out in batches of 500 whose
// batchId is stored (sealed) before sending, server pages verified item by item (tampering,
// rollback, sealed deletions) before a page's single transaction. Manifests (manifests.js):
// each page's checked first, the end of a pull checked whole, this device's published last.
import * as c from "./crypto.js";
import * as manifests from "./manifests.js";
import * as merge from "./merge.js";
import { Nt2Error } from "./errors.js";
import { hex, randomBytes } from "./bytes.js";
import { checkPullPage } from "./pages.js";
import { call, ensureSession } from "./session.js";
import { isReserved } from "./reserved.js";
import { emitNotices } from "./notices.js";
import { retryDeletes } from "./attachments.js";
import { openRemoteDeletion, openRemoteItem, stillOldKey, takeNotices } from "./rekey.js";
import { V, emitChange, localEdit, newItemId, now, persist, plaintextOf, requireUnlocked } from "./vault.js";

export const PUSH_BATCH = 500;
export const PULL_LIMIT = 1000;

function report(onProgress, phase, done, total) {
  if (onProgress) {
    try {
      onProgress({ phase, done, total });
    } catch (err) {
      console.error(err);
    }
  }
}

let rekeyFinisher = null; // set by rotation.js (no import cycle): a re-key recorded here is finished first

export function setRekeyFinisher(fn) {
  rekeyFinisher = fn;
}

// Push, pull, push what the pull produced.
export async function syncNow(onProgress = null) {
  const v = requireUnlocked();
  if (!v.rec.syncEnabled) throw new Nt2Error("sync_off", "Cloud sync is not enabled for this vault.");
  if (v.st.pendingRekey && rekeyFinisher) return rekeyFinisher(onProgress);
  return syncOnce(onProgress);
}

export async function syncOnce(onProgress = null) {
  const summary = { pushed: 0, pulled: 0, conflicts: 0, notices: [] };
  await push(summary, onProgress);
  await pull(summary, onProgress);
  if (dirtyRows(1).length) await push(summary, onProgress);
  await manifests.publish(); // only when this sync gave it something new to attest
  await retryDeletes(); // files removed here whose deletion the server did not take yet
  V.st.lastSyncAt = now();
  await persist();
  summary.notices.push(...takeNotices());
  emitNotices(summary.notices);
  return summary;
}

export function dirtyRows(limit) {
  const out = [];
  for (const row of V.rows.values()) {
    if (row.dirty && !isReserved(row.id)) {
      out.push(row);
      if (out.length >= limit) break;
    }
  }
  return out;
}

function wireItem(row) {
  const item = { id: row.id, baseVersion: row.version, deleted: row.deleted };
  if (!row.deleted || row.ciphertext !== null) item.ciphertext = row.ciphertext; // a tombstone's is its sealed deletion
  return item;
}

// -- push ------------------------------------------------------------------------------------
export async function push(summary, onProgress) {
  let total = 0;
  for (const row of V.rows.values()) if (row.dirty && !isReserved(row.id)) total++;
  if (total === 0 && !V.st.pendingBatch) return;
  let done = 0;
  const skipped = []; // accepted writes the watermark moved past
  report(onProgress, "push", 0, total);
  for (let rounds = 1; ; rounds++) {
    if (rounds > Math.floor(total / PUSH_BATCH) + 50) throw new Nt2Error("conflict_loop", "Sync keeps conflicting with another device; try again.");
    let batch = V.st.pendingBatch;
    if (!batch) {
      const rows = dirtyRows(PUSH_BATCH);
      if (!rows.length) return manifests.spotCheck(skipped, summary); // a few, for the whole push
      batch = { batchId: "b-" + hex(randomBytes(16)), items: rows.map(wireItem) };
      V.st.pendingBatch = batch;
      await persist(); // stored before sending: a retry after a crash reuses the batchId
    }
    let response;
    try {
      response = await call((a) => a.push(batch.batchId, batch.items));
    } catch (err) {
      if (err.code === "batch_mismatch") {
        V.st.pendingBatch = null; // a stale record: rebuild from the dirty rows
        await persist();
        continue;
      }
      throw err;
    }
    skipped.push(...(await applyPush(batch, response, summary)));
    done += batch.items.length;
    report(onProgress, "push", Math.min(done, total), total);
  }
}

function checkPushResults(response, items) {
  const results = response && typeof response === "object" ? response.results : null;
  if (!Array.isArray(results) || results.length !== items.length) {
    throw new Nt2Error("server_lied", "The server answered a push with the wrong number of results; nothing was changed.");
  }
  for (const r of results) {
    if (!r || typeof r !== "object") throw new Nt2Error("server_lied", "The server answered a push with a malformed result; nothing was changed.");
    if (r.status === "accepted" && !Number.isSafeInteger(r.version)) throw new Nt2Error("server_lied", "The server accepted a push without a version; nothing was changed.");
  }
  return results;
}

async function applyPush(batch, response, summary) {
  const { items, batchId } = batch;
  const results = checkPushResults(response, items);
  // When the new head is the old watermark plus exactly our accepted writes, every version
  // in between is ours: nothing to pull there (a first enable does not download its upload).
  const mark = V.st.watermark;
  const ours = results.filter((r) => r.status === "accepted").map((r) => r.version).sort((a, b) => a - b);
  const head = response.watermark;
  const contiguous = ours.length > 0 && ours.every((ver, i) => ver === mark + 1 + i) && head === mark + ours.length;
  const checked = [];
  for (let i = 0; i < items.length; i++) {
    const result = results[i];
    const current = result.status === "conflict" ? result.current : null;
    const local = V.rows.get(items[i].id) ?? null;
    if (current && typeof current === "object" && current.id === items[i].id && Number.isSafeInteger(current.version)) {
      // null: the server's copy is sealed under a retired key (nt2sync's push refuses it too)
      if (current.deleted) checked.push(verifyDeletion(current, local) ?? stillOldKey(current.id));
      else if (current.ciphertext !== null && current.ciphertext !== undefined) checked.push(verifyRemote(current, local) ?? stillOldKey(current.id));
      else checked.push(null);
    } else checked.push(null);
  }
  await manifests.refuseStaleCurrents(items, results, checked);
  const staged = new Map();
  const accepted = [];
  const copies = [];
  let conflicts = 0;
  for (let i = 0; i < items.length; i++) {
    const sent = items[i];
    const result = results[i];
    const local = staged.get(sent.id) ?? V.rows.get(sent.id);
    if (!local || result.id !== sent.id) continue;
    if (result.status === "accepted") {
      summary.pushed++;
      const row = { ...local, version: result.version };
      const unchanged = local.deleted === sent.deleted && local.ciphertext === (sent.ciphertext ?? null);
      if (unchanged) {
        row.dirty = false;
        row.revFloor = local.revision + (local.deleted ? 1 : 0);
      }
      staged.set(row.id, row);
      accepted.push({ id: row.id, version: row.version, row: unchanged ? row : null, ciphertext: sent.ciphertext ?? "" });
    } else if (result.current === null || result.current === undefined) {
      staged.set(local.id, { ...local, version: 0 }); // the server never had it: push again from 0
    } else if (!result.current.deleted && (result.current.ciphertext === null || result.current.ciphertext === undefined)) {
      continue; // sent without its ciphertext (large response): the pull brings it
    } else if (checked[i] !== null) {
      const { stored, copy, conflict } = await applyRemote(result.current, checked[i], local);
      conflicts += conflict;
      if (stored) staged.set(stored.id, stored);
      if (copy) copies.push(copy);
    }
  }
  summary.conflicts += conflicts;
  await manifests.noteAccepted(accepted, { echo: !contiguous });
  if (contiguous) V.st.watermark = head;
  V.st.pendingBatch = null;
  await persist({ rows: [...staged.values(), ...copies] });
  if (conflicts || copies.length) emitChange({ local: false, ids: [...staged.keys(), ...copies.map((r) => r.id)] });
  return contiguous ? accepted.map((a) => [a.id, a.version]) : [];
}

// -- pull ------------------------------------------------------------------------------------
export async function pull(summary, onProgress) {
  let since = V.st.watermark;
  let resynced = false;
  let ahead = null; // {since, promise}: the next page, requested while this one is applied
  let done = 0;
  manifests.beginPull();
  report(onProgress, "pull", 0, null);
  for (;;) {
    let page;
    try {
      if (ahead && ahead.since === since) {
        try {
          page = await ahead.promise;
        } catch {
          page = await call((a) => a.pull(since, PULL_LIMIT)); // renewal and fatal codes there
        }
      } else page = await call((a) => a.pull(since, PULL_LIMIT));
      ahead = null;
    } catch (err) {
      if (err.code === "resync_required" && !resynced) {
        resynced = true;
        since = 0;
        ahead = null;
        continue;
      }
      throw err;
    }
    const { items, watermark, more } = checkPullPage(page, since, PULL_LIMIT);
    if (more) {
      const a = await ensureSession();
      const promise = a.pull(watermark, PULL_LIMIT);
      promise.catch(() => {});
      ahead = { since: watermark, promise };
    }
    const changed = await applyPage(items, watermark, summary);
    done += items.length;
    report(onProgress, "pull", done, more ? null : done);
    if (changed.length) emitChange({ local: false, ids: changed });
    since = watermark;
    if (!more) return manifests.endPull(watermark, summary);
  }
}

async function applyPage(items, watermark, summary) {
  const man = await manifests.takePage(items); // the page's manifests, opened and checked first
  const checked = [];
  for (const remote of items) {
    // every check before any write: a bad page changes nothing
    const local = V.rows.get(remote.id) ?? null;
    if (isReserved(remote.id)) checked.push(null); // manifests are man's; never an item
    else if (local && remote.version <= local.version) checked.push(null);
    else if (remote.deleted) checked.push(verifyDeletion(remote, local));
    else checked.push(verifyRemote(remote, local));
  }
  await manifests.refuseStale(items, checked, man); // below its attestation: refused on its own
  const staged = new Map();
  const copies = [];
  for (let i = 0; i < items.length; i++) {
    const remote = items[i];
    const local = staged.get(remote.id) ?? V.rows.get(remote.id) ?? null;
    if (checked[i] === null) continue;
    manifests.noteBefore(remote.id, local);
    const { stored, copy, conflict } = await applyRemote(remote, checked[i], local);
    summary.conflicts += conflict;
    if (stored) staged.set(stored.id, stored);
    if (copy) copies.push(copy);
  }
  const kept = manifests.storePage(man, items, staged.size > 0);
  V.st.watermark = watermark;
  await persist({ rows: [...staged.values(), ...copies, ...kept] });
  summary.pulled += items.length;
  return [...staged.keys(), ...copies.map((r) => r.id)];
}

// -- one server item -------------------------------------------------------------------------
const shortId = (id) => JSON.stringify(String(id).slice(0, 64));

function verifyRemote(remote, local) {
  let plaintext;
  try {
    plaintext = openRemoteItem(remote.id, remote.ciphertext ?? ""); // null: under a retired key, not accepted
  } catch (err) {
    if (err.code === "unsupported_format") {
      throw new Nt2Error("unsupported_format", `Item ${shortId(remote.id)} from the server has a format this client does not know; update the app. Nothing was changed locally.`);
    }
    throw new Nt2Error("tampered", `The server sent item ${shortId(remote.id)} altered, swapped or from another vault; refusing it. Nothing was changed locally.`);
  }
  if (plaintext !== null) refuseRollback(remote.id, plaintext.revision, local, "version");
  return plaintext;
}

function verifyDeletion(remote, local) {
  let record;
  try {
    record = openRemoteDeletion(remote.id, remote.ciphertext ?? "");
  } catch {
    throw new Nt2Error(
      "unproven_deletion",
      `The server reported a deletion of item ${shortId(remote.id)} that it cannot prove (it is not sealed with this vault's key); the item was kept. Nothing was changed locally.`,
    );
  }
  if (record !== null) refuseRollback(remote.id, record.revision, local, "deletion");
  return record;
}

function refuseRollback(itemId, revision, local, what) {
  const floor = local ? local.revFloor : 0;
  if (revision < floor) {
    throw new Nt2Error(
      "rollback",
      `The server replayed an older ${what} of item ${shortId(itemId)} (revision ${revision}, this device has seen ${floor}); refusing it. Nothing was changed locally.`,
    );
  }
}

function cleanRow(remote, plaintext) {
  return { id: remote.id, version: remote.version, dirty: false, deleted: false, ciphertext: remote.ciphertext, revision: plaintext.revision, revFloor: plaintext.revision, updatedAt: plaintext.updatedAt };
}

function newCopy(plaintext) {
  const copy = merge.conflictedCopy(plaintext, { nowMs: now(), replicaId: V.st.replicaId });
  return localEdit(newItemId(), copy, null);
}

// Merge one server item: {stored: its row or null, copy: a conflicted copy's row or null, conflict: 0|1}.
export async function applyRemote(remote, plaintext, local) {
  const version = remote.version;
  if (local && version <= local.version) return { stored: null, copy: null, conflict: 0 };
  if (remote.deleted) {
    let seen = local ? Math.max(local.revision, local.revFloor) : 0;
    seen = Math.max(seen, plaintext.revision);
    const tomb = { id: remote.id, version, dirty: false, deleted: true, ciphertext: remote.ciphertext, revision: seen, revFloor: seen + 1, updatedAt: 0 };
    if (local && local.dirty && !local.deleted) return { stored: tomb, copy: newCopy(plaintextOf(local)), conflict: 1 }; // an unpushed edit survives
    return { stored: tomb, copy: null, conflict: 0 };
  }
  if (local && !local.dirty && !local.deleted && plaintext.revision === local.revision && local.revision === local.revFloor && remote.ciphertext !== local.ciphertext) {
    // The same revision with other content: two writers the server both accepted (an honest
    // server never does). This device's text stays, theirs becomes a conflicted copy.
    return { stored: { ...local, version }, copy: newCopy(plaintext), conflict: 1 };
  }
  if (!local || !local.dirty || local.deleted) return { stored: cleanRow(remote, plaintext), copy: null, conflict: 0 };
  const mine = plaintextOf(local);
  const decision = await merge.resolveLive(mine, plaintext);
  if (decision.keep === "remote") {
    if (decision.copy === "local") return { stored: cleanRow(remote, plaintext), copy: newCopy(mine), conflict: 1 };
    return { stored: cleanRow(remote, plaintext), copy: null, conflict: 0 };
  }
  const kept = { ...mine, revision: decision.nextRevision };
  delete kept.v;
  const keptRow = {
    id: local.id,
    version,
    dirty: true,
    deleted: false,
    ciphertext: c.encryptItem(V.keys, local.id, kept),
    revision: decision.nextRevision,
    revFloor: plaintext.revision,
    updatedAt: kept.updatedAt,
  };
  return { stored: keptRow, copy: newCopy(plaintext), conflict: 1 };
}
