"""§6 attachments: upload, commit, download, list."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from chalicelib.shared.limits import MAX_INT64
from chalicelib.shared.models import Request, Response
from chalicelib.shared.types import ItemId, Sha256B64


class AttachmentPath(Request):
    """The `{id}` path parameter (same pattern as an item id)."""

    id: ItemId


class UploadRequest(Request):
    # The per-file limit is configuration (ATTACHMENT_MAX_BYTES): checked → 413 before any state.
    size: int = Field(ge=1, le=MAX_INT64)
    sha256: Sha256B64


class UploadResponse(Response):
    url: str
    method: Literal["PUT"]
    headers: dict[str, str]
    expiresAt: int


class AttachmentOut(Response):
    id: str
    size: int
    sha256: str
    committedAt: int


class DownloadResponse(Response):
    url: str
    expiresAt: int


class ListQuery(Request):
    cursor: str | None = Field(default=None, max_length=512)


class ListResponse(Response):
    attachments: list[AttachmentOut]
    cursor: str | None
