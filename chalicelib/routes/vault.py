"""§4 routes: register, bootstrap, salt."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import identity, registration
from chalicelib.errors import ErrorCode
from chalicelib.identity import Principal
from chalicelib.routes.context import table
from chalicelib.routes.operations import AUTH_ERRORS, Reply, operation
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
        ErrorCode.INVALID_REQUEST,
        ErrorCode.INVALID_ENCODING,
        *AUTH_ERRORS,
        ErrorCode.CHALLENGE_INVALID,
        ErrorCode.CHALLENGE_EXPIRED,
        ErrorCode.INVALID_SIGNATURE,
        ErrorCode.PREMIUM_REQUIRED,
        ErrorCode.PROOF_REQUIRED,
        ErrorCode.SALT_CONFLICT,
        ErrorCode.KDF_CONFLICT,
        ErrorCode.KEY_DID_RETIRED,
    ),
)
def register(body: RegisterRequest, caller: Principal) -> Reply:
    settings = get_settings()
    if body.proof is not None:  # a proof that is given is always checked and spent (§3)
        identity.check_proof(table(), settings, caller, "register", caller.key_did, body.proof)
    proven = body.proof is not None
    registered_at, created = registration.register(table(), settings, caller, body, proven)
    # 201 the first time, 200 for the same registration again (§4)
    return Reply(
        RegisterResponse(keyDid=caller.key_did, registeredAt=registered_at), 201 if created else 200
    )


@operation(
    bp,
    "/api/vault/bootstrap",
    "GET",
    summary="Public salt and KDF for a new device",
    tag="vault",
    query=KeyDidQuery,
    response=BootstrapResponse,
    auth=False,
    errors=(ErrorCode.INVALID_REQUEST, ErrorCode.INVALID_KEY_DID, ErrorCode.VAULT_NOT_FOUND),
)
def bootstrap(query: KeyDidQuery) -> BootstrapResponse:
    return BootstrapResponse(**registration.bootstrap(table(), query.keyDid))


@operation(
    bp,
    "/api/salt",
    "GET",
    summary="The vault's salt for a signed-in device",
    tag="vault",
    query=KeyDidQuery,
    response=SaltResponse,
    errors=(
        ErrorCode.INVALID_REQUEST,
        ErrorCode.INVALID_KEY_DID,
        *AUTH_ERRORS,
        ErrorCode.KEY_DID_MISMATCH,
        ErrorCode.VAULT_NOT_FOUND,
    ),
)
def salt(query: KeyDidQuery, caller: Principal) -> SaltResponse:
    return SaltResponse(**registration.session_salt(caller, query.keyDid))
