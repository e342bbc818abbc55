// /settings/vault/password: change the master password (re-key by default), or adopt a
// password changed on another device.
import * as nt2 from "../../nt2.js";
import { busy, checkbox, field, h, messageLine } from "../dom.js";
import { codeOf, messageOf } from "../errors.js";
import { card, settingsFrame } from "./shell.js";

const MIN_LENGTH = 8;

export default {
  title: "Master password",
  async render(root, ctx) {
    const current = field("Current master password", { type: "password", autocomplete: "current-password", required: true });
    const next = field("New master password", { type: "password", autocomplete: "new-password", required: true, minlength: String(MIN_LENGTH) }, { hint: `At least ${MIN_LENGTH} characters.` });
    const again = field("Confirm new master password", { type: "password", autocomplete: "new-password", required: true });
    const rekey = checkbox("Re-key the vault (recommended)", { checked: true }, "Also gives the vault a new data key and re-encrypts every item under it, so a revoked device or anyone with the old password can read nothing written from now on. Other devices adopt the new password.");
    const change = h("button", { type: "submit" }, "Change master password");
    const changeStatus = messageLine();
    const after = h("div", {});
    const changeForm = h("form", { "aria-label": "Change the master password", novalidate: true }, current.row, next.row, again.row, rekey.row, h("div", { class: "actions" }, change), changeStatus, after);
    changeForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      changeStatus.clear();
      after.replaceChildren();
      // the form is novalidate: these sentences (in the live region) replace the browser's bubbles
      if (next.input.value.length < MIN_LENGTH) {
        changeStatus.show(`The new master password needs at least ${MIN_LENGTH} characters.`, "error");
        next.input.focus();
        return;
      }
      if (next.input.value !== again.input.value) {
        changeStatus.show("The two new passwords differ: type the same one twice.", "error");
        again.input.focus();
        return;
      }
      await busy(change, async () => {
        changeStatus.show("Changing the master password…");
        try {
          await nt2.changePassword(current.input.value, next.input.value, { rekey: rekey.input.checked });
          for (const f of [current, next, again]) f.input.value = "";
          changeStatus.show(rekey.input.checked ? "Master password changed and the vault re-keyed." : "Master password changed.");
          after.replaceChildren(
            h("p", {}, "Your other devices ask for the new password at their next sync. ", h("a", { href: "/settings/vault/recovery", "data-link": true }, "Export a new recovery kit"), " now: the old one no longer matches."),
          );
        } catch (err) {
          changeStatus.show(codeOf(err) === "wrong_password" ? "The current master password is wrong; nothing was changed." : messageOf(err), "error");
          if (codeOf(err) === "wrong_password") current.input.focus();
        }
      });
    });

    const adopted = field("New master password", { type: "password", autocomplete: "current-password", required: true });
    const adopt = h("button", { type: "submit" }, "Use the new password");
    const adoptStatus = messageLine();
    const adoptForm = h("form", { "aria-label": "Adopt a password changed elsewhere" }, h("p", {}, "Changed the master password on another device? Type the new one here: this device checks it against the server's parameters and switches to it. If the vault was re-keyed there, what this device holds (unsynced edits too) is re-encrypted under the new key."), adopted.row, h("div", { class: "actions" }, adopt), adoptStatus);
    adoptForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      adoptStatus.clear();
      await busy(adopt, async () => {
        try {
          const done = await nt2.adoptPassword(adopted.input.value);
          adopted.input.value = "";
          const said = done.rekeyed ? "This device now uses the new master password and the vault's new key; what it held was re-encrypted and synced." : "This device now uses the new master password.";
          adoptStatus.show([said, ...done.notices].join(" "));
        } catch (err) {
          adoptStatus.show(codeOf(err) === "wrong_password" ? "That is not the new master password; nothing was changed." : messageOf(err), "error");
        }
      });
    });

    const intro = ctx.params.get("rekey") ? h("p", { class: "warning" }, "You revoked a device: change the master password with re-key so the old password opens nothing.") : null;
    root.append(settingsFrame(ctx.path, h("h1", {}, "Master password"), intro, card("Change the master password", changeForm), card("Adopt a password changed elsewhere", adoptForm)));
  },
};
