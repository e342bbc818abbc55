"""Server clock in epoch milliseconds; tests move it with `set_offset_ms`."""

from __future__ import annotations

import time

DAY_MS = 86_400_000

_offset_ms = 0


def now_ms() -> int:
    return int(time.time() * 1000) + _offset_ms


def set_offset_ms(offset: int) -> None:
    """Shift the server clock (tests only: expiry, retention)."""
    global _offset_ms
    _offset_ms = offset
