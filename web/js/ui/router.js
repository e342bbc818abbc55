// A small History API router: one render function per path, a guard that sends a locked or
// missing vault to /unlock, and focus moved to the new page's heading (so screen readers and
// keyboard users start at the top of what changed).
import * as nt2 from "../nt2.js";
import { h } from "./dom.js";
import { messageOf } from "./errors.js";

const routes = new Map();
// Reachable without an unlocked vault.
const OPEN = new Set(["/unlock", "/setup"]);
let main = null;
let renders = 0;
let shown = null; // the path and query of the page on screen
let chrome = () => {};
const flashes = [];

/** The page shown at `path`: {title, render(root, ctx)}. */
export function route(path, page) {
  routes.set(path, page);
}

/** A message for the next page to show (e.g. "Vault locked."). */
export function flash(text) {
  flashes.push(text);
}

/** Go to `path` (a same-origin path, possibly with ?query). */
export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  return render();
}

/** The hooks of the page on screen: {onChange, onLiveState, onDevices}. */
export let hooks = {};

/** Start routing into `mainEl`; `onChrome(state, path)` updates the header. */
export function start(mainEl, onChrome) {
  main = mainEl;
  chrome = onChrome;
  // A fragment link (the skip link, #main typed in the address bar) fires popstate too: the
  // page did not change, so re-rendering it would only throw away what was typed into it.
  window.addEventListener("popstate", () => {
    if (location.pathname + location.search !== shown) render();
  });
  document.addEventListener("click", (event) => {
    const a = event.target instanceof Element ? event.target.closest("a[data-link]") : null;
    if (!a || event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    if (a.origin !== location.origin) return;
    event.preventDefault();
    navigate(a.pathname + a.search);
  });
  return render();
}

function normalise(pathname) {
  const trimmed = pathname.replace(/\/+$/, "");
  return trimmed === "" ? "/" : trimmed;
}

async function render() {
  renders += 1;
  const mine = renders;
  const path = normalise(location.pathname);
  const params = new URLSearchParams(location.search);
  let state;
  try {
    state = await nt2.state();
  } catch (err) {
    showFatal(messageOf(err));
    return;
  }
  if (mine !== renders) return;
  if (path === "/") return navigate(state.unlocked ? "/items" : "/unlock", { replace: true });
  if (!state.unlocked && !OPEN.has(path)) {
    return navigate(`/unlock?next=${encodeURIComponent(path)}`, { replace: true });
  }
  if (state.unlocked && path === "/unlock") {
    const next = params.get("next");
    return navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/items", { replace: true });
  }
  const page = routes.get(path) || notFound;
  shown = location.pathname + location.search;
  hooks = {};
  const root = h("div", { class: "page" });
  main.replaceChildren(root);
  chrome(state, path);
  const ctx = { state, path, params, navigate, hooks, flashes: flashes.splice(0) };
  try {
    await page.render(root, ctx);
  } catch (err) {
    root.append(h("p", { class: "message error", role: "alert" }, messageOf(err)));
  }
  if (mine !== renders) return;
  document.title = `${page.title} · NT²`;
  const heading = root.querySelector("h1");
  if (heading) {
    heading.tabIndex = -1;
    heading.focus();
  }
}

/** Re-render the current page (after a change that affects what it shows). */
export function refresh() {
  return render();
}

function showFatal(text) {
  main.replaceChildren(h("div", { class: "page" }, h("h1", {}, "The web client could not start"), h("p", { role: "alert" }, text)));
}

const notFound = {
  title: "Not found",
  render(root) {
    root.append(h("h1", {}, "This page does not exist"), h("p", {}, h("a", { href: "/items", "data-link": true }, "Go to your vault")));
  },
};
