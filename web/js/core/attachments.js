// Attachments (PROTOCOL §6, docs/CRYPTO.md): each file sealed under its own random key, the
// blob uploaded through the server's presigned URL, and a reference {id, name, size, sha256,
// key} added to the item in one local edit, so the next sync carries it to other devices.
// Byte-compatible with nt2sync/attachments.py. Unlike the CLI the browser keeps no files:
// an upload is committed before the reference is written (a reference never points at a file
// the server lacks), and a download is fetched, checked and opened on every call.
import { Nt2Error, cleanText } from "./errors.js";
import { b64url, equalText, fromB64url, randomBytes } from "./bytes.js";
import * as c from "./crypto.js";
import { getBlob, putBlob } from "./api.js";
import { call } from "./session.js";
import { isReserved } from "./reserved.js";
import * as vault from "./vault.js";

const ENVELOPE_OVERHEAD = 1 + c.NONCE_BYTES + 16; // version byte, nonce, Poly1305 tag
const MAX_NAME = 255;

// crypto.seal_attachment: the bytes, 0x80, zeros up to padme(size + 1), under the file key.
export function sealAttachment(fileKey, salt, attachmentId, data, nonce = null) {
  if (fileKey.length !== c.KEY_BYTES) throw new Error("attachment file keys are 32 bytes");
  const padded = new Uint8Array(c.padme(data.length + 1));
  padded.set(data);
  padded[data.length] = 0x80;
  return c.sealRaw(fileKey, padded, c.aad("attachment-padded", salt, attachmentId), nonce);
}

const refused = (ref) =>
  new Nt2Error("tampered_attachment", `Attachment ${cleanText(ref.name ?? ref.id, 80)} was altered or swapped on the server; refusing it.`);

// -- finding references ---------------------------------------------------------------------------
function liveRow(itemId) {
  const v = vault.requireUnlocked();
  const row = v.rows.get(itemId);
  if (!row || row.deleted || isReserved(itemId)) throw new Nt2Error("no_item", "That item no longer exists (it was deleted, perhaps on another device).");
  return row;
}

function findRef(attachmentId) {
  const v = vault.requireUnlocked();
  for (const row of v.rows.values()) {
    if (row.deleted || isReserved(row.id)) continue;
    const ref = (vault.plaintextOf(row).attachments ?? []).find((a) => a.id === attachmentId);
    if (ref) return { row, ref };
  }
  throw new Nt2Error("no_attachment", "No item holds that attachment (it was removed, perhaps on another device).");
}

const sizeOf = (ref) => (Number.isSafeInteger(ref.size) && ref.size >= 0 ? ref.size : null);

// What the item editor shows: name and size of each attachment of an item.
export function listAttachments(itemId) {
  const row = liveRow(String(itemId));
  return (vault.plaintextOf(row).attachments ?? []).map((ref) => ({
    id: ref.id,
    name: cleanText(ref.name ?? "", MAX_NAME),
    size: sizeOf(ref),
  }));
}

// The item's plaintext with its attachment references replaced, as a local edit.
async function editRefs(row, change) {
  const v = vault.requireUnlocked();
  const plain = { ...vault.plaintextOf(row) };
  plain.attachments = change([...(plain.attachments ?? [])]);
  plain.updatedAt = Math.max(vault.now(), plain.updatedAt + 1);
  plain.replicaId = v.st.replicaId;
  delete plain.v;
  await vault.persist({ rows: [vault.localEdit(row.id, plain, row)] });
  vault.emitChange({ local: true, ids: [row.id] });
}

function requireSync() {
  const v = vault.requireUnlocked();
  if (!v.rec.syncEnabled) throw new Nt2Error("sync_off", "Attachments are kept on the sync server: enable sync to attach or open files.");
}

function cleanName(name) {
  // the CLI stores the file's own name (Path.name): no folders, no control characters
  const base = String(name ?? "").split(/[\\/]/).pop();
  const text = cleanText(base, MAX_NAME).trim();
  if (!text) throw new Nt2Error("bad_name", "The file needs a name.");
  return text;
}

