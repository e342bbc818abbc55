"""A TransactWriteItems whose actions have names, so a cancellation says *which* failed.

DynamoDB reports cancellation reasons by position; deciding by index (`if 1 in failed`)
silently changes meaning when an action is added or moved. Here every action is added
under a name, and a cancellation is raised as `Cancelled(failed={"head", "device"}, ...)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.store.table import Item, Table, error_code, from_item


@dataclass
class Cancelled(Exception):
    """The transaction was cancelled: the named actions whose condition failed, their old
    rows where DynamoDB returned them, and whether another transaction conflicted."""

    failed: set[str] = field(default_factory=set)
    old: dict[str, Item | None] = field(default_factory=dict)
    conflict: bool = False

    def __str__(self) -> str:
        return f"transaction cancelled: failed={sorted(self.failed)} conflict={self.conflict}"


class Transaction:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.actions: list[dict[str, Any]] = []

    def add(self, name: str, action: dict[str, Any]) -> None:
        if name in self.names:
            raise ValueError(f"duplicate action name {name!r}")
        self.names.append(name)
        self.actions.append(action)

    def __len__(self) -> int:
        return len(self.actions)

    def commit(self, table: Table) -> None:
        """Commit all actions or none; a cancellation is raised as Cancelled from the error."""
        try:
            table.transact(self.actions)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            raise self.cancelled(exc) from exc

    def cancelled(self, exc: ClientError) -> Cancelled:
        reasons = exc.response.get("CancellationReasons") or []
        out = Cancelled()
        for name, reason in zip(self.names, reasons, strict=False):
            code = str(reason.get("Code") or "None")
            if code == "ConditionalCheckFailed":
                out.failed.add(name)
                old = reason.get("Item")
                out.old[name] = from_item(old) if old else None
            elif code == "TransactionConflict":
                out.conflict = True
        if not reasons:
            out.conflict = True  # no reasons at all: treat as a retryable conflict
        return out
