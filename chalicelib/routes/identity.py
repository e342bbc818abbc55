"""§3 routes: challenge, session, logout."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import identity
from chalicelib.errors import ErrorCode
from chalicelib.identity import Principal
from chalicelib.routes.context import table
from chalicelib.routes.operations import AUTH_ERRORS, operation
from chalicelib.settings import get_settings
from chalicelib.shared.models.identity import (
    ChallengeRequest,
    ChallengeResponse,
    SessionRequest,
    SessionResponse,
)

bp = Blueprint(__name__)


@operation(
    bp,
    "/api/auth/challenge",
    "POST",
    summary="Ask for a single-use nonce",
    tag="auth",
    body=ChallengeRequest,
    response=ChallengeResponse,
    auth=False,
    errors=(ErrorCode.INVALID_REQUEST, ErrorCode.INVALID_KEY_DID, ErrorCode.RATE_LIMITED),
)
def challenge(body: ChallengeRequest) -> ChallengeResponse:
    nonce, expires_at = identity.create_challenge(table(), body.keyDid)
    return ChallengeResponse(nonce=nonce, expiresAt=expires_at)


@operation(
    bp,
    "/api/auth/session",
    "POST",
    summary="Open a session with a signed nonce",
    tag="auth",
    body=SessionRequest,
    response=SessionResponse,
    auth=False,
    errors=(
        ErrorCode.INVALID_REQUEST,
        ErrorCode.INVALID_KEY_DID,
        ErrorCode.INVALID_ENCODING,
        ErrorCode.CHALLENGE_INVALID,
        ErrorCode.CHALLENGE_EXPIRED,
        ErrorCode.INVALID_SIGNATURE,
        ErrorCode.DEVICE_REVOKED,
        ErrorCode.DEVICE_LIMIT,
    ),
)
def open_session(body: SessionRequest) -> SessionResponse:
    token, expires_at = identity.open_session(table(), get_settings(), body)
    return SessionResponse(token=token, expiresAt=expires_at)


@operation(
    bp,
    "/api/auth/session",
    "DELETE",
    summary="End this session",
    tag="auth",
    status=204,
    errors=AUTH_ERRORS,
)
def close_session(caller: Principal) -> None:
    identity.end_session(table(), caller)
