"""Push chunk records (`VAULT#<v>` / `BATCH#<replica>#<batch>#<chunk>`): exactly-once batches.

One record per committed chunk holds only ids and versions (§5), lives 48 h (TTL), and is
written in the chunk's own transaction, so a retry finds exactly the chunks that committed.
"""

from __future__ import annotations

from typing import Any

from chalicelib.store import keys
from chalicelib.store.table import Item, Table, to_av, to_item
from chalicelib.store.txn import Transaction

CHUNK = "chunk"  # the action name of a chunk record in its transaction


def first_chunk(table: Table, vault_id: str, replica_id: str, batch_id: str) -> Item | None:
    """Chunk 0's record (strongly consistent GetItem): absent for a batch never committed."""
    key = {
        "pk": {"S": keys.vault_pk(vault_id)},
        "sk": {"S": keys.batch_chunk_sk(replica_id, batch_id, 0)},
    }
    return table.get(key)


def chunks(table: Table, vault_id: str, replica_id: str, batch_id: str) -> list[Item]:
    """Every record of a batch, in sk order (strongly consistent Query of its prefix)."""
    rows = table.query_all(
        "pk = :pk AND begins_with(sk, :prefix)",
        {":pk": keys.vault_pk(vault_id), ":prefix": keys.batch_prefix(replica_id, batch_id)},
    )
    return sorted(rows, key=lambda r: r["sk"])


def add_chunk(
    txn: Transaction,
    vault_id: str,
    replica_id: str,
    batch_id: str,
    chunk: int,
    fields: dict[str, Any],
    now_ms: int,
    ttl_s: int,
) -> None:
    """Record a chunk, unless a live record of it exists (a concurrent attempt committed)."""
    record = {
        "pk": keys.vault_pk(vault_id),
        "sk": keys.batch_chunk_sk(replica_id, batch_id, chunk),
        **fields,
        "committedAt": now_ms,
        "ttl": now_ms // 1000 + ttl_s,
    }
    txn.add(
        CHUNK,
        {
            "Put": {
                "Item": to_item(record),
                "ConditionExpression": "attribute_not_exists(pk) OR #ttl < :nows",
                "ExpressionAttributeNames": {"#ttl": "ttl"},
                "ExpressionAttributeValues": {":nows": to_av(now_ms // 1000)},
            }
        },
    )
