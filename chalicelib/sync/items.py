"""Item rows ↔ wire items."""

from __future__ import annotations

from typing import Any

from chalicelib.shared.encoding import b64url_decode, b64url_encode
from chalicelib.store import keys
from chalicelib.store.table import Item, to_item
from chalicelib.store.tombstones import tombstone_attributes


def wire_item(row: Item) -> dict[str, Any]:
    """A stored item row as §5's item object."""
    ct = row.get("ct")
    return {
        "id": row["sk"][len(keys.item_sk("")) :] if "id" not in row else row["id"],
        "version": int(row["ver"]),
        "deleted": bool(row.get("deleted")),
        "ciphertext": b64url_encode(ct) if ct is not None else None,
        "replicaId": row.get("replicaId", ""),
        "updatedAt": int(row.get("updatedAt", 0)),
    }


def item_row(
    vault_id: str,
    item_id: str,
    version: int,
    deleted: bool,
    ciphertext: str | None,
    replica_id: str,
    now: int,
) -> dict[str, Any]:
    """The DynamoDB item for an accepted write (ciphertext stored as bytes: 25% smaller).

    A tombstone keeps the sealed ciphertext it was pushed with (v1.2 §5), or none.
    """
    row: dict[str, Any] = {
        "pk": keys.vault_pk(vault_id),
        "sk": keys.item_sk(item_id),
        "id": item_id,
        "ver": version,
        "deleted": deleted,
        "replicaId": replica_id,
        "updatedAt": now,
    }
    if ciphertext is not None:
        row["ct"] = b64url_decode(ciphertext)
    if deleted:
        row.update(tombstone_attributes(vault_id, version))  # into the purge index
    return to_item(row)


def ciphertext_chars(nbytes: int) -> int:
    """Length of the unpadded base64url text for nbytes."""
    return (nbytes * 4 + 2) // 3
