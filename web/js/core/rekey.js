// Which key opens what during and after a re-key (nt2sync/keyring.py), and re-sealing what
// this device holds under a new data key and epoch (nt2sync/reseal.py). The current key and
// epoch are V.keys; V.retired holds the previous epoch's keys while a re-key is finished here
// (V.rekeying) or, on a device that adopted a re-key made elsewhere, to recognise items still
// under the old key: only the re-keying device accepts those (it re-encrypts them before it is
// done); any other device keeps its own copy and says so, or a holder of the old key could
// still write what it accepts.
import * as c from "./crypto.js";
import { Nt2Error } from "./errors.js";
import { isReserved } from "./reserved.js";
import { V, plaintextOf } from "./vault.js";

// The CLI's sentence (nt2sync/keyring.py); an item id is at most 128 characters (PROTOCOL §2).
export const STILL_OLD_KEY = (id) =>
  `Item ${String(id).slice(0, 128)} from the server is still sealed under the vault's previous key, so it was not accepted: a re-key is still in progress on another device (or the server sent an item written with the old key). This device keeps its own copy; sync again later.`;

export function stillOldKey(id) {
  throw new Nt2Error("still_old_key", STILL_OLD_KEY(id));
}

// Said once per sync (nt2sync's client.notices); syncNow hands them out in its summary.
let notices = [];

export function takeNotices() {
  const out = notices;
  notices = [];
  return out;
}

function note(text) {
  if (!notices.includes(text)) notices.push(text);
}

// {opened, current}: under the current key, else a retired one; the current key's refusal otherwise.
function openWith(opener, id, ciphertext) {
  try {
    return { opened: opener(V.keys, id, ciphertext), current: true };
  } catch (refusal) {
    if (refusal.code === "unsupported_format") throw refusal;
    for (const keys of V.retired ?? []) {
      try {
        return { opened: opener(keys, id, ciphertext), current: false };
      } catch {
        continue;
      }
    }
    throw refusal;
  }
}

function acceptRemote(opener, id, ciphertext) {
  const { opened, current } = openWith(opener, id, ciphertext);
  if (current || V.rekeying) return opened;
  note(STILL_OLD_KEY(id));
  return null;
}

// A server item's plaintext if it is current here; null when it is sealed under the retired
// key on a device that is not re-keying (not accepted; a notice says why).
export const openRemoteItem = (id, ciphertext) => acceptRemote(c.decryptItem, id, ciphertext);
export const openRemoteDeletion = (id, ciphertext) => acceptRemote(c.openDeletion, id, ciphertext);

// Legacy attachments (a reference without its own file key) are sealed under the data key's
// attachment subkey: the CLI re-uploads them under a new id when it re-keys; the browser keeps
// no files and cannot, so it refuses the re-key before anything changes.
export function refuseLegacyAttachments() {
  for (const row of V.rows.values()) {
    if (row.deleted || row.ciphertext === null || isReserved(row.id)) continue;
    const plain = plaintextOf(row);
    if ((plain.attachments ?? []).some((ref) => !("key" in ref))) {
      throw new Nt2Error(
        "legacy_attachments",
        `Item “${String(plain.title).slice(0, 64)}” has a file attached in the old format, which only the command-line client can re-key: run \`nt2sync password change --rekey\` there instead; nothing was changed.`,
      );
    }
  }
}

// The re-keying device: every row not sealed under the current key is re-encrypted with its
// revision bumped and marked for push (nt2sync reseal_for_rekey). Other devices' manifests
// (reserved ids) stay as they are: they are sealed by their devices. Returns the new rows.
export function resealForRekey() {
  const staged = [];
  for (const row of V.rows.values()) {
    if (row.ciphertext === null || isReserved(row.id)) continue; // an unsealed tombstone: nothing to re-key
    let ciphertext;
    let revision;
    if (row.deleted) {
      const { opened, current } = openWith(c.openDeletion, row.id, row.ciphertext);
      if (current) continue;
      revision = Math.max(row.revision, row.revFloor, opened.revision) + 1;
      const { v: _v, deleted: _d, ...record } = opened;
      ciphertext = c.sealDeletion(V.keys, row.id, { ...record, revision });
    } else {
      const { opened, current } = openWith(c.decryptItem, row.id, row.ciphertext);
      if (current) continue;
      revision = Math.max(row.revision, row.revFloor) + 1;
      const { v: _v, ...plain } = opened;
      ciphertext = c.encryptItem(V.keys, row.id, { ...plain, revision }); // attachment refs unchanged
    }
    staged.push({ ...row, ciphertext, revision, dirty: true });
  }
  return staged;
}

// A device adopting a re-key made elsewhere: every row re-sealed in place under `next` with
// the keys it held (unpushed edits included); revisions, versions and dirty flags kept, so
// nothing unpushed is lost or pushed twice (nt2sync reseal_for_adoption).
export function resealForAdoption(held, next) {
  const staged = [];
  for (const row of V.rows.values()) {
    if (row.ciphertext === null || isReserved(row.id)) continue;
    const opener = row.deleted ? c.openDeletion : c.decryptItem;
    let opened = null;
    for (const keys of [...held, next]) {
      try {
        opened = opener(keys, row.id, row.ciphertext);
        break;
      } catch {
        continue;
      }
    }
    if (opened === null) throw new Nt2Error("local_damaged", `The local copy of item ${row.id} is damaged; nothing was changed.`);
    const { v: _v, deleted: _d, ...fields } = opened;
    const ciphertext = row.deleted ? c.sealDeletion(next, row.id, fields) : c.encryptItem(next, row.id, fields);
    staged.push({ ...row, ciphertext });
  }
  return staged;
}

// Every row, with `changed` in place of its stored version: a key switch re-seals each row's
// local part under the new local key in the same transaction as the new verifier.
export function allRowsWith(changed) {
  const byId = new Map(changed.map((r) => [r.id, r]));
  return [...V.rows.values()].map((r) => byId.get(r.id) ?? r);
}

// The previous epoch's key sealed under the current one (kept in the sealed device state).
export function retiredRecord(current, old) {
  return { epoch: old.epoch, key: c.sealLocal(current, `retired/${old.epoch}`, old.dataKey) };
}
