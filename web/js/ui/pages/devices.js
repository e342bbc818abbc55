// /settings/vault/enrolledDevices: every device of the vault; rename, revoke (with the
// proof, in the facade), then the password change that fully cuts a revoked device off.
import * as nt2 from "../../nt2.js";
import { busy, confirmDialog, field, h, messageLine, when } from "../dom.js";
import { messageOf } from "../errors.js";
import { card, settingsFrame } from "./shell.js";

export default {
  title: "Enrolled devices",
  async render(root, ctx) {
    const status = messageLine();
    const list = h("ul", { class: "items", "aria-labelledby": "devices-title" });
    const after = h("div", {});

    function nameOf(d) {
      return d.name || "Unnamed device";
    }

    function row(d) {
      const name = nameOf(d);
      const title = h(
        "p",
        { class: "item-title" },
        name,
        d.current ? h("span", { class: "badge current" }, "This device") : null,
        d.revoked ? h("span", { class: "badge revoked" }, "Revoked") : null,
      );
      const meta = h("p", { class: "item-meta" }, `Last seen ${when(d.lastSeenAt)} · enrolled ${when(d.enrolledAt, "—")}`);
      const main = h("div", { class: "item-main" }, title, meta);
      const li = h("li", { class: "item", "data-device": d.deviceId }, main);
      if (d.revoked) return li;
      const rename = h("button", { type: "button", class: "secondary", "aria-label": `Rename ${name}`, "data-action": "rename" }, "Rename");
      const revoke = h("button", { type: "button", class: "danger", "aria-label": `Revoke ${name}`, "data-action": "revoke" }, "Revoke");
      const buttons = h("div", { class: "actions" }, rename, revoke);
      li.append(buttons);
      rename.addEventListener("click", () => {
        const input = field(`New name for ${name}`, { type: "text", required: true, maxlength: "64", value: d.name || "", autocomplete: "off" }, { hint: "1 to 64 characters." });
        const save = h("button", { type: "submit" }, "Save name");
        const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
        const form = h("form", { "aria-label": `Rename ${name}` }, input.row, h("div", { class: "actions" }, save, cancel));
        buttons.replaceWith(form);
        input.input.focus();
        input.input.select();
        cancel.addEventListener("click", () => {
          form.replaceWith(buttons);
          rename.focus();
          if (stale) load();
        });
        form.addEventListener("submit", async (event) => {
          event.preventDefault();
          const value = input.input.value.trim();
          if (!value || value.length > 64) {
            status.show("A device name has 1 to 64 characters.", "error");
            input.input.focus();
            return;
          }
          await busy(save, async () => {
            try {
              await nt2.renameDevice(d.deviceId, value);
              status.show(`Renamed to “${value}”.`);
              await load({ device: d.deviceId, action: "rename" });
            } catch (err) {
              status.show(messageOf(err), "error");
            }
          });
        });
      });
      revoke.addEventListener("click", async () => {
        const sure = await confirmDialog({
          title: `Revoke “${name}”?`,
          body: [
            d.current ? "This is the device you are using: it stops syncing at once and can never sync again." : "It stops syncing at once and can never open a session again.",
            "Whoever knows the master password can still enrol another device until you change it.",
          ],
          confirm: "Revoke device",
          danger: true,
        });
        if (!sure) return;
        try {
          await nt2.revokeDevice(d.deviceId);
          status.show(`Revoked “${name}”.`);
          const next = offerPasswordChange(name);
          await load();
          next.focus(); // the revoked row has no buttons left: on to what finishes the job
        } catch (err) {
          status.show(messageOf(err), "error");
        }
      });
      return li;
    }

    function offerPasswordChange(name) {
      const link = h("a", { href: "/settings/vault/password?rekey=1", "data-link": true, class: "button" }, "Change the master password now");
      after.replaceChildren(
        h(
          "div",
          { class: "card warning", role: "region", "aria-label": "Finish cutting the device off" },
          h("h2", {}, "Change the master password too"),
          h("p", {}, `“${name}” can no longer sync, but anyone who knows the master password can still derive the vault key. A password change with re-key gives the vault a new key, so the old password opens nothing.`),
          link,
        ),
      );
      return link;
    }

    // A redrawn list keeps the keyboard's place: the same button of the same device (or that
    // device's first one, or the list's heading), never a focus dropped to the page's body.
    let stale = false;
    async function load(focusOn = null) {
      stale = false;
      let keep = focusOn;
      try {
        const devices = await nt2.listDevices();
        // where the focus is now, once the answer is in (the person may have moved on)
        const active = document.activeElement;
        const place = list.contains(active) ? active.closest("li[data-device]") : null;
        if (!keep && place) keep = { device: place.dataset.device, action: active.dataset.action };
        list.replaceChildren(...(devices.length ? devices.map(row) : [h("li", { class: "empty" }, "No device is enrolled yet: enable cloud sync first.")]));
      } catch (err) {
        list.replaceChildren();
        status.show(messageOf(err), "error");
      }
      if (!keep) return;
      const again = [...list.querySelectorAll("li[data-device]")].find((li) => li.dataset.device === keep.device);
      const target = (again && (again.querySelector(`[data-action="${keep.action}"]`) || again.querySelector("button"))) || devicesHeading();
      target.focus();
    }

    function devicesHeading() {
      const heading = document.getElementById("card-devices");
      heading.tabIndex = -1;
      return heading;
    }

    // Another device renamed, enrolled or revoked one: the live connection says so. A rename
    // being typed is not thrown away: the list is redrawn once that form closes.
    ctx.hooks.onDevices = () => {
      if (list.querySelector("form")) stale = true;
      else load();
    };

    root.append(
      settingsFrame(
        ctx.path,
        h("h1", {}, "Enrolled devices"),
        h("p", { class: "lead" }, "Every device that syncs this vault. Rename or revoke replicas that should lose access; revoking may require a password change to fully invalidate them."),
        status,
        after,
        card("Devices", list),
      ),
    );
    // the card's own heading labels the list
    list.setAttribute("aria-labelledby", "card-devices");
    await load();
  },
};
