"""§3 authentication and the meta routes."""

from __future__ import annotations

from typing import Literal

from chalicelib.shared.models import Request, Response
from chalicelib.shared.types import DeviceName, KeyDid, Nonce, ReplicaId, Signature


class Health(Response):
    status: Literal["ok"]
    audience: str
    protocol: str


class ChallengeRequest(Request):
    keyDid: KeyDid


class ChallengeResponse(Response):
    nonce: str
    expiresAt: int


class SessionRequest(Request):
    keyDid: KeyDid
    replicaId: ReplicaId
    nonce: Nonce
    signature: Signature
    deviceName: DeviceName | None = None


class Proof(Request):
    """§3: the vault's current key signs `nt2-sync/v1/confirm` over a fresh nonce."""

    nonce: Nonce
    signature: Signature


class SessionResponse(Response):
    token: str
    expiresAt: int
