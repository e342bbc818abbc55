// IndexedDB: what the CLI keeps in its SQLite file, ciphertext only. The clear part of the
// vault record is what unlocking needs (salt, KDF, key DID, verifier, key check) and what
// the page shows while locked (server, sync on/off); everything else a device keeps (its
// replicaId, watermark, session token, revisions, pending batch) is sealed under the
// local-secret key. One transaction per sync step, as the CLI's.
import { Nt2Error } from "./errors.js";

const DB_VERSION = 1;
let dbName = "nt2-vault";
let opened = null;

// Tests and the benchmark run several vaults in one origin.
export function useDatabase(name) {
  if (opened) opened.then((db) => db.close()).catch(() => {});
  opened = null;
  dbName = name;
}

/** The database's name: tabs on the same vault talk on a channel of that name. */
export function databaseName() {
  return dbName;
}

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function storageError(err) {
  return new Nt2Error("storage_failed", "The browser refused to store the vault (is storage full or blocked for this site?).", { cause: err });
}

export function db() {
  if (!opened) {
    opened = new Promise((resolve, reject) => {
      const req = indexedDB.open(dbName, DB_VERSION);
      req.onupgradeneeded = () => {
        const d = req.result;
        d.createObjectStore("meta");
        d.createObjectStore("items", { keyPath: "id" });
      };
      req.onsuccess = () => {
        const d = req.result;
        d.onversionchange = () => {
          d.close();
          opened = null;
        };
        resolve(d);
      };
      req.onerror = () => reject(storageError(req.error));
      req.onblocked = () => reject(new Nt2Error("storage_blocked", "Close the other tabs of this app and reload."));
    });
    opened.catch(() => {
      opened = null;
    });
  }
  return opened;
}

export async function readMeta() {
  const d = await db();
  return (await request(d.transaction("meta").objectStore("meta").get("vault"))) ?? null;
}

export async function readAllRows() {
  const d = await db();
  return request(d.transaction("items").objectStore("items").getAll());
}

export const CHANGED_ELSEWHERE = "This vault's password or key was changed in another tab or window of this app; unlock it again here (what was being saved here was not stored).";

// One atomic write: rows to put, ids to delete, the vault record. All or nothing. `guard`
// (the stored record → whether this write may replace it): false when another tab changed
// what this tab's keys rest on, so that its stale keys never overwrite a newer record.
export async function commit({ rows = [], remove = [], meta = null, clearItems = false, guard = null } = {}) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const tx = d.transaction(["meta", "items"], "readwrite", { durability: "strict" });
    const items = tx.objectStore("items");
    const metaStore = tx.objectStore("meta");
    let changed = false;
    const write = () => {
      if (clearItems) items.clear();
      for (const id of remove) items.delete(id);
      for (const row of rows) items.put(row);
      if (meta) metaStore.put(meta, "vault");
    };
    if (!guard) write();
    else {
      const current = metaStore.get("vault");
      current.onsuccess = () => {
        if (guard(current.result ?? null)) return write();
        changed = true;
        tx.abort();
      };
    }
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(storageError(tx.error));
    tx.onabort = () => reject(changed ? new Nt2Error("vault_changed", CHANGED_ELSEWHERE) : storageError(tx.error));
  });
}

// Forget the vault on this device (a refused first pull, the tests).
export async function wipe() {
  const d = await db();
  await new Promise((resolve, reject) => {
    const tx = d.transaction(["meta", "items"], "readwrite");
    tx.objectStore("meta").clear();
    tx.objectStore("items").clear();
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(storageError(tx.error));
  });
}
