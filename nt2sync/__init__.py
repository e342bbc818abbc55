"""nt2sync: the NT² reference client (local encrypted vault + end-to-end-encrypted sync)."""

from nt2sync.engine import Client, SyncSummary

__all__ = ["Client", "SyncSummary"]
