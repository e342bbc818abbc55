// /settings/vault: the Vault & sync overview and the auto-lock period.
import { field, h, messageLine } from "../dom.js";
import * as autolock from "../autolock.js";
import { card, settingsFrame } from "./shell.js";

const PAGES = [
  ["/settings/vault/premium", "NT² Premium", "Status, promo codes and the Lemon Squeezy checkout."],
  ["/settings/vault/sync", "Cloud sync", "Replicate the encrypted vault to your devices through the server."],
  ["/settings/vault/enrolledDevices", "Manage enrolled devices", "Rename or revoke the devices that sync this vault."],
  ["/settings/vault/recovery", "Recovery kit and backups", "The setup kit (QR code or file) and .nt2backup export and import."],
  ["/settings/vault/password", "Master password", "Change it (with re-key), or adopt one changed on another device."],
];

export default {
  title: "Vault & sync",
  async render(root, ctx) {
    const choice = field("Lock the vault after", { required: true }, { tag: "select", hint: "Counted from your last key press, click or touch in this tab." });
    for (const m of autolock.CHOICES) {
      choice.input.append(h("option", { value: String(m), selected: m === autolock.minutes() ? true : null }, `${m} minute${m === 1 ? "" : "s"} without activity`));
    }
    const status = messageLine();
    choice.input.addEventListener("change", () => {
      const m = Number(choice.input.value);
      autolock.setMinutes(m);
      status.show(`The vault now locks after ${m} minute${m === 1 ? "" : "s"} without activity.`);
    });
    root.append(
      settingsFrame(
        ctx.path,
        h("h1", {}, "Vault & sync"),
        card("Auto-lock", choice.row, status),
        card(
          "Settings",
          h(
            "ul",
            {},
            PAGES.map(([href, label, text]) => h("li", {}, h("a", { href, "data-link": true }, label), ": ", text)),
          ),
        ),
      ),
    );
  },
};
