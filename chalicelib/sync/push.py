"""Push (PROTOCOL.md §5): per-item optimistic concurrency, exactly-once batches.

One `TransactWriteItems` per chunk commits, atomically: the vault head (sequence advanced,
counts adjusted, conditional on the head we read — so commit order is version order), the
writer's device row (conditional on not revoked), the chunk's idempotency record, and the
accepted items (each conditional on its baseVersion). A crash between chunks leaves whole
chunks; a retry finds their records and resumes after the last one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from chalicelib.clock import DAY_MS, now_ms
from chalicelib.entitlements import require_premium
from chalicelib.errors import ApiError, ErrorCode, echo, unavailable
from chalicelib.identity import Principal, add_session_guards, session_ended
from chalicelib.settings import Settings
from chalicelib.shared.limits import MAX_PAGE_CIPHERTEXT_CHARS
from chalicelib.shared.models.sync import PushItem, PushRequest
from chalicelib.store import batch_records, device_rows, item_rows, vault_heads
from chalicelib.store.batch_records import CHUNK
from chalicelib.store.table import Item, Table
from chalicelib.store.txn import Cancelled, Transaction
from chalicelib.store.vault_heads import SEQ
from chalicelib.sync.items import wire_item

MAX_ACTIONS = 100
FIXED_ACTIONS = 4  # head, device, chunk record, session check
TXN_BYTE_BUDGET = 3_500_000  # under DynamoDB's 4 MB per transaction, with room for keys
ITEM_OVERHEAD = 400  # keys, attribute names, condition values per action
BATCH_TTL_S = 48 * 3600  # ≥ 24 h of idempotency, as promised
MAX_COMMIT_ATTEMPTS = 25


def request_hash(req: PushRequest) -> str:
    """Hash of the parsed items: whitespace and key order do not matter."""
    canonical = json.dumps(
        [i.model_dump() for i in req.items], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_duplicates(req: PushRequest) -> None:
    seen: set[str] = set()
    for item in req.items:
        if item.id in seen:
            raise ApiError(
                ErrorCode.DUPLICATE_ITEM, f"Item {echo(item.id)} appears twice in this push."
            )
        seen.add(item.id)


@dataclass
class _Batch:
    """What is known about a batch while it is being committed."""

    vault_id: str
    replica_id: str
    key_did: str
    batch_id: str
    req_hash: str
    items: list[PushItem]
    principal: Principal
    results: list[dict[str, Any]] = field(default_factory=list)
    retention_ms: int = 0
    chunks: int = 0
    watermark: int = 0


def push(
    table: Table, settings: Settings, principal: Principal, req: PushRequest
) -> dict[str, Any]:
    """Apply a batch; a replayed batchId returns the first answer and writes nothing."""
    check_duplicates(req)
    vault_id, meta = principal.require_vault()
    batch = _Batch(
        vault_id,
        principal.replica_id,
        principal.key_did,
        req.batchId,
        request_hash(req),
        list(req.items),
        principal,
        retention_ms=settings.tombstone_retention_days * DAY_MS,
    )
    if _first_chunk_committed(table, batch):
        _load_committed(table, batch)
    if len(batch.results) < len(batch.items):
        # Premium gates new writes; a replay of a batch that already committed still gets
        # its answer (the client must learn what was accepted).
        require_premium(meta, settings)
    head = int(meta["seq"])
    while len(batch.results) < len(batch.items):
        head = _commit_next_chunk(table, batch, head)
    return {"watermark": batch.watermark, "results": _within_response_budget(batch.results)}


def _within_response_budget(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep a push response under Lambda's 6 MB: past 4 MiB of conflicting ciphertext, a
    conflict's `current` comes without its ciphertext (a live item with `ciphertext: null`
    means "pull to get it"). Deterministic, so a replay answers the same."""
    budget = MAX_PAGE_CIPHERTEXT_CHARS
    out = []
    for result in results:
        current = result.get("current")
        text = current.get("ciphertext") if current else None
        if current and text:
            if len(text) > budget:
                result = {**result, "current": {**current, "ciphertext": None}}
            else:
                budget -= len(text)
        out.append(result)
    return out


def _first_chunk_committed(table: Table, batch: _Batch) -> bool:
    """Chunks commit in order, so a batch with no chunk 0 has nothing committed: one GetItem
    answers the common case (a new batch) without a Query over the batch's records."""
    row = batch_records.first_chunk(table, batch.vault_id, batch.replica_id, batch.batch_id)
    return row is not None and int(row.get("ttl", 0)) > now_ms() // 1000


