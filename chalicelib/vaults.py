"""The keyDid → vault pointer: resolve, allocate (first contact), read the head row."""

from __future__ import annotations

import secrets
from typing import Any

from chalicelib.clock import now_ms
from chalicelib.errors import unavailable
from chalicelib.shared.limits import UNREGISTERED_LIFETIME_MS
from chalicelib.store import key_pointers
from chalicelib.store.table import Item, Table

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
    return key_pointers.get(table, key_did)


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
    head: dict[str, Any] = {"keyDid": key_did, "createdAt": now, "ttl": ttl, **EMPTY_COUNTS}
    if key_pointers.allocate(table, key_did, vault_id, head, now):
        return {"vaultId": vault_id, "createdAt": now, "ttl": ttl}
    existing = key_record(table, key_did)  # another request allocated it first
    if existing is None or _expired(existing):
        raise unavailable()
    return existing


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
