"""Serialize moto's DynamoDB requests: real DynamoDB applies each request atomically.

moto's server answers requests on many threads and its DynamoDB backend has no locks, so a
TransactWriteItems could interleave with another request's reads and writes — an anomaly
real DynamoDB never shows. Our concurrency tests run real threads against the moto server,
so they need DynamoDB's per-request atomicity: one lock around each DynamoDB action.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.dynamodb.responses import DynamoHandler

__all__ = ["LOCK", "apply"]

LOCK = threading.RLock()
_MARKER = "_nt2_serialized"


def apply() -> None:
    """Install the lock (idempotent)."""
    original = DynamoHandler.call_action
    if getattr(original, _MARKER, False):
        return

    @functools.wraps(original)
    def call_action(self: Any) -> Any:
        with LOCK:
            return original(self)

    setattr(call_action, _MARKER, True)
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
