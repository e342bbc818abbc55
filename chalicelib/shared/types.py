"""Validated wire types: each failure carries the protocol's error code as its pydantic type."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AfterValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from chalicelib.shared.didkey import InvalidDidKey, parse_did_key
from chalicelib.shared.encoding import EncodingError, b64url_decode, hex_decode
from chalicelib.shared.limits import MAX_CIPHERTEXT_BYTES, MAX_PUBLIC_KEYS_BYTES

B64URL_PATTERN = "^[A-Za-z0-9_-]*$"


def _key_did(value: str) -> str:
    try:
        parse_did_key(value)
    except InvalidDidKey as exc:
        raise PydanticCustomError("invalid_key_did", "not an Ed25519 did:key") from exc
    return value


def _b64url_exact(length: int) -> Any:
    def check(value: str) -> str:
        try:
            raw = b64url_decode(value)
        except EncodingError as exc:
            raise PydanticCustomError("invalid_encoding", "malformed base64url") from exc
        if len(raw) != length:
            raise PydanticCustomError("value_error", f"must encode exactly {length} bytes")
        return value

    return check


def _ciphertext(value: str) -> str:
    if len(value) > (MAX_CIPHERTEXT_BYTES * 4 + 2) // 3 + 4:
        raise PydanticCustomError("payload_too_large", "ciphertext over 256 KiB")
    try:
        raw = b64url_decode(value)
    except EncodingError as exc:
        raise PydanticCustomError("invalid_encoding", "malformed base64url") from exc
    if len(raw) > MAX_CIPHERTEXT_BYTES:
        raise PydanticCustomError("payload_too_large", "ciphertext over 256 KiB")
    if not raw:
        raise PydanticCustomError("value_error", "ciphertext must not be empty")
    return value


def _salt_hex(value: str) -> str:
    try:
        raw = hex_decode(value)
    except EncodingError as exc:
        raise PydanticCustomError("invalid_encoding", "malformed lower-case hex") from exc
    if not 16 <= len(raw) <= 64:
        raise PydanticCustomError("value_error", "salt must be 16 to 64 bytes")
    return value


def _sha256_b64(value: str) -> str:
    return _b64url_exact(32)(value)


def _printable_name(value: str) -> str:
    if not value.isprintable():
        raise PydanticCustomError("value_error", "name must be printable characters")
    return value


def _storable(value: Any, depth: int = 1) -> bool:
    """JSON that DynamoDB stores as it is: ≤ 32 levels, integers of ≤ 38 digits, no floats."""
    if depth > 32:
        return False
    if isinstance(value, dict):
        return all(_storable(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return all(_storable(v, depth + 1) for v in value)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int):
        return abs(value) < 10**38
    return False


def _public_keys(value: dict[str, Any]) -> dict[str, Any]:
    if not _storable(value):
        raise PydanticCustomError(
            "value_error", "publicKeys: strings, integers, booleans, lists, objects (≤ 32 deep)"
        )
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > MAX_PUBLIC_KEYS_BYTES:
        raise PydanticCustomError("value_error", "publicKeys over 4 KiB")
    return value


def _not_dot_segment(value: str) -> str:
    # `.` and `..` are path segments HTTP clients remove: a URL built from them leaves its
    # prefix (a presigned URL would point at `vaults/` instead of the vault's own folder).
    if value in (".", ".."):
        raise PydanticCustomError("value_error", "`.` and `..` are not ids")
    return value


# Any string that is not an Ed25519 did:key is invalid_key_did, whatever its length (§2):
# parse_did_key refuses long ones before decoding, so no max_length (that would say
# invalid_request).
KeyDid = Annotated[
    str,
    AfterValidator(_key_did),
    WithJsonSchema(
        {"type": "string", "pattern": "^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$", "maxLength": 56}
    ),
]
ReplicaId = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9._-]{1,64}$"),
    AfterValidator(_not_dot_segment),
    WithJsonSchema({"type": "string", "pattern": r"^(?!\.{1,2}$)[A-Za-z0-9._-]{1,64}$"}),
]
ItemId = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9._:-]{1,128}$"),
    AfterValidator(_not_dot_segment),
    WithJsonSchema({"type": "string", "pattern": r"^(?!\.{1,2}$)[A-Za-z0-9._:-]{1,128}$"}),
]
BatchId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
Nonce = Annotated[
    str,
    AfterValidator(_b64url_exact(32)),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"}),
]
Signature = Annotated[
    str,
    AfterValidator(_b64url_exact(64)),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z0-9_-]{86}$"}),
]
Sha256B64 = Annotated[
    str,
    AfterValidator(_sha256_b64),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"}),
]
Ciphertext = Annotated[
    str,
    AfterValidator(_ciphertext),
    WithJsonSchema(
        {"type": "string", "pattern": B64URL_PATTERN, "minLength": 2, "maxLength": 349526}
    ),
]
SaltHex = Annotated[
    str,
    AfterValidator(_salt_hex),
    WithJsonSchema({"type": "string", "pattern": "^([0-9a-f]{2}){16,64}$"}),
]
DeviceName = Annotated[
    str,
    Field(min_length=1, max_length=64),
    AfterValidator(_printable_name),
    WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[\\x20-\\x7e]+$"}
    ),
]
PublicKeys = Annotated[dict[str, Any], AfterValidator(_public_keys)]

PROTOCOL_CODES = {"invalid_key_did", "invalid_encoding", "payload_too_large"}
