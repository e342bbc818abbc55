"""Attachment rows (`ATT#<id>`), upload reservations (`RES#<id>`) and the vault's usage
counters on its head (docs/ATTACHMENTS.md).

Every transaction here names its actions `row`, `reservation` and `usage`, so a caller
decides what a cancellation means by name. Reads are strongly consistent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chalicelib.store import keys
from chalicelib.store.blobs import COMMITTED, PENDING
from chalicelib.store.errors import ConditionFailed
from chalicelib.store.table import Item, Table, to_av, to_item
from chalicelib.store.txn import Transaction

ROW = "row"
RESERVATION = "reservation"
USAGE = "usage"
ATT_PREFIX = keys.attachment_sk("")
RES_PREFIX = keys.reservation_sk("")


def get(table: Table, vault_id: str, att_id: str) -> Item | None:
    return table.get(keys.attachment_key(vault_id, att_id))


def get_reservation(table: Table, vault_id: str, att_id: str) -> Item | None:
    return table.get(keys.reservation_key(vault_id, att_id))


def reservations(table: Table, vault_id: str) -> Iterator[Item]:
    """Every reservation row of a vault (≤ ~100: the counters bound them)."""
    return table.query_all(
        "pk = :pk AND begins_with(sk, :prefix)",
        {":pk": keys.vault_pk(vault_id), ":prefix": RES_PREFIX},
    )


def page(
    table: Table, vault_id: str, after_sk: str | None, limit: int
) -> tuple[list[Item], str | None]:
    """One Query page of attachment rows after `after_sk`: (rows, sk to continue after)."""
    pk = keys.vault_pk(vault_id)
    start = {"pk": {"S": pk}, "sk": {"S": after_sk}} if after_sk else None
    rows, last = table.query(
        "pk = :pk AND begins_with(sk, :prefix)",
        {":pk": pk, ":prefix": ATT_PREFIX},
        limit=limit,
        start=start,
    )
    return rows, (str(last["sk"]["S"]) if last else None)


def ensure_claimed_counter(table: Table, vault_id: str) -> None:
    """Give a head from before reservations its `claimedBytes` (its committed bytes), once."""
    try:
        table.update(
            keys.meta_key(vault_id),
            "SET claimedBytes = if_not_exists(attachmentBytes, :zero)",
            condition="attribute_exists(pk) AND attribute_not_exists(claimedBytes)",
            values={":zero": 0},
        )
    except ConditionFailed:
        pass  # set already, or the vault is gone


def add_usage(
    txn: Transaction,
    vault_id: str,
    *,
    committed: int = 0,
    files: int = 0,
    claimed: int = 0,
    reservations: int = 0,
    quota: int | None = None,
    max_reservations: int = 0,
) -> None:
    """The head's counter deltas, and the limits they must respect.

    With `quota`, a growing `claimedBytes` must stay within it; a new reservation
    (`reservations > 0`) must not pass `max_reservations`. DynamoDB conditions cannot add
    two attributes, hence the one `claimedBytes` counter the quota is checked against.
    """
    deltas = {
        "attachmentBytes": committed,
        "nAttachments": files,
        "claimedBytes": claimed,
        "nReservations": reservations,
    }
    adds = [f"{name} :{name}" for name, delta in deltas.items() if delta]
    values = {f":{name}": to_av(delta) for name, delta in deltas.items() if delta}
    conditions = ["attribute_exists(pk)"]
    if quota is not None and claimed > 0:
        conditions.append("claimedBytes <= :limit")
        values[":limit"] = to_av(quota - claimed)
    if reservations > 0:
        conditions.append("(attribute_not_exists(nReservations) OR nReservations < :maxres)")
        values[":maxres"] = to_av(max_reservations)
    body: dict[str, Any] = {
        "Key": keys.meta_key(vault_id),
        "ConditionExpression": " AND ".join(conditions),
    }
    if not adds:  # nothing moves: only the vault's existence is checked
        txn.add(USAGE, {"ConditionCheck": body})
        return
    body["UpdateExpression"] = "ADD " + ", ".join(adds)
    body["ExpressionAttributeValues"] = values
    txn.add(USAGE, {"Update": body})


def _seen(vault_id: str, att_id: str, res: Item | None) -> dict[str, Any]:
    """Condition: the reservation row is still the one read (or still absent)."""
    body: dict[str, Any] = {"Key": keys.reservation_key(vault_id, att_id)}
    if res is None:
        body["ConditionExpression"] = "attribute_not_exists(pk)"
    else:
        body["ConditionExpression"] = "grantId = :grant"
        body["ExpressionAttributeValues"] = {":grant": to_av(res["grantId"])}
    return body


def add_reserve(
    txn: Transaction, vault_id: str, att_id: str, seen: Item | None, fields: dict[str, Any]
) -> None:
    """Write the reservation, if the one read (`seen`, or none) is still there."""
    body = _seen(vault_id, att_id, seen)
    del body["Key"]
    body["Item"] = to_item({**keys.plain(keys.reservation_key(vault_id, att_id)), **fields})
    txn.add(RESERVATION, {"Put": body})


def add_release(
    txn: Transaction, vault_id: str, att_id: str, seen: Item | None, ended_by: int | None = None
) -> None:
    """Delete the reservation read (`seen`) if it is still that one (and, with `ended_by`,
    has ended by then); with none read, check that there still is none."""
    body = _seen(vault_id, att_id, seen)
    if ended_by is not None and seen is not None:
        body["ConditionExpression"] += " AND expiresAt <= :now"
        body["ExpressionAttributeValues"][":now"] = to_av(ended_by)
    txn.add(RESERVATION, {"Delete": body} if seen is not None else {"ConditionCheck": body})


def add_pending(txn: Transaction, vault_id: str, att_id: str, fields: dict[str, Any]) -> None:
    """A pending row; never over a committed one (its bytes are counted, its content fixed)."""
    row = {**keys.plain(keys.attachment_key(vault_id, att_id)), "state": PENDING}
    txn.add(
        ROW,
        {
            "Put": {
                "Item": to_item({**row, **fields}),
                "ConditionExpression": "attribute_not_exists(pk) OR #state = :pending",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": {":pending": to_av(PENDING)},
            }
        },
    )


def add_commit(
    txn: Transaction, vault_id: str, att_id: str, size: int, sha256: str, now: int
) -> None:
    """Mark the row committed, if it still describes the object that was checked."""
    txn.add(
        ROW,
        {
            "Update": {
                "Key": keys.attachment_key(vault_id, att_id),
                "UpdateExpression": "SET #state = :committed, committedAt = :now "
                "REMOVE expiresAt, #ttl",
                "ConditionExpression": "#state = :pending AND #size = :size "
                "AND sha256 = :sha AND expiresAt > :now",
                "ExpressionAttributeNames": {"#state": "state", "#size": "size", "#ttl": "ttl"},
                "ExpressionAttributeValues": {
                    ":committed": to_av(COMMITTED),
                    ":pending": to_av(PENDING),
                    ":now": to_av(now),
                    ":size": to_av(size),
                    ":sha": to_av(sha256),
                },
            }
        },
    )


def add_delete(txn: Transaction, vault_id: str, att_id: str, row: Item) -> None:
    """Delete the row, if it is still in the state and size read."""
    txn.add(
        ROW,
        {
            "Delete": {
                "Key": keys.attachment_key(vault_id, att_id),
                "ConditionExpression": "#state = :state AND #size = :size",
                "ExpressionAttributeNames": {"#state": "state", "#size": "size"},
                "ExpressionAttributeValues": {
                    ":state": to_av(row.get("state")),
                    ":size": to_av(int(row["size"])),
                },
            }
        },
    )