def _load_committed(table: Table, batch: _Batch) -> None:
    """Read the chunk records a previous attempt of this batch committed (strongly consistent).

    A record holds only ids and versions. A conflict is answered with the item's *current*
    row (v1.2 §5), read now: the server keeps no ciphertext copies for replays.
    """
    rows = batch_records.chunks(table, batch.vault_id, batch.replica_id, batch.batch_id)
    now_s = now_ms() // 1000
    live = [r for r in rows if int(r.get("ttl", now_s + 1)) > now_s]  # TTL deletes late
    # "#C#" rows are v1.1 conflict snapshots (48 h TTL); they are no longer read.
    chunk_rows = [r for r in live if "#C#" not in r["sk"]]
    batch.results, batch.chunks = [], 0
    for row in chunk_rows:
        if row["reqHash"] != batch.req_hash:
            raise ApiError(ErrorCode.BATCH_MISMATCH, "This batchId was used for different items.")
        if int(row["start"]) != len(batch.results):
            break  # chunks are committed in order; anything else is not ours to trust
        for entry in json.loads(row["results"]):
            if "v" in entry:
                batch.results.append(
                    {"id": entry["i"], "status": "accepted", "version": entry["v"]}
                )
            else:
                batch.results.append({"id": entry["i"], "status": "conflict", "current": None})
        batch.chunks += 1
        batch.watermark = int(row["watermark"])
    _current_for_conflicts(table, batch)


def _current_for_conflicts(table: Table, batch: _Batch) -> None:
    """Fill each replayed conflict's `current` from the item's row as it is now."""
    conflicts = [r for r in batch.results if r["status"] == "conflict"]
    rows = item_rows.get_many(table, batch.vault_id, [r["id"] for r in conflicts])
    for result in conflicts:
        row = rows.get(result["id"])
        result["current"] = wire_item(row) if row is not None else None


def _commit_next_chunk(table: Table, batch: _Batch, head: int) -> int:
    """Commit the next chunk; returns the head after it. Retries until it or a replay lands."""
    start = len(batch.results)
    candidates = batch.items[start : start + MAX_ACTIONS - FIXED_ACTIONS]
    # Items written before (baseVersion > 0) are read first: the counts need their old state
    # and a conflict needs their current row. New items (baseVersion 0) are written blind with
    # attribute_not_exists; a clash shows up as a cancelled action.
    known: dict[str, Item | None] = {}
    need_read = any(i.baseVersion > 0 for i in candidates)
    for _attempt in range(MAX_COMMIT_ATTEMPTS):
        if need_read:
            head = _read_state(table, batch, candidates, known)
            need_read = False
        plan = _plan(batch, candidates, known, head)
        try:
            plan.txn.commit(table)
        except Cancelled as cancelled:
            outcome = _on_cancel(table, batch, cancelled, known)
            if outcome == "resume":
                return head  # a concurrent attempt of this batch committed the chunk
            need_read = outcome == "reread"
            continue
        batch.results.extend(plan.results)
        batch.chunks += 1
        batch.watermark = plan.new_head
        return plan.new_head
    raise unavailable()


def _read_state(
    table: Table, batch: _Batch, candidates: list[PushItem], known: dict[str, Item | None]
) -> int:
    """One strongly consistent BatchGetItem: the head and the rows of previously seen items."""
    wanted = [i.id for i in candidates if i.baseVersion > 0 or i.id in known]
    meta, rows = item_rows.get_with_head(table, batch.vault_id, wanted)
    known.clear()
    for item_id in wanted:
        known[item_id] = rows.get(item_id)
    if meta is None:
        raise ApiError(ErrorCode.VAULT_NOT_FOUND, "No vault is registered for this Key DID.")
    if meta.get("keyDid") != batch.key_did:
        raise ApiError(ErrorCode.UNAUTHORIZED, "The session ended; sign in again.")
    return int(meta["seq"])


ITEM = "item:"  # action names of item writes: ITEM + item id


@dataclass
class _Plan:
    txn: Transaction
    results: list[dict[str, Any]]
    new_head: int


