// Lock after a period without input. The minutes are a per-browser preference (default 5);
// the facade is told the same period (setAutoLock) and does the locking itself: the timer
// here only reports activity-free time, so both agree on when the vault closes.
import * as nt2 from "../nt2.js";

const KEY = "nt2.autoLockMinutes";
export const DEFAULT_MINUTES = 5;
export const CHOICES = [1, 5, 15, 30, 60];
const ACTIVITY = ["pointerdown", "keydown", "wheel", "touchstart"];
let timer = null;
let armed = false;
let reason = null;

/** The chosen minutes (a choice from CHOICES). */
export function minutes() {
  const stored = Number(localStorage.getItem(KEY));
  return CHOICES.includes(stored) ? stored : DEFAULT_MINUTES;
}

/** Store a new period and restart the countdown. */
export function setMinutes(value) {
  if (!CHOICES.includes(value)) return;
  localStorage.setItem(KEY, String(value));
  safeSet(value);
  restart();
}

/** Why the vault was locked, if it was the inactivity timer (read once). */
export function consumeReason() {
  const r = reason;
  reason = null;
  return r;
}

/** Count down while the vault is open. */
export function arm(unlocked) {
  if (unlocked && !armed) safeSet(minutes());
  armed = unlocked;
  restart();
}

export function install() {
  for (const kind of ACTIVITY) window.addEventListener(kind, restart, { passive: true, capture: true });
}

function safeSet(m) {
  try {
    nt2.setAutoLock(m * 60_000);
  } catch (err) {
    console.error(err);
  }
}

function restart() {
  if (timer) clearTimeout(timer);
  timer = null;
  if (!armed) return;
  const m = minutes();
  timer = setTimeout(() => {
    timer = null;
    armed = false;
    reason = `Vault locked after ${m} minute${m === 1 ? "" : "s"} without activity.`;
    nt2.lock();
  }, m * 60_000);
}
