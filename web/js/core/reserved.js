// Item ids the client keeps for itself (per-device signed manifests, h-manifests): synced
// and preserved like any item, never listed, edited or deleted by a person.
// The prefix is nt2sync/manifests.py's RESERVED (manifests are `nt2.manifest:<replica>:…`).
export const RESERVED_PREFIXES = ["nt2."];

export function isReserved(id) {
  return RESERVED_PREFIXES.some((p) => id.startsWith(p));
}
