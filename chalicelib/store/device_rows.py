"""Device rows (`VAULT#<v>` / `DEVICE#<replica>`): enrolment, timestamps, revocation.

A revoked device keeps its row (with revokedAt) so it can never sign in again; every write
on behalf of a device is conditional on that row existing and not being revoked.
"""

from __future__ import annotations

from typing import Any

from chalicelib.store import keys
from chalicelib.store.errors import ConditionFailed
from chalicelib.store.lifetimes import keep_alive
from chalicelib.store.table import Item, Table, to_av, to_item
from chalicelib.store.txn import Transaction

CALLER = "caller"  # the action name of the calling device's row
DEVICE = "device"  # the action name of a device being enrolled
NOT_REVOKED = "attribute_exists(pk) AND attribute_not_exists(revokedAt)"


def get(table: Table, vault_id: str, replica_id: str) -> Item | None:
    """The device row, strongly consistent."""
    return table.get(keys.device_key(vault_id, replica_id))


def add_enrol(
    txn: Transaction,
    vault_id: str,
    replica_id: str,
    name: str | None,
    now: int,
    ttl: int | None,
) -> None:
    """A new device row, if the replica has none (a revoked one included)."""
    row: dict[str, Any] = {
        "pk": keys.vault_pk(vault_id),
        "sk": keys.device_sk(replica_id),
        "replicaId": replica_id,
        "name": name,
        "enrolledAt": now,
        "lastSeenAt": now,
        "ttl": ttl,
    }
    txn.add(
        DEVICE,
        {"Put": {"Item": to_item(row), "ConditionExpression": "attribute_not_exists(pk)"}},
    )


def add_pushed(txn: Transaction, vault_id: str, replica_id: str, now: int) -> None:
    """Record a push by the calling device, if it is still enrolled and not revoked."""
    txn.add(
        CALLER,
        {
            "Update": {
                "Key": keys.device_key(vault_id, replica_id),
                "UpdateExpression": "SET lastPushAt = :now, lastSeenAt = :now",
                "ConditionExpression": NOT_REVOKED,
                "ExpressionAttributeValues": {":now": to_av(now)},
            }
        },
    )


def add_not_revoked_check(txn: Transaction, vault_id: str, replica_id: str) -> None:
    """Check (no write) that the calling device is enrolled and not revoked."""
    txn.add(
        CALLER,
        {
            "ConditionCheck": {
                "Key": keys.device_key(vault_id, replica_id),
                "ConditionExpression": NOT_REVOKED,
            }
        },
    )


def touch(table: Table, vault_id: str, replica_id: str, fields: dict[str, int]) -> None:
    """Refresh device timestamps (best effort: a revoked or deleted device is left alone)."""
    try:
        table.update(
            keys.device_key(vault_id, replica_id),
            "SET " + ", ".join(f"#{k} = :{k}" for k in fields),
            condition=NOT_REVOKED,
            names={f"#{k}": k for k in fields},
            values={f":{k}": v for k, v in fields.items()},
        )
    except ConditionFailed:
        pass


def all_of(table: Table, vault_id: str) -> list[Item]:
    """Every device row of a vault, revoked ones included (strongly consistent Query)."""
    return list(
        table.query_all(
            "pk = :pk AND begins_with(sk, :prefix)",
            {":pk": keys.vault_pk(vault_id), ":prefix": keys.device_sk("")},
        )
    )


def add_rename(
    txn: Transaction, vault_id: str, replica_id: str, name: str, *, not_revoked: bool
) -> None:
    """Set a device's name, if the device exists (and, with not_revoked, is not revoked);
    without attribute_exists an UpdateItem would create a half-row for an unknown id."""
    txn.add(
        DEVICE,
        {
            "Update": {
                "Key": keys.device_key(vault_id, replica_id),
                "UpdateExpression": "SET #name = :name",
                "ConditionExpression": NOT_REVOKED if not_revoked else "attribute_exists(pk)",
                "ExpressionAttributeNames": {"#name": "name"},
                "ExpressionAttributeValues": {":name": to_av(name)},
            }
        },
    )


def add_revoke(txn: Transaction, vault_id: str, replica_id: str, now: int) -> None:
    """Revoke a device once (a revoked or unknown one cancels the transaction)."""
    txn.add(
        DEVICE,
        {
            "Update": {
                "Key": keys.device_key(vault_id, replica_id),
                "UpdateExpression": "SET revokedAt = :now",
                "ConditionExpression": NOT_REVOKED,
                "ExpressionAttributeValues": {":now": to_av(now)},
            }
        },
    )


def add_keep(
    txn: Transaction, name: str, vault_id: str, replica_id: str, now: int, *, not_revoked: bool
) -> None:
    """End a pre-registration device row's 24 h lifetime, if it has not passed."""
    txn.add(name, keep_alive(keys.device_key(vault_id, replica_id), now, not_revoked=not_revoked))
