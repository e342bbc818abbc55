"""Key pointers (`KEY#<keyDid>` / `KEY`): which vault a key opens; retired by a rotation."""

from __future__ import annotations

from typing import Any

from chalicelib.store import keys
from chalicelib.store.lifetimes import keep_alive
from chalicelib.store.table import Item, Table, to_av, to_item
from chalicelib.store.txn import Cancelled, Transaction

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


KEEP = "key"  # the pointer's action name in a registration


def add_keep(txn: Transaction, key_did: str, vault_id: str, now: int) -> None:
    """End a pre-registration pointer's 24 h lifetime, if it has not passed and it still
    points at this vault."""
    txn.add(KEEP, keep_alive(keys.key_pk(key_did), now, vault_id=vault_id))


def allocate(table: Table, key_did: str, vault_id: str, head: dict[str, Any], now: int) -> bool:
    """A first contact's pointer and empty head, together; False if another request
    allocated the key first. An expired pointer of a key that never registered is replaced."""
    txn = Transaction()
    pointer = {**keys.plain(keys.key_pk(key_did)), "vaultId": vault_id, "createdAt": now}
    txn.add(
        NEW,
        {
            "Put": {
                "Item": to_item({**pointer, "ttl": head.get("ttl")}),
                "ConditionExpression": "attribute_not_exists(pk) OR "
                "(attribute_exists(#ttl) AND #ttl <= :nows)",
                "ExpressionAttributeNames": {"#ttl": "ttl"},
                "ExpressionAttributeValues": {":nows": to_av(now // 1000)},
            }
        },
    )
    row = {**keys.plain(keys.meta_key(vault_id)), **head}
    txn.add(
        "head",
        {"Put": {"Item": to_item(row), "ConditionExpression": "attribute_not_exists(pk)"}},
    )
    try:
        txn.commit(table)
    except Cancelled:
        return False
    return True
