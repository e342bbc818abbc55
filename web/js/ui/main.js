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

nt2.onLock(() => {
  liveWanted = false;
  badge.hidden = true;
  router.flash(autolock.reason());
  router.navigate("/unlock");
});

nt2.onChange(() => {
  if (router.hooks.onChange) router.hooks.onChange();
});

nt2.onLiveState((live) => {
  badge.textContent = `Live updates: ${liveText(live)}`;
  badge.className = `live-badge live live-${live}`;
  if (router.hooks.onLiveState) router.hooks.onLiveState(live);
});

autolock.install();
router.start(document.getElementById("main"), chrome);
