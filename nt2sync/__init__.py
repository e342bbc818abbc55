"""nt2sync: the NT² reference client (local encrypted vault + end-to-end-encrypted sync)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nt2sync.engine import Client
    from nt2sync.report import SyncSummary

__all__ = ["Client", "SyncSummary"]


def __getattr__(name: str) -> Any:
    # `nt2sync.Client` without importing the engine (httpx, the crypto) for the CLI's --help.
    if name == "Client":
        from nt2sync.engine import Client

        return Client
    if name == "SyncSummary":
        from nt2sync.report import SyncSummary

        return SyncSummary
    raise AttributeError(f"module 'nt2sync' has no attribute {name!r}")
