"""Session rows (`SESSION#<sha256(token)>`) and their slots (`SESSIONS#<key>#<replica>`).

A session is stored under the hash of its token, never the token. Each (key, replica) has
10 slot rows; a new session takes a free or expired slot, or the oldest (ending its session
in the same transaction). Rows linger past expiry (TTL) so an old token reads "expired".
"""

from __future__ import annotations

from typing import Any

from chalicelib.store import keys
from chalicelib.store.errors import ConditionFailed
from chalicelib.store.table import Item, Table, to_av, to_item
from chalicelib.store.txn import Transaction

SESSION = "session"  # action names
SLOT = "slot"
ENDED = "ended"


def add_session(txn: Transaction, token_hash: str, fields: dict[str, Any]) -> None:
    """A new session row (the token hash is new: a clash would be a 2^-256 event)."""
    row = {**keys.plain(keys.session_key(token_hash)), **fields}
    txn.add(
        SESSION,
        {"Put": {"Item": to_item(row), "ConditionExpression": "attribute_not_exists(pk)"}},
    )


def slots(table: Table, key_did: str, replica_id: str) -> dict[int, Item]:
    """This replica's slot rows by slot number (strongly consistent Query, ≤ 10 rows)."""
    rows, _ = table.query(
        "pk = :pk AND begins_with(sk, :slot)",
        {":pk": keys.session_slots_pk(key_did, replica_id), ":slot": "SLOT#"},
    )
    return {int(row["slot"]): row for row in rows}


def add_slot(
    txn: Transaction,
    key_did: str,
    replica_id: str,
    slot: int,
    fields: dict[str, Any],
    replaces: str | None,
) -> None:
    """Take a slot: if it held session `replaces` (a token hash), only if it still does,
    and that session ends in the same transaction; otherwise only if it is free."""
    row = {**keys.plain(keys.session_slot_key(key_did, replica_id, slot)), "slot": slot, **fields}
    put: dict[str, Any] = {"Item": to_item(row)}
    if replaces is not None:
        put["ConditionExpression"] = "tokenHash = :seen"
        put["ExpressionAttributeValues"] = {":seen": to_av(replaces)}
    else:
        put["ConditionExpression"] = "attribute_not_exists(pk)"
    txn.add(SLOT, {"Put": put})


def add_end(txn: Transaction, token_hash: str) -> None:
    """End a session (the oldest one, when its slot is taken)."""
    txn.add(ENDED, {"Delete": {"Key": keys.session_key(token_hash)}})


def add_live_check(txn: Transaction, token_hash: str, now: int) -> None:
    """Check (no write) that the session exists and has not expired."""
    txn.add(
        SESSION,
        {
            "ConditionCheck": {
                "Key": keys.session_key(token_hash),
                "ConditionExpression": "attribute_exists(pk) AND expiresAt > :now",
                "ExpressionAttributeValues": {":now": to_av(now)},
            }
        },
    )


def read_for_token(
    table: Table, token_hash: str, vault_id: str | None, replica_id: str
) -> tuple[Item | None, Item | None, Item | None]:
    """(session, vault head, device) in one strongly consistent BatchGetItem."""
    wanted = [keys.session_key(token_hash)]
    if vault_id is not None:
        wanted += [keys.meta_key(vault_id), keys.device_key(vault_id, replica_id)]
    by_sk = {row["sk"]: row for row in table.batch_get(wanted)}
    return by_sk.get("SESSION"), by_sk.get(keys.META_SK), by_sk.get(keys.device_sk(replica_id))


def end(table: Table, token_hash: str, key_did: str, replica_id: str) -> None:
    """Delete a session and free its slot (unless a newer session took the slot)."""
    old = table.delete(keys.session_key(token_hash), return_old=True)
    if old is None or "slot" not in old:
        return
    try:
        table.delete(
            keys.session_slot_key(key_did, replica_id, int(old["slot"])),
            condition="tokenHash = :h",
            values={":h": token_hash},
        )
    except ConditionFailed:
        pass
