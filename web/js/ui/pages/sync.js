// /settings/vault/sync: Cloud sync status, enable (register the existing salt, initial push),
// sync now, disable, and the live indicator (§10).
import * as nt2 from "../../nt2.js";
import { busy, bytes, confirmDialog, field, h, messageLine, progressBar, statusList, when } from "../dom.js";
import { messageOf } from "../errors.js";
import { liveText } from "../live.js";
import { card, settingsFrame } from "./shell.js";

const LIVE_HINT = {
  off: "Changes from other devices arrive at the next Sync now.",
  connecting: "Connecting to the server for live updates…",
  live: "Changes from your other devices appear here without reloading.",
  reconnecting: "The live connection dropped; reconnecting. Sync now still works.",
};

export default {
  title: "Cloud sync",
  async render(root, ctx) {
    const statusBox = h("div", {}, h("p", {}, "Reading the sync status…"));
    const live = h("p", { class: "live live-off", role: "status", "aria-live": "polite" });
    const liveHint = h("p", { class: "hint" });
    const actions = h("div", {});
    const outcome = messageLine();
    const progress = progressBar("Sync progress");

    function showLive(state) {
      live.className = `live live-${state}`;
      live.textContent = `Live updates: ${liveText(state)}`;
      liveHint.textContent = LIVE_HINT[state] || LIVE_HINT.off;
    }

    function showStatus(s) {
      const c = s.counts || {};
      statusBox.replaceChildren(
        statusList(
          [
            ["Cloud sync", s.enabled ? "Enabled on this device" : "Off on this device"],
            ["Server", s.server || "—"],
            ["Cloud registered", s.registered ? "Yes" : "No"],
            ["Last sync", when(s.lastSyncAt)],
            ["Remote items", s.registered ? String(c.items ?? 0) : "—"],
            ["Remote deletions", s.registered ? String(c.tombstones ?? 0) : "—"],
            ["Remote attachments", s.registered ? `${c.attachments ?? 0} (${bytes(c.attachmentBytes ?? 0)})` : "—"],
            ["Changes waiting to upload", String(s.pending ?? 0)],
          ],
          "Sync status",
        ),
      );
      showLive(s.live || "off");
    }

    async function load() {
      let s;
      try {
        s = await nt2.syncStatus();
      } catch (err) {
        statusBox.replaceChildren(h("p", { class: "message error", role: "alert" }, messageOf(err)));
        s = { enabled: ctx.state.syncEnabled };
      }
      if (s.counts) showStatus(s);
      drawActions(Boolean(s.enabled));
      return s;
    }

    function drawActions(enabled) {
      if (enabled) actions.replaceChildren(enabledActions());
      else actions.replaceChildren(enableForm());
    }

    function enableForm() {
      const server = field("Server URL", { type: "url", required: true, autocomplete: "url", spellcheck: "false" }, { hint: "The NT² sync server (from this site's configuration)." });
      nt2.config().then((c) => {
        if (!server.input.value && c && typeof c.api === "string") server.input.value = c.api;
      }, () => {});
      const go = h("button", { type: "submit" }, "Enable cloud sync");
      const form = h(
        "form",
        { "aria-label": "Enable cloud sync" },
        h("p", {}, "NT² signs in with your Vault Key DID, registers your vault with its existing salt (never a new one), then uploads an encrypted copy of every item. Your master password never leaves this device."),
        server.row,
        h("div", { class: "actions" }, go),
      );
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        outcome.clear();
        progress.update({ phase: "authenticate" });
        await busy(go, async () => {
          try {
            await nt2.enableSync(server.input.value.trim(), (p) => progress.update(p));
            progress.finish("Sync complete");
            outcome.show("Cloud sync is on: this device pushes and pulls its encrypted changes.");
            ctx.state.syncEnabled = true;
            safe(() => nt2.startLive());
            await load();
          } catch (err) {
            progress.reset();
            outcome.show(messageOf(err), "error");
          }
        });
      });
      return form;
    }

    function enabledActions() {
      const now = h("button", { type: "button" }, "Sync now");
      const off = h("button", { type: "button", class: "secondary" }, "Disable cloud sync");
      now.addEventListener("click", () =>
        busy(now, async () => {
          outcome.clear();
          progress.update({ phase: "pull" });
          try {
            const r = await nt2.syncNow((p) => progress.update(p));
            progress.finish("Sync complete");
            const conflicts = r && r.conflicts ? `, ${r.conflicts} conflict${r.conflicts === 1 ? "" : "s"} (both texts kept)` : "";
            outcome.show(`Sync complete: ${r ? r.pushed : 0} uploaded, ${r ? r.pulled : 0} downloaded${conflicts}.`);
            await load();
          } catch (err) {
            progress.reset();
            outcome.show(messageOf(err), "error");
          }
        }),
      );
      off.addEventListener("click", async () => {
        const sure = await confirmDialog({
          title: "Disable cloud sync on this device?",
          body: [
            "This device stops pushing and pulling; your other devices keep syncing.",
            "The server keeps the encrypted copy (ciphertext) of your vault and its attachments. Disabling does not delete them: that goes through support.",
          ],
          confirm: "Disable cloud sync",
          danger: true,
        });
        if (!sure) return;
        try {
          safe(() => nt2.stopLive());
          await nt2.disableSync();
          ctx.state.syncEnabled = false;
          progress.reset();
          outcome.show("Cloud sync is off on this device. The server still keeps the ciphertext.");
          await load();
        } catch (err) {
          outcome.show(messageOf(err), "error");
        }
      });
      return h(
        "div",
        {},
        h("div", { class: "actions" }, now, off),
        h("p", { class: "hint" }, "Use Sync now after large imports or when another device made changes. Disabling stops sync on this device only: the server keeps the ciphertext."),
      );
    }

    ctx.hooks.onLiveState = showLive;
    // A pull (live or manual) changed the vault: the counts and last sync time moved.
    ctx.hooks.onChange = () => load();

    root.append(
      settingsFrame(
        ctx.path,
        h("h1", {}, "Cloud sync"),
        h("p", { class: "lead" }, "Replica batches only: ciphertext on the server, key derivation stays on this device."),
        card("Status", statusBox, live, liveHint),
        card("Sync", actions, progress, outcome),
        card("Devices", h("p", {}, h("a", { href: "/settings/vault/enrolledDevices", "data-link": true }, "Manage enrolled devices"), ": rename or revoke the devices that sync this vault.")),
      ),
    );
    showLive("off");
    await load();
  },
};

function safe(fn) {
  try {
    fn();
  } catch (err) {
    console.error(err);
  }
}
