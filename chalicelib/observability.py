"""Per-request structured log line (one JSON object per request); no secrets ever."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

log = logging.getLogger("nt2sync.request")


def begin(request: Any, route: str) -> dict[str, Any]:
    ctx: dict[str, Any] = {"route": route}
    try:
        ctx["method"] = request.method
        ctx["requestId"] = request.context.get("requestId")
    except AttributeError:
        pass
    return ctx


def annotate(ctx: dict[str, Any] | None, **fields: Any) -> None:
    if ctx is not None:
        ctx.update(fields)


def key_hash(key_did: str) -> str:
    """A short, stable, non-reversible tag for a keyDid in logs."""
    return hashlib.sha256(key_did.encode()).hexdigest()[:16]


def finish(ctx: dict[str, Any], status: int, seconds: float) -> None:
    ctx["status"] = status
    ctx["latencyMs"] = round(seconds * 1000, 1)
    log.info(json.dumps(ctx, separators=(",", ":"), default=str))
