"""Promo codes (`PROMO#<hash>`), their operator listing (`PROMOS`) and redemptions
(`VAULT#<v>` / `PROMOUSE#<hash>`). Codes are stored by hash only."""

from __future__ import annotations

from typing import Any

from chalicelib.store import keys
from chalicelib.store.table import Item, Table, to_av, to_item
from chalicelib.store.txn import Transaction

PROMO = "promo"  # action names
USE = "use"


def create(table: Table, digest: str, fields: dict[str, Any], now: int) -> None:
    """A new code and its listing row, together (a clash of 100-bit codes cancels both)."""
    txn = Transaction()
    row = {**keys.plain(keys.promo_key(digest)), **fields}
    txn.add(
        PROMO,
        {"Put": {"Item": to_item(row), "ConditionExpression": "attribute_not_exists(pk)"}},
    )
    index = {**keys.plain(keys.promo_index_key(digest)), "codeHash": digest, "createdAt": now}
    txn.add("listing", {"Put": {"Item": to_item(index)}})
    txn.commit(table)


def listed(table: Table) -> list[str]:
    """Every code hash in the operator's listing partition."""
    return [str(r["codeHash"]) for r in table.query_all("pk = :pk", {":pk": keys.PROMO_INDEX_PK})]


def get_many(table: Table, digests: list[str]) -> dict[str, Item]:
    """The code rows by hash (strongly consistent); unknown ones left out."""
    rows = table.batch_get([keys.promo_key(d) for d in digests])
    return {str(row["pk"]).removeprefix("PROMO#"): row for row in rows}


def code_and_use(table: Table, vault_id: str, digest: str) -> tuple[Item | None, bool]:
    """(the code's row, whether this vault redeemed it), in one consistent BatchGetItem."""
    code: Item | None = None
    used = False
    for row in table.batch_get([keys.promo_key(digest), keys.promo_use_key(vault_id, digest)]):
        if row["sk"] == "PROMO":
            code = row
        else:
            used = True
    return code, used


def add_redemption(
    txn: Transaction, vault_id: str, digest: str, now: int, fields: dict[str, Any]
) -> None:
    """Count one redemption (if any are left and the code has not expired) and record this
    vault's use (if it has none)."""
    txn.add(
        PROMO,
        {
            "Update": {
                "Key": keys.promo_key(digest),
                "UpdateExpression": "ADD redemptions :one",
                "ConditionExpression": "attribute_exists(pk) AND redemptions < maxRedemptions"
                " AND (attribute_not_exists(expiresAt) OR expiresAt > :now)",
                "ExpressionAttributeValues": {":one": to_av(1), ":now": to_av(now)},
            }
        },
    )
    use = {**keys.plain(keys.promo_use_key(vault_id, digest)), **fields}
    txn.add(
        USE,
        {"Put": {"Item": to_item(use), "ConditionExpression": "attribute_not_exists(pk)"}},
    )
