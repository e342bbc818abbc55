"""Every error the API answers with: a stable code, its status, a human sentence."""

from __future__ import annotations

STATUS_BY_CODE: dict[str, int] = {
    "invalid_request": 400,
    "invalid_key_did": 400,
    "invalid_encoding": 400,
    "duplicate_item": 400,
    "unauthorized": 401,
    "session_expired": 401,
    "session_revoked": 401,
    "challenge_invalid": 401,
    "challenge_expired": 401,
    "invalid_signature": 401,
    "premium_required": 402,
    "key_did_mismatch": 403,
    "device_revoked": 403,
    "vault_not_found": 404,
    "device_not_found": 404,
    "attachment_not_found": 404,
    "promo_not_found": 404,
    "salt_conflict": 409,
    "kdf_conflict": 409,
    "batch_mismatch": 409,
    "attachment_mismatch": 409,
    "key_did_taken": 409,
    "key_did_retired": 409,
    "already_redeemed": 409,
    "promo_exhausted": 409,
    "resync_required": 410,
    "payload_too_large": 413,
    "quota_exceeded": 413,
    "rate_limited": 429,
    "unavailable": 503,
    "internal_error": 500,
}


class ApiError(Exception):
    """A protocol error: raised anywhere, turned into a response in one place (routes/http.py)."""

    def __init__(self, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        if code not in STATUS_BY_CODE:
            raise ValueError(f"unknown error code {code}")
        self.code = code
        self.message = message
        self.status = STATUS_BY_CODE[code]
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def unavailable(retry_after: int = 1) -> ApiError:
    """Storage stayed throttled after our retries; the same request is safe to retry."""
    return ApiError(
        "unavailable",
        "The storage service is busy; retry this request shortly.",
        {"Retry-After": str(retry_after)},
    )
