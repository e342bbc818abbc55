// The web client's facade: the only module the UI imports (contract: /tmp/web_api.md).
// Every failure is an Nt2Error with a stable snake_case `code` and one sentence a person
// can act on; server strings are cleaned of control and bidi characters before display.
import { Nt2Error, cleanText } from "./core/errors.js";
import * as store from "./core/store.js";
import * as vault from "./core/vault.js";
import * as session from "./core/session.js";
import * as sync from "./core/sync.js";
import * as enrol from "./core/enrol.js";
import * as account from "./core/account.js";
import * as rotation from "./core/rotation.js";
import * as backup from "./core/backup.js";
import * as live from "./core/live.js";
import * as notices from "./core/notices.js";
import * as attachments from "./core/attachments.js";

export { Nt2Error, cleanText };

// Anything that is not already one of ours becomes one sentence (never a stack or raw text).
// A call does not count as activity for the auto-lock: the UI calls the facade on its own
// (live pulls, status refreshes), and a vault busy with changes from elsewhere must still lock.
async function guard(fn) {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof Nt2Error) throw err;
    if (err?.name === "QuotaExceededError") throw new Nt2Error("storage_failed", "The browser's storage for this site is full.", { cause: err });
    console.error(err);
    throw new Nt2Error("internal", "Something went wrong in the web client; reload the page and try again.", { cause: err });
  }
}

// -- the vault ---------------------------------------------------------------------------------
export function state() {
  return guard(async () => {
    const rec = await store.readMeta();
    return { exists: rec !== null, unlocked: vault.V !== null, syncEnabled: Boolean(rec?.syncEnabled), server: rec?.serverUrl ?? null };
  });
}

export function createVault(password, { iterations = 100000, deviceName = null } = {}) {
  return guard(async () => {
    const made = await vault.createVault(password, { iterations, deviceName });
    touch();
    return made;
  });
}

export function unlock(password) {
  return guard(async () => {
    if (typeof password !== "string" || !password) throw new Nt2Error("wrong_password", "Enter the master password.");
    await vault.unlock(password);
    touch();
  });
}

export function lock() {
  live.stopLive();
  session.dropConnection();
  vault.lock();
}

// The auto-lock: counted from unlocking and from the person's own input (below) only.
let autoLockMs = 0;
let autoLockTimer = null;

function touch() {
  if (autoLockTimer) clearTimeout(autoLockTimer);
  autoLockTimer = null;
  if (autoLockMs > 0 && vault.V) autoLockTimer = setTimeout(lock, autoLockMs);
}

export function setAutoLock(ms) {
  autoLockMs = Number(ms) > 0 ? Number(ms) : 0;
  touch();
}

if (typeof window !== "undefined") {
  for (const event of ["pointerdown", "keydown", "wheel", "touchstart"]) window.addEventListener(event, touch, { passive: true, capture: true });
}

export function onLock(cb) {
  return vault.onLock(cb);
}

// -- items -------------------------------------------------------------------------------------
export function listItems() {
  return guard(async () => vault.listItems());
}

export function saveItem(fields) {
  return guard(() => vault.saveItem(fields ?? {}));
}

export function deleteItem(id) {
  return guard(() => vault.deleteItem(String(id)));
}

export function onChange(cb) {
  return vault.onChange(cb);
}

// -- attachments ---------------------------------------------------------------------------------
// Files live (encrypted) on the sync server only; each call may open a session, so it runs
// with the writers. [{id, name, size}] of an item; the id of a new attachment; its bytes.
export function listAttachments(itemId) {
  return guard(async () => attachments.listAttachments(itemId));
}

export function addAttachment(itemId, name, bytes) {
  return guard(() => vault.exclusive(() => attachments.addAttachment(itemId, name, bytes)));
}

export function getAttachment(attachmentId) {
  return guard(() => vault.exclusive(() => attachments.getAttachment(attachmentId)));
}

export function removeAttachment(attachmentId) {
  return guard(() => vault.exclusive(() => attachments.removeAttachment(attachmentId)));
}

// cb(sentences): the warnings of a sync (also a background one), each a sentence to show.
export function onNotices(cb) {
  return notices.onNotices(cb);
}

// -- sync --------------------------------------------------------------------------------------
export function syncStatus() {
  return guard(async () => {
    const v = vault.requireUnlocked();
    const { dirty, manifests } = vault.counts();
    const out = {
      enabled: Boolean(v.rec.syncEnabled),
      server: v.rec.serverUrl ?? null,
      registered: null,
      lastSyncAt: v.st.lastSyncAt ?? null,
      watermark: v.st.watermark,
      counts: { items: null, tombstones: null, attachments: null, attachmentBytes: null },
      pending: dirty,
      live: live.liveState(),
    };
    if (!out.enabled) return out;
    try {
      const remote = await vault.exclusive(() => enrol.remoteStatus()); // may finish a rotation: one writer
      out.registered = true;
      const n = remote.counts && typeof remote.counts === "object" ? remote.counts : {};
      const num = (x) => (Number.isSafeInteger(x) && x >= 0 ? x : null);
      // The server counts manifests as items; a person's count leaves out those held here.
      const items = num(n.items) === null ? null : Math.max(0, n.items - manifests);
      out.counts = { items, tombstones: num(n.tombstones), attachments: num(n.attachments), attachmentBytes: num(n.attachmentBytes) };
    } catch (err) {
      if (err.code !== "network") throw err;
      out.offline = true; // the local part still stands
    }
    return out;
  });
}

