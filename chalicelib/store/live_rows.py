"""Live notifications (PROTOCOL.md §10): ticket rows, connection rows, the management API.

Table design (docs/TABLE_DESIGN.md):
- `TICKET#<sha256(ticket)>` / `TICKET` → vaultId, replicaId, keyDid, expiresAt, ttl: put once,
  consumed by a DeleteItem returning the old row (exactly one $connect gets it).
- `LIVE#<vaultId>` / `CONN#<connectionId>` → replicaId, connectedAt, ttl (2 h, API Gateway's
  limit on a connection): what a fan-out reads, one strongly consistent Query.
- `WSCONN#<connectionId>` / `WSCONN` → vaultId, ttl: $disconnect knows only the connection id.

The management API (`apigatewaymanagementapi`) is the other half of a connection's store:
posting a frame, closing a connection. Its client is built lazily per endpoint URL.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.store import keys
from chalicelib.store.table import Item, Table, error_code

_MANAGEMENT: dict[tuple[str, str], Any] = {}
# A notification is a hint: a slow endpoint must not hold a push for long, and nothing retries.
_MANAGEMENT_CONFIG = Config(
    retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1, read_timeout=2
)


def put_ticket(table: Table, ticket_hash: str, fields: dict[str, Any]) -> None:
    """A new ticket row (its hash is new: a clash would be a 2^-256 event)."""
    table.put({**keys.plain(keys.ticket_key(ticket_hash)), **fields})


def spend_ticket(table: Table, ticket_hash: str) -> Item | None:
    """Consume a ticket; None when it is unknown or used (one DeleteItem, ALL_OLD)."""
    return table.delete(keys.ticket_key(ticket_hash), return_old=True)


def vault_state(table: Table, vault_id: str, replica_id: str) -> tuple[Item | None, Item | None]:
    """(vault head, device row), strongly consistent, in one BatchGetItem."""
    rows = table.batch_get([keys.meta_key(vault_id), keys.device_key(vault_id, replica_id)])
    by_sk = {row["sk"]: row for row in rows}
    return by_sk.get(keys.META_SK), by_sk.get(keys.device_sk(replica_id))


def add_connection(
    table: Table, vault_id: str, connection_id: str, replica_id: str, now: int, ttl: int
) -> None:
    """Two PutItems: the connection in its vault's partition, and its own pointer row."""
    vault_row = keys.plain(keys.live_connection_key(vault_id, connection_id))
    table.put(
        {**vault_row, "connectionId": connection_id, "replicaId": replica_id, "at": now, "ttl": ttl}
    )
    own = keys.plain(keys.connection_key(connection_id))
    table.put({**own, "vaultId": vault_id, "ttl": ttl})


def connections(table: Table, vault_id: str) -> list[Item]:
    """The vault's open connections: one strongly consistent Query (small rows, one page)."""
    return list(table.query_all("pk = :pk", {":pk": keys.live_pk(vault_id)}))


def drop_connection(table: Table, vault_id: str, connection_id: str) -> None:
    """Delete both rows of a connection (idempotent)."""
    table.delete(keys.live_connection_key(vault_id, connection_id))
    table.delete(keys.connection_key(connection_id))


def drop_connection_by_id(table: Table, connection_id: str) -> None:
    """$disconnect: find the vault from the pointer row it deletes, then the vault's row."""
    own = table.delete(keys.connection_key(connection_id), return_old=True)
    if own is not None:
        table.delete(keys.live_connection_key(str(own["vaultId"]), connection_id))


def management_client(endpoint_url: str, region: str) -> Any:
    """The cached management API client of a WebSocket API stage."""
    found = _MANAGEMENT.get((endpoint_url, region))
    if found is None:
        make: Any = boto3.client
        found = make(
            "apigatewaymanagementapi",
            endpoint_url=endpoint_url,
            region_name=region,
            config=_MANAGEMENT_CONFIG,
        )
        _MANAGEMENT[(endpoint_url, region)] = found
    return found


class Gone(Exception):
    """The connection is closed already (GoneException)."""


class PostFailed(Exception):
    """The management API did not take the frame (throttled, unreachable, ...)."""


def post(management: Any, connection_id: str, data: bytes) -> None:
    """Send one frame; Gone when the connection is closed, PostFailed for anything else."""
    try:
        management.post_to_connection(ConnectionId=connection_id, Data=data)
    except ClientError as exc:
        if error_code(exc) == "GoneException":
            raise Gone(connection_id) from exc
        raise PostFailed(error_code(exc)) from exc
    except BotoCoreError as exc:
        raise PostFailed(type(exc).__name__) from exc


def close(management: Any, connection_id: str) -> None:
    """Close a connection (a closed one is fine)."""
    try:
        management.delete_connection(ConnectionId=connection_id)
    except ClientError as exc:
        if error_code(exc) != "GoneException":
            raise PostFailed(error_code(exc)) from exc
    except BotoCoreError as exc:
        raise PostFailed(type(exc).__name__) from exc
