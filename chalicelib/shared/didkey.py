"""Ed25519 did:key (multicodec 0xed01, base58btc, multibase 'z')."""

from __future__ import annotations

import base58

_PREFIX = b"\xed\x01"
_DID_PREFIX = "did:key:z"
MAX_DID_LENGTH = 64  # an Ed25519 did:key is 56 characters


class InvalidDidKey(ValueError):
    """The string is not an Ed25519 did:key."""


def encode_did_key(public_key: bytes) -> str:
    """did:key for a 32-byte Ed25519 public key."""
    if len(public_key) != 32:
        raise ValueError("Ed25519 public keys are 32 bytes")
    return _DID_PREFIX + base58.b58encode(_PREFIX + public_key).decode("ascii")


def parse_did_key(did: str) -> bytes:
    """Return the Ed25519 public key inside a did:key, or raise InvalidDidKey."""
    if not isinstance(did, str) or len(did) > MAX_DID_LENGTH or not did.startswith(_DID_PREFIX):
        raise InvalidDidKey("not an Ed25519 did:key")
    try:
        raw = base58.b58decode(did[len(_DID_PREFIX) :].encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise InvalidDidKey("not base58btc") from exc
    if len(raw) != 34 or raw[:2] != _PREFIX:
        raise InvalidDidKey("not an Ed25519 did:key")
    if encode_did_key(raw[2:]) != did:  # leading-zero or other non-canonical spellings
        raise InvalidDidKey("non-canonical did:key")
    return raw[2:]
