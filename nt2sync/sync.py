"""Push and pull (PROTOCOL §5–6): dirty items out in batches, server pages merged in.

Every server item is decrypted and checked (tampering, rollback) before anything is
written, and each page or batch result is applied in one local transaction.
"""

from __future__ import annotations

import dataclasses
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

from chalicelib.shared import crypto, merge
from chalicelib.shared.codes import ErrorCode
from nt2sync import keyring, manifests, session
from nt2sync.api import Api
from nt2sync.attachments import upload_attachments
from nt2sync.auth import SYNC_OFF
from nt2sync.errors import ClientError, RollbackRefused, ServerError, TamperedItem
from nt2sync.items import decrypt_row, encrypt, write_local
from nt2sync.pages import check_pull_page
from nt2sync.report import NoProgress, Progress, SyncSummary
from nt2sync.vault import ItemRow

if TYPE_CHECKING:
    from nt2sync.engine import Client

PUSH_BATCH = 500
PULL_LIMIT = 1000
PULL_AHEAD = 2  # pull requests in flight: the next page, and a guess at the one after


def sync_now(client: Client, progress: Progress | None = None) -> SyncSummary:
    """Push, pull, push what the pull produced; upload pending attachments."""
    progress = progress or NoProgress()
    if not client.meta.sync_enabled:
        raise ClientError(SYNC_OFF)
    summary = SyncSummary()
    push(client, summary, progress)
    pull(client, summary, progress)
    if client.vault.count_dirty():
        push(client, summary, progress)
    manifests.publish(client)  # only when this sync gave it something new to attest
    summary.attachments_uploaded = upload_attachments(client, progress)
    client.vault.set_meta(last_sync_at=client.clock())
    summary.notices = client.notices
    return summary


# -- push ----------------------------------------------------------------------------------
def push(client: Client, summary: SyncSummary, progress: Progress) -> None:
    """Push every dirty item, ≤ 500 a batch, each batchId stored before sending."""
    vault = client.vault
    total = vault.count_dirty()
    if total == 0 and vault.pending_batch() is None:
        return
    progress.start("Pushing", total)
    rounds = 0
    skipped: list[tuple[str, int]] = []  # accepted writes the watermark moved past
    try:
        while True:
            rounds += 1
            if rounds > total // PUSH_BATCH + 50:
                raise ClientError("Sync keeps conflicting with another device; try again.")
            pending = vault.pending_batch()
            if pending is None:
                rows = vault.dirty_items(PUSH_BATCH)
                if not rows:
                    manifests.spot_check(client, skipped)  # a few, for the whole push
                    return
                items = [_wire_item(r) for r in rows]
                batch_id = "b-" + uuid.uuid4().hex
                vault.save_pending_batch(batch_id, items, client.clock())
            else:
                batch_id, items = pending
            try:
                response = client.call(partial(Api.push, batch_id=batch_id, items=items))
            except ServerError as exc:
                if exc.code == ErrorCode.BATCH_MISMATCH:  # stale record: rebuild from dirty rows
                    vault.drop_pending_batch(batch_id)
                    continue
                raise
            skipped += _apply_push(client, batch_id, items, response, summary)
            progress.advance(len(items))
    finally:
        progress.stop()


def _wire_item(row: ItemRow) -> dict[str, Any]:
    item: dict[str, Any] = {"id": row.id, "baseVersion": row.version, "deleted": row.deleted}
    if not row.deleted or row.ciphertext is not None:
        item["ciphertext"] = row.ciphertext  # a tombstone's is its sealed deletion record
    return item


