// /setup: set up this (cold) device from a setup kit or from server + Key DID, plus the
// master password. The facade checks the bootstrap, the KDF floor, the keyDid and the kit's
// MAC before anything authenticated is sent; each refusal gets its own message here.
import * as nt2 from "../../nt2.js";
import { busy, field, h, progressBar, uid } from "../dom.js";
import { codeOf, messageOf, titleOf } from "../errors.js";

function originOf(url) {
  try {
    return new URL(url).origin;
  } catch {
    return "";
  }
}

export default {
  title: "Set up this device",
  async render(root, ctx) {
    root.append(h("h1", {}, "Set up this device"));
    if (ctx.state.exists) {
      root.append(
        h("p", {}, "This browser already holds a vault. Setting up another one here would replace it, so this page is closed."),
        h("p", {}, h("a", { href: "/items", "data-link": true }, "Go to your vault")),
      );
      return;
    }
    root.append(
      h("p", { class: "lead" }, "Join a vault you already sync from another device. The server sends the vault's salt and public keys; your master password stays here, where PBKDF2 derives the vault key."),
    );

    const methodName = uid("m");
    const radio = (value, label, checked) => {
      const id = uid("r");
      return h("div", { class: "check" }, h("input", { type: "radio", name: methodName, id, value, checked }), h("label", { for: id }, label));
    };
    const methods = h("fieldset", {}, h("legend", {}, "How do you want to find the vault?"), radio("kit", "With a setup kit (from Recovery kit on your other device)", true), radio("server", "With the server URL and Key DID", false));

    const kitText = field("Setup kit", { class: "kit-text", spellcheck: "false", autocomplete: "off" }, { tag: "textarea", hint: "Paste the kit's text, or choose its file below." });
    const kitFile = field("Setup kit file", { type: "file", accept: ".json,application/json,text/plain" });
    const kitBox = h("div", { class: "form" }, kitText.row, kitFile.row);
    const server = field("Server URL", { type: "url", autocomplete: "url", spellcheck: "false" });
    const keyDid = field("Key DID", { type: "text", autocomplete: "off", spellcheck: "false" }, { hint: "Starts with did:key: — shown on your other device's Cloud sync or kit." });
    const serverBox = h("div", { class: "form", hidden: true }, server.row, keyDid.row);
    const password = field("Master password", { type: "password", autocomplete: "current-password", required: true });
    const go = h("button", { type: "submit" }, "Set up this device");
    const progress = progressBar("Setup progress");
    const error = h("div", { role: "alert", "aria-live": "assertive" });
    const form = h("form", { class: "card", "aria-label": "Set up this device" }, methods, kitBox, serverBox, password.row, h("div", { class: "actions" }, go), progress, error);

    let pageApi = null;
    nt2.config().then((c) => {
      pageApi = c.api;
      if (!server.input.value) server.input.value = c.api;
    }, () => {});

    // The page's Content-Security-Policy lets it reach its own API only, so "cannot reach"
    // for another server is the policy, not the network: say what would work instead.
    function explain(err, target) {
      if (codeOf(err) !== "network" || !pageApi || !target || originOf(target) === originOf(pageApi)) return err;
      return { code: "bad_server_url", message: `This web client can reach only its own server, ${pageApi}: set up with that server, or use the nt2sync CLI for ${originOf(target) || target}.` };
    }

    const method = () => form.querySelector(`input[name="${methodName}"]:checked`).value;
    methods.addEventListener("change", () => {
      kitBox.hidden = method() !== "kit";
      serverBox.hidden = method() !== "server";
    });
    kitFile.input.addEventListener("change", async () => {
      const file = kitFile.input.files && kitFile.input.files[0];
      if (!file) return;
      if (file.size > 64 * 1024) {
        showError({ code: "kit_invalid", message: "That file is too large to be a setup kit: choose the kit's .json file." });
        return;
      }
      kitText.input.value = await file.text();
      error.replaceChildren();
    });

    function showError(err) {
      error.replaceChildren(h("div", { class: "error-box" }, h("h2", {}, titleOf(err)), h("p", {}, messageOf(err))));
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.replaceChildren();
      if (!password.input.value) {
        showError({ code: "missing", message: "Type the vault's master password." });
        password.input.focus();
        return;
      }
      await busy(go, async () => {
        const onProgress = (p) => progress.update(p);
        progress.update({ phase: "verify" });
        let target = null;
        try {
          if (method() === "kit") {
            if (!kitText.input.value.trim()) throw Object.assign(new Error("Paste the setup kit or choose its file."), { code: "kit_invalid" });
            const kit = await nt2.parseKit(kitText.input.value);
            target = kit.server;
            await nt2.joinFromKit(kit, password.input.value, onProgress);
          } else {
            if (!server.input.value.trim() || !keyDid.input.value.trim()) throw Object.assign(new Error("Fill in both the server URL and the Key DID."), { code: "missing" });
            target = server.input.value.trim();
            await nt2.joinFromServer(target, keyDid.input.value.trim(), password.input.value, onProgress);
          }
          password.input.value = "";
          progress.finish("Sync complete");
          if (!(await nt2.state()).unlocked) {
            // joined but left locked: open it with the same password the person just typed
            await ctx.navigate("/unlock", { replace: true });
            return;
          }
          await ctx.navigate("/items", { replace: true });
        } catch (caught) {
          const err = explain(caught, target);
          progress.reset();
          showError(err);
          // a kit that does not verify is most often a mistyped password: start there again
          if (codeOf(err) === "wrong_password" || codeOf(err) === "kit_altered") {
            password.input.select();
            password.input.focus();
          }
        }
      });
    });
    root.append(form, h("p", {}, "New to NT²? ", h("a", { href: "/unlock", "data-link": true }, "Create a vault"), " instead."));
  },
};