def _accepts(item: PushItem, known: dict[str, Item | None]) -> bool:
    if item.id not in known:
        return item.baseVersion == 0  # not read: blind write, new items only
    row = known[item.id]
    stored = int(row["ver"]) if row is not None else 0
    return stored == item.baseVersion


def _plan(
    batch: _Batch, candidates: list[PushItem], known: dict[str, Item | None], head: int
) -> _Plan:
    now = now_ms()
    results: list[dict[str, Any]] = []
    compact: list[dict[str, Any]] = []
    item_puts: list[tuple[str, dict[str, Any], int]] = []
    budget = TXN_BYTE_BUDGET
    version = head
    d_items = d_tombs = 0
    wrote_tombstone = False
    for item in candidates:
        accept = _accepts(item, known)
        row = known.get(item.id)
        size = ITEM_OVERHEAD + len(item.id)
        if accept and item.ciphertext:
            size += len(item.ciphertext) * 3 // 4
        if results and (size > budget or len(item_puts) + FIXED_ACTIONS >= MAX_ACTIONS):
            break
        budget -= size
        if accept:
            version += 1
            old_live = row is not None and not row.get("deleted")
            old_tomb = row is not None and bool(row.get("deleted"))
            d_items += (0 if item.deleted else 1) - (1 if old_live else 0)
            d_tombs += (1 if item.deleted else 0) - (1 if old_tomb else 0)
            wrote_tombstone = wrote_tombstone or item.deleted
            row = item_rows.item_row(
                batch.vault_id,
                item.id,
                version,
                item.deleted,
                item.ciphertext,
                batch.replica_id,
                now,
            )
            item_puts.append((ITEM + item.id, row, item.baseVersion))
            results.append({"id": item.id, "status": "accepted", "version": version})
            compact.append({"i": item.id, "v": version})
            continue
        # A conflict writes nothing but its entry in the chunk record (v1.2 §5).
        current = wire_item(row) if row is not None else None
        results.append({"id": item.id, "status": "conflict", "current": current})
        compact.append({"i": item.id})
    new_head = version
    chunk_record = {
        "reqHash": batch.req_hash,
        "start": len(batch.results),
        "count": len(results),
        "results": json.dumps(compact, separators=(",", ":")),
        "watermark": new_head,
    }
    txn = Transaction()
    # The session's checks are part of the commit (§3): the head's keyDid (on "seq"), the writer's
    # device row, and the session row itself (a logout or revoke in flight wins or loses
    # as a whole). Cancellations are decided by these names, never by position.
    vault_heads.add_advance(
        txn,
        batch.vault_id,
        head=head,
        new_head=new_head,
        key_did=batch.key_did,
        d_items=d_items,
        d_tombstones=d_tombs,
        # The purge index learns when this vault's oldest tombstone is due (retention.py).
        purge_due_ms=now + batch.retention_ms if wrote_tombstone else None,
    )
    device_rows.add_pushed(txn, batch.vault_id, batch.replica_id, now)
    batch_records.add_chunk(
        txn,
        batch.vault_id,
        batch.replica_id,
        batch.batch_id,
        batch.chunks,
        chunk_record,
        now,
        BATCH_TTL_S,
    )
    add_session_guards(txn, batch.principal, head=False, caller_device=False)
    for name, row, base_version in item_puts:
        item_rows.add_write(txn, name, row, base_version)
    return _Plan(txn, results, new_head)


def _on_cancel(
    table: Table, batch: _Batch, cancelled: Cancelled, known: dict[str, Item | None]
) -> str:
    """Decide what a cancelled chunk means: 'retry', 'reread' or 'resume'."""
    failed = cancelled.failed
    if not failed:
        # TransactionConflict with another writer, or no reasons at all: read again and retry.
        return "reread"
    ended = session_ended(cancelled)  # "caller" (device revoked) or "session" (ended)
    if ended is not None:
        raise ended from cancelled
    if CHUNK in failed:
        _load_committed(table, batch)  # the same batch committed this chunk concurrently
        return "resume"
    clashes = [name.removeprefix(ITEM) for name in failed if name.startswith(ITEM)]
    for item_id in clashes:
        known[item_id] = cancelled.old.get(ITEM + item_id)
    if SEQ in failed or any(cancelled.old.get(ITEM + i) is None for i in clashes):
        for item_id in clashes:
            known.setdefault(item_id, None)
        return "reread"  # the head moved, or we need the clashing rows: read them consistently
    return "retry"