def _apply_push(
    client: Client,
    batch_id: str,
    items: list[dict[str, Any]],
    response: dict[str, Any],
    summary: SyncSummary,
) -> list[tuple[str, int]]:
    """Apply one batch's results; returns the accepted writes the watermark moved past."""
    vault = client.vault
    results = response.get("results")
    if not isinstance(results, list) or len(results) != len(items):
        raise ClientError("The server answered a push with the wrong number of results.")
    # When the new head is the old watermark plus exactly our accepted writes, every
    # version in between is ours: there is nothing to pull there (a first `sync enable`
    # does not download what it just uploaded); a few of them are asked for instead, to
    # catch a server that answers "accepted" and drops (manifests.spot_check). Otherwise
    # the next pull must bring them back (manifests.end_pull).
    mark = client.meta.watermark
    ours = sorted(
        int(r["version"])
        for r in results
        if r.get("status") == "accepted" and isinstance(r.get("version"), int)
    )
    head = response.get("watermark")
    skip_to = (
        head
        if ours
        and ours == list(range(mark + 1, mark + len(ours) + 1))
        and (head == mark + len(ours))
        else None
    )
    before = vault.get_items([sent["id"] for sent in items])
    checked: list[dict[str, Any] | None] = []
    currents = [r.get("current") if r.get("status") == "conflict" else None for r in results]
    best = manifests.attested(client, [c["id"] for c in currents if isinstance(c, dict)])
    for sent, current in zip(items, currents, strict=True):
        if current and current.get("deleted"):
            checked.append(_verify_deletion(client, current, before.get(sent["id"])))
        elif current and current.get("ciphertext") is not None:
            checked.append(_verify_remote(client, current, before.get(sent["id"])))
        else:
            checked.append(None)
        opened = checked[-1]
        claim = best.get(sent["id"])
        refusal = (
            manifests.stale(current, opened["revision"], claim) if current and opened else None
        )
        if refusal:
            raise RollbackRefused(f"{refusal} Nothing was changed locally.")
    accepted: list[tuple[str, int, ItemRow | None, str]] = []
    with vault.transaction():
        # read again under the write lock: another process may have edited since
        rows = vault.get_items([sent["id"] for sent in items])
        staged: dict[str, ItemRow] = {}
        for sent, result, plaintext in zip(items, results, checked, strict=True):
            local = rows.get(sent["id"])
            if local is None or result.get("id") != sent["id"]:
                continue
            stored: ItemRow | None = local
            if result.get("status") == "accepted":
                summary.pushed += 1
                local.version = int(result["version"])
                unchanged = local.deleted == sent["deleted"] and local.ciphertext == sent.get(
                    "ciphertext"
                )
                if unchanged:
                    local.dirty = False
                    local.rev_floor = local.revision + (1 if local.deleted else 0)
                accepted.append(
                    (
                        local.id,
                        local.version,
                        local if unchanged else None,
                        sent.get("ciphertext") or "",
                    )
                )
            elif (current := result.get("current")) is None:
                local.version = 0  # the server never had it: push again from 0
            elif not current.get("deleted") and current.get("ciphertext") is None:
                continue  # sent without its ciphertext (large response): the pull brings it
            elif plaintext is None:  # the server's copy is sealed under a retired key
                raise ClientError(keyring.STILL_OLD_KEY.format(id=sent["id"]))
            else:
                stored, conflicts = _apply_remote(client, current, plaintext, local)
                summary.conflicts += conflicts
            if stored is not None:
                rows[stored.id] = staged[stored.id] = stored
        vault.put_items(list(staged.values()))
        manifests.note_accepted(client, accepted, echo=skip_to is None)
        if skip_to is not None:
            vault.set_meta(watermark=skip_to)
        vault.drop_pending_batch(batch_id)
    return [(i, v) for i, v, *_ in accepted] if skip_to is not None else []


# -- pull ----------------------------------------------------------------------------------
def pull(client: Client, summary: SyncSummary, progress: Progress) -> None:
    """Pull pages until hasMore is false; each page is applied in one transaction.

    While a page is verified and applied, the next one is already requested (its `since` is
    this page's watermark, known as soon as the page arrives), and after a full page whose
    versions were all its own items, the one after that too, guessing it is as dense. A page
    fetched ahead is used only if its `since` is exactly the stored watermark, and only after
    the page before it is committed: the watermark still only advances past stored pages
    and a refused page still changes nothing. A wrong guess costs the server one read.
    """
    since = client.meta.watermark
    check = manifests.begin_pull(client)
    resynced = False
    ahead: dict[int, Future[dict[str, Any]]] = {}  # by `since`
    fetcher = ThreadPoolExecutor(max_workers=PULL_AHEAD, thread_name_prefix="nt2sync-pull")
    progress.start("Pulling", None)
    try:
        while True:
            try:
                page = _fetch_page(client, since, ahead.pop(since, None))
            except ServerError as exc:
                if exc.code == ErrorCode.RESYNC_REQUIRED and not resynced:
                    resynced = True
                    since = 0
                    ahead.clear()  # answers to the ranges that were refused
                    client.notices.append("The server asked for a full resync; pulled from 0.")
                    continue
                raise
            items, watermark, more = check_pull_page(page, since, PULL_LIMIT)
            for missed in [at for at in ahead if at < watermark]:
                del ahead[missed]  # a guess this page went past: its answer is never read
            if more:
                wanted = [watermark]
                if watermark - since == len(items) == PULL_LIMIT:
                    wanted.append(watermark + PULL_LIMIT)
                # the requests only: no vault access off the main thread (SQLite's rule)
                api = session.ensure_session(client)
                for at in wanted:
                    if at not in ahead and len(ahead) < PULL_AHEAD:
                        ahead[at] = fetcher.submit(api.pull, since=at, limit=PULL_LIMIT)
            _apply_page(client, items, watermark, summary)
            progress.advance(len(items))
            since = watermark
            if not more:
                manifests.end_pull(client, check, watermark)
                return
    finally:
        fetcher.shutdown(cancel_futures=True)  # waits for requests in flight: none outlives pull
        progress.stop()


