"""Item rows (`VAULT#<v>` / `ITEM#<id>`): the stored form of an accepted write.

Reads that decide a push are strongly consistent BatchGetItems (≤ 100 keys each); every
write is conditional on the version the writer based it on.
"""

from __future__ import annotations

from typing import Any

from chalicelib.shared.encoding import b64url_decode
from chalicelib.store import keys
from chalicelib.store.table import MAX_BATCH_GET, Item, Table, to_av, to_item
from chalicelib.store.tombstones import tombstone_attributes
from chalicelib.store.txn import Transaction


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

    A tombstone keeps the sealed ciphertext it was pushed with (v1.2 §5), or none, and is
    entered into the purge index.
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
        row.update(tombstone_attributes(vault_id, version))
    return to_item(row)


def add_write(txn: Transaction, name: str, row: dict[str, Any], base_version: int) -> None:
    """Put an item row if the stored one is still at `base_version` (0: none stored yet);
    a failed condition returns the stored row with the cancellation."""
    put: dict[str, Any] = {"Item": row, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
    if base_version == 0:
        put["ConditionExpression"] = "attribute_not_exists(pk)"
    else:
        put["ConditionExpression"] = "ver = :base"
        put["ExpressionAttributeValues"] = {":base": to_av(base_version)}
    txn.add(name, {"Put": put})


def get_many(table: Table, vault_id: str, item_ids: list[str]) -> dict[str, Item]:
    """The stored rows of these items (strongly consistent), by item id; absent ones left out."""
    rows = table.batch_get([keys.item_key(vault_id, i) for i in item_ids])
    return {row["id"]: row for row in rows}


def get_with_head(
    table: Table, vault_id: str, item_ids: list[str]
) -> tuple[Item | None, dict[str, Item]]:
    """The vault head and these items' rows in one strongly consistent BatchGetItem (≤ 99)."""
    assert len(item_ids) < MAX_BATCH_GET  # one request: the head and the items together
    rows = table.batch_get(
        [keys.meta_key(vault_id)] + [keys.item_key(vault_id, i) for i in item_ids]
    )
    head = next((r for r in rows if r["sk"] == keys.META_SK), None)
    return head, {r["id"]: r for r in rows if r["sk"] != keys.META_SK}


VERSION_INDEX = "byVersion"  # LSI: pk, ver (keys only; the rest is fetched, consistently)


def between(
    table: Table,
    vault_id: str,
    lo: int,
    hi: int,
    limit: int,
    start: dict[str, Any] | None = None,
) -> tuple[list[Item], dict[str, Any] | None]:
    """One strongly consistent page of items with lo < version ≤ hi, ascending by version,
    and where to continue (None after the last)."""
    return table.query(
        "pk = :pk AND ver BETWEEN :lo AND :hi",
        {":pk": keys.vault_pk(vault_id), ":lo": lo + 1, ":hi": hi},
        index=VERSION_INDEX,
        limit=limit,
        start=start,
    )
