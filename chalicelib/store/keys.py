"""Single-table key helpers; the design is in docs/TABLE_DESIGN.md."""

from __future__ import annotations

import hashlib

META_SK = "META"
KEY_PREFIX = "KEY#"
SESSION_PREFIX = "SESSION#"
BATCH_PREFIX = "BATCH#"


def key_pk(key_did: str) -> dict[str, dict[str, str]]:
    """Key of the keyDid → vaultId pointer."""
    return {"pk": {"S": f"{KEY_PREFIX}{key_did}"}, "sk": {"S": "KEY"}}


def vault_pk(vault_id: str) -> str:
    """Partition of everything a vault owns."""
    return f"VAULT#{vault_id}"


def meta_key(vault_id: str) -> dict[str, dict[str, str]]:
    """Key of the vault head row (watermark, salt, counts)."""
    return {"pk": {"S": vault_pk(vault_id)}, "sk": {"S": META_SK}}


def item_sk(item_id: str) -> str:
    return f"ITEM#{item_id}"


def item_key(vault_id: str, item_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": vault_pk(vault_id)}, "sk": {"S": item_sk(item_id)}}


def batch_prefix(replica_id: str, batch_id: str) -> str:
    return f"{BATCH_PREFIX}{replica_id}#{batch_id}#"


def batch_chunk_sk(replica_id: str, batch_id: str, chunk: int) -> str:
    return f"{batch_prefix(replica_id, batch_id)}{chunk:04d}"


def device_sk(replica_id: str) -> str:
    return f"DEVICE#{replica_id}"


def device_key(vault_id: str, replica_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": vault_pk(vault_id)}, "sk": {"S": device_sk(replica_id)}}


def attachment_sk(attachment_id: str) -> str:
    return f"ATT#{attachment_id}"


def attachment_key(vault_id: str, attachment_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": vault_pk(vault_id)}, "sk": {"S": attachment_sk(attachment_id)}}


def reservation_sk(attachment_id: str) -> str:
    """An upload's quota reservation (PROTOCOL.md §6): one per attachment id, no TTL."""
    return f"RES#{attachment_id}"


def reservation_key(vault_id: str, attachment_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": vault_pk(vault_id)}, "sk": {"S": reservation_sk(attachment_id)}}


def attachment_object_key(vault_id: str, attachment_id: str) -> str:
    """S3 object key: under a per-vault prefix (the stable vaultId survives rotation)."""
    return f"vaults/{vault_id}/{attachment_id}"


def subscription_sk(subscription_id: str) -> str:
    return f"ENT#SUB#{subscription_id}"


PROMO_ENTITLEMENT_SK = "ENT#PROMO"
ENTITLEMENT_PREFIX = "ENT#"


def promo_use_sk(code_hash: str) -> str:
    return f"PROMOUSE#{code_hash}"


def promo_key(code_hash: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"PROMO#{code_hash}"}, "sk": {"S": "PROMO"}}


def promo_use_key(vault_id: str, code_hash: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": vault_pk(vault_id)}, "sk": {"S": promo_use_sk(code_hash)}}


def entitlement_key(vault_id: str, sk: str) -> dict[str, dict[str, str]]:
    """Key of an entitlement row (`subscription_sk(...)` or `PROMO_ENTITLEMENT_SK`)."""
    return {"pk": {"S": vault_pk(vault_id)}, "sk": {"S": sk}}


PROMO_INDEX_PK = "PROMOS"


def promo_index_key(code_hash: str) -> dict[str, dict[str, str]]:
    """Operator listing of promo codes: one small partition, read only by the admin command."""
    return {"pk": {"S": PROMO_INDEX_PK}, "sk": {"S": f"PROMO#{code_hash}"}}


def nonce_key(nonce: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"NONCE#{nonce}"}, "sk": {"S": "NONCE"}}


CHALLENGES_PREFIX = "CHALLENGE#"
SESSION_SLOTS_PREFIX = "SESSIONS#"


def challenges_pk(key_did: str) -> str:
    """Partition of one keyDid's outstanding challenge nonces (≤ 10 slot rows)."""
    return f"{CHALLENGES_PREFIX}{key_did}"


def challenge_slot_key(key_did: str, slot: int) -> dict[str, dict[str, str]]:
    return {"pk": {"S": challenges_pk(key_did)}, "sk": {"S": f"SLOT#{slot:02d}"}}


def session_slots_pk(key_did: str, replica_id: str) -> str:
    """Partition of one (keyDid, replica)'s live sessions (≤ 10 slot rows)."""
    return f"{SESSION_SLOTS_PREFIX}{key_did}#{replica_id}"


def session_slot_key(key_did: str, replica_id: str, slot: int) -> dict[str, dict[str, str]]:
    return {"pk": {"S": session_slots_pk(key_did, replica_id)}, "sk": {"S": f"SLOT#{slot:02d}"}}


def session_key(token_hash: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"{SESSION_PREFIX}{token_hash}"}, "sk": {"S": "SESSION"}}


# The purge index (GSI `byPurge`, docs/TABLE_DESIGN.md): one overloaded sparse index holding
# (a) a mark on each vault head with tombstones not yet purged, partitioned into shards and
# sorted by the day the oldest of them is due, and (b) each tombstone row, partitioned by
# vault and sorted by version. Rows without these attributes (live items, everything else)
# are not in the index, so the daily job reads only what it has to remove.
PURGE_INDEX = "byPurge"
PURGE_PK = "purgePk"
PURGE_SK = "purgeSk"
PURGE_SHARDS = 16


def purge_shard(vault_id: str) -> int:
    """The shard a vault's purge mark lives in (stable: a hash of the vault id)."""
    return int.from_bytes(hashlib.sha256(vault_id.encode()).digest()[:4], "big") % PURGE_SHARDS


def purge_due_pk(shard: int) -> str:
    """Index partition of the marks of one shard's vaults (sort key: when they are due)."""
    return f"PURGEDUE#{shard:02d}"


def tombstones_pk(vault_id: str) -> str:
    """Index partition of one vault's tombstones (sort key: version)."""
    return f"TOMBS#{vault_id}"


def vault_id_of(pk: str) -> str:
    """The vault id of a `VAULT#<v>` partition key."""
    return pk.split("#", 1)[1]


def plain(key: dict[str, dict[str, str]]) -> dict[str, str]:
    """A typed key as plain attributes (to spread into an item)."""
    return {name: value["S"] for name, value in key.items()}


# Live notifications (PROTOCOL.md §10): tickets, and each open WebSocket connection as two
# rows, one in the vault's live partition (what a fan-out Queries) and one under its own id
# (what $disconnect, which only knows the connection id, deletes first).
LIVE_PREFIX = "LIVE#"
LIVE_CONNECTION_PREFIX = "CONN#"


def ticket_key(ticket_hash: str) -> dict[str, dict[str, str]]:
    """A live ticket, stored under the SHA-256 of the ticket, never the ticket."""
    return {"pk": {"S": f"TICKET#{ticket_hash}"}, "sk": {"S": "TICKET"}}


def live_pk(vault_id: str) -> str:
    """Partition of a vault's open connections (one small row each)."""
    return f"{LIVE_PREFIX}{vault_id}"


def live_connection_key(vault_id: str, connection_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": live_pk(vault_id)}, "sk": {"S": f"{LIVE_CONNECTION_PREFIX}{connection_id}"}}


def connection_key(connection_id: str) -> dict[str, dict[str, str]]:
    """A connection's own row: which vault's partition holds it."""
    return {"pk": {"S": f"WSCONN#{connection_id}"}, "sk": {"S": "WSCONN"}}
