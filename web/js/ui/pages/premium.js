// /settings/vault/premium: NT² Premium status (§9), promo codes, the Lemon Squeezy checkout.
import * as nt2 from "../../nt2.js";
import { busy, field, h, messageLine, statusList, when } from "../dom.js";
import { codeOf, messageOf } from "../errors.js";
import { card, settingsFrame } from "./shell.js";

const SOURCES = { subscription: "Subscription (Lemon Squeezy)", promo: "Promo code", dev: "Development server" };

/** The status rows of a §9 premium object. */
export function premiumRows(p) {
  if (p.source === "dev") {
    return [
      ["Plan", "Free (dev: sync open to all)"],
      ["Premium required", "No (this server runs with Premium off)"],
    ];
  }
  return [
    ["Plan", p.active ? "NT² Premium: active" : "Free"],
    ["Premium required", p.required ? "Yes, to register, push and upload attachments" : "No"],
    ["Source", p.source ? SOURCES[p.source] || String(p.source) : "None yet"],
    ["Expires", p.active ? when(p.expiresAt, "Does not expire") : "—"],
  ];
}

// The server answers 503 with an hour's Retry-After when no checkout is configured: that is
// a fact about the server, not a busy moment, so "try again in a minute" would mislead.
function checkoutMessage(err) {
  if (codeOf(err) === "unavailable" && err.retryAfter >= 600) return "This server has no Lemon Squeezy checkout set up: ask its operator, or redeem a promo code above.";
  return messageOf(err);
}

export default {
  title: "NT² Premium",
  async render(root, ctx) {
    const statusBox = h("div", { "aria-live": "polite" }, h("p", {}, "Reading your Premium status…"));
    const code = field("Promo code", { type: "text", autocomplete: "off", required: true, maxlength: "128", spellcheck: "false" });
    const redeem = h("button", { type: "submit" }, "Redeem");
    const redeemStatus = messageLine();
    const redeemForm = h("form", { "aria-label": "Redeem a promo code" }, code.row, h("div", { class: "actions" }, redeem), redeemStatus);
    const checkout = h("button", { type: "button" }, "Subscribe with Lemon Squeezy");
    const checkoutStatus = messageLine();
    const checkoutLinkBox = h("p", {});

    function show(p) {
      statusBox.replaceChildren(statusList(premiumRows(p), "Premium status"));
      // `required` is the server's word: a server with Premium off needs none, active or not.
      const needed = p.source !== "dev" && p.required && !p.active;
      statusBox.append(h("p", { class: "hint" }, p.source === "dev" ? "Development servers open sync to everyone: production requires Premium." : needed ? "This server requires Premium before cloud sync can be enabled: redeem a promo code or subscribe below." : "Cloud sync is available to this vault."));
    }

    async function load() {
      try {
        show(await nt2.premiumStatus());
      } catch (err) {
        statusBox.replaceChildren(h("p", { class: "message error", role: "alert" }, messageOf(err)));
      }
    }

    redeemForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const value = code.input.value.trim();
      if (!value) {
        redeemStatus.show("Type the promo code first.", "error");
        code.input.focus();
        return;
      }
      await busy(redeem, async () => {
        try {
          const p = await nt2.redeemPromo(value);
          code.input.value = "";
          if (p && typeof p === "object" && "active" in p) show(p);
          else await load();
          redeemStatus.show(p && p.expiresAt ? `Promo code redeemed: Premium is active until ${when(p.expiresAt)}.` : "Promo code redeemed.");
        } catch (err) {
          redeemStatus.show(messageOf(err), "error");
        }
      });
    });

    checkout.addEventListener("click", () =>
      busy(checkout, async () => {
        checkoutStatus.clear();
        checkoutLinkBox.replaceChildren();
        try {
          const url = await nt2.checkoutUrl();
          // The facade refuses anything but https; checked again here because a link is what a person clicks.
          if (typeof url !== "string" || !url.startsWith("https://")) throw Object.assign(new Error("The checkout link is not an https link, so it is not shown."), { code: "insecure_checkout" });
          const link = h("a", { href: url, target: "_blank", rel: "noopener noreferrer", class: "button" }, "Open the Lemon Squeezy checkout");
          checkoutLinkBox.replaceChildren(link);
          checkoutStatus.show("Checkout link ready: it opens Lemon Squeezy in a new tab. Come back here and reload the status once paid.");
          link.focus();
        } catch (err) {
          checkoutStatus.show(checkoutMessage(err), "error");
        }
      }),
    );

    root.append(
      settingsFrame(
        ctx.path,
        h("h1", {}, "NT² Premium"),
        card("Status", statusBox, h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", onclick: (e) => busy(e.currentTarget, load) }, "Refresh status"))),
        card("Redeem a promo code", redeemForm),
        card(
          "Subscribe",
          h("p", {}, "The checkout is tied to your Vault Key DID, so the subscription applies to this vault on every device."),
          h("div", { class: "actions" }, checkout),
          checkoutLinkBox,
          checkoutStatus,
        ),
      ),
    );
    await load();
  },
};