def _fetch_page(client: Client, since: int, ahead: Future[dict[str, Any]] | None) -> dict[str, Any]:
    """The page after `since`: the one fetched ahead for it when there is one."""
    if ahead is not None:
        try:
            return ahead.result()
        except ServerError:
            pass  # asked again below, where an expired session is renewed and fatal codes mapped
    page: dict[str, Any] = client.call(partial(Api.pull, since=since, limit=PULL_LIMIT))
    return page


def _apply_page(
    client: Client, page: list[dict[str, Any]], watermark: int, summary: SyncSummary
) -> None:
    """Verify every item of a page, then store them all and its watermark in one transaction.

    Manifest items (reserved ids) are checked first and never become items; an item served
    below what a manifest attests is refused on its own (named, nothing stored from it).
    """
    vault = client.vault
    check = manifests.current(client)
    incoming = manifests.take_page(
        client, check, [r for r in page if manifests.is_reserved(r["id"])]
    )
    items = [r for r in page if not manifests.is_reserved(r["id"])]
    ids = [remote["id"] for remote in items]
    before = vault.get_items(ids)
    best = manifests.attested(client, ids, incoming)
    checked: list[dict[str, Any] | None] = []
    for remote in items:  # every check before any write: a bad page changes nothing
        local = before.get(remote["id"])
        held = local is not None and int(remote["version"]) <= local.version
        if held:  # never applied, so not decrypted
            checked.append(None)
            continue
        if remote.get("deleted"):
            checked.append(_verify_deletion(client, remote, local))
        else:
            checked.append(_verify_remote(client, remote, local))
        opened = checked[-1]
        refusal = opened and manifests.stale(remote, opened["revision"], best.get(remote["id"]))
        if refusal:
            check.refused[remote["id"]] = refusal
            checked[-1] = None
    with vault.transaction():
        rows = vault.get_items(ids)  # again under the write lock, as pushes do
        staged: dict[str, ItemRow] = {}
        for remote, plaintext in zip(items, checked, strict=True):
            local = rows.get(remote["id"])
            if plaintext is None:
                continue  # held, refused, or sealed under a retired key
            check.before.setdefault(remote["id"], dataclasses.replace(local) if local else None)
            stored, conflicts = _apply_remote(client, remote, plaintext, local)
            summary.conflicts += conflicts
            summary.pulled += 1
            if stored is not None:
                rows[stored.id] = staged[stored.id] = stored
        vault.put_items(list(staged.values()))
        manifests.store_page(client, check, incoming, page)
        if staged:
            manifests.view_advanced(client)
        vault.set_meta(watermark=watermark)


# -- merging one server item -----------------------------------------------------------------
def _verify_remote(
    client: Client, remote: dict[str, Any], local: ItemRow | None
) -> dict[str, Any] | None:
    """Decrypt a server item and refuse tampering and rollback (None: sealed under a retired
    key, not accepted here; nt2sync/keyring.py)."""
    item_id = remote["id"]
    try:
        plaintext = keyring.open_remote_item(client, item_id, remote["ciphertext"] or "")
        if plaintext is None:
            return None
    except crypto.UnsupportedFormat as exc:
        raise TamperedItem(
            f"Item {item_id} from the server has a format this client does not know; "
            "update nt2sync. Nothing was changed locally."
        ) from exc
    except crypto.CryptoError as exc:
        raise TamperedItem(
            f"The server sent item {item_id} altered, swapped or from another vault; "
            "refusing it. Nothing was changed locally."
        ) from exc
    _refuse_rollback(item_id, plaintext["revision"], local, "version")
    return plaintext


