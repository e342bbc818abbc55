"""Attachment rules (PROTOCOL.md §6): upload grant, commit, download, list, delete, quota.

The row `VAULT#<v>` / `ATT#<id>` is the truth; the object `vaults/<v>/<id>` only counts once
commit has checked it against the row. Usage (META.attachmentBytes, nAttachments) moves in
the same transaction as the row's state, under a condition, so the quota holds under any
concurrency. See docs/ATTACHMENTS.md.
"""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.clock import now_ms
from chalicelib.entitlements import require_premium
from chalicelib.errors import ApiError, ErrorCode, unavailable
from chalicelib.identity import Principal
from chalicelib.settings import Settings
from chalicelib.shared.encoding import EncodingError, b64url_decode, b64url_encode
from chalicelib.shared.models.attachments import UploadRequest
from chalicelib.store import keys
from chalicelib.store.blobs import COMMITTED, PENDING, URL_TTL_S, Blobs, s3_checksum
from chalicelib.store.table import (
    Item,
    Table,
    cancellation_codes,
    condition_failed,
    error_code,
    to_av,
)
from chalicelib.vaults import unkey

PAGE_SIZE = 100
# A grant's PUT happens within 15 minutes and commit follows it. A pending row older than this
# is stale: commit refuses it long before the lifecycle rule (≥ 24 h after the PUT) could be
# deleting its blob, and the table's TTL removes the row a day later.
PENDING_TTL_MS = 12 * 3_600_000
TTL_GRACE_S = 86_400
ATT_PREFIX = keys.attachment_sk("")
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
    """Record a pending upload and grant a presigned PUT bound to its size and checksum."""
    vault_id, meta = principal.require_vault()
    require_premium(meta, settings)
    state = _record_pending(table, settings, vault_id, meta, att_id, req)
    object_key = keys.attachment_object_key(vault_id, att_id)
    url, headers = blobs.presign_put(object_key, req.size, s3_checksum(req.sha256), state)
    return {
        "url": url,
        "method": "PUT",
        "headers": headers,
        "expiresAt": now_ms() + URL_TTL_S * 1000,
    }


def _record_pending(
    table: Table, settings: Settings, vault_id: str, meta: Item, att_id: str, req: UploadRequest
) -> str:
    """Put (or replace) the pending row; the state tag the upload URL must carry."""
    key = keys.attachment_key(vault_id, att_id)
    row = table.get(key)
    if row is None or row.get("state") != COMMITTED:
        used = int(meta.get("attachmentBytes") or 0)
        if used + req.size > settings.attachment_quota_bytes:
            raise ApiError(
                ErrorCode.QUOTA_EXCEEDED, "This upload would pass the vault's storage quota."
            )
        now = now_ms()
        try:
            # Never overwrite a committed row: its bytes are counted and its content is fixed.
            table.put(
                {
                    **unkey(key),
                    "state": PENDING,
                    "size": req.size,
                    "sha256": req.sha256,
                    "createdAt": now,
                    "expiresAt": now + PENDING_TTL_MS,
                    "ttl": (now + PENDING_TTL_MS) // 1000 + TTL_GRACE_S,
                },
                condition="attribute_not_exists(pk) OR #state = :pending",
                names={"#state": "state"},
                values={":pending": PENDING},
            )
            return PENDING
        except ClientError as exc:
            if not condition_failed(exc):
                raise
            row = table.get(key)  # committed meanwhile by a concurrent commit
            if row is None or row.get("state") != COMMITTED:
                raise unavailable() from exc
    if not _same_content(row, req.size, req.sha256):
        # Attachments are immutable: new content needs a new id (or a delete first).
        raise _mismatch("This attachment is committed with other content; use a new id.")
    # An identical re-upload must not put the pending tag back on a committed blob.
    return COMMITTED


def commit(
    table: Table, blobs: Blobs, settings: Settings, principal: Principal, att_id: str
) -> dict[str, Any]:
    """Check the uploaded object against the pending row, then count it, atomically."""
    vault_id, _ = principal.require_vault()
    key = keys.attachment_key(vault_id, att_id)
    object_key = keys.attachment_object_key(vault_id, att_id)
    row = table.get(key)
    if row is None or _stale(row, now_ms()):
        raise _not_found()
    if row.get("state") != COMMITTED:
        row = _commit_pending(table, blobs, settings, vault_id, att_id, row)
    # Also on a re-commit: the tag change may have failed after the transaction last time,
    # and a blob still tagged pending would be expired by the lifecycle rule.
    if not blobs.set_state(object_key, COMMITTED):
        raise _mismatch("The committed object is gone; delete the attachment and upload again.")
    return out(att_id, row)


