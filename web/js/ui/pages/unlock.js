// /unlock: create a vault on a fresh browser, or unlock the one it holds.
import * as nt2 from "../../nt2.js";
import { busy, field, h, messageLine } from "../dom.js";
import { codeOf, messageOf } from "../errors.js";

const MIN_LENGTH = 8;

export default {
  title: "Unlock",
  async render(root, ctx) {
    if (ctx.state.exists) renderUnlock(root, ctx);
    else renderCreate(root, ctx);
  },
};

function renderUnlock(root, ctx) {
  const pw = field("Master password", { type: "password", autocomplete: "current-password", required: true });
  const status = messageLine();
  for (const text of ctx.flashes) status.show(text, "ok");
  const submit = h("button", { type: "submit" }, "Unlock");
  const form = h("form", { class: "card narrow", "aria-label": "Unlock" }, pw.row, h("div", { class: "actions" }, submit), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.clear();
    await busy(submit, async () => {
      try {
        await nt2.unlock(pw.input.value);
        pw.input.value = "";
        const next = ctx.params.get("next");
        await ctx.navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/items", { replace: true });
      } catch (err) {
        status.show(codeOf(err) === "wrong_password" ? "Wrong master password. Check it and try again; nothing was sent to any server." : messageOf(err), "error");
        pw.input.select();
        pw.input.focus();
      }
    });
  });
  root.append(
    h("h1", {}, "Unlock your vault"),
    h("p", { class: "lead" }, "Your master password never leaves this device: it derives the key that decrypts your vault here."),
    form,
  );
}

function renderCreate(root, ctx) {
  const pw = field("Master password", { type: "password", autocomplete: "new-password", required: true, minlength: String(MIN_LENGTH) }, { hint: `At least ${MIN_LENGTH} characters. Nobody can reset it for you: write it down somewhere safe.` });
  const again = field("Confirm master password", { type: "password", autocomplete: "new-password", required: true });
  const status = messageLine();
  for (const text of ctx.flashes) status.show(text, "ok");
  const submit = h("button", { type: "submit" }, "Create vault");
  const form = h("form", { class: "card narrow", "aria-label": "Create a vault" }, pw.row, again.row, h("div", { class: "actions" }, submit), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.clear();
    if (pw.input.value.length < MIN_LENGTH) {
      status.show(`The master password needs at least ${MIN_LENGTH} characters.`, "error");
      pw.input.focus();
      return;
    }
    if (pw.input.value !== again.input.value) {
      status.show("The two passwords differ: type the same master password twice.", "error");
      again.input.focus();
      return;
    }
    await busy(submit, async () => {
      status.show("Creating your vault (deriving the key takes a moment)…", "ok");
      try {
        await nt2.createVault(pw.input.value);
        if (!(await nt2.state()).unlocked) await nt2.unlock(pw.input.value);
        pw.input.value = "";
        again.input.value = "";
        await ctx.navigate("/items", { replace: true });
      } catch (err) {
        status.show(messageOf(err), "error");
      }
    });
  });
  root.append(
    h("h1", {}, "Create a vault"),
    h("p", { class: "lead" }, "Your vault is encrypted in this browser with a key derived from your master password. The password never leaves this device."),
    form,
    h(
      "p",
      {},
      "Already have a vault on another device? ",
      h("a", { href: "/setup", "data-link": true }, "Set up this device"),
      " from its setup kit or its server and Key DID.",
    ),
  );
}
