"""What the engine reports back: progress of long work and the summary of one sync."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class Progress(Protocol):
    """What the engine reports long work to (the CLI draws a rich progress bar)."""

    def start(self, label: str, total: int | None) -> None: ...
    def advance(self, n: int) -> None: ...
    def stop(self) -> None: ...


class NoProgress:
    """Progress that shows nothing."""

    def start(self, label: str, total: int | None) -> None:
        """Ignore."""

    def advance(self, n: int) -> None:
        """Ignore."""

    def stop(self) -> None:
        """Ignore."""


@dataclass
class SyncSummary:
    """What one sync did."""

    pushed: int = 0
    pulled: int = 0
    conflicts: int = 0
    attachments_uploaded: int = 0
    notices: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "pushed": self.pushed,
            "pulled": self.pulled,
            "conflicts": self.conflicts,
            "attachmentsUploaded": self.attachments_uploaded,
        }
