"""Rows that a key writes before it registers live 24 h (TTL, §3); registration keeps them."""

from __future__ import annotations

from typing import Any

from chalicelib.store.table import to_av


def keep_alive(
    key: dict[str, dict[str, str]],
    now: int,
    *,
    vault_id: str | None = None,
    not_revoked: bool = False,
) -> dict[str, Any]:
    """REMOVE ttl from a row, conditional on it being alive (and, for a key pointer, still
    pointing at `vault_id` unretired; for a device, not revoked)."""
    condition = "attribute_exists(pk) AND (attribute_not_exists(#ttl) OR #ttl > :nows)"
    values: dict[str, Any] = {":nows": to_av(now // 1000)}
    if vault_id is not None:
        condition += " AND vaultId = :v AND attribute_not_exists(retiredAt)"
        values[":v"] = to_av(vault_id)
    if not_revoked:
        condition += " AND attribute_not_exists(revokedAt)"
    return {
        "Update": {
            "Key": key,
            "UpdateExpression": "REMOVE #ttl",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#ttl": "ttl"},
            "ExpressionAttributeValues": values,
        }
    }
