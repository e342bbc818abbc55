"""Strict wire encodings: base64url without padding, lower-case hex."""

from __future__ import annotations

import base64
import binascii
import re

_B64URL = re.compile(r"^[A-Za-z0-9_-]*\Z")
_HEX = re.compile(r"^(?:[0-9a-f]{2})*\Z")


class EncodingError(ValueError):
    """A value is not valid base64url (unpadded) or lower-case hex."""


def b64url_encode(data: bytes) -> str:
    """Encode bytes as base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url; reject padding, other alphabets and non-canonical tails."""
    if not isinstance(text, str) or not _B64URL.match(text) or len(text) % 4 == 1:
        raise EncodingError("not base64url without padding")
    padded = text + "=" * (-len(text) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded)
    except (binascii.Error, ValueError) as exc:
        raise EncodingError("not base64url without padding") from exc
    if b64url_encode(raw) != text:  # unused trailing bits set: not canonical
        raise EncodingError("non-canonical base64url")
    return raw


def hex_decode(text: str) -> bytes:
    """Decode lower-case hex."""
    if not isinstance(text, str) or not _HEX.match(text):
        raise EncodingError("not lower-case hex")
    return bytes.fromhex(text)
