"""Attachment rules (PROTOCOL.md §6): upload grant, commit, download, list, delete, quota.

The row `VAULT#<v>` / `ATT#<id>` is the truth; the object `vaults/<v>/<id>` only counts once
commit has checked it against the row. An upload grant holds a reservation row `RES#<id>`
until commit, delete or its end (the URL's expiry). Usage moves in the same transaction as
the rows, under conditions on META: `attachmentBytes`/`nAttachments` (committed),
`nReservations` (reservation rows) and `claimedBytes` (committed bytes plus the sizes of all
reservation rows), which the quota bounds. A reservation row that has ended still counts
until it is released: before any refusal, ended ones are released and the write is tried
again, so they never cause one. See docs/ATTACHMENTS.md.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from chalicelib.clock import now_ms
from chalicelib.entitlements import require_premium
from chalicelib.errors import ApiError, ErrorCode, unavailable
from chalicelib.identity import Principal, commit_with_session
from chalicelib.settings import Settings
from chalicelib.shared.encoding import EncodingError, b64url_decode, b64url_encode
from chalicelib.shared.models.attachments import UploadRequest
from chalicelib.store import attachment_rows, keys, vault_heads
from chalicelib.store.attachment_rows import ATT_PREFIX, RESERVATION, ROW, USAGE
from chalicelib.store.blobs import COMMITTED, PENDING, URL_TTL_S, Blobs, s3_checksum
from chalicelib.store.table import Item, Table
from chalicelib.store.txn import Cancelled, Transaction

PAGE_SIZE = 100
# A grant's PUT happens within 15 minutes and commit follows it. A pending row older than this
# is stale: commit refuses it long before the lifecycle rule (≥ 24 h after the PUT) could be
# deleting its blob, and the table's TTL removes the row a day later.
PENDING_TTL_MS = 12 * 3_600_000
TTL_GRACE_S = 86_400
MAX_RESERVATIONS = 100  # live reservations per vault (PROTOCOL.md §6, §8)
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}\Z")
_MAX_ATTEMPTS = 5


def _not_found() -> ApiError:
    return ApiError(ErrorCode.ATTACHMENT_NOT_FOUND, "No upload was requested for this attachment.")


def _mismatch(message: str) -> ApiError:
    return ApiError(ErrorCode.ATTACHMENT_MISMATCH, message)


def check_upload(req: UploadRequest, settings: Settings) -> None:
    """The per-file limit: part of validation, so it answers before any state is read."""
    if req.size > settings.attachment_max_bytes:
        raise ApiError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"An attachment may be at most {settings.attachment_max_bytes} bytes.",
        )


def out(att_id: str, row: Item) -> dict[str, Any]:
    """The wire form of a committed attachment."""
    return {
        "id": att_id,
        "size": int(row["size"]),
        "sha256": row["sha256"],
        "committedAt": int(row["committedAt"]),
    }


def _stale(row: Item, now: int) -> bool:
    """A pending row past its expiry counts as absent (TTL deletes late)."""
    return row.get("state") != COMMITTED and int(row.get("expiresAt") or 0) <= now


def _same_content(row: Item, size: int, sha256: str) -> bool:
    return int(row["size"]) == size and row["sha256"] == sha256


def request_upload(
    table: Table,
    blobs: Blobs,
    settings: Settings,
    principal: Principal,
    att_id: str,
    req: UploadRequest,
) -> dict[str, Any]:
    """Reserve the size (or re-grant a committed id) and presign a PUT bound to it."""
    vault_id, meta = principal.require_vault()
    require_premium(meta, settings)
    ensure_usage(table, vault_id, meta)
    state, expires_at = _reserve(table, settings, principal, att_id, req)
    object_key = keys.attachment_object_key(vault_id, att_id)
    # Whole seconds left, rounded down (and X-Amz-Date is rounded down too): the URL never
    # outlives its reservation, so no PUT it allows lands after the reservation ended.
    expires_s = max(1, (expires_at - now_ms()) // 1000)
    url, headers = blobs.presign_put(
        object_key, req.size, s3_checksum(req.sha256), state, expires_s
    )
    return {"url": url, "method": "PUT", "headers": headers, "expiresAt": expires_at}


def ensure_usage(table: Table, vault_id: str, meta: Item) -> None:
    """Give a vault created before reservations its quota counter (committed bytes, once)."""
    if "claimedBytes" not in meta:
        attachment_rows.ensure_claimed_counter(table, vault_id)


def _reserve(
    table: Table, settings: Settings, principal: Principal, att_id: str, req: UploadRequest
) -> tuple[str, int]:
    """(state tag for the URL, when the grant ends). Pending: one transaction writes the row,
    the reservation and the counters, under the quota and the 100-reservation conditions."""
    vault_id, _ = principal.require_vault()
    for _ in range(_MAX_ATTEMPTS):
        row = attachment_rows.get(table, vault_id, att_id)
        if row is not None and row.get("state") == COMMITTED:
            if not _same_content(row, req.size, req.sha256):
                # Attachments are immutable: new content needs a new id (or a delete first).
                raise _mismatch("This attachment is committed with other content; use a new id.")
            # An identical re-upload must not put the pending tag back on a committed blob,
            # and reserves nothing: its bytes are counted already.
            return COMMITTED, now_ms() + URL_TTL_S * 1000
        # A new upload for the same id replaces that id's reservation (ended or not): the
        # counters move by the difference, and the count does not grow.
        res = attachment_rows.get_reservation(table, vault_id, att_id)
        held = int(res["size"]) if res is not None else 0
        now = now_ms()
        expires_at = now + URL_TTL_S * 1000
        txn = Transaction()
        attachment_rows.add_pending(
            txn,
            vault_id,
            att_id,
            {
                "size": req.size,
                "sha256": req.sha256,
                "createdAt": now,
                "expiresAt": now + PENDING_TTL_MS,
                "ttl": (now + PENDING_TTL_MS) // 1000 + TTL_GRACE_S,
            },
        )
        grant = {
            "size": req.size,
            "expiresAt": expires_at,
            "grantId": secrets.token_hex(8),
            "createdAt": now,
        }
        attachment_rows.add_reserve(txn, vault_id, att_id, res, grant)
        attachment_rows.add_usage(
            txn,
            vault_id,
            claimed=req.size - held,
            reservations=0 if res is not None else 1,
            quota=settings.attachment_quota_bytes,
            max_reservations=MAX_RESERVATIONS,
        )
        try:
            commit_with_session(table, principal, txn)
            return PENDING, expires_at
        except Cancelled as cancelled:
            if cancelled.failed & {ROW, RESERVATION} or USAGE not in cancelled.failed:
                continue  # the row or the reservation changed under us: read them again
        _refuse_unless_freed(table, settings, vault_id, req.size - held, res is None)
    raise unavailable()


def _refuse_unless_freed(
    table: Table, settings: Settings, vault_id: str, claim: int, new_reservation: bool
) -> None:
    """The counters refused a write: release ended reservations and let the caller try again,
    or, if none had ended, answer the limit that refused it."""
    released, next_end = release_ended(table, vault_id)
    if released:
        return
    meta = vault_heads.get(table, vault_id) or {}
    if int(meta.get("claimedBytes") or 0) + claim > settings.attachment_quota_bytes:
        raise ApiError(
            ErrorCode.QUOTA_EXCEEDED, "This upload would pass the vault's storage quota."
        )
    if new_reservation and int(meta.get("nReservations") or 0) >= MAX_RESERVATIONS:
        wait_ms = (next_end - now_ms()) if next_end is not None else 1000
        raise ApiError(
            ErrorCode.RATE_LIMITED,
            f"This vault has {MAX_RESERVATIONS} pending uploads; commit or delete one first.",
            {"Retry-After": str(max(1, -(-wait_ms // 1000)))},
        )
    # The counters moved since the write (a concurrent commit or delete): the caller retries.


def release_ended(table: Table, vault_id: str) -> tuple[int, int | None]:
    """Release every reservation whose grant has ended: (how many, when the next one ends).

    Each release deletes the row under the condition that it is the one read and takes its
    size off the counters in the same transaction, so a reservation is released at most once
    and never one that a new upload has just replaced. At most ~100 rows are read: the rows
    are the held reservations themselves, which the counters bound.
    """
    now = now_ms()
    released = 0
    next_end: int | None = None
    for res in attachment_rows.reservations(table, vault_id):
        ends = int(res["expiresAt"])
        if ends > now:
            next_end = ends if next_end is None else min(next_end, ends)
            continue
        att_id = str(res["sk"])[len(attachment_rows.RES_PREFIX) :]
        txn = Transaction()
        attachment_rows.add_release(txn, vault_id, att_id, res, ended_by=now)
        attachment_rows.add_usage(txn, vault_id, claimed=-int(res["size"]), reservations=-1)
        try:
            txn.commit(table)
            released += 1
        except Cancelled:
            pass  # released or replaced by a concurrent request: nothing left to do for it
    return released, next_end


def commit(
    table: Table, blobs: Blobs, settings: Settings, principal: Principal, att_id: str
) -> dict[str, Any]:
    """Check the uploaded object against the pending row, then count it, atomically."""
    vault_id, meta = principal.require_vault()
    ensure_usage(table, vault_id, meta)
    object_key = keys.attachment_object_key(vault_id, att_id)
    row = attachment_rows.get(table, vault_id, att_id)
    if row is None or _stale(row, now_ms()):
        raise _not_found()
    if row.get("state") != COMMITTED:
        row = _commit_pending(table, blobs, settings, principal, att_id, row)
    # Also on a re-commit: the tag change may have failed after the transaction last time,
    # and a blob still tagged pending would be expired by the lifecycle rule.
    if not blobs.set_state(object_key, COMMITTED):
        raise _mismatch("The committed object is gone; delete the attachment and upload again.")
    return out(att_id, row)


def _commit_pending(
    table: Table, blobs: Blobs, settings: Settings, principal: Principal, att_id: str, row: Item
) -> Item:
    vault_id, _ = principal.require_vault()
    size, sha256 = int(row["size"]), str(row["sha256"])
    info = blobs.head(keys.attachment_object_key(vault_id, att_id))
    if info is None:
        raise _mismatch("The object was not uploaded.")
    if info.size != size or info.sha256 != s3_checksum(sha256):
        raise _mismatch("The uploaded object differs from the declared size or checksum.")
    if size > settings.attachment_quota_bytes:
        raise ApiError(
            ErrorCode.QUOTA_EXCEEDED, "This attachment is larger than the vault's quota."
        )
    for _ in range(_MAX_ATTEMPTS):
        # The reservation's bytes are in claimedBytes already (ended or not, until released):
        # they become committed bytes without being counted twice. Without one (released, or
        # an upload from before reservations) the size is claimed now, under the quota.
        res = attachment_rows.get_reservation(table, vault_id, att_id)
        held = int(res["size"]) if res is not None else 0
        now = now_ms()
        txn = Transaction()
        attachment_rows.add_commit(txn, vault_id, att_id, size, sha256, now)
        attachment_rows.add_release(txn, vault_id, att_id, res)
        # Two concurrent commits cannot pass the quota together.
        attachment_rows.add_usage(
            txn,
            vault_id,
            committed=size,
            files=1,
            claimed=size - held,
            reservations=-1 if res is not None else 0,
            quota=settings.attachment_quota_bytes,
        )
        try:
            commit_with_session(table, principal, txn)
            return {**row, "state": COMMITTED, "committedAt": now}
        except Cancelled as cancelled:
            if ROW in cancelled.failed:
                again = attachment_rows.get(table, vault_id, att_id)
                if again is None or _stale(again, now_ms()):
                    raise _not_found() from cancelled
                if again.get("state") == COMMITTED and _same_content(again, size, sha256):
                    return again  # a concurrent commit of the same upload won
                raise _mismatch(
                    "The attachment changed while it was being committed."
                ) from cancelled
            if RESERVATION in cancelled.failed or USAGE not in cancelled.failed:
                continue  # the reservation was released or replaced meanwhile: read it again
        released, _ = release_ended(table, vault_id)
        if not released:
            raise ApiError(
                ErrorCode.QUOTA_EXCEEDED, "Committing this attachment would pass the vault's quota."
            )
    raise unavailable()


def download(table: Table, blobs: Blobs, principal: Principal, att_id: str) -> dict[str, Any]:
    """A presigned GET for a committed attachment."""
    vault_id, _ = principal.require_vault()
    row = attachment_rows.get(table, vault_id, att_id)
    if row is None or row.get("state") != COMMITTED:
        raise ApiError(ErrorCode.ATTACHMENT_NOT_FOUND, "No committed attachment has this id.")
    url = blobs.presign_get(keys.attachment_object_key(vault_id, att_id))
    return {"url": url, "expiresAt": now_ms() + URL_TTL_S * 1000}


def encode_cursor(sk: str) -> str:
    return b64url_encode(sk.encode("utf-8"))


def decode_cursor(cursor: str | None) -> str | None:
    """The sort key to continue after; 400 for anything this server did not hand out."""
    if not cursor:  # absent or empty (`?cursor=`): the first page
        return None
    try:
        sk = b64url_decode(cursor).decode("utf-8")
    except (EncodingError, UnicodeDecodeError) as exc:
        raise ApiError(ErrorCode.INVALID_REQUEST, "The cursor is not valid.") from exc
    if not sk.startswith(ATT_PREFIX) or not _ID.match(sk[len(ATT_PREFIX) :]):
        raise ApiError(ErrorCode.INVALID_REQUEST, "The cursor is not valid.")
    return sk


def list_committed(
    table: Table, principal: Principal, after: str | None, page_size: int = PAGE_SIZE
) -> dict[str, Any]:
    """One page of committed attachments in id order; pending rows are skipped.

    The cursor is the sort key of the page's last attachment, so rows skipped as pending
    (or deleted since) never stall or shift the next page.
    """
    vault_id, _ = principal.require_vault()
    found: list[Item] = []
    while True:
        rows, after = attachment_rows.page(table, vault_id, after, page_size + 1)
        for row in rows:
            if row.get("state") != COMMITTED or "committedAt" not in row:
                continue
            if len(found) == page_size:  # one more exists: this page is full
                return _page(found, encode_cursor(found[-1]["sk"]))
            found.append(row)
        if after is None:
            return _page(found, None)


def _page(rows: list[Item], cursor: str | None) -> dict[str, Any]:
    return {
        "attachments": [out(row["sk"][len(ATT_PREFIX) :], row) for row in rows],
        "cursor": cursor,
    }


def delete(table: Table, blobs: Blobs, principal: Principal, att_id: str) -> None:
    """Remove the row, its reservation and its usage, then the blob; idempotent, also for an
    unknown id (the blob is deleted on every call, so a retry finishes an interrupted one).

    The rows go first, in one transaction with the session's checks (§3): a delete whose
    session ended meanwhile changes nothing, and no record ever says that a deleted blob
    exists. A crash between the two steps leaves an unlisted blob until the delete is
    retried (it is idempotent, and deletes the blob even when no row is left).
    """
    vault_id, meta = principal.require_vault()
    ensure_usage(table, vault_id, meta)
    _delete_rows(table, principal, vault_id, att_id)
    blobs.delete(keys.attachment_object_key(vault_id, att_id))


def _delete_rows(table: Table, principal: Principal, vault_id: str, att_id: str) -> None:
    for _ in range(_MAX_ATTEMPTS):
        row = attachment_rows.get(table, vault_id, att_id)
        res = attachment_rows.get_reservation(table, vault_id, att_id)
        if row is None and res is None:
            return
        txn = Transaction()
        size = files = 0
        if row is not None:
            committed = row.get("state") == COMMITTED
            size = int(row["size"]) if committed else 0
            files = -1 if committed else 0
            attachment_rows.add_delete(txn, vault_id, att_id, row)
        # Deleting a pending upload ends its reservation (a reservation whose row TTL removed
        # goes too); checking its absence keeps a concurrent new grant from losing its row.
        attachment_rows.add_release(txn, vault_id, att_id, res)
        held = int(res["size"]) if res is not None else 0
        attachment_rows.add_usage(
            txn,
            vault_id,
            committed=-size,
            files=files,
            claimed=-size - held,
            reservations=-1 if res is not None else 0,
        )
        try:
            commit_with_session(table, principal, txn)
            return
        except Cancelled:
            continue  # the rows changed under us (committed, re-uploaded, deleted): again
    raise unavailable()
