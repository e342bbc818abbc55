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


ORPHAN = "orphan"  # the abandoned vault's head in a rotation


def add_rotate(
    txn: Transaction,
    vault_id: str,
    *,
    old_key: str,
    new_key: str,
    now: int,
    verifier: str | None,
    public_keys: Any,
    kdf_iterations: int | None,
) -> None:
    """Move a registered vault from `old_key` to `new_key` with its new public material; the
    KDF iterations can only stay or go up, even against a concurrent change."""
    sets = ["keyDid = :new", "rotatedAt = :now"]
    values: dict[str, Any] = {":new": new_key, ":old": old_key, ":now": now}
    condition = "keyDid = :old AND attribute_exists(saltHex)"
    _set_public_material(sets, values, verifier, public_keys)
    if kdf_iterations is not None:
        sets.append("kdfIterations = :it")
        values[":it"] = kdf_iterations
        condition += " AND (attribute_not_exists(kdfIterations) OR kdfIterations <= :it)"
    txn.add(
        HEAD,
        {
            "Update": {
                "Key": keys.meta_key(vault_id),
                "UpdateExpression": "SET " + ", ".join(sets),
                "ConditionExpression": condition,
                "ExpressionAttributeValues": {k: to_av(v) for k, v in values.items()},
            }
        },
    )


def add_abandon(txn: Transaction, orphan_vault: str, key_did: str, for_vault: str) -> None:
    """Take `key_did` away from an unregistered vault (abandoned for `for_vault`): stronger
    than a check, it also ends that key's sessions on the abandoned vault."""
    txn.add(
        ORPHAN,
        {
            "Update": {
                "Key": keys.meta_key(orphan_vault),
                "UpdateExpression": "REMOVE keyDid SET abandonedFor = :v",
                "ConditionExpression": "attribute_not_exists(saltHex) AND keyDid = :new",
                "ExpressionAttributeValues": {":v": to_av(for_vault), ":new": to_av(key_did)},
            }
        },
    )


def add_device_revoked(txn: Transaction, vault_id: str, key_did: str) -> None:
    """Count one device fewer, if the vault still answers to `key_did`."""
    txn.add(
        HEAD,
        {
            "Update": {
                "Key": keys.meta_key(vault_id),
                "UpdateExpression": "ADD nDevices :minus",
                "ConditionExpression": "keyDid = :key",
                "ExpressionAttributeValues": {":minus": to_av(-1), ":key": to_av(key_did)},
            }
        },
    )


REGISTER = "meta"  # the head's action name in a registration


def add_register(
    txn: Transaction,
    vault_id: str,
    *,
    key_did: str,
    salt_hex: str,
    kdf_algorithm: str,
    kdf_iterations: int,
    iterations_given: bool,
    verifier: str | None,
    public_keys: Any,
    proven: bool,
    now: int,
) -> None:
    """Register (or re-register) a vault: one conditional write decides a first registration
    or the same salt (and kdf when given) again; the keyDid check stops a write racing a
    rotation. Without a proof, verifier and public keys can be set once, never changed.

    A first registration ends the 24 h lifetime of the head (§3), and fails if that
    lifetime is over already (DynamoDB deletes expired rows late).
    """
    sets = [
        "registeredAt = if_not_exists(registeredAt, :now)",
        "saltHex = :salt",
        "kdfAlgorithm = if_not_exists(kdfAlgorithm, :alg)",
        "kdfIterations = if_not_exists(kdfIterations, :it)",
    ]
    values: dict[str, Any] = {
        ":now": now,
        ":salt": salt_hex,
        ":alg": kdf_algorithm,
        ":it": kdf_iterations,
        ":key": key_did,
        ":nows": now // 1000,
    }
    _set_public_material(sets, values, verifier, public_keys)
    condition = "keyDid = :key AND (attribute_not_exists(saltHex) OR saltHex = :salt)"
    if iterations_given:
        condition += " AND (attribute_not_exists(kdfIterations) OR kdfIterations = :it)"
    if not proven and verifier is not None:
        condition += " AND (attribute_not_exists(registeredAt) OR verifier = :verifier)"
    if not proven and public_keys is not None:
        condition += " AND (attribute_not_exists(registeredAt) OR publicKeys = :pk)"
    condition += " AND (attribute_not_exists(#ttl) OR #ttl > :nows)"
    txn.add(
        REGISTER,
        {
            "Update": {
                "Key": keys.meta_key(vault_id),
                "UpdateExpression": "SET " + ", ".join(sets) + " REMOVE #ttl",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#ttl": "ttl"},
                "ExpressionAttributeValues": {k: to_av(v) for k, v in values.items()},
            }
        },
    )


def _set_public_material(
    sets: list[str], values: dict[str, Any], verifier: str | None, public_keys: Any
) -> None:
    """SET the verifier and public keys that are given (`:verifier`, `:pk`)."""
    if verifier is not None:
        sets.append("verifier = :verifier")
        values[":verifier"] = verifier
    if public_keys is not None:
        sets.append("publicKeys = :pk")
        values[":pk"] = public_keys
