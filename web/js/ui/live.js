// Words for the live connection's state (§10), shared by the header and the Cloud sync page.
const TEXT = {
  off: "off",
  connecting: "connecting…",
  live: "on",
  reconnecting: "reconnecting…",
};

/** The state as a person reads it. */
export function liveText(state) {
  return TEXT[state] || "off";
}
