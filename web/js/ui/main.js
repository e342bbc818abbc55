// The web client's entry: header, routes, auto-lock and the live indicator.
import * as nt2 from "../nt2.js";
import * as router from "./router.js";
import { liveText } from "./live.js";
import * as autolock from "./autolock.js";
import unlockPage from "./pages/unlock.js";
import itemsPage from "./pages/items.js";
import settingsPage from "./pages/settings.js";
import premiumPage from "./pages/premium.js";
import syncPage from "./pages/sync.js";
import devicesPage from "./pages/devices.js";
import setupPage from "./pages/setup.js";
import recoveryPage from "./pages/recovery.js";
import passwordPage from "./pages/password.js";

router.route("/unlock", unlockPage);
router.route("/items", itemsPage);
router.route("/setup", setupPage);
router.route("/settings/vault", settingsPage);
router.route("/settings/vault/premium", premiumPage);
router.route("/settings/vault/sync", syncPage);
router.route("/settings/vault/enrolledDevices", devicesPage);
router.route("/settings/vault/recovery", recoveryPage);
router.route("/settings/vault/password", passwordPage);

const nav = document.getElementById("top-nav");
const lockButton = document.getElementById("lock-button");
const badge = document.getElementById("live-badge");
let liveWanted = false;

function chrome(state, path) {
  nav.hidden = !state.unlocked;
  lockButton.hidden = !state.unlocked;
  for (const a of nav.querySelectorAll("a")) {
    const here = a.pathname === "/items" ? path === "/items" : path.startsWith("/settings/");
    if (here) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  // Live updates run while the vault is open and synced, whatever page is on screen.
  const wanted = Boolean(state.unlocked && state.syncEnabled);
  if (wanted && !liveWanted) safely(() => nt2.startLive());
  if (!wanted && liveWanted) safely(() => nt2.stopLive());
  liveWanted = wanted;
  badge.hidden = !wanted;
  autolock.arm(state.unlocked);
}

function safely(fn) {
  try {
    fn();
  } catch (err) {
    console.error(err);
  }
}

lockButton.addEventListener("click", () => autolock.lockNow());

// The skip link lands where a navigation does, on the page's heading, and leaves the URL alone.
document.querySelector(".skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  const main = document.getElementById("main");
  (main.querySelector("h1[tabindex]") || main).focus();
});

nt2.onLock(() => {
  liveWanted = false;
  badge.hidden = true;
  router.flash(autolock.reason());
  router.navigate("/unlock");
});

// "Sync on change": a local edit is pushed shortly after it is made (batched), so other
// devices see it through their live connection without anyone pressing Sync now.
let pushTimer = null;
nt2.onChange((detail = {}) => {
  if (router.hooks.onChange) router.hooks.onChange(detail);
  if (detail.local) {
    clearTimeout(pushTimer);
    pushTimer = setTimeout(pushChanges, 400);
  }
});

async function pushChanges() {
  try {
    const state = await nt2.state();
    if (!state.unlocked || !state.syncEnabled) return;
    await nt2.syncNow();
    notice.hidden = true;
  } catch (err) {
    // offline or refused: the change stays pending and goes with the next sync
    if (err && err.code !== "network") showNotice(err);
  }
}

// detail.devices: another device was enrolled, renamed or revoked; detail.error: the
// server ended live sync (this device revoked, or the password changed elsewhere).
nt2.onLiveState((live, detail = {}) => {
  badge.textContent = `Live updates: ${liveText(live)}`;
  badge.className = `live-badge live live-${live}`;
  if (router.hooks.onLiveState) router.hooks.onLiveState(live, detail);
  if (detail.devices && router.hooks.onDevices) router.hooks.onDevices();
  if (detail.error) showNotice(detail.error);
});

const notice = document.getElementById("notice");
function showNotice(err) {
  const code = err && err.code;
  notice.replaceChildren(document.createTextNode(err && err.message ? err.message : "Live sync stopped."));
  if (code === "password_changed") {
    const a = document.createElement("a");
    a.href = "/settings/vault/password";
    a.dataset.link = "";
    a.textContent = "Adopt the new master password";
    notice.append(" ", a);
  }
  notice.hidden = false;
}

// A sync's warnings stay on screen until the person dismisses them (a later clean sync
// does not make a withheld change less withheld); the same sentence is not listed twice.
const warnings = document.getElementById("warnings");
const warningList = document.getElementById("warning-list");
nt2.onNotices((sentences) => {
  const shown = new Set([...warningList.children].map((li) => li.textContent));
  // our own sentences, with ids from the server cleaned of control and bidi characters
  for (const raw of sentences) {
    const text = nt2.cleanText(raw, 2000);
    if (shown.has(text)) continue;
    shown.add(text);
    const li = document.createElement("li");
    li.textContent = text;
    warningList.append(li);
  }
  warnings.hidden = warningList.children.length === 0;
});
document.getElementById("warnings-dismiss").addEventListener("click", () => {
  warningList.replaceChildren();
  warnings.hidden = true;
});

autolock.install();
router.start(document.getElementById("main"), chrome);
