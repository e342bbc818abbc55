"""The domain-separated messages that Key DID signatures cover (PROTOCOL.md §3, §7)."""

from __future__ import annotations

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

SESSION_TAG = "nt2-sync/v1/session"
ROTATE_TAG = "nt2-sync/v1/rotate"
CONFIRM_TAG = "nt2-sync/v1/confirm"


def session_message(audience: str, key_did: str, replica_id: str, nonce: str) -> bytes:
    """The five lines a session signature covers (nonce as sent, base64url)."""
    return "\n".join((SESSION_TAG, audience, key_did, replica_id, nonce)).encode("utf-8")


def rotate_message(audience: str, old_key_did: str, new_key_did: str) -> bytes:
    """The four lines a rotation signature by the new key covers."""
    return "\n".join((ROTATE_TAG, audience, old_key_did, new_key_did)).encode("utf-8")


def confirm_message(audience: str, key_did: str, action: str, target: str, nonce: str) -> bytes:
    """The six lines a proof covers: the current key confirms one action on one target (§3)."""
    return "\n".join((CONFIRM_TAG, audience, key_did, action, target, nonce)).encode("utf-8")


def sign(seed: bytes, message: bytes) -> bytes:
    """Ed25519 signature of message by the key with this 32-byte seed."""
    return bytes(SigningKey(seed).sign(message).signature)


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when signature is a valid Ed25519 signature of message by public_key."""
    if len(signature) != 64:
        return False
    try:
        VerifyKey(public_key).verify(message, signature)
    except (BadSignatureError, ValueError):
        return False
    return True
