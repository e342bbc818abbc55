"""Every error code of the protocol (PROTOCOL.md §1), shared by server, client and tests.

A typo in a code is a type error, not a 500: raise `ApiError(ErrorCode.X, ...)` on the
server, compare `error.code == ErrorCode.X` in clients.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """The `code` member of every error body; the value is the wire string."""

    INVALID_REQUEST = "invalid_request"
    INVALID_KEY_DID = "invalid_key_did"
    INVALID_ENCODING = "invalid_encoding"
    DUPLICATE_ITEM = "duplicate_item"
    UNAUTHORIZED = "unauthorized"
    SESSION_EXPIRED = "session_expired"
    SESSION_REVOKED = "session_revoked"
    CHALLENGE_INVALID = "challenge_invalid"
    CHALLENGE_EXPIRED = "challenge_expired"
    INVALID_SIGNATURE = "invalid_signature"
    PREMIUM_REQUIRED = "premium_required"
    KEY_DID_MISMATCH = "key_did_mismatch"
    DEVICE_REVOKED = "device_revoked"
    PROOF_REQUIRED = "proof_required"
    VAULT_NOT_FOUND = "vault_not_found"
    DEVICE_NOT_FOUND = "device_not_found"
    ATTACHMENT_NOT_FOUND = "attachment_not_found"
    PROMO_NOT_FOUND = "promo_not_found"
    SALT_CONFLICT = "salt_conflict"
    KDF_CONFLICT = "kdf_conflict"
    BATCH_MISMATCH = "batch_mismatch"
    ATTACHMENT_MISMATCH = "attachment_mismatch"
    KEY_DID_TAKEN = "key_did_taken"
    KEY_DID_RETIRED = "key_did_retired"
    DEVICE_LIMIT = "device_limit"
    ALREADY_REDEEMED = "already_redeemed"
    PROMO_EXHAUSTED = "promo_exhausted"
    RESYNC_REQUIRED = "resync_required"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    QUOTA_EXCEEDED = "quota_exceeded"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    INTERNAL_ERROR = "internal_error"


STATUS_BY_CODE: dict[ErrorCode, int] = {
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.INVALID_KEY_DID: 400,
    ErrorCode.INVALID_ENCODING: 400,
    ErrorCode.DUPLICATE_ITEM: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.SESSION_EXPIRED: 401,
    ErrorCode.SESSION_REVOKED: 401,
    ErrorCode.CHALLENGE_INVALID: 401,
    ErrorCode.CHALLENGE_EXPIRED: 401,
    ErrorCode.INVALID_SIGNATURE: 401,
    ErrorCode.PREMIUM_REQUIRED: 402,
    ErrorCode.KEY_DID_MISMATCH: 403,
    ErrorCode.DEVICE_REVOKED: 403,
    ErrorCode.PROOF_REQUIRED: 403,
    ErrorCode.VAULT_NOT_FOUND: 404,
    ErrorCode.DEVICE_NOT_FOUND: 404,
    ErrorCode.ATTACHMENT_NOT_FOUND: 404,
    ErrorCode.PROMO_NOT_FOUND: 404,
    ErrorCode.SALT_CONFLICT: 409,
    ErrorCode.KDF_CONFLICT: 409,
    ErrorCode.BATCH_MISMATCH: 409,
    ErrorCode.ATTACHMENT_MISMATCH: 409,
    ErrorCode.KEY_DID_TAKEN: 409,
    ErrorCode.KEY_DID_RETIRED: 409,
    ErrorCode.DEVICE_LIMIT: 409,
    ErrorCode.ALREADY_REDEEMED: 409,
    ErrorCode.PROMO_EXHAUSTED: 409,
    ErrorCode.RESYNC_REQUIRED: 410,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.QUOTA_EXCEEDED: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL_ERROR: 500,
}
