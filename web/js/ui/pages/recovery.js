// /settings/vault/recovery: the setup kit (QR code and file) and .nt2backup export/import.
import * as nt2 from "../../nt2.js";
import { busy, checkbox, download, field, h, messageLine } from "../dom.js";
import { messageOf } from "../errors.js";
import { qrSvg } from "../qr.js";
import { card, settingsFrame } from "./shell.js";

const MAX_BACKUP = 512 * 1024 * 1024;

export default {
  title: "Recovery kit and backups",
  async render(root, ctx) {
    // Recovery kit
    const kitStatus = messageLine();
    const kitBox = h("div", { class: "form" });
    const showKit = h("button", { type: "button" }, "Show recovery kit");
    showKit.addEventListener("click", () =>
      busy(showKit, async () => {
        kitStatus.clear();
        try {
          const { text } = await nt2.exportKit();
          const save = h("button", { type: "button", class: "secondary" }, "Download recovery kit");
          save.addEventListener("click", () => {
            download("nt2-setup-kit.json", text, "application/json");
            kitStatus.show("Recovery kit downloaded as nt2-setup-kit.json.");
          });
          const textArea = field("Kit text", { class: "kit-text", readonly: true, spellcheck: "false" }, { tag: "textarea", hint: "Scan the QR code or paste this text into Set up this device on the new device." });
          textArea.input.value = text;
          kitBox.replaceChildren(qrSvg(text, "Recovery kit QR code"), textArea.row, h("div", { class: "actions" }, save));
          kitStatus.show("Recovery kit ready. Keep it like a recovery code: it holds no secret, but with a guessed password it opens the vault.");
        } catch (err) {
          kitStatus.show(messageOf(err), "error");
        }
      }),
    );

    // Backup export
    const backupStatus = messageLine();
    const exportButton = h("button", { type: "button" }, "Download backup (.nt2backup)");
    exportButton.addEventListener("click", () =>
      busy(exportButton, async () => {
        try {
          const bytes = await nt2.exportBackup();
          const name = `nt2-${new Date().toISOString().slice(0, 10)}.nt2backup`;
          download(name, bytes, "application/octet-stream");
          backupStatus.show(`Backup downloaded as ${name} (${bytes.length} bytes, encrypted).`);
        } catch (err) {
          backupStatus.show(messageOf(err), "error");
        }
      }),
    );

    // Backup import
    const file = field("Backup file", { type: "file", accept: ".nt2backup,application/octet-stream", required: true });
    const restore = checkbox("Restore deleted items", {}, "Bring back items that the backup holds but this vault has deleted since.");
    const importButton = h("button", { type: "submit" }, "Import backup");
    const importStatus = messageLine();
    const importForm = h("form", { "aria-label": "Import a backup" }, file.row, restore.row, h("div", { class: "actions" }, importButton), importStatus);
    importForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const chosen = file.input.files && file.input.files[0];
      if (!chosen) {
        importStatus.show("Choose a .nt2backup file first.", "error");
        file.input.focus();
        return;
      }
      if (chosen.size > MAX_BACKUP) {
        importStatus.show("That file is larger than any backup this client imports (512 MiB).", "error");
        return;
      }
      await busy(importButton, async () => {
        try {
          const bytes = new Uint8Array(await chosen.arrayBuffer());
          const r = await nt2.importBackup(bytes, { restoreDeleted: restore.input.checked });
          importStatus.show(`Backup imported: ${r.imported} item${r.imported === 1 ? "" : "s"} added or updated, ${r.kept} kept as they were.`);
        } catch (err) {
          importStatus.show(messageOf(err), "error");
        }
      });
    });

    root.append(
      settingsFrame(
        ctx.path,
        h("h1", {}, "Recovery kit and backups"),
        card("Recovery kit", h("p", {}, "The setup kit lets a new device join this vault with your master password. After a master password change, export a new one."), h("div", { class: "actions" }, showKit), kitBox, kitStatus),
        card("Export a backup", h("p", {}, "An encrypted .nt2backup file of every item, readable by the nt2sync CLI and other NT² clients with your master password."), h("div", { class: "actions" }, exportButton), backupStatus),
        card("Import a backup", importForm),
      ),
    );
  },
};
