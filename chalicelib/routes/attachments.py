"""§6 routes: attachment upload, commit, download, list, delete (bytes go straight to S3)."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import attachments
from chalicelib.errors import ErrorCode
from chalicelib.identity import Principal
from chalicelib.routes.context import table
from chalicelib.routes.operations import AUTH_ERRORS, operation
from chalicelib.settings import get_settings
from chalicelib.shared.models.attachments import (
    AttachmentOut,
    AttachmentPath,
    DownloadResponse,
    ListQuery,
    ListResponse,
    UploadRequest,
    UploadResponse,
)
from chalicelib.store.blobs import Blobs

bp = Blueprint(__name__)


def _upload_fits(path: AttachmentPath, body: UploadRequest) -> None:
    attachments.check_upload(body, get_settings())


@operation(
    bp,
    "/api/attachments/{id}/upload",
    "POST",
    summary="Grant a presigned PUT for an attachment's ciphertext",
    tag="attachments",
    params=AttachmentPath,
    body=UploadRequest,
    response=UploadResponse,
    before_auth=_upload_fits,
    errors=(
        ErrorCode.INVALID_REQUEST,
        ErrorCode.INVALID_ENCODING,
        ErrorCode.PAYLOAD_TOO_LARGE,
        *AUTH_ERRORS,
        ErrorCode.PREMIUM_REQUIRED,
        ErrorCode.VAULT_NOT_FOUND,
        ErrorCode.ATTACHMENT_MISMATCH,
        ErrorCode.QUOTA_EXCEEDED,
        ErrorCode.UNAVAILABLE,
    ),
)
def upload(path: AttachmentPath, body: UploadRequest, caller: Principal) -> UploadResponse:
    grant = attachments.request_upload(table(), Blobs(), get_settings(), caller, path.id, body)
    return UploadResponse(**grant)


@operation(
    bp,
    "/api/attachments/{id}/commit",
    "POST",
    summary="Record an uploaded attachment once S3 holds the declared bytes",
    tag="attachments",
    params=AttachmentPath,
    response=AttachmentOut,
    errors=(
        ErrorCode.INVALID_REQUEST,
        *AUTH_ERRORS,
        ErrorCode.VAULT_NOT_FOUND,
        ErrorCode.ATTACHMENT_NOT_FOUND,
        ErrorCode.ATTACHMENT_MISMATCH,
        ErrorCode.QUOTA_EXCEEDED,
        ErrorCode.UNAVAILABLE,
    ),
)
def commit(path: AttachmentPath, caller: Principal) -> AttachmentOut:
    return AttachmentOut(**attachments.commit(table(), Blobs(), get_settings(), caller, path.id))


@operation(
    bp,
    "/api/attachments/{id}/download",
    "GET",
    summary="A presigned GET for a committed attachment",
    tag="attachments",
    params=AttachmentPath,
    response=DownloadResponse,
    errors=(
        ErrorCode.INVALID_REQUEST,
        *AUTH_ERRORS,
        ErrorCode.VAULT_NOT_FOUND,
        ErrorCode.ATTACHMENT_NOT_FOUND,
        ErrorCode.UNAVAILABLE,
    ),
)
def download(path: AttachmentPath, caller: Principal) -> DownloadResponse:
    return DownloadResponse(**attachments.download(table(), Blobs(), caller, path.id))


def _cursor_reads(query: ListQuery) -> None:
    attachments.decode_cursor(query.cursor)


@operation(
    bp,
    "/api/attachments",
    "GET",
    summary="Committed attachments, a page at a time",
    tag="attachments",
    query=ListQuery,
    response=ListResponse,
    before_auth=_cursor_reads,
    errors=(
        ErrorCode.INVALID_REQUEST,
        *AUTH_ERRORS,
        ErrorCode.VAULT_NOT_FOUND,
        ErrorCode.UNAVAILABLE,
    ),
)
def list_attachments(query: ListQuery, caller: Principal) -> ListResponse:
    after = attachments.decode_cursor(query.cursor)
    return ListResponse(**attachments.list_committed(table(), caller, after))


@operation(
    bp,
    "/api/attachments/{id}",
    "DELETE",
    summary="Delete an attachment's blob and record (idempotent)",
    tag="attachments",
    params=AttachmentPath,
    status=204,
    errors=(
        ErrorCode.INVALID_REQUEST,
        *AUTH_ERRORS,
        ErrorCode.VAULT_NOT_FOUND,
        ErrorCode.UNAVAILABLE,
    ),
)
def delete(path: AttachmentPath, caller: Principal) -> None:
    attachments.delete(table(), Blobs(), caller, path.id)
