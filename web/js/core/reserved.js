// Item ids the client keeps for itself (per-device sealed manifests, manifests.js): synced
// by their own module, never listed, edited, deleted, backed up or pushed as items.
// The prefix is nt2sync/manifests.py's RESERVED (manifests are `nt2.manifest:<replica>:…`).
export const RESERVED_PREFIXES = ["nt2."];

export function isReserved(id) {
  return RESERVED_PREFIXES.some((p) => id.startsWith(p));
}
