"""§7 routes: enrolled devices (list, rename, revoke) and key rotation."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib import devices, identity, rotation
from chalicelib.routes.context import principal, table
from chalicelib.routes.http import (
    AUTH_ERRORS,
    json_response,
    operation,
    parse_body,
    parse_path,
    parse_query,
)
from chalicelib.settings import get_settings
from chalicelib.shared.models.devices import (
    DeviceOut,
    DevicesQuery,
    DevicesResponse,
    RenameRequest,
    ReplicaPath,
    RevokeRequest,
)
from chalicelib.shared.models.vault import RotateRequest, RotateResponse

bp = Blueprint(__name__)


def _replica(replica_id: str) -> str:
    return parse_path(ReplicaPath, replicaId=replica_id).replicaId


@operation(
    bp,
    "/api/devices",
    "GET",
    summary="Devices enrolled in this vault",
    tag="devices",
    query=DevicesQuery,
    response=DevicesResponse,
    errors=("invalid_request", *AUTH_ERRORS),
)
def list_devices() -> Response:
    request = bp.current_request
    query = parse_query(request, DevicesQuery)
    caller = principal(request)
    rows, cursor = devices.list_devices(table(), caller, query.cursor)
    return json_response(DevicesResponse(devices=[DeviceOut(**row) for row in rows], cursor=cursor))


@operation(
    bp,
    "/api/devices/{replicaId}",
    "PATCH",
    summary="Rename a device",
    tag="devices",
    body=RenameRequest,
    response=DeviceOut,
    errors=("invalid_request", *AUTH_ERRORS, "device_not_found"),
)
def rename_device(replicaId: str) -> Response:  # noqa: N803 - the path parameter's name
    request = bp.current_request
    replica_id = _replica(replicaId)
    req = parse_body(request, RenameRequest)
    caller = principal(request)
    return json_response(DeviceOut(**devices.rename(table(), caller, replica_id, req.name)))


@operation(
    bp,
    "/api/devices/{replicaId}/revoke",
    "POST",
    summary="Revoke a device: its sessions end at once, it can never sign in again",
    tag="devices",
    body=RevokeRequest,
    response=DeviceOut,
    errors=(
        "invalid_request",
        "invalid_encoding",
        *AUTH_ERRORS,
        "challenge_invalid",
        "challenge_expired",
        "invalid_signature",
        "device_not_found",
    ),
)
def revoke_device(replicaId: str) -> Response:  # noqa: N803 - the path parameter's name
    request = bp.current_request
    replica_id = _replica(replicaId)
    req = parse_body(request, RevokeRequest)
    caller = principal(request)
    identity.check_proof(table(), get_settings(), caller, "revoke", replica_id, req.proof)
    return json_response(DeviceOut(**devices.revoke(table(), caller, replica_id)))


@operation(
    bp,
    "/api/vault/rotate",
    "POST",
    summary="Move the vault to a new Key DID after a master-password change",
    tag="vault",
    body=RotateRequest,
    response=RotateResponse,
    errors=(
        "invalid_request",
        "invalid_key_did",
        "invalid_encoding",
        *AUTH_ERRORS,
        "challenge_invalid",
        "challenge_expired",
        "invalid_signature",
        "vault_not_found",
        "kdf_conflict",
        "key_did_taken",
        "key_did_retired",
    ),
)
def rotate() -> Response:
    request = bp.current_request
    req = parse_body(request, RotateRequest)
    caller = principal(request)
    identity.check_proof(table(), get_settings(), caller, "rotate", req.newKeyDid, req.proof)
    new_key_did, rotated_at = rotation.rotate(table(), get_settings(), caller, req)
    return json_response(RotateResponse(keyDid=new_key_did, rotatedAt=rotated_at))
