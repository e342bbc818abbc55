"""Small builders for sync tests."""

from __future__ import annotations

import secrets
from typing import Any

from chalicelib.shared.encoding import b64url_encode


def ct(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return b64url_encode(data)


def live(item_id: str, base: int = 0, text: str = "x") -> dict[str, Any]:
    return {"id": item_id, "baseVersion": base, "deleted": False, "ciphertext": ct(text)}


def tomb(item_id: str, base: int) -> dict[str, Any]:
    return {"id": item_id, "baseVersion": base, "deleted": True}


def batch(items: list[dict[str, Any]], batch_id: str | None = None) -> dict[str, Any]:
    return {"batchId": batch_id or secrets.token_hex(6), "items": items}
