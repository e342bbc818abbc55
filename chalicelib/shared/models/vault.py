"""§4 registration, bootstrap, salt; §7 rotation."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from chalicelib.shared.limits import MAX_KDF_ITERATIONS, MAX_VERIFIER_CHARS, MIN_KDF_ITERATIONS
from chalicelib.shared.models import Request, Response
from chalicelib.shared.models.identity import Proof
from chalicelib.shared.types import KeyDid, PublicKeys, SaltHex, Signature


class Kdf(Request):
    algorithm: Literal["PBKDF2-SHA256"]
    iterations: int = Field(ge=MIN_KDF_ITERATIONS, le=MAX_KDF_ITERATIONS)


class KdfOut(Response):
    algorithm: Literal["PBKDF2-SHA256"]
    iterations: int


class RegisterRequest(Request):
    saltHex: SaltHex
    kdf: Kdf | None = None
    verifier: str | None = Field(default=None, max_length=MAX_VERIFIER_CHARS)
    publicKeys: PublicKeys | None = None
    proof: Proof | None = None  # needed only to change a stored verifier/publicKeys (§4)


class RegisterResponse(Response):
    keyDid: str
    registeredAt: int


class KeyDidQuery(Request):
    keyDid: KeyDid


class BootstrapResponse(Response):
    keyDid: str
    saltHex: str
    verifier: str | None
    publicKeys: dict[str, Any] | None
    kdf: KdfOut


class SaltResponse(Response):
    saltHex: str
    verifier: str | None


class RotateRequest(Request):
    newKeyDid: KeyDid
    signature: Signature
    proof: Proof  # by the OLD key: a stolen session alone cannot rotate the vault away
    verifier: str | None = Field(default=None, max_length=MAX_VERIFIER_CHARS)
    publicKeys: PublicKeys | None = None
    kdf: Kdf | None = None


class RotateResponse(Response):
    keyDid: str
    rotatedAt: int
