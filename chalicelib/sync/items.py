"""Item rows → wire items (the stored form is in store/item_rows.py)."""

from __future__ import annotations

from typing import Any

from chalicelib.shared.encoding import b64url_encode
from chalicelib.store import keys
from chalicelib.store.table import Item


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


def ciphertext_chars(nbytes: int) -> int:
    """Length of the unpadded base64url text for nbytes."""
    return (nbytes * 4 + 2) // 3