// -- adding ---------------------------------------------------------------------------------------
// An interrupted upload leaves no reference behind: the reservation ends with a DELETE here
// (or with its URL, at most 15 minutes), and the server's lifecycle rule drops the pending
// object. Retrying the PUT is safe: a 412 says an earlier one landed, and commit verifies it.
export async function addAttachment(itemId, name, bytes) {
  requireSync();
  const id = String(itemId);
  liveRow(id);
  const fileName = cleanName(name);
  if (!(bytes instanceof Uint8Array)) throw new Nt2Error("bad_file", "The file's contents must be bytes.");
  await retryDeletes();
  const v = vault.requireUnlocked();
  const attachmentId = crypto.randomUUID();
  const fileKey = randomBytes(c.KEY_BYTES);
  const blob = sealAttachment(fileKey, v.keys.salt, attachmentId, bytes);
  const sha256 = b64url(await c.sha256(blob));
  try {
    const ticket = await call((a) => a.attachmentUpload(attachmentId, blob.length, sha256));
    if (!ticket || typeof ticket !== "object" || typeof ticket.url !== "string") throw new Nt2Error("server_lied", "The server's upload answer names no URL; nothing was attached.");
    await putBlob(ticket.url, ticket.headers, blob);
    const committed = await call((a) => a.attachmentCommit(attachmentId));
    if (committed && typeof committed === "object" && ((committed.sha256 !== undefined && committed.sha256 !== sha256) || (committed.size !== undefined && committed.size !== blob.length))) {
      throw new Nt2Error("server_lied", "The server committed another file than the one sent; nothing was attached.");
    }
  } catch (err) {
    await call((a) => a.attachmentDelete(attachmentId)).catch(() => {}); // end the reservation
    throw err;
  }
  let row;
  try {
    row = liveRow(id); // the item may have gone while the file uploaded
  } catch (err) {
    await call((a) => a.attachmentDelete(attachmentId)).catch(() => {});
    throw err;
  }
  const ref = { id: attachmentId, name: fileName, size: bytes.length, sha256, key: b64url(fileKey) };
  await editRefs(row, (refs) => [...refs, ref]);
  fileKey.fill(0);
  return attachmentId;
}

// -- opening --------------------------------------------------------------------------------------
// nt2sync/attachments.py open_blob: under the reference's own key, or (legacy) under the
// attachment subkey of the current or a retired data key. Altered or swapped → refused.
export function openBlob(ref, blob) {
  const v = vault.requireUnlocked();
  let data = null;
  if ("key" in ref) {
    let fileKey;
    try {
      fileKey = fromB64url(String(ref.key));
    } catch {
      throw refused(ref);
    }
    if (fileKey.length !== c.KEY_BYTES) throw refused(ref);
    try {
      data = c.decryptAttachment(v.keys, ref.id, blob, fileKey);
    } catch {
      throw refused(ref);
    }
  } else {
    for (const keys of [v.keys, ...(v.retired ?? [])]) {
      try {
        data = c.decryptAttachment({ ...keys, salt: v.keys.salt }, ref.id, blob);
        break;
      } catch {
        continue;
      }
    }
    if (data === null) throw refused(ref);
  }
  const size = sizeOf(ref);
  if (size !== null && data.length !== size) throw refused(ref);
  return data;
}

export async function getAttachment(attachmentId) {
  requireSync();
  const { ref } = findRef(String(attachmentId));
  const size = sizeOf(ref);
  if (size === null) throw refused(ref);
  const answer = await call((a) => a.attachmentDownload(ref.id));
  if (!answer || typeof answer !== "object" || typeof answer.url !== "string") throw new Nt2Error("server_lied", "The server's download answer names no URL.");
  // an honest envelope is exactly ENVELOPE_OVERHEAD + padme(size + 1) (legacy: + size)
  const blob = await getBlob(answer.url, ENVELOPE_OVERHEAD + c.padme(size + 1));
  if (typeof ref.sha256 === "string" && ref.sha256 && !equalText(b64url(await c.sha256(blob)), ref.sha256)) throw refused(ref);
  return openBlob(ref, blob);
}

// -- removing -------------------------------------------------------------------------------------
// The reference goes in a local edit; the blob is deleted on the server now, or (offline) by
// a later attachment call of this device: its id waits in the sealed device state.
export async function removeAttachment(attachmentId) {
  const id = String(attachmentId);
  const { row } = findRef(id);
  await editRefs(row, (refs) => refs.filter((a) => a.id !== id));
  const v = vault.requireUnlocked();
  if (!v.rec.syncEnabled) return;
  await vault.setState({ attachmentDeletes: [...new Set([...(v.st.attachmentDeletes ?? []), id])] });
  await retryDeletes();
}

// Deletions of blobs whose references were removed here (DELETE is idempotent on the server).
// Never throws: the removal itself is done; a blob the server still holds waits for the next try.
export async function retryDeletes() {
  const v = vault.requireUnlocked();
  const pending = v.st.attachmentDeletes ?? [];
  if (!pending.length || !v.rec.syncEnabled) return;
  const left = [];
  for (const id of pending) {
    try {
      await call((a) => a.attachmentDelete(id));
    } catch {
      left.push(id);
    }
  }
  await vault.setState({ attachmentDeletes: left });
}