def _refuse_rollback(item_id: str, revision: int, local: ItemRow | None, what: str) -> None:
    """A revision below what this device has seen of the item is a replay."""
    floor = local.rev_floor if local else 0
    if revision < floor:
        raise RollbackRefused(
            f"The server replayed an older {what} of item {item_id} (revision {revision}, "
            f"this device has seen {floor}); refusing it. Nothing was changed locally."
        )


def _verify_deletion(
    client: Client, remote: dict[str, Any], local: ItemRow | None
) -> dict[str, Any] | None:
    """Open a tombstone's sealed record: a deletion that does not open with the data key
    was not made by any device of this vault, and a replayed older one is refused."""
    item_id = remote["id"]
    try:
        record = keyring.open_remote_deletion(client, item_id, remote.get("ciphertext") or "")
        if record is None:
            return None
    except crypto.CryptoError as exc:
        raise TamperedItem(
            f"The server reported a deletion of item {item_id} that it cannot prove (it is "
            "not sealed with this vault's key); the item was kept. Nothing was changed "
            "locally."
        ) from exc
    _refuse_rollback(item_id, record["revision"], local, "deletion")
    return record


def _clean_row(remote: dict[str, Any], plaintext: dict[str, Any]) -> ItemRow:
    return ItemRow(
        id=remote["id"],
        version=int(remote["version"]),
        dirty=False,
        deleted=False,
        ciphertext=remote["ciphertext"],
        revision=plaintext["revision"],
        rev_floor=plaintext["revision"],
        updated_at=plaintext["updatedAt"],
    )


def _new_copy(client: Client, plaintext: dict[str, Any]) -> None:
    copy = merge.conflicted_copy(
        plaintext, now_ms=client.clock(), replica_id=client.meta.replica_id
    )
    write_local(client, str(uuid.uuid4()), copy, None)


def _apply_remote(
    client: Client,
    remote: dict[str, Any],
    plaintext: dict[str, Any] | None,
    local: ItemRow | None,
) -> tuple[ItemRow | None, int]:
    """Merge one server item (inside a transaction): (its row to store or None, conflicts).

    A conflicted copy is written here; the item's own row is the caller's to store, with
    the rest of its page or batch.
    """
    version = int(remote["version"])
    if local is not None and version <= local.version:
        return None, 0  # already held (our own write coming back, or an older state)
    if remote["deleted"]:
        assert plaintext is not None  # the opened deletion record
        seen = max(local.revision, local.rev_floor) if local else 0
        seen = max(seen, plaintext["revision"])
        tomb = ItemRow(remote["id"], version, False, True, remote["ciphertext"], seen, seen + 1, 0)
        if local is not None and local.dirty and not local.deleted:
            _new_copy(client, decrypt_row(client, local))  # an unpushed edit survives
            return tomb, 1
        return tomb, 0
    assert plaintext is not None
    if (
        local is not None
        and not local.dirty
        and not local.deleted
        and plaintext["revision"] == local.revision == local.rev_floor
        and remote["ciphertext"] != local.ciphertext
    ):
        # The same revision with other content: two writers the server both accepted (an
        # honest server never does). A conflict: this device's text stays, theirs is kept as
        # a conflicted copy, and nothing is replaced silently.
        local.version = version
        _new_copy(client, plaintext)
        return local, 1
    if local is None or not local.dirty or local.deleted:
        return _clean_row(remote, plaintext), 0
    mine = decrypt_row(client, local)
    decision = merge.resolve_live(mine, plaintext)
    if decision.keep == "remote":
        if decision.copy == "local":
            _new_copy(client, mine)
            return _clean_row(remote, plaintext), 1
        return _clean_row(remote, plaintext), 0
    kept = {**mine, "revision": decision.next_revision}
    _new_copy(client, plaintext)
    kept_row = ItemRow(
        id=local.id,
        version=version,
        dirty=True,
        deleted=False,
        ciphertext=encrypt(client, local.id, kept),
        revision=decision.next_revision,
        rev_floor=plaintext["revision"],
        updated_at=kept["updatedAt"],
    )
    return kept_row, 1
