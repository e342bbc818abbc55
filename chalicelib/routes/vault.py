"""§4 routes: register, bootstrap, salt."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib import identity, registration
from chalicelib.routes.context import principal, table
from chalicelib.routes.http import AUTH_ERRORS, json_response, operation, parse_body, parse_query
from chalicelib.settings import get_settings
from chalicelib.shared.models.vault import (
    BootstrapResponse,
    KeyDidQuery,
    RegisterRequest,
    RegisterResponse,
    SaltResponse,
)

bp = Blueprint(__name__)


@operation(
    bp,
    "/api/vault/register",
    "POST",
    summary="Escrow the vault's existing salt",
    tag="vault",
    body=RegisterRequest,
    response=RegisterResponse,
    status=201,
    errors=(
        "invalid_request",
        "invalid_encoding",
        *AUTH_ERRORS,
        "challenge_invalid",
        "challenge_expired",
        "invalid_signature",
        "premium_required",
        "proof_required",
        "salt_conflict",
        "kdf_conflict",
        "key_did_retired",
    ),
)
def register() -> Response:
    request = bp.current_request
    req = parse_body(request, RegisterRequest)
    caller = principal(request)
    settings = get_settings()
    if req.proof is not None:  # a proof that is given is always checked and spent (§3)
        identity.check_proof(table(), settings, caller, "register", caller.key_did, req.proof)
    proven = req.proof is not None
    registered_at, created = registration.register(table(), settings, caller, req, proven)
    body = RegisterResponse(keyDid=caller.key_did, registeredAt=registered_at)
    return json_response(body, 201 if created else 200)


@operation(
    bp,
    "/api/vault/bootstrap",
    "GET",
    summary="Public salt and KDF for a new device",
    tag="vault",
    query=KeyDidQuery,
    response=BootstrapResponse,
    auth=False,
    errors=("invalid_request", "invalid_key_did", "vault_not_found"),
)
def bootstrap() -> Response:
    query = parse_query(bp.current_request, KeyDidQuery)
    return json_response(BootstrapResponse(**registration.bootstrap(table(), query.keyDid)))


@operation(
    bp,
    "/api/salt",
    "GET",
    summary="The vault's salt for a signed-in device",
    tag="vault",
    query=KeyDidQuery,
    response=SaltResponse,
    errors=(
        "invalid_request",
        "invalid_key_did",
        *AUTH_ERRORS,
        "key_did_mismatch",
        "vault_not_found",
    ),
)
def salt() -> Response:
    request = bp.current_request
    query = parse_query(request, KeyDidQuery)
    caller = principal(request)
    return json_response(SaltResponse(**registration.session_salt(caller, query.keyDid)))
