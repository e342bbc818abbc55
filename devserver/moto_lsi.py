"""Make moto fetch non-projected attributes on a local secondary index, as DynamoDB does.

DynamoDB answers a Query on an LSI with `Select=ALL_ATTRIBUTES` by fetching the attributes
the index does not project from the base table (strongly consistent for an LSI). moto 5.2.5
returns only the projected attributes. Our version index projects keys only (an item's LSI
entry counts toward its 400 KB limit, so projecting 256 KiB of ciphertext would halve the
item size we can store), so pull relies on that fetch.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.dynamodb.models.table import LocalSecondaryIndex
from moto.dynamodb.responses import DynamoHandler

__all__ = ["apply"]

_MARKER = "_nt2_lsi_fetch"
_state = threading.local()


def apply() -> None:
    """Install (idempotent)."""
    if getattr(DynamoHandler.query, _MARKER, False):
        return
    original_query = DynamoHandler.query
    original_project = LocalSecondaryIndex.project

    @functools.wraps(original_query)
    def query(self: Any) -> Any:
        params = getattr(self, "params", None) or {}
        _state.fetch = params.get("Select") == "ALL_ATTRIBUTES"
        try:
            return original_query(self)
        finally:
            _state.fetch = False

    @functools.wraps(original_project)
    def project(self: Any, item: Any) -> Any:
        if getattr(_state, "fetch", False):
            return item
        return original_project(self, item)

    setattr(query, _MARKER, True)
    DynamoHandler.query = query  # type: ignore[method-assign]
    LocalSecondaryIndex.project = project  # type: ignore[method-assign]
