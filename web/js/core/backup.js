// .nt2backup files and the setup/recovery kit, byte-compatible with nt2sync/backup.py: the
// file is Python's json.dumps of the header (same key order, same spacing) with the payload
// sealed under the local-secret key and a name binding the header's canonical JSON.
import * as c from "./crypto.js";
import * as merge from "./merge.js";
import { Nt2Error } from "./errors.js";
import { canonicalJson, fromUtf8, hex, pythonJson, utf8 } from "./bytes.js";
import { qrcode } from "../../vendor/qrcode-generator.js";
import { isReserved } from "./reserved.js";
import * as vault from "./vault.js";

const BACKUP_VERSION = 2;
const HEADER_FIELDS = ["format", "formatVersion", "backupVersion", "kdf", "saltHex", "keyDid", "verifier", "createdAt"];

export async function payloadName(doc) {
  if (doc.backupVersion === undefined || doc.backupVersion === null) return "backup";
  const header = {};
  for (const name of HEADER_FIELDS) header[name] = doc[name] ?? null;
  return "backup/" + hex(await c.sha256(utf8(canonicalJson(header))));
}

// Every live item (as its item envelope) and no attachment files (the web client keeps
// references only); the same order as the CLI's (edit time, then id).
export async function exportBackup() {
  const v = vault.requireUnlocked();
  const rows = [...v.rows.values()].filter((r) => !r.deleted && !isReserved(r.id));
  rows.sort((a, b) => a.updatedAt - b.updatedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const items = rows.map((r) => ({ id: r.id, ciphertext: r.ciphertext, revision: r.revision }));
  const payload = utf8(pythonJson({ items, attachments: [] }));
  const doc = {
    format: "nt2backup",
    formatVersion: c.FORMAT_VERSION,
    backupVersion: BACKUP_VERSION,
    kdf: v.rec.kdf,
    saltHex: v.rec.saltHex,
    keyDid: v.rec.keyDid,
    verifier: v.rec.verifier,
    createdAt: vault.now(),
  };
  doc.payload = c.sealLocal(v.keys, await payloadName(doc), payload);
  return utf8(pythonJson(doc));
}

// Merge a backup of this same vault by id, never over a newer local edit; an item deleted
// here stays deleted unless restoreDeleted. It opens with this vault's data key (so it needs
// no password, also after a password change); a backup of another vault does not open.
export function importBackup(bytes, { restoreDeleted = false } = {}) {
  return vault.exclusive(async () => {
    const v = vault.requireUnlocked();
    let doc;
    try {
      doc = JSON.parse(typeof bytes === "string" ? bytes : fromUtf8(bytes));
    } catch {
      throw new Nt2Error("backup_invalid", "This is not a readable .nt2backup file.");
    }
    if (!doc || typeof doc !== "object" || doc.format !== "nt2backup") throw new Nt2Error("backup_invalid", "This is not a .nt2backup file.");
    if (doc.formatVersion !== c.FORMAT_VERSION) throw new Nt2Error("backup_invalid", "This backup has a format this app does not know.");
    if (doc.saltHex !== v.rec.saltHex) throw new Nt2Error("backup_other_vault", "This backup belongs to another vault; nothing was imported.");
    let payload;
    try {
      payload = JSON.parse(fromUtf8(c.openLocal(v.keys, await payloadName(doc), String(doc.payload ?? ""))));
    } catch {
      throw new Nt2Error("backup_altered", "This backup was altered (its header does not belong to its contents) or was made under another data key; nothing was imported.");
    }
    const entries = Array.isArray(payload?.items) ? payload.items : [];
    const rows = [];
    let imported = 0;
    let kept = 0;
    for (const entry of entries) {
      if (!entry || typeof entry.id !== "string") throw new Nt2Error("backup_altered", "An item in the backup is damaged; nothing was imported.");
      if (isReserved(entry.id)) continue; // manifests are never restored from a backup
      let theirs;
      try {
        theirs = c.decryptItem(v.keys, entry.id, entry.ciphertext);
      } catch {
        throw new Nt2Error("backup_altered", `Item ${entry.id.slice(0, 64)} in the backup is damaged; nothing was imported.`);
      }
      const local = v.rows.get(entry.id) ?? null;
      if (local && local.deleted && !restoreDeleted) {
        kept++; // deleted here after the backup was made: the deletion stands
        continue;
      }
      if (local && !local.deleted) {
        const mine = vault.plaintextOf(local);
        if ((await merge.sameContent(mine, theirs)) || mine.updatedAt >= theirs.updatedAt) {
          kept++;
          continue;
        }
      }
      theirs.replicaId = v.st.replicaId;
      rows.push(vault.localEdit(entry.id, theirs, local));
      imported++;
    }
    await vault.persist({ rows });
    if (rows.length) vault.emitChange({ local: true, ids: rows.map((r) => r.id) });
    return { imported, kept };
  });
}

// The kit `nt2sync kit` prints: {server, keyDid, kdf, saltHex, mac}, as Python's json.dumps.
export async function exportKit() {
  const v = vault.requireUnlocked();
  const kit = { server: v.rec.serverUrl, keyDid: v.rec.keyDid, kdf: v.rec.kdf, saltHex: v.rec.saltHex };
  kit.mac = await c.kitMac(v.seed, kit);
  const text = pythonJson(kit);
  return { kit, text, svg: qrSvg(text) };
}

// The kit as a QR code (error correction M, as the CLI's segno), an SVG document.
export function qrSvg(text) {
  const qr = qrcode(0, "M");
  qr.addData(text, "Byte");
  qr.make();
  const n = qr.getModuleCount();
  const quiet = 4;
  let path = "";
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) if (qr.isDark(y, x)) path += `M${x + quiet} ${y + quiet}h1v1h-1z`;
  const size = n + 2 * quiet;
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${size} ${size}" shape-rendering="crispEdges" role="img" aria-label="Setup kit QR code"><rect width="${size}" height="${size}" fill="#fff"/><path d="${path}" fill="#000"/></svg>`;
}
