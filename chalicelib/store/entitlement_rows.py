"""Entitlement rows (`ENT#SUB#<id>`, `ENT#PROMO`) and the premium summary on the vault head.

A change commits its rows with the recomputed summary in one transaction conditioned on the
head's `entVersion` (a compare-and-set over the rows the summary was computed from).
"""

from __future__ import annotations

from typing import Any

from chalicelib.store import keys
from chalicelib.store.table import Item, Table, to_av, to_item
from chalicelib.store.txn import Transaction

SUMMARY = "summary"  # action names
ENTITLEMENT = "entitlement"
POINTER_TTL = "pointer"  # the key pointer itself (see key_pointers.POINTER)


def rows(table: Table, vault_id: str) -> dict[str, Item]:
    """Every `ENT#` row of the vault by sort key (strongly consistent Query)."""
    found = table.query_all(
        "pk = :pk AND begins_with(sk, :ent)",
        {":pk": keys.vault_pk(vault_id), ":ent": keys.ENTITLEMENT_PREFIX},
    )
    return {str(row["sk"]): row for row in found}


def add_subscription(txn: Transaction, row: dict[str, Any], updated_at: int) -> None:
    """Write a subscription row; never backwards, even against a writer that slipped past
    the read (`updatedAt` is the provider's event time)."""
    txn.add(
        ENTITLEMENT,
        {
            "Put": {
                "Item": to_item(row),
                "ConditionExpression": "attribute_not_exists(pk) OR updatedAt < :u",
                "ExpressionAttributeValues": {":u": to_av(updated_at)},
            }
        },
    )


def add_promo_time(txn: Transaction, row: dict[str, Any], old_end: int) -> None:
    """Write the promo entitlement, if its end is still the one read (or it is new)."""
    txn.add(
        ENTITLEMENT,
        {
            "Put": {
                "Item": to_item(row),
                "ConditionExpression": "attribute_not_exists(pk) OR endsAt = :old",
                "ExpressionAttributeValues": {":old": to_av(old_end)},
            }
        },
    )


def add_summary(
    txn: Transaction,
    vault_id: str,
    *,
    seen_version: int,
    until: int,
    source: str | None,
    now_s: int,
) -> None:
    """Set the head's summary and bump `entVersion`, if it is still `seen_version`.

    An entitlement keeps a vault that has not registered yet: paid-for time is never lost
    to the 24 h lifetime of unregistered keys (§3), so the head's TTL goes (if not passed).
    """
    sets = ["premiumUntil = :until", "entVersion = :next"]
    values: dict[str, Any] = {
        ":until": to_av(until),
        ":next": to_av(seen_version + 1),
        ":seen": to_av(seen_version),
        ":nows": to_av(now_s),
    }
    if source is not None:
        sets.append("premiumSource = :source")
        values[":source"] = to_av(source)
    txn.add(
        SUMMARY,
        {
            "Update": {
                "Key": keys.meta_key(vault_id),
                "UpdateExpression": "SET " + ", ".join(sets) + " REMOVE #ttl",
                "ConditionExpression": "attribute_exists(pk) AND "
                "(attribute_not_exists(entVersion) OR entVersion = :seen) AND "
                "(attribute_not_exists(#ttl) OR #ttl > :nows)",
                "ExpressionAttributeNames": {"#ttl": "ttl"},
                "ExpressionAttributeValues": values,
            }
        },
    )


def add_keep_pointer(txn: Transaction, key_did: str, vault_id: str) -> None:
    """With the head's TTL, the key pointer's goes too (if it still points at the vault)."""
    txn.add(
        POINTER_TTL,
        {
            "Update": {
                "Key": keys.key_pk(key_did),
                "UpdateExpression": "REMOVE #ttl",
                "ConditionExpression": "vaultId = :v",
                "ExpressionAttributeNames": {"#ttl": "ttl"},
                "ExpressionAttributeValues": {":v": to_av(vault_id)},
            }
        },
    )
