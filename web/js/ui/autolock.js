// Lock after a period without input. The minutes are a per-browser preference (default 5)
// given to the facade (setAutoLock), whose timer counts only the person's input. The timer
// here counts the same and also knows whether the person locked by hand, for the message.
import * as nt2 from "../nt2.js";

const KEY = "nt2.autoLockMinutes";
export const DEFAULT_MINUTES = 5;
export const CHOICES = [1, 5, 15, 30, 60];
const ACTIVITY = ["pointerdown", "keydown", "wheel", "touchstart"];
let timer = null;
let armed = false;
let byHand = false;

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

/** Lock now, on the person's request. */
export function lockNow() {
  byHand = true;
  nt2.lock();
}

/** Why the vault just locked, in one sentence. */
export function reason() {
  const m = minutes();
  const text = byHand ? "Vault locked." : `Vault locked after ${m} minute${m === 1 ? "" : "s"} without activity.`;
  byHand = false;
  armed = false;
  restart();
  return text;
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
  timer = setTimeout(() => {
    timer = null;
    nt2.lock();
  }, minutes() * 60_000);
}
