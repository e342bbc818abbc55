// What a failure says to a person. The facade's Nt2Error already carries one actionable
// sentence (never raw server text); the flows where the reason changes what a person does
// next (setting up a device, unlocking) get a heading of their own per code.
import { Nt2Error } from "../nt2.js";

const TITLES = {
  wrong_password: "Wrong master password",
  weak_kdf: "The vault's key derivation is too weak",
  kit_altered: "Wrong master password, or an altered kit",
  kit_invalid: "This is not a setup kit",
  server_lied: "The server's answer does not match your vault",
  vault_not_found: "No vault on that server for this Key DID",
  key_did_mismatch: "The server answered for another vault",
  network: "The server could not be reached",
  bad_response: "The server's answer could not be read",
  bad_server_url: "That server URL cannot be used",
  bad_key_did: "That is not a Key DID",
  audience_mismatch: "The server names another address than the one you typed",
  other_server: "The server answered for another address",
  password_changed: "The master password was changed on another device",
  storage_blocked: "This browser blocks storage for this site",
  premium_required: "NT² Premium is required",
  rate_limited: "Too many attempts",
  device_revoked: "This device was revoked",
  session_revoked: "This device was revoked",
  vault_exists: "This browser already holds a vault",
  not_ready: "Not available yet",
  insecure_checkout: "The checkout link is not secure",
};

// Used only when an error carries no message of its own.
const FALLBACK = {
  wrong_password: "Check the master password and try again; nothing was sent to the server.",
  weak_kdf: "The kit or server asks for fewer key-derivation iterations than this client accepts, so nothing was sent. Make a new kit on a device you trust.",
  kit_altered: "Its check code does not match its contents (or the password is wrong), so nothing was sent. Make a new kit on a device you trust.",
  server_lied: "The server's answer does not match your vault, so nothing authenticated was sent. Check the server URL.",
};

/** The code of an error, or "unexpected". */
export function codeOf(err) {
  return err && typeof err.code === "string" ? err.code : "unexpected";
}

/** One sentence for any failure: the facade's own, or a generic one for a bug in the page. */
export function messageOf(err) {
  if (err instanceof Nt2Error || (err && typeof err.code === "string")) {
    return err.message || FALLBACK[err.code] || "That did not work; try again.";
  }
  console.error(err);
  return "Something went wrong in this page; reload it and try again.";
}

/** A heading for a failure whose code we know. */
export function titleOf(err) {
  return TITLES[codeOf(err)] || "That did not work";
}
