"""Key pointers (`KEY#<keyDid>` / `KEY`): which vault a key opens; retired by a rotation."""

from __future__ import annotations

from chalicelib.store import keys
from chalicelib.store.table import Item, Table, to_av
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
