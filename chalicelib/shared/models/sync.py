"""§5 push, pull, status."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from chalicelib.shared.limits import DEFAULT_PULL_LIMIT, MAX_INT64, MAX_PULL_LIMIT, MAX_PUSH_ITEMS
from chalicelib.shared.models import Request, Response
from chalicelib.shared.types import BatchId, Ciphertext, ItemId


class PushItem(Request):
    id: ItemId
    baseVersion: int = Field(default=0, ge=0, le=MAX_INT64)  # absent = 0 (§5)
    deleted: bool
    ciphertext: Ciphertext | None = None

    @model_validator(mode="after")
    def _live_has_ciphertext(self) -> PushItem:
        # A tombstone may carry a sealed ciphertext (v1.2 §5); a live item needs one.
        if not self.deleted and self.ciphertext is None:
            raise ValueError("a live item needs ciphertext")
        return self


class PushRequest(Request):
    batchId: BatchId
    items: list[PushItem] = Field(min_length=1, max_length=MAX_PUSH_ITEMS)


class ItemOut(Response):
    id: str
    version: int
    deleted: bool
    ciphertext: str | None
    replicaId: str
    updatedAt: int


class Accepted(Response):
    id: str
    status: Literal["accepted"]
    version: int


class Conflict(Response):
    id: str
    status: Literal["conflict"]
    current: ItemOut | None


class PushResponse(Response):
    watermark: int
    results: list[Accepted | Conflict]


class PullQuery(Request):
    since: int = Field(default=0, ge=0, le=MAX_INT64)
    limit: int = Field(default=DEFAULT_PULL_LIMIT, ge=1, le=MAX_PULL_LIMIT)


class PullResponse(Response):
    items: list[ItemOut]
    watermark: int
    hasMore: bool


class Counts(Response):
    items: int
    tombstones: int
    attachments: int
    attachmentBytes: int


class PremiumOut(Response):
    required: bool
    active: bool
    source: Literal["subscription", "promo", "dev"] | None
    expiresAt: int | None


class StatusResponse(Response):
    registered: bool
    keyDid: str
    registeredAt: int | None
    watermark: int
    lastPushAt: int | None
    lastPullAt: int | None
    counts: Counts
    devices: int
    premium: PremiumOut
