"""§3 routes: challenge, session, logout."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib import identity
from chalicelib.routes.context import principal, table
from chalicelib.routes.http import json_response, operation, parse_body
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
    errors=("invalid_request", "invalid_key_did", "rate_limited"),
)
def challenge() -> Response:
    req = parse_body(bp.current_request, ChallengeRequest)
    nonce, expires_at = identity.create_challenge(table(), req.keyDid)
    return json_response(ChallengeResponse(nonce=nonce, expiresAt=expires_at))


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
        "invalid_request",
        "invalid_key_did",
        "invalid_encoding",
        "challenge_invalid",
        "challenge_expired",
        "invalid_signature",
        "device_revoked",
        "device_limit",
    ),
)
def open_session() -> Response:
    req = parse_body(bp.current_request, SessionRequest)
    token, expires_at = identity.open_session(table(), get_settings(), req)
    return json_response(SessionResponse(token=token, expiresAt=expires_at))


@operation(
    bp,
    "/api/auth/session",
    "DELETE",
    summary="End this session",
    tag="auth",
    status=204,
    errors=("unauthorized", "session_expired", "session_revoked"),
)
def close_session() -> Response:
    caller = principal(bp.current_request)
    identity.end_session(table(), caller)
    return json_response(None, 204)
