"""Conflict rules shared by every client (docs/CRYPTO.md, "Conflicts"). Pure functions.

The server only decides *that* two writes conflict (baseVersion check); the client that
sees the conflict decides *how* it is resolved, from the decrypted plaintexts:

- two live edits: the later edit (``updatedAt``, the device clock, in ms) is kept as the
  item; ties go to the greater ``replicaId``, then to the greater content digest, so every
  replica decides the same way. The other edit becomes a new "conflicted copy" item unless
  its text is identical. Nothing a person typed is dropped.
- a remote tombstone against a local edit that was never pushed: the item is deleted and the
  local edit survives as a conflicted copy.
- a local deletion against a remote live edit: the remote edit wins (the deletion is undone).
- two tombstones: nothing to decide.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

CONTENT_FIELDS = ("title", "body", "username", "url")

Side = Literal["local", "remote"]


def content_digest(item: Mapping[str, Any]) -> str:
    """sha256 of the fields a person typed (and the attachment list)."""
    content = {name: item.get(name, "") for name in CONTENT_FIELDS}
    content["attachments"] = sorted(a.get("id", "") for a in item.get("attachments", []))
    raw = json.dumps(content, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(raw).hexdigest()


def same_content(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when two edits carry the same text."""
    return content_digest(a) == content_digest(b)


def order_key(item: Mapping[str, Any]) -> tuple[int, str, str]:
    """Total order of edits: edit time, then replicaId, then content digest."""
    return (int(item.get("updatedAt", 0)), str(item.get("replicaId", "")), content_digest(item))


def local_wins(local: Mapping[str, Any], remote: Mapping[str, Any]) -> bool:
    """True when the local edit is the later one under order_key."""
    return order_key(local) > order_key(remote)


@dataclass(frozen=True)
class Resolution:
    """Outcome of two live edits of one item."""

    keep: Side  # whose text stays under the item's id
    copy: Side | None  # whose text becomes a new conflicted-copy item (None: same text)
    next_revision: int  # revision the kept text must carry when it is written again


def resolve_live(local: Mapping[str, Any], remote: Mapping[str, Any]) -> Resolution:
    """Decide between a local unpushed edit and a remote edit of the same item."""
    next_revision = max(int(local["revision"]), int(remote["revision"])) + 1
    if same_content(local, remote):
        return Resolution(keep="remote", copy=None, next_revision=int(remote["revision"]))
    if local_wins(local, remote):
        return Resolution(keep="local", copy="remote", next_revision=next_revision)
    return Resolution(keep="remote", copy="local", next_revision=int(remote["revision"]))


def conflicted_copy_title(title: str, replica_id: str, updated_at_ms: int) -> str:
    """Title of the copy made from a losing edit."""
    when = datetime.fromtimestamp(updated_at_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")
    return f"{title} (conflicted copy {when} {replica_id})"


def conflicted_copy(item: Mapping[str, Any], *, now_ms: int, replica_id: str) -> dict[str, Any]:
    """The plaintext of a new item that keeps a losing edit's text."""
    copy = {name: item.get(name, "") for name in CONTENT_FIELDS}
    copy["title"] = conflicted_copy_title(
        str(item.get("title", "")), str(item.get("replicaId", "")), int(item.get("updatedAt", 0))
    )
    copy.update(updatedAt=now_ms, revision=1, replicaId=replica_id, attachments=[])
    copy["attachments"] = list(item.get("attachments", []))
    return copy