def _commit_pending(
    table: Table, blobs: Blobs, settings: Settings, vault_id: str, att_id: str, row: Item
) -> Item:
    size, sha256 = int(row["size"]), str(row["sha256"])
    info = blobs.head(keys.attachment_object_key(vault_id, att_id))
    if info is None:
        raise _mismatch("The object was not uploaded.")
    if info.size != size or info.sha256 != s3_checksum(sha256):
        raise _mismatch("The uploaded object differs from the declared size or checksum.")
    limit = settings.attachment_quota_bytes - size
    if limit < 0:
        raise ApiError(
            ErrorCode.QUOTA_EXCEEDED, "This attachment is larger than the vault's quota."
        )
    now = now_ms()
    try:
        table.transact(
            [
                {
                    "Update": {
                        "Key": keys.attachment_key(vault_id, att_id),
                        "UpdateExpression": "SET #state = :committed, committedAt = :now "
                        "REMOVE expiresAt, #ttl",
                        # The row must still describe the object we just checked.
                        "ConditionExpression": "#state = :pending AND #size = :size "
                        "AND sha256 = :sha AND expiresAt > :now",
                        "ExpressionAttributeNames": {
                            "#state": "state",
                            "#size": "size",
                            "#ttl": "ttl",
                        },
                        "ExpressionAttributeValues": {
                            ":committed": to_av(COMMITTED),
                            ":pending": to_av(PENDING),
                            ":now": to_av(now),
                            ":size": to_av(size),
                            ":sha": to_av(sha256),
                        },
                    }
                },
                {
                    "Update": {
                        "Key": keys.meta_key(vault_id),
                        "UpdateExpression": "ADD attachmentBytes :size, nAttachments :one",
                        # Two concurrent commits cannot pass the quota together.
                        "ConditionExpression": "attribute_exists(pk) AND "
                        "(attribute_not_exists(attachmentBytes) OR attachmentBytes <= :limit)",
                        "ExpressionAttributeValues": {
                            ":size": to_av(size),
                            ":one": to_av(1),
                            ":limit": to_av(limit),
                        },
                    }
                },
            ]
        )
    except ClientError as exc:
        if error_code(exc) != "TransactionCanceledException":
            raise
        codes = cancellation_codes(exc)
        if codes and codes[0] == "ConditionalCheckFailed":
            again = table.get(keys.attachment_key(vault_id, att_id))
            if again is None or _stale(again, now_ms()):
                raise _not_found() from exc
            if again.get("state") == COMMITTED and _same_content(again, size, sha256):
                return again  # a concurrent commit of the same upload won
            raise _mismatch("The attachment changed while it was being committed.") from exc
        if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
            raise ApiError(
                ErrorCode.QUOTA_EXCEEDED, "Committing this attachment would pass the vault's quota."
            ) from exc
        raise
    return {**row, "state": COMMITTED, "committedAt": now}


def download(table: Table, blobs: Blobs, principal: Principal, att_id: str) -> dict[str, Any]:
    """A presigned GET for a committed attachment."""
    vault_id, _ = principal.require_vault()
    row = table.get(keys.attachment_key(vault_id, att_id))
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
    pk = keys.vault_pk(vault_id)
    start: dict[str, Any] | None = {"pk": {"S": pk}, "sk": {"S": after}} if after else None
    found: list[Item] = []
    while True:
        rows, start = table.query(
            "pk = :pk AND begins_with(sk, :prefix)",
            {":pk": pk, ":prefix": ATT_PREFIX},
            limit=page_size + 1,
            start=start,
        )
        for row in rows:
            if row.get("state") != COMMITTED or "committedAt" not in row:
                continue
            if len(found) == page_size:  # one more exists: this page is full
                return _page(found, encode_cursor(found[-1]["sk"]))
            found.append(row)
        if not start:
            return _page(found, None)


def _page(rows: list[Item], cursor: str | None) -> dict[str, Any]:
    return {
        "attachments": [out(row["sk"][len(ATT_PREFIX) :], row) for row in rows],
        "cursor": cursor,
    }


def delete(table: Table, blobs: Blobs, principal: Principal, att_id: str) -> None:
    """Remove the blob, then the row and its usage; idempotent, also for an unknown id.

    The blob goes first: if the row step fails, the attachment is still listed and counted,
    so the client sees it and retries; the other order could leave an uncounted blob forever.
    """
    vault_id, _ = principal.require_vault()
    blobs.delete(keys.attachment_object_key(vault_id, att_id))
    key = keys.attachment_key(vault_id, att_id)
    for _ in range(_MAX_ATTEMPTS):
        row = table.get(key)
        if row is None:
            return
        try:
            if row.get("state") != COMMITTED:
                table.delete(
                    key,
                    condition="#state = :pending",
                    names={"#state": "state"},
                    values={":pending": PENDING},
                )
            else:
                _delete_committed(table, vault_id, key, int(row["size"]))
            return
        except ClientError as exc:
            # The row changed under us (committed, re-uploaded, deleted): read it again.
            if not condition_failed(exc) and error_code(exc) != "TransactionCanceledException":
                raise
    raise unavailable()


def _delete_committed(table: Table, vault_id: str, key: Any, size: int) -> None:
    table.transact(
        [
            {
                "Delete": {
                    "Key": key,
                    "ConditionExpression": "#state = :committed AND #size = :size",
                    "ExpressionAttributeNames": {"#state": "state", "#size": "size"},
                    "ExpressionAttributeValues": {
                        ":committed": to_av(COMMITTED),
                        ":size": to_av(size),
                    },
                }
            },
            {
                "Update": {
                    "Key": keys.meta_key(vault_id),
                    "UpdateExpression": "ADD attachmentBytes :minus, nAttachments :neg",
                    "ExpressionAttributeValues": {":minus": to_av(-size), ":neg": to_av(-1)},
                }
            },
        ]
    )
