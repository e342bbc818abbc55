"""§7 enrolled devices (rotation's models live in models/vault.py)."""

from __future__ import annotations

from pydantic import Field

from chalicelib.shared.models import Request, Response
from chalicelib.shared.models.identity import Proof
from chalicelib.shared.types import DeviceName, ReplicaId


class ReplicaPath(Request):
    """The `{replicaId}` path parameter, validated like any other input."""

    replicaId: ReplicaId


class RevokeRequest(Request):
    proof: Proof  # §3: a session alone cannot revoke the owner's devices


class RenameRequest(Request):
    name: DeviceName


class DeviceOut(Response):
    replicaId: str
    name: str | None
    enrolledAt: int
    lastSeenAt: int
    revokedAt: int | None
    current: bool


class DevicesQuery(Request):
    cursor: str | None = Field(default=None, max_length=512)


class DevicesResponse(Response):
    devices: list[DeviceOut]
    cursor: str | None
