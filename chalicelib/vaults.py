"""The keyDid → vault pointer: resolve, allocate (first contact), read the head row."""

from __future__ import annotations

import secrets
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.clock import now_ms
from chalicelib.shared.limits import UNREGISTERED_LIFETIME_MS
from chalicelib.store import keys
from chalicelib.store.table import Item, Table, to_item

EMPTY_COUNTS = {
    "seq": 0,
    "nItems": 0,
    "nTombstones": 0,
    "nAttachments": 0,
    "attachmentBytes": 0,
    "claimedBytes": 0,  # attachmentBytes + reserved bytes: what the quota bounds (§6)
    "nReservations": 0,
    "nDevices": 0,
    "horizon": 0,
}


def key_record(table: Table, key_did: str) -> Item | None:
    return table.get(keys.key_pk(key_did))


def vault_id_for(table: Table, key_did: str, *, allocate: bool) -> tuple[str | None, bool]:
    """(vaultId, retired) for a keyDid; with allocate, a first contact gets a new vault id.

    A retired key keeps pointing at its vault (webhooks still find it) but owns nothing.
    """
    record = key_record(table, key_did)
    if record is not None and _expired(record):
        record = None  # a key that never registered: its rows are past their 24 h (§3)
    if record is None and allocate:
        record = _allocate(table, key_did)
    if record is None:
        return None, False
    return str(record["vaultId"]), "retiredAt" in record


def _expired(record: Item) -> bool:
    """Past its TTL (DynamoDB deletes expired rows late, so reads must not trust them)."""
    return "ttl" in record and int(record["ttl"]) <= now_ms() // 1000


def unregistered_ttl(now: int) -> int:
    """TTL of what a key leaves before it registers: 24 h after it was written (§3)."""
    return (now + UNREGISTERED_LIFETIME_MS) // 1000


def _allocate(table: Table, key_did: str) -> Item:
    """A new empty vault for a key's first contact. Its KEY and META rows (and devices
    enrolled into it) expire within 24 h unless the vault registers (which removes the TTLs)."""
    vault_id = secrets.token_hex(16)
    now = now_ms()
    ttl = unregistered_ttl(now)
    key_row = {**_unkey(keys.key_pk(key_did)), "vaultId": vault_id, "createdAt": now, "ttl": ttl}
    meta_row: dict[str, Any] = {
        **_unkey(keys.meta_key(vault_id)),
        "keyDid": key_did,
        "createdAt": now,
        "ttl": ttl,
        **EMPTY_COUNTS,
    }
    try:
        table.transact(
            [
                {
                    "Put": {
                        "Item": to_item(key_row),
                        # An expired pointer of a key that never registered is replaced.
                        "ConditionExpression": "attribute_not_exists(pk) OR "
                        "(attribute_exists(#ttl) AND #ttl <= :nows)",
                        "ExpressionAttributeNames": {"#ttl": "ttl"},
                        "ExpressionAttributeValues": {":nows": {"N": str(now // 1000)}},
                    }
                },
                {
                    "Put": {
                        "Item": to_item(meta_row),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
            raise
        existing = key_record(table, key_did)  # another request allocated it first
        if existing is None or _expired(existing):
            raise
        return existing
    return key_row


def _unkey(key: dict[str, dict[str, str]]) -> dict[str, str]:
    return {name: value["S"] for name, value in key.items()}


def unkey(key: dict[str, dict[str, str]]) -> dict[str, str]:
    """A typed key as plain attributes (to spread into an item)."""
    return _unkey(key)


def vault_counts(meta: Item | None) -> dict[str, int]:
    """The §5 counts kept on the head row (maintained in the same commits as the writes)."""
    meta = meta or {}
    return {
        "items": int(meta.get("nItems") or 0),
        "tombstones": int(meta.get("nTombstones") or 0),
        "attachments": int(meta.get("nAttachments") or 0),
        "attachmentBytes": int(meta.get("attachmentBytes") or 0),
    }


def is_registered(meta: Item | None) -> bool:
    return bool(meta and meta.get("saltHex"))