export function enableSync(serverUrl, onProgress = null, { deviceName = null } = {}) {
  return guard(() => vault.exclusive(() => enrol.enableSync(serverUrl, onProgress, { deviceName })));
}

export function syncNow(onProgress = null) {
  return guard(() => vault.exclusive(() => sync.syncNow(onProgress)));
}

export function disableSync() {
  return guard(async () => {
    live.stopLive();
    return vault.exclusive(() => enrol.disableSync());
  });
}

// -- Premium and devices -------------------------------------------------------------------------
// Before sync is enabled, Premium is asked of `server` (default: this page's /config.json API).
async function serverFor(server) {
  const v = vault.requireUnlocked();
  if (!v.rec.serverUrl) await session.useServer(server ?? (await config()).api);
}

export function premiumStatus(server = null) {
  return guard(async () => {
    await serverFor(server);
    return vault.exclusive(() => account.premiumStatus());
  });
}

export function redeemPromo(code, server = null) {
  return guard(async () => {
    await serverFor(server);
    return vault.exclusive(() => account.redeemPromo(code));
  });
}

export function checkoutUrl(server = null) {
  return guard(async () => {
    await serverFor(server);
    return vault.exclusive(() => account.checkoutUrl());
  });
}

// Calls that may open a session run one at a time with the writers: opening one can finish
// an interrupted password change, which re-seals and stores the vault.
export function listDevices() {
  return guard(() => vault.exclusive(() => account.listDevices()));
}

export function renameDevice(deviceId, name) {
  return guard(() => vault.exclusive(() => account.renameDevice(deviceId, name)));
}

export function revokeDevice(deviceId) {
  return guard(() => vault.exclusive(() => account.revokeDevice(deviceId)));
}

// -- a new device ------------------------------------------------------------------------------
export function parseKit(text) {
  return guard(async () => enrol.parseKit(text));
}

export function joinFromKit(kit, password, onProgress = null, { deviceName = null } = {}) {
  return guard(() => vault.exclusive(() => enrol.joinFromKit(kit, password, onProgress, { deviceName }))).finally(touch);
}

export function joinFromServer(server, keyDid, password, onProgress = null, { deviceName = null } = {}) {
  return guard(() => vault.exclusive(() => enrol.joinFromServer(server, keyDid, password, onProgress, { deviceName }))).finally(touch);
}

// -- kit and backups -----------------------------------------------------------------------------
export function exportKit() {
  return guard(() => backup.exportKit());
}

export function exportBackup() {
  return guard(() => backup.exportBackup());
}

export function importBackup(bytes, { restoreDeleted = false } = {}) {
  return guard(() => backup.importBackup(bytes, { restoreDeleted }));
}

// -- master password -------------------------------------------------------------------------------
// With rekey (the default) also a new data key and epoch, every item re-encrypted and pushed;
// an interrupted re-key is finished by the next syncNow (docs/WEB.md, "Re-key").
export function changePassword(oldPassword, newPassword, { rekey = true, iterations = null } = {}) {
  return guard(() => vault.exclusive(() => rotation.changePassword(oldPassword, newPassword, { rekey, iterations })));
}

// {keyDid, rekeyed, notices}: after a re-key made elsewhere, what this device holds is
// re-sealed under the new key and synced.
export function adoptPassword(newPassword, { kitKdf = null } = {}) {
  return guard(() => vault.exclusive(() => rotation.adoptPassword(newPassword, { kitKdf })));
}

// -- live ------------------------------------------------------------------------------------------
export function startLive() {
  if (!vault.V || !vault.V.rec.syncEnabled) return;
  live.startLive();
}

export function stopLive() {
  live.stopLive();
}

export function onLiveState(cb) {
  return live.onLiveState(cb);
}

// -- the page's own configuration ---------------------------------------------------------------------
let configCache = null;

export function config() {
  return guard(async () => {
    if (!configCache) {
      const res = await fetch("/config.json");
      if (!res.ok) throw new Nt2Error("config_unavailable", "The page could not read its configuration; reload it.");
      const body = await res.json();
      if (!body || typeof body.api !== "string") throw new Nt2Error("config_unavailable", "The page's configuration names no server.");
      configCache = { api: body.api };
    }
    return { ...configCache };
  });
}
