"""Key pointers (`KEY#<keyDid>` / `KEY`): which vault a key opens; retired by a rotation."""

from __future__ import annotations

from typing import Any

from chalicelib.store import keys
from chalicelib.store.table import Item, Table, to_av, to_item
from chalicelib.store.txn import Transaction

POINTER = "pointer"  # the action name of a key pointer check


def get(table: Table, key_did: str) -> Item | None:
    """The pointer row, strongly consistent."""
    return table.get(keys.key_pk(key_did))


def add_current_check(txn: Transaction, key_did: str, vault_id: str) -> None:
    """Check (no write) that the key still opens this vault and was not retired (a rotation
    retires it in its own commit)."""
    txn.add(
        POINTER,
        {
            "ConditionCheck": {
                "Key": keys.key_pk(key_did),
                "ConditionExpression": "vaultId = :v AND attribute_not_exists(retiredAt)",
                "ExpressionAttributeValues": {":v": to_av(vault_id)},
            }
        },
    )


RETIRED = "old"  # action names in a rotation
NEW = "new"


def add_retire(txn: Transaction, key_did: str, vault_id: str, now: int) -> None:
    """Retire a key's pointer; it keeps vaultId, so webhooks naming the old key still find
    the vault."""
    txn.add(
        RETIRED,
        {
            "Update": {
                "Key": keys.key_pk(key_did),
                "UpdateExpression": "SET retiredAt = :now",
                "ConditionExpression": "vaultId = :v AND attribute_not_exists(retiredAt)",
                "ExpressionAttributeValues": {":now": to_av(now), ":v": to_av(vault_id)},
            }
        },
    )


def add_point(
    txn: Transaction, key_did: str, vault_id: str, now: int, taken_from: str | None
) -> None:
    """Point a key at a vault: a new pointer, or one taken from an abandoned vault (only
    if it still points there and was not retired)."""
    row = {**keys.plain(keys.key_pk(key_did)), "vaultId": vault_id, "createdAt": now}
    put: dict[str, Any] = {"Item": to_item(row)}
    if taken_from is None:
        put["ConditionExpression"] = "attribute_not_exists(pk)"
    else:
        put["ConditionExpression"] = "vaultId = :w AND attribute_not_exists(retiredAt)"
        put["ExpressionAttributeValues"] = {":w": to_av(taken_from)}
    txn.add(NEW, {"Put": put})
