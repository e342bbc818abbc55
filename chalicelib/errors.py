"""Every error the API answers with: a stable code, its status, a human sentence."""

from __future__ import annotations

from chalicelib.shared.codes import STATUS_BY_CODE, ErrorCode
from chalicelib.shared.limits import MAX_ECHO_CHARS

__all__ = ["STATUS_BY_CODE", "ApiError", "ErrorCode", "echo", "unavailable"]


class ApiError(Exception):
    """A protocol error: raised anywhere, made a response in one place (routes/responses.py)."""

    def __init__(
        self, code: ErrorCode | str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)  # ValueError on a code the protocol does not have
        self.message = message
        self.status = STATUS_BY_CODE[self.code]
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        return {"code": str(self.code), "message": self.message}


def unavailable(retry_after: int = 1) -> ApiError:
    """Storage stayed throttled after our retries; the same request is safe to retry."""
    return ApiError(
        ErrorCode.UNAVAILABLE,
        "The storage service is busy; retry this request shortly.",
        {"Retry-After": str(retry_after)},
    )


def echo(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """Request text as a message may quote it: at most `limit` characters, a cut marked `…`."""
    return text if len(text) <= limit else text[: max(limit, 0)] + "…"
