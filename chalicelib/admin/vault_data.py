"""Everything one vault owns: describe it, list it, delete it (the support deletion).

The product's documentation promises that server data stays "until you delete account data
through support processes"; this module is that process. What a vault owns:

- its partition `VAULT#<vaultId>` (META, ITEM#, DEVICE#, ATT#, ENT#, PROMOUSE#, BATCH# chunk
  and conflict records, and any kind added later): a consistent Query, paged;
- the `KEY#<keyDid>` pointers whose vaultId is this vault, the current key and every retired
  one, and the sessions (`SESSION#…`) of the vault or of its keys: these live outside the
  partition, so one consistent Scan with a filter finds them (an operator command, never a
  request path: it reads the whole table);
- the partitions of empty vaults a rotation abandoned for this one (META `abandonedFor`):
  they hold the new key's first device rows and sessions;
- every S3 object under `vaults/<vaultId>/` (ListObjectsV2, DeleteObjects ≤ 1000 a call).

Not the vault's: nonces (they expire by themselves within minutes) and promo code rows
(`PROMO#…`: a code's redemption counter keeps counting the redemption).

Deleting runs in an order that a rerun with the same keyDid can always finish: the vault
head is first locked (keyDid removed: every session of it fails authentication and every
push fails its condition from then on), then objects, sessions, the partition rows, the
other keys' pointers, the head row, and last the given key's pointer, which is what resolves
the vault; a final sweep of the partition catches a row a racing request wrote meanwhile.
Deletes are BatchWriteItem (≤ 25 keys, UnprocessedItems retried): each delete is idempotent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from chalicelib.clock import now_ms
from chalicelib.store import bulk, device_rows, key_pointers, keys, vault_heads
from chalicelib.store.blobs import Blobs
from chalicelib.store.errors import ConditionFailed, StorageIncomplete
from chalicelib.store.table import Item, Key, Table
from chalicelib.vaults import is_registered, vault_counts

IN_LIST_MAX = 100
SWEEPS = 3  # partition passes before giving up on a vault that keeps getting new rows

KEY_PREFIX = keys.KEY_PREFIX
SESSION_PREFIX = keys.SESSION_PREFIX

# Row kinds of the vault partition, in report order.
ROW_KINDS = (
    "meta",
    "items",
    "tombstones",
    "devices",
    "attachments",
    "entitlements",
    "promoRedemptions",
    "pushChunks",
    "other",
)


class VaultDataError(RuntimeError):
    """The vault cannot be described or deleted as asked (the message says why)."""


def row_kind(sk: str, deleted: bool = False) -> str:
    """The report kind of a partition row, from its sort key."""
    if sk == keys.META_SK:
        return "meta"
    if sk.startswith(keys.item_sk("")):
        return "tombstones" if deleted else "items"
    if sk.startswith(keys.device_sk("")):
        return "devices"
    if sk.startswith(keys.attachment_sk("")):
        return "attachments"
    if sk.startswith(keys.ENTITLEMENT_PREFIX):
        return "entitlements"
    if sk.startswith(keys.promo_use_sk("")):
        return "promoRedemptions"
    if sk.startswith(keys.BATCH_PREFIX):
        return "pushChunks"
    return "other"


@dataclass
class Report:
    """What a vault has (inventory) or what a deletion removed."""

    key_did: str
    vault_id: str
    rows: Counter[str] = field(default_factory=Counter)
    abandoned_vaults: list[str] = field(default_factory=list)
    key_pointers: list[dict[str, Any]] = field(default_factory=list)
    sessions: int = 0
    references: int = 0  # other rows outside the partition that name the vault
    objects: int = 0
    object_bytes: int = 0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "keyDid": self.key_did,
            "vaultId": self.vault_id,
            "vaultRows": {"total": self.total_rows, **{k: self.rows[k] for k in ROW_KINDS}},
            "abandonedVaults": list(self.abandoned_vaults),
            "keyPointers": list(self.key_pointers),
            "sessions": self.sessions,
            "otherReferences": self.references,
            "objects": self.objects,
            "objectBytes": self.object_bytes,
        }


@dataclass
class _Outside:
    """Rows outside the partition that belong to the vault (found by one Scan)."""

    key_rows: list[Item] = field(default_factory=list)
    sessions: list[Key] = field(default_factory=list)
    slots: list[Key] = field(default_factory=list)  # session and challenge slots of its keys
    references: list[Key] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)


# -- resolve and describe -------------------------------------------------------------------


def resolve(table: Table, key_did: str) -> Item | None:
    """The `KEY#<keyDid>` pointer (current or retired key), None for an unknown keyDid."""
    return key_pointers.get(table, key_did)


def describe(table: Table, key_did: str) -> dict[str, Any] | None:
    """The operator's view of the vault a keyDid points to; None for an unknown keyDid.

    Public material only (salt, kdf, counts, devices): never a token, verifier or ciphertext.
    """
    pointer = resolve(table, key_did)
    if pointer is None:
        return None
    vault_id = str(pointer["vaultId"])
    meta = vault_heads.get(table, vault_id)
    if meta is None:
        raise VaultDataError(
            f"keyDid {key_did} points to vault {vault_id}, whose head row is gone: a deletion "
            "did not finish; run `vault delete --key-did` again with --yes."
        )
    devices = [
        {
            "replicaId": row.get("replicaId"),
            "name": row.get("name"),
            "enrolledAt": row.get("enrolledAt"),
            "lastSeenAt": row.get("lastSeenAt"),
            "revokedAt": row.get("revokedAt"),
        }
        for row in device_rows.all_of(table, vault_id)
    ]
    until = int(meta.get("premiumUntil") or 0)
    kdf = None
    if meta.get("kdfIterations") is not None or meta.get("kdfAlgorithm") is not None:
        kdf = {"algorithm": meta.get("kdfAlgorithm"), "iterations": meta.get("kdfIterations")}
    return {
        "keyDid": meta.get("keyDid"),
        "givenKeyDid": key_did,
        "givenKeyRetiredAt": pointer.get("retiredAt"),
        "vaultId": vault_id,
        "registered": is_registered(meta),
        "createdAt": meta.get("createdAt"),
        "registeredAt": meta.get("registeredAt"),
        "rotatedAt": meta.get("rotatedAt"),
        "deletionStartedAt": meta.get("deletionStartedAt"),
        "saltHex": meta.get("saltHex"),
        "kdf": kdf,
        "watermark": int(meta.get("seq") or 0),
        "horizon": int(meta.get("horizon") or 0),
        "counts": {**vault_counts(meta), "devices": int(meta.get("nDevices") or 0)},
        "premium": {
            "active": until > now_ms(),
            "until": until or None,
            "source": meta.get("premiumSource"),
        },
        "devices": devices,
    }


# -- inventory and delete -------------------------------------------------------------------


def inventory(table: Table, blobs: Blobs, key_did: str) -> Report | None:
    """Everything that `delete` would remove (reads only); None for an unknown keyDid."""
    pointer = resolve(table, key_did)
    if pointer is None:
        return None
    vault_id = str(pointer["vaultId"])
    outside = _scan_outside(table, vault_id)
    report = _report(key_did, vault_id, outside)
    for vid in [vault_id, *outside.abandoned]:
        for row in _partition(table, vid):
            report.rows[row_kind(row["sk"], bool(row.get("deleted")))] += 1
        for obj in _objects(blobs, vid):
            report.objects += 1
            report.object_bytes += int(obj.get("Size") or 0)
    return report


def delete(table: Table, blobs: Blobs, key_did: str) -> Report | None:
    """Delete everything of the vault the keyDid points to; what was removed.

    None for an unknown keyDid (never seen, or deleted by an earlier run). Safe to rerun
    after any failure: the given key's pointer goes last.
    """
    pointer = resolve(table, key_did)
    if pointer is None:
        return None
    vault_id = str(pointer["vaultId"])
    outside = _scan_outside(table, vault_id)
    report = _report(key_did, vault_id, outside)
    _lock(table, vault_id)
    for vid in [vault_id, *outside.abandoned]:
        count, size = _delete_objects(blobs, vid)
        report.objects += count
        report.object_bytes += size
    _batch_delete(table, outside.sessions + outside.slots + outside.references)
    for vid in outside.abandoned:
        _delete_partition(table, vid, report.rows, keep_meta=False)
    _delete_partition(table, vault_id, report.rows, keep_meta=True)
    given = keys.key_pk(key_did)
    _batch_delete(table, [_key_of(r) for r in outside.key_rows if _key_of(r) != given])
    _delete_partition(table, vault_id, report.rows, keep_meta=False)
    table.delete(given)
    # No pointer names the vault any more, so no new session can reach it: a row a racing
    # request wrote before that is caught here.
    _delete_partition(table, vault_id, report.rows, keep_meta=False)
    return report


def _report(key_did: str, vault_id: str, outside: _Outside) -> Report:
    return Report(
        key_did=key_did,
        vault_id=vault_id,
        abandoned_vaults=list(outside.abandoned),
        key_pointers=[
            {
                "keyDid": str(r["pk"]).removeprefix(KEY_PREFIX),
                "retiredAt": r.get("retiredAt"),
            }
            for r in outside.key_rows
        ],
        sessions=len(outside.sessions),
        references=len(outside.references),
    )


def _key_of(row: Item) -> Key:
    return {"pk": {"S": str(row["pk"])}, "sk": {"S": str(row["sk"])}}


def _lock(table: Table, vault_id: str) -> None:
    """Take the keyDid off the head: sessions, pushes and rotations of the vault stop now."""
    try:
        table.update(
            keys.meta_key(vault_id),
            "SET deletionStartedAt = if_not_exists(deletionStartedAt, :now) REMOVE keyDid",
            condition="attribute_exists(pk)",
            values={":now": now_ms()},
        )
    except ConditionFailed:
        pass  # the head is gone already: an earlier run got far


def _scan_outside(table: Table, vault_id: str) -> _Outside:
    """Pointers, sessions and abandoned vaults of this vault: one consistent Scan."""
    out = _Outside()
    orphan_sessions: list[Item] = []
    candidates = _scan(
        table,
        "vaultId = :v OR abandonedFor = :v OR "
        "(begins_with(pk, :session) AND attribute_not_exists(vaultId)) OR "
        "begins_with(pk, :slots) OR begins_with(pk, :challenges)",
        {
            ":v": {"S": vault_id},
            ":session": {"S": SESSION_PREFIX},
            ":slots": {"S": keys.SESSION_SLOTS_PREFIX},
            ":challenges": {"S": keys.CHALLENGES_PREFIX},
        },
    )
    slot_rows: list[Item] = []
    for row in candidates:
        pk = str(row["pk"])
        if pk.startswith((keys.SESSION_SLOTS_PREFIX, keys.CHALLENGES_PREFIX)):
            slot_rows.append(row)  # per-keyDid slot rows: deleted with the keys' sessions
        elif row.get("abandonedFor") == vault_id and row["sk"] == keys.META_SK:
            out.abandoned.append(pk.removeprefix(keys.vault_pk("")))
        elif row.get("vaultId") != vault_id:
            orphan_sessions.append(row)  # a session without a vault: kept if its key is ours
        elif pk.startswith(KEY_PREFIX):
            out.key_rows.append(row)
        elif pk.startswith(SESSION_PREFIX):
            out.sessions.append(_key_of(row))
        else:
            out.references.append(_key_of(row))
    # A retired key may still sign in; its sessions carry no vaultId, only the keyDid.
    key_dids = {str(r["pk"]).removeprefix(KEY_PREFIX) for r in out.key_rows}
    out.sessions += [_key_of(r) for r in orphan_sessions if r.get("keyDid") in key_dids]
    out.slots = [_key_of(r) for r in slot_rows if str(r["pk"]).split("#")[1] in key_dids]
    for start in range(0, len(out.abandoned), IN_LIST_MAX):
        chunk = out.abandoned[start : start + IN_LIST_MAX]
        names = [f":o{i}" for i in range(len(chunk))]
        values = {name: {"S": v} for name, v in zip(names, chunk, strict=True)}
        values[":session"] = {"S": SESSION_PREFIX}
        rows = _scan(
            table, f"begins_with(pk, :session) AND vaultId IN ({', '.join(names)})", values
        )
        out.sessions += [_key_of(r) for r in rows]
    out.key_rows.sort(key=lambda r: (r.get("retiredAt") is None, r.get("retiredAt") or 0))
    return out


def _scan(table: Table, filter_expression: str, values: dict[str, Any]) -> Iterator[Item]:
    return bulk.scan(
        table,
        ConsistentRead=True,
        FilterExpression=filter_expression,
        ExpressionAttributeValues=values,
        ProjectionExpression="pk, sk, vaultId, keyDid, abandonedFor, retiredAt",
    )


def _partition(table: Table, vault_id: str) -> Iterator[Item]:
    return bulk.partition(table, vault_id)


def _delete_partition(table: Table, vault_id: str, removed: Counter[str], keep_meta: bool) -> None:
    """Delete the partition's rows (the head row too unless keep_meta), page by page."""
    for _ in range(SWEEPS):
        rows = [
            r for r in _partition(table, vault_id) if not (keep_meta and r["sk"] == keys.META_SK)
        ]
        if not rows:
            return
        # The head row goes last: until it is gone, a rerun still finds a locked vault.
        rows.sort(key=lambda r: r["sk"] == keys.META_SK)
        _batch_delete(table, [_key_of(r) for r in rows])
        for row in rows:
            removed[row_kind(row["sk"], bool(row.get("deleted")))] += 1
    raise VaultDataError(
        f"vault {vault_id} kept getting new rows while it was deleted; run the command again."
    )


def _batch_delete(table: Table, row_keys: list[Key]) -> None:
    try:
        bulk.batch_delete(table, row_keys)
    except StorageIncomplete as exc:
        raise VaultDataError(str(exc)) from exc


def _prefix(vault_id: str) -> str:
    return keys.attachment_object_key(vault_id, "")


def _objects(blobs: Blobs, vault_id: str) -> Iterator[dict[str, Any]]:
    """Every object under the vault's prefix (ListObjectsV2, paged)."""
    return bulk.iter_prefix(blobs, _prefix(vault_id))


def _delete_objects(blobs: Blobs, vault_id: str) -> tuple[int, int]:
    """Delete every object under the vault's prefix; (count, bytes) removed."""
    count = size = 0
    for _ in range(SWEEPS):
        # Collect first: deleting while paging would shift the listing under the token.
        found = list(_objects(blobs, vault_id))
        if not found:
            return count, size
        try:
            bulk.delete_listed(blobs, found)
        except StorageIncomplete as exc:
            raise VaultDataError(str(exc)) from exc
        count += len(found)
        size += sum(int(o.get("Size") or 0) for o in found)
    raise VaultDataError(
        f"objects kept appearing under {_prefix(vault_id)}; run the command again."
    )
