// The Settings → Vault & sync frame: a sub-navigation beside (on phones: above) the page.
import { h } from "../dom.js";

const SECTIONS = [
  ["/settings/vault", "Vault & sync"],
  ["/settings/vault/premium", "NT² Premium"],
  ["/settings/vault/sync", "Cloud sync"],
  ["/settings/vault/enrolledDevices", "Enrolled devices"],
  ["/settings/vault/recovery", "Recovery & backup"],
  ["/settings/vault/password", "Master password"],
];

/** The page's content inside the settings frame. */
export function settingsFrame(path, ...content) {
  const links = SECTIONS.map(([href, label]) =>
    h("li", {}, h("a", { href, "data-link": true, "aria-current": href === path ? "page" : null }, label)),
  );
  return h(
    "div",
    { class: "settings" },
    h("nav", { class: "settings-nav", "aria-label": "Settings" }, h("p", { class: "nav-title", "aria-hidden": "true" }, "Settings"), h("ul", {}, links)),
    h("div", { class: "settings-page" }, h("p", { class: "breadcrumb" }, "Settings → Vault & sync"), ...content),
  );
}

/** A panel with a heading of its own. */
export function card(title, ...content) {
  const id = `card-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), ...content);
}
