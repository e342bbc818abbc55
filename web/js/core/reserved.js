// Item ids the client keeps for itself (per-device signed manifests, h-manifests): synced
// and preserved like any item, never listed, edited or deleted by a person.
// ASSUMPTION until the manifests format lands: ids under the `nt2.` prefix.
export const RESERVED_PREFIXES = ["nt2."];

export function isReserved(id) {
  return RESERVED_PREFIXES.some((p) => id.startsWith(p));
}
