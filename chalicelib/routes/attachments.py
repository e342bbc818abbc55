"""§6 routes: attachment upload, commit, download, list, delete (bytes go straight to S3)."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib import attachments
from chalicelib.routes.context import principal, table
from chalicelib.routes.http import (
    AUTH_ERRORS,
    json_response,
    operation,
    parse_body,
    parse_path,
    parse_query,
)
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


def _attachment_id(value: str) -> str:
    return parse_path(AttachmentPath, id=value).id


@operation(
    bp,
    "/api/attachments/{id}/upload",
    "POST",
    summary="Grant a presigned PUT for an attachment's ciphertext",
    tag="attachments",
    body=UploadRequest,
    response=UploadResponse,
    errors=(
        "invalid_request",
        "invalid_encoding",
        "payload_too_large",
        *AUTH_ERRORS,
        "premium_required",
        "vault_not_found",
        "attachment_mismatch",
        "quota_exceeded",
        "unavailable",
    ),
)
def upload(id: str) -> Response:  # noqa: A002 - the path parameter's name
    request = bp.current_request
    att_id = _attachment_id(id)
    req = parse_body(request, UploadRequest)
    settings = get_settings()
    attachments.check_upload(req, settings)
    caller = principal(request)
    grant = attachments.request_upload(table(), Blobs(), settings, caller, att_id, req)
    return json_response(UploadResponse(**grant))


@operation(
    bp,
    "/api/attachments/{id}/commit",
    "POST",
    summary="Record an uploaded attachment once S3 holds the declared bytes",
    tag="attachments",
    response=AttachmentOut,
    errors=(
        "invalid_request",
        *AUTH_ERRORS,
        "vault_not_found",
        "attachment_not_found",
        "attachment_mismatch",
        "quota_exceeded",
        "unavailable",
    ),
)
def commit(id: str) -> Response:  # noqa: A002 - the path parameter's name
    request = bp.current_request
    att_id = _attachment_id(id)
    caller = principal(request)
    body = attachments.commit(table(), Blobs(), get_settings(), caller, att_id)
    return json_response(AttachmentOut(**body))


@operation(
    bp,
    "/api/attachments/{id}/download",
    "GET",
    summary="A presigned GET for a committed attachment",
    tag="attachments",
    response=DownloadResponse,
    errors=(
        "invalid_request",
        *AUTH_ERRORS,
        "vault_not_found",
        "attachment_not_found",
        "unavailable",
    ),
)
def download(id: str) -> Response:  # noqa: A002 - the path parameter's name
    request = bp.current_request
    att_id = _attachment_id(id)
    caller = principal(request)
    return json_response(DownloadResponse(**attachments.download(table(), Blobs(), caller, att_id)))


@operation(
    bp,
    "/api/attachments",
    "GET",
    summary="Committed attachments, a page at a time",
    tag="attachments",
    query=ListQuery,
    response=ListResponse,
    errors=("invalid_request", *AUTH_ERRORS, "vault_not_found", "unavailable"),
)
def list_attachments() -> Response:
    request = bp.current_request
    query = parse_query(request, ListQuery)
    after = attachments.decode_cursor(query.cursor)
    caller = principal(request)
    return json_response(ListResponse(**attachments.list_committed(table(), caller, after)))


@operation(
    bp,
    "/api/attachments/{id}",
    "DELETE",
    summary="Delete an attachment's blob and record (idempotent)",
    tag="attachments",
    status=204,
    errors=("invalid_request", *AUTH_ERRORS, "vault_not_found", "unavailable"),
)
def delete(id: str) -> Response:  # noqa: A002 - the path parameter's name
    request = bp.current_request
    att_id = _attachment_id(id)
    caller = principal(request)
    attachments.delete(table(), Blobs(), caller, att_id)
    return json_response(None, 204)
