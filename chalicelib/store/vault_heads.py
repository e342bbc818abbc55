"""Vault head rows (`VAULT#<v>` / `META`): the watermark, the counts, the key it answers to.

Every write to a head is conditional on what decides it (the head read, the key, a count's
bound), so commit order is version order and a rotation in flight cancels what it must.
"""

from __future__ import annotations

from typing import Any

from chalicelib.store import keys
from chalicelib.store.table import Item, Table, to_av
from chalicelib.store.tombstones import MARK_IF_ABSENT, mark_values
from chalicelib.store.txn import Transaction

SEQ = "seq"  # the head's action name in a push (advances the watermark)
HEAD = "head"  # the head's action name elsewhere (a check or a count)


def get(table: Table, vault_id: str) -> Item | None:
    """The head row, strongly consistent."""
    return table.get(keys.meta_key(vault_id))


def add_advance(
    txn: Transaction,
    vault_id: str,
    *,
    head: int,
    new_head: int,
    key_did: str,
    d_items: int,
    d_tombstones: int,
    purge_due_ms: int | None,
) -> None:
    """Move the watermark from `head` (as read) to `new_head` and adjust the counts, if the
    vault still answers to `key_did`; with `purge_due_ms`, mark it in the purge index."""
    update = "SET seq = :new"
    values: dict[str, Any] = {
        ":new": to_av(new_head),
        ":head": to_av(head),
        ":di": to_av(d_items),
        ":dt": to_av(d_tombstones),
        ":key": to_av(key_did),
    }
    if purge_due_ms is not None:
        update += ", " + MARK_IF_ABSENT
        values.update(mark_values(vault_id, purge_due_ms))
    txn.add(
        SEQ,
        {
            "Update": {
                "Key": keys.meta_key(vault_id),
                "UpdateExpression": update + " ADD nItems :di, nTombstones :dt",
                "ConditionExpression": "seq = :head AND keyDid = :key",
                "ExpressionAttributeValues": values,
            }
        },
    )


def add_device_enrolled(txn: Transaction, vault_id: str, key_did: str, max_devices: int) -> None:
    """Count one more device, if the vault still answers to `key_did` and has room."""
    txn.add(
        HEAD,
        {
            "Update": {
                "Key": keys.meta_key(vault_id),
                "UpdateExpression": "ADD nDevices :one",
                "ConditionExpression": (
                    "keyDid = :key AND (attribute_not_exists(nDevices) OR nDevices < :max)"
                ),
                "ExpressionAttributeValues": {
                    ":one": to_av(1),
                    ":key": to_av(key_did),
                    ":max": to_av(max_devices),
                },
            }
        },
    )


def add_key_check(txn: Transaction, vault_id: str, key_did: str) -> None:
    """Check (no write) that the vault still answers to `key_did`."""
    txn.add(
        HEAD,
        {
            "ConditionCheck": {
                "Key": keys.meta_key(vault_id),
                "ConditionExpression": "keyDid = :key",
                "ExpressionAttributeValues": {":key": to_av(key_did)},
            }
        },
    )
